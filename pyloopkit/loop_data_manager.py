"""``update()``: the Loop algorithm end to end, on PyLoopKit's input dictionary.

The orchestrator follows Loop's ``LoopDataManager`` (the 2019 app that Tidepool's
PyLoopKit ports), with the corrections current Loop made (see ``docs/update.md``):

1. validate the input (``input_validation``): warnings, or one ``InvalidInputError``;
2. convert it once to arrays and schedules (``loop_input.parse_input``);
3. the array core (:func:`core`, shared with ``replay()`` and ``LoopController``): effects on Loop's 5-minute grid: momentum, insulin (history for counteraction,
   and from now on for the prediction), counteraction, carbs (dynamic or static),
   retrospective correction;
4. the prediction (``loop_math.predict_glucose``) and the temp basal / bolus /
   automatic bolus recommendations (``dose_math``);
5. the output dictionary of PyLoopKit's keys, plus IOB and warnings, as plain
   Python floats and datetimes.
"""
from __future__ import annotations

import functools
import warnings as _warnings
from dataclasses import dataclass

import numpy as np

from . import carb_store, core_kernel, dose_math, glucose_math, insulin_math, loop_math, pump_rounding
from . import retrospective_correction as rc
from .compat import empty_list_on_error
from .date import GRID_S, from_seconds, grid, to_seconds
from .dose import DoseType
from .dose_store import prepare_doses
from .errors import InvalidInputError, LoopWarning, Problem
from .glucose_store import GlucoseArrays
from .input_validation import convert_glucose_units, glucose_is_stale, validate_input
from .insulin_models import model_from_setting
from .loop_input import LoopInput, parse_input

HISTORY_S = 24 * 3600.0
"""How far back effects are computed (Loop's 24 h of counteraction history)."""

AUTOMATIC_BOLUS_FACTOR = 0.4
"""Loop's default partial application factor for automatic boluses."""

EMPTY = (np.empty(0), np.empty(0))


@dataclass
class Effects:
    """Effect timelines (dates_s, values) computed for one run."""

    momentum: tuple
    insulin: tuple
    counteraction: tuple
    carb: tuple
    retrospective: tuple
    cob: tuple
    iob: tuple
    iob_now_u: float


@empty_list_on_error
def update(input_dict: dict, *, forecaster=None, prediction_source: str | None = None,
           dosing_policy=None) -> dict:
    """Run the Loop algorithm on a PyLoopKit input dictionary.

    Parameters
    ----------
    input_dict : dict
        PyLoopKit's input dictionary (``glucose_dates/values``, ``dose_*``,
        ``carb_*``, schedules, ``settings_dictionary``, ``last_temporary_basal``,
        ``time_to_calculate_at``; see ``docs/update.md``).
    forecaster : pyloopkit.forecast.Forecaster, optional
        Its 4-hour forecast is added as ``forecast_glucose_dates/values`` (docs/forecast.md).
    prediction_source : "loop", "forecaster" or "blend", optional
        What the dose math reads: Loop's prediction (default), the forecaster's, or their mean.
        Defaults to the ``settings_dictionary`` key of the same name, else ``"loop"``; every
        guardrail (max basal, max bolus, suspend threshold, rounding, max IOB) applies to all three.
    dosing_policy : object, optional
        An RL dosing policy with ``guard(input_dict, output)`` (:func:`pyloopkit.rl.load_policy`, or
        any ``recommend(features) -> U/h`` policy wrapped in ``pyloopkit.rl.guarded.GuardedPolicy``):
        its basal rate replaces the recommended temp basal after Loop's guardrails (max basal, zero
        delivery when the prediction falls below the suspend threshold, pump rounding); the output
        adds ``policy_action`` and ``guardrails_applied``.

    Returns
    -------
    dict
        PyLoopKit's output keys (``predicted_glucose_dates/values`` in mg/dL,
        ``recommended_temp_basal``, ``recommended_bolus``, ``recommended_autobolus``,
        each effect's dates/values, counteraction starts/ends/values in mg/dL/min,
        ``carbs_on_board`` g, ``cob_timeline_*``) plus ``insulin_on_board`` (U),
        ``insulin_on_board_timeline_*`` and ``warnings``. Values are Python floats,
        dates are datetimes in the zone of ``time_to_calculate_at``.

    Raises
    ------
    InvalidInputError
        Listing every impossible value (field, index, value, reason). With the environment
        variable ``PYLOOPKIT_COMPAT_EMPTY_ON_ERROR=1`` (PyLoopKit's behaviour, see
        :mod:`pyloopkit.compat`) ``update()`` returns ``[]`` and warns with the problem list instead.
    """
    seconds: dict = {}
    messages = list(validate_input(input_dict, seconds))
    inp = parse_input(convert_glucose_units(input_dict), seconds)
    source = _prediction_source(input_dict, forecaster, prediction_source)
    if forecaster is None:
        result = run(inp, messages)
    else:
        result = _run_with_forecast(inp, forecaster.predict(input_dict), source, messages)
    if dosing_policy is not None:
        result = _dose_with_policy(dosing_policy, convert_glucose_units(input_dict), result)
    result["input_data"] = input_dict
    for message in messages:
        _warnings.warn(message, LoopWarning, stacklevel=3)  # the caller of the compat wrapper
    return result


