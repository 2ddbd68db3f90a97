"""Retrospective correction: standard (proportional) and integral (PID) variants.

Retrospective correction (RC) compares how glucose actually moved with what the
insulin and carb models explained, and continues the unexplained part into the
prediction as a decaying effect.

1. *Discrepancies* (:func:`discrepancies`): insulin counteraction effects (ICE)
   minus the carb effect (:func:`pyloopkit.loop_math.subtracting`), each dated at
   its ICE end, then summed over trailing windows of 1.01 x the grouping interval
   (30 min) (:func:`pyloopkit.loop_math.combined_sums`). No carb effect is needed:
   without one the discrepancies are the ICE themselves, as in Loop.
2. *Standard RC* (:func:`standard_correction`; Loop 2019 ``StandardRetrospectiveCorrection``
   and LoopAlgorithm's identical one): the last summed discrepancy, if it ended at
   most ``recency_interval`` before the latest glucose, is turned into a velocity
   ``discrepancy / max(its span, grouping interval)`` that decays linearly to 0
   over 60 min from the latest glucose (:func:`pyloopkit.loop_math.decay_effect`).
3. *Integral RC* (:func:`integral_correction`; LoopAlgorithm ``IntegralRetrospectiveCorrection``):
   a proportional + integral + differential correction over the run of recent
   summed discrepancies that share the sign of the last one, with an effect that
   lasts 10 min longer per discrepancy in the run (at most 180 min).

LoopAlgorithm's current ``decayEffect`` is the continuous quadratic
(:func:`pyloopkit.loop_math.decay_effect_continuous`); pass ``continuous_decay=True``
for it. Differences from Tidepool's PyLoopKit (which we do not follow): PyLoopKit
returns no effect when there is no carb effect, measures recency from the
calculation time instead of the latest glucose, and divides by the grouping
interval alone instead of ``max(span, grouping interval)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .date import GRID_S
from .errors import Problem, raise_if
from .carb_math import pairwise_sum
from .jit import HAVE_NUMBA, jit
from .loop_math import (Effect, combined_sums, decay_effect, decay_effect_continuous, overlapping_part, series_problems,
                        subtracting)

GROUPING_INTERVAL_MIN = 30.0
"""Loop's ``retrospectiveCorrectionGroupingInterval`` (min)."""
GROUPING_MULTIPLIER = 1.01
"""Loop widens the summing window by 1 % as a buffer for CGM timing jitter."""
EFFECT_DURATION_MIN = 60.0
"""Loop's ``retrospectiveCorrectionEffectDuration`` (min)."""
RECENCY_INTERVAL_MIN = 15.0
"""How old the last discrepancy may be, relative to the latest glucose (min)."""

CURRENT_DISCREPANCY_GAIN = 1.0
PERSISTENT_DISCREPANCY_GAIN = 2.0
CORRECTION_TIME_CONSTANT_MIN = 60.0
DIFFERENTIAL_GAIN = 2.0
DELTA_MIN = 5.0
"""Glucose sampling interval assumed by the integral RC (min)."""
MAXIMUM_CORRECTION_EFFECT_DURATION_MIN = 180.0
RETROSPECTION_INTERVAL_MIN = 180.0
"""How far back the integral RC looks for discrepancies (min)."""
MINIMUM_DISCREPANCY_MGDL = 0.1
"""Summed discrepancies smaller than this end the integral RC's run."""
INTEGRAL_FORGET = math.exp(-DELTA_MIN / CORRECTION_TIME_CONSTANT_MIN)
INTEGRAL_GAIN = (1.0 - INTEGRAL_FORGET) / INTEGRAL_FORGET * (PERSISTENT_DISCREPANCY_GAIN - CURRENT_DISCREPANCY_GAIN)
PROPORTIONAL_GAIN = CURRENT_DISCREPANCY_GAIN - INTEGRAL_GAIN


