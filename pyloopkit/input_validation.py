"""Validation of PyLoopKit's input dictionary: impossible input is an error, unusual settings a warning.

:func:`validate_input` checks the whole dictionary before anything is computed and
raises ONE :class:`~pyloopkit.errors.InvalidInputError` listing every problem found
(field, index, value, reason): unequal list lengths, unparseable, unsorted or
duplicate timestamps where order matters, NaN/inf, negative values, naive and aware
datetimes mixed, unknown dose types, impossible insulin models, schedules that leave
time uncovered, settings of the wrong type or range, a ``time_to_calculate_at``
before the last glucose. Values that are possible but outside the ranges Loop's
therapy-settings guardrails allow or recommend (LoopKit ``Guardrail+Settings.swift``)
come back as warning strings, as does glucose too old to dose on.

Dates may be datetimes or ISO strings; glucose quantities may be declared in mmol/L
(``glucose_units``, ``sensitivity_ratio_value_units``, ``target_range_value_units``)
and are compared with the guardrails in mg/dL (:func:`convert_glucose_units`). The suspend threshold is in
``settings_dictionary.suspend_threshold_units`` when given, else in ``glucose_units``.
"""
from __future__ import annotations

import datetime as _dt
import functools
import itertools
import math
import operator
from typing import Any

import numpy as np

from .date import (MIXED_ZONES, SECONDS_PER_DAY, common_zone, parse_datetime, parse_time_of_day, same_zone_seconds,
                   to_second, to_seconds, zone_key)
from .dose import DoseType, type_codes
from .errors import Problem, raise_if
from .pump_rounding import PUMP_ROUNDING


MMOL_TO_MGDL = 18.01559
"""mg/dL per mmol/L (LoopKit's conversion factor)."""

STALE_GLUCOSE_MIN = 15.0
"""Loop refuses to dose when the last glucose is this old (LoopAlgorithm ``inputDataRecencyInterval``)."""

# LoopKit Guardrail+Settings.swift: (absolute low, absolute high, recommended low, recommended high)
GUARDRAILS = {
    "suspend_threshold": (67.0, 110.0, 74.0, 80.0, "mg/dL"),
    "correction_range": (87.0, 180.0, 100.0, 115.0, "mg/dL"),
    "insulin_sensitivity": (10.0, 500.0, 16.0, 399.0, "mg/dL/U"),
    "carb_ratio": (2.0, 150.0, 4.0, 28.0, "g/U"),
    "basal_rate": (0.05, 30.0, 0.05, 30.0, "U/h"),
}
MAX_BOLUS_ABSOLUTE_U = 30.0
MAX_BOLUS_WARNING_U = 20.0
MAX_BASAL_CARB_RATIO_NUMERATOR = 70.0
"""Loop's absolute maximum basal rate is 70 / lowest carb ratio (U/h)."""
MAX_BASAL_RECOMMENDED_SCALE = (2.1, 6.4)
"""Loop recommends a maximum basal rate between these multiples of the highest scheduled basal rate."""

GLUCOSE_LIMITS_MGDL = (20.0, 600.0)
"""Glucose outside this range (mg/dL, after unit conversion) is impossible input: an error. It is the
reading range of blood glucose meters; a value outside it is a unit mix-up or a corrupt record."""
CGM_RANGE_MGDL = (40.0, 400.0)
"""The range CGMs report (Dexcom 40-400; readings at the edges are clipped sensor values): glucose
outside it but inside :data:`GLUCOSE_LIMITS_MGDL` gives a warning."""
SUSPEND_THRESHOLD_LIMITS_MGDL = (30.0, 300.0)
"""A suspend threshold outside this range (mg/dL, after unit conversion) is an error: the values a
unit mix-up produces (4.2 read as mg/dL, 70 read as mmol/L = 1261 mg/dL) are far outside it."""
WALSH_MAX_DIA_H = 24.0
"""A Walsh DIA above this many hours is an error (it looks like minutes)."""
EXPONENTIAL_MIN_DIA_MIN = 30.0
"""An exponential-model DIA below this many minutes is an error (it looks like hours)."""

END_OF_DAY_TOLERANCE_S = 60.0
"""A schedule item ending at 23:59 is taken to run to midnight (PyLoopKit's own tests write 23:59)."""

REQUIRED_KEYS = (
    "glucose_dates", "glucose_values",
    "sensitivity_ratio_start_times", "sensitivity_ratio_values",
    "carb_ratio_start_times", "carb_ratio_values",
    "basal_rate_start_times", "basal_rate_values",
    "target_range_start_times", "target_range_minimum_values", "target_range_maximum_values",
)

GROUPS = (
    ("glucose_dates", "glucose_values"),
    ("dose_types", "dose_start_times", "dose_end_times", "dose_values", "dose_delivered_units"),
    ("carb_dates", "carb_values", "carb_absorption_times"),
    ("sensitivity_ratio_start_times", "sensitivity_ratio_end_times", "sensitivity_ratio_values"),
    ("carb_ratio_start_times", "carb_ratio_values"),
    ("basal_rate_start_times", "basal_rate_values", "basal_rate_minutes"),
    ("target_range_start_times", "target_range_end_times", "target_range_minimum_values",
     "target_range_maximum_values"),
    ("momentum_effect_dates", "momentum_effect_values"),
    ("now_to_dia_insulin_effect_dates", "now_to_dia_insulin_effect_values"),
    ("carb_effect_dates", "carb_effect_values"),
    ("counteraction_starts", "counteraction_ends", "counteraction_values"),
)
"""Index-matched lists: every present list of a group must have the same length."""
OPTIONAL_IN_GROUP = ("dose_delivered_units", "sensitivity_ratio_end_times", "basal_rate_minutes",
                     "target_range_end_times")