@dataclass
class CoreResult:
    """What the array core computes at ``inp.now_s``: effect timelines, the prediction
    ``(dates_s, values mg/dL)`` and the recommendations (see :func:`recommend`)."""

    effects: Effects
    prediction: tuple
    recommendations: dict


def model_for(settings) -> object:
    """The insulin model of a :class:`LoopSettings` (``model`` and ``insulin_delay``)."""
    return model_from_setting(list(settings.model), settings.insulin_delay)


def core(inp: LoopInput, model=None, iob_timeline: bool = True, dosing_prediction=None,
         bolus: bool = True) -> CoreResult:
    """The Loop algorithm on parsed arrays: the one core behind ``update()``, ``replay()`` and
    :class:`~pyloopkit.control.LoopController`.

    Parameters
    ----------
    inp : LoopInput
        Validated, parsed input (seconds since the reference date, mg/dL, schedules).
    model : insulin model, optional
        ``model_for(inp.settings)``, computed when not given (callers running many steps pass it).
    iob_timeline : bool
        Compute the IOB timeline (``update()``'s output); False gives only IOB now.
    dosing_prediction : callable, optional
        ``dosing_prediction(prediction, model) -> (dates_s, values)``: the timeline the dose math
        reads instead of Loop's prediction (for the temp basal and the bolus alike).
    bolus : bool
        False skips the manual bolus recommendation (``recommendations["bolus"]`` is None): a
        closed loop needs it only when a meal is announced.
    """
    model = model_for(inp.settings) if model is None else model
    effects = compute_effects(inp, model, iob_timeline=iob_timeline)
    prediction = predict(inp, effects, model, for_bolus=False)
    if dosing_prediction is None:
        return CoreResult(effects, prediction, recommend(inp, effects, model, prediction, bolus=bolus))
    return CoreResult(effects, prediction, recommend(inp, effects, model, dosing_prediction(prediction, model),
                                                     fixed_prediction=True, bolus=bolus))


def closed_loop_recommendations(inp: LoopInput, model, constants: tuple | None) -> dict:
    """``core(inp, model, iob_timeline=False, bolus=False).recommendations`` (what a closed-loop step
    reads): by :func:`pyloopkit.core_kernel.recommend` in one compiled call when ``constants``
    (:func:`pyloopkit.core_kernel.plan` of the input's settings, ``model`` and schedules) is given and
    the compiled decision covers the input, else by :func:`core`. Same numbers either way."""
    if constants is not None:
        decided = core_kernel.recommend(inp, constants, _application_factor(inp))
        if decided is not None:
            return decided[0]
    return core(inp, model, iob_timeline=False, bolus=False).recommendations


def run(inp: LoopInput, messages: list[str] | None = None) -> dict:
    """Compute effects, prediction and recommendations for parsed input, as ``update()``'s output."""
    result = core(inp)
    return _output(inp, result.effects, result.prediction, result.recommendations,
                   [] if messages is None else messages)


PREDICTION_SOURCES = ("loop", "forecaster", "blend")


