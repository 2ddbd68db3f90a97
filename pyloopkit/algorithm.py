"""The current Loop algorithm (Swift LoopKit/LoopAlgorithm, 2024-2026) on its own JSON formats.

``run(input)`` takes LoopAlgorithm's ``AlgorithmInput`` (a dict or a JSON file) and returns a
JSON-ready dict shaped like its ``AlgorithmOutput``; ``generate_prediction(input)`` takes a
``LoopPredictionInput`` and returns the forecast. The steps follow ``LoopAlgorithm.run`` /
``generatePrediction`` (see ``docs/algorithm.md`` for formulas, constants and the table of
differences with the 2019 Loop that ``update()`` reproduces):

1. doses relative to the scheduled basal (absolute basal timeline), IOB at the prediction start;
2. insulin effects on the 5-minute grid from the first dose (or glucose) to the end of the last
   dose's action (ISF at each dose's start, or the ISF in force during absorption with
   ``useMidAbsorptionISF``);
3. insulin counteraction effects (ICE), dynamic carb absorption with the selected model
   (piecewise-linear by default), carb effects from 180 min before the start, COB;
4. retrospective correction (standard or integral) from ICE minus carb effects, with the
   continuous decay; momentum over the last 15 min capped at 4 mg/dL/min; both skipped when
   consecutive readings jump by more than ``gradualTransitionsThreshold`` (40 mg/dL);
5. the prediction, extended to 6 h 10 min; the correction (``dose_math.insulin_correction``)
   becomes a manual bolus, an automatic bolus (application factor x correction, limited by the
   maximum active insulin) plus a temp basal no higher than the scheduled rate, or a 30-min
   temp basal limited by ``maxBasalRate`` and the active-insulin headroom.

Where the algorithm refuses (stale glucose, incomplete timelines, ...) the output carries
``errors`` instead of ``recommendation``. Known defects of the Swift package are not copied
(``docs/algorithm.md``, "Deviations").
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from . import carb_math, carb_store, dose_math, glucose_math, insulin_math, loop_math
from . import retrospective_correction as rc
from .algorithm_input import (
    BASAL_INCOMPLETE, CARB_RATIO_INCOMPLETE, FUTURE_BASAL_NOT_ALLOWED, GLUCOSE_TOO_OLD, INSULIN_ACTIVITY_DURATION_S,
    MISSING_GLUCOSE, MISSING_SUSPEND_THRESHOLD, SENSITIVITY_ENDS_TOO_EARLY, SENSITIVITY_INCOMPLETE,
    SENSITIVITY_STARTS_TOO_LATE, TARGET_INCOMPLETE, AbsoluteTimeline, AlgorithmInput, Refusal, describe_interval,
    format_dates, from_algorithm_input, iso, parse_algorithm_input, parse_prediction_input, to_algorithm_input,
)
from .date import ceil_to_grid, floor_to_grid, grid
from .dose import DoseArrays, DoseType
from .errors import InvalidInputError, MissingDataError
from .glucose_store import MOMENTUM_DATA_INTERVAL_S, GlucoseArrays
from .insulin_models import PRESETS

INPUT_DATA_RECENCY_S = 15 * 60.0
"""The latest glucose must be less than 15 min older than the prediction start (``inputDataRecencyInterval``)."""

TEMP_BASAL_DURATION_MIN = dose_math.TEMP_BASAL_DURATION_MIN
"""Duration of recommended temp basals, 30 min (``tempBasalDuration``)."""

CARB_EFFECT_LOOKBACK_S = rc.RETROSPECTION_INTERVAL_MIN * 60.0
"""Carb effects start 180 min before the prediction start
(``IntegralRetrospectiveCorrection.retrospectionInterval``)."""

DEFAULT_CARB_ABSORPTION_S = 3 * 3600.0
"""Absorption time of a carb entry that gives none (``CarbMath.defaultAbsorptionTime``)."""

MOMENTUM_DURATION_MIN = 15.0
"""Momentum effect duration (``GlucoseMath.momentumDuration``; Loop 2019 used 30 min); the
readings used are those of the last ``glucose_store.MOMENTUM_DATA_INTERVAL_S`` (15 min)."""

__all__ = ["run", "generate_prediction", "to_algorithm_input", "from_algorithm_input", "predict", "recommend",
           "refusals", "scenario_main"]

# --------------------------------------------------------------------------- refusals

def _model_for(inp: AlgorithmInput, insulin_type: str | None):
    """Exponential model of a LoopAlgorithm insulin type (None: the default rapid-acting model)."""
    return PRESETS[inp.model_preset(insulin_type)]


def _dose_effect_end_s(inp: AlgorithmInput) -> np.ndarray:
    """End of each dose's action: its end plus its insulin model's effect duration."""
    types = set(inp.doses.insulin_type)
    if len(types) == 1:
        return inp.doses.end_s + _model_for(inp, types.pop()).effect_duration_min * 60.0
    durations = np.array([_model_for(inp, t).effect_duration_min * 60.0 for t in inp.doses.insulin_type])
    return inp.doses.end_s + durations


def needed_sensitivity_interval(inp: AlgorithmInput, recommendation_model) -> tuple[float, float]:
    """LoopAlgorithm ``timelineIntervalForSensitivity``: the doses' effect interval (first start to
    the latest end plus its model's effect duration), extended to the first glucose and to the
    recommended dose's effect interval, floored/ceiled to the 5-min grid."""
    start = inp.prediction_start_s
    lo, hi = start, start + recommendation_model.effect_duration_min * 60.0
    if len(inp.doses):
        lo = min(lo, float(inp.doses.start_s.min()))
        hi = max(hi, float(_dose_effect_end_s(inp).max()))
    if len(inp.glucose):
        lo = min(lo, float(inp.glucose.date_s[0]))
    return float(floor_to_grid(lo)), float(ceil_to_grid(hi))