"""Lists a group may omit; every other list of a group is required as soon as one of the group is given."""

EFFECT_LISTS = (
    ("momentum_effect_dates", "momentum_effect_values"),
    ("now_to_dia_insulin_effect_dates", "now_to_dia_insulin_effect_values"),
    ("carb_effect_dates", "carb_effect_values"),
)

# setting: (lower bound, lower bound allowed, upper bound (allowed) or None, None allowed: None takes the default).
# The plausible ranges of docs/update.md: outside them a value is an error, not a guess.
NUMERIC_SETTINGS = {
    "momentum_data_interval": (5.0, True, 60.0, True),
    "suspend_threshold": (0.0, True, None, True),  # and SUSPEND_THRESHOLD_LIMITS_MGDL after unit conversion
    "retrospective_correction_integration_interval": (5.0, True, 180.0, True),
    "recency_interval": (1.0, True, 60.0, True),
    "retrospective_correction_grouping_interval": (5.0, True, 180.0, True),
    "max_basal_rate": (0.0, True, 70.0, True),
    "max_bolus": (0.0, True, 50.0, True),
    "insulin_delay": (0.0, True, 60.0, True),
    "carb_delay": (0.0, True, 120.0, True),
    "rate_rounder": (0.0, False, 1.0, True),
    "bolus_rounder": (0.0, False, 1.0, True),
    "partial_application_factor": (0.0, True, 1.0, True),
    "max_physiologic_slope": (0.0, False, 20.0, True),
    "max_active_insulin": (0.0, True, 100.0, True),
    "gradual_transitions_threshold": (0.0, False, 400.0, True),
}
MAX_ABSORPTION_TIME_MIN = 1440.0
"""Longest carb absorption time accepted (minutes): default absorption times and carb entries."""
REQUIRED_SETTINGS = ("max_basal_rate", "max_bolus")
"""Settings without a default: Loop will not dose without its limits."""
BOOLEAN_SETTINGS = ("dynamic_carb_absorption_enabled", "retrospective_correction_enabled",
                    "include_positive_velocity_and_rc_in_bolus", "use_mid_absorption_isf",
                    "use_glucose_based_application_factor")
CHOICE_SETTINGS = {
    "retrospective_correction": ("standard", "integral"),
    "carb_absorption_model": ("parabolic", "linear", "piecewise_linear", "adaptive"),
    "dosing_strategy": ("temp_basal", "automatic_bolus"),
    "rounding": ("nearest", "down"),
    "pump_rounding": tuple(PUMP_ROUNDING),
}
UNIT_SETTINGS = ("suspend_threshold_units",)
"""Settings naming a glucose unit (mg/dL or mmol/L)."""


# ------------------------------------------------------------------ small helpers

def _indices(mask: np.ndarray) -> np.ndarray:
    """Indices where the 1-D ``mask`` is true (``np.flatnonzero`` without its two wrapper calls)."""
    return mask.nonzero()[0]


def _is_number(v) -> bool:
    """A real number (not a bool) that converts to a float (huge ints do not)."""
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, (bool, np.bool_)):
        return False
    try:
        float(v)
    except OverflowError:
        return False
    return True


def _unit_factor(units, field: str, problems: list[Problem]) -> float:
    """1 for mg/dL (or missing), 18.01559 for mmol/L; anything else is a problem."""
    if units is None:
        return 1.0
    key = str(units).strip().lower().replace(" ", "")
    if key.startswith("mg/dl"):
        return 1.0
    if key.startswith("mmol/l") or key.startswith("mmol"):
        return MMOL_TO_MGDL
    problems.append(Problem(field, None, units, "unknown glucose unit (expected mg/dL or mmol/L)"))
    return 1.0


def _present(d: dict, key: str) -> bool:
    return d.get(key) is not None


def _list(d: dict, key: str) -> list:
    v = d.get(key)
    return list(v) if _is_list(v) else []


_FAST_NUMBER_TYPES = {float, int, np.float64, np.int64}


def _numbers(d: dict, key: str, problems: list[Problem], *, allow_none: bool = False) -> np.ndarray:
    """Float array of a numeric list (NaN where None is allowed); problems for non-numbers, NaN, inf."""
    values = _list(d, key)
    kinds = set(map(type, values))
    numbers = kinds - {type(None)} if allow_none else kinds
    if numbers <= _FAST_NUMBER_TYPES and (int not in numbers or all(abs(v) < 1e300 for v in values
                                                                    if type(v) is int)):
        if not numbers:  # empty, or None (allowed) throughout
            return np.full(len(values), np.nan)
        if numbers == kinds:
            out = np.array(values, dtype=float)
            bad = ~np.isfinite(out)
        else:
            out = np.array([np.nan if v is None else v for v in values], dtype=float)
            bad = ~np.isfinite(out) & ~np.fromiter(map(operator.is_, values, itertools.repeat(None)), bool,
                                                   len(values))
        bad = _indices(bad)
        if bad.size:
            problems += [Problem(key, int(i), values[i], "not finite") for i in bad]
            out[bad] = np.nan
        return out
    out = []
    for i, v in enumerate(values):
        if v is None and allow_none:
            out.append(np.nan)
        elif not _is_number(v):
            problems.append(Problem(key, i, v, "not a number"))
            out.append(np.nan)
        elif not math.isfinite(float(v)):
            problems.append(Problem(key, i, v, "not finite"))
            out.append(np.nan)
        else:
            out.append(float(v))
    return np.array(out, dtype=float)


