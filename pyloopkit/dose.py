"""Dose types and the struct-of-arrays dose container used by the insulin math.

A dose is a bolus (``value`` in U, delivered over ``[start, end]``) or a basal
segment (``value`` a rate in U/h over ``[start, end)``): scheduled basal, temp
basal, suspend (rate 0) or resume (a marker). Times are seconds since the
reference date (see :mod:`pyloopkit.date`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np


class DoseType(IntEnum):
    """Kinds of insulin delivery events (LoopKit ``DoseType``), numbered as Tidepool's PyLoopKit numbers them.

    The upper-case members are the library's names; PyLoopKit's lower-case names
    (``suspend``, ``resume``, ``basal``, ``tempbasal``, ``bolus``, ``meal``) are aliases of
    them with PyLoopKit's values, so client code written for PyLoopKit runs unchanged.
    ``MEAL`` exists for PyLoopKit compatibility only: a meal is a carb entry, and ``update()``
    rejects it in the dose lists.
    """

    SUSPEND = 0
    RESUME = 1
    BASAL = 2
    TEMP_BASAL = 3
    BOLUS = 4
    MEAL = 5

    suspend = 0
    resume = 1
    basal = 2
    tempbasal = 3
    bolus = 4
    meal = 5

    @classmethod
    def parse(cls, value) -> "DoseType":
        """Accept the enum, its int value, or a case-insensitive name as PyLoopKit and
        issue reports spell it (``Bolus``, ``TempBasal``, ``tempbasal``, ``Basal``,
        ``BasalProfileStart``, ``Suspend``, ``PumpSuspend``, ``Resume``, ``PumpResume``, ``meal``)."""
        if isinstance(value, DoseType):
            return value
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            try:
                return cls(int(value))
            except ValueError:
                raise ValueError(f"unknown dose type {value!r}") from None
        if hasattr(value, "name") and not isinstance(value, str):
            value = value.name
        key = str(value).strip().lower().replace("_", "").replace(" ", "")
        try:
            return _NAMES[key]
        except KeyError:
            raise ValueError(f"unknown dose type {value!r}") from None

    @classmethod
    def from_str(cls, label) -> "DoseType":
        """PyLoopKit's constructor from a name (``DoseType.from_str("tempbasal")``): :meth:`parse`."""
        return cls.parse(label)


_NAMES = {
    "basal": DoseType.BASAL,
    "basalprofilestart": DoseType.BASAL,
    "scheduledbasal": DoseType.BASAL,
    "tempbasal": DoseType.TEMP_BASAL,
    "bolus": DoseType.BOLUS,
    "suspend": DoseType.SUSPEND,
    "pumpsuspend": DoseType.SUSPEND,
    "resume": DoseType.RESUME,
    "pumpresume": DoseType.RESUME,
    "meal": DoseType.MEAL,
}

INSULIN_TYPES = (DoseType.SUSPEND, DoseType.RESUME, DoseType.BASAL, DoseType.TEMP_BASAL, DoseType.BOLUS)
"""The dose types that describe insulin delivery (every type but ``MEAL``)."""


_CODES: dict = {}


def type_codes(types) -> list[int]:
    """``int(DoseType.parse(x))`` for each ``x``, memoised for str, int and DoseType values."""
    out = []
    for x in types:
        cacheable = type(x) in (str, DoseType, int)
        code = _CODES.get(x) if cacheable else None
        if code is None:
            code = int(DoseType.parse(x))
            if cacheable:
                _CODES[x] = code
        out.append(code)
    return out


def _empty(dtype=float) -> np.ndarray:
    return np.empty(0, dtype=dtype)


@dataclass
class DoseArrays:
    """Index-matched dose arrays (struct of arrays).

    Attributes
    ----------
    type : int8 array of :class:`DoseType` values
    start_s, end_s : float arrays, seconds since the reference date
    value : U for boluses, U/h for basal-like doses
    delivered_units : U actually delivered when the pump reported it, else NaN
    scheduled_rate : scheduled basal rate (U/h) in force, NaN until annotated
    """

    type: np.ndarray = field(default_factory=lambda: _empty(np.int8))
    start_s: np.ndarray = field(default_factory=_empty)
    end_s: np.ndarray = field(default_factory=_empty)
    value: np.ndarray = field(default_factory=_empty)
    delivered_units: np.ndarray = field(default_factory=_empty)
    scheduled_rate: np.ndarray = field(default_factory=_empty)

    @classmethod
    def from_lists(cls, types, start_s, end_s, values, delivered_units=None, scheduled_rate=None) -> "DoseArrays":
        """Build from index-matched sequences (types as names, ints or :class:`DoseType`, or an int8
        array of type codes)."""
        n = len(types)
        coded = isinstance(types, np.ndarray) and types.dtype == np.int8
        t = types if coded else np.array(type_codes(types), dtype=np.int8)
        du = np.full(n, np.nan) if delivered_units is None else np.array(
            [np.nan if x is None else x for x in delivered_units], dtype=float)
        sr = np.full(n, np.nan) if scheduled_rate is None else np.asarray(scheduled_rate, dtype=float)
        return cls(t, np.asarray(start_s, dtype=float), np.asarray(end_s, dtype=float),
                   np.asarray(values, dtype=float), du, sr)

    def __len__(self) -> int:
        return int(self.type.size)

    def take(self, index) -> "DoseArrays":
        """Subset (boolean mask or integer indices), keeping every column aligned."""
        return DoseArrays(*(getattr(self, f)[index] for f in _FIELDS))

    def with_(self, **columns) -> "DoseArrays":
        """Copy with some columns replaced."""
        return replace(self, **columns)

    @staticmethod
    def concat(parts: list["DoseArrays"]) -> "DoseArrays":
        """Concatenate dose arrays column by column."""
        if not parts:
            return DoseArrays()
        return DoseArrays(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def sorted(self) -> "DoseArrays":
        """Stable sort by start time."""
        return self.take(np.argsort(self.start_s, kind="stable"))

    @property
    def duration_s(self) -> np.ndarray:
        return self.end_s - self.start_s

    @property
    def is_bolus(self) -> np.ndarray:
        return self.type == _BOLUS

    @property
    def is_basal_like(self) -> np.ndarray:
        """Basal, temp basal and suspend: doses that carry a rate in U/h."""
        return (self.type == _BASAL) | (self.type == _TEMP_BASAL) | (self.type == _SUSPEND)


_BASAL, _TEMP_BASAL, _BOLUS, _SUSPEND = (int(t) for t in (DoseType.BASAL, DoseType.TEMP_BASAL, DoseType.BOLUS,
                                                         DoseType.SUSPEND))
"""Plain ints of the types, for fast array comparisons (enum attribute look-ups are slow)."""

_FIELDS = ("type", "start_s", "end_s", "value", "delivered_units", "scheduled_rate")
