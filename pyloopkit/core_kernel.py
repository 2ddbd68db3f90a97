"""The array core's closed-loop decision in one compiled call.

:func:`pyloopkit.loop_data_manager.core` runs about ten compiled passes (dose preparation, the
24-hour insulin effect, counteraction, the insulin effect from now and IOB, momentum, carbs,
retrospective correction, the prediction, the dose math) with Python between them. A closed loop
asks the same question at every 5-minute step: the temp basal and automatic bolus of one member,
without the manual bolus, the IOB timeline or the effect timelines. :func:`plan` checks once per
member that its settings are ones the passes cover and gathers their constant arguments;
:func:`recommend` then runs the passes back to back in one compiled function (:func:`_decide`),
giving ``core(inp, model, iob_timeline=False, bolus=False).recommendations`` (and its prediction) with
the same numbers, or None where a pass does not cover the input (a suspend in the history, more than
seven glucose readings in the momentum window, a momentum without any other effect, a decay the retrospective
correction would refuse, dose math inputs the compiled pass refuses): the caller then runs ``core()``.

This module only chains the compiled passes of the core modules (their private kernels, imported
here); it computes nothing of its own except the glue ``core()`` does in Python (windows, grids,
schedule look-ups, pending insulin, the IOB headroom). numba renews a function's disk cache only when
its own file changes (:mod:`pyloopkit.jit`): after editing one of those modules in a working tree,
delete the ``*.nbi`` / ``*.nbc`` files.
"""
from __future__ import annotations

import numpy as np

from . import carb_math, dose_math, glucose_math, insulin_math, pump_rounding
from . import retrospective_correction as rc
from .carb_store import model_arguments
from .date import GRID_S, SECONDS_PER_DAY
from .dose import DoseType
from .dose_store import _CODES, _prepared_compiled
from .input_validation import STALE_GLUCOSE_MIN
from .jit import HAVE_NUMBA, jit
from .loop_math import _predict_compiled
from .schedule import DailySchedule, value_at

NOT_COVERED, DECIDED, STALE = 0, 1, 2
"""Status codes of :func:`_decide`."""

_EMPTY = np.empty(0)
TEMP_TYPES = (int(DoseType.TEMP_BASAL), int(DoseType.BASAL))
"""Type codes of a last temp basal that may still run (Loop's ``basalDosingEnd`` pending insulin)."""


