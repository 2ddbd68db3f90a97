"""Loop's DoseMath: temp basal, manual bolus and automatic bolus from a glucose prediction.

Pure functions over the prediction arrays (dates in seconds since the reference
date, glucose in mg/dL). The semantics follow Loop's ``DoseMath.swift`` as Loop
ran it in 2019 (the version Tidepool's PyLoopKit ports), plus the options of
later Loop releases: automatic boluses with a partial application factor, a
maximum-IOB headroom, and the basal-schedule-override flag of ``ifNecessary``.

The algorithm, for a dose delivered at ``at_s``:

1. Only predictions inside ``[at_s, at_s + model.effect_duration]`` count.
2. If any of them is below the suspend threshold the correction is *suspend*.
3. Each prediction gets a target: the suspend threshold for the first half of
   the insulin effect duration, then a linear blend to the middle of the target
   range at the end (Loop's ``targetGlucoseValue``).
4. The units that bring a prediction to its target are
   ``(glucose - target) / ((1 - percent_effect_remaining(t)) * ISF)`` (the
   *effected sensitivity*); the smallest positive value wins.
5. With the minimum and the eventual (last) prediction: both below range gives
   *entirely below range* (negative units computed at the minimum); eventual
   above range gives *above range*; otherwise *in range*.
6. The correction becomes a 30-minute temp basal ``scheduled + units / 0.5 h``
   clamped to ``[0, max basal]`` (to the scheduled rate when the minimum is below
   range), a bolus ``units - pending`` clamped to ``[0, max bolus]``, or an
   automatic bolus ``partial_application_factor * units``.

Rounding is Swift's ``round``: half away from zero, not Python's half to even.

With numba (:mod:`pyloopkit.jit`), the Loop core's dose math (:func:`loop_doses`: the correction,
the temp basal and the automatic bolus; :func:`insulin_correction` with ``validate=False``) runs as
one compiled pass that gives the numpy path's numbers bit for bit; the scalar steps (rounding,
limits, ``ifNecessary``) are compiled helpers that both paths call.

Safety beyond the Swift code (documented deviations, only reachable with
settings Loop's guardrails forbid): a rounded value never exceeds its limit
(it is rounded down to the increment instead), and the temp basal limit is
``min(max basal, scheduled)`` where Swift uses the scheduled rate alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .dose import DoseType
from .errors import Problem, raise_if
from .insulin_math import _curve_spec, _remaining
from .jit import HAVE_NUMBA, jit
from .schedule import DailySchedule, value_at

ULP_OF_ONE = float(np.finfo(float).eps)
"""Swift's ``Double.ulpOfOne``: the tolerance of ``matchesRate`` and the floor of the effected fraction."""


GBAF_MIN_FACTOR, GBAF_MAX_FACTOR = 0.2, 0.8
GBAF_MIN_DELTA_MGDL, GBAF_MAX_GLUCOSE_MGDL = 10.0, 200.0
"""Loop app's ``GlucoseBasedApplicationFactorStrategy`` constants."""

TEMP_BASAL_DURATION_MIN = 30.0
CONTINUATION_INTERVAL_MIN = 11.0
USE_SUSPEND_TARGET_UNTIL_FRACTION = 0.5
"""Fraction of the effect duration during which the target is the suspend threshold."""


@dataclass(frozen=True)
class InsulinCorrection:
    """Loop's ``InsulinCorrection`` for one prediction.

    Attributes
    ----------
    kind : ``"suspend"``, ``"in_range"``, ``"above_range"`` or ``"entirely_below_range"``
    units : U of insulin to correct (0 for suspend and in range, negative when below range)
    min_s, min_mgdl : the minimum prediction considered (for suspend: the first one below the threshold)
    min_target_mgdl : lower target bound at the eventual glucose (above range) or the minimum (below range)
    """

    kind: str
    units: float = 0.0
    min_s: float = float("nan")
    min_mgdl: float = float("nan")
    min_target_mgdl: float = float("nan")

    @property
    def min_below_target(self) -> bool:
        """Above range while the minimum prediction is below the target range (Loop limits dosing then)."""
        return self.kind == "above_range" and self.min_mgdl < self.min_target_mgdl


_SUSPEND, _IN_RANGE, _ABOVE_RANGE, _BELOW_RANGE = range(4)
_KINDS = ("suspend", "in_range", "above_range", "entirely_below_range")
""":class:`InsulinCorrection` kinds by code."""


ROUNDING_MODES = ("nearest", "down")
"""``nearest``: Swift's ``round`` (half away from zero), as Loop's test pump managers and PyLoopKit do;
``down``: the largest supported increment not above the value, as real pump managers do."""

_FLOOR_TOLERANCE = 1e-9
"""Increments per value below which ``down`` still counts a value as on the increment (float noise)."""


def round_to_increment(value: float, increment: float | None, mode: str = "nearest") -> float:
    """Round to a multiple of ``increment`` like Loop's rounders (``k = 1 / increment``):
    ``round(x * k) / k`` with Swift's half-away-from-zero ``round`` (``mode="nearest"``), or
    down to the supported increment (``mode="down"``, magnitude floored). ``None`` or 0 leaves
    the value unchanged."""
    _check_mode(mode)
    if not increment:
        return float(value)
    return float(_rounded(float(value), float(increment), mode == "down"))


def _check_mode(mode: str) -> None:
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding mode must be one of {ROUNDING_MODES}, got {mode!r}")


@jit
def _rounded(value, increment, down):
    """:func:`round_to_increment` of ``value`` to a nonzero ``increment`` (``down``: floored magnitude)."""
    k = 1.0 / increment
    x = value * k
    whole = np.floor(abs(x) + (_FLOOR_TOLERANCE if down else 0.5))
    return np.copysign(whole, x) / k


SUPPORTED_TOLERANCE_U = 1e-9
"""U (or U/h) by which a value may fall short of a supported value and still count as on it (float noise)."""


@jit
def supported_value(values, value, down):
    """``value`` rounded to one of the sorted supported ``values`` (U or U/h): the largest not above
    it, 0 below the smallest (``down``), or the nearest of 0 and ``values``, the lower on a tie."""
    if down:
        i = np.searchsorted(values, value + SUPPORTED_TOLERANCE_U, side="right") - 1
        return values[i] if i >= 0 else 0.0
    best, gap = 0.0, abs(0.0 - value)
    for v in values:
        if abs(v - value) < gap:
            best, gap = v, abs(v - value)
    return best


_NONE, _STEP, _UNIFORM, _TABLE = 0, 1, 2, 3
"""Rounder kinds: none, a float step (``mode``), a pump's uniform step, a pump's table of values."""
_NO_TABLE = np.empty(0)