def _prediction_source(input_dict: dict, forecaster, source: str | None) -> str:
    """The validated ``prediction_source`` (keyword, else the settings key, else ``"loop"``)."""
    if source is None:
        source = (input_dict.get("settings_dictionary") or {}).get("prediction_source") or "loop"
    problems = []
    if source not in PREDICTION_SOURCES:
        problems.append(Problem("prediction_source", None, source, f"must be one of {PREDICTION_SOURCES}"))
    elif source != "loop" and forecaster is None:
        problems.append(Problem("prediction_source", None, source, "needs a forecaster (update(..., forecaster=f))"))
    if problems:
        raise InvalidInputError(problems)
    return source


def _dose_with_policy(policy, input_dict: dict, output: dict) -> dict:
    """``policy.guard(input_dict, output)``: the policy replaces the recommendation behind Loop's
    guardrails (the core imports no learner: the policy brings its guard, see pyloopkit.rl.guarded)."""
    if not callable(getattr(policy, "guard", None)):
        raise InvalidInputError([Problem("dosing_policy", None, type(policy).__name__,
                                         "must have guard(input_dict, output): use pyloopkit.rl.load_policy(...) "
                                         "or wrap it in pyloopkit.rl.guarded.GuardedPolicy")])
    return policy.guard(input_dict, output)


def _run_with_forecast(inp: LoopInput, forecast: dict, source: str, messages: list[str]) -> dict:
    """``run()`` with a forecaster's 4-hour forecast in the output and, unless the source is
    ``"loop"``, in the dose math (from the last glucose reading, then the forecast's 5-min points,
    held at its last value to the end of the insulin action)."""
    forecast_s = to_seconds(forecast["dates"])
    forecast_mgdl = np.asarray(forecast["values"], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(forecast_mgdl))
    if bad.size:
        raise InvalidInputError([Problem("forecast.values", int(i), float(forecast_mgdl[i]), "must be finite")
                                 for i in bad])

    def dosing_prediction(prediction, model):
        values = forecast_mgdl
        if source == "blend":
            values = 0.5 * (forecast_mgdl + np.interp(forecast_s, prediction[0], prediction[1]))
        dates = np.concatenate([[float(inp.glucose_s[-1])], forecast_s])
        return _extend_to_action_end(dates, np.concatenate([[float(inp.glucose_mgdl[-1])], values]),
                                     float(inp.glucose_s[-1]), model)

    result = core(inp, dosing_prediction=None if source == "loop" else dosing_prediction)
    out = _output(inp, result.effects, result.prediction, result.recommendations, messages)
    out.update(_timeline("forecast_glucose", (forecast_s, forecast_mgdl), inp))
    out["prediction_source"] = source
    return out


def compute_effects(inp: LoopInput, model, iob_timeline: bool = True) -> Effects:
    """All effect timelines Loop needs at ``inp.now_s``; with ``iob_timeline=False`` the IOB
    "timeline" is the single value at ``now_s`` (what a replay step needs).

    Basal-like doses are cut at ``now`` (Loop's ``basalDosingEnd``): the rest of a running temp
    basal is not yet delivered; it is the bolus recommendation's pending insulin instead.
    """
    s = inp.settings
    now = inp.now_s
    duration_s = model.effect_duration_min * 60.0
    if "counteraction" in inp.injected:
        lookback_s = (2.0 if iob_timeline else 1.0) * duration_s  # the IOB timeline starts one duration back
        doses = prepare_doses(inp.doses, inp.basal, start_s=now - lookback_s, end_s=now)
        counteraction = inp.injected["counteraction"]
    else:
        next_effect_s = inp.injected.get("previous_counteraction_end_s", now - HISTORY_S)
        doses = prepare_doses(inp.doses, inp.basal, start_s=next_effect_s - duration_s, end_s=now)
        # counteraction needs the effect only up to the last glucose (the grid point after it included)
        history = _insulin_effect(doses, model, inp, next_effect_s, until_s=now)
        counteraction = _counteraction(inp, next_effect_s, history)
    insulin, iob, iob_now_u = _insulin_from_now(inp, doses, model, iob_timeline)
    momentum = _injected_or(inp, "momentum", lambda: _momentum(inp, now))
    carb, cob = _carbs(inp, counteraction)
    use_rc = s.retrospective_correction_enabled and _gradual(inp, s.retrospective_correction_grouping_interval)
    retrospective = _retrospective(inp, counteraction, carb) if use_rc else EMPTY
    return Effects(momentum, insulin, counteraction, carb, retrospective, cob, iob, iob_now_u)


