"""Loop's effect arithmetic on arrays: prediction, decay, subtracting and summing effects.

An *effect timeline* is a pair ``(dates_s, values_mgdl)``: float seconds since
Loop's reference date (see :mod:`pyloopkit.date`) and the cumulative glucose
effect in mg/dL at each date, normally on the 5-minute grid. Insulin
counteraction effects (ICE) are velocities: ``(start_s, end_s, velocity_mgdl_per_min)``.

Reference behaviour: LoopKit ``LoopMath`` (``predictGlucose``, ``decayEffect``,
``combinedSums(of:)``, ``subtracting(_:withUniformInterval:)``), identical in the
2019 LoopKit that Tidepool's PyLoopKit ports and in the Swift ``LoopAlgorithm``
package, except the decay effect, for which LoopAlgorithm later replaced the
step-by-step accumulation with a continuous quadratic (:func:`decay_effect_continuous`).
All functions are vectorised; none loops in Python over samples.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .date import GRID_S, ceil_to_grid, floor_to_grid
from .errors import Problem, raise_if
from .jit import HAVE_NUMBA, jit

Effect = tuple[np.ndarray, np.ndarray]
"""``(dates_s, values_mgdl)``."""


def _empty() -> Effect:
    return np.empty(0), np.empty(0)


def series_problems(field: str, columns: dict[str, np.ndarray], dates_key: str,
                     strict: bool = True) -> list[Problem]:
    """Problems of index-matched columns named ``field.key``: unequal lengths, non-finite values,
    dates (``columns[dates_key]``) not strictly increasing (or not sorted when ``strict`` is False)."""
    problems: list[Problem] = []
    lengths = {k: v.size for k, v in columns.items()}
    first_len = lengths[dates_key]
    dates = columns[dates_key]
    if (len(set(lengths.values())) == 1 and all(np.isfinite(v).all() for v in columns.values())
            and (dates.size < 2 or (np.diff(dates) > 0 if strict else np.diff(dates) >= 0).all())):
        return problems
    for key, n in lengths.items():
        if n != first_len:
            problems.append(Problem(f"{field}.{key}", None, n,
                                    f"length differs from {field}.{dates_key} ({first_len})"))
    if problems:
        return problems
    for key, arr in columns.items():
        bad = np.flatnonzero(~np.isfinite(arr))
        problems += [Problem(f"{field}.{key}", int(i), float(arr[i]), "not a finite number") for i in bad]
    dates = columns[dates_key]
    if dates.size > 1 and not problems:
        step = np.diff(dates)
        bad = np.flatnonzero(step <= 0) if strict else np.flatnonzero(step < 0)
        order = "strictly increasing" if strict else "sorted ascending"
        problems += [Problem(f"{field}.{dates_key}", int(i) + 1, float(dates[i + 1]), f"dates must be {order}")
                     for i in bad]
    return problems


def _as_effect(field: str, effect) -> tuple[Effect, list[Problem]]:
    """``(dates, values)`` as float arrays plus the problems found in them."""
    try:
        dates, values = effect
    except (TypeError, ValueError):
        return _empty(), [Problem(field, None, type(effect).__name__, "expected a (dates_s, values) pair")]
    d = np.asarray(dates, dtype=float).ravel()
    v = np.asarray(values, dtype=float).ravel()
    return (d, v), series_problems(field, {"dates_s": d, "values": v}, "dates_s")


def _scalar_problem(field: str, value: float) -> list[Problem]:
    return [] if np.isfinite(value) else [Problem(field, None, value, "not a finite number")]


def predict_glucose(start_date_s: float, start_mgdl: float, effects: Sequence[Effect],
                    momentum: Effect | None = None, validate: bool = True) -> Effect:
    """Predicted glucose from a starting value and effect timelines (LoopKit ``predictGlucose``).

    Parameters
    ----------
    start_date_s : float
        Date of the starting glucose (s since the reference date).
    start_mgdl : float
        Starting glucose (mg/dL).
    effects : sequence of (dates_s, values_mgdl)
        Cumulative effect timelines, each with strictly increasing dates. Each
        contributes its change between consecutive dates, credited to the later
        date; a timeline's first date contributes 0 (but its date still appears
        in the output when after the start).
    momentum : (dates_s, values_mgdl), optional
        Momentum effect. With more than two points it is blended linearly into the
        summed effects: fully momentum at the start, fully the other effects at its
        last point (``split = clip((n - i)/(n - 2) - 1/(n - 2) + offset, 0, 1)``,
        ``offset`` = (start - first momentum date) / momentum step / (n - 2)). With
        two points Swift's split is NaN, which its ``max``/``min`` turn into 0: the
        momentum then adds nothing but its dates.
    validate : bool
        False skips the checks of the start and the timelines (float arrays, index-matched,
        finite, strictly increasing dates) for callers whose timelines are known to pass them
        (the Loop core: its inputs are validated at the boundary).

    Returns
    -------
    (dates_s, values_mgdl)
        The starting point followed by every effect date after ``start_date_s``,
        each the previous value plus the summed effect change at that date.
    """
    if validate:
        timelines, mom = _checked_timelines(start_date_s, start_mgdl, effects, momentum)
    else:
        timelines, mom = list(effects), momentum
    if HAVE_NUMBA and timelines:
        no_momentum = mom is None
        return _predict_compiled(
            float(start_date_s), float(start_mgdl), np.concatenate([d for d, _ in timelines]),
            np.concatenate([v for _, v in timelines]), np.cumsum([0] + [d.size for d, _ in timelines]),
            np.empty(0) if no_momentum else mom[0], np.empty(0) if no_momentum else mom[1], not no_momentum)

    pieces_d = [d for d, _ in timelines]
    pieces_c = [np.diff(v, prepend=v[:1]) for _, v in timelines]
    if mom is not None:
        pieces_d.append(mom[0])
        pieces_c.append(np.zeros(mom[0].size))
    all_d = np.concatenate(pieces_d) if pieces_d else np.empty(0)
    dates, inverse = np.unique(all_d, return_inverse=True)
    change = np.bincount(inverse, weights=np.concatenate(pieces_c) if pieces_c else None, minlength=dates.size)
    if mom is not None and mom[0].size > 1:
        change[np.searchsorted(dates, mom[0])] = _blend_momentum(change, dates, mom, float(start_date_s))
    after = dates > start_date_s
    out_d = np.concatenate(([float(start_date_s)], dates[after]))
    out_v = float(start_mgdl) + np.concatenate(([0.0], np.cumsum(change[after])))
    return out_d, out_v


@jit
def _predict_compiled(start_date_s, start_mgdl, dates, values, offsets, momentum_dates, momentum_values, momentum):
    """Compiled :func:`predict_glucose` for timelines concatenated (``offsets`` bound each one): the
    array path's operations element by element (each timeline's changes, summed per unique date in
    input order as ``np.bincount`` does, the momentum blend, the running sum)."""
    n_effects = dates.size
    n_momentum = momentum_dates.size if momentum else 0
    all_dates = np.empty(n_effects + n_momentum)
    all_changes = np.zeros(n_effects + n_momentum)
    for t in range(offsets.size - 1):
        for j in range(offsets[t], offsets[t + 1]):
            all_dates[j] = dates[j]
            all_changes[j] = values[j] - values[offsets[t] if j == offsets[t] else j - 1]
    all_dates[n_effects:] = momentum_dates[:n_momentum]
    bounds = np.empty(offsets.size + 1, dtype=np.int64)
    bounds[:offsets.size] = offsets
    bounds[offsets.size] = n_effects + n_momentum
    unique, position = _unique_of_sorted_runs(all_dates, bounds)
    change = np.zeros(unique.size)
    for j in range(all_dates.size):
        change[position[j]] += all_changes[j]
    n = n_momentum
    if n > 1:
        blended = np.empty(n)
        for k in range(n):
            if n == 2:
                split = 0.0
            else:
                slope = 1.0 / (n - 2)
                split = (n - k) / (n - 2) - slope + (start_date_s - momentum_dates[0]) / (
                    momentum_dates[1] - momentum_dates[0]) * slope
                split = 0.0 if split < 0.0 else (1.0 if split > 1.0 else split)
            m_change = momentum_values[k] - momentum_values[0 if k == 0 else k - 1]
            blended[k] = (1.0 - split) * change[position[n_effects + k]] + split * m_change
        for k in range(n):
            change[position[n_effects + k]] = blended[k]
    first = np.searchsorted(unique, start_date_s, side="right")  # the first date after the start
    out_dates = np.empty(unique.size - first + 1)
    out_values = np.empty(unique.size - first + 1)
    out_dates[0] = start_date_s
    out_values[0] = start_mgdl + 0.0
    total = 0.0
    for j in range(first, unique.size):
        total = change[j] if j == first else total + change[j]
        out_dates[j - first + 1] = unique[j]
        out_values[j - first + 1] = start_mgdl + total
    return out_dates, out_values


@jit
def _unique_of_sorted_runs(dates, bounds):
    """``np.unique(dates)`` and each date's index in it (``np.searchsorted(unique, dates)``), for dates
    made of runs ``dates[bounds[r]:bounds[r + 1]]``: runs that are each sorted (every timeline of a
    prediction) are merged, without a sort; otherwise (a run out of order, a NaN) ``np.unique`` and
    binary searches give them."""
    n = dates.size
    position = np.empty(n, dtype=np.int64)
    runs = bounds.size - 1
    for r in range(runs):
        for j in range(bounds[r], bounds[r + 1]):
            if np.isnan(dates[j]) or (j > bounds[r] and dates[j] < dates[j - 1]):
                unique = np.unique(dates)
                for k in range(n):
                    position[k] = np.searchsorted(unique, dates[k])
                return unique, position
    unique = np.empty(n)
    head = bounds[:-1].copy()
    count = 0
    for _ in range(n):
        best = -1
        for r in range(runs):  # the run whose next date is the smallest
            if head[r] < bounds[r + 1] and (best < 0 or dates[head[r]] < dates[head[best]]):
                best = r
        j = head[best]
        if count == 0 or dates[j] != unique[count - 1]:
            unique[count] = dates[j]
            count += 1
        position[j] = count - 1
        head[best] = j + 1
    return unique[:count], position


def _checked_timelines(start_date_s, start_mgdl, effects, momentum):
    """:func:`predict_glucose`'s timelines and momentum as float arrays; raises naming every problem."""
    problems = _scalar_problem("start_date_s", float(start_date_s)) + _scalar_problem("start_mgdl", float(start_mgdl))
    timelines = []
    for i, effect in enumerate(effects):
        timeline, found = _as_effect(f"effects[{i}]", effect)
        timelines.append(timeline)
        problems += found
    mom = None
    if momentum is not None:
        mom, found = _as_effect("momentum", momentum)
        problems += found
    raise_if(problems)
    return timelines, mom


