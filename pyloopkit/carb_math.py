"""Carb math: absorption models, static and dynamic carb effects, carbs on board (COB).

Two families of semantics are implemented, selected by the ``model`` argument:

``"parabolic"`` -- Loop 2019 (LoopKit ``CarbMath.swift`` as ported by PyLoopKit)
    Static effects and COB follow Scheiner's parabolic curve. Dynamic absorption maps
    insulin counteraction effects (ICE) to entries split in proportion to each entry's
    *minimum* absorption rate (grams / maximum absorption time); the minimum absorption
    and everything after the observation use the *linear* model; the remaining time is
    the unabsorbed grams at the minimum rate.

``"linear"`` / ``"piecewise_linear"`` -- current LoopAlgorithm (``Carbs/CarbMath.swift``,
``CarbStatus.swift``)
    The named model is used everywhere: ICE are split in proportion to each entry's
    current modelled absorption rate, the remaining time follows the model over an
    initial absorption time (entered time x ``initial_absorption_time_overrun``), capped
    by the maximum absorption time (entered time x ``absorption_time_overrun``), and
    optionally adapts to the observed rate (``adaptive_rate``).

In both, ICE left over after every active entry has taken its share is credited to the
*last active* entry (Swift behaviour; PyLoopKit credits it elsewhere), and each ICE
interval is integrated over its real duration.

Units: times in seconds since the reference date, durations in seconds, carbs in g,
glucose in mg/dL, ICE velocities in mg/dL/min, carb ratio g/U, ISF mg/dL/U.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import Problem, raise_if
from .jit import HAVE_NUMBA, jit
from .schedule import value_at

DEFAULT_DELAY_S = 600.0
"""Carb effect delay (LoopKit ``CarbMath.defaultEffectDelay``): 10 min."""

DEFAULT_ABSORPTION_TIME_OVERRUN = 1.5
"""Maximum absorption time / entered absorption time (``CarbMath.defaultAbsorptionTimeOverrun``)."""

ADAPTIVE_RATE_STANDBY_FRACTION = 0.2
"""LoopAlgorithm: adaptive rate starts after this fraction of the initial absorption time."""

PIECEWISE_END_OF_RISE = 0.15
PIECEWISE_START_OF_FALL = 0.5
_PIECEWISE_SCALE = 2.0 / (1.0 + PIECEWISE_START_OF_FALL - PIECEWISE_END_OF_RISE)

_FLOAT_ULP = float(np.finfo(np.float32).eps)  # Swift Double(Float.ulpOfOne)
_DOUBLE_ULP = float(np.finfo(np.float64).eps)  # Swift Double.ulpOfOne

MODELS = {"parabolic": 0, "linear": 1, "piecewise_linear": 2}
_LINEAR = 1


# --- Absorption model formulas (scalar; NaN falls to the last branch like Swift's switch) ---

def _fraction_py(model, p):
    """Fraction of the carbs absorbed at fraction ``p`` of the absorption time."""
    if model == 0:
        if p <= 0.0:
            return 0.0
        if p <= 0.5:
            return 2.0 * p * p
        if p < 1.0:
            return -1.0 + 4.0 * (p - p * p / 2.0)
        return 1.0
    if model == 1:
        if p <= 0.0:
            return 0.0
        if p < 1.0:
            return p
        return 1.0
    if p <= 0.0:
        return 0.0
    if p < PIECEWISE_END_OF_RISE:
        return 0.5 * _PIECEWISE_SCALE * p * p / PIECEWISE_END_OF_RISE
    if p < PIECEWISE_START_OF_FALL:
        return _PIECEWISE_SCALE * (p - 0.5 * PIECEWISE_END_OF_RISE)
    if p < 1.0:
        return _PIECEWISE_SCALE * (PIECEWISE_START_OF_FALL - 0.5 * PIECEWISE_END_OF_RISE
                                   + (p - PIECEWISE_START_OF_FALL)
                                   * (1.0 - 0.5 * (p - PIECEWISE_START_OF_FALL) / (1.0 - PIECEWISE_START_OF_FALL)))
    return 1.0


def _percent_time_py(model, a):
    """Fraction of the absorption time needed to absorb fraction ``a`` (inverse of the above)."""
    if a <= 0.0:
        return 0.0
    if model == 0:
        if a <= 0.5:
            return np.sqrt(a / 2.0)
        if a < 1.0:
            return (a + 1.0) / (2.0 + np.sqrt(2.0 - 2.0 * a))
        return 1.0
    if model == 1:
        if a < 1.0:
            return a
        return 1.0
    if a < 0.5 * _PIECEWISE_SCALE * PIECEWISE_END_OF_RISE:
        return np.sqrt(2.0 * PIECEWISE_END_OF_RISE * a / _PIECEWISE_SCALE)
    if a < _PIECEWISE_SCALE * (PIECEWISE_START_OF_FALL - 0.5 * PIECEWISE_END_OF_RISE):
        return 0.5 * PIECEWISE_END_OF_RISE + a / _PIECEWISE_SCALE
    if a < 1.0:
        return 1.0 - np.sqrt((1.0 - PIECEWISE_START_OF_FALL)
                             * (1.0 + PIECEWISE_START_OF_FALL - PIECEWISE_END_OF_RISE) * (1.0 - a))
    return 1.0


def _rate_py(model, p):
    """Absorption rate at fraction ``p`` of the absorption time, relative to the average rate."""
    if model == 0:
        if 0.0 < p <= 0.5:
            return 4.0 * p
        if 0.5 < p < 1.0:
            return 4.0 * (1.0 - p)
        return 0.0
    if model == 1:
        if 0.0 < p <= 1.0:
            return 1.0
        return 0.0
    if 0.0 < p < PIECEWISE_END_OF_RISE:
        return _PIECEWISE_SCALE * p / PIECEWISE_END_OF_RISE
    if PIECEWISE_END_OF_RISE <= p < PIECEWISE_START_OF_FALL:
        return _PIECEWISE_SCALE
    if PIECEWISE_START_OF_FALL <= p < 1.0:
        return _PIECEWISE_SCALE * (1.0 - p) / (1.0 - PIECEWISE_START_OF_FALL)
    return 0.0


_fraction = jit(_fraction_py)
_percent_time = jit(_percent_time_py)
_rate = jit(_rate_py)
_FRACTION, _PERCENT_TIME, _RATE = 0, 1, 2


@jit
def _apply(quantity, model, values):
    """One of the three scalar formulas over a 1-D array (so both the sequential kernel and
    the grid code use the same formulas)."""
    out = np.empty_like(values)
    for i in range(values.size):
        if quantity == _FRACTION:
            out[i] = _fraction(model, values[i])
        elif quantity == _PERCENT_TIME:
            out[i] = _percent_time(model, values[i])
        else:
            out[i] = _rate(model, values[i])
    return out


def _curve(quantity: int, model: int, values) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return _apply(quantity, model, np.ascontiguousarray(x).reshape(-1)).reshape(x.shape)


def _model_id(model: str) -> int:
    try:
        return MODELS[model]
    except KeyError:
        raise_if([Problem("model", None, model, f"unknown carb absorption model; expected one of {list(MODELS)}")])


def _percent(time_s, absorption_time_s):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(time_s, dtype=float) / np.asarray(absorption_time_s, dtype=float)


@dataclass(frozen=True)
class AbsorptionModel:
    """A carb absorption curve (``"parabolic"``, ``"linear"`` or ``"piecewise_linear"``),
    vectorised over arrays of fractions of the absorption time."""

    name: str

    @property
    def id(self) -> int:
        return _model_id(self.name)

    def percent_absorption(self, percent_time) -> np.ndarray:
        """Fraction absorbed (0..1) at each fraction of the absorption time."""
        return _curve(_FRACTION, self.id, percent_time)

    def percent_time(self, percent_absorption) -> np.ndarray:
        """Fraction of the absorption time needed to absorb each fraction (inverse curve)."""
        return _curve(_PERCENT_TIME, self.id, percent_absorption)

    def percent_rate(self, percent_time) -> np.ndarray:
        """Absorption rate relative to the average rate (grams / absorption time)."""
        return _curve(_RATE, self.id, percent_time)

    def absorbed(self, grams, time_s, absorption_time_s) -> np.ndarray:
        """Grams absorbed ``time_s`` after the absorption start (broadcasting)."""
        return np.asarray(grams, dtype=float) * self.percent_absorption(_percent(time_s, absorption_time_s))

    def unabsorbed(self, grams, time_s, absorption_time_s) -> np.ndarray:
        """Grams not yet absorbed ``time_s`` after the absorption start (broadcasting)."""
        return np.asarray(grams, dtype=float) * (1.0 - self.percent_absorption(_percent(time_s, absorption_time_s)))


PARABOLIC = AbsorptionModel("parabolic")
LINEAR = AbsorptionModel("linear")
PIECEWISE_LINEAR = AbsorptionModel("piecewise_linear")


# --- Input checks ---

def _entries(carb_dates_s, grams, absorption_time_s, validate: bool = True):
    dates = np.asarray(carb_dates_s, dtype=float).reshape(-1)
    n = dates.size
    g = np.asarray(grams, dtype=float).reshape(-1)
    t = np.asarray(absorption_time_s, dtype=float)
    t = np.full(n, float(t)) if t.ndim == 0 else t.reshape(-1)
    if not validate:
        return dates, g, t
    problems = [Problem(name, None, arr.size, f"expected {n} values to match the carb dates")
                for name, arr in (("grams", g), ("absorption_time_s", t)) if arr.size != n]
    raise_if(problems)
    problems += [Problem("carb_dates_s", int(i), dates[i], "not a finite time")
                 for i in np.flatnonzero(~np.isfinite(dates))]
    problems += [Problem("grams", int(i), g[i], "carbs must be finite and >= 0 g")
                 for i in np.flatnonzero(~(np.isfinite(g) & (g >= 0)))]
    problems += [Problem("absorption_time_s", int(i), t[i], "absorption time must be finite and > 0 s")
                 for i in np.flatnonzero(~(np.isfinite(t) & (t > 0)))]
    raise_if(problems)
    return dates, g, t


def _dates(dates_s, field: str = "dates_s", validate: bool = True) -> np.ndarray:
    d = np.asarray(dates_s, dtype=float).reshape(-1)
    if not validate:
        return d
    raise_if([Problem(field, int(i), d[i], "not a finite time") for i in np.flatnonzero(~np.isfinite(d))])
    return d


def _schedule_at(schedule, dates_s: np.ndarray, field: str, validate: bool = True) -> np.ndarray:
    """Values of a schedule (anything with ``.at(seconds)``), a scalar or a per-entry array."""
    if hasattr(schedule, "at"):
        values = np.asarray(schedule.at(dates_s), dtype=float)
        if not validate:
            return values
    else:
        values = np.asarray(schedule, dtype=float)
        raise_if([] if values.ndim == 0 or values.shape == dates_s.shape else [
            Problem(field, None, values.shape, f"expected a scalar or {dates_s.size} per-entry values")])
        values = np.broadcast_to(values, dates_s.shape)
    raise_if([Problem(field, int(i), values[i], "must be finite and > 0")
              for i in np.flatnonzero(~(np.isfinite(values) & (values > 0)))])
    return values


def carb_sensitivity_factor(carb_dates_s, carb_ratio, sensitivity, validate: bool = True) -> np.ndarray:
    """ISF / CR (mg/dL per g) in force at each entry's start (LoopKit uses the entry date);
    ``validate=False`` skips the checks of the dates and of the schedules' values."""
    d = _dates(carb_dates_s, "carb_dates_s", validate)
    return (_schedule_at(sensitivity, d, "sensitivity", validate)
            / _schedule_at(carb_ratio, d, "carb_ratio", validate))