def _bounded(key: str, values: np.ndarray, problems: list[Problem], *, low: float = 0.0,
             strict: bool = False) -> None:
    """Problems for finite values below ``low`` (or equal when ``strict``)."""
    bad = values <= low if strict else values < low
    for i in _indices(bad & np.isfinite(values)):
        problems.append(Problem(key, int(i), float(values[i]), f"must be {'>' if strict else '>='} {low:g}"))


class _DateCollector:
    """Parses dates and records which are timezone-aware, to report naive/aware mixing once."""

    def __init__(self, problems: list[Problem], seconds: dict | None = None):
        self.problems = problems
        self.first: tuple[str, int | None, Any, bool] | None = None
        self.mixed = False
        self.seconds = {} if seconds is None else seconds

    def one(self, key: str, index: int | None, value) -> float:
        try:
            parsed = parse_datetime(value)
        except (TypeError, ValueError, OverflowError) as exc:
            self.problems.append(Problem(key, index, value, f"not a date ({exc})"))
            return np.nan
        aware = parsed.tzinfo is not None and parsed.utcoffset() is not None
        self._note(key, index, value, aware)
        return to_second(parsed)

    def _note(self, key: str, index: int | None, value, aware: bool) -> None:
        if self.first is None:
            self.first = (key, index, value, aware)
        elif aware != self.first[3] and not self.mixed:
            self.mixed = True
            where = self.first[0] if self.first[1] is None else f"{self.first[0]}[{self.first[1]}]"
            kind = "aware" if self.first[3] else "naive"
            self.problems.append(Problem(key, index, value,
                                         f"naive and aware datetimes mixed (first date {where} is {kind})"))

    def many(self, d: dict, key: str) -> np.ndarray:
        values = _list(d, key)
        tz = common_zone(values)
        self.seconds[zone_key(key)] = tz
        if tz is not MIXED_ZONES:
            self._note(key, 0, values[0], tz is not None and values[0].utcoffset() is not None)
            out = same_zone_seconds(values, tz)
        elif values and all(type(v) is _dt.datetime for v in values):
            out = self._datetimes(key, values)
        else:
            out = np.array([self.one(key, i, v) for i, v in enumerate(values)], dtype=float)
        self.seconds[key] = out
        return out

    def _datetimes(self, key: str, values: list) -> np.ndarray:
        """Datetimes in several zones: note where naive and aware ones mix."""
        aware = [v.tzinfo is not None and v.utcoffset() is not None for v in values]
        self._note(key, 0, values[0], aware[0])
        if not all(a == aware[0] for a in aware):
            i = aware.index(not aware[0])
            self._note(key, i, values[i], aware[i])
        return to_seconds(values)


def _increasing(key: str, seconds: np.ndarray, raw: list, problems: list[Problem], *, strict: bool = True) -> None:
    """Problems where a date is before its predecessor (or equal to it when ``strict``)."""
    step = seconds[1:] - seconds[:-1]
    for i in _indices(step < 0):
        problems.append(Problem(key, int(i) + 1, raw[i + 1], "dates not in increasing order"))
    if strict:
        for i in _indices(step == 0):
            problems.append(Problem(key, int(i) + 1, raw[i + 1], "duplicate timestamp"))


# ------------------------------------------------------------------ parts of the dictionary

def _is_list(v) -> bool:
    return hasattr(v, "__len__") and not isinstance(v, (str, bytes, dict))


def _check_lengths(d: dict, problems: list[Problem]) -> None:
    """Every present list of a group must be a list of the group's common length."""
    for group in GROUPS:
        present = [k for k in group if d.get(k) is not None]
        if not present:
            continue
        problems += [Problem(k, None, d[k], "must be a list") for k in present if not _is_list(d[k])]
        problems += [Problem(k, None, None, f"missing: required with {', '.join(present)}")
                     for k in group if k not in present and k not in OPTIONAL_IN_GROUP]
        lists = [k for k in present if _is_list(d[k])]
        if len({len(d[k]) for k in lists}) > 1:
            lengths = ", ".join(f"{k}: {len(d[k])}" for k in lists)
            problems += [Problem(k, None, len(d[k]), f"list lengths differ ({lengths})")
                         for k in lists[1:] if len(d[k]) != len(d[lists[0]])]


def _check_glucose(d: dict, dates: _DateCollector, factor: float, problems: list[Problem]):
    """Glucose dates (s) and values (mg/dL): increasing dates, at least one reading, every value
    inside :data:`GLUCOSE_LIMITS_MGDL`."""
    seconds = dates.many(d, "glucose_dates")
    _increasing("glucose_dates", seconds, _list(d, "glucose_dates"), problems)
    values = _numbers(d, "glucose_values", problems)
    if _present(d, "glucose_values") and _is_list(d["glucose_values"]) and len(d["glucose_values"]) == 0:
        problems.append(Problem("glucose_values", None, [], "no glucose: at least one reading is needed"))
    mgdl = values * factor
    dates.seconds["glucose_values"] = mgdl
    lo, hi = GLUCOSE_LIMITS_MGDL
    raw = _list(d, "glucose_values")
    unit = "" if factor == 1.0 else f" ({d.get('glucose_units')} x {factor:g})"
    for i in _indices(np.isfinite(mgdl) & ((mgdl < lo) | (mgdl > hi))):
        problems.append(Problem("glucose_values", int(i), raw[i],
                                f"{mgdl[i]:g} mg/dL{unit} is not a possible glucose (plausible {lo:g}-{hi:g} "
                                "mg/dL; check glucose_units)"))
    return seconds, mgdl