def plan(settings, model, sensitivity, carb_ratio, basal, target, history_s: float) -> tuple | None:
    """The constant arguments of :func:`_decide` for one member, or None when the compiled decision
    does not cover its configuration (numba off, a limit or momentum setting set but not finite,
    mid-absorption ISF, a model without a compiled curve, schedules that are not float
    :class:`DailySchedule` s of one value (targets: two), an unknown carb model, a retrospective
    correction grouping interval that is not > 0).

    Parameters
    ----------
    settings : LoopSettings
    model : insulin model (``loop_data_manager.model_for(settings)``)
    sensitivity, carb_ratio, basal, target : DailySchedule
        mg/dL/U, g/U, U/h and (min, max) mg/dL rows.
    history_s : float
        How far back the insulin effect for counteraction starts (s; the core's ``HISTORY_S``).
    """
    s = settings
    spec = insulin_math._curve_spec(model) if HAVE_NUMBA else None
    schedules = [dose_math._schedule_spec(x, 0) for x in (sensitivity, carb_ratio, basal)]
    target_spec = dose_math._schedule_spec(target, 2)
    if spec is None or None in schedules or target_spec is None or not _covered(s):
        return None
    grouping = s.retrospective_correction_grouping_interval
    duration_s = model.effect_duration_min * 60.0
    carb_model = model_arguments(s.carb_absorption_model)
    overrun = carb_math.DEFAULT_ABSORPTION_TIME_OVERRUN
    initial = carb_model.get("initial_absorption_time_overrun")
    times = np.asarray(s.default_absorption_times, dtype=float)
    insulin = (duration_s, model.delay_min * 60.0, int(spec[0]), np.asarray(spec[1], dtype=float),
               insulin_math._curve_table(spec, duration_s, True), insulin_math._curve_table(spec, duration_s, False))
    carbs = (bool(s.dynamic_carb_absorption_enabled), float(times[1]), 2.0 * float(times[2]) * 60.0,
             s.carb_delay * 60.0, carb_math.MODELS[carb_model["model"]], overrun,
             overrun if initial is None else float(initial), bool(carb_model.get("adaptive_rate", False)))
    nan_if_none = dose_math._nan_if_none
    glucose = (nan_if_none(s.gradual_transitions_threshold), float(s.momentum_data_interval),
               nan_if_none(s.max_physiologic_slope), float(history_s),
               float(s.retrospective_correction_integration_interval))
    correction = (bool(s.retrospective_correction_enabled), s.retrospective_correction == "integral",
                  float(s.recency_interval), float(grouping))
    rate_rounder, volume_rounder = pump_rounding.rounders(s.pump_rounding, s.rate_rounder, s.bolus_rounder,
                                                          s.rounding)
    automatic = s.dosing_strategy == "automatic_bolus" or s.partial_application_factor is not None
    dosing = (nan_if_none(s.suspend_threshold), nan_if_none(s.max_basal_rate), nan_if_none(s.max_bolus),
              nan_if_none(s.max_active_insulin), s.dosing_strategy != "automatic_bolus", automatic,
              bool(s.include_positive_velocity_and_rc_in_bolus))
    return (insulin, carbs, glucose, correction, dosing, (*schedules, target_spec),
            (dose_math._rounder_spec(rate_rounder, "nearest"), dose_math._rounder_spec(volume_rounder, "nearest")))


def _covered(s) -> bool:
    """Whether the compiled decision covers these settings (see :func:`plan`)."""
    optional = (s.suspend_threshold, s.max_basal_rate, s.max_bolus, s.max_active_insulin,
                s.gradual_transitions_threshold, s.max_physiologic_slope)
    grouping = s.retrospective_correction_grouping_interval
    return (all(v is None or np.isfinite(v) for v in optional) and not s.use_mid_absorption_isf
            and s.carb_absorption_model in (*carb_math.MODELS, "adaptive")
            and bool(np.isfinite(grouping) and grouping > 0))


def recommend(inp, constants: tuple, application_factor: float) -> tuple | None:
    """``core(inp, model, iob_timeline=False, bolus=False)``'s ``(recommendations, prediction)`` from
    :func:`_decide`, or None where it does not cover the input (then run ``core()``), among them an
    input carrying injected effects (``inp.injected``, PyLoopKit's test hook).

    ``constants`` is :func:`plan` of the member's settings, model and schedules (those of ``inp``);
    ``application_factor`` the automatic bolus's share of the correction (``loop_data_manager``'s
    ``_application_factor(inp)``; unused unless the automatic bolus is asked).
    """
    arguments = decide_arguments(inp, constants, application_factor, False)
    if arguments is None:
        return None
    status, temp_decision, temp_rate, auto_bolus, auto_decision, auto_rate, _, dates, values = _decide(*arguments)
    if status == NOT_COVERED:
        return None
    if status == STALE:
        return {"temp_basal": None, "bolus": None, "autobolus": None}, (dates, values)
    temp_asked, automatic = constants[4][4], constants[4][5]
    duration_min = dose_math.TEMP_BASAL_DURATION_MIN
    temp = dose_math._temp_basal_dict(temp_decision, temp_rate, duration_min) if temp_asked else None
    autobolus = None
    if automatic:
        adjustment = dose_math._automatic_dict(auto_bolus, auto_decision, auto_rate, duration_min)
        autobolus = 0.0 if adjustment is None else adjustment["bolus_units"]
        if not temp_asked:
            temp = None if adjustment is None else adjustment["basal_adjustment"]
    temp_basal = None if temp is None else (temp["rate"], temp["duration"])
    return {"temp_basal": temp_basal, "bolus": None, "autobolus": autobolus}, (dates, values)