def _rounder_spec(increment, mode: str) -> tuple:
    """``(kind, step, down, table)`` of an increment (None, a step in U or U/h, or a pump's
    :class:`~pyloopkit.pump_rounding.Increments`) for the compiled rounding helpers."""
    if hasattr(increment, "at_most"):
        table = increment.values
        kind = _UNIFORM if table is None else _TABLE
        return kind, float(increment.step), increment.mode == "down", _NO_TABLE if table is None else table
    _check_mode(mode)
    return (_NONE, 0.0, False, _NO_TABLE) if increment is None else (_STEP, float(increment), mode == "down", _NO_TABLE)


@jit
def _py_min(a, b):
    """Python's ``min(a, b)``: ``b`` only when strictly smaller."""
    return b if b < a else a


@jit
def _py_max(a, b):
    """Python's ``max(a, b)``: ``b`` only when strictly larger."""
    return b if b > a else a


@jit
def _round_once(value, rounder, down):
    """``value`` rounded by a rounder spec (see :func:`_rounder_spec`) in direction ``down``."""
    kind, step, _, table = rounder
    if kind == _TABLE:
        return supported_value(table, value, down)
    return value if kind == _NONE or step == 0.0 else _rounded(value, step, down)


@jit
def _within(value, upper, rounder):
    """:func:`_round_within` of a rounder spec: rounded, never above ``upper`` nor below 0."""
    kind, step, down, _ = rounder
    r = _round_once(value, rounder, down)
    if r > upper:
        if kind == _UNIFORM or kind == _TABLE:
            r = _round_once(upper, rounder, True)
        else:
            k = 1.0 / step
            r = _py_min(np.floor(upper * k) / k, upper)
    return _py_max(r, 0.0)


def _round_within(value: float, increment, upper: float, mode: str = "nearest") -> float:
    """Round ``value`` (already in ``[0, upper]``) to the increment without leaving ``[0, upper]``.
    ``increment`` is a step (U or U/h, rounded with ``mode``), None, or a pump's supported values
    (:class:`pyloopkit.pump_rounding.Increments`, which carries its own direction and rounds down
    to its largest value not above ``upper``)."""
    return float(_within(float(value), float(upper), _rounder_spec(increment, mode)))


def target_glucose_mgdl(fraction_of_effect, suspend_threshold_mgdl, eventual_target_mgdl):
    """Loop's ``targetGlucoseValue``: the suspend threshold until half the effect duration,
    then linear to ``eventual_target_mgdl`` (the middle of the target range) at its end (vectorised)."""
    f = np.asarray(fraction_of_effect, dtype=float)
    slope = (eventual_target_mgdl - suspend_threshold_mgdl) / (1.0 - USE_SUSPEND_TARGET_UNTIL_FRACTION)
    blended = suspend_threshold_mgdl + slope * (f - USE_SUSPEND_TARGET_UNTIL_FRACTION)
    return np.where(f <= USE_SUSPEND_TARGET_UNTIL_FRACTION, suspend_threshold_mgdl,
                    np.where(f >= 1.0, eventual_target_mgdl, blended))


def _check_prediction(pred_dates_s, pred_mgdl, at_s) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(pred_dates_s, dtype=float).ravel()
    g = np.asarray(pred_mgdl, dtype=float).ravel()
    problems = []
    if d.size != g.size:
        problems.append(Problem("pred_mgdl", None, g.size, f"length differs from pred_dates_s ({d.size})"))
        raise_if(problems)
    for name, arr in (("pred_dates_s", d), ("pred_mgdl", g)):
        problems += [Problem(name, int(i), float(arr[i]), "not finite") for i in np.flatnonzero(~np.isfinite(arr))]
    steps = np.flatnonzero(np.diff(d) < 0)
    problems += [Problem("pred_dates_s", int(i) + 1, float(d[i + 1]), "dates must not decrease")
                 for i in steps]
    if not np.isfinite(at_s):
        problems.append(Problem("at_s", None, at_s, "not finite"))
    raise_if(problems)
    return d, g


def _check_settings(required: tuple = (), **values) -> None:
    """Every setting must be a finite number >= 0 (``max_iob_headroom_u`` may be negative);
    None is allowed unless its name is in ``required``."""
    problems = []
    for name, v in values.items():
        if v is None:
            if name in required:
                problems.append(Problem(name, None, v, "required"))
        elif hasattr(v, "at_most"):  # a pump's supported values (pump_rounding.Increments)
            continue
        elif not np.isfinite(v) or (v < 0 and name != "max_iob_headroom_u"):
            problems.append(Problem(name, None, v, "must be a finite number" +
                                    ("" if name == "max_iob_headroom_u" else " >= 0")))
    raise_if(problems)


def _check_value(name: str, value: float, *, positive: bool) -> float:
    """``value`` (a setting, or a schedule's value at ``at_s``) must be finite and > 0 (``positive``) or >= 0."""
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise_if([Problem(name, None, value, f"must be finite and {'>' if positive else '>='} 0")])
    return float(value)