def _glucose_edge_warnings(mgdl: np.ndarray) -> list[str]:
    """One warning when readings lie outside the range CGMs report (:data:`CGM_RANGE_MGDL`)."""
    lo, hi = CGM_RANGE_MGDL
    outside = _indices((mgdl < lo) | (mgdl > hi))
    if outside.size == 0:
        return []
    i = int(outside[0])
    return [f"glucose_values: {outside.size} reading(s) outside the {lo:g}-{hi:g} mg/dL a CGM reports "
            f"(first glucose_values[{i}] = {mgdl[i]:g} mg/dL): sensor limits, the true value may be beyond"]


def _is_dose_type(value) -> bool:
    try:
        DoseType.parse(value)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _cached_dose_type(kind: type, value) -> bool:
    """:func:`_is_dose_type` memoised on (type, value): a dose list repeats a handful of names."""
    return _is_dose_type(value)


def _type_codes(types: list) -> np.ndarray:
    """The dose type codes (int8) of ``types``: :func:`~pyloopkit.dose.type_codes`, or in one pass when
    every item is a :class:`DoseType` (an ``int`` whose value is its code)."""
    if list(map(type, types)).count(DoseType) == len(types):
        return np.fromiter(types, np.int8, len(types))
    return np.array(type_codes(types), dtype=np.int8)


def _shared(dates: _DateCollector, key: str, values: np.ndarray) -> np.ndarray:
    """``values`` (the float array of the list ``key``, NaN for None), also put in ``seconds_out``."""
    dates.seconds[key] = values
    return values


def _check_doses(d: dict, dates: _DateCollector, problems: list[Problem]) -> None:
    types = _list(d, "dose_types")
    try:
        codes = _type_codes(types)
        dates.seconds["dose_types"] = codes
    except (ValueError, TypeError):
        for i, t in enumerate(types):
            if not (_cached_dose_type(type(t), t) if isinstance(t, (str, int)) else _is_dose_type(t)):
                problems.append(Problem("dose_types", i, t, "unknown dose type"))
    else:
        for i in _indices(codes == int(DoseType.MEAL)):
            problems.append(Problem("dose_types", int(i), types[i],
                                    "a meal is not an insulin dose: pass it in carb_dates/carb_values"))
    start = dates.many(d, "dose_start_times")
    end = dates.many(d, "dose_end_times")
    n = min(start.size, end.size)
    ends = _list(d, "dose_end_times")
    for i in _indices(end[:n] < start[:n]):
        problems.append(Problem("dose_end_times", int(i), ends[i], "ends before the dose starts"))
    _bounded("dose_values", _shared(dates, "dose_values", _numbers(d, "dose_values", problems)), problems)
    delivered = _numbers(d, "dose_delivered_units", problems, allow_none=True)
    if _present(d, "dose_delivered_units"):
        _shared(dates, "dose_delivered_units", delivered)
    _bounded("dose_delivered_units", delivered, problems)


def _check_carbs(d: dict, dates: _DateCollector, problems: list[Problem]) -> None:
    dates.many(d, "carb_dates")
    _bounded("carb_values", _shared(dates, "carb_values", _numbers(d, "carb_values", problems)), problems)
    absorption = _numbers(d, "carb_absorption_times", problems, allow_none=True)
    if _present(d, "carb_absorption_times"):
        _shared(dates, "carb_absorption_times", absorption)
    _bounded("carb_absorption_times", absorption, problems, strict=True)
    for i in _indices(absorption > MAX_ABSORPTION_TIME_MIN):
        problems.append(Problem("carb_absorption_times", int(i), float(absorption[i]),
                                f"must be <= {MAX_ABSORPTION_TIME_MIN:g} min"))


def _check_effects(d: dict, dates: _DateCollector, problems: list[Problem]) -> None:
    """Precomputed effects (PyLoopKit's test hook): increasing dates, finite values (absent lists are skipped)."""
    for kd, kv in EFFECT_LISTS:
        if _present(d, kd):
            _increasing(kd, dates.many(d, kd), _list(d, kd), problems)
        if _present(d, kv):
            _numbers(d, kv, problems)
    if not any(_present(d, k) for k in ("counteraction_starts", "counteraction_ends", "counteraction_values")):
        return
    starts = dates.many(d, "counteraction_starts")
    ends = dates.many(d, "counteraction_ends")
    _increasing("counteraction_starts", starts, _list(d, "counteraction_starts"), problems, strict=False)
    n = min(starts.size, ends.size)
    raw = _list(d, "counteraction_ends")
    for i in _indices(ends[:n] < starts[:n]):
        problems.append(Problem("counteraction_ends", int(i), raw[i], "ends before it starts"))
    _numbers(d, "counteraction_values", problems)


def _times_of_day(d: dict, key: str, problems: list[Problem]) -> np.ndarray:
    out = []
    for i, v in enumerate(_list(d, key)):
        try:
            s = parse_time_of_day(v)
        except (TypeError, ValueError, OverflowError) as exc:
            problems.append(Problem(key, i, v, f"not a time of day ({exc})"))
            s = np.nan
        if math.isfinite(s) and not 0.0 <= s < SECONDS_PER_DAY:
            problems.append(Problem(key, i, v, "time of day outside 00:00-24:00"))
            s = np.nan
        out.append(s)
    return np.array(out, dtype=float)


