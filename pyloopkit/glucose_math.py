"""Glucose math: insulin counteraction effects and the momentum effect.

Follows LoopKit's ``GlucoseMath.swift`` (LoopAlgorithm package):

* :func:`counteraction_effects` compares each change in glucose between two samples
  more than 4 minutes apart with the change of a glucose effect (normally the insulin
  effect) over the same interval and returns the difference as an average velocity
  over the *real* interval between the samples (not a fixed 5 minutes).
* :func:`momentum_effect` fits a least-squares line to recent samples and projects
  its slope forward on the 5-minute grid, refusing (returning no effect) when the
  samples are too few, not continuous, contain display-only samples (calibrations)
  or come from more than one source; the slope can be capped (LoopAlgorithm caps it
  at 4 mg/dL/min; Loop 2019 / PyLoopKit does not).

Times are seconds since the reference date, glucose mg/dL.
"""
from __future__ import annotations

import numpy as np

from .date import ceil_to_grid, floor_to_grid
from .errors import Problem, raise_if
from .glucose_store import GlucoseArrays, as_glucose
from .jit import HAVE_NUMBA, jit

COUNTERACTION_MIN_INTERVAL_S = 240.0
"""Glucose changes over 4 minutes or less are skipped (LoopKit ``counteractionEffects``)."""

MOMENTUM_DURATION_MIN = 30.0
"""Momentum effect duration of Loop 2019 / PyLoopKit (LoopAlgorithm uses 15 min)."""

CONTINUITY_INTERVAL_S = 300.0
"""Average reading interval used by LoopKit's ``isContinuous``."""

GRADUAL_TRANSITION_THRESHOLD_MGDL = 40.0
"""LoopAlgorithm's default largest change between consecutive readings."""


def is_continuous(dates_s, interval_s: float = CONTINUITY_INTERVAL_S) -> bool:
    """LoopKit ``isContinuous``: ``|last - first| < interval_s * count`` (False when empty)."""
    d = np.asarray(dates_s, dtype=float)
    return bool(d.size > 0 and abs(d[-1] - d[0]) < interval_s * d.size)


def has_single_provenance(provenance) -> bool:
    """True when every sample comes from the same source (also for an empty array)."""
    p = np.asarray(provenance)
    return bool(p.size == 0 or np.all(p == p[0]))


def has_gradual_transitions(values_mgdl, threshold_mgdl: float = GRADUAL_TRANSITION_THRESHOLD_MGDL) -> bool:
    """LoopAlgorithm ``hasGradualTransitions``: at least two samples and no change between
    consecutive samples larger than ``threshold_mgdl``."""
    v = np.asarray(values_mgdl, dtype=float)
    return bool(v.size > 1 and np.all(np.abs(np.diff(v)) <= threshold_mgdl))


def linear_regression_slope(x, y) -> float:
    """Least-squares slope of ``y`` over ``x`` (LoopKit's closed form; NaN/inf when
    all ``x`` are equal). The products are summed by ``np.sum`` (not a BLAS dot product, whose order of
    additions depends on the BLAS library and the CPU)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    with np.errstate(divide="ignore", invalid="ignore"):
        return float((n * (x * y).sum() - x.sum() * y.sum()) / (n * (x * x).sum() - x.sum() ** 2))


def momentum_effect(glucose, *, duration_min: float = MOMENTUM_DURATION_MIN, delta_min: float = 5.0,
                    velocity_max_mgdl_per_min: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Short-term momentum effect from a linear regression over ``glucose``.

    Parameters
    ----------
    glucose : GlucoseArrays or (dates_s, values_mgdl)
        The recent samples (Loop passes those of the last 15 min, see
        :func:`pyloopkit.glucose_store.momentum_samples`).
    duration_min : float
        How far past the last sample the effect runs (Loop 2019: 30 min; LoopAlgorithm: 15).
    delta_min : float
        Grid interval of the output, minutes.
    velocity_max_mgdl_per_min : float or None
        Upper cap on the slope (LoopAlgorithm: 4 mg/dL/min); None = no cap (Loop 2019).
        Falling slopes are never capped.

    Returns
    -------
    dates_s, values_mgdl : arrays
        Grid dates from ``floor(last)`` to ``ceil(last + duration)``; the effect is
        ``slope * max(0, date - last)``. Empty when there are fewer than 3 samples, the
        samples are not continuous, any is display-only, the provenance is mixed or the
        slope is not finite (e.g. all samples at one time).
    """
    g = as_glucose(glucose)
    empty = (np.empty(0), np.empty(0))
    if (len(g) < 3 or not is_continuous(g.date_s) or np.any(g.is_display_only)
            or not has_single_provenance(g.provenance)):
        return empty
    slope_per_s = linear_regression_slope(g.date_s - g.date_s[0], g.value_mgdl)
    if not np.isfinite(slope_per_s):
        return empty
    if velocity_max_mgdl_per_min is not None:
        slope_per_s = min(slope_per_s, velocity_max_mgdl_per_min / 60.0)
    delta_s = delta_min * 60.0
    last_s = g.date_s[-1]
    start = float(floor_to_grid(last_s, delta_s))
    end = float(ceil_to_grid(last_s + duration_min * 60.0, delta_s))
    dates = start + delta_s * np.arange(int(np.floor((end - start) / delta_s + 1e-9)) + 1)
    return dates, np.maximum(0.0, dates - last_s) * slope_per_s