def insulin_correction(pred_dates_s, pred_mgdl, *, at_s: float, target: DailySchedule,
                       suspend_threshold_mgdl: float | None, sensitivity: DailySchedule,
                       model, effected_sensitivity=None, loop_algorithm: bool = False,
                       validate: bool = True) -> InsulinCorrection | None:
    """Loop's ``insulinCorrection``: the least insulin delivered at ``at_s`` that corrects the prediction.

    Parameters
    ----------
    pred_dates_s, pred_mgdl : prediction dates (s since the reference date, non-decreasing; the order
        decides which value is *eventual*, as in Swift) and glucose (mg/dL)
    at_s : delivery time (s)
    target : correction range schedule, values ``(n, 2)`` of (min, max) mg/dL
    suspend_threshold_mgdl : mg/dL; ``None`` uses the lower target bound at ``at_s`` (as Loop does)
    sensitivity : ISF schedule (mg/dL/U), read at ``at_s`` only (Loop 2019)
    model : insulin model with ``effect_duration_min`` and ``percent_effect_remaining(t_min)``
    effected_sensitivity : optional callable ``f(t_min) -> mg/dL/U`` (vectorised over the minutes
        after ``at_s`` of the predictions considered) replacing ``ISF(at_s) x (1 - remaining(t))``,
        e.g. :func:`mid_absorption_effected_sensitivity` (LoopAlgorithm's mid-absorption ISF);
        ``sensitivity`` is then not read. Below range, the units are divided by
        ``max(ulp, f(t_min))`` as LoopAlgorithm does (Loop 2019: ``ISF x max(ulp, 1 - remaining)``).
    loop_algorithm : LoopAlgorithm's ``insulinCorrection`` instead of Loop 2019's ``DoseMath``: the
        predictions considered run through the first one at or after the end of the effect duration
        (Swift: ``if prediction.startDate >= endOfAbsorption { break }`` after using it; Loop 2019
        stops at the last one inside ``[at_s, at_s + duration]``), and every goal blends towards the
        middle of the target range in force at ``at_s`` (Swift: ``correctionRange.closestPrior(to: date)``;
        Loop 2019 reads the range at each prediction's date). Only the goals change: the
        classification still reads the ranges at the minimum and eventual predictions.
    validate : False skips the checks of the prediction, the settings and the target ranges (the Loop
        core's own prediction from inputs validated at the boundary); then, with numba, one compiled
        pass gives the same correction bit for bit when it covers the inputs (Loop 2019, no
        ``effected_sensitivity``; see :func:`_correction_inputs` and :func:`_correction_compiled`)

    Returns
    -------
    InsulinCorrection, or None when no prediction lies within the effect duration.

    Deviation from Swift, for safety: a first prediction dated before ``at_s`` (the current
    glucose) below the suspend threshold also gives *suspend*.
    """
    if HAVE_NUMBA and not validate and effected_sensitivity is None and not loop_algorithm:
        inputs = _correction_inputs(pred_dates_s, pred_mgdl, at_s, target, suspend_threshold_mgdl, sensitivity, model)
        out = (False,) if inputs is None else _correction_compiled(*inputs)
        if out[0]:
            return _correction_of(*out[1:])
    dates, glucose = _check_prediction(pred_dates_s, pred_mgdl, at_s) if validate else (pred_dates_s, pred_mgdl)
    if suspend_threshold_mgdl is None:
        suspend_threshold_mgdl = float(target.at(at_s)[0])
    if validate:
        _check_settings(suspend_threshold_mgdl=suspend_threshold_mgdl)
        _check_value("model.effect_duration_min", float(model.effect_duration_min), positive=True)
    duration_s = float(model.effect_duration_min) * 60.0
    t_s = dates - at_s
    inside = (t_s >= 0) & (t_s <= duration_s)
    if loop_algorithm:
        past_end = np.flatnonzero(t_s >= duration_s)
        inside[past_end[:1]] = True
    if not inside.any():
        return None
    d, g, t = dates[inside], glucose[inside], t_s[inside]

    if dates[0] < at_s and glucose[0] < suspend_threshold_mgdl:
        # The prediction starts at the current glucose, dated before the delivery time; Swift skips
        # it, which can recommend insulin while glucose is below the suspend threshold. Not here.
        return InsulinCorrection("suspend", 0.0, float(dates[0]), float(glucose[0]))
    below = g < suspend_threshold_mgdl
    if below.any():
        k = int(np.argmax(below))
        return InsulinCorrection("suspend", 0.0, float(d[k]), float(g[k]))

    # All the insulin has acted by the end of the effect duration: a prediction after it (LoopAlgorithm's
    # window) sees the effect at the end, without reading sensitivity beyond it.
    t_effect_min = np.minimum(t, duration_s) / 60.0
    if effected_sensitivity is None:
        isf = _check_value("sensitivity", float(sensitivity.at(at_s)), positive=True)
        effected = (1.0 - np.asarray(model.percent_effect_remaining(t_effect_min), dtype=float)) * isf
        smallest = isf * ULP_OF_ONE
    else:
        effected = np.asarray(effected_sensitivity(t_effect_min), dtype=float).reshape(t.shape)
        # Loop's own Walsh curves for DIA <= 3.3 h leave slightly more than 1 near t = 0 (a tiny negative
        # effect): as on the single-ISF path, no correction is computed where the effect is not positive.
        raise_if([Problem("effected_sensitivity", int(i), float(effected[i]), "must be finite")
                  for i in np.flatnonzero(~np.isfinite(effected))])
        smallest = ULP_OF_ONE
    ranges = np.asarray(target.at(d), dtype=float).reshape(d.size, 2)
    if validate:
        bad = np.flatnonzero(~np.isfinite(ranges).all(axis=1) | (ranges[:, 1] < ranges[:, 0]))
        raise_if([Problem("target", int(i), ranges[i].tolist(), "target range at this prediction is not a "
                          "finite (min, max) with min <= max") for i in bad])
    mid = ranges.mean(axis=1)
    goal_mid = float(np.mean(target.at(at_s))) if loop_algorithm else mid
    goal = target_glucose_mgdl(t / duration_s, suspend_threshold_mgdl, goal_mid)
    with np.errstate(divide="ignore", invalid="ignore"):
        units = np.where(effected > 0, (g - goal) / effected, np.nan)
    positive = units > 0
    i_min, i_end = int(np.argmin(g)), d.size - 1

    if g[i_min] < ranges[i_min, 0] and g[i_end] < ranges[i_end, 0]:
        below_units = (g[i_min] - mid[i_min]) / max(smallest, float(effected[i_min]))
        return InsulinCorrection("entirely_below_range", float(below_units), float(d[i_min]),
                                 float(g[i_min]), float(ranges[i_min, 0]))
    if g[i_end] > ranges[i_end, 1] and positive.any():
        least = float(np.min(units[positive]))
        return InsulinCorrection("above_range", least, float(d[i_min]), float(g[i_min]), float(ranges[i_end, 0]))
    return InsulinCorrection("in_range", 0.0, float(d[i_min]), float(g[i_min]))


_FLOAT64 = np.dtype(np.float64)


def _schedule_spec(schedule, columns: int) -> tuple | None:
    """``(start_s, values, offset_s)`` of a :class:`DailySchedule` of float values with ``columns``
    values per item (0: scalar values) for the compiled pass, else None."""
    if type(schedule) is not DailySchedule:
        return None
    values = schedule.values
    shape_ok = values.ndim == 1 if columns == 0 else (values.ndim == 2 and values.shape[1] == columns)
    if not shape_ok or values.dtype != _FLOAT64 or schedule.start_s.dtype != _FLOAT64:
        return None
    return schedule.start_s, values, float(schedule.offset_s)


_NOT_COVERED = (False, _IN_RANGE, 0.0, np.nan, np.nan, np.nan)


@jit
def _window(dates, glucose, at_s, duration_s):
    """``[lo, hi)``: the predictions inside ``[at_s, at_s + duration_s]``; ``(-1, -1)`` when a value
    is not finite or the dates decrease."""
    lo, hi = dates.size, 0
    for i in range(dates.size):
        if not (np.isfinite(dates[i]) and np.isfinite(glucose[i])) or (i > 0 and dates[i] < dates[i - 1]):
            return -1, -1
        t = dates[i] - at_s
        if t >= 0 and lo == dates.size:
            lo = i
        if t <= duration_s:
            hi = i + 1
    return lo, hi