def _check_schedule(d: dict, start_key: str, value_keys: tuple, end_key: str | None,
                    problems: list[Problem]) -> dict:
    """Start times increasing from the day's start, values finite, and (with end times) no gap or overlap.

    Returns the start times (s after midnight) and the values as float arrays, keyed by input key."""
    if not _present(d, start_key):
        return {}
    starts = _times_of_day(d, start_key, problems)
    raw_starts = _list(d, start_key)
    if starts.size == 0:
        problems.append(Problem(start_key, None, raw_starts, "a schedule needs at least one item"))
    for i in _indices(starts[1:] - starts[:-1] <= 0):
        problems.append(Problem(start_key, int(i) + 1, raw_starts[i + 1], "start times must increase"))
    values = {k: _numbers(d, k, problems) for k in value_keys if _present(d, k)}
    if end_key and _present(d, end_key) and starts.size and np.isfinite(starts).all():
        ends = _times_of_day(d, end_key, problems)
        if ends.size == starts.size and np.isfinite(ends).all():
            _check_coverage(end_key, starts, ends, _list(d, end_key), problems)
    return {start_key: starts, **values}


def _check_coverage(end_key: str, starts: np.ndarray, ends: np.ndarray, raw_ends: list,
                    problems: list[Problem]) -> None:
    """Each item must end where the next starts (the last where the first starts, a day later)."""
    starts, ends = starts.tolist(), ends.tolist()
    following = starts[1:] + [starts[0] + SECONDS_PER_DAY]
    end = [e + SECONDS_PER_DAY if e <= s else e for s, e in zip(starts, ends)]
    for i in range(len(end)):
        gap = following[i] - end[i]
        at_midnight = following[i] == SECONDS_PER_DAY
        if gap == 0 or (at_midnight and 0 < gap <= END_OF_DAY_TOLERANCE_S):
            continue
        what = "leaves time uncovered before the next item" if gap > 0 else "overlaps the next item"
        problems.append(Problem(end_key, i, raw_ends[i], what))


def _check_model(model, problems: list[Problem]) -> None:
    values = list(model) if isinstance(model, (list, tuple, np.ndarray)) else None
    if values is None or len(values) not in (1, 2):
        problems.append(Problem("settings_dictionary.model", None, model,
                                "expected [DIA hours] (Walsh) or [DIA minutes, peak minutes] (exponential)"))
        return
    for i, v in enumerate(values):
        if not _is_number(v) or not math.isfinite(float(v)) or float(v) <= 0:
            problems.append(Problem("settings_dictionary.model", i, v, "must be a finite number > 0"))
            return
    if len(values) == 1 and float(values[0]) > WALSH_MAX_DIA_H:
        problems.append(Problem("settings_dictionary.model", 0, values[0],
                                f"a Walsh DIA is in hours (<= {WALSH_MAX_DIA_H:g}); minutes need [DIA, peak]"))
    if len(values) == 2 and float(values[0]) < EXPONENTIAL_MIN_DIA_MIN:
        problems.append(Problem("settings_dictionary.model", 0, values[0],
                                f"the exponential model's DIA is in minutes (>= {EXPONENTIAL_MIN_DIA_MIN:g})"))
    if len(values) == 2 and float(values[1]) >= float(values[0]) / 2.0:
        problems.append(Problem("settings_dictionary.model", 1, values[1],
                                f"peak must be below half the action duration ({float(values[0]) / 2.0:g} min): "
                                "the exponential curve is undefined otherwise"))


def _check_settings(settings, problems: list[Problem]) -> dict:
    if settings is None:
        problems.append(Problem("settings_dictionary", None, None, "missing"))
        return {}
    if not isinstance(settings, dict):
        problems.append(Problem("settings_dictionary", None, settings, "must be a dict"))
        return {}
    for key in REQUIRED_SETTINGS:
        if settings.get(key) is None:
            problems.append(Problem(f"settings_dictionary.{key}", None, settings.get(key),
                                    "required: no recommendation may exceed it"))
    for key, (low, low_ok, high, none_ok) in NUMERIC_SETTINGS.items():
        if key not in settings or key in REQUIRED_SETTINGS and settings[key] is None:
            continue
        v = settings[key]
        field = f"settings_dictionary.{key}"
        if v is None:
            if not none_ok:
                problems.append(Problem(field, None, v, "must be a number"))
            continue
        if not _is_number(v) or not math.isfinite(float(v)):
            problems.append(Problem(field, None, v, "must be a finite number"))
        elif float(v) < low or (float(v) == low and not low_ok) or (high is not None and float(v) > high):
            lo = f"{'>=' if low_ok else '>'} {low:g}"
            problems.append(Problem(field, None, v, f"must be {lo}" + (f" and <= {high:g}" if high else "")))
    for key in BOOLEAN_SETTINGS:
        if settings.get(key) is not None and not isinstance(settings[key], (bool, np.bool_)):
            problems.append(Problem(f"settings_dictionary.{key}", None, settings[key], "must be True or False"))
    for key, choices in CHOICE_SETTINGS.items():
        v = settings.get(key)
        if v is not None and str(v).strip().lower() not in choices:
            problems.append(Problem(f"settings_dictionary.{key}", None, v, f"must be one of {', '.join(choices)}"))
    absorption = settings.get("default_absorption_times")
    if absorption is not None:
        ok = _is_list(absorption) and len(absorption) == 3 and all(
            _is_number(v) and math.isfinite(float(v)) and 0 < float(v) <= MAX_ABSORPTION_TIME_MIN
            for v in absorption)
        if not ok:
            problems.append(Problem("settings_dictionary.default_absorption_times", None, absorption,
                                    "expected three durations in minutes (fast, medium, slow), each in "
                                    f"(0, {MAX_ABSORPTION_TIME_MIN:g}]"))
    if "model" in settings:
        _check_model(settings["model"], problems)
    for key in UNIT_SETTINGS:
        _unit_factor(settings.get(key), f"settings_dictionary.{key}", problems)
    _check_rounders(settings, problems)
    return settings