def decide_arguments(inp, constants: tuple, application_factor: float, manual: bool) -> tuple | None:
    """The arguments of :func:`_decide` for a parsed input (see :func:`recommend`; ``manual``: also the
    manual bolus amount), or None for an input it does not take (injected effects, a factor that is
    not finite)."""
    if inp.injected or not np.isfinite(application_factor):
        return None
    doses, ltb = inp.doses, inp.last_temp_basal
    running = (False, np.nan, np.nan, np.nan) if ltb is None else (
        int(ltb[0]) in TEMP_TYPES, float(ltb[1]), float(ltb[2]), float(ltb[3]))
    return (float(inp.now_s), inp.glucose_s, inp.glucose_mgdl,
            (doses.type, doses.start_s, doses.end_s, doses.value, doses.delivered_units, doses.scheduled_rate),
            (inp.carb_s, inp.carb_g, inp.carb_absorption_min), running, float(application_factor), constants,
            bool(manual))


@jit
def _grid(start_s, end_s, interval_s):
    """``date.grid``: every ``interval_s`` from ``floor(start)`` to ``ceil(end)`` inclusive."""
    first = np.floor(start_s / interval_s) * interval_s
    last = np.ceil(end_s / interval_s) * interval_s
    n = max(int(round((last - first) / interval_s)) + 1, 0)
    dates = np.empty(n)
    for k in range(n):
        dates[k] = first + interval_s * float(k)
    return dates


@jit
def _history_effect(columns, constants, isf, start_s, until_s):
    """``loop_data_manager._insulin_effect(doses, model, inp, start_s, until_s)`` of prepared dose
    columns: the absorbed-fraction effect on the grid from ``start_s`` to the end of the last dose's
    action or ``until_s``, each dose with the ISF at its start."""
    duration_s, _, kind, p, absorbed, _ = constants
    if columns[0].size == 0:
        return _EMPTY, _EMPTY
    end_s = min(np.max(columns[2]) + duration_s, until_s)
    dates = _grid(start_s, max(end_s, start_s), GRID_S)
    isf_at_start = np.empty(columns[0].size)
    for k in range(columns[0].size):
        isf_at_start[k] = value_at(isf[0], isf[1], isf[2], columns[1][k])
    full = (*columns, insulin_math._BOLUS_CODE, insulin_math._BASAL_CODE, insulin_math.MOMENTARY_FACTOR * GRID_S,
            GRID_S, insulin_math.DELIVERY_INCREMENTS_PER_UNIT)
    return dates, insulin_math._effect_compiled(full, isf_at_start, dates, duration_s, kind, p, absorbed)


@jit
def _counteraction(glucose_s, glucose_mgdl, start_s, effect_dates, effect_values):
    """``loop_data_manager._counteraction``: counteraction of the readings from ``start_s`` on."""
    if effect_dates.size == 0 or not glucose_s[-1] >= start_s or start_s >= glucose_s[-1]:
        return _EMPTY, _EMPTY, _EMPTY
    first = np.searchsorted(glucose_s, start_s)
    dates, values = glucose_s[first:], glucose_mgdl[first:]
    n = dates.size
    return glucose_math._counteraction_compiled(dates, values, np.zeros(n, dtype=np.int8), np.zeros(n, dtype=np.bool_),
                                                effect_dates, effect_values, glucose_math.COUNTERACTION_MIN_INTERVAL_S)


@jit
def _gradual(glucose_s, glucose_mgdl, since_s, threshold):
    """``loop_data_manager._gradual``: True without a threshold (NaN), else at least two readings
    since ``since_s`` and no step between consecutive ones above it."""
    if np.isnan(threshold):
        return True
    first = np.searchsorted(glucose_s, since_s)
    if glucose_mgdl.size - first < 2:
        return False
    for k in range(first, glucose_mgdl.size - 1):
        if not abs(glucose_mgdl[k + 1] - glucose_mgdl[k]) <= threshold:
            return False
    return True


