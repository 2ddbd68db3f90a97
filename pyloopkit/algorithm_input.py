"""LoopAlgorithm's JSON inputs (``AlgorithmInput``, ``LoopPredictionInput``) parsed once into arrays.

The Swift package LoopKit/LoopAlgorithm (2024-2026) takes absolute timelines
(``basal``, ``sensitivity``, ``carbRatio``, ``target``: lists of
``{startDate, endDate, value}``) instead of the daily schedules of the 2019 Loop.
This module holds

* :class:`AbsoluteTimeline`: such a timeline as arrays, with vectorised look-ups
  (``at``, ``index_at``) and interval splitting (``split``) that duck-type
  :class:`pyloopkit.schedule.DailySchedule`, and coverage checks (``gaps``);
* :class:`AlgorithmInput`: the whole input as numpy arrays (seconds since
  2001-01-01T00:00:00Z, mg/dL, U, g);
* :func:`parse_algorithm_input` / :func:`parse_prediction_input`: JSON dicts to
  :class:`AlgorithmInput`, raising one :class:`~pyloopkit.errors.InvalidInputError`
  that lists every malformed value (field, index, value, reason);
* the algorithm's typed refusals (:class:`Refusal`, codes like ``glucoseTooOld``);
* ISO 8601 date parsing and formatting on arrays;
* the converters between PyLoopKit's ``update()`` dictionary and ``AlgorithmInput``
  (:func:`to_algorithm_input`, :func:`from_algorithm_input`).
"""
from __future__ import annotations

import datetime as _dt
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .date import ceil_to_grid, floor_to_grid, to_second
from .dose import DoseType
from .errors import InvalidInputError, LoopWarning, MissingDataError, Problem
from .glucose_math import GRADUAL_TRANSITION_THRESHOLD_MGDL
from .insulin_math import reconcile
from .insulin_models import PRESETS
from .loop_input import parse_input

_EPOCH_MS = np.datetime64("2001-01-01T00:00:00", "ms")

INSULIN_TYPE_PRESETS = {
    "novolog": None,
    "humalog": None,
    "apidra": None,
    "fiasp": "fiasp",
    "lyumjev": "lyumjev",
    "afrezza": "afrezza",
}
"""LoopAlgorithm ``InsulinType`` -> exponential preset of :mod:`pyloopkit.insulin_models`; None:
the default rapid-acting model (LoopAlgorithm ``PresetInsulinModelProvider``), see
:data:`RAPID_ACTING_MODELS`."""

RAPID_ACTING_MODELS = {"rapidactingadult": "adult", "rapidactingchild": "child"}
"""``defaultRapidActingModel`` (extension; Swift passes it to ``PresetInsulinModelProvider``) ->
preset used for Novolog, Humalog, Apidra and doses without an insulin type. Default: adult."""

CARB_MODELS = {
    "piecewiselinear": "piecewise_linear",
    "piecewise_linear": "piecewise_linear",
    "nonlinear": "piecewise_linear",
    "linear": "linear",
    "parabolic": "parabolic",
    "adaptiveratenonlinear": "adaptive",
    "adaptive": "adaptive",
}
"""Accepted ``carbAbsorptionModel`` spellings -> the library's model names. LoopKit's
``nonlinear`` is the piecewise-linear curve; ``adaptiveRateNonlinear`` is piecewise-linear
with the adaptive absorption rate; ``parabolic`` is the 2019 Loop curve (an extension)."""

RECOMMENDATION_TYPES = ("manualBolus", "automaticBolus", "tempBasal")

EFFECT_OPTION_BITS = {"carbs": 1, "insulin": 2, "momentum": 4, "retrospection": 8}
"""``AlgorithmEffectsOptions`` raw bits (LoopAlgorithm)."""

DEFAULT_GRADUAL_TRANSITIONS_THRESHOLD = GRADUAL_TRANSITION_THRESHOLD_MGDL
"""mg/dL between consecutive readings above which momentum and RC are skipped (40)."""

DEFAULT_MAX_ACTIVE_INSULIN_MULTIPLIER = 2.0
"""Maximum active insulin = ``maxBolus`` x this, when ``maxActiveInsulinMultiplier`` is absent."""

DEFAULT_AUTOMATIC_BOLUS_APPLICATION_FACTOR = 0.4
"""Fraction of the correction given as an automatic bolus (``defaultBolusPartialApplicationFactor``)."""

INSULIN_ACTIVITY_DURATION_S = 6 * 3600.0 + 10 * 60.0
"""6 h 10 min (``InsulinMath.defaultInsulinActivityDuration``): the prediction reaches at least this far
past its start; converted timelines extend this far past the last dose."""

DEFAULT_MOMENTUM_VELOCITY_MAXIMUM = 4.0
"""mg/dL/min: upper cap on the momentum slope (LoopAlgorithm ``linearMomentumEffect`` default)."""


# --------------------------------------------------------------------------- dates

def parse_dates(values, field_name: str, problems: list[Problem]) -> np.ndarray:
    """Seconds since 2001-01-01T00:00:00Z for ISO 8601 strings (``...Z``, offsets, or naive = UTC).

    Unparseable entries are reported in ``problems`` and come back as NaN.
    """
    try:
        utc = [v[:-1] for v in values if v[-1:] == "Z"]
    except TypeError:
        utc = []
    if len(utc) == len(values):
        try:
            return (np.array(utc, dtype="datetime64[ms]") - _EPOCH_MS).astype(np.int64) / 1000.0
        except ValueError:
            pass
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None:
            problems.append(Problem(field_name, i, None, "missing"))
            continue
        try:
            out[i] = to_second(v)
        except (TypeError, ValueError, OverflowError):
            problems.append(Problem(field_name, i, v, "not an ISO 8601 date"))
    return out