def _finite_setting(settings: dict, key: str) -> float | None:
    v = settings.get(key)
    return float(v) if _is_number(v) and math.isfinite(float(v)) else None


def _check_rounders(settings: dict, problems: list[Problem]) -> None:
    """A pump increment above its limit leaves no deliverable non-zero amount: Loop would suspend
    at any glucose (``rate_rounder`` > ``max_basal_rate``) or never bolus."""
    rule = PUMP_ROUNDING.get(str(settings.get("pump_rounding")).strip().lower())
    for rounder, limit, unit, kind in (("rate_rounder", "max_basal_rate", "U/h", "basal"),
                                       ("bolus_rounder", "max_bolus", "U", "bolus")):
        r, m = _finite_setting(settings, rounder), _finite_setting(settings, limit)
        field, value, what = f"settings_dictionary.{rounder}", settings.get(rounder), "larger"
        if r is None and settings.get(rounder) is None and rule is not None:
            r = getattr(rule, kind).smallest
            field, value = "settings_dictionary.pump_rounding", settings["pump_rounding"]
            what = f"its smallest {kind} above 0 ({r:g} {unit}) is larger"
        if r is not None and m is not None and 0 < m < r:
            problems.append(Problem(field, None, value, f"{what} than {limit} ({m:g} {unit}): no non-zero "
                                    "amount could be delivered"))


def suspend_threshold_factor(input_dict: dict) -> float:
    """mg/dL per unit of ``settings_dictionary.suspend_threshold``: its ``suspend_threshold_units`` when
    given, else ``glucose_units`` (mg/dL when neither is given)."""
    settings = input_dict.get("settings_dictionary")
    settings = settings if isinstance(settings, dict) else {}
    problems: list[Problem] = []
    units = settings.get("suspend_threshold_units")
    if units is None:
        return _unit_factor(input_dict.get("glucose_units"), "glucose_units", problems)
    return _unit_factor(units, "settings_dictionary.suspend_threshold_units", problems)


def _check_suspend_threshold(d: dict, settings: dict, problems: list[Problem]) -> None:
    """The suspend threshold in mg/dL must be inside :data:`SUSPEND_THRESHOLD_LIMITS_MGDL`."""
    value = _finite_setting(settings, "suspend_threshold")
    if value is None or value < 0:
        return
    factor = suspend_threshold_factor(d)
    lo, hi = SUSPEND_THRESHOLD_LIMITS_MGDL
    if not lo <= value * factor <= hi:
        unit = "mg/dL" if factor == 1.0 else "mmol/L"
        source = "suspend_threshold_units" if settings.get("suspend_threshold_units") is not None else \
            "glucose_units" if d.get("glucose_units") is not None else "the default unit"
        problems.append(Problem("settings_dictionary.suspend_threshold", None, settings["suspend_threshold"],
                                f"read in {unit} (from {source}) it is {value * factor:g} mg/dL, outside the "
                                f"plausible {lo:g}-{hi:g} mg/dL; set settings_dictionary.suspend_threshold_units"))


def _check_last_temp_basal(d: dict, dates: _DateCollector, problems: list[Problem]) -> None:
    ltb = d.get("last_temporary_basal")
    if ltb is None or (_is_list(ltb) and len(ltb) == 0):
        return
    key = "last_temporary_basal"
    if not _is_list(ltb) or len(ltb) < 3:
        problems.append(Problem(key, None, ltb, "expected [type, start, end, rate]"))
        return
    if not _is_dose_type(ltb[0]):
        problems.append(Problem(key, 0, ltb[0], "unknown dose type"))
    start, end = dates.one(key, 1, ltb[1]), dates.one(key, 2, ltb[2])
    if end < start:
        problems.append(Problem(key, 2, ltb[2], "ends before it starts"))
    if len(ltb) > 3 and ltb[3] is not None:
        rate = ltb[3]
        if not _is_number(rate) or not math.isfinite(float(rate)) or float(rate) < 0:
            problems.append(Problem(key, 3, rate, "rate must be a finite number >= 0"))


# ------------------------------------------------------------------ guardrail warnings

def _guardrail(name: str, field: str, values: np.ndarray, warnings: list[str]) -> None:
    lo, hi, rec_lo, rec_hi, unit = GUARDRAILS[name]
    scalar = values.ndim == 0
    for i, v in enumerate([values.item()] if scalar else values.tolist()):
        if not math.isfinite(v):
            continue
        where = field if scalar else f"{field}[{i}]"
        if v < lo or v > hi:
            warnings.append(f"{where} = {v:g} {unit}: outside the range Loop allows ({lo:g}-{hi:g} {unit})")
        elif v < rec_lo or v > rec_hi:
            warnings.append(f"{where} = {v:g} {unit}: outside the range Loop recommends ({rec_lo:g}-{rec_hi:g} {unit})")