# --- Date ranges and grouping ---

def simulation_dates(carb_dates_s, absorption_time_s, *, delay_s: float = DEFAULT_DELAY_S,
                     delta_s: float = 300.0, start_s: float | None = None, end_s: float | None = None,
                     validate: bool = True) -> np.ndarray:
    """LoopKit ``simulationDateRange``: grid from ``floor(start)`` (default: first entry) to
    ``ceil(end)`` (default: latest entry start + absorption time + delay), every ``delta_s``.

    Like Swift's ``repeat ... while date <= end`` loop the grid holds at least one date.
    ``absorption_time_s`` may be 0 here (a status whose absorption is complete). ``validate=False``
    skips the checks of the dates and absorption times (a status computed from checked entries)."""
    dates = _dates(carb_dates_s, "carb_dates_s", validate)
    times = np.asarray(absorption_time_s, dtype=float)
    times = times if times.shape == dates.shape else np.broadcast_to(times, dates.shape)
    if validate:
        raise_if([Problem("absorption_time_s", int(i), times[i], "absorption time must be finite and >= 0 s")
                  for i in np.flatnonzero(~(np.isfinite(times) & (times >= 0)))])
    if dates.size == 0 and (start_s is None or end_s is None):
        return np.empty(0)
    return _grid_between(float(dates.min() if start_s is None else start_s),
                         float(np.max(dates + times + delay_s) if end_s is None else end_s), float(delta_s))


@jit
def _grid_between(start_s, end_s, delta_s):
    """:func:`simulation_dates`' grid: ``floor(start)`` to ``ceil(end)`` every ``delta_s`` (s), at least one date."""
    first = np.floor(start_s / delta_s) * delta_s
    last = np.ceil(end_s / delta_s) * delta_s
    return first + delta_s * np.arange(max(int(np.floor((last - first) / delta_s + 1e-9)) + 1, 1))