COMPILED_MOMENTUM_MAX_SAMPLES = 7
"""The compiled momentum fits its slope over at most this many samples (Loop's 15 min of 5-min
CGM are at most 4): below 8 values ``np.sum`` adds them one after the other from 0, as the compiled
pass does (from 8 on, numpy sums in blocks)."""


def recent_momentum_effect(dates_s, values_mgdl, now_s: float, *, data_interval_min: float,
                           velocity_max_mgdl_per_min: float | None = None,
                           gradual_threshold_mgdl: float | None = None,
                           delta_min: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """The Loop core's momentum effect: :func:`momentum_effect` of the samples dated at or after
    ``now_s - data_interval_min``, running ``data_interval_min`` past the last one.

    Parameters
    ----------
    dates_s, values_mgdl : float arrays
        The core's glucose history (s, mg/dL), already validated: finite, strictly increasing
        dates, one source, none display-only.
    now_s : float
        Calculation time (s).
    data_interval_min : float
        How far back samples are used, and how long the effect runs (min).
    velocity_max_mgdl_per_min : float or None
        Slope cap (see :func:`momentum_effect`).
    gradual_threshold_mgdl : float or None
        When set, no effect unless those samples are at least two with no step between consecutive
        ones larger than it (mg/dL; LoopAlgorithm's ``hasGradualTransitions``).
    delta_min : float
        Grid interval of the output (min).

    Returns
    -------
    dates_s, values_mgdl : arrays
        As :func:`momentum_effect`. With numba in use, one compiled pass
        (:func:`_momentum_compiled`) bit-identical to the array path, except over more than
        :data:`COMPILED_MOMENTUM_MAX_SAMPLES` samples, where the array path runs.
    """
    since_s = now_s - data_interval_min * 60.0
    if HAVE_NUMBA:
        dates, values, covered = _momentum_compiled(
            dates_s, values_mgdl, since_s, gradual_threshold_mgdl is not None,
            np.nan if gradual_threshold_mgdl is None else float(gradual_threshold_mgdl), data_interval_min, delta_min,
            velocity_max_mgdl_per_min is not None,
            np.nan if velocity_max_mgdl_per_min is None else float(velocity_max_mgdl_per_min), 2.0)
        if covered:
            return dates, values
    keep = dates_s >= since_s
    if gradual_threshold_mgdl is not None and not has_gradual_transitions(values_mgdl[keep], gradual_threshold_mgdl):
        return np.empty(0), np.empty(0)
    return momentum_effect(GlucoseArrays.of_validated(dates_s[keep], values_mgdl[keep]), duration_min=data_interval_min,
                           delta_min=delta_min, velocity_max_mgdl_per_min=velocity_max_mgdl_per_min)


@jit
def _momentum_compiled(dates_s, values_mgdl, since_s, gradual, gradual_threshold_mgdl, duration_min, delta_min,
                       capped, velocity_max_mgdl_per_min, square):
    """Compiled :func:`recent_momentum_effect` (the window, the gradual-transition check,
    :func:`momentum_effect`'s checks, :func:`linear_regression_slope`, the cap and the grid) with
    the array path's arithmetic: sums and sums of products added one after the other, as ``np.sum``
    does for up to :data:`COMPILED_MOMENTUM_MAX_SAMPLES` values, and the squared sum
    as libm's ``pow(sum, square)`` like numpy's scalar power (``square`` is 2.0, passed at run
    time: a literal exponent would be folded into a product, which differs from ``pow`` in the
    last bit on some values). Returns ``(dates, values, covered)``; ``covered`` False: too many samples, run the
    array path."""
    empty = np.empty(0)
    keep = dates_s >= since_s
    d, v = dates_s[keep], values_mgdl[keep]
    n = d.size
    if gradual:
        if n < 2:
            return empty, empty, True
        for k in range(n - 1):
            if not abs(v[k + 1] - v[k]) <= gradual_threshold_mgdl:
                return empty, empty, True
    if n < 3 or not abs(d[-1] - d[0]) < CONTINUITY_INTERVAL_S * n:
        return empty, empty, True
    if n > COMPILED_MOMENTUM_MAX_SAMPLES:
        return empty, empty, False
    x = d - d[0]
    xy, xx, sum_x, sum_v = 0.0, 0.0, 0.0, 0.0
    for k in range(n):
        xy += x[k] * v[k]
        xx += x[k] * x[k]
        sum_x += x[k]
        sum_v += v[k]
    denominator = n * xx - sum_x ** square
    if denominator == 0.0:
        return empty, empty, True
    slope_per_s = (n * xy - sum_x * sum_v) / denominator
    if not np.isfinite(slope_per_s):
        return empty, empty, True
    if capped and velocity_max_mgdl_per_min / 60.0 < slope_per_s:
        slope_per_s = velocity_max_mgdl_per_min / 60.0
    delta_s = delta_min * 60.0
    last_s = d[-1]
    start = np.floor(last_s / delta_s) * delta_s
    end = np.ceil((last_s + duration_min * 60.0) / delta_s) * delta_s
    dates = start + delta_s * np.arange(int(np.floor((end - start) / delta_s + 1e-9)) + 1)
    values = np.empty(dates.size)
    for k in range(dates.size):
        since_last = dates[k] - last_s
        values[k] = (since_last if since_last > 0.0 else 0.0) * slope_per_s
    return dates, values, True


@jit
def _pair_end(dates_s, start, min_interval_s):
    """Index of the first sample after ``start`` more than ``min_interval_s`` later (the end of
    the glucose pair starting there), or ``dates_s.size`` when none is."""
    end = start + 1
    while end < dates_s.size and not dates_s[end] - dates_s[start] > min_interval_s:
        end += 1
    return end


@jit
def _counteraction_pairs(dates_s, first, min_interval_s):
    """Walk LoopKit's glucose pairs: from ``first``, each pair ends at the first later sample
    more than ``min_interval_s`` after its start, and the next pair starts there."""
    n = dates_s.size
    starts = np.empty(n, dtype=np.int64)
    ends = np.empty(n, dtype=np.int64)
    count = 0
    start = first
    end = _pair_end(dates_s, start, min_interval_s)
    while end < n:
        starts[count] = start
        ends[count] = end
        count += 1
        start = end
        end = _pair_end(dates_s, start, min_interval_s)
    return starts[:count], ends[:count]


@jit
def _at_or_after(sorted_values, x, lo):
    """``np.searchsorted(sorted_values, x)`` (side left) for finite ``x``, walking forward from
    ``lo``, an index known not to exceed it."""
    while lo < sorted_values.size and sorted_values[lo] < x:
        lo += 1
    return lo


@jit
def _counteraction_compiled(dates_s, values, provenance, display_only, e_dates, e_values, min_interval_s):
    """Compiled :func:`counteraction_effects` after its checks (finite dates, in order): the same
    pairs, the same dropped pairs (provenance change, display-only sample), the same stop at the
    first uncovered pair and the same arithmetic, in one pass. Pair dates only grow, so the effect
    indices (``np.searchsorted`` of the array path) come from one forward walk over the effect dates;
    the results are views of the pass's buffers."""
    first = np.searchsorted(dates_s, e_dates[0])
    if first >= dates_s.size:
        return np.empty(0), np.empty(0), np.empty(0)
    n = dates_s.size
    start_s, end_s, velocity = np.empty(n), np.empty(n), np.empty(n)
    count = 0
    reached = 0
    s, e = first, _pair_end(dates_s, first, min_interval_s)
    while e < n:
        if provenance[s] == provenance[e] and not display_only[s] and not display_only[e]:
            start_effect = _at_or_after(e_dates, dates_s[s], reached)
            reached = _at_or_after(e_dates, dates_s[e], start_effect)
            end_effect = max(reached, start_effect + 1)
            if end_effect >= e_dates.size:
                break
            discrepancy = (values[e] - values[s]) - (e_values[end_effect] - e_values[start_effect])
            start_s[count], end_s[count] = dates_s[s], dates_s[e]
            velocity[count] = discrepancy / (dates_s[e] - dates_s[s]) * 60.0
            count += 1
        s, e = e, _pair_end(dates_s, e, min_interval_s)
    return start_s[:count], end_s[:count], velocity[:count]


def _effect_arrays(effect_dates_s, effect_values_mgdl) -> tuple[np.ndarray, np.ndarray]:
    dates = np.asarray(effect_dates_s, dtype=float).reshape(-1)
    values = np.asarray(effect_values_mgdl, dtype=float).reshape(-1)
    problems = []
    if values.size != dates.size:
        problems.append(Problem("effect_values_mgdl", None, values.size,
                                f"expected {dates.size} values to match the effect dates"))
    raise_if(problems)
    problems += [Problem("effect_dates_s", int(i), dates[i], "not a finite time")
                 for i in np.flatnonzero(~np.isfinite(dates))]
    problems += [Problem("effect_values_mgdl", int(i), values[i], "not a finite value")
                 for i in np.flatnonzero(~np.isfinite(values))]
    problems += [Problem("effect_dates_s", int(i) + 1, dates[i + 1], "effect dates must be in chronological order")
                 for i in np.flatnonzero(np.diff(dates) < 0)]
    raise_if(problems)
    return dates, values


def counteraction_effects(glucose, effect_dates_s, effect_values_mgdl, validate: bool = True
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Insulin counteraction effects (ICE): glucose change minus effect change, per interval.

    Parameters
    ----------
    glucose : GlucoseArrays or (dates_s, values_mgdl)
        Glucose samples (sorted by date on construction).
    effect_dates_s, effect_values_mgdl : arrays
        The effect to be countered (normally the cumulative insulin effect), in
        chronological order.
    validate : bool
        False skips the checks of the effect arrays (the Loop core's own insulin effect).

    Returns
    -------
    start_s, end_s : float arrays
        Dates of the two glucose samples of each interval.
    velocity_mgdl_per_min : float array
        ``(glucose change - effect change) / (end - start)`` in mg/dL/min, where the
        effect change is taken between the first effects at or after each sample date.

    Notes
    -----
    LoopAlgorithm semantics: pairs start at the first sample dated at or after the first
    effect; a pair needs more than 4 min between samples (closer samples are skipped);
    pairs across a provenance change or touching a display-only sample are dropped; the
    timeline stops at the first pair the effects do not cover.
    """
    g = as_glucose(glucose)
    e_dates, e_values = (_effect_arrays(effect_dates_s, effect_values_mgdl) if validate
                         else (effect_dates_s, effect_values_mgdl))
    empty = (np.empty(0), np.empty(0), np.empty(0))
    if len(g) == 0 or e_dates.size == 0:
        return empty
    if HAVE_NUMBA and g.provenance.dtype.kind in "biu":  # integer source codes (the Loop core's glucose)
        return _counteraction_compiled(g.date_s, g.value_mgdl, g.provenance, g.is_display_only,
                                       np.asarray(e_dates, dtype=float), np.asarray(e_values, dtype=float),
                                       COUNTERACTION_MIN_INTERVAL_S)
    first = int(np.searchsorted(g.date_s, e_dates[0], side="left"))
    if first >= len(g):
        return empty
    starts, ends = _counteraction_pairs(g.date_s, first, COUNTERACTION_MIN_INTERVAL_S)
    valid = ((g.provenance[starts] == g.provenance[ends])
             & ~g.is_display_only[starts] & ~g.is_display_only[ends])
    starts, ends = starts[valid], ends[valid]
    start_effect = np.searchsorted(e_dates, g.date_s[starts], side="left")
    end_effect = np.maximum(np.searchsorted(e_dates, g.date_s[ends], side="left"), start_effect + 1)
    uncovered = np.flatnonzero(end_effect >= e_dates.size)
    n = int(uncovered[0]) if uncovered.size else starts.size
    starts, ends, start_effect, end_effect = starts[:n], ends[:n], start_effect[:n], end_effect[:n]
    start_s, end_s = g.date_s[starts], g.date_s[ends]
    discrepancy = (g.value_mgdl[ends] - g.value_mgdl[starts]) - (e_values[end_effect] - e_values[start_effect])
    return start_s, end_s, discrepancy / (end_s - start_s) * 60.0


__all__ = [
    "GlucoseArrays", "counteraction_effects", "momentum_effect", "is_continuous",
    "has_single_provenance", "has_gradual_transitions", "linear_regression_slope",
]
