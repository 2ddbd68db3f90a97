"""Carb store: default absorption times, the entry window the algorithm needs, and the
carb effect / COB timelines ``update()`` asks for.

Follows LoopKit's ``CarbStore.swift`` (Loop 2019, as ported by PyLoopKit): entries
without an absorption time take the *medium* default; effects and COB at a date need the
entries that may still be absorbing, i.e. those since ``date - 2 x slow``; with dynamic
absorption enabled the counteraction effects are mapped to the entries (even when there
are none yet, as in Swift), otherwise the static model is used. For the Loop core's own inputs
(``validate=False``) :func:`effects_and_cob` runs as one compiled pass when numba is in use.

The functions taking ``inp`` accept a :class:`pyloopkit.loop_input.LoopInput` or any
object with ``carb_s`` (s), ``carb_g`` (g), ``carb_absorption_min`` (min), ``carb_ratio``
and ``sensitivity`` schedules and ``settings`` with ``default_absorption_times`` (min),
``carb_delay`` (min), ``carb_absorption_model`` and ``dynamic_carb_absorption_enabled``.
"""
from __future__ import annotations

import numpy as np

from . import carb_math
from .errors import Problem, raise_if
from .schedule import DailySchedule

DEFAULT_ABSORPTION_TIMES_MIN = (120.0, 180.0, 240.0)
"""Loop's default absorption times (fast, medium, slow), minutes."""

ADAPTIVE_INITIAL_ABSORPTION_TIME_OVERRUN = 1.0
"""Initial absorption time factor with the adaptive rate (LoopAlgorithm's adaptive-rate test)."""

EMPTY = (np.empty(0), np.empty(0))


def absorption_times_min(times_min, default_absorption_times_min=DEFAULT_ABSORPTION_TIMES_MIN) -> np.ndarray:
    """Per-entry absorption times (min): ``None`` / NaN entries take the medium default."""
    defaults = np.asarray(default_absorption_times_min, dtype=float)
    raise_if([Problem("default_absorption_times", None, tuple(defaults),
                      "expected three finite absorption times > 0 min (fast, medium, slow)")]
             if defaults.shape != (3,) or not np.all(np.isfinite(defaults) & (defaults > 0)) else [])
    if isinstance(times_min, np.ndarray) and times_min.dtype == np.float64:
        times = times_min.reshape(-1)  # no None to replace
    else:
        times = np.array([np.nan if t is None else t for t in np.asarray(times_min, dtype=object).reshape(-1)],
                         dtype=float)
    return np.where(np.isnan(times), defaults[1], times)


def window(carb_dates_s, start_s: float, end_s: float | None = None) -> np.ndarray:
    """Indices of the entries dated in ``[start_s, end_s]`` (no upper bound when None)."""
    dates = np.asarray(carb_dates_s, dtype=float)
    keep = dates >= start_s
    if end_s is not None:
        keep &= dates <= end_s
    return np.flatnonzero(keep)


def model_arguments(name: str) -> dict:
    """``map_absorption`` keyword arguments for a ``carb_absorption_model`` setting:
    ``parabolic`` (Loop 2019), ``linear``, ``piecewise_linear`` or ``adaptive``
    (piecewise-linear with LoopAlgorithm's adaptive absorption rate)."""
    if name == "adaptive":
        return dict(model="piecewise_linear", adaptive_rate=True,
                    initial_absorption_time_overrun=ADAPTIVE_INITIAL_ABSORPTION_TIME_OVERRUN)
    raise_if([] if name in carb_math.MODELS else [Problem(
        "carb_absorption_model", None, name, f"expected one of {[*carb_math.MODELS, 'adaptive']}")])
    return dict(model=name)


def _window_start(inp, start_s: float) -> float:
    """Earliest date (s) of an entry that may still absorb at ``start_s``: two slow absorption times before."""
    slow_min = np.asarray(inp.settings.default_absorption_times, dtype=float)[2]
    return start_s - 2.0 * slow_min * 60.0


def _entries_for(inp, start_s: float, end_s: float | None):
    s = inp.settings
    index = window(inp.carb_s, _window_start(inp, start_s), end_s)
    times_s = absorption_times_min(np.asarray(inp.carb_absorption_min)[index], s.default_absorption_times) * 60.0
    return np.asarray(inp.carb_s, dtype=float)[index], np.asarray(inp.carb_g, dtype=float)[index], times_s


def carb_status(inp, counteraction, *, start_s: float, end_s: float | None = None,
                absorption_time_overrun: float = carb_math.DEFAULT_ABSORPTION_TIME_OVERRUN, validate: bool = True):
    """Absorption status (:class:`~pyloopkit.carb_math.CarbStatus`) of the entries that may
    still absorb at ``start_s``, or None when dynamic absorption is off or ``counteraction``
    is None. ``validate=False``: the entries and counteraction are the Loop core's, already checked."""
    s = inp.settings
    if counteraction is None or not s.dynamic_carb_absorption_enabled:
        return None
    dates, grams, times = _entries_for(inp, start_s, end_s)
    return carb_math.map_absorption(dates, grams, times, counteraction, inp.carb_ratio, inp.sensitivity,
                                    absorption_time_overrun=absorption_time_overrun,
                                    delay_s=s.carb_delay * 60.0, validate=validate,
                                    **model_arguments(s.carb_absorption_model))