def _blend_momentum(change: np.ndarray, dates: np.ndarray, momentum: Effect, start_date_s: float) -> np.ndarray:
    """Blended change at each momentum date (see :func:`predict_glucose`)."""
    m_d, m_v = momentum
    n = m_d.size
    m_change = np.diff(m_v, prepend=m_v[:1])
    if n == 2:
        split = np.zeros(n)
    else:
        blend_count = n - 2
        blend_slope = 1.0 / blend_count
        blend_offset = (start_date_s - m_d[0]) / (m_d[1] - m_d[0]) * blend_slope
        split = np.clip((n - np.arange(n)) / blend_count - blend_slope + blend_offset, 0.0, 1.0)
    existing = change[np.searchsorted(dates, m_d)]
    return (1.0 - split) * existing + split * m_change


def _decay_dates(start_date_s: float, duration_s: float, delta_s: float) -> np.ndarray:
    """Swift's decay grid: floor(start), then every delta while before ceil(start + duration) (at least one)."""
    first = float(floor_to_grid(start_date_s, delta_s))
    end = float(ceil_to_grid(start_date_s + duration_s, delta_s))
    steps = max(1, int(round((end - first) / delta_s)) - 1)
    return first + delta_s * np.arange(steps + 1, dtype=float)


def _decay_problems(start_date_s, start_mgdl, velocity, duration_min, delta_min) -> list[Problem]:
    problems = (_scalar_problem("start_date_s", start_date_s) + _scalar_problem("start_mgdl", start_mgdl)
                + _scalar_problem("velocity_mgdl_per_min", velocity))
    if not (np.isfinite(delta_min) and delta_min > 0):
        problems.append(Problem("delta_min", None, delta_min, "must be a finite number > 0"))
    elif not (np.isfinite(duration_min) and duration_min > delta_min):
        problems.append(Problem("duration_min", None, duration_min,
                                f"must be a finite number > delta_min ({delta_min})"))
    return problems