def format_dates(seconds) -> list[str]:
    """ISO 8601 UTC strings (``2023-10-17T20:59:03Z``) for seconds since the reference date;
    milliseconds are written only when a time is not a whole second."""
    s = np.asarray(seconds, dtype=float)
    if s.size == 0:
        return []
    ms = np.round(s * 1000.0).astype(np.int64)
    unit = "s" if np.all(ms % 1000 == 0) else "ms"
    stamps = _EPOCH_MS + ms.astype("timedelta64[ms]")
    return np.datetime_as_string(stamps, unit=unit, timezone="UTC").tolist()


# --------------------------------------------------------------------------- timelines

@dataclass(frozen=True)
class AbsoluteTimeline:
    """A timeline of values over absolute intervals ``[start_s[i], end_s[i]]`` (LoopAlgorithm
    ``[AbsoluteScheduleValue]``), sorted and non-overlapping; gaps are allowed and reported
    by :meth:`gaps`.

    ``values`` has shape (n,) or (n, k) (a target range stores (lower, upper) rows). The
    look-ups follow Swift's ``closestPrior``: the item in force at ``t`` is the last one
    starting at or before ``t``; :meth:`at` additionally requires ``t`` to be inside it.
    ``offset_s`` is 0 (absolute times are UTC) and exists so that a timeline can stand in
    for a :class:`~pyloopkit.schedule.DailySchedule`.
    """

    start_s: np.ndarray
    end_s: np.ndarray
    values: np.ndarray
    name: str = "timeline"
    offset_s: float = 0.0

    def __len__(self) -> int:
        return int(self.start_s.size)

    @property
    def first_start_s(self) -> float:
        return float(self.start_s[0]) if len(self) else math.inf

    @property
    def last_end_s(self) -> float:
        return float(self.end_s[-1]) if len(self) else -math.inf

    def index_at(self, seconds) -> np.ndarray:
        """Index of the last item starting at or before each time (-1 before the first)."""
        return np.searchsorted(self.start_s, np.asarray(seconds, dtype=float), side="right") - 1

    def covered(self, seconds) -> np.ndarray:
        """Whether each time lies inside an item (ends inclusive)."""
        t = np.asarray(seconds, dtype=float)
        i = self.index_at(t)
        ok = i >= 0
        return ok & (t <= self.end_s[np.maximum(i, 0)]) if len(self) else np.zeros(t.shape, bool)

    def at(self, seconds) -> np.ndarray:
        """Value in force at each time (vectorised).

        Raises
        ------
        MissingDataError
            When a time is not covered by the timeline (naming the first such time).
        """
        t = np.asarray(seconds, dtype=float)
        ok = self.covered(t)
        if not np.all(ok):
            bad = float(np.atleast_1d(t)[~np.atleast_1d(ok)][0])
            raise MissingDataError(f"{self.name} timeline does not cover {format_dates([bad])[0]}")
        return self.values[self.index_at(t)]

    def gaps(self, start_s: float, end_s: float) -> list[tuple[float, float]]:
        """Sub-intervals of ``[start_s, end_s]`` covered by no item."""
        if not len(self):
            return [(start_s, end_s)]
        lo = np.concatenate(([-math.inf], self.end_s))
        hi = np.concatenate((self.start_s, [math.inf]))
        holes = (hi > lo) & (hi > start_s) & (lo < end_s)
        return [(max(a, start_s), min(b, end_s)) for a, b in zip(lo[holes], hi[holes])]

    def split(self, start_s, end_s) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Split intervals at item boundaries (same contract as ``DailySchedule.split``).

        Returns ``(interval_index, seg_start_s, seg_end_s, value)``: each interval
        ``[start_s[i], end_s[i])`` becomes consecutive segments, each inside one item.
        Zero-length intervals give one zero-length segment. The intervals must be covered
        (see :meth:`gaps`).
        """
        start_s = np.asarray(start_s, dtype=float)
        end_s = np.maximum(np.asarray(end_s, dtype=float), start_s)
        bounds = self.start_s[1:]
        first = np.searchsorted(bounds, start_s, side="right")
        last = np.searchsorted(bounds, end_s, side="left")
        n_segs = np.maximum(last - first, 0) + 1
        owner = np.repeat(np.arange(start_s.size), n_segs)
        pos = np.arange(owner.size) - np.repeat(np.cumsum(n_segs) - n_segs, n_segs)
        item = first[owner] + pos
        seg_start = np.where(pos == 0, start_s[owner], self.start_s[np.minimum(item, len(self) - 1)])
        seg_end = np.empty_like(seg_start)
        seg_end[:-1] = seg_start[1:]
        if seg_end.size:
            seg_end[np.cumsum(n_segs) - 1] = end_s
        return owner, seg_start, seg_end, self.values[np.minimum(item, len(self) - 1)]

    def to_json(self, value_keys: tuple[str, ...] = ("value",)) -> list[dict]:
        """The timeline as LoopAlgorithm JSON items."""
        starts, ends = format_dates(self.start_s), format_dates(self.end_s)
        vals = self.values.reshape(len(self), -1)
        return [{"startDate": s, "endDate": e, **{k: float(v) for k, v in zip(value_keys, row)}}
                for s, e, row in zip(starts, ends, vals)]


def _number(x) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError
    return float(x)


def _items(d: dict, key: str, problems: list[Problem], required: bool = True) -> list:
    value = d.get(key)
    if value is None:
        if required:
            problems.append(Problem(key, None, None, "missing"))
        return []
    if not isinstance(value, list):
        problems.append(Problem(key, None, type(value).__name__, "must be a list"))
        return []
    bad = [i for i, item in enumerate(value) if not isinstance(item, dict)]
    for i in bad:
        problems.append(Problem(key, i, value[i], "must be an object"))
    return [] if bad else value


def _column(items: list, key: str, alias: str | None) -> list:
    if alias is None:
        return [item.get(key) for item in items]
    return [item[key] if key in item else item.get(alias) for item in items]


def _numbers(items: list, key: str, field_name: str, problems: list[Problem], *, minimum: float | None = None,
             strictly: bool = False, default: float | None = None, alias: str | None = None) -> np.ndarray:
    """Column ``key`` (or ``alias``) of ``items`` as floats; NaN where absent and ``default`` is None."""
    raw = _column(items, key, alias)
    if all(type(x) is float or type(x) is int for x in raw):
        out = np.array(raw, dtype=float)
        ok = np.isfinite(out)
        if minimum is not None:
            ok &= (out > minimum) if strictly else (out >= minimum)
        if ok.all():
            return out
    out = np.full(len(items), np.nan)
    for i, x in enumerate(raw):
        if x is None:
            if default is None:
                problems.append(Problem(f"{field_name}.{key}", i, None, "missing"))
            else:
                out[i] = default
            continue
        try:
            v = _number(x)
        except TypeError:
            problems.append(Problem(f"{field_name}.{key}", i, x, "not a number"))
            continue
        if not math.isfinite(v):
            problems.append(Problem(f"{field_name}.{key}", i, x, "not finite"))
        elif minimum is not None and (v <= minimum if strictly else v < minimum):
            problems.append(Problem(f"{field_name}.{key}", i, x,
                                    f"must be {'>' if strictly else '>='} {minimum:g}"))
        else:
            out[i] = v
    return out


def _item_dates(items: list, key: str, field_name: str, problems: list[Problem], alias: str | None = None):
    raw = _column(items, key, alias)
    return parse_dates(raw, f"{field_name}.{key}", problems)


def parse_timeline(d: dict, key: str, problems: list[Problem], *, value_keys=("value",),
                   minimum: float = 0.0, strictly: bool = True, required: bool = True) -> AbsoluteTimeline:
    """An :class:`AbsoluteTimeline` from ``d[key]``; malformed items are added to ``problems``."""
    items = _items(d, key, problems, required)
    start = _item_dates(items, "startDate", key, problems)
    end = _item_dates(items, "endDate", key, problems)
    cols = [_numbers(items, k, key, problems, minimum=minimum, strictly=strictly) for k in value_keys]
    values = cols[0] if len(cols) == 1 else np.column_stack(cols) if items else np.empty((0, len(cols)))
    for i in np.flatnonzero(end < start):
        problems.append(Problem(f"{key}.endDate", int(i), items[i].get("endDate"), "before startDate"))
    for i in np.flatnonzero(start[1:] < end[:-1]):
        problems.append(Problem(f"{key}.startDate", int(i) + 1, items[i + 1].get("startDate"),
                                "before the end of the previous item (items must be sorted and not overlap)"))
    if len(value_keys) == 2:
        for i in np.flatnonzero(values[:, 0] > values[:, 1]):
            problems.append(Problem(f"{key}.{value_keys[0]}", int(i), float(values[i, 0]),
                                    f"above {value_keys[1]}"))
    return AbsoluteTimeline(start, end, values, key)


# --------------------------------------------------------------------------- input

@dataclass(frozen=True)
class GlucoseHistory:
    """Glucose samples sorted by date: seconds, mg/dL, calibration/display-only flags, provenance."""

    date_s: np.ndarray
    value_mgdl: np.ndarray
    is_calibration: np.ndarray
    provenance: tuple

    def __len__(self) -> int:
        return int(self.date_s.size)


@dataclass(frozen=True)
class InsulinDoses:
    """Doses sorted by start: ``is_basal`` (else bolus), start/end seconds, volume U, insulin type."""

    is_basal: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    volume_u: np.ndarray
    insulin_type: tuple

    def __len__(self) -> int:
        return int(self.start_s.size)


@dataclass(frozen=True)
class CarbEntries:
    """Carb entries sorted by date: seconds, grams, absorption time in seconds (NaN = default 3 h)."""

    date_s: np.ndarray
    grams: np.ndarray
    absorption_s: np.ndarray

    def __len__(self) -> int:
        return int(self.date_s.size)


@dataclass(frozen=True)
class AlgorithmInput:
    """A parsed ``AlgorithmInput`` / ``LoopPredictionInput`` (mg/dL, U, U/h, g, seconds)."""

    prediction_start_s: float
    glucose: GlucoseHistory
    doses: InsulinDoses
    carbs: CarbEntries
    basal: AbsoluteTimeline
    sensitivity: AbsoluteTimeline
    carb_ratio: AbsoluteTimeline
    target: AbsoluteTimeline
    suspend_threshold: float | None = None
    max_bolus: float | None = None
    max_active_insulin_multiplier: float = DEFAULT_MAX_ACTIVE_INSULIN_MULTIPLIER
    max_basal_rate: float | None = None
    use_integral_retrospective_correction: bool = False
    include_positive_velocity_and_rc: bool = True
    use_mid_absorption_isf: bool = False
    carb_absorption_model: str = "piecewise_linear"
    recommendation_insulin_type: str = "novolog"
    recommendation_type: str = "automaticBolus"
    automatic_bolus_application_factor: float = DEFAULT_AUTOMATIC_BOLUS_APPLICATION_FACTOR
    gradual_transitions_threshold: float = DEFAULT_GRADUAL_TRANSITIONS_THRESHOLD
    use_glucose_based_application_factor: bool = False
    momentum_velocity_maximum: float = DEFAULT_MOMENTUM_VELOCITY_MAXIMUM
    default_rapid_acting_model: str = "adult"
    effects: frozenset = field(default_factory=lambda: frozenset(EFFECT_OPTION_BITS))

    def model_preset(self, insulin_type: str | None) -> str:
        """Name of the exponential preset for a LoopAlgorithm insulin type (None: rapid-acting)."""
        return INSULIN_TYPE_PRESETS.get(insulin_type) or self.default_rapid_acting_model

    @property
    def max_active_insulin(self) -> float:
        """U: ``maxBolus`` x ``maxActiveInsulinMultiplier``."""
        return float(self.max_bolus) * self.max_active_insulin_multiplier


def _sorted_by(keys: np.ndarray) -> np.ndarray:
    return np.argsort(keys, kind="stable")


def _glucose(d: dict, problems: list[Problem]) -> GlucoseHistory:
    items = _items(d, "glucoseHistory", problems)
    date = _item_dates(items, "date", "glucoseHistory", problems, alias="startDate")
    value = _numbers(items, "value", "glucoseHistory", problems, minimum=0.0, strictly=True, alias="quantity")
    calib = np.array([bool(it.get("isCalibration", it.get("isDisplayOnly", False))) for it in items], dtype=bool)
    prov = tuple(str(it.get("provenanceIdentifier", "")) for it in items)
    order = _sorted_by(date)
    return GlucoseHistory(date[order], value[order], calib[order], tuple(prov[i] for i in order))


_DOSE_KINDS = {"bolus": False, "basal": True}
"""LoopAlgorithm ``InsulinDeliveryType`` raw values -> is basal."""


def _doses(d: dict, problems: list[Problem], required: bool) -> InsulinDoses:
    items = _items(d, "doses", problems, required)
    raw_types = [it.get("type") for it in items]
    kinds = [_DOSE_KINDS.get(t) if type(t) is str else None for t in raw_types]
    for i in (i for i, k in enumerate(kinds) if k is None):
        problems.append(Problem("doses.type", i, raw_types[i], "must be 'bolus' or 'basal'"))
    start = _item_dates(items, "startDate", "doses", problems)
    end = _item_dates(items, "endDate", "doses", problems)
    volume = _numbers(items, "volume", "doses", problems, minimum=0.0)
    raw_insulin = [it.get("insulinType") for it in items]
    types = [None if t is None else str(t).lower() for t in raw_insulin]
    for i in (i for i, t in enumerate(types) if t is not None and t not in INSULIN_TYPE_PRESETS):
        problems.append(Problem("doses.insulinType", i, raw_insulin[i],
                                f"must be one of {sorted(INSULIN_TYPE_PRESETS)}"))
    is_basal = np.array([bool(k) for k in kinds], dtype=bool)
    for i in np.flatnonzero(end < start):
        problems.append(Problem("doses.endDate", int(i), items[i].get("endDate"), "before startDate"))
    for i in np.flatnonzero(is_basal & (end == start) & (volume > 0)):
        problems.append(Problem("doses.volume", int(i), float(volume[i]),
                                "a basal dose of zero duration cannot deliver insulin"))
    order = _sorted_by(start)
    return InsulinDoses(is_basal[order], start[order], end[order], volume[order], tuple(types[i] for i in order))


def _carbs(d: dict, problems: list[Problem], required: bool) -> CarbEntries:
    items = _items(d, "carbEntries", problems, required)
    date = _item_dates(items, "date", "carbEntries", problems, alias="startDate")
    grams = _numbers(items, "grams", "carbEntries", problems, minimum=0.0)
    absorption = np.full(len(items), np.nan)
    for i, it in enumerate(items):
        raw = it.get("absorptionTime")
        if raw is None:
            continue
        try:
            v = _number(raw)
        except TypeError:
            problems.append(Problem("carbEntries.absorptionTime", i, raw, "not a number"))
            continue
        if not (math.isfinite(v) and v > 0):
            problems.append(Problem("carbEntries.absorptionTime", i, raw, "must be a positive number of seconds"))
        else:
            absorption[i] = v
    order = _sorted_by(date)
    return CarbEntries(date[order], grams[order], absorption[order])


def _scalar(d: dict, key: str, problems: list[Problem], *, default=None, minimum: float | None = None,
            maximum: float | None = None, strictly: bool = False, required: bool = False):
    raw = d.get(key)
    if raw is None:
        if required:
            problems.append(Problem(key, None, None, "missing"))
        return default
    try:
        v = _number(raw)
    except TypeError:
        problems.append(Problem(key, None, raw, "not a number"))
        return default
    if not math.isfinite(v):
        problems.append(Problem(key, None, raw, "not finite"))
    elif minimum is not None and (v <= minimum if strictly else v < minimum):
        problems.append(Problem(key, None, raw, f"must be {'>' if strictly else '>='} {minimum:g}"))
    elif maximum is not None and v > maximum:
        problems.append(Problem(key, None, raw, f"must be <= {maximum:g}"))
    else:
        return v
    return default


def _flag(d: dict, key: str, default: bool, problems: list[Problem]) -> bool:
    raw = d.get(key)
    if raw is None:
        return default
    if not isinstance(raw, bool):
        problems.append(Problem(key, None, raw, "must be true or false"))
        return default
    return raw


def _choice(d: dict, key: str, table, default: str, problems: list[Problem]) -> str:
    """An enumeration value: a string, or Swift's synthesized enum encoding ``{"name": {}}``."""
    raw = d.get(key)
    if raw is None:
        return default
    if isinstance(raw, dict) and len(raw) == 1:
        raw = next(iter(raw))
    norm = str(raw).strip()
    if isinstance(table, dict):
        got = table.get(norm.lower())
    else:
        got = norm if norm in table else None
    if got is None:
        problems.append(Problem(key, None, raw, f"must be one of {sorted(table)}"))
        return default
    return got