@jit
def _correction_compiled(dates, glucose, curve, at_s, duration_s, suspend, target, sensitivity):
    """:func:`insulin_correction` (Loop 2019, one ISF, ``validate=False``), ``curve`` the model's
    remaining fraction (see :func:`_curve`): ``(covered, kind code, units, min_s, min_mgdl,
    min_target_mgdl)``. Not covered (the numpy path decides): no prediction within the effect
    duration, a value that is not finite, decreasing dates, a target range that is not a finite
    ``(min, max)`` with ``min <= max``, an ISF that is not finite and positive, a suspend threshold
    that is not finite."""
    if np.isnan(suspend):  # None: the lower target bound at at_s
        suspend = value_at(*target, at_s)[0]
    lo, hi = _window(dates, glucose, at_s, duration_s)
    if lo >= hi or not np.isfinite(suspend):
        return _NOT_COVERED
    if dates[0] < at_s and glucose[0] < suspend:
        return True, _SUSPEND, 0.0, dates[0], glucose[0], np.nan
    for i in range(lo, hi):
        if glucose[i] < suspend:
            return True, _SUSPEND, 0.0, dates[i], glucose[i], np.nan
    isf = value_at(*sensitivity, at_s)
    if not (np.isfinite(isf) and isf > 0):
        return _NOT_COVERED
    i_min, least = lo, np.inf
    for i in range(lo, hi):
        row = value_at(*target, dates[i])
        low, high = row[0], row[1]
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            return _NOT_COVERED
        effected = (1.0 - _remaining_at(curve, i, dates[i] - at_s, duration_s)) * isf
        if effected > 0:
            units = (glucose[i] - _goal((dates[i] - at_s) / duration_s, suspend, (low + high) / 2.0)) / effected
            if units > 0:
                least = min(least, units)
        if glucose[i] < glucose[i_min]:
            i_min = i
    effected_min = (1.0 - _remaining_at(curve, i_min, dates[i_min] - at_s, duration_s)) * isf
    return _classified(dates, glucose, i_min, hi - 1, least, effected_min, isf, target)


def _curve(model, dates: np.ndarray, at_s: float, duration_s: float) -> tuple:
    """The model's remaining fraction for the compiled pass: ``(kind, parameters)`` of the
    closed-form curves compiled code evaluates exactly like the model (Walsh's polynomial, the
    exponential curve with :func:`pyloopkit.libm.exp`), else
    ``(-1, remaining)`` with the model's own values at ``min(dates - at_s, duration_s) / 60``
    (elementwise as in :func:`insulin_correction`); dates before ``at_s``, outside the window the
    pass reads, are asked at 0 min, so the model is never asked for a negative time."""
    spec = _curve_spec(model)
    if spec is not None:
        return spec
    t_min = np.clip(dates - at_s, 0.0, duration_s) / 60.0
    return -1, np.asarray(model.percent_effect_remaining(t_min), dtype=float)


@jit
def _remaining_at(curve, i, t_s, duration_s):
    """The remaining fraction, at prediction ``i`` (``t_s`` seconds after the delivery), of the
    effect of insulin delivered at ``at_s``."""
    kind, values = curve
    return values[i] if kind < 0 else _remaining(min(t_s, duration_s) / 60.0, kind, values)


@jit
def _goal(fraction, suspend, eventual):
    """:func:`target_glucose_mgdl` of one fraction of the effect duration."""
    if fraction <= USE_SUSPEND_TARGET_UNTIL_FRACTION:
        return suspend
    if fraction >= 1.0:
        return eventual
    slope = (eventual - suspend) / (1.0 - USE_SUSPEND_TARGET_UNTIL_FRACTION)
    return suspend + slope * (fraction - USE_SUSPEND_TARGET_UNTIL_FRACTION)


@jit
def _classified(dates, glucose, i_min, i_end, least, effected_min, isf, target):
    """The last steps of :func:`insulin_correction` from the minimum and eventual predictions, the
    least positive units (inf: none) and the effected sensitivity at the minimum (mg/dL/U)."""
    at_min, at_end = value_at(*target, dates[i_min]), value_at(*target, dates[i_end])
    low_min, high_min, low_end, high_end = at_min[0], at_min[1], at_end[0], at_end[1]
    if glucose[i_min] < low_min and glucose[i_end] < low_end:
        units = (glucose[i_min] - (low_min + high_min) / 2.0) / _py_max(isf * ULP_OF_ONE, effected_min)
        return True, _BELOW_RANGE, units, dates[i_min], glucose[i_min], low_min
    if glucose[i_end] > high_end and least < np.inf:
        return True, _ABOVE_RANGE, least, dates[i_min], glucose[i_min], low_end
    return True, _IN_RANGE, 0.0, dates[i_min], glucose[i_min], np.nan


def mid_absorption_effected_sensitivity(t_min, *, at_s: float, sensitivity, model) -> np.ndarray:
    """LoopAlgorithm's mid-absorption effected sensitivity (mg/dL/U) of insulin delivered at ``at_s``,
    ``t_min`` minutes later: the ISF in force while each part of it is absorbed,
    ``sum_m ISF_m (remaining(a_m) - remaining(b_m))`` over the schedule items ``m`` met between
    ``at_s`` and ``at_s + t`` (``a_m``, ``b_m``: the item's part of that interval, minutes after
    ``at_s``). With one ISF it is ``ISF x (1 - remaining(t))``. Swift's ``insulinCorrection``
    keeps only the last item's term (its ``reduce`` drops the partial result); every item is
    summed here. Use with :func:`insulin_correction` through ``functools.partial``.

    ``sensitivity`` is a :class:`~pyloopkit.schedule.DailySchedule` or any object with the same
    ``split`` (e.g. an absolute timeline), covering ``[at_s, at_s + max(t)]``.
    """
    t = np.atleast_1d(np.asarray(t_min, dtype=float))
    horizon_s = float(np.max(t, initial=0.0)) * 60.0
    _, seg_start, seg_end, isf = sensitivity.split(np.array([at_s]), np.array([at_s + horizon_s]))
    a = np.clip((seg_start[None, :] - at_s) / 60.0, 0.0, t[:, None])
    b = np.clip((seg_end[None, :] - at_s) / 60.0, 0.0, t[:, None])
    remaining = model.percent_effect_remaining
    return ((remaining(a) - remaining(b)) * np.asarray(isf, dtype=float)[None, :]).sum(axis=1)


def _given_or_computed(correction, pred_dates_s, pred_mgdl, at_s, target, suspend_threshold_mgdl, sensitivity,
                       model, effected_sensitivity) -> InsulinCorrection | None:
    """``correction`` when the caller already computed it, else :func:`insulin_correction` of the prediction."""
    if correction is not None:
        return correction
    return insulin_correction(pred_dates_s, pred_mgdl, at_s=at_s, target=target,
                              suspend_threshold_mgdl=suspend_threshold_mgdl, sensitivity=sensitivity, model=model,
                              effected_sensitivity=effected_sensitivity)