def decay_effect(start_date_s: float, start_mgdl: float, velocity_mgdl_per_min: float,
                 duration_min: float, delta_min: float = 5.0) -> Effect:
    """Linearly decaying glucose velocity, accumulated step by step (LoopKit 2019 ``decayEffect``).

    The first point is ``(floor(start), start_mgdl)``. Step ``j`` (0-based) to the
    next grid date adds ``v * delta * (1 - j * delta / (duration - delta))``: the
    velocity falls linearly from ``v`` to 0 over ``duration - delta``. Steps
    continue while the date is before ``ceil(start + duration)`` (at least one).

    Parameters
    ----------
    start_date_s : float
        Date of the starting glucose (s).
    start_mgdl : float
        Starting glucose (mg/dL); the returned values are glucose levels.
    velocity_mgdl_per_min : float
        Initial velocity (mg/dL/min).
    duration_min : float
        Duration of the effect (min), greater than ``delta_min``.
    delta_min : float
        Grid step (min), 5 in Loop.

    Returns
    -------
    (dates_s, values_mgdl)
    """
    raise_if(_decay_problems(float(start_date_s), float(start_mgdl), float(velocity_mgdl_per_min),
                             float(duration_min), float(delta_min)))
    delta_s = delta_min * 60.0
    dates = _decay_dates(float(start_date_s), duration_min * 60.0, delta_s)
    j = np.arange(dates.size - 1, dtype=float)
    decay_span_min = duration_min - delta_min
    steps = velocity_mgdl_per_min * delta_min * (decay_span_min - j * delta_min) / decay_span_min
    return dates, float(start_mgdl) + np.concatenate(([0.0], np.cumsum(steps)))