def _gap_refusals(timeline: AbsoluteTimeline, start_s: float, end_s: float, code: str, what: str) -> list[Refusal]:
    return [Refusal(code, f"{timeline.name} timeline has no value over {describe_interval(a, b)} ({what})")
            for a, b in timeline.gaps(start_s, end_s)]


def _coverage_refusals(inp: AlgorithmInput, isf_interval: tuple[float, float] | None) -> list[Refusal]:
    """Timeline coverage the math needs (the checks Swift lacks are marked in docs/algorithm.md)."""
    out: list[Refusal] = []
    start = inp.prediction_start_s
    doses = inp.doses
    if len(doses):
        basal_end = max(start, float(doses.end_s[doses.is_basal].max())) if doses.is_basal.any() else start
        basal_from = min(float(doses.start_s[0]), start)
        out += _gap_refusals(inp.basal, basal_from, basal_end, BASAL_INCOMPLETE,
                             f"needed from the first dose at {iso(doses.start_s[0])}")
    elif not inp.basal.covered(start):
        out.append(Refusal(BASAL_INCOMPLETE, f"basal timeline does not cover the prediction start {iso(start)}"))
    if isf_interval is not None:
        lo, hi = isf_interval
        if inp.sensitivity.first_start_s > lo:
            out.append(Refusal(SENSITIVITY_STARTS_TOO_LATE,
                               f"sensitivity timeline starts at {iso(inp.sensitivity.first_start_s)}, "
                               f"after {iso(lo)} (first dose/glucose)"))
        if inp.sensitivity.last_end_s < hi:
            out.append(Refusal(SENSITIVITY_ENDS_TOO_EARLY,
                               f"sensitivity timeline ends at {iso(inp.sensitivity.last_end_s)}, "
                               f"before {iso(hi)} (end of insulin action)"))
        inner = [(a, b) for a, b in inp.sensitivity.gaps(lo, hi)
                 if a > inp.sensitivity.first_start_s and b < inp.sensitivity.last_end_s]
        out += [Refusal(SENSITIVITY_INCOMPLETE, f"sensitivity timeline has no value over {describe_interval(a, b)}")
                for a, b in inner]
    for name, timeline, code in (("sensitivity", inp.sensitivity, SENSITIVITY_INCOMPLETE),
                                 ("carbRatio", inp.carb_ratio, CARB_RATIO_INCOMPLETE)):
        missing = np.flatnonzero(~timeline.covered(inp.carbs.date_s))
        out += [Refusal(code, f"{name} timeline does not cover carbEntries[{i}] at {iso(inp.carbs.date_s[i])}")
                for i in missing]
    if isf_interval is None:
        missing = np.flatnonzero(~inp.sensitivity.covered(doses.start_s))
        out += [Refusal(SENSITIVITY_INCOMPLETE, f"sensitivity timeline does not cover doses[{i}] at "
                                                f"{iso(doses.start_s[i])}") for i in missing]
    return out