def group_by_overlapping_absorption_windows(carb_dates_s, absorption_time_s) -> list[np.ndarray]:
    """Indices of entries grouped into runs whose absorption windows overlap.

    LoopKit ``groupedByOverlappingAbsorptionTimes``: in chronological order, an entry joins
    the current group when the previous entry's ``start + absorption time`` is strictly
    after its start. Returns index arrays into the inputs, groups in chronological order.
    """
    dates, _, times = _entries(carb_dates_s, np.zeros(np.size(carb_dates_s)), absorption_time_s)
    order = np.argsort(dates, kind="stable")
    d, t = dates[order], times[order]
    breaks = np.flatnonzero(d[:-1] + t[:-1] <= d[1:]) + 1
    return [g for g in np.split(order, breaks) if g.size]


# --- Static effects and COB ---

def carbs_on_board(carb_dates_s, grams, absorption_time_s, dates_s, *, delay_s: float = DEFAULT_DELAY_S,
                   model: str = "parabolic") -> np.ndarray:
    """Carbs on board (g) at ``dates_s`` assuming the modelled absorption (no observation).

    An entry counts from its start date: the full grams until ``delay_s`` has passed, then
    the unabsorbed part of the ``model`` curve over its absorption time (LoopKit
    ``carbsOnBoard``).
    """
    starts, g, times = _entries(carb_dates_s, grams, absorption_time_s)
    d = _dates(dates_s)
    model_ = AbsorptionModel(model)
    if HAVE_NUMBA:
        return _static_kernel(True, model_.id, np.ascontiguousarray(d), starts, g, times, np.ones(g.size),
                              float(delay_s))
    since = d[None, :] - starts[:, None]
    cob = np.where(since >= 0, model_.unabsorbed(g[:, None], since - delay_s, times[:, None]), 0.0)
    return cob.sum(axis=0)


def carb_effects(carb_dates_s, grams, absorption_time_s, carb_ratio, sensitivity, dates_s, *,
                 delay_s: float = DEFAULT_DELAY_S, model: str = "parabolic") -> np.ndarray:
    """Cumulative glucose effect (mg/dL) of carb entries at ``dates_s``, modelled absorption.

    Each entry contributes ``ISF/CR x absorbed grams`` with ISF and CR taken at the entry's
    start (``carb_ratio`` and ``sensitivity`` are schedules with ``.at(seconds)``, scalars,
    or per-entry arrays); a meal's total effect is ``ISF/CR x grams``.
    """
    starts, g, times = _entries(carb_dates_s, grams, absorption_time_s)
    d = _dates(dates_s)
    csf = carb_sensitivity_factor(starts, carb_ratio, sensitivity)
    if HAVE_NUMBA:
        return _static_kernel(False, _model_id(model), np.ascontiguousarray(d), starts, g, times,
                              np.ascontiguousarray(csf, dtype=float), float(delay_s))
    absorbed = AbsorptionModel(model).absorbed(g[:, None], d[None, :] - starts[:, None] - delay_s, times[:, None])
    return (csf[:, None] * absorbed).sum(axis=0)


# --- Dynamic absorption (LoopKit CarbStatusBuilder / map(to:)) ---

@jit
def _entry_state(loop2019, model, grams, csf, initial_s, max_s, delay_s, start_s, last_effect_s,
                 observed_mgdl, adaptive, standby_fraction):
    """Minimum predicted, clamped grams, estimated time remaining and time to absorb the
    observed carbs of one entry, given its observed effect so far."""
    time = last_effect_s - start_s - delay_s
    min_model = _LINEAR if loop2019 else model
    min_predicted = grams * _fraction(min_model, time / max_s)
    clamped = min(grams, max(min_predicted, observed_mgdl / csf))
    if loop2019:
        min_rate = grams / max_s
        if min_rate > 0.0:
            return min_predicted, clamped, (grams - clamped) / min_rate, clamped / min_rate
        return min_predicted, clamped, 0.0, 0.0
    percent = clamped / grams if grams > 0.0 else 1.0
    adapting = adaptive and time > initial_s * standby_fraction
    if time <= 0.0:
        return min_predicted, clamped, initial_s, 0.0
    if adapting:
        to_absorb = min(time, max_s)
    else:
        to_absorb = min(_percent_time(model, percent) * initial_s, max_s)
    not_to_exceed = max(max_s - time, 0.0)
    if not_to_exceed <= 0.0:
        return min_predicted, clamped, 0.0, to_absorb
    if adapting:
        remaining = time / max(_percent_time(model, percent), _DOUBLE_ULP) - time
    else:
        remaining = initial_s - to_absorb
    return min_predicted, clamped, min(remaining, not_to_exceed), to_absorb


@jit
def _credit(e, j, amount, observed, completion, timeline, first, stop, entry_effect, ice_end):
    """LoopKit ``addNextEffect``: add ``amount`` mg/dL to entry ``e`` for ICE interval ``j``,
    recording it (in mg/dL) in the timeline until the entry's carbs are fully observed."""
    observed[e] += amount
    if np.isnan(completion[e]):
        timeline[e, j] += amount
        first[e] = min(first[e], j)
        stop[e] = j + 1
        if observed[e] + _FLOAT_ULP >= entry_effect[e]:
            completion[e] = ice_end[j]


@jit
def _map_kernel(loop2019, model, start, grams, csf, initial, maximum, delay_s, last_effect, max_end,
                ice_start, ice_end, ice_effect, adaptive, standby_fraction):
    n_e = start.size
    n_i = ice_start.size
    observed = np.zeros(n_e)
    completion = np.full(n_e, np.nan)
    timeline = np.zeros((n_e, n_i))
    first = np.full(n_e, n_i, dtype=np.int64)
    stop = np.zeros(n_e, dtype=np.int64)
    entry_effect = grams * csf
    rates = np.zeros(n_e)
    active = np.zeros(n_e, dtype=np.bool_)
    for j in range(n_i):
        s = ice_start[j]
        total_rate = 0.0
        last_active = -1
        for e in range(n_e):
            active[e] = start[e] <= s < max_end[e]
            if not active[e]:
                continue
            if loop2019:
                rates[e] = grams[e] / maximum[e]
            else:
                observed_end = last_effect[e] if np.isnan(completion[e]) else completion[e]
                remaining = _entry_state(loop2019, model, grams[e], csf[e], initial[e], maximum[e], delay_s,
                                         start[e], last_effect[e], observed[e], adaptive, standby_fraction)[2]
                duration = min(observed_end - start[e] + remaining, maximum[e])
                rates[e] = grams[e] / duration * _rate(model, (s - start[e]) / duration) if duration > 0.0 else 0.0
            total_rate += rates[e]
            last_active = e
        value = max(0.0, ice_effect[j])
        for e in range(n_e):
            if not active[e]:
                continue
            partial = 0.0
            if total_rate > 0.0:
                partial = min(max(entry_effect[e] - observed[e], 0.0), rates[e] / total_rate * value)
                total_rate -= rates[e]
                value -= partial
            _credit(e, j, partial, observed, completion, timeline, first, stop, entry_effect, ice_end)
            if e == last_active and value > _FLOAT_ULP:
                _credit(e, j, value, observed, completion, timeline, first, stop, entry_effect, ice_end)
    min_predicted = np.zeros(n_e)
    clamped = np.zeros(n_e)
    remaining = np.zeros(n_e)
    to_absorb = np.zeros(n_e)
    for e in range(n_e):
        min_predicted[e], clamped[e], remaining[e], to_absorb[e] = _entry_state(
            loop2019, model, grams[e], csf[e], initial[e], maximum[e], delay_s, start[e], last_effect[e],
            observed[e], adaptive, standby_fraction)
    return observed, completion, timeline, first, stop, min_predicted, clamped, remaining, to_absorb