def _correction_and_scheduled(correction, pred_dates_s, pred_mgdl, at_s, target, suspend_threshold_mgdl,
                              sensitivity, model, effected_sensitivity, basal, duration_min):
    """The correction (given or computed) and the scheduled basal rate at ``at_s`` (U/h) for a temp
    basal of ``duration_min``; None when no prediction lies within the effect duration."""
    correction = _given_or_computed(correction, pred_dates_s, pred_mgdl, at_s, target, suspend_threshold_mgdl,
                                    sensitivity, model, effected_sensitivity)
    if correction is None:
        return None
    _check_value("duration_min", duration_min, positive=True)
    return correction, _check_value("basal", float(basal.at(at_s)), positive=False)


def temp_basal_rate_for(correction: InsulinCorrection, scheduled_u_per_h: float, max_u_per_h: float,
                        duration_min: float, rate_rounder: float | None = None, rounding: str = "nearest") -> float:
    """Loop's ``InsulinCorrection.asTempBasal``: the rate (U/h) that delivers the correction over
    ``duration_min`` on top of the scheduled rate (without it for *suspend*), clamped to
    ``[0, max_u_per_h]`` and rounded to ``rate_rounder`` U/h (None: unrounded) without leaving that
    range (see :func:`round_to_increment` for ``rounding``)."""
    return float(_temp_rate(float(correction.units), correction.kind == "suspend", float(scheduled_u_per_h),
                            float(max_u_per_h), float(duration_min), _rounder_spec(rate_rounder, rounding)))


@jit
def _temp_rate(units, suspend, scheduled, max_rate, duration_min, rounder):
    """:func:`temp_basal_rate_for` of a correction's ``units`` (U; ``suspend``: its kind is suspend), U/h."""
    rate = units / (duration_min / 60.0)
    if not suspend:
        rate += scheduled
    return _within(_py_min(max_rate, _py_max(0.0, rate)), max_rate, rounder)


_KEEP, _CANCEL, _SET = 0, 1, 2
"""Decisions of :func:`if_necessary`: no change, cancel the running temp basal, set the new rate."""


def if_necessary(rate_u_per_h: float, duration_min: float, *, at_s: float, scheduled_u_per_h: float,
                 last_temp_basal, continuation_interval_min: float = CONTINUATION_INTERVAL_MIN,
                 scheduled_basal_matches_pump: bool = True) -> dict | None:
    """Loop's ``TempBasalRecommendation.ifNecessary``.

    With a temp basal running at ``at_s``: ``None`` when it has the same rate and more than
    ``continuation_interval_min`` left; a cancel (``{"rate": 0, "duration": 0}``) when the new
    rate is the scheduled rate. Without one: ``None`` when the new rate is the scheduled rate.
    Otherwise the recommendation. ``scheduled_basal_matches_pump=False`` (a basal-schedule
    override is active) turns the two scheduled-rate rules off. The last temp basal may be typed
    ``BASAL``: Loop 1.x issue reports label temp basals so, and PyLoopKit accepts both.
    """
    context = _basal_context(scheduled_u_per_h, duration_min, at_s, last_temp_basal, continuation_interval_min,
                             scheduled_basal_matches_pump)
    return _temp_basal_dict(_continuation(float(rate_u_per_h), context), rate_u_per_h, duration_min)


def _basal_context(scheduled_u_per_h, duration_min, at_s, last_temp_basal, continuation_interval_min,
                   scheduled_basal_matches_pump) -> tuple:
    """What :func:`_continuation` reads: ``(scheduled U/h, duration min, at_s, running (see
    :func:`_running_temp`), continuation min, scheduled basal matches the pump)``."""
    return (float(scheduled_u_per_h), float(duration_min), float(at_s), _running_temp(last_temp_basal, at_s),
            float(continuation_interval_min), bool(scheduled_basal_matches_pump))


def _running_temp(last_temp_basal, at_s: float) -> tuple:
    """``(True, end_s, rate U/h)`` of a temp basal (typed ``TEMP_BASAL`` or ``BASAL``) still running at
    ``at_s``, else ``(False, nan, nan)``."""
    if last_temp_basal is not None:
        kind, _start_s, end_s, last_rate = last_temp_basal
        if DoseType.parse(kind) in (DoseType.TEMP_BASAL, DoseType.BASAL) and end_s > at_s:
            return True, float(end_s), float(last_rate)
    return False, np.nan, np.nan


@jit
def _continuation(rate, context):
    """:func:`if_necessary`'s decision for ``rate`` (U/h): ``_KEEP``, ``_CANCEL`` or ``_SET``."""
    scheduled, _, at_s, running, continuation_min, matches_pump = context
    is_running, end_s, last_rate = running
    if is_running:
        if abs(rate - last_rate) < ULP_OF_ONE and end_s - at_s > continuation_min * 60.0:
            return _KEEP
        if abs(rate - scheduled) < ULP_OF_ONE and matches_pump:
            return _CANCEL
    elif abs(rate - scheduled) < ULP_OF_ONE and matches_pump:
        return _KEEP
    return _SET


def _temp_basal_dict(decision: int, rate_u_per_h: float, duration_min: float) -> dict | None:
    """The recommendation of an :func:`if_necessary` decision."""
    if decision == _KEEP:
        return None
    if decision == _CANCEL:
        return {"rate": 0.0, "duration": 0.0}
    return {"rate": float(rate_u_per_h), "duration": float(duration_min)}


@jit
def _headroom_rate_limit(scheduled, headroom, duration_min):
    """Highest rate (U/h) that adds at most the IOB ``headroom`` (U, NaN: no limit) over the temp basal
    (never below the ``scheduled`` rate)."""
    if np.isnan(headroom):
        return np.inf
    return _py_max(0.0, headroom) * (60.0 / duration_min) + scheduled


def _correction_numbers(correction: InsulinCorrection) -> tuple:
    """``(kind code, units, min mg/dL, min target mg/dL)`` of a correction for the compiled helpers."""
    return (_KINDS.index(correction.kind), float(correction.units), float(correction.min_mgdl),
            float(correction.min_target_mgdl))


@jit
def _min_below_target(correction):
    """:attr:`InsulinCorrection.min_below_target` of :func:`_correction_numbers`."""
    kind, _, min_mgdl, min_target = correction
    return kind == _ABOVE_RANGE and min_mgdl < min_target


@jit
def _temp_basal(correction, max_rate, headroom, context, rounder):
    """:func:`recommended_temp_basal` of a correction (see :func:`_correction_numbers`): the
    :func:`_continuation` decision and the rate (U/h)."""
    scheduled, duration_min = context[0], context[1]
    limit = max_rate
    if _min_below_target(correction):
        limit = _py_min(limit, scheduled)
    limit = _py_min(limit, _headroom_rate_limit(scheduled, headroom, duration_min))
    rate = _temp_rate(correction[1], correction[0] == _SUSPEND, scheduled, limit, duration_min, rounder)
    return _continuation(rate, context), rate


def _nan_if_none(value) -> float:
    return np.nan if value is None else float(value)