def _injected_or(inp: LoopInput, name: str, compute):
    """A caller-injected effect when present (PyLoopKit's hook), else the computed one."""
    return inp.injected[name] if name in inp.injected else compute()


def _insulin_from_now(inp: LoopInput, doses, model, iob_timeline: bool):
    """The insulin effect from now on (doses acting after one effect duration ago), the IOB
    timeline (or value now) and IOB now (U): one compiled pass (:func:`insulin_math.active_effect_and_iob`)
    when only IOB now is wanted and the effect is neither injected nor mid-absorption, else the
    separate paths."""
    now = inp.now_s
    fused = None if (iob_timeline or "insulin" in inp.injected or inp.settings.use_mid_absorption_isf) else (
        insulin_math.active_effect_and_iob(doses, model, inp.sensitivity, now))
    if fused is None:
        insulin = _injected_or(inp, "insulin", lambda: _insulin_effect(
            _active_since(doses, now - model.effect_duration_min * 60.0), model, inp, now))
        return (insulin, *_iob(doses, model, now, iob_timeline))
    dates, effect, iob = fused
    if iob.size == 0:  # no dose acts any more
        return EMPTY, EMPTY, 0.0
    return (dates, effect), (np.array([now]), iob), float(iob[0])


def _active_since(doses, start_s: float):
    """Prepared doses still acting after ``start_s``, trimmed to start there (DoseStore's window)."""
    return insulin_math.trim(insulin_math.filter_date_range(doses, start_s, None), start_s=start_s)


def _insulin_effect(doses, model, inp: LoopInput, start_s: float, until_s: float = np.inf):
    """Insulin effect (mg/dL) on the 5-min grid from ``start_s`` (floored, as the Loop app reports it)
    to the end of the last dose's action, or only to ``until_s`` when that comes first (the grid
    point at or after it included); with ``use_mid_absorption_isf`` insulin acts with the ISF in
    force when it is absorbed (LoopAlgorithm), else with the ISF at each dose's start (Loop 2019)."""
    if len(doses) == 0:
        return EMPTY
    end_s = min(float(np.max(doses.end_s)) + model.effect_duration_min * 60.0, until_s)
    dates = grid(start_s, max(end_s, start_s))
    effects = (insulin_math.mid_absorption_glucose_effects if inp.settings.use_mid_absorption_isf
               else insulin_math.glucose_effects)
    return dates, effects(doses, model, inp.sensitivity, dates, validate=False)


def _iob(doses, model, now_s: float, timeline: bool):
    """Insulin on board (U): the timeline every 5 min from one insulin action duration before now
    to one after (just ``[now]`` when ``timeline`` is False), and the value at ``now_s`` itself."""
    duration_s = model.effect_duration_min * 60.0
    dates = grid(now_s - duration_s, now_s + duration_s) if timeline else np.empty(0)
    doses = insulin_math.filter_date_range(doses, now_s - (2.0 if timeline else 1.0) * duration_s, None)
    if len(doses) == 0:
        return (dates, np.zeros(dates.size)) if timeline else EMPTY, 0.0
    values = insulin_math.insulin_on_board(doses, model, np.append(dates, now_s), validate=False)
    if timeline:
        return (dates, values[:-1]), float(values[-1])
    return (np.array([now_s]), values), float(values[-1])


def _gradual(inp: LoopInput, window_min: float) -> bool:
    """False when ``gradual_transitions_threshold`` is set and two consecutive readings of the last
    ``window_min`` minutes differ by more than it (LoopAlgorithm then drops momentum / RC)."""
    threshold = inp.settings.gradual_transitions_threshold
    if threshold is None:
        return True
    recent = inp.glucose_mgdl[inp.glucose_s >= inp.now_s - window_min * 60.0]
    return glucose_math.has_gradual_transitions(recent, threshold)


def _momentum(inp: LoopInput, now_s: float):
    s = inp.settings
    return glucose_math.recent_momentum_effect(
        inp.glucose_s, inp.glucose_mgdl, now_s, data_interval_min=s.momentum_data_interval,
        velocity_max_mgdl_per_min=s.max_physiologic_slope, gradual_threshold_mgdl=s.gradual_transitions_threshold)