@dataclass(frozen=True)
class CarbStatus:
    """Absorption status of carb entries (LoopKit ``CarbStatus`` + ``AbsorbedCarbValue``),
    one row per entry in chronological order.

    Attributes
    ----------
    order : int array, index of each row in the caller's input
    start_s, grams, absorption_time_s : the entries (absorption time as entered/defaulted)
    csf_mgdl_per_g : ISF / CR at each entry's start
    observed_grams : grams credited from ICE (may exceed ``grams`` by leftover overrun)
    clamped_grams : observed grams bounded by the minimum absorption and the entry total
    remaining_grams : ``grams - clamped_grams``
    observed_end_s : end of the observation (full absorption observed, or last ICE date)
    estimated_time_remaining_s : predicted time for the remaining grams to absorb
    time_to_absorb_observed_s : modelled time needed to absorb the clamped grams
    has_timeline : False when less than the minimum absorption was observed
    timeline_grams : (entries, ICE) grams credited per ICE interval, recorded until fully observed
    timeline_first, timeline_stop : the ICE index range each entry's timeline covers
    ice_start_s, ice_end_s : the ICE intervals (sorted)
    model : absorption model name (selects Loop 2019 vs LoopAlgorithm semantics)
    """

    order: np.ndarray
    start_s: np.ndarray
    grams: np.ndarray
    absorption_time_s: np.ndarray
    csf_mgdl_per_g: np.ndarray
    observed_grams: np.ndarray
    clamped_grams: np.ndarray
    remaining_grams: np.ndarray
    min_predicted_grams: np.ndarray
    observed_end_s: np.ndarray
    estimated_time_remaining_s: np.ndarray
    time_to_absorb_observed_s: np.ndarray
    has_timeline: np.ndarray
    timeline_grams: np.ndarray
    timeline_first: np.ndarray
    timeline_stop: np.ndarray
    ice_start_s: np.ndarray
    ice_end_s: np.ndarray
    model: str

    def __len__(self) -> int:
        return int(self.start_s.size)

    @property
    def estimated_absorption_time_s(self) -> np.ndarray:
        """Observed duration plus estimated time remaining (``AbsorbedCarbValue.estimatedDate``)."""
        return self.observed_end_s - self.start_s + self.estimated_time_remaining_s

    @property
    def is_active(self) -> np.ndarray:
        """True while absorption is still expected (estimated time remaining > 0)."""
        return self.estimated_time_remaining_s > 0