def recommended_temp_basal(pred_dates_s, pred_mgdl, *, at_s: float, target: DailySchedule,
                           suspend_threshold_mgdl: float | None, sensitivity: DailySchedule, model,
                           basal: DailySchedule, max_basal_rate_u_per_h: float, last_temp_basal=None,
                           rate_rounder: float | None = None, duration_min: float = TEMP_BASAL_DURATION_MIN,
                           continuation_interval_min: float = CONTINUATION_INTERVAL_MIN,
                           max_iob_headroom_u: float | None = None,
                           basal_schedule_override_active: bool = False, rounding: str = "nearest",
                           effected_sensitivity=None, correction: InsulinCorrection | None = None) -> dict | None:
    """Loop's ``recommendedTempBasal``: a temp basal that conforms the prediction to the target.

    Parameters
    ----------
    pred_dates_s, pred_mgdl, at_s, target, suspend_threshold_mgdl, sensitivity, model, effected_sensitivity
        See :func:`insulin_correction`.
    correction : optional, the :func:`insulin_correction` of this prediction when already computed
    basal : scheduled basal rate schedule (U/h), read at ``at_s``
    max_basal_rate_u_per_h : U/h; the recommendation never exceeds it
    last_temp_basal : ``(type, start_s, end_s, rate_u_per_h)`` of the running temp basal, or None
    rate_rounder : rate increment in U/h (e.g. 0.025), a pump's supported rates
        (:class:`pyloopkit.pump_rounding.Increments`, with its own direction), or None for no rounding
    rounding : ``"nearest"`` (Swift ``round``) or ``"down"`` (pump managers); see :data:`ROUNDING_MODES`
    duration_min, continuation_interval_min : minutes (Loop: 30 and 11)
    max_iob_headroom_u : U still allowed before the maximum IOB (e.g. ``2 * max_bolus - IOB``); the
        rate is at most ``scheduled + headroom / duration``; a negative headroom counts as 0
        (Loop's DoseMath tests: at or above the limit the scheduled rate continues)
    basal_schedule_override_active : Loop's ``isBasalRateScheduleOverrideActive``

    Returns
    -------
    ``{"rate": U/h, "duration": minutes}``; ``{"rate": 0, "duration": 0}`` means cancel the running
    temp basal; ``None`` means no change is needed (or no prediction lies within the effect duration).
    """
    _check_settings(("max_basal_rate_u_per_h",), max_basal_rate_u_per_h=max_basal_rate_u_per_h,
                    max_iob_headroom_u=max_iob_headroom_u,
                    rate_rounder=rate_rounder)
    corrected = _correction_and_scheduled(correction, pred_dates_s, pred_mgdl, at_s, target, suspend_threshold_mgdl,
                                          sensitivity, model, effected_sensitivity, basal, duration_min)
    if corrected is None:
        return None
    correction, scheduled = corrected
    rounder = _rounder_spec(rate_rounder, rounding)
    context = _basal_context(scheduled, duration_min, at_s, last_temp_basal, continuation_interval_min,
                             not basal_schedule_override_active)
    decision, rate = _temp_basal(_correction_numbers(correction), float(max_basal_rate_u_per_h),
                                 _nan_if_none(max_iob_headroom_u), context, rounder)
    return _temp_basal_dict(decision, rate, duration_min)


def _bolus_notice(correction: InsulinCorrection, first_s: float, first_mgdl: float, target: DailySchedule):
    """Loop's ``bolusRecommendationNotice`` plus the ``currentGlucoseBelowTarget`` rule of ``recommendedBolus``."""
    if correction.kind == "suspend":
        return ("glucoseBelowSuspendThreshold", correction.min_mgdl)
    if correction.kind == "above_range" and correction.units > 0 and correction.min_below_target:
        if first_mgdl < float(target.at(first_s)[0]):
            return ("currentGlucoseBelowTarget", first_mgdl)
        return ("predictedGlucoseBelowTarget", correction.min_mgdl)
    return None


def recommended_bolus(pred_dates_s, pred_mgdl, *, at_s: float, target: DailySchedule,
                      suspend_threshold_mgdl: float | None, sensitivity: DailySchedule, model,
                      pending_insulin_u: float, max_bolus_u: float, volume_rounder: float | None = None,
                      rounding: str = "nearest", effected_sensitivity=None,
                      correction: InsulinCorrection | None = None) -> dict:
    """Loop's ``recommendedBolus``: a correction bolus for the prediction.

    Parameters
    ----------
    pred_dates_s, pred_mgdl, at_s, target, suspend_threshold_mgdl, sensitivity, model, effected_sensitivity
        See :func:`insulin_correction`.
    correction : optional, the :func:`insulin_correction` of this prediction when already computed
    pending_insulin_u : U already scheduled but not in the prediction (subtracted)
    max_bolus_u : U; the amount never exceeds it
    volume_rounder : bolus increment in U (e.g. 0.025), a pump's supported volumes
        (:class:`pyloopkit.pump_rounding.Increments`), or None for no rounding
    rounding : ``"nearest"`` or ``"down"``, see :data:`ROUNDING_MODES`

    Returns
    -------
    ``{"amount": U, "pending_insulin": U, "notice": None | (name, mg/dL)}`` where name is
    ``"glucoseBelowSuspendThreshold"`` (minimum below the suspend threshold, amount 0),
    ``"predictedGlucoseBelowTarget"`` (minimum below the target range while correcting a high)
    or ``"currentGlucoseBelowTarget"`` (the same, with the first prediction below range; Swift
    Loop replaces the notice this way, PyLoopKit does not).
    """
    _check_settings(("pending_insulin_u", "max_bolus_u"), pending_insulin_u=pending_insulin_u,
                    max_bolus_u=max_bolus_u, volume_rounder=volume_rounder)
    empty = {"amount": 0.0, "pending_insulin": float(pending_insulin_u), "notice": None}
    correction = _given_or_computed(correction, pred_dates_s, pred_mgdl, at_s, target, suspend_threshold_mgdl,
                                    sensitivity, model, effected_sensitivity)
    if correction is None:
        return empty
    units = min(float(max_bolus_u), max(0.0, correction.units - pending_insulin_u))
    first_s, first_mgdl = float(np.ravel(pred_dates_s)[0]), float(np.ravel(pred_mgdl)[0])
    return {"amount": _round_within(units, volume_rounder, float(max_bolus_u), rounding),
            "pending_insulin": float(pending_insulin_u),
            "notice": _bolus_notice(correction, first_s, first_mgdl, target)}