def _effect_options(d: dict, problems: list[Problem]) -> frozenset:
    raw = d.get("algorithmEffectsOptions")
    if raw is None:
        return frozenset(EFFECT_OPTION_BITS)
    if isinstance(raw, (int, np.integer)) and not isinstance(raw, bool) and 0 <= raw <= 15:
        return frozenset(k for k, bit in EFFECT_OPTION_BITS.items() if raw & bit)
    if isinstance(raw, list) and all(isinstance(x, str) and x in EFFECT_OPTION_BITS for x in raw):
        return frozenset(raw)
    problems.append(Problem("algorithmEffectsOptions", None, raw,
                            f"must be a bit mask 0-15 or a list of {sorted(EFFECT_OPTION_BITS)}"))
    return frozenset(EFFECT_OPTION_BITS)


def _common(d: dict, problems: list[Problem], *, dosing: bool) -> dict:
    """Fields shared by both input formats."""
    return dict(
        glucose=_glucose(d, problems),
        doses=_doses(d, problems, required=dosing),
        carbs=_carbs(d, problems, required=dosing),
        basal=parse_timeline(d, "basal", problems, minimum=0.0, strictly=False),
        sensitivity=parse_timeline(d, "sensitivity", problems),
        carb_ratio=parse_timeline(d, "carbRatio", problems),
        use_integral_retrospective_correction=_flag(d, "useIntegralRetrospectiveCorrection", False, problems),
        include_positive_velocity_and_rc=_flag(d, "includePositiveVelocityAndRC", True, problems),
        carb_absorption_model=_choice(d, "carbAbsorptionModel", CARB_MODELS, "piecewise_linear", problems),
        gradual_transitions_threshold=_scalar(d, "gradualTransitionsThreshold", problems,
                                              default=DEFAULT_GRADUAL_TRANSITIONS_THRESHOLD, minimum=0.0),
        momentum_velocity_maximum=_scalar(d, "momentumVelocityMaximum", problems,
                                          default=DEFAULT_MOMENTUM_VELOCITY_MAXIMUM, minimum=0.0),
        default_rapid_acting_model=_choice(d, "defaultRapidActingModel", RAPID_ACTING_MODELS, "adult", problems),
    )