def decay_effect_continuous(start_date_s: float, start_mgdl: float, velocity_mgdl_per_min: float,
                            duration_min: float, delta_min: float = 5.0) -> Effect:
    """Continuous decay effect of the current Swift LoopAlgorithm ``decayEffect``.

    Same dates as :func:`decay_effect`, but each value is a quadratic of the time
    since the glucose sample itself (not since the floored grid start), clamped at
    ``duration``: ``g(t) = a t^2 + b t + g0`` with ``g(delta) - g0 = v delta`` and
    ``g(2 delta) - g(delta) = v delta (1 - delta / (duration - delta))``, i.e.
    ``a = -v / (2 (duration - delta))`` and ``b = v (1 + delta / (2 (duration - delta)))``.
    For a sample on the grid it gives the same values as :func:`decay_effect`; a
    sub-step shift of the sample date no longer jumps the values at shared dates.
    The first point is ``(floor(start), start_mgdl)``.

    Parameters and returns as :func:`decay_effect`.
    """
    raise_if(_decay_problems(float(start_date_s), float(start_mgdl), float(velocity_mgdl_per_min),
                             float(duration_min), float(delta_min)))
    delta_s = delta_min * 60.0
    duration_s = duration_min * 60.0
    dates = _decay_dates(float(start_date_s), duration_s, delta_s)
    v_per_s = velocity_mgdl_per_min / 60.0
    a = -v_per_s / (2.0 * (duration_s - delta_s))
    b = v_per_s * (1.0 + delta_s / (2.0 * (duration_s - delta_s)))
    t = np.minimum(duration_s, dates[1:] - float(start_date_s))
    return dates, float(start_mgdl) + np.concatenate(([0.0], a * t * t + b * t))


@jit
def overlapping_part(effect_dates_s, effect_values, ice_end_s, ice_velocity):
    """:func:`subtracting`'s trims: the effect (dates s, values mg/dL) from the first ICE end on, the
    ICE (end dates s, velocities mg/dL/min) from the first remaining effect date on (both in date order)."""
    if ice_end_s.size:
        keep = effect_dates_s >= ice_end_s[0]
        effect_dates_s, effect_values = effect_dates_s[keep], effect_values[keep]
    if effect_dates_s.size:
        keep = ice_end_s >= effect_dates_s[0]
        ice_end_s, ice_velocity = ice_end_s[keep], ice_velocity[keep]
    return effect_dates_s, effect_values, ice_end_s, ice_velocity