@jit
def _carbs(now_s, last_glucose_s, carbs, isf, cr, ice, constants, integration_min):
    """``loop_data_manager._carbs``' carb effect from the retrospective window (``carb_store.effects_and_cob``'s
    compiled pass; the entries mapped are those that may absorb from one step before now, as there, but
    the COB timeline, which the decision does not read, is not computed)."""
    carb_s, carb_g, carb_min = carbs
    if carb_s.size == 0:
        return _EMPTY, _EMPTY
    dynamic, default_min, window_back_s, delay_s, model_id, overrun, initial, adaptive = constants
    effect_start = last_glucose_s - integration_min * 60.0
    cob_start = now_s - GRID_S
    effect_window, cob_window = effect_start - window_back_s, cob_start - window_back_s
    if dynamic:
        out = carb_math._dynamic_pass(carb_s, carb_g, carb_min, default_min, min(effect_window, cob_window),
                                      isf[0], isf[1], isf[2], cr[0], cr[1], cr[2], ice[0], ice[1], ice[2], model_id,
                                      overrun, initial, delay_s, adaptive, carb_math.ADAPTIVE_RATE_STANDBY_FRACTION,
                                      effect_start, np.nan, GRID_S)
    else:
        out = carb_math._static_pass(carb_s, carb_g, carb_min, default_min, effect_window, cob_window, isf[0],
                                     isf[1], isf[2], cr[0], cr[1], cr[2], model_id, delay_s, effect_start, np.nan,
                                     GRID_S)
    return out[0], out[1]


@jit
def _append(dates, values, offsets, m, part):
    """Concatenate a non-empty effect timeline after the ``offsets[m - 1]`` values already there."""
    n = part[0].size
    if n == 0:
        return m
    start = offsets[m - 1]
    dates[start:start + n] = part[0]
    values[start:start + n] = part[1]
    offsets[m] = start + n
    return m + 1


@jit
def _prediction(start_s, start_mgdl, effects, drop_retrospective, drop_momentum, final_s):
    """``loop_data_manager.predict``: the non-empty effects of ``effects`` (carb, insulin, retrospective,
    momentum timelines) in the core's order, momentum when not empty, held to ``final_s``; without any
    effect the start alone (``predict_glucose``'s array path), held. Empty for a momentum without any
    other effect (that array path blends it: not compiled here). The bolus prediction drops the
    retrospective correction and momentum where asked."""
    carb, insulin, retrospective, momentum = effects
    if drop_retrospective:
        retrospective = (_EMPTY, _EMPTY)
    if drop_momentum:
        momentum = (_EMPTY, _EMPTY)
    total = carb[0].size + insulin[0].size + retrospective[0].size
    if total == 0 and momentum[0].size:
        return _EMPTY, _EMPTY
    if total == 0:
        out_dates, out_values = np.array([start_s]), np.array([start_mgdl + 0.0])
    else:
        dates, values = np.empty(total), np.empty(total)
        offsets = np.zeros(4, dtype=np.int64)
        m = _append(dates, values, offsets, 1, carb)
        m = _append(dates, values, offsets, m, insulin)
        m = _append(dates, values, offsets, m, retrospective)
        out_dates, out_values = _predict_compiled(start_s, start_mgdl, dates, values, offsets[:m], momentum[0],
                                                  momentum[1], momentum[0].size > 0)
    if out_dates.size and out_dates[-1] < final_s:
        out_dates, out_values = np.append(out_dates, final_s), np.append(out_values, out_values[-1])
    return out_dates, out_values