_UNSET = object()


def _timeline(inp, counteraction, start_s, end_s, absorption_time_overrun, dynamic, static, status=_UNSET):
    s = inp.settings
    delay_s = s.carb_delay * 60.0
    if status is _UNSET:
        status = carb_status(inp, counteraction, start_s=start_s, end_s=end_s,
                             absorption_time_overrun=absorption_time_overrun)
    if status is not None:
        if len(status) == 0:
            return EMPTY
        dates = carb_math.simulation_dates(status.start_s, status.estimated_absorption_time_s, delay_s=delay_s,
                                           start_s=start_s, end_s=end_s, validate=False)  # from checked entries
        return dates, dynamic(status, dates, delay_s=delay_s)
    carb_dates, grams, times = _entries_for(inp, start_s, end_s)
    if carb_dates.size == 0:
        return EMPTY
    dates = carb_math.simulation_dates(carb_dates, times, delay_s=delay_s, start_s=start_s, end_s=end_s)
    return dates, static(carb_dates, grams, times, dates, delay_s, model_arguments(s.carb_absorption_model)["model"])


def glucose_effects(inp, counteraction, *, start_s: float, end_s: float | None = None,
                    absorption_time_overrun: float = carb_math.DEFAULT_ABSORPTION_TIME_OVERRUN, status=_UNSET):
    """Carb effect timeline ``(dates_s, mg/dL)`` from ``start_s`` (floored to the grid) to
    ``end_s`` (default: the end of the latest absorption), LoopKit ``getGlucoseEffects``.

    Dynamic (counteraction mapped to entries) when ``settings.dynamic_carb_absorption_enabled``
    and ``counteraction`` is not None; static otherwise. ``status`` may pass a
    :func:`carb_status` already computed for these entries.
    """
    return _timeline(
        inp, counteraction, start_s, end_s, absorption_time_overrun, carb_math.dynamic_carb_effects,
        lambda c, g, t, d, delay, model: carb_math.carb_effects(c, g, t, inp.carb_ratio, inp.sensitivity, d,
                                                                delay_s=delay, model=model), status)


def carbs_on_board(inp, counteraction, *, start_s: float, end_s: float | None = None,
                   absorption_time_overrun: float = carb_math.DEFAULT_ABSORPTION_TIME_OVERRUN, status=_UNSET):
    """COB timeline ``(dates_s, g)`` from ``start_s`` (LoopKit ``carbsOnBoard``; Loop asks
    from one grid step before "now"); dynamic or static as in :func:`glucose_effects`."""
    return _timeline(
        inp, counteraction, start_s, end_s, absorption_time_overrun, carb_math.dynamic_carbs_on_board,
        lambda c, g, t, d, delay, model: carb_math.carbs_on_board(c, g, t, d, delay_s=delay, model=model), status)


def effects_and_cob(inp, counteraction, *, effect_start_s: float, cob_start_s: float, validate: bool = True):
    """Carb effects from ``effect_start_s`` and COB from ``cob_start_s`` with one absorption
    mapping (Loop maps twice; the entries differ only by ones that ended absorbing long ago).
    ``validate=False`` skips the mapping's checks (see :func:`carb_status`); then, with numba,
    float absorption times and one-value-per-item schedules, both timelines come from one compiled
    pass (:func:`pyloopkit.carb_math.effects_and_cob`, same numbers)."""
    if not validate and _compiled_applies(inp):
        return _effects_and_cob_compiled(inp, counteraction, effect_start_s, cob_start_s)
    status = carb_status(inp, counteraction, start_s=min(effect_start_s, cob_start_s), validate=validate)
    return (glucose_effects(inp, counteraction, start_s=effect_start_s, status=status),
            carbs_on_board(inp, counteraction, start_s=cob_start_s, status=status))


def _compiled_applies(inp) -> bool:
    """Whether :func:`effects_and_cob` may take the compiled pass: numba, float absorption times and
    schedules with one value per item."""
    return (carb_math.HAVE_NUMBA and np.asarray(inp.carb_absorption_min).dtype == np.float64
            and all(isinstance(x, DailySchedule) and x.values.ndim == 1 for x in (inp.carb_ratio, inp.sensitivity)))


def _effects_and_cob_compiled(inp, counteraction, effect_start_s: float, cob_start_s: float):
    """:func:`effects_and_cob` (unchecked, the settings included) as one compiled pass: dynamic
    absorption as :func:`carb_status` chooses it, else the static model on each timeline's entries."""
    s = inp.settings
    dynamic = counteraction is not None and s.dynamic_carb_absorption_enabled
    carb, cob = carb_math.effects_and_cob(
        inp.carb_s, inp.carb_g, inp.carb_absorption_min, counteraction, inp.carb_ratio, inp.sensitivity,
        default_absorption_time_min=float(s.default_absorption_times[1]), dynamic=dynamic,
        effect_window_s=_window_start(inp, effect_start_s), cob_window_s=_window_start(inp, cob_start_s),
        effect_start_s=effect_start_s, cob_start_s=cob_start_s, delay_s=s.carb_delay * 60.0,
        **model_arguments(s.carb_absorption_model))
    return carb if carb[0].size else EMPTY, cob if cob[0].size else EMPTY