def _as_dict(data) -> dict:
    if not isinstance(data, dict):
        raise InvalidInputError([Problem("input", None, type(data).__name__, "must be a JSON object")])
    return data


def parse_algorithm_input(data: dict) -> AlgorithmInput:
    """Parse LoopAlgorithm's ``AlgorithmInput`` JSON (see ``docs/algorithm.md`` for the keys).

    Lists are sorted by date (stable); nothing is dropped, clipped or rounded.

    Raises
    ------
    InvalidInputError
        Listing every malformed value (missing keys, unparseable dates, NaN, negative
        amounts, overlapping timeline items, unknown enumeration values).
    """
    d = _as_dict(data)
    problems: list[Problem] = []
    start = parse_dates([d.get("predictionStart")], "predictionStart", problems)[0] \
        if d.get("predictionStart") is not None else np.nan
    if d.get("predictionStart") is None:
        problems.append(Problem("predictionStart", None, None, "missing"))
    common = _common(d, problems, dosing=True)
    max_bolus = _scalar(d, "maxBolus", problems, minimum=0.0, required=True)
    parsed = AlgorithmInput(
        prediction_start_s=float(start),
        target=parse_timeline(d, "target", problems, value_keys=("lowerBound", "upperBound")),
        suspend_threshold=_scalar(d, "suspendThreshold", problems, minimum=0.0, strictly=True),
        max_bolus=max_bolus,
        max_active_insulin_multiplier=_scalar(d, "maxActiveInsulinMultiplier", problems,
                                              default=DEFAULT_MAX_ACTIVE_INSULIN_MULTIPLIER, minimum=0.0),
        max_basal_rate=_scalar(d, "maxBasalRate", problems, minimum=0.0, required=True),
        use_mid_absorption_isf=_flag(d, "useMidAbsorptionISF", False, problems),
        recommendation_insulin_type=_choice(d, "recommendationInsulinType",
                                            {k: k for k in INSULIN_TYPE_PRESETS}, "novolog", problems),
        recommendation_type=_choice(d, "recommendationType", RECOMMENDATION_TYPES, "automaticBolus", problems),
        automatic_bolus_application_factor=_scalar(
            d, "automaticBolusApplicationFactor", problems,
            default=DEFAULT_AUTOMATIC_BOLUS_APPLICATION_FACTOR, minimum=0.0, maximum=1.0),
        use_glucose_based_application_factor=_flag(d, "useGlucoseBasedApplicationFactor", False, problems),
        effects=_effect_options(d, problems),
        **common,
    )
    if problems:
        raise InvalidInputError(problems)
    return parsed