def _counteraction(counteraction, validate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    start, end, velocity = (np.asarray(a, dtype=float).reshape(-1) for a in counteraction)
    if not validate:
        order = np.argsort(start, kind="stable")
        return start[order], end[order], velocity[order]
    n = start.size
    problems = [Problem(name, None, arr.size, f"expected {n} values to match the ICE start dates")
                for name, arr in (("counteraction.end_s", end), ("counteraction.velocity", velocity))
                if arr.size != n]
    raise_if(problems)
    problems += [Problem("counteraction.start_s", int(i), start[i], "not a finite time")
                 for i in np.flatnonzero(~np.isfinite(start))]
    problems += [Problem("counteraction.end_s", int(i), end[i], "ICE interval must end after it starts")
                 for i in np.flatnonzero(~(np.isfinite(end) & (end > start)))]
    problems += [Problem("counteraction.velocity", int(i), velocity[i], "not a finite velocity")
                 for i in np.flatnonzero(~np.isfinite(velocity))]
    raise_if(problems)
    order = np.argsort(start, kind="stable")
    start, end, velocity = start[order], end[order], velocity[order]
    raise_if([Problem("counteraction.end_s", int(order[i + 1]), end[i + 1],
                      "ICE intervals must not end before an earlier interval ends")
              for i in np.flatnonzero(np.diff(end) < 0)])
    return start, end, velocity


def map_absorption(carb_dates_s, grams, absorption_time_s, counteraction, carb_ratio, sensitivity, *,
                   absorption_time_overrun: float = DEFAULT_ABSORPTION_TIME_OVERRUN,
                   initial_absorption_time_overrun: float | None = None, delay_s: float = DEFAULT_DELAY_S,
                   model: str = "parabolic", adaptive_rate: bool = False,
                   adaptive_standby_fraction: float = ADAPTIVE_RATE_STANDBY_FRACTION,
                   validate: bool = True) -> CarbStatus:
    """Map insulin counteraction effects to carb entries (LoopKit ``map(to:)``).

    Parameters
    ----------
    carb_dates_s, grams, absorption_time_s : arrays (g, s)
        The carb entries; the absorption time is per entry (fill defaults beforehand, see
        :mod:`pyloopkit.carb_store`).
    counteraction : (start_s, end_s, velocity_mgdl_per_min)
        ICE as returned by :func:`pyloopkit.glucose_math.counteraction_effects`. Negative
        velocities count as zero; each interval contributes velocity x its real duration.
    carb_ratio, sensitivity : schedule (``.at(seconds)``), scalar or per-entry array
        g/U and mg/dL/U, taken at each entry's start.
    absorption_time_overrun : float
        Maximum absorption time = entered time x this (sets the minimum absorption rate).
    initial_absorption_time_overrun : float or None
        LoopAlgorithm's initial (modelled) absorption time factor; None = same as
        ``absorption_time_overrun``. Unused by the ``"parabolic"`` (Loop 2019) semantics.
    delay_s : float
        Delay before the minimum absorption starts.
    model : {"parabolic", "linear", "piecewise_linear"}
        See the module docstring.
    adaptive_rate : bool
        LoopAlgorithm's adaptive absorption rate (after ``adaptive_standby_fraction`` of the
        initial absorption time, the remaining time follows the observed rate).
    validate : bool
        False skips the checks of the entries, the counteraction, the schedules' values and the
        overrun factors (the Loop core's own arrays, checked at the boundary).

    Returns
    -------
    CarbStatus
        One row per entry in chronological order (``order`` maps rows to the inputs).
        Entries at the same date are ordered by grams, then absorption time, then CSF, so
        the result does not depend on the input order (Swift keeps the caller's order for
        ties, which matters because leftover effect goes to the last active entry).
    """
    dates, g, times = _entries(carb_dates_s, grams, absorption_time_s, validate)
    model_id = _model_id(model)
    raise_if([] if not validate else [Problem(name, None, value, "must be finite and > 0") for name, value in (
        ("absorption_time_overrun", absorption_time_overrun),
        ("initial_absorption_time_overrun", initial_absorption_time_overrun)) if value is not None
        and not (np.isfinite(value) and value > 0)])
    ice_start, ice_end, velocity = _counteraction(counteraction, validate)
    csf = carb_sensitivity_factor(dates, carb_ratio, sensitivity, validate)
    order = np.lexsort((csf, times, g, dates))  # by date; ties broken by content, not input order
    dates, g, times, csf = dates[order], g[order], times[order], csf[order]
    initial_factor = absorption_time_overrun if initial_absorption_time_overrun is None \
        else initial_absorption_time_overrun
    columns = _mapped(model_id, dates, g, times, csf, ice_start, ice_end, velocity, float(absorption_time_overrun),
                      float(initial_factor), float(delay_s), bool(adaptive_rate), float(adaptive_standby_fraction))
    return CarbStatus(order, dates, g, times, csf, *columns, ice_start_s=ice_start, ice_end_s=ice_end, model=model)


@jit
def _mapped(model_id, dates, g, times, csf, ice_start, ice_end, velocity, absorption_time_overrun, initial_factor,
            delay_s, adaptive, standby_fraction):
    """:func:`map_absorption` of sorted entries and ICE: :func:`_map_kernel` and the
    :class:`CarbStatus` columns derived from it, ``observed_grams`` to ``timeline_stop`` in field order."""
    maximum = times * absorption_time_overrun
    initial = times * initial_factor
    max_end = dates + maximum + delay_s
    last_ice = ice_end[-1] if ice_end.size else -np.inf
    last_effect = np.minimum(max_end, np.maximum(last_ice, dates))
    ice_effect = velocity / 60.0 * (ice_end - ice_start)
    (observed, completion, timeline, first, stop, min_predicted, clamped, remaining,
     to_absorb) = _map_kernel(model_id == 0, model_id, dates, g, csf, initial, maximum, delay_s, last_effect,
                              max_end, ice_start, ice_end, ice_effect, adaptive, standby_fraction)
    observed_grams = observed / csf
    observed_end = np.where(np.isnan(completion), last_effect, completion)
    return (observed_grams, clamped, g - clamped, min_predicted, observed_end, remaining, to_absorb,
            observed_grams >= min_predicted, timeline / csf[:, None], first, stop)


def _timeline_sums(status: CarbStatus, bounds: np.ndarray, dates: np.ndarray):
    """Cumulative timeline grams per entry and, per (entry, date), the end of the range of
    each entry's records whose ``bound <= date`` (records are contiguous in ICE order)."""
    cum = np.concatenate([np.zeros((len(status), 1)), np.cumsum(status.timeline_grams, axis=1)], axis=1)
    k = np.searchsorted(bounds, dates, side="right")
    first = status.timeline_first[:, None]
    kk = np.clip(k[None, :], first, np.maximum(status.timeline_stop, status.timeline_first)[:, None])
    rows = np.arange(len(status))[:, None]
    return cum, kk, rows, first


def _observed_cob(status: CarbStatus, dates: np.ndarray) -> np.ndarray:
    """``total - sum(records ending at or before date)`` per (entry, date)."""
    cum, kk, rows, first = _timeline_sums(status, status.ice_end_s, dates)
    return status.grams[:, None] - (cum[rows, kk] - cum[rows, first])


def _observed_absorbed(status: CarbStatus, dates: np.ndarray, delta_s: float) -> np.ndarray:
    """Sum of records starting at least ``delta_s`` before date, the last one pro rata."""
    cum, kk, rows, first = _timeline_sums(status, status.ice_start_s + delta_s, dates)
    counted = kk > first
    last = np.where(counted, kk - 1, 0)
    if status.ice_start_s.size == 0:
        return np.zeros((len(status), dates.size))
    full = np.where(counted, cum[rows, np.maximum(kk - 1, 0)] - cum[rows, first], 0.0)
    s, e = status.ice_start_s[last], status.ice_end_s[last]
    fraction = (np.minimum(dates[None, :], e) - s) / (e - s)
    partial = np.where(counted, fraction * status.timeline_grams[rows, last], 0.0)
    return full + partial


def _phases(status: CarbStatus, dates: np.ndarray):
    """Masks and reference times shared by dynamic COB and dynamic absorbed carbs."""
    loop2019 = status.model == "parabolic"
    nonempty = status.timeline_stop > status.timeline_first
    observation_end = np.where(nonempty, status.ice_end_s[np.maximum(status.timeline_stop - 1, 0)]
                               if status.ice_end_s.size else 0.0, -np.inf)
    if loop2019:
        modelled = ~status.has_timeline
        predicted = status.has_timeline[:, None] & (~nonempty[:, None] | (dates[None, :] > observation_end[:, None]))
    else:
        modelled = ~(status.has_timeline & nonempty)
        predicted = ~modelled[:, None] & (dates[None, :] > observation_end[:, None])
    return loop2019, modelled[:, None] & np.ones((1, dates.size), dtype=bool), predicted, observation_end


def _absorbed_fraction(model: AbsorptionModel, time_s, absorption_time_s, loop2019: bool):
    """Model fraction absorbed; Loop 2019's linear curve is 0 at time <= 0 even for a zero
    duration (LoopAlgorithm's gives 1 at time 0 of a zero duration)."""
    percent = _percent(time_s, absorption_time_s)
    if loop2019:
        percent = np.where(np.asarray(time_s) <= 0, 0.0, percent)
    return model.percent_absorption(percent)


def dynamic_carbs_on_board(status: CarbStatus, dates_s, *, delay_s: float = DEFAULT_DELAY_S,
                           delta_s: float = 300.0) -> np.ndarray:
    """Carbs on board (g) at ``dates_s`` from observed absorption (LoopKit ``dynamicCarbsOnBoard``).

    Per entry: 0 before ``start - delta_s``; while less than the minimum absorption was
    observed, the model curve over the estimated absorption time (with ``delay_s``); during
    the observation, the grams not yet credited by ICE that ended; after it, the model
    (Loop 2019: linear over the remaining grams and time) for the rest. Never negative.
    """
    d = _dates(dates_s)
    if len(status) == 0:
        return np.zeros(d.size)
    if HAVE_NUMBA:
        return _dynamic_sum(status, d, delay_s, delta_s, True)
    loop2019, modelled, predicted, observation_end = _phases(status, d)
    model = LINEAR if loop2019 else AbsorptionModel(status.model)
    total, start = status.grams[:, None], status.start_s[:, None]
    since_start = d[None, :] - start - delay_s
    modelled_cob = total * (1.0 - _absorbed_fraction(model, since_start, status.estimated_absorption_time_s[:, None],
                                                     loop2019))
    if loop2019:
        predicted_cob = status.remaining_grams[:, None] * (1.0 - _absorbed_fraction(
            model, d[None, :] - status.observed_end_s[:, None], status.estimated_time_remaining_s[:, None], loop2019))
    else:
        to_absorb = status.time_to_absorb_observed_s[:, None]
        predicted_cob = np.maximum(model.unabsorbed(total, d[None, :] - observation_end[:, None] + to_absorb,
                                                    to_absorb + status.estimated_time_remaining_s[:, None]), 0.0)
    observed_cob = np.maximum(_observed_cob(status, d), 0.0)
    cob = np.where(modelled, modelled_cob, np.where(predicted, predicted_cob, observed_cob))
    return np.where(d[None, :] >= start - delta_s, cob, 0.0).sum(axis=0)




def dynamic_absorbed_carbs(status: CarbStatus, dates_s, *, delay_s: float = DEFAULT_DELAY_S,
                           delta_s: float = 300.0) -> np.ndarray:
    """Grams absorbed per entry (shape entries x dates) from observed absorption
    (LoopKit ``dynamicAbsorbedCarbs``); never above the entry's grams after observation."""
    d = _dates(dates_s)
    if len(status) == 0:
        return np.zeros((0, d.size))
    loop2019, modelled, predicted, observation_end = _phases(status, d)
    model = LINEAR if loop2019 else AbsorptionModel(status.model)
    total, start = status.grams[:, None], status.start_s[:, None]
    modelled_g = total * _absorbed_fraction(model, d[None, :] - start - delay_s,
                                            status.estimated_absorption_time_s[:, None], loop2019)
    if loop2019:
        predicted_g = status.clamped_grams[:, None] + status.remaining_grams[:, None] * _absorbed_fraction(
            model, d[None, :] - status.observed_end_s[:, None], status.estimated_time_remaining_s[:, None], loop2019)
    else:
        to_absorb = status.time_to_absorb_observed_s[:, None]
        predicted_g = np.minimum(model.absorbed(total, d[None, :] - observation_end[:, None] + to_absorb,
                                                to_absorb + status.estimated_time_remaining_s[:, None]), total)
    observed_g = np.minimum(_observed_absorbed(status, d, delta_s), total)
    absorbed = np.where(modelled, modelled_g, np.where(predicted, predicted_g, observed_g))
    return np.where(d[None, :] >= start, absorbed, 0.0)


def dynamic_carb_effects(status: CarbStatus, dates_s, *, delay_s: float = DEFAULT_DELAY_S,
                         delta_s: float = 300.0) -> np.ndarray:
    """Cumulative carb glucose effect (mg/dL) at ``dates_s`` from observed absorption
    (LoopKit ``dynamicGlucoseEffects``): sum over entries of ISF/CR x absorbed grams."""
    if HAVE_NUMBA and len(status):
        return _dynamic_sum(status, _dates(dates_s), delay_s, delta_s, False)
    return (status.csf_mgdl_per_g[:, None] * dynamic_absorbed_carbs(status, dates_s, delay_s=delay_s,
                                                                    delta_s=delta_s)).sum(axis=0)


def _dynamic_sum(status: CarbStatus, dates: np.ndarray, delay_s: float, delta_s: float, cob: bool) -> np.ndarray:
    """:func:`dynamic_carbs_on_board` (``cob``) or :func:`dynamic_carb_effects` in one compiled
    pass over entries x dates: the array path's formulas element by element, summed over the
    entries in their order (as numpy sums over the first axis)."""
    loop2019 = status.model == "parabolic"
    return _dynamic_kernel(
        cob, loop2019, _LINEAR if loop2019 else _model_id(status.model), np.ascontiguousarray(dates),
        status.start_s, status.grams, status.estimated_absorption_time_s, status.observed_end_s,
        status.estimated_time_remaining_s, status.clamped_grams, status.remaining_grams,
        status.time_to_absorb_observed_s, status.csf_mgdl_per_g, status.has_timeline, status.timeline_first,
        status.timeline_stop, np.ascontiguousarray(status.timeline_grams), status.ice_start_s, status.ice_end_s,
        float(delay_s), float(delta_s))


@jit
def _divide(a, b):
    """``a / b`` with numpy's float semantics for a zero divisor (inf with the signs' product, NaN for 0/0)."""
    if b != 0.0:
        return a / b
    if a == 0.0 or np.isnan(a):
        return np.nan
    return np.copysign(np.inf, a) * np.copysign(1.0, b)


@jit
def _fraction_at(model, time_s, absorption_time_s, loop2019):
    """:func:`_absorbed_fraction` of one element."""
    percent = _divide(time_s, absorption_time_s)
    if loop2019 and time_s <= 0.0:
        percent = 0.0
    return _fraction(model, percent)


@jit
def _dynamic_kernel(cob, loop2019, model, dates, start, grams, estimated_absorption, observed_end,
                    estimated_remaining, clamped, remaining, to_absorb_observed, csf, has_timeline, first, stop,
                    timeline_grams, ice_start, ice_end, delay_s, delta_s):
    """Compiled :func:`_dynamic_sum`: per entry the phase (modelled, observed, predicted) and its
    value at each date, as ``_phases``, ``dynamic_carbs_on_board`` and ``dynamic_absorbed_carbs``."""
    n_entries, n_dates, n_ice = start.size, dates.size, ice_start.size
    out = np.zeros(n_dates)
    column = np.zeros(n_entries)
    start_bounds = ice_start + delta_s
    for e in range(n_entries):
        nonempty = stop[e] > first[e]
        if nonempty:
            observation_end = ice_end[max(stop[e] - 1, 0)] if n_ice else 0.0
        else:
            observation_end = -np.inf
        modelled = (not has_timeline[e]) if loop2019 else not (has_timeline[e] and nonempty)
        upper = max(stop[e], first[e])
        cum = np.zeros(n_ice + 1)
        for k in range(n_ice):  # numpy's cumsum: the first partial sum is the first value itself
            cum[k + 1] = timeline_grams[e, k] if k == 0 else cum[k] + timeline_grams[e, k]
        total = grams[e]
        to_absorb = to_absorb_observed[e]
        for j in range(n_dates):
            d = dates[j]
            if loop2019:
                predicted = has_timeline[e] and ((not nonempty) or d > observation_end)
            else:
                predicted = (not modelled) and d > observation_end
            if modelled:
                f = _fraction_at(model, d - start[e] - delay_s, estimated_absorption[e], loop2019)
                value = total * (1.0 - f) if cob else total * f
            elif predicted:
                if loop2019:
                    f = _fraction_at(model, d - observed_end[e], estimated_remaining[e], loop2019)
                    value = remaining[e] * (1.0 - f) if cob else clamped[e] + remaining[e] * f
                else:
                    f = _fraction(model, _divide(d - observation_end + to_absorb, to_absorb + estimated_remaining[e]))
                    value = max(total * (1.0 - f), 0.0) if cob else min(total * f, total)
            elif cob:
                kk = min(max(np.searchsorted(ice_end, d, side="right"), first[e]), upper)
                value = max(total - (cum[kk] - cum[first[e]]), 0.0)
            elif n_ice == 0:
                value = min(0.0, total)
            else:
                kk = min(max(np.searchsorted(start_bounds, d, side="right"), first[e]), upper)
                if kk > first[e]:
                    last = kk - 1
                    s, end = ice_start[last], ice_end[last]
                    fraction = _divide(min(d, end) - s, end - s)
                    value = min((cum[max(kk - 1, 0)] - cum[first[e]]) + fraction * timeline_grams[e, last], total)
                else:
                    value = min(0.0 + 0.0, total)
            if cob:
                value = value if d >= start[e] - delta_s else 0.0
            else:
                value = csf[e] * (value if d >= start[e] else 0.0)
            _accumulate(out, column, e, j, value)
    return _entry_sums(out, column)


@jit
def _accumulate(out, column, e, j, value):
    """Add entry ``e``'s value at date ``j`` to the sum over entries as numpy's ``sum(axis=0)`` of an
    (entries, dates) array does: in entry order from 0.0, or, for a single date, kept in
    ``column`` for :func:`_entry_sums`."""
    if out.size == 1:
        column[e] = value
    else:
        out[j] += value


@jit
def _entry_sums(out, column):
    """``out`` once every entry was accumulated: numpy sums an (entries, 1) array pairwise."""
    if out.size == 1:
        out[0] += pairwise_sum(column, 0, column.size)
    return out


@jit
def _block_sum(values, start, n):
    """numpy's pairwise summation of at most 128 values ``values[start:start + n]``: in order below 8,
    else 8 running partial sums added as a tree, then the rest in order."""
    if n < 8:
        total = 0.0
        for i in range(start, start + n):
            total += values[i]
        return total
    partial = values[start:start + 8].copy()
    i = 8
    while i < n - n % 8:
        for k in range(8):
            partial[k] += values[start + i + k]
        i += 8
    total = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5])
                                                                      + (partial[6] + partial[7]))
    for k in range(i, n):
        total += values[start + k]
    return total