@dataclass(frozen=True)
class Discrepancies:
    """Summed discrepancies (LoopKit ``GlucoseChange`` list): each spans ``start_s``..``end_s`` (s)."""

    start_s: np.ndarray
    end_s: np.ndarray
    values_mgdl: np.ndarray

    def __len__(self) -> int:
        return int(self.end_s.size)


@dataclass(frozen=True)
class CorrectionResult:
    """A retrospective correction effect and the overall correction it carries.

    ``dates_s``/``values_mgdl`` is the effect timeline (glucose levels starting at
    the latest glucose; empty when no recent discrepancy exists). ``total_mgdl`` is
    Loop's ``totalGlucoseCorrectionEffect`` (None when there is no effect).
    """

    dates_s: np.ndarray
    values_mgdl: np.ndarray
    total_mgdl: float | None

    @property
    def effect(self) -> Effect:
        """``(dates_s, values_mgdl)``."""
        return self.dates_s, self.values_mgdl


@dataclass(frozen=True)
class IntegralCorrectionResult(CorrectionResult):
    """Integral RC effect plus its diagnostic terms (mg/dL) and effect duration (min).

    ``total_mgdl = proportional_mgdl + integral_mgdl + differential_mgdl``;
    ``recent_discrepancies_mgdl`` is the run of same-sign discrepancies used,
    oldest first. All terms are 0 (and the duration 0) when there is no effect.
    """

    proportional_mgdl: float = 0.0
    integral_mgdl: float = 0.0
    differential_mgdl: float = 0.0
    effect_duration_min: float = 0.0
    recent_discrepancies_mgdl: np.ndarray = field(default_factory=lambda: np.empty(0))


def discrepancies(ice_start_s, ice_end_s, ice_velocity_mgdl_per_min, carb_dates_s=(), carb_values_mgdl=(),
                  grouping_interval_min: float = GROUPING_INTERVAL_MIN,
                  effect_interval_s: float = GRID_S, validate: bool = True) -> Discrepancies:
    """Summed retrospective discrepancies from ICE and a (possibly empty) carb effect.

    Parameters
    ----------
    ice_start_s, ice_end_s : array_like
        ICE interval bounds (s), sorted by end.
    ice_velocity_mgdl_per_min : array_like
        ICE velocities (mg/dL/min).
    carb_dates_s, carb_values_mgdl : array_like, optional
        Cumulative carb effect on the grid (mg/dL); empty when there are no carbs.
    grouping_interval_min : float
        Grouping interval (min); the summing window is 1.01 times it.
    effect_interval_s : float
        Step of the carb effect grid (s).
    validate : bool
        False skips the checks of the series (the Loop core's own, already valid timelines).

    Returns
    -------
    Discrepancies
    """
    _check_grouping(grouping_interval_min)
    dates, values = subtracting(ice_start_s, ice_end_s, ice_velocity_mgdl_per_min, carb_dates_s, carb_values_mgdl,
                                effect_interval_s, validate=validate)
    start, end, total = combined_sums(dates, values, GROUPING_MULTIPLIER * grouping_interval_min * 60.0,
                                      validate=validate)
    return Discrepancies(start, end, total)


def _check_grouping(grouping_interval_min: float) -> None:
    if not (np.isfinite(grouping_interval_min) and grouping_interval_min > 0):
        raise_if([Problem("grouping_interval_min", None, grouping_interval_min, "must be a finite number > 0")])


def _check(glucose_date_s, glucose_mgdl, summed: Discrepancies, **minutes) -> None:
    problems = [Problem(name, None, value, "not a finite number")
                for name, value in (("glucose_date_s", glucose_date_s), ("glucose_mgdl", glucose_mgdl))
                if not np.isfinite(value)]
    problems += [Problem(name, None, value, "must be a finite number > 0")
                 for name, value in minutes.items() if not (np.isfinite(value) and value > 0)]
    columns = {"end_s": summed.end_s, "start_s": summed.start_s, "values_mgdl": summed.values_mgdl}
    problems += series_problems("summed", {k: np.asarray(v, dtype=float).ravel() for k, v in columns.items()},
                                "end_s", strict=False)
    raise_if(problems)