def subtracting(ice_start_s, ice_end_s, ice_velocity_mgdl_per_min, effect_dates_s, effect_values_mgdl,
                effect_interval_s: float = GRID_S, validate: bool = True) -> Effect:
    """Counteraction effects minus a uniform effect timeline (LoopKit ``subtracting(_:withUniformInterval:)``).

    Used for retrospective correction: ICE minus the carb effect gives the
    discrepancies. Both series are first trimmed to their overlap (effects dated
    before the first ICE end, and ICE ending before the first effect date, are
    dropped). Walking the effect steps in order, each ICE interval is matched with
    the first unused step whose date is at or after the interval's end; the result
    at the ICE end date is ``velocity * effect_interval - step change``. Steps
    passed over while an ICE interval is longer than one step (a gap) are skipped.
    ICE intervals left when the steps run out keep ``velocity * effect_interval``.

    Parameters
    ----------
    ice_start_s, ice_end_s : array_like
        ICE interval bounds (s), sorted by end date.
    ice_velocity_mgdl_per_min : array_like
        ICE velocities (mg/dL/min).
    effect_dates_s, effect_values_mgdl : array_like
        Cumulative effect timeline to subtract (strictly increasing dates), e.g. the
        carb effect; may be empty (then the result is the ICE times the interval).
    effect_interval_s : float
        The effect timeline's step (s), 300 in Loop.
    validate : bool
        False skips the checks of the series (the Loop core's own, already valid timelines).

    Returns
    -------
    (dates_s, values_mgdl)
        One value per kept ICE interval, dated at its end.
    """
    starts = np.asarray(ice_start_s, dtype=float).ravel()
    ends = np.asarray(ice_end_s, dtype=float).ravel()
    vel = np.asarray(ice_velocity_mgdl_per_min, dtype=float).ravel()
    o_d = np.asarray(effect_dates_s, dtype=float).ravel()
    o_v = np.asarray(effect_values_mgdl, dtype=float).ravel()
    if validate:
        problems = series_problems("ice", {"end_s": ends, "start_s": starts, "velocity_mgdl_per_min": vel},
                                   "end_s", strict=False)
        problems += series_problems("effect", {"dates_s": o_d, "values_mgdl": o_v}, "dates_s")
        problems += _scalar_problem("effect_interval_s", float(effect_interval_s))
        raise_if(problems)

    o_d, o_v, ends, vel = overlapping_part(o_d, o_v, ends, vel)
    values = vel * (effect_interval_s / 60.0)
    if o_d.size > 1 and ends.size:
        changes = np.diff(o_v)
        # Earliest step (1-based index into o_d) whose date is >= each ICE end, then
        # each ICE takes the first step after the one its predecessor took.
        first_step = 1 + np.searchsorted(o_d[1:], ends, side="left")
        idx = np.arange(ends.size)
        taken = idx + np.maximum.accumulate(first_step - idx)
        matched = taken <= o_d.size - 1
        values[matched] -= changes[taken[matched] - 1]
    return ends, values


def combined_sums(dates_s, values_mgdl, duration_s: float,
                  validate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trailing sums of effects over a window (LoopKit ``combinedSums(of:)``).

    For each effect ``i`` (sorted by date), the sum of the values of every effect
    ``j <= i`` dated at or after ``date_i - duration``; the sum spans from the
    earliest included date to ``date_i``. Loop's retrospective correction uses
    ``duration = 1.01 x 30 min``.

    Parameters
    ----------
    dates_s : array_like
        Effect dates (s), sorted ascending (start = end for a glucose effect).
    values_mgdl : array_like
        Effect values (mg/dL), e.g. retrospective discrepancies.
    duration_s : float
        Window length (s).
    validate : bool
        False skips the checks of the series and the window (the Loop core's own values).

    Returns
    -------
    (start_s, end_s, values_mgdl)
    """
    d = np.asarray(dates_s, dtype=float).ravel()
    v = np.asarray(values_mgdl, dtype=float).ravel()
    if validate:
        problems = series_problems("effects", {"dates_s": d, "values_mgdl": v}, "dates_s", strict=False)
        if not (np.isfinite(duration_s) and duration_s >= 0):
            problems.append(Problem("duration_s", None, duration_s, "must be a finite number >= 0"))
        raise_if(problems)
    first = np.searchsorted(d, d - duration_s, side="left")
    total = np.concatenate(([0.0], np.cumsum(v)))
    return d[first], d.copy(), total[1:] - total[first]


def sum_effects(effects: Sequence[Effect]) -> Effect:
    """Sum of cumulative effect timelines on the union of their dates.

    Each timeline contributes its changes as in :func:`predict_glucose` (its first
    value counts as the baseline 0); the result is their running total, starting
    at 0 at the earliest date.
    """
    timelines, problems = [], []
    for i, effect in enumerate(effects):
        timeline, found = _as_effect(f"effects[{i}]", effect)
        timelines.append(timeline)
        problems += found
    raise_if(problems)
    if not timelines:
        return _empty()
    dates, inverse = np.unique(np.concatenate([d for d, _ in timelines]), return_inverse=True)
    change = np.bincount(inverse, weights=np.concatenate([np.diff(v, prepend=v[:1]) for _, v in timelines]),
                         minlength=dates.size)
    return dates, np.cumsum(change)