@jit
def _decide(now_s, glucose_s, glucose_mgdl, doses, carbs, running, factor, constants, manual):
    """The compiled closed-loop decision (see the module docstring): ``(status, temp basal decision,
    rate U/h, automatic bolus U, its temp basal decision, rate U/h, manual bolus U, prediction dates s,
    mg/dL)``. The manual bolus (``loop_data_manager``'s ``_manual_bolus`` amount) is computed only
    when ``manual`` is True (NaN otherwise)."""
    insulin, carb_constants, glucose, correction, dosing, schedules, rounders = constants
    duration_s, delay_s, curve_kind, p, absorbed, remaining = insulin
    gradual_threshold, momentum_min, max_slope, history_s, integration_min = glucose
    isf, cr, basal, target = schedules
    nothing = (NOT_COVERED, 0, 0.0, 0.0, 0, 0.0, np.nan, _EMPTY, _EMPTY)
    start_s = now_s - history_s
    ok, kind, d_start, d_end, value, delivered, scheduled = _prepared_compiled(
        doses[0], doses[1], doses[2], doses[3], doses[4], doses[5], start_s - duration_s, now_s, True,
        basal[0], basal[1], basal[2], SECONDS_PER_DAY, _CODES, insulin_math._TRIM_EPS_S,
        insulin_math.DELIVERY_INCREMENTS_PER_UNIT)
    if not ok:
        return nothing
    columns = (kind, d_start, d_end, value, delivered, scheduled)
    effect_dates, effect_values = _history_effect(columns, insulin, isf, start_s, now_s)
    ice = _counteraction(glucose_s, glucose_mgdl, start_s, effect_dates, effect_values)
    insulin_dates, insulin_effect, iob = insulin_math._active_compiled(
        kind, d_start, d_end, value, delivered, scheduled, now_s, duration_s, delay_s, isf[0], isf[1], isf[2],
        insulin_math._BOLUS_CODE, insulin_math._BASAL_CODE, insulin_math.MOMENTARY_FACTOR * GRID_S, GRID_S,
        insulin_math.DELIVERY_INCREMENTS_PER_UNIT, insulin_math._TRIM_EPS_S, curve_kind, p, absorbed, remaining)
    iob_now = iob[0] if iob.size else 0.0
    momentum_dates, momentum_values, covered = glucose_math._momentum_compiled(
        glucose_s, glucose_mgdl, now_s - momentum_min * 60.0, not np.isnan(gradual_threshold), gradual_threshold,
        momentum_min, 5.0, not np.isnan(max_slope), max_slope, 2.0)
    if not covered:
        return nothing
    carb_dates, carb_effect = _carbs(now_s, glucose_s[-1], carbs, isf, cr, ice, carb_constants, integration_min)
    rc_dates, rc_values = _EMPTY, _EMPTY
    rc_enabled, integral, recency_min, grouping_min = correction
    if rc_enabled and _gradual(glucose_s, glucose_mgdl, now_s - grouping_min * 60.0, gradual_threshold):
        out = rc._correction_compiled(glucose_s[-1], glucose_mgdl[-1], ice[0], ice[1], ice[2], now_s, carb_dates,
                                      carb_effect, rc.GROUPING_MULTIPLIER * grouping_min * 60.0, recency_min,
                                      grouping_min, rc.EFFECT_DURATION_MIN, integral, integral, GRID_S)
        if not out[9]:
            return nothing
        rc_dates, rc_values = out[0], out[1]
    effects = ((carb_dates, carb_effect), (insulin_dates, insulin_effect), (rc_dates, rc_values),
               (momentum_dates, momentum_values))
    final_s = glucose_s[-1] + duration_s - delay_s
    dates, values = _prediction(glucose_s[-1], glucose_mgdl[-1], effects, False, False, final_s)
    if dates.size == 0:
        return nothing
    if now_s - glucose_s[-1] >= STALE_GLUCOSE_MIN * 60.0:
        return STALE, 0, 0.0, 0.0, 0, 0.0, np.nan, dates, values
    pending, headroom = _pending(now_s, iob_now, running, dosing[3], basal)
    out = _dose(now_s, dates, values, curve_kind, p, duration_s, headroom, running, factor, dosing, schedules,
                rounders)
    if not out[0]:
        return nothing
    manual_u = np.nan
    if manual:
        same = dosing[6] or not (_rises(momentum_values) or _rises(rc_values))
        own_dates, own_values = dates, values
        if not same:  # the bolus prediction drops a rising momentum and retrospective correction
            own_dates, own_values = _prediction(glucose_s[-1], glucose_mgdl[-1], effects, _rises(rc_values),
                                                _rises(momentum_values), final_s)
        manual_u = _manual_bolus(now_s, own_dates, own_values, same, out[1], out[2], curve_kind, p, duration_s,
                                 pending, dosing, schedules, rounders[1])
        if np.isnan(manual_u):
            return nothing
    return DECIDED, out[3], out[4], out[5], out[6], out[7], manual_u, dates, values