def _current(glucose_date_s: float, summed: Discrepancies, recency_interval_min: float) -> int | None:
    """Index of the last summed discrepancy if recent enough relative to the latest glucose."""
    if len(summed) == 0 or glucose_date_s - summed.end_s[-1] > recency_interval_min * 60.0:
        return None
    return len(summed) - 1


def _decay(glucose_date_s, glucose_mgdl, velocity_mgdl_per_min, duration_min, continuous_decay) -> Effect:
    decay = decay_effect_continuous if continuous_decay else decay_effect
    return decay(glucose_date_s, glucose_mgdl, velocity_mgdl_per_min, duration_min, DELTA_MIN)


def _velocity_mgdl_per_min(correction_mgdl: float, summed: Discrepancies, i: int, grouping_interval_min: float):
    """Correction spread over the discrepancy's span, at least the grouping interval."""
    span_min = (summed.end_s[i] - summed.start_s[i]) / 60.0
    return correction_mgdl / max(span_min, grouping_interval_min)


def standard_correction(glucose_date_s: float, glucose_mgdl: float, summed: Discrepancies,
                        recency_interval_min: float = RECENCY_INTERVAL_MIN,
                        grouping_interval_min: float = GROUPING_INTERVAL_MIN,
                        effect_duration_min: float = EFFECT_DURATION_MIN,
                        continuous_decay: bool = False, validate: bool = True) -> CorrectionResult:
    """Standard (proportional) retrospective correction.

    Parameters
    ----------
    glucose_date_s, glucose_mgdl : float
        Latest glucose (s, mg/dL); the effect starts from it.
    summed : Discrepancies
        Summed discrepancies (:func:`discrepancies`).
    recency_interval_min : float
        The last discrepancy must end at most this long before the glucose (min).
    grouping_interval_min : float
        Minimum time the discrepancy is spread over (min).
    effect_duration_min : float
        Duration of the decaying effect (min).
    continuous_decay : bool
        Use LoopAlgorithm's continuous decay instead of Loop 2019's stepwise one.
    validate : bool
        False skips the checks of the inputs (callers whose values are known to be valid).

    Returns
    -------
    CorrectionResult
        ``total_mgdl`` is the last summed discrepancy.
    """
    if validate:
        _check(glucose_date_s, glucose_mgdl, summed, recency_interval_min=recency_interval_min,
               grouping_interval_min=grouping_interval_min, effect_duration_min=effect_duration_min)
    i = _current(glucose_date_s, summed, recency_interval_min)
    if i is None:
        return CorrectionResult(np.empty(0), np.empty(0), None)
    current = float(summed.values_mgdl[i])
    velocity = _velocity_mgdl_per_min(current, summed, i, grouping_interval_min)
    dates, values = _decay(glucose_date_s, glucose_mgdl, velocity, effect_duration_min, continuous_decay)
    return CorrectionResult(dates, values, current)


def _recent_run(glucose_date_s: float, summed: Discrepancies, i: int, recency_interval_min: float) -> np.ndarray:
    """Contiguous discrepancies, newest backwards, with the current one's sign, each at least
    0.1 mg/dL and ending within the recency interval of the next; returned oldest first."""
    ends, values = summed.end_s, summed.values_mgdl
    window = (ends >= glucose_date_s - RETROSPECTION_INTERVAL_MIN * 60.0) & (summed.start_s <= glucose_date_s)
    past_end, past_v = ends[window][::-1], values[window][::-1]
    next_end = np.concatenate(([ends[i]], past_end[:-1]))
    ok = ((np.signbit(past_v) == np.signbit(values[i]))
          & (next_end - past_end <= recency_interval_min * 60.0)
          & (np.abs(past_v) >= MINIMUM_DISCREPANCY_MGDL))
    run = int(np.argmin(ok)) if not ok.all() else ok.size
    return past_v[:run][::-1]