def refusals(inp: AlgorithmInput) -> list[Refusal]:
    """Every reason ``run`` gives no recommendation (empty when it can dose).

    LoopAlgorithm's ``AlgorithmError`` checks (``missingGlucose``, ``glucoseTooOld``,
    ``futureBasalNotAllowed``, ``sensitivityTimelineStartsTooLate`` / ``EndsTooEarly``,
    ``basalTimelineIncomplete``, ``missingSuspendThreshold``) plus gap checks the Swift code
    lacks: a basal timeline starting after the first dose or leaving a dose uncovered, gaps in
    the sensitivity timeline, carb entries outside the sensitivity or carb-ratio timelines, a
    target timeline not covering the recommended dose's effect.
    """
    out: list[Refusal] = []
    start = inp.prediction_start_s
    if len(inp.glucose) == 0:
        out.append(Refusal(MISSING_GLUCOSE, "glucoseHistory is empty"))
    elif start - inp.glucose.date_s[-1] >= INPUT_DATA_RECENCY_S:
        out.append(Refusal(GLUCOSE_TOO_OLD, f"latest glucose at {iso(inp.glucose.date_s[-1])} is "
                                            f"{(start - inp.glucose.date_s[-1]) / 60:.1f} min before predictionStart "
                                            f"{iso(start)} (limit 15 min)"))
    automated = inp.recommendation_type != "manualBolus"
    basal_ends = inp.doses.end_s[inp.doses.is_basal]
    if automated and basal_ends.size and basal_ends.max() > start:
        out.append(Refusal(FUTURE_BASAL_NOT_ALLOWED, f"a basal dose ends at {iso(basal_ends.max())}, after "
                                                     f"predictionStart; automated dosing must not see future basal"))
    model = _model_for(inp, inp.recommendation_insulin_type)
    out += _coverage_refusals(inp, needed_sensitivity_interval(inp, model))
    effect_end = start + model.effect_duration_min * 60.0
    if inp.suspend_threshold is None and not inp.target.covered(start):
        out.append(Refusal(MISSING_SUSPEND_THRESHOLD, "no suspendThreshold and no target at predictionStart"))
    out += _gap_refusals(inp.target, start, effect_end, TARGET_INCOMPLETE, "needed for the correction")
    return out


# --------------------------------------------------------------------------- prediction

EMPTY = (np.empty(0), np.empty(0))


@dataclass(frozen=True)
class Prediction:
    """LoopAlgorithm's ``LoopPrediction``: the forecast and every intermediate effect.

    Effects are ``(dates_s, values_mgdl)``; ``counteraction`` is ``(start_s, end_s,
    velocity_mgdl_per_min)``; ``discrepancies`` the summed RC discrepancies; ``carb_status``
    a :class:`pyloopkit.carb_math.CarbStatus` (or None without carbs).
    """

    glucose: tuple
    insulin: tuple
    carbs: tuple
    momentum: tuple
    retrospective: tuple
    counteraction: tuple
    discrepancies: rc.Discrepancies
    total_retrospective_mgdl: float | None
    carb_status: object
    active_insulin_u: float
    active_carbs_g: float


