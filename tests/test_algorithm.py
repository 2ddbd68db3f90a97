"""Tests of the LoopAlgorithm-format algorithm (pyloopkit.algorithm) with hand-computed expectations.

Scenarios are built around T0 = 2024-01-01T12:00:00Z with constant timelines (basal 1 U/h,
ISF 50 mg/dL/U, carb ratio 10 g/U, target 100-110 mg/dL) unless a test says otherwise.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pyloopkit import algorithm as A
from pyloopkit import dose_math, insulin_math
from pyloopkit.algorithm_input import (
    AbsoluteTimeline, format_dates, from_algorithm_input, parse_dates, to_algorithm_input,
)
from pyloopkit.dose import DoseArrays
from pyloopkit.errors import InvalidInputError, LoopWarning, MissingDataError
from pyloopkit.insulin_models import PRESETS
from pyloopkit.schedule import DailySchedule

T0 = parse_dates(["2024-01-01T12:00:00Z"], "t", [])[0]


def at(minutes: float) -> str:
    """ISO date ``minutes`` after T0."""
    return format_dates([T0 + minutes * 60.0])[0]


def timeline(value, start_min=-24 * 60, end_min=12 * 60, **extra):
    item = {"startDate": at(start_min), "endDate": at(end_min)}
    item.update(extra if extra else {"value": value})
    return [item]


def scenario(glucose, doses=(), carbs=(), **settings):
    """AlgorithmInput dict; ``glucose`` is [(minutes, mg/dL)], doses [(type, start, end, U)],
    carbs [(minutes, g, absorption min)]."""
    d = {
        "predictionStart": at(0),
        "glucoseHistory": [{"date": at(m), "value": v} for m, v in glucose],
        "doses": [{"type": t, "startDate": at(s), "endDate": at(e), "volume": u} for t, s, e, u in doses],
        "carbEntries": [{"date": at(m), "grams": g, "absorptionTime": a * 60.0} for m, g, a in carbs],
        "basal": timeline(1.0), "sensitivity": timeline(50.0), "carbRatio": timeline(10.0),
        "target": timeline(None, lowerBound=100.0, upperBound=110.0),
        "maxBolus": 10.0, "maxBasalRate": 5.0, "recommendationType": "manualBolus",
    }
    d.update(settings)
    return d


def flat(value, minutes=60):
    return [(m, value) for m in range(-minutes, 1, 5)]


def values(out, key="predictedGlucose"):
    return np.array([p["value"] for p in out[key]])


def effect(out, name):
    return np.array([p["value"] for p in out["effects"][name]])


# --------------------------------------------------------------------------- parsing and timelines

def test_garbage_input_names_field_index_and_value():
    d = scenario(flat(100), doses=[("bolus", -30, -30, -1.0)])
    d["glucoseHistory"][2]["value"] = float("nan")
    d["glucoseHistory"][3]["date"] = "yesterday-ish"
    d["doses"].append({"type": "squirt", "startDate": at(-5), "endDate": at(-5), "volume": 1.0})
    d["sensitivity"] = timeline(50.0, -24 * 60, 60) + timeline(40.0, 30, 12 * 60)
    with pytest.raises(InvalidInputError) as e:
        A.run(d)
    found = {(p.field, p.index) for p in e.value.problems}
    assert ("glucoseHistory.value", 2) in found
    assert ("glucoseHistory.date", 3) in found
    assert ("doses.volume", 0) in found
    assert ("doses.type", 1) in found
    assert ("sensitivity.startDate", 1) in found
    assert any(p.value == -1.0 for p in e.value.problems)


def test_missing_required_settings_are_reported_together():
    d = scenario(flat(100))
    del d["maxBolus"], d["maxBasalRate"]
    with pytest.raises(InvalidInputError) as e:
        A.run(d)
    assert {p.field for p in e.value.problems} == {"maxBolus", "maxBasalRate"}


def test_absolute_timeline_lookup_split_and_gaps():
    t = AbsoluteTimeline(np.array([0.0, 100.0, 300.0]), np.array([100.0, 200.0, 400.0]), np.array([1.0, 2.0, 3.0]))
    assert t.at([0.0, 99.0, 100.0, 200.0, 350.0]).tolist() == [1.0, 1.0, 2.0, 2.0, 3.0]
    with pytest.raises(MissingDataError):
        t.at(250.0)
    assert t.gaps(-50.0, 450.0) == [(-50.0, 0.0), (200.0, 300.0), (400.0, 450.0)]
    owner, s, e, v = t.split(np.array([50.0, 120.0]), np.array([150.0, 130.0]))
    assert owner.tolist() == [0, 0, 1]
    assert s.tolist() == [50.0, 100.0, 120.0] and e.tolist() == [100.0, 150.0, 130.0]
    assert v.tolist() == [1.0, 2.0, 2.0]


def test_dates_round_trip_iso():
    s = parse_dates(["2023-10-17T20:59:03Z", "2023-10-17T20:59:03.250Z", "2023-10-17T22:59:03+02:00"], "d", [])
    assert s[0] == s[2] and s[1] - s[0] == 0.25
    assert format_dates(s[:1]) == ["2023-10-17T20:59:03Z"]


# --------------------------------------------------------------------------- refusals (typed errors)

def codes(out):
    return {e["type"] for e in out.get("errors", [])}


def test_missing_glucose():
    out = A.run(scenario([]))
    assert codes(out) == {"missingGlucose"} and "recommendation" not in out
    assert out["predictedGlucose"] == []


def test_glucose_too_old_limit_is_15_minutes():
    assert codes(A.run(scenario([(-20, 100), (-15, 100)]))) == {"glucoseTooOld"}
    ok = A.run(scenario([(-20, 100), (-14.99, 100)]))
    assert "errors" not in ok and "recommendation" in ok


def test_future_basal_refused_only_for_automated_dosing():
    d = scenario(flat(100), doses=[("basal", -10, 20, 0.5)])
    assert codes(A.run({**d, "recommendationType": "automaticBolus"})) == {"futureBasalNotAllowed"}
    assert codes(A.run({**d, "recommendationType": "tempBasal"})) == {"futureBasalNotAllowed"}
    assert "recommendation" in A.run(d)


def test_sensitivity_timeline_too_short():
    late = scenario(flat(100), sensitivity=timeline(50.0, -30, 12 * 60))
    assert codes(A.run(late)) == {"sensitivityTimelineStartsTooLate"}
    early = scenario(flat(100), sensitivity=timeline(50.0, -24 * 60, 6 * 60))
    assert codes(A.run(early)) == {"sensitivityTimelineEndsTooEarly"}
    gap = scenario(flat(100), sensitivity=timeline(50.0, -24 * 60, -20) + timeline(50.0, -10, 12 * 60))
    assert codes(A.run(gap)) == {"sensitivityTimelineIncomplete"}


def test_basal_timeline_starting_after_first_dose_is_an_error_not_ignored_insulin():
    # Swift LoopAlgorithm silently drops every dose when the basal timeline starts after the first dose.
    d = scenario(flat(100), doses=[("bolus", -120, -120, 1.0)], basal=timeline(1.0, -119, 12 * 60))
    out = A.run(d)
    assert codes(out) == {"basalTimelineIncomplete"}
    assert "doses" in out["errors"][0]["message"] or "first dose" in out["errors"][0]["message"]


def test_carb_entry_before_sensitivity_timeline_is_an_error_naming_it():
    d = scenario(flat(100), carbs=[(-180, 20, 180)], sensitivity=timeline(50.0, -120, 12 * 60))
    out = A.run(d)
    assert codes(out) == {"sensitivityTimelineIncomplete"}
    assert "carbEntries[0]" in out["errors"][0]["message"]
    d = scenario(flat(100), carbs=[(-30, 20, 180)], carbRatio=timeline(10.0, -20, 12 * 60))
    assert codes(A.run(d)) == {"carbRatioTimelineIncomplete"}


def test_missing_suspend_threshold():
    d = scenario(flat(100), target=timeline(None, 5, 12 * 60, lowerBound=100.0, upperBound=110.0))
    assert {"missingSuspendThreshold", "targetTimelineIncomplete"} == codes(A.run(d))


# --------------------------------------------------------------------------- prediction features

def test_flat_glucose_without_insulin_predicts_flat_in_range():
    out = A.run(scenario(flat(105)))
    assert np.all(values(out) == 105.0)
    dates = [p["date"] for p in out["predictedGlucose"]]
    assert dates[0] == at(0) and dates[-1] == at(6 * 60 + 10)
    assert out["recommendation"] == {"manual": {"amount": 0.0, "notice": "predictedGlucoseInRange"}}
    auto = A.run(scenario(flat(105), recommendationType="automaticBolus"))["recommendation"]
    assert auto == {"automatic": {"basalAdjustment": {"unitsPerHour": 1.0, "duration": 1800.0},
                                  "direction": "neutral", "bolusUnits": 0.0}}
    temp = A.run(scenario(flat(105), recommendationType="tempBasal"))["recommendation"]
    assert temp == {"automatic": {"basalAdjustment": {"unitsPerHour": 1.0, "duration": 1800.0},
                                  "direction": "neutral"}}


def test_jump_of_45_disables_momentum_and_retrospective_correction():
    glucose = flat(100)[:-1] + [(0, 145)]
    out = A.run(scenario(glucose))
    # RC is computed (one +45 mg/dL discrepancy) but not used; momentum is not computed
    assert out["effects"]["totalRetrospectiveCorrectionEffect"] == pytest.approx(45.0, abs=1e-9)
    assert out["effects"]["momentum"] == []
    assert np.all(values(out) == 145.0)
    smooth = A.run(scenario(glucose, gradualTransitionsThreshold=50.0))
    assert values(smooth)[1] > 145.0


def test_momentum_slope_capped_at_4_mgdl_per_min():
    glucose = [(-15, 77.5), (-10, 100.0), (-5, 122.5), (0, 145.0)]  # 4.5 mg/dL/min
    out = A.run(scenario(glucose))
    assert [p["date"] for p in out["effects"]["momentum"]] == [at(0), at(5), at(10), at(15)]
    assert effect(out, "momentum") == pytest.approx([0.0, 20.0, 40.0, 60.0], abs=1e-9)
    uncapped = A.run(scenario(glucose, momentumVelocityMaximum=10.0))
    assert effect(uncapped, "momentum") == pytest.approx([0.0, 22.5, 45.0, 67.5], abs=1e-9)


@pytest.mark.parametrize("integral", [False, True])
def test_single_plus_10_discrepancy_gives_plus_10_correction(integral):
    glucose = flat(100)[:-1] + [(0, 110)]
    out = A.run(scenario(glucose, useIntegralRetrospectiveCorrection=integral))
    assert out["effects"]["totalRetrospectiveCorrectionEffect"] == pytest.approx(10.0, abs=1e-9)
    rc = effect(out, "retrospectiveCorrection")
    # velocity 10 mg/dL / 30 min decaying to 0: the continuous decay has added 10 mg/dL after 55 min
    assert rc[0] == 110.0 and rc[-1] - rc[0] == pytest.approx(10.0, abs=1e-9)
    assert [p["date"] for p in out["effects"]["retrospectiveCorrection"]][-1] == at(55)


def test_integral_correction_of_a_persistent_discrepancy():
    glucose = [(m, 124.0 + 2.0 * m / 5.0) for m in range(-60, 1, 5)]  # +2 mg/dL every 5 min
    standard = A.run(scenario(glucose))
    integral = A.run(scenario(glucose, useIntegralRetrospectiveCorrection=True))
    # summed discrepancies (30.3-min windows): 2, 4, ..., 14, then 14 until now (12 values)
    run = np.array([2, 4, 6, 8, 10, 12, 14, 14, 14, 14, 14, 14], dtype=float)
    f = math.exp(-5.0 / 60.0)
    ki = (1 - f) / f * (2.0 - 1.0)
    expected = (1 - ki) * 14.0 + ki * np.sum(f ** np.arange(11, -1, -1) * run)
    assert standard["effects"]["totalRetrospectiveCorrectionEffect"] == pytest.approx(14.0, abs=1e-9)
    assert integral["effects"]["totalRetrospectiveCorrectionEffect"] == pytest.approx(expected, abs=1e-9)
    # the integral effect lasts min(60 - 10 + 10 x 12, 180) = 170 min
    assert [p["date"] for p in integral["effects"]["retrospectiveCorrection"]][-1] == at(165)


def test_positive_velocity_and_rc_can_be_excluded():
    glucose = [(m, 124.0 + 2.0 * m / 5.0) for m in range(-60, 1, 5)]
    with_positive = A.run(scenario(glucose))
    without = A.run(scenario(glucose, includePositiveVelocityAndRC=False))
    assert np.all(values(without) == 124.0)
    assert values(with_positive)[-1] > 124.0 + 13.0


def test_mid_absorption_isf_uses_the_isf_in_force_during_absorption():
    per = float(PRESETS["adult"].percent_effect_remaining(120.0))
    isf = timeline(50.0, -24 * 60, -5 * 60) + timeline(100.0, -5 * 60, 12 * 60)
    d = scenario(flat(100), doses=[("bolus", -7 * 60, -7 * 60, 1.0)], sensitivity=isf)
    regular = A.run(d)
    mid = A.run({**d, "useMidAbsorptionISF": True})
    assert effect(regular, "insulin")[-1] == pytest.approx(-50.0, abs=1e-9)
    assert effect(mid, "insulin")[-1] == pytest.approx(-(50.0 * (1 - per) + 100.0 * per), abs=1e-9)


def test_mid_absorption_effected_sensitivity_sums_every_isf_item():
    adult = PRESETS["adult"]
    rem = adult.percent_effect_remaining
    t = np.array([0.0, 60.0, 120.0, 200.0, 370.0])
    one = dose_math.mid_absorption_effected_sensitivity(t, at_s=T0, sensitivity=DailySchedule.constant(50.0),
                                                        model=adult)
    assert one == pytest.approx(50.0 * (1.0 - rem(t)), abs=1e-12)
    # ISF 50 until 120 min after delivery, then 100 (absolute timeline and daily schedule alike)
    expected = 50.0 * (1.0 - rem(np.minimum(t, 120.0))) + 100.0 * (rem(np.minimum(t, 120.0)) - rem(t))
    timeline = AbsoluteTimeline(np.array([T0 - 3600.0, T0 + 7200.0]), np.array([T0 + 7200.0, T0 + 86400.0]),
                                np.array([50.0, 100.0]))
    daily = DailySchedule.from_lists(["00:00", "14:00"], [50.0, 100.0])  # T0 is 12:00 UTC
    for sensitivity in (timeline, daily):
        got = dose_math.mid_absorption_effected_sensitivity(t, at_s=T0, sensitivity=sensitivity, model=adult)
        assert got == pytest.approx(expected, abs=1e-12)


def test_mid_absorption_glucose_effects_with_a_daily_schedule():
    # 1 U at T0 - 7 h; ISF 50 until T0 - 5 h (05:00 UTC), then 100: absorbed before 05:00 acts at 50
    adult = PRESETS["adult"]
    doses = DoseArrays.from_lists(["Bolus"], [T0 - 7 * 3600.0], [T0 - 7 * 3600.0], [1.0])
    daily = DailySchedule.from_lists(["00:00", "07:00"], [50.0, 100.0])
    dates = T0 + np.array([-7, -6, -5, -3, 0]) * 3600.0
    got = insulin_math.mid_absorption_glucose_effects(doses, adult, daily, dates)
    absorbed = 1.0 - adult.percent_effect_remaining(np.array([0.0, 60.0, 120.0, 240.0, 420.0]))
    at_switch = absorbed[2]
    expected = np.where(dates <= T0 - 5 * 3600.0, -50.0 * absorbed,
                        -(50.0 * at_switch + 100.0 * (absorbed - at_switch)))
    assert got == pytest.approx(expected, abs=1e-12)


def test_mid_absorption_dosing_uses_the_isf_during_absorption():
    # flat 250 mg/dL, no insulin; ISF 50 now, 100 from 120 min on. The least insulin that brings a
    # prediction to its target (suspend threshold 80 until half the 370-min effect, then linear to
    # the 105 mg/dL middle of the range) over the 5-min grid, with the effected sensitivity above.
    isf = timeline(50.0, -24 * 60, 120) + timeline(100.0, 120, 12 * 60)
    d = scenario(flat(250), sensitivity=isf, suspendThreshold=80.0, useMidAbsorptionISF=True)
    rem = PRESETS["adult"].percent_effect_remaining
    t = np.arange(5.0, 371.0, 5.0)
    effected = 50.0 * (1.0 - rem(np.minimum(t, 120.0))) + 100.0 * (rem(np.minimum(t, 120.0)) - rem(t))
    goal = np.where(t <= 185.0, 80.0, 80.0 + (105.0 - 80.0) * (t / 370.0 - 0.5) / 0.5)
    acting = rem(t) < 1.0  # after the 10-min delay
    expected = float(np.min((250.0 - goal[acting]) / effected[acting]))
    assert A.run(d)["recommendation"]["manual"]["amount"] == pytest.approx(min(expected, 10.0), rel=1e-12)
    regular = A.run({**d, "useMidAbsorptionISF": False})["recommendation"]["manual"]["amount"]
    assert regular == pytest.approx(float(np.min((250.0 - goal[acting]) / (50.0 * (1.0 - rem(t[acting]))))),
                                    rel=1e-12)
    assert expected < regular  # the higher ISF later makes each unit count more


def test_temp_basal_rate_for():
    above = dose_math.InsulinCorrection("above_range", 1.0, min_mgdl=150.0, min_target_mgdl=100.0)
    assert dose_math.temp_basal_rate_for(above, 1.0, 5.0, 30.0) == 3.0  # 1 U over 0.5 h + 1 U/h
    assert dose_math.temp_basal_rate_for(above, 1.0, 2.5, 30.0) == 2.5
    assert dose_math.temp_basal_rate_for(above, 1.0, 5.0, 40.0, rate_rounder=0.1) == 2.5  # 2.5 exactly
    assert dose_math.temp_basal_rate_for(above, 1.05, 5.0, 40.0, rate_rounder=0.1, rounding="down") == 2.5
    below = dose_math.InsulinCorrection("entirely_below_range", -1.0)
    assert dose_math.temp_basal_rate_for(below, 1.0, 5.0, 30.0) == 0.0
    suspend = dose_math.InsulinCorrection("suspend")
    assert dose_math.temp_basal_rate_for(suspend, 1.0, 5.0, 30.0) == 0.0


def test_mid_absorption_dosing_with_constant_isf_equals_regular_dosing():
    d = scenario(flat(250), doses=[("bolus", -60, -60, 1.0)])
    regular = A.run(d)
    mid = A.run({**d, "useMidAbsorptionISF": True})
    assert values(mid) == pytest.approx(values(regular), abs=1e-9)
    assert mid["recommendation"]["manual"]["amount"] == pytest.approx(
        regular["recommendation"]["manual"]["amount"], abs=1e-9)
    assert regular["recommendation"]["manual"]["amount"] > 0


@pytest.mark.parametrize("model, expected", [
    ("linear", 30.0 * 50.0 / 270.0),
    ("piecewiseLinear", 30.0 * 2.0 / 1.35 * (50.0 / 270.0 - 0.075)),
])
def test_selected_carb_model_is_used_for_the_absorption_mapping(model, expected):
    # No observed absorption (flat glucose, no insulin): the clamped grams are the minimum
    # absorption of the selected model over 1.5 x 180 min, 50 min after the 10-min delay.
    out = A.run(scenario(flat(100), carbs=[(-60, 30.0, 180.0)], carbAbsorptionModel=model))
    status = out["effects"]["carbStatus"][0]
    assert status["observedGrams"] == 0.0
    assert status["clampedGrams"] == pytest.approx(expected, rel=1e-12)
    swift_enum = A.run(scenario(flat(100), carbs=[(-60, 30.0, 180.0)], carbAbsorptionModel={model: {}}))
    assert swift_enum["effects"]["carbStatus"][0]["clampedGrams"] == status["clampedGrams"]


# --------------------------------------------------------------------------- dosing

def test_active_insulin_headroom_limits_temp_basal_and_automatic_bolus():
    d = scenario(flat(300), doses=[("bolus", 0, 0, 1.0)], maxBolus=1.0, maxActiveInsulinMultiplier=1.5,
                 recommendationType="tempBasal")
    out = A.run(d)
    assert out["activeInsulin"] == 1.0
    # max rate = scheduled 1 U/h + (1.5 - 1.0) U over 30 min
    assert out["recommendation"]["automatic"]["basalAdjustment"]["unitsPerHour"] == pytest.approx(2.0, abs=1e-12)
    assert out["recommendation"]["automatic"]["direction"] == "increase"
    auto = A.run({**d, "recommendationType": "automaticBolus", "maxActiveInsulinMultiplier": 1.2})
    rec = auto["recommendation"]["automatic"]
    assert rec["bolusUnits"] == pytest.approx(0.2, abs=1e-12)  # min(0.4 x 1 U, 1.2 - 1.0)
    assert rec["basalAdjustment"]["unitsPerHour"] == 1.0
    default = A.run({**d, "recommendationType": "automaticBolus", "maxActiveInsulinMultiplier": None})
    assert default["recommendation"]["automatic"]["bolusUnits"] == pytest.approx(0.4, abs=1e-12)


@pytest.mark.parametrize("multiplier, rate", [(0.8, 1.0 - 2 * 0.2), (0.4, 0.0)])
def test_active_insulin_above_the_maximum_reduces_the_temp_basal_but_never_below_zero(multiplier, rate):
    # IOB 1 U, maximum 0.8 U: limit 1 U/h + 2 x (0.8 - 1) = 0.6 U/h; maximum 0.4 U: Swift's limit
    # would be -0.2 U/h (a negative rate), here 0.
    d = scenario(flat(300), doses=[("bolus", 0, 0, 1.0)], maxBolus=1.0, maxActiveInsulinMultiplier=multiplier,
                 recommendationType="tempBasal")
    out = A.run(d)["recommendation"]["automatic"]
    assert out["basalAdjustment"]["unitsPerHour"] == pytest.approx(rate, abs=1e-12)
    assert out["direction"] == "increase"


def test_automatic_bolus_is_application_factor_times_correction():
    d = scenario(flat(300), recommendationType="automaticBolus")
    manual = A.run({**d, "recommendationType": "manualBolus"})["recommendation"]["manual"]["amount"]
    for factor in (0.4, 0.7):
        auto = A.run({**d, "automaticBolusApplicationFactor": factor})["recommendation"]["automatic"]
        assert auto["bolusUnits"] == pytest.approx(factor * manual, rel=1e-12)


def test_glucose_based_application_factor():
    assert dose_math.glucose_based_application_factor(105.0, 100.0) == 0.2
    assert dose_math.glucose_based_application_factor(150.0, 100.0) == pytest.approx(0.2 + 40.0 * 0.6 / 90.0, rel=1e-12)
    assert dose_math.glucose_based_application_factor(250.0, 100.0) == 0.8
    d = scenario(flat(300), recommendationType="automaticBolus")
    constant = A.run(d)["recommendation"]["automatic"]["bolusUnits"]
    sliding = A.run({**d, "useGlucoseBasedApplicationFactor": True})["recommendation"]["automatic"]["bolusUnits"]
    assert sliding == pytest.approx(2.0 * constant, rel=1e-12)  # 0.8 at 300 mg/dL vs 0.4


def test_manual_bolus_notices():
    low = A.run(scenario(flat(95)))["recommendation"]["manual"]
    assert low["amount"] == 0.0
    assert low["notice"] == {"currentGlucoseBelowTarget": {"glucose": {"date": at(0), "value": 95.0}}}
    suspend = A.run(scenario(flat(120), suspendThreshold=130.0))["recommendation"]["manual"]
    assert suspend == {"amount": 0.0, "notice": {"glucoseBelowSuspendThreshold": {
        "minGlucose": {"date": at(0), "value": 120.0}}}}
    capped = A.run(scenario(flat(400), maxBolus=0.5))["recommendation"]["manual"]
    assert capped["amount"] == 0.5 and capped["notice"] is None
    # 0.5 U given 10 min ago (still in its delay) takes 110 mg/dL down by 25 once absorbed, except
    # what the flat momentum replaces: all of the first 5-min change, half of the second (blending).
    below = A.run(scenario(flat(110), doses=[("bolus", -10, -10, 0.5)], suspendThreshold=70.0))
    notice = below["recommendation"]["manual"]["notice"]["allGlucoseBelowTarget"]["minGlucose"]
    e5, e10 = (-25.0 * (1.0 - float(PRESETS["adult"].percent_effect_remaining(m))) for m in (15.0, 20.0))
    assert below["recommendation"]["manual"]["amount"] == 0.0
    assert notice["date"] == at(360)
    assert notice["value"] == pytest.approx(85.0 - e5 - 0.5 * (e10 - e5), abs=1e-9)


def test_output_is_json_without_nan():
    d = scenario(flat(180), doses=[("bolus", -90, -90, 2.0), ("basal", -60, -30, 0.0)],
                 carbs=[(-45, 40.0, 180.0)], recommendationType="automaticBolus",
                 useIntegralRetrospectiveCorrection=True, carbAbsorptionModel="adaptiveRateNonlinear")
    out = A.run(d)
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text)["activeInsulin"] == pytest.approx(out["activeInsulin"])
    assert out["activeCarbs"] > 0 and out["activeInsulin"] > 0


# --------------------------------------------------------------------------- prediction-only path, converters, CLI

def prediction_input(d):
    keep = ("glucoseHistory", "doses", "carbEntries", "basal", "sensitivity", "carbRatio",
            "useIntegralRetrospectiveCorrection", "includePositiveVelocityAndRC", "carbAbsorptionModel")
    return {k: d[k] for k in keep if k in d}


def test_generate_prediction_matches_run_when_starting_at_last_glucose():
    d = scenario(flat(180), doses=[("bolus", -90, -90, 2.0)], carbs=[(-45, 40.0, 180.0)])
    assert A.generate_prediction(prediction_input(d)) == A.run(d)["predictedGlucose"]
    only_insulin = A.generate_prediction({**prediction_input(d), "algorithmEffectsOptions": 2})
    remaining = float(PRESETS["adult"].percent_effect_remaining(90.0))  # of the bolus 90 min ago
    assert only_insulin[-1]["value"] == pytest.approx(180.0 - 2.0 * 50.0 * remaining, abs=1e-9)
    assert A.generate_prediction({**prediction_input(d), "glucoseHistory": []}) == []
    with pytest.raises(MissingDataError):
        A.generate_prediction({**prediction_input(d), "basal": timeline(1.0, -60, 60)})


def test_converters_round_trip():
    d = scenario(flat(180), doses=[("bolus", -90, -90, 2.0), ("basal", -60, -30, 0.2)],
                 carbs=[(-45, 40.0, 120.0)], recommendationType="tempBasal", suspendThreshold=80.0,
                 maxActiveInsulinMultiplier=1.5)
    update_dict = from_algorithm_input(d)
    assert update_dict["settings_dictionary"]["max_active_insulin"] == 15.0
    assert update_dict["dose_types"] == ["Bolus", "TempBasal"]
    assert update_dict["dose_values"] == [2.0, pytest.approx(0.4)]
    back = to_algorithm_input(update_dict)
    direct, converted = A.run(d), A.run(back)
    assert values(converted) == pytest.approx(values(direct), abs=1e-9)
    assert converted["recommendation"] == direct["recommendation"]


def test_converter_rejects_models_loopalgorithm_cannot_name():
    update_dict = from_algorithm_input(scenario(flat(100)))
    update_dict["settings_dictionary"]["model"] = [4.0]
    with pytest.raises(InvalidInputError) as e:
        to_algorithm_input(update_dict)
    assert e.value.problems[0].field == "settings_dictionary.model"
    assert "Walsh" in e.value.problems[0].reason
    update_dict["settings_dictionary"]["model"] = [300.0, 75.0]
    with pytest.raises(InvalidInputError) as e:
        to_algorithm_input(update_dict)
    problem = e.value.problems[0]
    assert problem.field == "settings_dictionary.model" and "[360, 65] (child)" in problem.reason


def test_child_model_converts_and_runs_with_the_child_curve():
    d = scenario(flat(180), doses=[("bolus", -90, -90, 2.0)])
    update_dict = from_algorithm_input(d)
    update_dict["settings_dictionary"]["model"] = [360.0, 65.0]
    converted = to_algorithm_input(update_dict)
    assert converted["defaultRapidActingModel"] == "rapidActingChild"
    assert converted["recommendationInsulinType"] == "novolog"
    out = A.run(converted)
    # IOB of 2 U given 90 min ago under the child curve (360/65 min, 10-min delay)
    assert out["activeInsulin"] == pytest.approx(2.0 * float(PRESETS["child"].percent_effect_remaining(90.0)),
                                                 abs=1e-12)
    assert out["activeInsulin"] != pytest.approx(A.run(d)["activeInsulin"], abs=1e-3)
    assert from_algorithm_input(converted)["settings_dictionary"]["model"] == [360.0, 65.0]
    # Fiasp doses keep their own curve whatever the default rapid-acting model
    fiasp = {**d, "defaultRapidActingModel": "rapidActingChild",
             "doses": [{**d["doses"][0], "insulinType": "fiasp"}]}
    assert A.run(fiasp)["activeInsulin"] == pytest.approx(
        2.0 * float(PRESETS["fiasp"].percent_effect_remaining(90.0)), abs=1e-12)
    with pytest.raises(InvalidInputError) as e:
        from_algorithm_input(fiasp)  # update() has one insulin model
    assert (e.value.problems[0].field, e.value.problems[0].index) == ("doses.insulinType", 0)
    with pytest.raises(InvalidInputError) as e:
        A.run({**d, "defaultRapidActingModel": "rapidActingTeen"})
    assert (e.value.problems[0].field, e.value.problems[0].value) == ("defaultRapidActingModel", "rapidActingTeen")


def test_converter_lists_settings_without_counterpart_and_carries_the_bolus_flag():
    update_dict = from_algorithm_input(scenario(flat(180), recommendationType="tempBasal"))
    update_dict["settings_dictionary"].update(rate_rounder=0.05, momentum_data_interval=30.0,
                                              include_positive_velocity_and_rc_in_bolus=False)
    update_dict["last_temporary_basal"] = ["TempBasal", update_dict["time_to_calculate_at"],
                                           update_dict["time_to_calculate_at"], 0.5]
    with pytest.warns(LoopWarning, match="rate_rounder"):
        converted = to_algorithm_input(update_dict)
    assert converted["unconvertedSettings"]["rate_rounder"] == 0.05
    assert converted["unconvertedSettings"]["momentum_data_interval"] == 30.0
    assert "last_temporary_basal" in converted["unconvertedSettings"]
    assert converted["includePositiveVelocityAndRC"] is True  # automated: the whole prediction
    assert converted["recommendationType"] == "tempBasal"
    with pytest.warns(LoopWarning):
        manual = to_algorithm_input(update_dict, recommendation_type="manualBolus")
    assert manual["includePositiveVelocityAndRC"] is False and manual["recommendationType"] == "manualBolus"
    assert "recommendation" in A.run(manual)
    with pytest.raises(InvalidInputError) as e:
        to_algorithm_input(update_dict, recommendation_type="bolus")
    assert e.value.problems[0].field == "recommendation_type"


def test_scenario_cli_prints_json(tmp_path, capsys):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario(flat(105))))
    assert A.scenario_main([str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["recommendation"]["manual"]["amount"] == 0.0
    path.write_text(json.dumps(prediction_input(scenario(flat(105)))))
    assert A.scenario_main([str(path), "--prediction-only"]) == 0
    assert json.loads(capsys.readouterr().out)[0] == {"date": at(0), "value": 105.0}
    path.write_text(json.dumps({"glucoseHistory": "nope"}))
    assert A.scenario_main([str(path)]) == 3


# --------------------------------------------------------------------------- safety properties

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def random_scenarios(draw):
    n = draw(st.integers(1, 40))
    glucose = [(-5.0 * k, draw(st.floats(40.0, 400.0))) for k in range(n - 1, -1, -1)]
    doses = []
    for _ in range(draw(st.integers(0, 12))):
        start = draw(st.floats(-600.0, -1.0))
        if draw(st.booleans()):
            doses.append(("bolus", start, start, draw(st.floats(0.0, 5.0))))
        else:
            end = min(start + draw(st.floats(1.0, 60.0)), 0.0)
            doses.append(("basal", start, end, draw(st.floats(0.0, 2.0)) if end > start else 0.0))
    carbs = [(draw(st.floats(-300.0, 0.0)), draw(st.floats(0.0, 100.0)), draw(st.floats(60.0, 300.0)))
             for _ in range(draw(st.integers(0, 3)))]
    kind = draw(st.sampled_from(["manualBolus", "automaticBolus", "tempBasal"]))
    return scenario(glucose, doses, carbs, recommendationType=kind, maxBolus=draw(st.floats(0.0, 10.0)),
                    maxBasalRate=draw(st.floats(0.0, 5.0)), suspendThreshold=draw(st.floats(60.0, 90.0)),
                    useIntegralRetrospectiveCorrection=draw(st.booleans()),
                    useMidAbsorptionISF=draw(st.booleans()),
                    carbAbsorptionModel=draw(st.sampled_from(["piecewiseLinear", "linear", "adaptiveRateNonlinear"])))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_scenarios())
def test_recommendations_respect_limits_for_any_input(d):
    out = A.run(d)
    json.dumps(out, allow_nan=False)
    rec = out["recommendation"]
    suspended = values(out).min() < d["suspendThreshold"]
    if "manual" in rec:
        assert 0.0 <= rec["manual"]["amount"] <= d["maxBolus"]
        if suspended:
            assert rec["manual"]["amount"] == 0.0
        return
    auto = rec["automatic"]
    rate = auto["basalAdjustment"]["unitsPerHour"]
    assert 0.0 <= rate <= d["maxBasalRate"]
    if "bolusUnits" in auto:
        assert rate <= 1.0  # never above the scheduled rate with automatic boluses
        assert 0.0 <= auto["bolusUnits"] <= d["maxBolus"] * 0.4 + 1e-12
    if suspended:
        assert rate == 0.0 and auto.get("bolusUnits", 0.0) == 0.0 and auto["direction"] == "decrease"