def integral_correction(glucose_date_s: float, glucose_mgdl: float, summed: Discrepancies,
                        recency_interval_min: float = RECENCY_INTERVAL_MIN,
                        grouping_interval_min: float = GROUPING_INTERVAL_MIN,
                        effect_duration_min: float = EFFECT_DURATION_MIN,
                        continuous_decay: bool = False, validate: bool = True) -> IntegralCorrectionResult:
    """Integral retrospective correction (LoopAlgorithm ``IntegralRetrospectiveCorrection``).

    With ``d_1..d_N`` the recent run of summed discrepancies (oldest first, see
    module docstring), ``f = exp(-5/60)``, ``Ki = (1 - f)/f x (2 - 1)`` and
    ``Kp = 1 - Ki``:

    - integral ``I = Ki x sum_k f^(N-k) d_k`` (the recursion ``I <- f I + Ki d``);
    - proportional ``P = Kp x current``;
    - differential ``D = 2 (current - d_(N-1))`` when ``N > 1`` and that is negative, else 0;
    - effect duration ``min(effect_duration - 10 + 10 N, 180)`` min;
    - velocity ``(P + I + D) x effect_duration / duration / max(span, grouping interval)``,
      decaying from the latest glucose over the effect duration.

    A single +10 mg/dL discrepancy thus gives ``P + I = 10`` over 60 min, exactly
    the standard correction.

    Parameters and behaviour otherwise as :func:`standard_correction`.

    Returns
    -------
    IntegralCorrectionResult
    """
    if validate:
        _check(glucose_date_s, glucose_mgdl, summed, recency_interval_min=recency_interval_min,
               grouping_interval_min=grouping_interval_min, effect_duration_min=effect_duration_min)
    i = _current(glucose_date_s, summed, recency_interval_min)
    if i is None:
        return IntegralCorrectionResult(np.empty(0), np.empty(0), None)
    current = float(summed.values_mgdl[i])
    recent = _recent_run(glucose_date_s, summed, i, recency_interval_min)
    n = recent.size
    integral = float(INTEGRAL_GAIN * np.sum(_forget_powers(n) * recent))
    duration_min = min(effect_duration_min - 2.0 * DELTA_MIN + 2.0 * DELTA_MIN * n,
                       MAXIMUM_CORRECTION_EFFECT_DURATION_MIN)
    change = current - float(recent[-2]) if n > 1 else 0.0
    differential = DIFFERENTIAL_GAIN * change if change < 0.0 else 0.0
    proportional = PROPORTIONAL_GAIN * current
    total = proportional + integral + differential
    scaled = total * effect_duration_min / duration_min
    velocity = _velocity_mgdl_per_min(scaled, summed, i, grouping_interval_min)
    dates, values = _decay(glucose_date_s, glucose_mgdl, velocity, duration_min, continuous_decay)
    return IntegralCorrectionResult(dates, values, total, proportional, integral, differential, duration_min, recent)


@jit
def _forget_powers(n):
    """``INTEGRAL_FORGET ** (n - 1 - k)`` for ``k = 0 .. n-1`` (the oldest discrepancy forgotten most),
    each by the C library's ``pow`` (numpy's array power may differ from it in the last bit), so that
    :func:`integral_correction` and its compiled pass give the same bits."""
    powers = np.empty(n)
    for k in range(n):
        powers[k] = INTEGRAL_FORGET ** float(n - 1 - k)
    return powers