def _dose_arrays(inp: AlgorithmInput, rows: np.ndarray) -> DoseArrays:
    """LoopAlgorithm doses as :class:`DoseArrays`: boluses, and basal doses as temp basals whose
    delivered units are the given volume (rate = volume / duration)."""
    d = inp.doses
    basal = d.is_basal[rows]
    hours = (d.end_s[rows] - d.start_s[rows]) / 3600.0
    volume = d.volume_u[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(basal & (hours > 0), volume / np.where(hours > 0, hours, 1.0), volume)
    kind = np.where(basal, DoseType.TEMP_BASAL, DoseType.BOLUS).astype(np.int8)
    return DoseArrays(kind, d.start_s[rows], d.end_s[rows], value, volume.copy(), np.full(rows.size, np.nan))


def relative_doses(inp: AlgorithmInput) -> list[tuple[object, DoseArrays]]:
    """Doses relative to the scheduled basal (LoopAlgorithm ``annotated(with:)``), one group per
    insulin model: ``[(model, annotated DoseArrays), ...]``. Basal doses are split at basal
    timeline boundaries; their net units are the volume minus the scheduled rate x duration."""
    groups = {}
    for i, t in enumerate(inp.doses.insulin_type):
        groups.setdefault(inp.model_preset(t), []).append(i)
    return [(PRESETS[preset], insulin_math.annotate_with_basal(_dose_arrays(inp, np.array(rows)), inp.basal))
            for preset, rows in groups.items()]


def _insulin(inp: AlgorithmInput, groups, use_mid_absorption_isf: bool):
    """IOB at the start and the insulin effect timeline (LoopAlgorithm ``generatePrediction``)."""
    start = inp.prediction_start_s
    iob = sum(float(insulin_math.insulin_on_board(doses, model, np.array([start]))[0]) for model, doses in groups)
    lo, hi = start, start
    active = [(m, d) for m, d in groups if len(d)]
    if active:
        lo = float(min(d.start_s.min() for _, d in active))
        hi = float(max(d.end_s.max() + m.effect_duration_min * 60.0 for m, d in active))
    if len(inp.glucose):
        lo, hi = min(lo, float(inp.glucose.date_s[0])), max(hi, float(inp.glucose.date_s[-1]))
    dates = grid(lo, hi)
    effects = insulin_math.mid_absorption_glucose_effects if use_mid_absorption_isf else insulin_math.glucose_effects
    return iob, (dates, sum((effects(doses, model, inp.sensitivity, dates) for model, doses in groups),
                            np.zeros(dates.size)))


def _carbs(inp: AlgorithmInput, counteraction):
    """Carb status, carb effects from 180 min before the start, and COB at the start.

    Unlike Swift (whose ``map(to:)`` always uses the piecewise-linear curve), the selected
    model is used for the absorption mapping too."""
    c = inp.carbs
    if len(c) == 0:
        return None, EMPTY, 0.0
    absorption = np.where(np.isnan(c.absorption_s), DEFAULT_CARB_ABSORPTION_S, c.absorption_s)
    status = carb_math.map_absorption(c.date_s, c.grams, absorption, counteraction, inp.carb_ratio,
                                      inp.sensitivity, **carb_store.model_arguments(inp.carb_absorption_model))
    # Swift's CarbStatus reports its estimated absorption time, which sets the end of the grid.
    dates = carb_math.simulation_dates(status.start_s, status.estimated_absorption_time_s,
                                       start_s=inp.prediction_start_s - CARB_EFFECT_LOOKBACK_S)
    effect = carb_math.dynamic_carb_effects(status, dates)
    cob = float(carb_math.dynamic_carbs_on_board(status, np.array([inp.prediction_start_s]))[0])
    return status, (dates, effect), cob


def _net_positive(effect) -> bool:
    return effect[1].size > 0 and effect[1][-1] - effect[1][0] > 0


def _use_retrospection(inp: AlgorithmInput, glucose: GlucoseArrays, retrospective) -> bool:
    """RC enters the prediction unless a reading of the last 30 min jumps by more than the
    gradual-transitions threshold, or its net effect is positive and positive RC is excluded."""
    start = inp.prediction_start_s
    recent = glucose.between(start - rc.GROUPING_INTERVAL_MIN * 60.0, start)
    if not glucose_math.has_gradual_transitions(recent.value_mgdl, inp.gradual_transitions_threshold):
        return False
    return inp.include_positive_velocity_and_rc or not _net_positive(retrospective)


def _momentum(inp: AlgorithmInput, glucose: GlucoseArrays):
    """Momentum of the readings of the last 15 min, slope capped at ``momentumVelocityMaximum``;
    empty when two of them differ by more than the gradual-transitions threshold."""
    start = inp.prediction_start_s
    recent = glucose.between(start - MOMENTUM_DATA_INTERVAL_S, start)
    if not glucose_math.has_gradual_transitions(recent.value_mgdl, inp.gradual_transitions_threshold):
        return EMPTY
    return glucose_math.momentum_effect(recent, duration_min=MOMENTUM_DURATION_MIN,
                                        velocity_max_mgdl_per_min=inp.momentum_velocity_maximum)


def predict(inp: AlgorithmInput) -> Prediction:
    """LoopAlgorithm ``generatePrediction`` on parsed input (coverage must have been checked)."""
    start = inp.prediction_start_s
    g = inp.glucose
    glucose = GlucoseArrays.from_arrays(g.date_s, g.value_mgdl, provenance=np.array(g.provenance, dtype=object),
                                        is_display_only=g.is_calibration)
    groups = relative_doses(inp)
    iob, insulin = _insulin(inp, groups, inp.use_mid_absorption_isf)
    if len(glucose):
        counteraction = glucose_math.counteraction_effects(glucose, *insulin)
    else:
        counteraction = (np.empty(0),) * 3
    status, carbs, cob = _carbs(inp, counteraction)
    summed = rc.discrepancies(*counteraction, *carbs)
    retrospective, total_rc, momentum, prediction = EMPTY, None, EMPTY, EMPTY
    if len(glucose):
        latest_s, latest_mgdl = float(glucose.date_s[-1]), float(glucose.value_mgdl[-1])
        correct = rc.integral_correction if inp.use_integral_retrospective_correction else rc.standard_correction
        result = correct(latest_s, latest_mgdl, summed, continuous_decay=True)
        retrospective, total_rc = result.effect, result.total_mgdl
        effects = [e for name, e in (("carbs", carbs), ("insulin", insulin)) if name in inp.effects]
        if "retrospection" in inp.effects and _use_retrospection(inp, glucose, retrospective):
            effects.append(retrospective)
        if "momentum" in inp.effects:
            momentum = _momentum(inp, glucose)
        use_momentum = momentum[0].size > 0 and (inp.include_positive_velocity_and_rc or not _net_positive(momentum))
        dates, values = loop_math.predict_glucose(latest_s, latest_mgdl, [e for e in effects if e[0].size],
                                                  momentum=momentum if use_momentum else None)
        final_s = start + INSULIN_ACTIVITY_DURATION_S
        if dates[-1] < final_s:
            dates, values = np.append(dates, final_s), np.append(values, values[-1])
        prediction = (dates, values)
    return Prediction(prediction, insulin, carbs, momentum, retrospective, counteraction, summed, total_rc, status,
                      iob, cob)


# --------------------------------------------------------------------------- dosing

_DIRECTIONS = {"in_range": "neutral", "above_range": "increase", "entirely_below_range": "decrease",
               "suspend": "decrease"}


def _correction(inp: AlgorithmInput, prediction: Prediction, model, suspend_threshold: float):
    start = inp.prediction_start_s
    effected = None
    if inp.use_mid_absorption_isf:
        effected = partial(dose_math.mid_absorption_effected_sensitivity, at_s=start, sensitivity=inp.sensitivity,
                           model=model)
    correction = dose_math.insulin_correction(*prediction.glucose, at_s=start, target=inp.target,
                                              suspend_threshold_mgdl=suspend_threshold, sensitivity=inp.sensitivity,
                                              model=model, effected_sensitivity=effected, loop_algorithm=True)
    return correction or dose_math.InsulinCorrection("in_range")


def _temp_basal_json(rate: float) -> dict:
    return {"unitsPerHour": float(rate), "duration": TEMP_BASAL_DURATION_MIN * 60.0}


def _glucose_json(date_s: float, value: float) -> dict:
    return {"date": iso(date_s), "value": float(value)}


def _manual_notice(correction, inp: AlgorithmInput):
    """LoopAlgorithm's bolus notice, replaced by ``currentGlucoseBelowTarget`` when the latest
    glucose is below the target range in force at its date."""
    latest_s, latest = float(inp.glucose.date_s[-1]), float(inp.glucose.value_mgdl[-1])
    if inp.target.covered(latest_s) and latest < float(inp.target.at(latest_s)[0]):
        return {"currentGlucoseBelowTarget": {"glucose": _glucose_json(latest_s, latest)}}
    if correction.kind == "in_range":
        return "predictedGlucoseInRange"
    if correction.kind == "suspend":
        name = "glucoseBelowSuspendThreshold"
    elif correction.kind == "entirely_below_range":
        name = "allGlucoseBelowTarget"
    elif correction.units > 0 and correction.min_below_target:
        name = "predictedGlucoseBelowTarget"
    else:
        return None
    return {name: {"minGlucose": _glucose_json(correction.min_s, correction.min_mgdl)}}


def recommend(inp: AlgorithmInput, prediction: Prediction) -> dict:
    """LoopAlgorithm's dose recommendation for ``inp.recommendation_type`` (JSON-ready).

    * ``manualBolus``: ``{"manual": {"amount": min(maxBolus, max(0, units)), "notice"}}``;
    * ``automaticBolus``: a temp basal no higher than the scheduled rate (nor ``maxBasalRate``) plus a bolus of
      ``factor x units`` limited to ``min(maxBolus x factor, max(0, maxActiveInsulin - IOB))``
      (0 while the minimum prediction is below the target range);
    * ``tempBasal``: a 30-min temp basal limited by ``maxBasalRate``, by the scheduled rate while
      the minimum prediction is below range, and by ``max(0, scheduled + 2 x (maxActiveInsulin - IOB))``
      (Swift's limit without the clamp at 0, which could give a negative rate).
    """
    start = inp.prediction_start_s
    model = _model_for(inp, inp.recommendation_insulin_type)
    threshold = inp.suspend_threshold if inp.suspend_threshold is not None else float(inp.target.at(start)[0])
    correction = _correction(inp, prediction, model, threshold)
    if inp.recommendation_type == "manualBolus":
        amount = min(float(inp.max_bolus), max(0.0, correction.units))
        return {"manual": {"amount": amount, "notice": _manual_notice(correction, inp)}}
    scheduled = float(inp.basal.values[inp.basal.index_at(start)])
    headroom = inp.max_active_insulin - prediction.active_insulin_u
    direction = _DIRECTIONS[correction.kind]
    max_rate = float(inp.max_basal_rate)
    if inp.recommendation_type == "tempBasal":
        limit = min(max_rate, scheduled) if correction.min_below_target else max_rate
        limit = min(limit, max(0.0, headroom * (60.0 / TEMP_BASAL_DURATION_MIN) + scheduled))
        rate = dose_math.temp_basal_rate_for(correction, scheduled, limit, TEMP_BASAL_DURATION_MIN)
        return {"automatic": {"basalAdjustment": _temp_basal_json(rate), "direction": direction}}
    factor = inp.automatic_bolus_application_factor
    if inp.use_glucose_based_application_factor:
        factor = dose_math.glucose_based_application_factor(float(inp.glucose.value_mgdl[-1]), float(inp.target.at(start)[0]))
    bolus_limit = 0.0 if correction.min_below_target else min(float(inp.max_bolus) * factor, max(0.0, headroom))
    bolus = min(max(0.0, correction.units * factor), bolus_limit)
    rate = dose_math.temp_basal_rate_for(correction, scheduled, min(scheduled, max_rate), TEMP_BASAL_DURATION_MIN)
    return {"automatic": {"basalAdjustment": _temp_basal_json(rate), "direction": direction, "bolusUnits": bolus}}


# --------------------------------------------------------------------------- output

def _timeline_json(effect) -> list[dict]:
    dates, values = effect
    return [{"date": d, "value": v} for d, v in zip(format_dates(dates), _finite(values, "effect").tolist())]


def _finite(values, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(out)):
        raise FloatingPointError(f"non-finite value in the {what} output")
    return out


def _interval_json(starts, ends, values) -> list[dict]:
    return [{"startDate": s, "endDate": e, "value": v}
            for s, e, v in zip(format_dates(starts), format_dates(ends), _finite(values, "interval").tolist())]


def _carb_status_json(status) -> list[dict]:
    if status is None:
        return []
    cols = zip(format_dates(status.start_s), status.grams.tolist(), status.absorption_time_s.tolist(),
               _finite(status.observed_grams, "carb").tolist(), status.clamped_grams.tolist(),
               status.remaining_grams.tolist(), format_dates(status.observed_end_s),
               status.estimated_time_remaining_s.tolist(), status.time_to_absorb_observed_s.tolist())
    return [{"date": d, "grams": g, "absorptionTime": a, "observedGrams": o, "clampedGrams": c,
             "remainingGrams": r, "observedEndDate": e, "estimatedTimeRemaining": t, "timeToAbsorbObservedCarbs": x}
            for d, g, a, o, c, r, e, t, x in cols]


def _effects_json(p: Prediction) -> dict:
    return {
        "insulin": _timeline_json(p.insulin),
        "carbs": _timeline_json(p.carbs),
        "momentum": _timeline_json(p.momentum),
        "retrospectiveCorrection": _timeline_json(p.retrospective),
        "insulinCounteraction": _interval_json(*p.counteraction),
        "retrospectiveGlucoseDiscrepancies": _interval_json(p.discrepancies.start_s, p.discrepancies.end_s,
                                                            p.discrepancies.values_mgdl),
        "totalRetrospectiveCorrectionEffect": p.total_retrospective_mgdl,
        "carbStatus": _carb_status_json(p.carb_status),
    }


def _empty_output(errors: list[Refusal]) -> dict:
    return {"predictedGlucose": [], "effects": _effects_json(Prediction(
        EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, (np.empty(0),) * 3,
        rc.Discrepancies(np.empty(0), np.empty(0), np.empty(0)), None, None, 0.0, 0.0)),
        "activeInsulin": None, "activeCarbs": None, "errors": [e.to_json() for e in errors]}


def _load(data) -> dict:
    if isinstance(data, (str, Path)):
        with open(data) as f:
            return json.load(f)
    return data


def run(data) -> dict:
    """Run the current Loop algorithm on LoopAlgorithm's ``AlgorithmInput``.

    Parameters
    ----------
    data : dict, str or Path
        The input (see ``docs/algorithm.md``): ``predictionStart``, ``glucoseHistory``
        (``date``, ``value`` mg/dL), ``doses`` (``type`` bolus/basal, ``startDate``, ``endDate``,
        ``volume`` U, optional ``insulinType``), ``carbEntries`` (``date``, ``grams``, optional
        ``absorptionTime`` s), absolute ``basal`` (U/h), ``sensitivity`` (mg/dL/U), ``carbRatio``
        (g/U) and ``target`` (``lowerBound``/``upperBound`` mg/dL) timelines, ``maxBolus`` (U),
        ``maxBasalRate`` (U/h) and the optional settings; or a path to such a JSON file.

    Returns
    -------
    dict
        JSON-ready: ``predictedGlucose`` (``[{"date", "value"}]`` mg/dL), ``recommendation``
        (``{"manual": {...}}`` or ``{"automatic": {...}}``) or, when the algorithm refuses,
        ``errors`` (``[{"type", "message"}]``) with empty effects; ``effects`` (insulin, carbs,
        momentum, retrospectiveCorrection, insulinCounteraction mg/dL/min, carbStatus, ...),
        ``activeInsulin`` (U), ``activeCarbs`` (g).

    Raises
    ------
    InvalidInputError
        For malformed input (every problem listed with field, index and value).
    """
    inp = parse_algorithm_input(_load(data))
    errors = refusals(inp)
    if errors:
        return _empty_output(errors)
    p = predict(inp)
    return {"predictedGlucose": _timeline_json(p.glucose), "recommendation": recommend(inp, p),
            "effects": _effects_json(p), "activeInsulin": p.active_insulin_u, "activeCarbs": p.active_carbs_g}


def generate_prediction(data) -> list[dict]:
    """The forecast for LoopAlgorithm's ``LoopPredictionInput`` (no dosing settings).

    The prediction starts at the last glucose date; ``algorithmEffectsOptions`` selects the
    effects; ``includePositiveVelocityAndRC`` is honoured (Swift's helper drops it).

    Returns
    -------
    list of ``{"date", "value"}`` (mg/dL); empty without glucose.

    Raises
    ------
    InvalidInputError
        Malformed input.
    MissingDataError
        When a timeline does not cover what the math needs (basal over the doses, sensitivity
        at each dose and carb entry, carb ratio at each carb entry), naming the gaps.
    """
    inp = parse_prediction_input(_load(data))
    if len(inp.glucose) == 0:
        return []
    problems = _coverage_refusals(inp, None)
    if problems:
        raise MissingDataError("; ".join(f"{r.code}: {r.message}" for r in problems))
    return _timeline_json(predict(inp).glucose)


def scenario_main(argv: list[str]) -> int:
    """``python -m pyloopkit scenario FILE.json [--prediction-only]``: print the output as JSON.

    Returns the exit code: 0, or 3 for invalid input / missing data (the problems go to stderr).
    """
    parser = argparse.ArgumentParser(prog="pyloopkit scenario")
    parser.add_argument("file")
    parser.add_argument("--prediction-only", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = generate_prediction(args.file) if args.prediction_only else run(args.file)
    except (InvalidInputError, MissingDataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0