def parse_prediction_input(data: dict) -> AlgorithmInput:
    """Parse LoopAlgorithm's ``LoopPredictionInput`` JSON: no dosing settings; the prediction
    starts at the last glucose date; ``algorithmEffectsOptions`` is a bit mask (carbs 1,
    insulin 2, momentum 4, retrospection 8) or a list of those names.

    Raises
    ------
    InvalidInputError
        As :func:`parse_algorithm_input`.
    """
    d = _as_dict(data)
    problems: list[Problem] = []
    common = _common(d, problems, dosing=False)
    glucose = common["glucose"]
    parsed = AlgorithmInput(
        prediction_start_s=float(glucose.date_s[-1]) if len(glucose) else math.nan,
        target=AbsoluteTimeline(np.empty(0), np.empty(0), np.empty((0, 2)), "target"),
        effects=_effect_options(d, problems),
        **common,
    )
    if problems:
        raise InvalidInputError(problems)
    return parsed


# --------------------------------------------------------------------------- refusals

MISSING_GLUCOSE = "missingGlucose"
GLUCOSE_TOO_OLD = "glucoseTooOld"
FUTURE_BASAL_NOT_ALLOWED = "futureBasalNotAllowed"
SENSITIVITY_STARTS_TOO_LATE = "sensitivityTimelineStartsTooLate"
SENSITIVITY_ENDS_TOO_EARLY = "sensitivityTimelineEndsTooEarly"
SENSITIVITY_INCOMPLETE = "sensitivityTimelineIncomplete"
BASAL_INCOMPLETE = "basalTimelineIncomplete"
CARB_RATIO_INCOMPLETE = "carbRatioTimelineIncomplete"
TARGET_INCOMPLETE = "targetTimelineIncomplete"
MISSING_SUSPEND_THRESHOLD = "missingSuspendThreshold"