@jit
def _decay_compiled(start_date_s, start_mgdl, velocity_mgdl_per_min, duration_min, delta_min, continuous):
    """Compiled :func:`~pyloopkit.loop_math.decay_effect` (``continuous`` False) or
    :func:`~pyloopkit.loop_math.decay_effect_continuous` after their checks: the same grid and
    the same arithmetic element by element (the running sum starts from the first step, as
    ``np.cumsum`` does)."""
    delta_s = delta_min * 60.0
    duration_s = duration_min * 60.0
    first = np.floor(start_date_s / delta_s) * delta_s
    end = np.ceil((start_date_s + duration_s) / delta_s) * delta_s
    steps = max(1, int(np.rint((end - first) / delta_s)) - 1)
    dates = np.empty(steps + 1)
    values = np.empty(steps + 1)
    dates[0], values[0] = first, start_mgdl + 0.0
    decay_span_min = duration_min - delta_min
    v_per_s = velocity_mgdl_per_min / 60.0
    a = -v_per_s / (2.0 * (duration_s - delta_s))
    b = v_per_s * (1.0 + delta_s / (2.0 * (duration_s - delta_s)))
    total = 0.0
    for j in range(steps):
        dates[j + 1] = first + delta_s * (j + 1)
        if continuous:
            t = min(duration_s, dates[j + 1] - start_date_s)
            values[j + 1] = start_mgdl + (a * t * t + b * t)
        else:
            step = velocity_mgdl_per_min * delta_min * (decay_span_min - j * delta_min) / decay_span_min
            total = step if j == 0 else total + step
            values[j + 1] = start_mgdl + total
    return dates, values


@jit
def _subtracting_compiled(ice_end_s, ice_velocity, effect_dates_s, effect_values, effect_interval_s):
    """Compiled :func:`~pyloopkit.loop_math.subtracting` after its checks, for an effect with
    sorted dates: the same trims, and each ICE interval takes ``max(first step at or after its
    end, previous step + 1)`` (the array path's running maximum) element by element."""
    o_d, o_v, ends, vel = overlapping_part(effect_dates_s, effect_values, ice_end_s, ice_velocity)
    values = vel * (effect_interval_s / 60.0)
    if o_d.size > 1:
        taken = 0
        for i in range(ends.size):
            step = 1 + np.searchsorted(o_d[1:], ends[i])
            taken = step if i == 0 else max(step, taken + 1)
            if taken <= o_d.size - 1:
                values[i] -= o_v[taken] - o_v[taken - 1]
    return ends, values


@jit
def _combined_sums_compiled(dates_s, values_mgdl, duration_s):
    """Compiled :func:`~pyloopkit.loop_math.combined_sums` after its checks: the same window
    starts and the same difference of running sums (the running sum starts from the first value,
    as ``np.cumsum``)."""
    n = dates_s.size
    total = np.empty(n + 1)
    total[0] = 0.0
    for k in range(n):
        total[k + 1] = values_mgdl[0] if k == 0 else total[k] + values_mgdl[k]
    first = np.searchsorted(dates_s, dates_s - duration_s)
    sums = np.empty(n)
    for k in range(n):
        sums[k] = total[k + 1] - total[first[k]]
    return dates_s[first], dates_s.copy(), sums


@jit
def _recent_run_compiled(glucose_date_s, start_s, end_s, values, i, recency_interval_min):
    """Compiled :func:`_recent_run`: walk back from the newest windowed discrepancy while it has
    the current one's sign, at least the minimum size and ends within the recency interval of the
    next one; oldest first."""
    window = np.flatnonzero((end_s >= glucose_date_s - RETROSPECTION_INTERVAL_MIN * 60.0)
                            & (start_s <= glucose_date_s))[::-1]
    next_end = end_s[i]
    run = 0
    for k in window:
        if (np.signbit(values[k]) != np.signbit(values[i]) or next_end - end_s[k] > recency_interval_min * 60.0
                or not abs(values[k]) >= MINIMUM_DISCREPANCY_MGDL):
            break
        next_end = end_s[k]
        run += 1
    return values[window[:run][::-1]]