def _guardrail_warnings(settings: dict, schedules: dict, factors: dict) -> list[str]:
    warnings: list[str] = []
    isf = schedules.get("sensitivity_ratio_values")
    if isf is not None:
        _guardrail("insulin_sensitivity", "sensitivity_ratio_values", isf * factors["isf"], warnings)
    cr = schedules.get("carb_ratio_values")
    if cr is not None:
        _guardrail("carb_ratio", "carb_ratio_values", cr, warnings)
    basal = schedules.get("basal_rate_values")
    if basal is not None:
        _guardrail("basal_rate", "basal_rate_values", basal, warnings)
    lows = schedules.get("target_range_minimum_values")
    for key in ("target_range_minimum_values", "target_range_maximum_values"):
        if schedules.get(key) is not None:
            _guardrail("correction_range", key, schedules[key] * factors["target"], warnings)
    suspend = settings.get("suspend_threshold")
    if _is_number(suspend) and math.isfinite(float(suspend)):
        s = float(suspend) * factors["suspend"]
        _guardrail("suspend_threshold", "settings_dictionary.suspend_threshold", np.float64(s), warnings)
        if lows is not None and lows.size and np.isfinite(lows).all() and s > lows.min() * factors["target"]:
            warnings.append(f"settings_dictionary.suspend_threshold = {s:g} mg/dL: above the lowest correction "
                            f"range bound ({lows.min() * factors['target']:g} mg/dL), which Loop does not allow")
    _max_basal_warnings(settings, basal, cr, warnings)
    max_bolus = settings.get("max_bolus")
    if _is_number(max_bolus) and math.isfinite(float(max_bolus)):
        mb = float(max_bolus)
        if mb <= 0 or mb > MAX_BOLUS_ABSOLUTE_U:
            warnings.append(f"settings_dictionary.max_bolus = {mb:g} U: outside the range Loop allows "
                            f"(0-{MAX_BOLUS_ABSOLUTE_U:g} U, above 0)")
        elif mb >= MAX_BOLUS_WARNING_U:
            warnings.append(f"settings_dictionary.max_bolus = {mb:g} U: Loop recommends below "
                            f"{MAX_BOLUS_WARNING_U:g} U")
    return warnings


def _max_basal_warnings(settings: dict, basal, cr, warnings: list[str]) -> None:
    max_basal = settings.get("max_basal_rate")
    if not (_is_number(max_basal) and math.isfinite(float(max_basal))):
        return
    mx = float(max_basal)
    field = "settings_dictionary.max_basal_rate"
    if cr is not None and cr.size and np.isfinite(cr).all() and cr.min() > 0:
        upper = MAX_BASAL_CARB_RATIO_NUMERATOR / float(cr.min())
        if mx > upper:
            warnings.append(f"{field} = {mx:g} U/h: above the {upper:g} U/h Loop allows "
                            f"({MAX_BASAL_CARB_RATIO_NUMERATOR:g} / lowest carb ratio)")
    if basal is not None and basal.size and np.isfinite(basal).all():
        highest = float(basal.max())
        low, high = (f * highest for f in MAX_BASAL_RECOMMENDED_SCALE)
        if mx < highest:
            warnings.append(f"{field} = {mx:g} U/h: below the highest scheduled basal rate ({highest:g} U/h), "
                            "which Loop does not allow")
        elif mx < low or mx > high:
            warnings.append(f"{field} = {mx:g} U/h: outside the range Loop recommends "
                            f"({low:g}-{high:g} U/h, 2.1 to 6.4 x the highest scheduled basal rate)")


def _schedules_in_mgdl(schedules: dict, factors: dict) -> dict:
    """The validated schedule arrays with sensitivities and targets in mg/dL (as ``convert_glucose_units``
    makes them: each value times the unit's factor)."""
    scaled = {"sensitivity_ratio_values": factors["isf"], "target_range_minimum_values": factors["target"],
              "target_range_maximum_values": factors["target"]}
    return {k: v * scaled[k] if k in scaled else v for k, v in schedules.items()}


# ------------------------------------------------------------------ public API

def glucose_is_stale(last_glucose_s: float, at_s: float, max_age_min: float = STALE_GLUCOSE_MIN) -> bool:
    """True when the last glucose (s since the reference date) is ``max_age_min`` or more minutes
    older than ``at_s``: Loop then gives no dosing recommendation (LoopAlgorithm ``glucoseTooOld``)."""
    return bool(at_s - last_glucose_s >= max_age_min * 60.0)


def convert_glucose_units(input_dict: dict) -> dict:
    """A copy of the input dictionary with every glucose quantity in mg/dL.

    Converts (x 18.01559) when declared in mmol/L: ``glucose_values``, the effect lists
    (momentum, insulin, carb; mmol/L) and ``counteraction_values`` (mmol/L/min), and the
    settings' ``suspend_threshold`` per ``suspend_threshold_units`` (else ``glucose_units``);
    ``sensitivity_ratio_values`` per
    ``sensitivity_ratio_value_units``; the target range per ``target_range_value_units``.
    The unit keys are rewritten to mg/dL, so converting twice is harmless.
    """
    problems: list[Problem] = []
    d = dict(input_dict)
    g = _unit_factor(d.get("glucose_units"), "glucose_units", problems)
    isf = _unit_factor(d.get("sensitivity_ratio_value_units"), "sensitivity_ratio_value_units", problems)
    target = _unit_factor(d.get("target_range_value_units"), "target_range_value_units", problems)
    raise_if(problems)

    def scaled(key: str, factor: float) -> None:
        if factor != 1.0 and d.get(key) is not None:
            d[key] = [None if v is None else float(v) * factor for v in d[key]]

    for key in ("glucose_values", "momentum_effect_values", "now_to_dia_insulin_effect_values",
                "carb_effect_values", "counteraction_values"):
        scaled(key, g)
    scaled("sensitivity_ratio_values", isf)
    scaled("target_range_minimum_values", target)
    scaled("target_range_maximum_values", target)
    settings = d.get("settings_dictionary")
    suspend = suspend_threshold_factor(d)
    if isinstance(settings, dict) and _is_number(settings.get("suspend_threshold")) and (
            suspend != 1.0 or settings.get("suspend_threshold_units") is not None):
        d["settings_dictionary"] = {**settings, "suspend_threshold": float(settings["suspend_threshold"]) * suspend,
                                    "suspend_threshold_units": "mg/dL"}
    if g != 1.0:
        d["glucose_units"] = "mg/dL"
    if isf != 1.0:
        d["sensitivity_ratio_value_units"] = "mg/dL/U"
    if target != 1.0:
        d["target_range_value_units"] = "mg/dL"
    return d