@jit
def pairwise_sum(values, start, n):
    """numpy's pairwise summation of ``values[start:start + n]``: above 128 values, the sum of the two
    halves (the first a multiple of 8 long), each summed the same way (without recursion: numba's
    cache does not load recursive functions safely)."""
    starts, sizes, expanded = np.empty(128, np.int64), np.empty(128, np.int64), np.zeros(128, np.bool_)
    sums = np.empty(128)
    starts[0], sizes[0], expanded[0] = start, n, False
    depth, done = 1, 0
    while depth:
        depth -= 1
        s, m = starts[depth], sizes[depth]
        if m <= 128:
            sums[done] = _block_sum(values, s, m)
            done += 1
        elif expanded[depth]:
            done -= 1
            sums[done - 1] += sums[done]
        else:
            half = m // 2
            half -= half % 8
            expanded[depth] = True
            starts[depth + 1], sizes[depth + 1], expanded[depth + 1] = s + half, m - half, False
            starts[depth + 2], sizes[depth + 2], expanded[depth + 2] = s, half, False
            depth += 3
    return sums[0]


def effects_and_cob(carb_dates_s, grams, absorption_time_min, counteraction, carb_ratio, sensitivity, *,
                    default_absorption_time_min: float, effect_window_s: float, cob_window_s: float,
                    effect_start_s: float, cob_start_s: float, dynamic: bool = True,
                    absorption_time_overrun: float = DEFAULT_ABSORPTION_TIME_OVERRUN,
                    initial_absorption_time_overrun: float | None = None, delay_s: float = DEFAULT_DELAY_S,
                    model: str = "parabolic", adaptive_rate: bool = False, delta_s: float = 300.0):
    """Carb effect and COB timelines in one compiled pass, unchecked (the Loop core's own arrays).

    ``dynamic``: the entries dated from ``min(effect_window_s, cob_window_s)`` mapped as by
    :func:`map_absorption` (``validate=False``), then :func:`dynamic_carb_effects` and
    :func:`dynamic_carbs_on_board` on :func:`simulation_dates` grids from ``effect_start_s`` and
    ``cob_start_s`` to the end of the latest absorption. Otherwise (static) :func:`carb_effects`
    of the entries from ``effect_window_s`` and :func:`carbs_on_board` of those from
    ``cob_window_s``, each on its own grid. Same numbers as those functions.

    Parameters
    ----------
    carb_dates_s, grams, absorption_time_min : float arrays (s, g, min)
        All carb entries, finite; a NaN absorption time takes ``default_absorption_time_min``.
    counteraction : (start_s, end_s, velocity_mgdl_per_min) or None
        ICE as :func:`map_absorption` expects them (any start order); unused when static.
    carb_ratio, sensitivity : DailySchedule
        One value per item (g/U, mg/dL/U), all finite and > 0.
    effect_window_s, cob_window_s, effect_start_s, cob_start_s : float (s)
        Earliest entry date kept, and grid start, of each timeline.
    Other parameters as in :func:`map_absorption` (``model`` also for the static curves).

    Returns
    -------
    (dates_s, mg/dL), (dates_s, g)
        The carb effect and COB timelines; a timeline without entries is two empty arrays
        (dynamic: both are, when no entry is in the window).

    Notes
    -----
    Needs numba (``HAVE_NUMBA``). Entries tied on date, grams, absorption time and CSF keep their
    order as ``np.lexsort`` does; NaN dates or CSF would not sort as it does.
    """
    ice = (np.empty(0),) * 3 if counteraction is None else \
        tuple(np.asarray(a, dtype=float).reshape(-1) for a in counteraction)
    initial_factor = absorption_time_overrun if initial_absorption_time_overrun is None \
        else initial_absorption_time_overrun
    entries = (np.asarray(carb_dates_s, dtype=float), np.asarray(grams, dtype=float),
               np.asarray(absorption_time_min, dtype=float), float(default_absorption_time_min))
    schedules = (*_schedule_arrays(sensitivity), *_schedule_arrays(carb_ratio))
    starts = (float(effect_start_s), float(cob_start_s), float(delta_s))
    if dynamic:
        effect_dates, effect, cob_dates, cob = _dynamic_pass(
            *entries, float(min(effect_window_s, cob_window_s)), *schedules, *ice, _model_id(model),
            float(absorption_time_overrun), float(initial_factor), float(delay_s), bool(adaptive_rate),
            ADAPTIVE_RATE_STANDBY_FRACTION, *starts)
    else:
        effect_dates, effect, cob_dates, cob = _static_pass(
            *entries, float(effect_window_s), float(cob_window_s), *schedules, _model_id(model), float(delay_s),
            *starts)
    return (effect_dates, effect), (cob_dates, cob)