def glucose_based_application_factor(glucose_mgdl: float, lower_target_mgdl: float) -> float:
    """Loop's glucose-based partial application factor (``GlucoseBasedApplicationFactorStrategy``).

    0.2 up to 10 mg/dL above the lower target bound, rising linearly to 0.8 at 200 mg/dL:
    ``min(0.2 + max(g - (lower + 10), 0) x 0.6 / (200 - (lower + 10)), 0.8)``.
    """
    floor_mgdl = lower_target_mgdl + GBAF_MIN_DELTA_MGDL
    excess = max(glucose_mgdl - floor_mgdl, 0.0)
    if excess == 0.0:
        return GBAF_MIN_FACTOR
    span = GBAF_MAX_GLUCOSE_MGDL - floor_mgdl
    if span <= 0:
        return GBAF_MAX_FACTOR
    return min(GBAF_MIN_FACTOR + excess * (GBAF_MAX_FACTOR - GBAF_MIN_FACTOR) / span, GBAF_MAX_FACTOR)


def recommended_automatic_bolus(pred_dates_s, pred_mgdl, *, at_s: float, target: DailySchedule,
                                suspend_threshold_mgdl: float | None, sensitivity: DailySchedule, model,
                                basal: DailySchedule, max_automatic_bolus_u: float,
                                partial_application_factor: float, last_temp_basal=None,
                                volume_rounder: float | None = None, rate_rounder: float | None = None,
                                max_basal_rate_u_per_h: float | None = None,
                                max_iob_headroom_u: float | None = None,
                                duration_min: float = TEMP_BASAL_DURATION_MIN,
                                continuation_interval_min: float = CONTINUATION_INTERVAL_MIN,
                                basal_schedule_override_active: bool = False,
                                rounding: str = "nearest", effected_sensitivity=None,
                                correction: InsulinCorrection | None = None) -> dict | None:
    """Loop's ``recommendedAutomaticDose``: a partial correction bolus for highs, a low temp basal for lows.

    The bolus is ``partial_application_factor * units`` clamped to ``[0, max_automatic_bolus_u]``
    (0 when the minimum prediction is below the target range) and, with ``max_iob_headroom_u``,
    to ``partial_application_factor * max(0, headroom)`` (Loop's DoseMath tests). The temp basal
    never exceeds the scheduled rate (nor ``max_basal_rate_u_per_h`` when given) and follows the
    ``ifNecessary`` rules. LoopAlgorithm's variant (bolus at most ``min(max_bolus * factor,
    headroom)``) is ``max_automatic_bolus_u=min(max_bolus * factor, max(0, headroom))`` with
    ``max_iob_headroom_u=None``.
    ``correction``: the :func:`insulin_correction` of this prediction when already computed.

    Returns
    -------
    ``{"basal_adjustment": {"rate", "duration"} | None, "bolus_units": U}``, or ``None`` when
    neither a temp basal change nor a bolus is needed.
    """
    _check_settings(("max_automatic_bolus_u", "partial_application_factor"),
                    max_automatic_bolus_u=max_automatic_bolus_u,
                    partial_application_factor=partial_application_factor,
                    max_basal_rate_u_per_h=max_basal_rate_u_per_h,
                    max_iob_headroom_u=max_iob_headroom_u,
                    volume_rounder=volume_rounder, rate_rounder=rate_rounder)
    corrected = _correction_and_scheduled(correction, pred_dates_s, pred_mgdl, at_s, target, suspend_threshold_mgdl,
                                          sensitivity, model, effected_sensitivity, basal, duration_min)
    if corrected is None:
        return None
    correction, scheduled = corrected
    rounders = _rounder_spec(volume_rounder, rounding), _rounder_spec(rate_rounder, rounding)
    context = _basal_context(scheduled, duration_min, at_s, last_temp_basal, continuation_interval_min,
                             not basal_schedule_override_active)
    bolus, decision, rate = _automatic(_correction_numbers(correction), float(max_automatic_bolus_u),
                                       float(partial_application_factor), _nan_if_none(max_iob_headroom_u),
                                       _nan_if_none(max_basal_rate_u_per_h), context, *rounders)
    return _automatic_dict(bolus, decision, rate, duration_min)


@jit
def _automatic(correction, max_bolus, factor, headroom, max_rate, context, volume_rounder, rate_rounder):
    """:func:`recommended_automatic_bolus` of a correction (see :func:`_correction_numbers`; NaN
    ``headroom`` or ``max_rate``: none): the bolus (U), the temp basal's :func:`_continuation`
    decision and its rate (U/h)."""
    scheduled, duration_min = context[0], context[1]
    bolus_limit = 0.0 if _min_below_target(correction) else max_bolus
    if not np.isnan(headroom):
        bolus_limit = _py_min(bolus_limit, factor * _py_max(0.0, headroom))
    bolus = _within(_py_min(bolus_limit, _py_max(0.0, factor * correction[1])), bolus_limit, volume_rounder)
    rate_limit = scheduled if np.isnan(max_rate) else _py_min(scheduled, max_rate)
    rate = _temp_rate(correction[1], correction[0] == _SUSPEND, scheduled, rate_limit, duration_min, rate_rounder)
    return bolus, _continuation(rate, context), rate


def _automatic_dict(bolus_u: float, decision: int, rate_u_per_h: float, duration_min: float) -> dict | None:
    """:func:`recommended_automatic_bolus`'s result: None when neither a temp basal change nor a bolus."""
    temp = _temp_basal_dict(decision, rate_u_per_h, duration_min)
    if temp is None and bolus_u <= 0:
        return None
    return {"basal_adjustment": temp, "bolus_units": float(bolus_u)}


def loop_doses(pred_dates_s, pred_mgdl, *, at_s: float, target: DailySchedule, suspend_threshold_mgdl: float | None,
               sensitivity: DailySchedule, model, basal: DailySchedule, max_basal_rate_u_per_h: float | None,
               last_temp_basal, rate_rounder, volume_rounder, max_iob_headroom_u: float | None, temp_basal: bool,
               partial_application_factor: float | None, max_automatic_bolus_u: float | None,
               effected_sensitivity=None, validate: bool = True) -> tuple:
    """The dose math of one Loop cycle: the correction, the temp basal and the automatic bolus.

    Parameters are those of :func:`insulin_correction`, :func:`recommended_temp_basal` and
    :func:`recommended_automatic_bolus` (default durations, no basal schedule override, ``"nearest"``
    for float rounders); ``temp_basal`` asks for the temp basal, ``partial_application_factor``
    (None: not asked) for the automatic bolus.

    Returns
    -------
    ``(correction, temp_basal, automatic)``: :func:`insulin_correction`,
    :func:`recommended_temp_basal` (None unless asked) and :func:`recommended_automatic_bolus`
    (None unless asked) of that correction.

    One compiled pass (numba) gives the same three bit for bit when numba is in use, ``validate``
    is False (the core's own prediction, float64 arrays), ``effected_sensitivity`` is None, the
    three schedules are float :class:`DailySchedule` s and the values are valid (see
    :func:`_correction_compiled`; settings finite and >= 0, a finite suspend threshold or None);
    the model's remaining fraction is compiled only where it is exact (see :func:`_curve`). Otherwise
    the functions above run.
    """
    common = dict(at_s=at_s, target=target, suspend_threshold_mgdl=suspend_threshold_mgdl, sensitivity=sensitivity,
                  model=model, effected_sensitivity=effected_sensitivity)
    limits = dict(max_basal_rate_u_per_h=max_basal_rate_u_per_h, last_temp_basal=last_temp_basal,
                  rate_rounder=rate_rounder, max_iob_headroom_u=max_iob_headroom_u)
    if HAVE_NUMBA and not validate and effected_sensitivity is None:
        compiled = _compiled_doses(pred_dates_s, pred_mgdl, basal=basal, volume_rounder=volume_rounder,
                                   temp_basal=temp_basal, factor=partial_application_factor,
                                   max_automatic_bolus_u=max_automatic_bolus_u, **common, **limits)
        if compiled is not None:
            return compiled
    correction = insulin_correction(pred_dates_s, pred_mgdl, validate=validate, **common)
    temp = recommended_temp_basal(pred_dates_s, pred_mgdl, basal=basal, correction=correction, **common,
                                  **limits) if temp_basal else None
    automatic = None if partial_application_factor is None else recommended_automatic_bolus(
        pred_dates_s, pred_mgdl, basal=basal, max_automatic_bolus_u=max_automatic_bolus_u,
        partial_application_factor=partial_application_factor, volume_rounder=volume_rounder,
        correction=correction, **common, **limits)
    return correction, temp, automatic