def _counteraction(inp: LoopInput, start_s: float, insulin_history):
    keep = inp.glucose_s >= start_s
    if insulin_history[0].size == 0 or not np.any(keep) or start_s >= inp.glucose_s[-1]:
        return np.empty(0), np.empty(0), np.empty(0)
    return glucose_math.counteraction_effects(GlucoseArrays.of_validated(inp.glucose_s[keep], inp.glucose_mgdl[keep]),
                                              *insulin_history, validate=False)


def _carbs(inp: LoopInput, counteraction):
    s = inp.settings
    if inp.carb_s.size == 0 and "carb" not in inp.injected:
        return EMPTY, EMPTY
    retro_start = float(inp.glucose_s[-1]) - s.retrospective_correction_integration_interval * 60.0
    carb, cob = carb_store.effects_and_cob(inp, counteraction, effect_start_s=retro_start,
                                           cob_start_s=inp.now_s - GRID_S, validate="counteraction" in inp.injected)
    return inp.injected.get("carb", carb), cob


def _retrospective(inp: LoopInput, counteraction, carb):
    """Retrospective correction effect: Loop 2019's standard one (default) or, with the setting
    ``retrospective_correction="integral"``, LoopAlgorithm's integral one (continuous decay).
    The series are checked again only for an injected counteraction (the boundary checks its
    starts' order, not its ends')."""
    s = inp.settings
    integral = s.retrospective_correction == "integral"
    return rc.correction_from_effects(
        inp.glucose_s, inp.glucose_mgdl, counteraction, carb, now_s=inp.now_s,
        method=s.retrospective_correction, recency_interval_min=s.recency_interval,
        grouping_interval_min=s.retrospective_correction_grouping_interval,
        continuous_decay=integral, validate="counteraction" in inp.injected).effect


def predict(inp: LoopInput, effects: Effects, model, for_bolus: bool):
    """Loop's glucose prediction; the bolus prediction drops positive momentum and
    positive retrospective correction, as current Loop does (unless configured otherwise)."""
    momentum, retrospective = effects.momentum, effects.retrospective
    if for_bolus and not _bolus_prediction_is_main(inp, effects):
        momentum = EMPTY if _rises(momentum) else momentum
        retrospective = EMPTY if _rises(retrospective) else retrospective
    parts = [e for e in (effects.carb, effects.insulin, retrospective) if e[0].size]
    dates, values = loop_math.predict_glucose(
        float(inp.glucose_s[-1]), float(inp.glucose_mgdl[-1]), parts,
        momentum=momentum if momentum[0].size else None, validate=False)
    return _extend_to_action_end(dates, values, float(inp.glucose_s[-1]), model)


def _bolus_prediction_is_main(inp: LoopInput, effects: Effects) -> bool:
    """True when the manual-bolus prediction drops nothing (so the main prediction serves)."""
    return (inp.settings.include_positive_velocity_and_rc_in_bolus
            or not (_rises(effects.momentum) or _rises(effects.retrospective)))


def _rises(effect) -> bool:
    """True when an effect timeline ends above where it starts (RC timelines are glucose values)."""
    values = effect[1]
    return bool(values.size) and values[-1] > values[0]


def _extend_to_action_end(dates, values, last_glucose_s, model):
    """Dosing needs a prediction at least as long as the insulin action; Loop repeats the last value."""
    final_s = last_glucose_s + model.effect_duration_min * 60.0 - model.delay_min * 60.0
    if dates.size and dates[-1] < final_s:
        dates = np.append(dates, final_s)
        values = np.append(values, values[-1])
    return dates, values


def pending_insulin_u(inp: LoopInput) -> float:
    """Insulin of the running temp basal above the scheduled rate still to be delivered (U)."""
    ltb = inp.last_temp_basal
    if ltb is None or ltb[1] > ltb[2] or ltb[2] <= inp.now_s or ltb[0] not in (DoseType.TEMP_BASAL, DoseType.BASAL):
        return 0.0
    scheduled = float(inp.basal.at(np.array([inp.now_s]))[0])
    return max(0.0, (ltb[3] - scheduled) * (ltb[2] - inp.now_s) / 3600.0)