def _schedule_arrays(schedule):
    return np.asarray(schedule.start_s, dtype=float), np.asarray(schedule.values, dtype=float), float(schedule.offset_s)


@jit
def _row_precedes(keys, a, b):
    """Row ``a`` of ``keys`` sorts strictly before row ``b`` (first column first)."""
    for c in range(keys.shape[1]):
        if keys[a, c] != keys[b, c]:
            return keys[a, c] < keys[b, c]
    return False


@jit
def _stable_order(keys):
    """Indices sorting the rows of ``keys`` by the first column, then the next..., ties in input order:
    ``np.lexsort`` of the columns in reverse order for finite keys (insertion sort: few rows, or
    rows nearly in order)."""
    order = np.arange(keys.shape[0])
    for i in range(1, keys.shape[0]):
        k = order[i]
        j = i
        while j > 0 and _row_precedes(keys, k, order[j - 1]):
            order[j] = order[j - 1]
            j -= 1
        order[j] = k
    return order


@jit
def _window_entries(carb_s, carb_g, carb_min, default_min, window_start_s, isf_start, isf_values, isf_offset,
                    cr_start, cr_values, cr_offset):
    """The entries dated from ``window_start_s`` in input order: dates, grams, absorption times (s,
    defaults filled) and CSF (``carb_sensitivity_factor``)."""
    n = 0
    for i in range(carb_s.size):
        n += carb_s[i] >= window_start_s
    dates, g, times, csf = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    k = 0
    for i in range(carb_s.size):
        if carb_s[i] >= window_start_s:
            dates[k], g[k] = carb_s[i], carb_g[i]
            times[k] = (default_min if np.isnan(carb_min[i]) else carb_min[i]) * 60.0
            csf[k] = (value_at(isf_start, isf_values, isf_offset, carb_s[i])
                      / value_at(cr_start, cr_values, cr_offset, carb_s[i]))
            k += 1
    return dates, g, times, csf