@jit
def _pending(now_s, iob_now, running, max_iob, basal):
    """``loop_data_manager.pending_insulin_u`` (U) and ``_iob_headroom`` (U, NaN without a max IOB)."""
    is_temp, ltb_start, ltb_end, ltb_rate = running
    pending = 0.0
    if is_temp and not ltb_start > ltb_end and ltb_end > now_s:
        scheduled = value_at(basal[0], basal[1], basal[2], now_s)
        pending = _at_least_zero((ltb_rate - scheduled) * (ltb_end - now_s) / 3600.0)
    return pending, np.nan if np.isnan(max_iob) else _at_least_zero(max_iob - iob_now - pending)


@jit
def _dose(now_s, dates, values, curve_kind, p, duration_s, headroom, running, factor, dosing, schedules, rounders):
    """``loop_data_manager.recommend``'s ``dose_math.loop_doses`` (compiled pass): ``(covered, correction
    kind code, correction units, temp basal decision, rate U/h, automatic bolus U, its temp basal decision,
    rate U/h)``."""
    suspend, max_basal, max_bolus, _, temp_asked, automatic, _ = dosing
    isf, _, basal, target = schedules
    is_temp, _, ltb_end, ltb_rate = running
    limits = (temp_asked, max_basal, headroom, automatic, factor if automatic else np.nan, max_bolus)
    running_temp = (True, ltb_end, ltb_rate) if is_temp and ltb_end > now_s else (False, np.nan, np.nan)
    out = dose_math._doses_compiled(dates, values, (curve_kind, p), now_s, duration_s, suspend, target, isf, basal,
                                    limits, running_temp, rounders[0], rounders[1])
    return out[0], out[1], out[2], out[6], out[7], out[8], out[9], out[10]


@jit
def _manual_bolus(now_s, dates, values, same, main_kind, main_units, curve_kind, p, duration_s, pending, dosing,
                  schedules, volume_rounder):
    """``loop_data_manager._manual_bolus``'s amount (U) on the bolus prediction ``dates, values``
    (``same``: it is the main prediction, whose correction is ``main_kind, main_units``): Loop's
    ``recommendedBolus`` (the correction less the pending insulin, within the maximum bolus, rounded to
    the pump's volumes), 0 when the main correction is a suspend. NaN where the compiled pass does not
    cover it (no valid maximum bolus, a bolus prediction ``dose_math``'s compiled correction refuses)."""
    suspend, _, max_bolus, _, _, _, _ = dosing
    isf, _, _, target = schedules
    if not max_bolus >= 0.0:
        return np.nan
    units = main_units
    if not same:
        own = dose_math._correction_compiled(dates, values, (curve_kind, p), now_s, duration_s, suspend, target, isf)
        if not own[0]:
            return np.nan
        units = own[2]
    amount = dose_math._within(dose_math._py_min(max_bolus, _at_least_zero(units - pending)), max_bolus,
                               volume_rounder)
    return 0.0 if amount > 0 and main_kind == dose_math._SUSPEND else amount


@jit
def _rises(values):
    """``loop_data_manager._rises``: a timeline ending above where it starts."""
    return values.size > 0 and values[-1] > values[0]


@jit
def _at_least_zero(x):
    """Python's ``max(0.0, x)``: ``x`` only when it is greater than 0."""
    return x if x > 0.0 else 0.0
