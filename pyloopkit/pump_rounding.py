"""Loop's per-pump rounding of recommended temp basal rates and bolus volumes.

Loop does not round a recommendation itself: it asks the pump manager, and what the pump manager
does changed with the Loop version (sources: LoopKit/Loop, LoopKit/LoopKit, ps2/rileylink_ios,
LoopKit/OmniKit, LoopKit/OmniBLE, LoopKit/MinimedKit; see docs/update.md for the table):

* Loop 1.x up to v1.9.6 (and the dev branch before 2019-03-09): ``DoseMath`` rounds rates and
  boluses to the nearest 0.025 U (``round(x * 40) / 40``), whatever the pump.
* From then on (Loop 1.10 dev, 2.x, 3.x): ``roundToSupportedBasalRate`` /
  ``roundToSupportedBolusVolume`` of the pump manager: the largest supported value not above the
  recommendation (0 below the smallest), from the pump's table of supported values.
* Loop 2.2.5 to 3.2.x rounded boluses to the *nearest* supported volume (or 0) instead
  (``DeviceDataManager.roundBolusVolume``, 2021-01 to 2023-01); Loop 3.4 rounds down again.

A rule is a :class:`PumpRounding`: one :class:`Increments` for basal rates (U/h), one for bolus
volumes (U). :data:`PUMP_ROUNDING` names them; :func:`rule_name` picks one from what an issue
report says about its pump and Loop version; :func:`rounders` resolves the settings of
:func:`pyloopkit.update` (``pump_rounding``, overridden by ``rate_rounder`` / ``bolus_rounder``
and ``rounding``).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace

import numpy as np

from .dose_math import ROUNDING_MODES, round_to_increment, supported_value


@dataclass(frozen=True)
class Increments:
    """Supported values: ``segments`` of ``(first, last, step)`` (U or U/h, ``last`` included), or,
    when ``segments`` is empty, every multiple of ``step`` without bound.

    ``mode``: ``"down"``, the largest supported value not above the value (0 below the smallest),
    as Loop's pump managers; ``"nearest"``, the nearest supported value or 0 (the lower on an exact
    tie, like Swift's ``min(by:)``; a uniform ``step`` rounds half away from zero like Swift's ``round``).
    """

    step: float
    mode: str = "down"
    segments: tuple = ()
    _values: np.ndarray = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.mode not in ROUNDING_MODES:
            raise ValueError(f"rounding mode must be one of {ROUNDING_MODES}, got {self.mode!r}")
        if self.segments:
            parts = [first + step * np.arange(int(round((last - first) / step)) + 1)
                     for first, last, step in self.segments]
            object.__setattr__(self, "_values", np.round(np.concatenate(parts), 10))

    @property
    def values(self) -> np.ndarray | None:
        """The supported values in increasing order, or None for an unbounded uniform step."""
        return self._values

    @property
    def smallest(self) -> float:
        """The smallest supported value above 0 (U or U/h)."""
        return self.step if self._values is None else float(self._values[self._values > 0][0])

    def round(self, value: float) -> float:
        """``value`` (>= 0) rounded to a supported value (see the class docstring)."""
        if self._values is None:
            return round_to_increment(value, self.step, self.mode)
        return float(supported_value(self._values, float(value), self.mode == "down"))

    def at_most(self, upper: float) -> float:
        """The largest supported value not above ``upper`` (0 when there is none)."""
        return replace(self, mode="down").round(upper)


@dataclass(frozen=True)
class PumpRounding:
    """How Loop rounds for one pump manager (and Loop version): ``basal`` in U/h, ``bolus`` in U."""

    basal: Increments
    bolus: Increments
    source: str


def _steps(*segments) -> tuple:
    return tuple(segments)


_MINIMED_X23_BASAL = _steps((0.0, 0.975, 0.025), (1.0, 9.95, 0.05), (10.0, 35.0, 0.1))
_MINIMED_X23_BOLUS = _steps((0.025, 1.0, 0.025), (1.05, 10.0, 0.05), (10.1, 25.0, 0.1))

_PUMP_MANAGERS = {
    "omnipod_eros": (
        Increments(0.05, segments=_steps((0.05, 30.0, 0.05))), Increments(0.05, segments=_steps((0.05, 30.0, 0.05))),
        "OmniKit OmnipodPumpManager: 0.05 U/h rates 0.05-30, 0.05 U boluses 0.05-30, both down"),
    "omnipod_dash": (
        Increments(0.05, segments=_steps((0.0, 30.0, 0.05))), Increments(0.05, segments=_steps((0.05, 30.0, 0.05))),
        "OmniBLE OmniBLEPumpManager: 0.05 U/h rates 0-30, 0.05 U boluses 0.05-30, both down"),
    "minimed_x23": (
        Increments(0.025, segments=_MINIMED_X23_BASAL), Increments(0.025, segments=_MINIMED_X23_BOLUS),
        "MinimedKit PumpModel x23 and later (523/723, 530/730, 540/740, 551/751, 554/754): rates 0.025 below "
        "1 U/h, 0.05 to 9.95, 0.1 to 35; boluses 0.025 to 1 U, 0.05 to 10, 0.1 to 25; both down"),
    "minimed_x22": (
        Increments(0.05, segments=_steps((0.0, 35.0, 0.05))), Increments(0.1, segments=_steps((0.1, 25.0, 0.1))),
        "MinimedKit PumpModel before x23 (508-522/722): 0.05 U/h rates 0-35, 0.1 U boluses 0.1-25, both down"),
    "medtrum": (
        Increments(0.05, segments=_steps((0.05, 25.0, 0.05))), Increments(0.05, segments=_steps((0.05, 30.0, 0.05))),
        "MedtrumKit MedtrumPumpManager: 0.05 U/h rates 0.05-25, 0.05 U boluses 0.05-30, both down"),
    "dana": (
        Increments(0.01, segments=_steps((0.0, 3.0, 0.01))), Increments(0.05, segments=_steps((0.05, 30.0, 0.05))),
        "DanaKit DanaKitPumpManager: 0.01 U/h rates 0-3 (its table stops at 3 U/h), 0.05 U boluses 0.05-30, both down"),
}

NEAREST_BOLUS_SUFFIX = "_nearest_bolus"
"""Rule-name suffix for Loop 2.2.5 to 3.2.x, which rounded boluses to the nearest supported volume."""

DEFAULT_RULE = "default"
"""Rule for a report whose pump is not known: 0.05 U/h and 0.05 U, down (the Omnipod increment,
and the rule PyLoopKit's parser always applied before; see docs/update.md)."""


def _build_rules() -> dict:
    rules = {
        DEFAULT_RULE: PumpRounding(Increments(0.05), Increments(0.05),
                                   "pump not known: 0.05 U/h and 0.05 U, down (Omnipod's increment)"),
        "loop1": PumpRounding(Increments(0.025, mode="nearest"), Increments(0.025, mode="nearest"),
                              "Loop up to v1.9.6 (DoseMath round(x * 40) / 40): nearest 0.025 U/h and U, any pump"),
    }
    for name, (basal, bolus, source) in _PUMP_MANAGERS.items():
        rules[name] = PumpRounding(basal, bolus, source)
        rules[name + NEAREST_BOLUS_SUFFIX] = PumpRounding(
            basal, replace(bolus, mode="nearest"),
            source + "; Loop 2.2.5-3.2.x: boluses to the nearest supported volume or 0")
    return rules


PUMP_ROUNDING: dict[str, PumpRounding] = _build_rules()
"""Rounding rules by name (the ``pump_rounding`` setting)."""

_MANAGER_NAMES = {
    "omnipodpumpmanager": "omnipod_eros", "omnipod": "omnipod_eros", "omnipod_eros": "omnipod_eros",
    "omniblepumpmanager": "omnipod_dash", "omnipod-dash": "omnipod_dash", "omnipod_dash": "omnipod_dash",
    "dashpumpmanager": "omnipod_dash", "omnipoddash": "omnipod_dash",
    "minimedpumpmanager": "minimed", "minimed": "minimed", "minimed500": "minimed",
    "medtrumpumpmanager": "medtrum", "medtrum": "medtrum",
    "danakitpumpmanager": "dana", "danakit": "dana", "dana": "dana",
}
MANAGER_CLASS_NAMES = ("MinimedPumpManager", "OmnipodPumpManager", "OmniBLEPumpManager", "DashPumpManager",
                       "MedtrumPumpManager", "DanaKitPumpManager")
"""Pump manager class names as an issue report prints them."""


def loop_version(text: str | None) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` from a report's version line such as ``"Loop v1.10.0dev"``; None if absent."""
    m = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return None if m is None else (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def minimed_rule(pump_model: str | None) -> str | None:
    """``minimed_x23`` for models x23 and later (``"723"``, ``"554"``), ``minimed_x22`` before; None if unreadable."""
    m = re.fullmatch(r"\s*[57](\d{2})\s*", str(pump_model or ""))
    if m is None:
        return None
    return "minimed_x23" if int(m.group(1)) >= 23 else "minimed_x22"


def rule_name(pump_manager: str | None, pump_model: str | None = None, version: str | None = None) -> str:
    """The :data:`PUMP_ROUNDING` rule for a report's pump manager (class name, plugin identifier or
    Tidepool's ``pump_manager_type``), Medtronic ``pump_model`` and Loop ``version`` line.

    Loop before 1.10 rounds the same for every pump (``loop1``); an unknown pump manager, or a
    Medtronic without a readable model, gets :data:`DEFAULT_RULE`.
    """
    v = loop_version(version)
    if v is not None and v < (1, 10, 0):
        return "loop1"
    kind = _MANAGER_NAMES.get(str(pump_manager or "").strip().lower())
    name = minimed_rule(pump_model) if kind == "minimed" else kind
    if name is None:
        return DEFAULT_RULE
    if v is not None and (2, 2, 5) <= v < (3, 4, 0):
        return name + NEAREST_BOLUS_SUFFIX
    return name


@functools.lru_cache(maxsize=256)
def rounders(pump_rounding: str | None, rate_rounder: float | None, bolus_rounder: float | None,
             rounding: str | None) -> tuple[Increments | None, Increments | None]:
    """The basal and bolus :class:`Increments` of :func:`pyloopkit.update`'s settings (cached: the
    Loop core asks at every cycle; the frozen results are shared).

    ``pump_rounding`` (a :data:`PUMP_ROUNDING` name) gives both tables and directions; an explicit
    ``rate_rounder`` / ``bolus_rounder`` (U/h, U) replaces that kind's table by a uniform step, and an
    explicit ``rounding`` (``"nearest"`` / ``"down"``) replaces both directions. With neither a rule nor
    an increment, that kind is not rounded (None); a uniform step without a direction rounds to nearest.
    """
    rule = None if pump_rounding is None else PUMP_ROUNDING[str(pump_rounding).strip().lower()]
    rounding = None if rounding is None else str(rounding).strip().lower()

    def one(step: float | None, table: Increments | None) -> Increments | None:
        if step:
            return Increments(float(step), mode=rounding or (table.mode if table else "nearest"))
        if table is None:
            return None
        return table if rounding is None else replace(table, mode=rounding)

    return one(rate_rounder, rule and rule.basal), one(bolus_rounder, rule and rule.bolus)