@jit
def _static_kernel(cob, model, dates, start, grams, times, csf, delay_s):
    """:func:`carbs_on_board` (``cob``) or :func:`carb_effects` of checked entries at ``dates``,
    element by element, summed over the entries as numpy does."""
    out = np.zeros(dates.size)
    column = np.zeros(start.size)
    for e in range(start.size):
        for j in range(dates.size):
            since = dates[j] - start[e]
            f = _fraction(model, _divide(since - delay_s, times[e]))
            if cob:
                value = grams[e] * (1.0 - f) if since >= 0 else 0.0
            else:
                value = csf[e] * (grams[e] * f)
            _accumulate(out, column, e, j, value)
    return _entry_sums(out, column)


@jit
def _static_timeline(cob, model, entries, start_s, delay_s, delta_s):
    """A static timeline of window entries on its :func:`simulation_dates` grid (empty without entries)."""
    dates, g, times, csf = entries
    if dates.size == 0:
        return np.empty(0), np.empty(0)
    grid = _grid_between(start_s, np.max(dates + times + delay_s), delta_s)
    return grid, _static_kernel(cob, model, grid, dates, g, times, csf, delay_s)


@jit
def _static_pass(carb_s, carb_g, carb_min, default_min, effect_window_s, cob_window_s, isf_start, isf_values,
                 isf_offset, cr_start, cr_values, cr_offset, model_id, delay_s, effect_start_s, cob_start_s, delta_s):
    """Compiled static :func:`effects_and_cob`: each timeline's window, default absorption times, CSF,
    grid and :func:`_static_kernel` (a NaN ``cob_start_s``: no COB timeline, two empty arrays)."""
    schedules = (isf_start, isf_values, isf_offset, cr_start, cr_values, cr_offset)
    effect_dates, effect = _static_timeline(False, model_id, _window_entries(
        carb_s, carb_g, carb_min, default_min, effect_window_s, *schedules), effect_start_s, delay_s, delta_s)
    if np.isnan(cob_start_s):
        return effect_dates, effect, np.empty(0), np.empty(0)
    cob_dates, cob = _static_timeline(True, model_id, _window_entries(
        carb_s, carb_g, carb_min, default_min, cob_window_s, *schedules), cob_start_s, delay_s, delta_s)
    return effect_dates, effect, cob_dates, cob


@jit
def _dynamic_pass(carb_s, carb_g, carb_min, default_min, window_s, isf_start, isf_values, isf_offset, cr_start,
                  cr_values, cr_offset, ice_start, ice_end, velocity, model_id, absorption_time_overrun,
                  initial_factor, delay_s, adaptive, standby_fraction, effect_start_s, cob_start_s, delta_s):
    """Compiled dynamic :func:`effects_and_cob`: window, default absorption times, CSF, entry and ICE
    order, :func:`_mapped`, the two grids and :func:`_dynamic_kernel` twice (a NaN ``cob_start_s``: no
    COB timeline, two empty arrays; the entries mapped are those of ``window_s`` all the same)."""
    dates, g, times, csf = _window_entries(carb_s, carb_g, carb_min, default_min, window_s, isf_start, isf_values,
                                           isf_offset, cr_start, cr_values, cr_offset)
    if dates.size == 0:
        return np.empty(0), np.empty(0), np.empty(0), np.empty(0)
    keys = np.empty((dates.size, 4))
    keys[:, 0], keys[:, 1], keys[:, 2], keys[:, 3] = dates, g, times, csf
    order = _stable_order(keys)
    dates, g, times, csf = dates[order], g[order], times[order], csf[order]
    if np.any(ice_start[1:] < ice_start[:-1]):
        ice_keys = np.empty((ice_start.size, 1))
        ice_keys[:, 0] = ice_start
        ice_order = _stable_order(ice_keys)
        ice_start, ice_end, velocity = ice_start[ice_order], ice_end[ice_order], velocity[ice_order]
    (observed_grams, clamped, remaining_grams, min_predicted, observed_end, remaining, to_absorb, has_timeline,
     timeline_grams, first, stop) = _mapped(model_id, dates, g, times, csf, ice_start, ice_end, velocity,
                                            absorption_time_overrun, initial_factor, delay_s, adaptive,
                                            standby_fraction)
    absorption = observed_end - dates + remaining
    end_s = np.max(dates + absorption + delay_s)
    loop2019 = model_id == 0
    curve = _LINEAR if loop2019 else model_id
    effect_dates = _grid_between(effect_start_s, end_s, delta_s)
    effect = _dynamic_kernel(False, loop2019, curve, effect_dates, dates, g, absorption, observed_end, remaining,
                             clamped, remaining_grams, to_absorb, csf, has_timeline, first, stop, timeline_grams,
                             ice_start, ice_end, delay_s, delta_s)
    if np.isnan(cob_start_s):
        return effect_dates, effect, np.empty(0), np.empty(0)
    cob_dates = _grid_between(cob_start_s, end_s, delta_s)
    cob = _dynamic_kernel(True, loop2019, curve, cob_dates, dates, g, absorption, observed_end, remaining, clamped,
                          remaining_grams, to_absorb, csf, has_timeline, first, stop, timeline_grams, ice_start,
                          ice_end, delay_s, delta_s)
    return effect_dates, effect, cob_dates, cob