def validate_input(input_dict: dict, seconds_out: dict | None = None) -> list[str]:
    """Check a PyLoopKit input dictionary.

    ``seconds_out``, when given, receives what validation converted, so that
    :func:`~pyloopkit.loop_input.parse_input` need not convert it again: each date list as seconds
    since the reference date and its :func:`~pyloopkit.date.common_zone` (under :func:`~pyloopkit.date.zone_key`),
    ``dose_types`` as type codes, the glucose, dose and carb lists as float arrays (NaN for None;
    ``glucose_values`` in mg/dL) and, for valid input, each schedule's start times (s after
    midnight) and values (sensitivities and targets in mg/dL), all keyed by input key.

    Returns
    -------
    list of str
        Warnings: settings outside Loop's guardrails (allowed or recommended ranges), and
        glucose older than 15 minutes at ``time_to_calculate_at`` (no recommendation then).

    Raises
    ------
    InvalidInputError
        Listing every impossible value found, each as ``Problem(field, index, value, reason)``;
        settings are named ``settings_dictionary.<key>``.
    """
    if not isinstance(input_dict, dict):
        raise_if([Problem("input", None, type(input_dict).__name__, "must be a dict")])
    d = input_dict
    problems: list[Problem] = [Problem(k, None, None, "missing") for k in REQUIRED_KEYS if d.get(k) is None]
    factors = {"glucose": _unit_factor(d.get("glucose_units"), "glucose_units", problems),
               "isf": _unit_factor(d.get("sensitivity_ratio_value_units"), "sensitivity_ratio_value_units",
                                   problems),
               "target": _unit_factor(d.get("target_range_value_units"), "target_range_value_units", problems),
               "suspend": suspend_threshold_factor(d)}
    _check_lengths(d, problems)
    dates = _DateCollector(problems, seconds_out)
    glucose_s, glucose_mgdl = _check_glucose(d, dates, factors["glucose"], problems)
    _check_doses(d, dates, problems)
    _check_carbs(d, dates, problems)
    _check_effects(d, dates, problems)
    _check_last_temp_basal(d, dates, problems)
    now_s = dates.one("time_to_calculate_at", None, d["time_to_calculate_at"]) \
        if d.get("time_to_calculate_at") is not None else None

    schedules: dict[str, np.ndarray] = {}
    schedules |= _check_schedule(d, "sensitivity_ratio_start_times", ("sensitivity_ratio_values",),
                                 "sensitivity_ratio_end_times", problems)
    schedules |= _check_schedule(d, "carb_ratio_start_times", ("carb_ratio_values",), None, problems)
    schedules |= _check_schedule(d, "basal_rate_start_times", ("basal_rate_values",), None, problems)
    schedules |= _check_schedule(d, "target_range_start_times",
                                 ("target_range_minimum_values", "target_range_maximum_values"),
                                 "target_range_end_times", problems)
    if _present(d, "basal_rate_minutes"):
        _bounded("basal_rate_minutes", _numbers(d, "basal_rate_minutes", problems), problems)
    for key, strict in (("sensitivity_ratio_values", True), ("carb_ratio_values", True),
                        ("basal_rate_values", False), ("target_range_minimum_values", True)):
        if key in schedules:
            _bounded(key, schedules[key], problems, strict=strict)
    lows, highs = schedules.get("target_range_minimum_values"), schedules.get("target_range_maximum_values")
    if lows is not None and highs is not None and lows.size == highs.size:
        raw = _list(d, "target_range_maximum_values")
        for i in _indices(highs < lows):
            problems.append(Problem("target_range_maximum_values", int(i), raw[i], "below the range minimum"))

    settings = _check_settings(d.get("settings_dictionary"), problems)
    _check_suspend_threshold(d, settings, problems)
    finite_glucose = glucose_s[np.isfinite(glucose_s)]
    if now_s is not None and np.isfinite(now_s) and finite_glucose.size and not dates.mixed \
            and now_s < finite_glucose.max():
        problems.append(Problem("time_to_calculate_at", None, d["time_to_calculate_at"],
                                "before the last glucose date"))
    raise_if(problems)
    if seconds_out is not None:
        seconds_out.update(_schedules_in_mgdl(schedules, factors))

    warnings = _guardrail_warnings(settings, schedules, factors) + _glucose_edge_warnings(glucose_mgdl)
    if finite_glucose.size and now_s is not None and glucose_is_stale(float(finite_glucose.max()), now_s):
        age_min = (now_s - float(finite_glucose.max())) / 60.0
        warnings.append(f"glucose_dates: the last glucose is {age_min:.1f} min old at time_to_calculate_at "
                        f"(>= {STALE_GLUCOSE_MIN:g} min); Loop gives no dosing recommendation on stale data")
    return warnings