@jit
def _correction_compiled(glucose_date_s, glucose_mgdl, ice_start_s, ice_end_s, ice_velocity, now_s, carb_dates_s,
                         carb_values, window_s, recency_interval_min, grouping_interval_min, effect_duration_min,
                         integral, continuous_decay, effect_interval_s):
    """Compiled :func:`correction_from_effects` for the Loop core's own series (the known ICE,
    :func:`discrepancies`, then :func:`standard_correction` or, with ``integral``,
    :func:`integral_correction`), with the same arithmetic in the same order.

    Returns ``(dates, values, found, total, proportional, integral, differential, duration, recent,
    valid)``; ``found`` False: no recent discrepancy; ``valid`` False: the decay's inputs would be
    refused (a non-finite velocity or a duration not above 5 min), so the caller runs the array path.
    Its compiled helpers live in this module, except ``loop_math.overlapping_part`` and
    ``carb_math.pairwise_sum``: numba's disk cache of this function is renewed only when this file
    changes (see :mod:`pyloopkit.jit`).
    """
    known = ice_end_s <= now_s
    ends, velocity = _subtracting_compiled(ice_end_s[known], ice_velocity[known], carb_dates_s, carb_values,
                                           effect_interval_s)
    start_s, end_s, summed = _combined_sums_compiled(ends, velocity, window_s)
    empty = np.empty(0)
    if end_s.size == 0 or glucose_date_s - end_s[-1] > recency_interval_min * 60.0:
        return empty, empty, False, 0.0, 0.0, 0.0, 0.0, 0.0, empty, True
    i = end_s.size - 1
    current = summed[i]
    total, proportional, integral_term, differential, duration_min = current, 0.0, 0.0, 0.0, effect_duration_min
    recent = empty
    scaled = current
    if integral:
        recent = _recent_run_compiled(glucose_date_s, start_s, end_s, summed, i, recency_interval_min)
        n = recent.size
        integral_term = INTEGRAL_GAIN * pairwise_sum(_forget_powers(n) * recent, 0, recent.size)
        duration_min = min(effect_duration_min - 2.0 * DELTA_MIN + 2.0 * DELTA_MIN * n,
                           MAXIMUM_CORRECTION_EFFECT_DURATION_MIN)
        change = current - recent[n - 2] if n > 1 else 0.0
        differential = DIFFERENTIAL_GAIN * change if change < 0.0 else 0.0
        proportional = PROPORTIONAL_GAIN * current
        total = proportional + integral_term + differential
    if not duration_min > DELTA_MIN:
        return empty, empty, True, total, proportional, integral_term, differential, duration_min, recent, False
    if integral:
        scaled = total * effect_duration_min / duration_min
    span_min = (end_s[i] - start_s[i]) / 60.0
    rate = scaled / (grouping_interval_min if grouping_interval_min > span_min else span_min)
    if not np.isfinite(rate):
        return empty, empty, True, total, proportional, integral_term, differential, duration_min, recent, False
    dates, values = _decay_compiled(glucose_date_s, glucose_mgdl, rate, duration_min, DELTA_MIN, continuous_decay)
    return dates, values, True, total, proportional, integral_term, differential, duration_min, recent, True