def _compiled_doses(dates, glucose, *, at_s, target, suspend_threshold_mgdl, sensitivity, model, basal,
                    max_basal_rate_u_per_h, last_temp_basal, rate_rounder, volume_rounder, max_iob_headroom_u,
                    temp_basal, factor, max_automatic_bolus_u, effected_sensitivity) -> tuple | None:
    """:func:`loop_doses` by :func:`_doses_compiled`; None when the pass does not cover the inputs."""
    inputs = _correction_inputs(dates, glucose, at_s, target, suspend_threshold_mgdl, sensitivity, model)
    basal_spec = _schedule_spec(basal, 0)
    optional = (max_basal_rate_u_per_h, max_iob_headroom_u, factor, max_automatic_bolus_u)
    if inputs is None or basal_spec is None or not all(v is None or math.isfinite(v) for v in optional):
        return None  # (NaN stands for None below)
    limits = (bool(temp_basal), _nan_if_none(max_basal_rate_u_per_h), _nan_if_none(max_iob_headroom_u),
              factor is not None, _nan_if_none(factor), _nan_if_none(max_automatic_bolus_u))
    rounders = _rounder_spec(rate_rounder, "nearest"), _rounder_spec(volume_rounder, "nearest")
    out = _doses_compiled(*inputs, basal_spec, limits, _running_temp(last_temp_basal, at_s), *rounders)
    if not out[0]:
        return None
    correction = _correction_of(*out[1:6])
    temp_decision, temp_rate, bolus, auto_decision, auto_rate = out[6:]
    temp = _temp_basal_dict(temp_decision, temp_rate, TEMP_BASAL_DURATION_MIN) if temp_basal else None
    automatic = None if factor is None else _automatic_dict(bolus, auto_decision, auto_rate, TEMP_BASAL_DURATION_MIN)
    return correction, temp, automatic


def _correction_inputs(dates, glucose, at_s, target, suspend_threshold_mgdl, sensitivity, model) -> tuple | None:
    """The arguments of :func:`_correction_compiled` (float64 prediction arrays of one length, float
    :class:`DailySchedule` s, a finite suspend threshold or None), else None."""
    target_spec, isf_spec = _schedule_spec(target, 2), _schedule_spec(sensitivity, 0)
    suspend_ok = suspend_threshold_mgdl is None or math.isfinite(suspend_threshold_mgdl)
    if (target_spec is None or isf_spec is None or not (_is_series(dates) and _is_series(glucose))
            or dates.size != glucose.size or not suspend_ok):
        return None
    duration_s = float(model.effect_duration_min) * 60.0
    return (dates, glucose, _curve(model, dates, at_s, duration_s), float(at_s), duration_s,
            _nan_if_none(suspend_threshold_mgdl), target_spec, isf_spec)


def _correction_of(kind: int, units: float, min_s: float, min_mgdl: float, min_target_mgdl: float) -> InsulinCorrection:
    return InsulinCorrection(_KINDS[kind], units, min_s, min_mgdl, min_target_mgdl)


def _is_series(values) -> bool:
    return isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype == _FLOAT64


@jit
def _doses_compiled(dates, glucose, curve, at_s, duration_s, suspend, target, sensitivity, basal, limits, running,
                    rate_rounder, volume_rounder):
    """:func:`loop_doses` in one pass: ``(covered, kind code, units, min_s, min_mgdl, min_target_mgdl,
    temp basal decision, its rate, automatic bolus U, its temp basal decision, its rate)``, see
    :func:`_correction_compiled`, :func:`_temp_basal` and :func:`_automatic`. ``limits``: ``(temp basal
    asked, max basal U/h, IOB headroom U, automatic bolus asked, application factor, max automatic
    bolus U)``, NaN for None."""
    covered, kind, units, min_s, min_mgdl, min_target = _correction_compiled(
        dates, glucose, curve, at_s, duration_s, suspend, target, sensitivity)
    scheduled = value_at(*basal, at_s)
    if not (covered and np.isfinite(scheduled) and scheduled >= 0 and _valid_limits(limits)):
        return False, kind, units, min_s, min_mgdl, min_target, _KEEP, 0.0, 0.0, _KEEP, 0.0
    temp_basal, max_rate, headroom, automatic, factor, max_bolus = limits
    context = (scheduled, TEMP_BASAL_DURATION_MIN, at_s, running, CONTINUATION_INTERVAL_MIN, True)
    correction = (kind, units, min_mgdl, min_target)
    temp_decision, temp_rate = _KEEP, 0.0
    if temp_basal:
        temp_decision, temp_rate = _temp_basal(correction, max_rate, headroom, context, rate_rounder)
    bolus, auto_decision, auto_rate = 0.0, _KEEP, 0.0
    if automatic:
        bolus, auto_decision, auto_rate = _automatic(correction, max_bolus, factor, headroom, max_rate, context,
                                                     volume_rounder, rate_rounder)
    return True, kind, units, min_s, min_mgdl, min_target, temp_decision, temp_rate, bolus, auto_decision, auto_rate


@jit
def _valid_limits(limits):
    """The settings checks of :func:`recommended_temp_basal` and :func:`recommended_automatic_bolus`
    pass (the values are finite, NaN for None): the required ones given, all >= 0."""
    temp_basal, max_rate, _, automatic, factor, max_bolus = limits
    if temp_basal and not max_rate >= 0:
        return False
    return not automatic or (factor >= 0 and max_bolus >= 0 and not max_rate < 0)