def recommend(inp: LoopInput, effects: Effects, model, prediction, fixed_prediction: bool = False,
              bolus: bool = True) -> dict:
    """Temp basal, manual bolus and (optionally) automatic bolus in PyLoopKit's formats.

    ``temp_basal``: ``(rate U/h, duration min)`` or None (no change); ``bolus``:
    ``(amount U, pending insulin U, notice)``; ``autobolus``: U, or None unless
    ``dosing_strategy`` is ``automatic_bolus`` or ``partial_application_factor`` is set.
    With ``fixed_prediction`` the bolus reads ``prediction`` too (no separate bolus prediction).
    With ``bolus=False`` the manual bolus is not computed (``bolus`` None). With the automatic bolus
    strategy the temp basal is the automatic dose's, so Loop's own temp basal is not computed.
    """
    s = inp.settings
    if glucose_is_stale(float(inp.glucose_s[-1]), inp.now_s):
        return {"temp_basal": None, "bolus": None, "autobolus": None}
    effected = (functools.partial(dose_math.mid_absorption_effected_sensitivity, at_s=inp.now_s,
                                  sensitivity=inp.sensitivity, model=model) if s.use_mid_absorption_isf else None)
    rate_rounder, bolus_rounder = pump_rounding.rounders(s.pump_rounding, s.rate_rounder, s.bolus_rounder, s.rounding)
    common = dict(at_s=inp.now_s, target=inp.target, suspend_threshold_mgdl=s.suspend_threshold,
                  sensitivity=inp.sensitivity, model=model, effected_sensitivity=effected)
    pending = pending_insulin_u(inp)
    headroom = _iob_headroom(inp, effects, pending)
    automatic_wanted = s.dosing_strategy == "automatic_bolus" or s.partial_application_factor is not None
    # Loop's own prediction is valid by construction; a caller's (fixed_prediction) is checked.
    correction, temp_basal, automatic = dose_math.loop_doses(
        *prediction, validate=fixed_prediction, basal=inp.basal, max_basal_rate_u_per_h=s.max_basal_rate,
        last_temp_basal=inp.last_temp_basal, rate_rounder=rate_rounder, volume_rounder=bolus_rounder,
        max_iob_headroom_u=headroom, temp_basal=s.dosing_strategy != "automatic_bolus",
        partial_application_factor=_application_factor(inp) if automatic_wanted else None,
        max_automatic_bolus_u=s.max_bolus, **common)
    manual = _manual_bolus(inp, effects, model, prediction, fixed_prediction, correction, pending, bolus_rounder,
                           common) if bolus else None
    autobolus = None
    if automatic_wanted:
        autobolus = 0.0 if automatic is None else automatic["bolus_units"]
        if s.dosing_strategy == "automatic_bolus":
            temp_basal = None if automatic is None else automatic["basal_adjustment"]
    return {"temp_basal": None if temp_basal is None else (temp_basal["rate"], temp_basal["duration"]),
            "bolus": manual, "autobolus": autobolus}


def _manual_bolus(inp: LoopInput, effects: Effects, model, prediction, fixed_prediction: bool, correction,
                  pending_u: float, bolus_rounder, common: dict) -> tuple:
    """The manual bolus recommendation ``(amount U, pending insulin U, notice)``: on the bolus
    prediction (see :func:`predict`) unless it equals the main one or ``fixed_prediction``."""
    s = inp.settings
    same = fixed_prediction or _bolus_prediction_is_main(inp, effects)
    own = prediction if same else predict(inp, effects, model, True)
    # The bolus prediction is Loop's own (valid by construction) unless it is the caller's (same).
    own_correction = correction if same else dose_math.insulin_correction(*own, validate=False, **common)
    bolus = dose_math.recommended_bolus(*own, pending_insulin_u=pending_u, max_bolus_u=s.max_bolus,
                                        volume_rounder=bolus_rounder, correction=own_correction, **common)
    if bolus["amount"] > 0 and correction is not None and correction.kind == "suspend":
        # Current Loop checks only the bolus's own prediction, which drops rising momentum and RC and can
        # stay above the threshold while the full prediction dips below it: zero the bolus (documented).
        bolus = {**bolus, "amount": 0.0, "notice": ("glucoseBelowSuspendThreshold", correction.min_mgdl)}
    return bolus["amount"], bolus["pending_insulin"], bolus["notice"]


def _application_factor(inp: LoopInput) -> float:
    """The automatic bolus's share of the correction: the app's glucose-based factor when
    ``use_glucose_based_application_factor`` is set, else :func:`fixed_application_factor`."""
    s = inp.settings
    if s.use_glucose_based_application_factor:
        lower = float(inp.target.at(np.array([inp.now_s]))[0][0])
        return dose_math.glucose_based_application_factor(float(inp.glucose_mgdl[-1]), lower)
    return fixed_application_factor(s)