def correction_from_effects(glucose_s, glucose_mgdl, counteraction, carb, *, now_s: float | None = None,
                            method: str = "standard", recency_interval_min: float = RECENCY_INTERVAL_MIN,
                            grouping_interval_min: float = GROUPING_INTERVAL_MIN,
                            effect_duration_min: float = EFFECT_DURATION_MIN,
                            continuous_decay: bool = False, validate: bool = True) -> CorrectionResult:
    """Retrospective correction from a glucose history and effect timelines (the orchestrator's entry).

    Parameters
    ----------
    glucose_s, glucose_mgdl : array_like
        Glucose history, sorted by date; the latest sample starts the effect.
    counteraction : (start_s, end_s, velocity_mgdl_per_min)
        ICE; may be empty.
    carb : (dates_s, values_mgdl)
        Carb effect; may be empty (RC still runs on the ICE alone).
    now_s : float, optional
        Calculation time: ICE ending after it are ignored (not yet known then).
    method : {"standard", "integral"}
    validate : bool
        False skips the checks of the series (the Loop core: inputs validated at the boundary);
        with numba in use, ``now_s`` given and index-matched ICE arrays, the whole correction is
        then one compiled pass (:func:`_correction_compiled`), bit-identical to the array path.
    Other parameters as :func:`standard_correction`.

    Returns
    -------
    CorrectionResult (IntegralCorrectionResult for ``method="integral"``); empty
    when there is no glucose or no recent discrepancy.
    """
    corrections = {"standard": standard_correction, "integral": integral_correction}
    if method not in corrections:
        raise_if([Problem("method", None, method, f"must be one of {sorted(corrections)}")])
    g_d = np.asarray(glucose_s, dtype=float).ravel()
    g_v = np.asarray(glucose_mgdl, dtype=float).ravel()
    if g_d.size != g_v.size:
        raise_if([Problem("glucose_mgdl", None, g_v.size, f"length differs from glucose_s ({g_d.size})")])
    if g_d.size == 0:
        empty = IntegralCorrectionResult if method == "integral" else CorrectionResult
        return empty(np.empty(0), np.empty(0), None)
    ice_start, ice_end, ice_v = (np.asarray(a, dtype=float).ravel() for a in counteraction)
    if HAVE_NUMBA and not validate and now_s is not None and ice_end.size == ice_start.size == ice_v.size:
        compiled = _compiled_correction(float(g_d[-1]), float(g_v[-1]), ice_start, ice_end, ice_v, carb, now_s,
                                        method, recency_interval_min, grouping_interval_min, effect_duration_min,
                                        continuous_decay)
        if compiled is not None:
            return compiled
    if now_s is not None and ice_end.size == ice_start.size == ice_v.size:
        known = ice_end <= now_s
        ice_start, ice_end, ice_v = ice_start[known], ice_end[known], ice_v[known]
    summed = discrepancies(ice_start, ice_end, ice_v, *carb, grouping_interval_min=grouping_interval_min,
                           validate=validate)
    return corrections[method](float(g_d[-1]), float(g_v[-1]), summed, recency_interval_min=recency_interval_min,
                               grouping_interval_min=grouping_interval_min, effect_duration_min=effect_duration_min,
                               continuous_decay=continuous_decay, validate=validate)


def _compiled_correction(glucose_date_s, glucose_mgdl, ice_start, ice_end, ice_v, carb, now_s, method,
                         recency_interval_min, grouping_interval_min, effect_duration_min, continuous_decay):
    """:func:`correction_from_effects`' result from :func:`_correction_compiled`, or None when the
    decay would refuse its inputs (the array path then raises the error)."""
    _check_grouping(grouping_interval_min)
    carb_d, carb_v = (np.asarray(a, dtype=float).ravel() for a in carb) if len(carb) else (np.empty(0), np.empty(0))
    integral = method == "integral"
    (dates, values, found, total, proportional, integral_term, differential, duration_min, recent,
     valid) = _correction_compiled(glucose_date_s, glucose_mgdl, ice_start, ice_end, ice_v, float(now_s), carb_d,
                                   carb_v, GROUPING_MULTIPLIER * grouping_interval_min * 60.0, recency_interval_min,
                                   grouping_interval_min, effect_duration_min, integral, continuous_decay, GRID_S)
    if not valid:
        return None
    if not integral:
        return CorrectionResult(dates, values, total if found else None)
    if not found:
        return IntegralCorrectionResult(dates, values, None)
    return IntegralCorrectionResult(dates, values, total, proportional, integral_term, differential, duration_min,
                                    recent)