@dataclass(frozen=True)
class Refusal:
    """One reason the algorithm gives no recommendation (LoopAlgorithm ``AlgorithmError``
    codes, plus the gap checks this library adds; see ``docs/algorithm.md``)."""

    code: str
    message: str

    def to_json(self) -> dict:
        return {"type": self.code, "message": self.message}


def describe_interval(start_s: float, end_s: float) -> str:
    """``[start, end]`` as ISO dates, for refusal messages."""
    a, b = format_dates([start_s, end_s]) if math.isfinite(start_s) and math.isfinite(end_s) else (start_s, end_s)
    return f"{a} .. {b}"


def iso(seconds: float) -> str:
    """One ISO 8601 UTC date."""
    return format_dates([seconds])[0]


def utc_datetime(seconds: float) -> _dt.datetime:
    """Aware UTC datetime for seconds since the reference date."""
    return _dt.datetime(2001, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(seconds=float(seconds))


# --------------------------------------------------------------------------- converters

PRESET_INSULIN_TYPES = {"adult": ("novolog", "rapidActingAdult"), "child": ("novolog", "rapidActingChild"),
                        "fiasp": ("fiasp", None), "afrezza": ("afrezza", None)}
"""Exponential preset -> (LoopAlgorithm insulin type, ``defaultRapidActingModel``) that select it
(Lyumjev shares Fiasp's curve)."""

_CARB_MODEL_NAMES = {"piecewise_linear": "piecewiseLinear", "linear": "linear", "parabolic": "parabolic",
                     "adaptive": "adaptiveRateNonlinear"}
_DOSING = {"temp_basal": "tempBasal", "automatic_bolus": "automaticBolus"}

NOT_CARRIED = ("rate_rounder", "bolus_rounder", "rounding", "pump_rounding", "momentum_data_interval",
               "recency_interval", "retrospective_correction_integration_interval",
               "retrospective_correction_grouping_interval", "carb_delay", "dynamic_carb_absorption_enabled")
"""``update()`` settings without an ``AlgorithmInput`` counterpart (LoopAlgorithm fixes the intervals
and delays, leaves rounding to the app and always absorbs carbs dynamically). Values different from
PyLoopKit's defaults are listed under ``unconvertedSettings`` by :func:`to_algorithm_input`."""


def _insulin_type_for(model_setting, delay_min: float) -> tuple[str, str | None]:
    """(LoopAlgorithm insulin type, ``defaultRapidActingModel``) of a PyLoopKit ``model`` setting,
    or InvalidInputError naming the setting."""
    values = tuple(float(x) for x in model_setting)
    field_name = "settings_dictionary.model"
    if len(values) == 1:
        raise InvalidInputError([Problem(field_name, None, list(model_setting),
                                         "a Walsh insulin model has no LoopAlgorithm counterpart (LoopAlgorithm "
                                         "has only the exponential presets)")])
    for preset, selection in PRESET_INSULIN_TYPES.items():
        m = PRESETS[preset]
        if values == (m.action_duration_min, m.peak_activity_min) and delay_min == m.delay_min:
            return selection
    presets = ", ".join(f"[{PRESETS[p].action_duration_min:g}, {PRESETS[p].peak_activity_min:g}] ({p})"
                        for p in PRESET_INSULIN_TYPES)
    raise InvalidInputError([Problem(field_name, None, list(model_setting),
                                     f"LoopAlgorithm inputs name an insulin type; only the exponential presets "
                                     f"{presets} with insulin_delay 10 min can be converted "
                                     f"(insulin_delay is {delay_min:g})")])


def _schedule_items(schedule, start_s: float, end_s: float, value_keys=("value",)) -> list[dict]:
    """A daily schedule as absolute items over ``[start_s, end_s]``."""
    _, seg_start, seg_end, values = schedule.split(np.array([start_s]), np.array([end_s]))
    timeline = AbsoluteTimeline(seg_start, seg_end, np.asarray(values, dtype=float))
    return timeline.to_json(value_keys)


def _not_carried(update_dict: dict, settings) -> dict:
    """Settings of ``update_dict`` without an AlgorithmInput counterpart whose values differ from
    PyLoopKit's defaults."""
    defaults = type(settings)()
    out = {k: getattr(settings, k) for k in NOT_CARRIED if getattr(settings, k) != getattr(defaults, k)}
    if update_dict.get("last_temporary_basal"):
        out["last_temporary_basal"] = [x.name if isinstance(x, DoseType) else str(x)
                                       for x in update_dict["last_temporary_basal"]]
    return out


def to_algorithm_input(update_dict: dict, recommendation_type: str | None = None) -> dict:
    """Convert a PyLoopKit ``update()`` input dictionary to LoopAlgorithm's ``AlgorithmInput`` JSON.

    The dose history is reconciled (suspend/resume pairs become zero-volume basal doses, temp
    basals cut by later ones are trimmed, missing delivered units resolved as ``update()`` does),
    every basal-like dose becomes a ``basal`` dose of its delivered volume, and the daily
    schedules become absolute timelines from the first dose / glucose / carb entry to 6 h 10 min
    after the later of the calculation time and the last dose end.

    Carried settings: ``model`` / ``insulin_delay`` (``insulinType`` and
    ``recommendationInsulinType``; the child curve as ``defaultRapidActingModel``),
    ``suspend_threshold``, ``max_bolus``, ``max_basal_rate``, ``max_active_insulin``
    (``maxActiveInsulinMultiplier``), ``retrospective_correction`` (integral or not),
    ``retrospective_correction_enabled`` (``algorithmEffectsOptions``), ``carb_absorption_model``,
    ``dosing_strategy`` (``recommendationType``), ``partial_application_factor``,
    ``max_physiologic_slope`` (``momentumVelocityMaximum``), ``default_absorption_times`` (per
    entry) and, for ``manualBolus``, ``include_positive_velocity_and_rc_in_bolus``
    (``includePositiveVelocityAndRC``; ``update()``'s temp basals and automatic boluses use the
    whole prediction, LoopAlgorithm's default, and an automated recommendation has no manual bolus
    for the setting to act on). Settings without a counterpart
    (:data:`NOT_CARRIED`, ``last_temporary_basal``) that differ from PyLoopKit's defaults are
    listed under ``unconvertedSettings`` (ignored by :func:`parse_algorithm_input`).

    Parameters
    ----------
    update_dict : dict
        ``update()`` input (``settings_dictionary`` must give ``max_bolus`` and ``max_basal_rate``).
    recommendation_type : ``"manualBolus"``, ``"automaticBolus"``, ``"tempBasal"`` or None
        None: from ``dosing_strategy`` (``temp_basal`` -> ``tempBasal``, ``automatic_bolus`` ->
        ``automaticBolus``).

    Raises
    ------
    InvalidInputError
        When ``max_bolus`` or ``max_basal_rate`` is missing, the recommendation type is unknown,
        or the insulin model is a Walsh model or not one of the LoopAlgorithm presets.
    """
    inp = parse_input(update_dict)
    s = inp.settings
    problems = [Problem(f"settings_dictionary.{k}", None, None, "required by LoopAlgorithm inputs")
                for k in ("max_bolus", "max_basal_rate") if getattr(s, k) is None]
    if recommendation_type is not None and recommendation_type not in RECOMMENDATION_TYPES:
        problems.append(Problem("recommendation_type", None, recommendation_type,
                                f"must be one of {list(RECOMMENDATION_TYPES)}"))
    if problems:
        raise InvalidInputError(problems)
    insulin_type, rapid_acting = _insulin_type_for(s.model, s.insulin_delay)
    kind = recommendation_type or _DOSING[s.dosing_strategy]
    doses = reconcile(inp.doses) if len(inp.doses) else inp.doses
    now = inp.now_s
    firsts = [now] + [float(a.min()) for a in (doses.start_s, inp.glucose_s, inp.carb_s) if a.size]
    start = float(floor_to_grid(min(firsts)))
    end = float(ceil_to_grid(max([now] + ([float(doses.end_s.max())] if len(doses) else []))
                             + INSULIN_ACTIVITY_DURATION_S))
    is_bolus = doses.type == DoseType.BOLUS
    out = {
        "predictionStart": iso(now),
        "glucoseHistory": [{"date": d, "value": float(v)}
                           for d, v in zip(format_dates(inp.glucose_s), inp.glucose_mgdl)],
        "doses": [{"type": "bolus" if b else "basal", "startDate": a, "endDate": e, "volume": float(v),
                   "insulinType": insulin_type}
                  for b, a, e, v in zip(is_bolus, format_dates(doses.start_s), format_dates(doses.end_s),
                                        np.where(np.isnan(doses.delivered_units), doses.value,
                                                 doses.delivered_units))],
        "carbEntries": [{"date": d, "grams": float(g), "absorptionTime": float(t) * 60.0}
                        for d, g, t in zip(format_dates(inp.carb_s), inp.carb_g, inp.carb_absorption_min)],
        "basal": _schedule_items(inp.basal, start, end),
        "sensitivity": _schedule_items(inp.sensitivity, start, end),
        "carbRatio": _schedule_items(inp.carb_ratio, start, end),
        "target": _schedule_items(inp.target, start, end, ("lowerBound", "upperBound")),
        "maxBolus": float(s.max_bolus),
        "maxBasalRate": float(s.max_basal_rate),
        "useIntegralRetrospectiveCorrection": s.retrospective_correction == "integral",
        "includePositiveVelocityAndRC": s.include_positive_velocity_and_rc_in_bolus if kind == "manualBolus" else True,
        "carbAbsorptionModel": _CARB_MODEL_NAMES[s.carb_absorption_model],
        "recommendationInsulinType": insulin_type,
        "recommendationType": kind,
    }
    if rapid_acting is not None:
        out["defaultRapidActingModel"] = rapid_acting
    if s.suspend_threshold is not None:
        out["suspendThreshold"] = float(s.suspend_threshold)
    if s.max_active_insulin is not None and s.max_bolus > 0:
        out["maxActiveInsulinMultiplier"] = float(s.max_active_insulin) / float(s.max_bolus)
    if s.partial_application_factor is not None:
        out["automaticBolusApplicationFactor"] = float(s.partial_application_factor)
    if s.max_physiologic_slope is not None:
        out["momentumVelocityMaximum"] = float(s.max_physiologic_slope)
    if not s.retrospective_correction_enabled:
        out["algorithmEffectsOptions"] = ["carbs", "insulin", "momentum"]
    unconverted = _not_carried(update_dict, s)
    if unconverted:
        out["unconvertedSettings"] = unconverted
        warnings.warn(f"settings without a LoopAlgorithm counterpart are not applied: {sorted(unconverted)}",
                      LoopWarning, stacklevel=2)
    return out


def _time_of_day_pieces(timeline: AbsoluteTimeline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items cut at UTC midnights, as (start, end) seconds after midnight and values."""
    day = 86400.0
    first_day = np.floor(timeline.start_s / day)
    last_day = np.floor(np.nextafter(timeline.end_s, -np.inf) / day)
    n = np.maximum(last_day - first_day, 0).astype(np.int64) + 1
    owner = np.repeat(np.arange(len(timeline)), n)
    k = np.arange(owner.size) - np.repeat(np.cumsum(n) - n, n)
    day_start = (first_day[owner] + k) * day
    a = np.maximum(timeline.start_s[owner], day_start) - day_start
    b = np.minimum(timeline.end_s[owner], day_start + day) - day_start
    keep = b > a
    return np.round(a[keep], 3), np.round(b[keep], 3), timeline.values[owner[keep]]


def _daily_lists(timeline: AbsoluteTimeline, key: str) -> tuple[list[str], np.ndarray]:
    """Start times (``HH:MM:SS[.ffffff]``) and values (rows) of the daily schedule equivalent to
    an absolute timeline read in UTC. Times of day the timeline never covers keep the value in
    force before them (daily schedules cover the whole day); a time of day given two different
    values (a timeline longer than a day that changes from one day to the next) is an error."""
    a, b, v = _time_of_day_pieces(timeline)
    v = v.reshape(a.size, -1)
    cuts = np.unique(np.concatenate((a, b)))
    mids = (cuts[:-1] + cuts[1:]) / 2.0
    covers = (a[:, None] <= mids[None, :]) & (mids[None, :] < b[:, None])
    for column in range(v.shape[1]):
        hi = np.where(covers, v[:, column:column + 1], -np.inf).max(axis=0)
        lo = np.where(covers, v[:, column:column + 1], np.inf).min(axis=0)
        clash = np.flatnonzero(covers.any(axis=0) & (hi != lo))
        if clash.size:
            raise InvalidInputError([Problem(key, None, float(mids[clash[0]]),
                                             "the timeline gives two different values at this time of day (s after "
                                             "UTC midnight); it cannot become a daily schedule")])
    order = np.argsort(a, kind="stable")
    a, v = a[order], v[order]
    change = np.concatenate(([True], np.any(v[1:] != v[:-1], axis=1)))
    times = [str(_dt.timedelta(seconds=float(x))).rjust(8, "0") for x in a[change]]
    return times, v[change]


def from_algorithm_input(algorithm_input) -> dict:
    """Convert LoopAlgorithm's ``AlgorithmInput`` JSON (dict or parsed) to a PyLoopKit ``update()``
    input dictionary.

    Dates become aware UTC datetimes; basal doses become ``TempBasal`` doses (rate = volume /
    duration, ``dose_delivered_units`` = volume) and boluses ``Bolus``; absolute timelines become
    daily schedules read in UTC (see :func:`_daily_lists`); absorption times become minutes
    (default 180); settings map to their ``settings_dictionary`` keys (``model`` from the
    recommendation insulin type and ``defaultRapidActingModel``, ``max_active_insulin`` = maxBolus x
    multiplier, ``include_positive_velocity_and_rc_in_bolus`` = ``includePositiveVelocityAndRC``, ...).

    Raises
    ------
    InvalidInputError
        For malformed input, a timeline that is not the same every day, or doses whose insulin
        curve differs from the recommendation insulin type's (``update()`` has one model).
    """
    inp = algorithm_input if isinstance(algorithm_input, AlgorithmInput) else parse_algorithm_input(algorithm_input)
    d = inp.doses
    hours = (d.end_s - d.start_s) / 3600.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(hours > 0, d.volume_u / np.where(hours > 0, hours, 1.0), 0.0)
    preset = inp.model_preset(inp.recommendation_insulin_type)
    other = [i for i, t in enumerate(d.insulin_type) if inp.model_preset(t) != preset]
    if other:
        raise InvalidInputError([Problem("doses.insulinType", i, d.insulin_type[i], f"update() has one insulin model; "
                                         f"this dose's curve differs from the recommendation's ({preset})")
                                 for i in other])
    model = PRESETS[preset]
    basal_t, basal_v = _daily_lists(inp.basal, "basal")
    isf_t, isf_v = _daily_lists(inp.sensitivity, "sensitivity")
    cr_t, cr_v = _daily_lists(inp.carb_ratio, "carbRatio")
    target_t, target_v = _daily_lists(inp.target, "target")
    settings = {
        "model": [model.action_duration_min, model.peak_activity_min],
        "insulin_delay": model.delay_min,
        "momentum_data_interval": 15.0,
        "suspend_threshold": inp.suspend_threshold,
        "dynamic_carb_absorption_enabled": True,
        "retrospective_correction_enabled": "retrospection" in inp.effects,
        "retrospective_correction": "integral" if inp.use_integral_retrospective_correction else "standard",
        "carb_absorption_model": inp.carb_absorption_model,
        "dosing_strategy": "automatic_bolus" if inp.recommendation_type == "automaticBolus" else "temp_basal",
        "max_basal_rate": inp.max_basal_rate,
        "max_bolus": inp.max_bolus,
        "max_active_insulin": inp.max_active_insulin,
        "partial_application_factor": inp.automatic_bolus_application_factor,
        "max_physiologic_slope": inp.momentum_velocity_maximum,
        "include_positive_velocity_and_rc_in_bolus": inp.include_positive_velocity_and_rc,
        "default_absorption_times": [120.0, 180.0, 240.0],
    }
    return {
        "time_to_calculate_at": utc_datetime(inp.prediction_start_s),
        "glucose_dates": [utc_datetime(x) for x in inp.glucose.date_s],
        "glucose_values": inp.glucose.value_mgdl.tolist(),
        "dose_types": ["TempBasal" if b else "Bolus" for b in d.is_basal],
        "dose_start_times": [utc_datetime(x) for x in d.start_s],
        "dose_end_times": [utc_datetime(x) for x in d.end_s],
        "dose_values": np.where(d.is_basal, rate, d.volume_u).tolist(),
        "dose_delivered_units": d.volume_u.tolist(),
        "carb_dates": [utc_datetime(x) for x in inp.carbs.date_s],
        "carb_values": inp.carbs.grams.tolist(),
        "carb_absorption_times": [None if np.isnan(t) else t / 60.0 for t in inp.carbs.absorption_s],
        "basal_rate_start_times": basal_t, "basal_rate_values": basal_v[:, 0].tolist(),
        "sensitivity_ratio_start_times": isf_t, "sensitivity_ratio_values": isf_v[:, 0].tolist(),
        "carb_ratio_start_times": cr_t, "carb_ratio_values": cr_v[:, 0].tolist(),
        "target_range_start_times": target_t,
        "target_range_minimum_values": target_v[:, 0].tolist(),
        "target_range_maximum_values": target_v[:, 1].tolist(),
        "settings_dictionary": settings,
    }