def fixed_application_factor(settings) -> float:
    """``partial_application_factor`` (Loop's 0.4 when unset); NaN when the factor depends on glucose
    (``use_glucose_based_application_factor``)."""
    if settings.use_glucose_based_application_factor:
        return np.nan
    return AUTOMATIC_BOLUS_FACTOR if settings.partial_application_factor is None else settings.partial_application_factor


def _iob_headroom(inp: LoopInput, effects: Effects, pending_u: float):
    """Units that may still be added before ``max_active_insulin`` is reached (None when unset):
    the limit minus IOB now minus insulin still pending from the running temp basal."""
    if inp.settings.max_active_insulin is None:
        return None
    return max(0.0, inp.settings.max_active_insulin - effects.iob_now_u - pending_u)


def value_at(timeline, at_s: float) -> float:
    """Value of a timeline at the latest date at or before ``at_s`` (0 for an empty one)."""
    dates, values = timeline
    i = int(np.searchsorted(dates, at_s, side="right")) - 1
    return float(values[i]) if dates.size and i >= 0 else 0.0


def _dates(seconds, inp: LoopInput) -> list:
    return from_seconds(seconds, inp.tz)


def _sample_dates(seconds, inp: LoopInput) -> list:
    """Datetimes of glucose sample times: the caller's own objects when they are in the output zone."""
    seconds = np.asarray(seconds, dtype=float)
    if inp.glucose_dates is not None and seconds.size:
        index = np.minimum(np.searchsorted(inp.glucose_s, seconds), inp.glucose_s.size - 1)
        if np.array_equal(inp.glucose_s[index], seconds):
            return list(map(inp.glucose_dates.__getitem__, index.tolist()))
    return _dates(seconds, inp)


def _floats(values) -> list[float]:
    out = np.asarray(values, dtype=float)
    if not np.isfinite(out).all():
        raise FloatingPointError("non-finite value in an output timeline")
    return out.tolist()


def _timeline(prefix: str, timeline, inp: LoopInput) -> dict:
    return _timelines({prefix: timeline}, inp)[prefix]


def _timelines(named: dict, inp: LoopInput) -> dict:
    """``{prefix: {prefix_dates: datetimes, prefix_values: floats}}`` for each ``{prefix: (dates_s,
    values)}``: the dates of all converted in one :func:`from_seconds` pass, the values checked and
    listed in one pass (the same objects as timeline by timeline, in fewer calls)."""
    sizes = [np.size(timeline[0]) for timeline in named.values()]
    dates = _dates(np.concatenate([timeline[0] for timeline in named.values()]), inp)
    values = _floats(np.concatenate([timeline[1] for timeline in named.values()], dtype=float))
    out, stop = {}, 0
    for prefix, size in zip(named, sizes):
        out[prefix] = {f"{prefix}_dates": dates[stop:stop + size], f"{prefix}_values": values[stop:stop + size]}
        stop += size
    return out


def _output(inp: LoopInput, effects: Effects, prediction, recommendations: dict, messages: list[str]) -> dict:
    t = _timelines({"predicted_glucose": prediction, "insulin_effect": effects.insulin,
                    "momentum_effect": effects.momentum, "carb_effect": effects.carb,
                    "retrospective_effect": effects.retrospective, "cob_timeline": effects.cob,
                    "insulin_on_board_timeline": effects.iob}, inp)
    return {**t["predicted_glucose"],
            "recommended_temp_basal": recommendations["temp_basal"],
            "recommended_bolus": recommendations["bolus"],
            "recommended_autobolus": recommendations["autobolus"],
            **t["insulin_effect"],
            "counteraction_effect_start_times": _sample_dates(effects.counteraction[0], inp),
            "counteraction_effect_end_times": _sample_dates(effects.counteraction[1], inp),
            "counteraction_effect_values": _floats(effects.counteraction[2]),
            **t["momentum_effect"], **t["carb_effect"], **t["retrospective_effect"],
            "carbs_on_board": value_at(effects.cob, inp.now_s),
            **t["cob_timeline"],
            "insulin_on_board": effects.iob_now_u,
            **t["insulin_on_board_timeline"],
            "warnings": list(messages)}
