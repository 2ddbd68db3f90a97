"""Whole-algorithm conformance with LoopKit/LoopAlgorithm's scenario fixture.

``loopalgorithm/suspend_scenario.json`` is an ``AlgorithmInput`` (automatic bolus dosing,
novolog, piecewise-linear carbs); Swift's ``LoopAlgorithm.run`` recommends exactly
``loopalgorithm/suspend_recommendation.json`` (Swift's scenario tests compare recommendations
exactly). The fixture set has no whole-forecast output, so the forecast itself is checked for
self-consistency (the prediction-only path, the format converters and ``update()`` agree), and
the insulin (effects, IOB timeline), carb (piecewise-linear COB, linear effect) and momentum fixtures that
match run()'s settings are reproduced through run() (docs/algorithm.md, "Conformance").
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pyloopkit import algorithm as A
from pyloopkit import carb_math
from pyloopkit.algorithm_input import format_dates, from_algorithm_input, parse_dates, to_algorithm_input
from pyloopkit.date import ceil_to_grid
from conftest import load_reference, reference_path

SCENARIO = "loopalgorithm/suspend_scenario.json"
RECOMMENDATION = "loopalgorithm/suspend_recommendation.json"


def test_suspend_scenario_gives_exactly_the_swift_recommendation():
    out = A.run(load_reference(SCENARIO))
    assert "errors" not in out
    assert out["recommendation"] == load_reference(RECOMMENDATION)


def test_run_accepts_the_fixture_path_and_returns_plain_json():
    out = A.run(reference_path(SCENARIO))
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text)["recommendation"] == load_reference(RECOMMENDATION)
    assert out["predictedGlucose"][0] == {"date": "2023-10-17T20:59:03Z", "value": 158.0}
    assert out["predictedGlucose"][-1]["date"] == "2023-10-18T03:09:03Z"  # start + 6 h 10 min
    assert min(p["value"] for p in out["predictedGlucose"]) < 78.0  # below the suspend threshold


def test_prediction_only_path_reproduces_the_run_forecast():
    scenario = load_reference(SCENARIO)
    keys = ("glucoseHistory", "doses", "carbEntries", "basal", "sensitivity", "carbRatio")
    prediction = A.generate_prediction({k: scenario[k] for k in keys})
    assert prediction == A.run(scenario)["predictedGlucose"]


def test_converted_scenario_gives_the_same_forecast_and_recommendation():
    scenario = load_reference(SCENARIO)
    direct = A.run(scenario)
    converted = A.run(to_algorithm_input(from_algorithm_input(scenario)))
    a = np.array([p["value"] for p in direct["predictedGlucose"]])
    b = np.array([p["value"] for p in converted["predictedGlucose"]])
    assert b == pytest.approx(a, abs=1.0 / 40.0)
    assert converted["recommendation"] == direct["recommendation"]


def test_update_path_also_suspends_on_the_converted_scenario():
    from pyloopkit import update

    out = update(from_algorithm_input(load_reference(SCENARIO)))
    assert out["recommended_temp_basal"] == (0.0, 30.0)
    assert out["recommended_autobolus"] == 0.0


# --------------------------------------------------------------------------- unit fixtures through run()
#
# LoopAlgorithm's fixture set has one whole-algorithm scenario; its insulin and carb fixtures are
# checked here through the whole run() path (JSON parsing, basal annotation, the 5-min effect grid,
# ICE from glucose, the carb mapping with run()'s defaults) within the Swift math tolerance.

SWIFT_TOL = float(np.finfo(np.float32).eps)  # Float.ulpOfOne, the Swift suites' accuracy (1.19e-7)
ALG = "loopalgorithm/"


def _item(start: str, end: str, **values) -> dict:
    return {"startDate": start, "endDate": end, **values}


def _algorithm_input(day: str, prediction_start: str, glucose, doses=(), carbs=(), **settings) -> dict:
    """A manual-bolus AlgorithmInput with LoopAlgorithm's test settings (ISF 40, CR 8, basal 1 U/h)
    over ``day`` and the next one."""
    start, end = f"{day}T00:00:00Z", format_dates([parse_dates([f"{day}T00:00:00Z"], "d", [])[0] + 2 * 86400])[0]
    d = {"predictionStart": prediction_start, "glucoseHistory": list(glucose), "doses": list(doses),
         "carbEntries": list(carbs), "basal": [_item(start, end, value=1.0)],
         "sensitivity": [_item(start, end, value=40.0)], "carbRatio": [_item(start, end, value=8.0)],
         "target": [_item(start, end, lowerBound=100.0, upperBound=110.0)],
         "maxBolus": 10.0, "maxBasalRate": 5.0, "recommendationType": "manualBolus"}
    d.update(settings)
    return d


def _series(relative: str, date_key: str = "date", value_key: str = "amount"):
    rows = load_reference(relative)
    dates = parse_dates([r[date_key] for r in rows], date_key, [])
    return dates, np.array([r[value_key] for r in rows], dtype=float)


def _check_insulin_effect(out: dict, relative: str) -> None:
    """run()'s insulin effect has exactly the fixture's dates and its values within the Swift tolerance."""
    dates, expected = _series(relative)
    effect = out["effects"]["insulin"]
    assert parse_dates([p["date"] for p in effect], "date", []).tolist() == dates.tolist()
    assert _worst(effect, dates, expected) <= SWIFT_TOL


def _worst(out_series: list[dict], dates, expected) -> float:
    """Largest difference on the fixture's dates; every fixture date must be in the output."""
    got = dict(zip(parse_dates([p["date"] for p in out_series], "date", []), (p["value"] for p in out_series)))
    assert set(dates) <= set(got), "fixture dates missing from the run() output"
    return float(np.max(np.abs(np.array([got[t] for t in dates]) - expected)))


def test_effect_from_bolus_through_run():
    """testGlucoseEffectFromBolus: 1.5 U at 12:02:37, ISF 40, adult preset (worst seen 2.1e-14)."""
    bolus = {"type": "bolus", "startDate": "2015-07-13T12:02:37Z", "endDate": "2015-07-13T12:02:37Z", "volume": 1.5}
    out = A.run(_algorithm_input("2015-07-13", "2015-07-13T12:30:00Z",
                                 [{"date": "2015-07-13T12:30:00Z", "value": 120.0}], [bolus]))
    _check_insulin_effect(out, ALG + "effect_from_bolus_output.json")


def test_effect_from_basal_through_run():
    """testGlucoseEffectFromTempBasal: 2 U/h over 12:00-13:00 against a scheduled 1 U/h (net 1 U),
    ISF 40 (worst seen 1.4e-14); automated dosing accepts it (the basal ends at predictionStart)."""
    basal = {"type": "basal", "startDate": "2015-07-13T12:00:00Z", "endDate": "2015-07-13T13:00:00Z", "volume": 2.0}
    out = A.run(_algorithm_input("2015-07-13", "2015-07-13T13:00:00Z",
                                 [{"date": "2015-07-13T13:00:00Z", "value": 120.0}], [basal],
                                 recommendationType="tempBasal"))
    assert "errors" not in out
    _check_insulin_effect(out, ALG + "effect_from_basal_output.json")


def test_effect_from_history_through_run():
    """testGlucoseEffectFromHistory through run(): dose_history.json relative to 1.0 U/h except
    0.8 U/h over 18:30-19:00 and 20:30-21:00, ISF 40 (worst seen 3.4e-13); with one ISF value the
    mid-absorption effect is the same timeline."""
    def item(start, end, value):
        return _item(f"2015-10-15T{start}Z", f"2015-10-{end}Z", value=value)

    d = _algorithm_input("2015-10-15", "2015-10-15T18:06:00Z", [{"date": "2015-10-15T18:06:00Z", "value": 100.0}],
                         load_reference(ALG + "dose_history.json"))
    d["basal"] = [item("00:00:00", "15T18:30:00", 1.0), item("18:30:00", "15T19:00:00", 0.8),
                  item("19:00:00", "15T20:30:00", 1.0), item("20:30:00", "15T21:00:00", 0.8),
                  item("21:00:00", "16T06:00:00", 1.0)]
    out = A.run(d)
    _check_insulin_effect(out, ALG + "effect_from_history_output.json")
    _check_insulin_effect(A.run({**d, "useMidAbsorptionISF": True}), ALG + "effect_from_history_output.json")


def test_iob_timeline_through_run():
    """testInsulinOnBoardTimeline: 2 U bolus delivered over 19:00-19:01; ``activeInsulin`` of run()
    at every fixture date (76 runs) within the Swift tolerance (worst seen 6.7e-16 U)."""
    dates, expected = _series(ALG + "iob_timeline.json", "startDate", "value")
    bolus = {"type": "bolus", "startDate": "2015-10-15T19:00:00Z", "endDate": "2015-10-15T19:01:00Z", "volume": 2.0}
    got = []
    for when in format_dates(dates):
        out = A.run(_algorithm_input("2015-10-15", when, [{"date": when, "value": 150.0}], [bolus]))
        got.append(out["activeInsulin"])
    assert float(np.max(np.abs(np.array(got) - expected))) <= SWIFT_TOL


def _carb_input(ice_name: str, entry: int, prediction_start: str, model: str) -> dict:
    """The fixture's ICE as glucose readings (no insulin, so the ICE run() derives are the
    fixture's), one entry of carb_entry_input.json."""
    rows = load_reference(f"{ALG}{ice_name}.json")
    start = parse_dates([r["start_at"] for r in rows], "start_at", [])
    end = parse_dates([r["end_at"] for r in rows], "end_at", [])
    assert np.array_equal(start[1:], end[:-1]), "ICE intervals must be contiguous"
    velocity = np.array([r["velocity"] for r in rows], dtype=float)
    glucose = 100.0 + np.concatenate(([0.0], np.cumsum(velocity * (end - start) / 60.0)))
    e = load_reference(f"{ALG}carb_entry_input.json")[entry]
    carbs = [{"date": e["start_at"] + "Z", "grams": float(e["amount"]), "absorptionTime": e["absorption_time"] * 60.0}]
    readings = [{"date": d, "value": float(v)} for d, v in zip(format_dates(np.append(start[:1], end)), glucose)]
    return _algorithm_input("2015-10-15", prediction_start, readings, carbs=carbs, carbAbsorptionModel=model)


# name: (ICE input, entry, predictionStart, remaining s, observed g (tolerance) or None, COB output)
PIECEWISE_CASES = {
    "none": ("ice_35_min_input", 2, "2015-10-15T22:10:00Z", 3 * 3600.0, None,
             "ice_35_min_none_piecewiselinear_output"),
    "partial": ("ice_35_min_input", 0, "2015-10-15T22:10:00Z", 7008.0, (18.0, SWIFT_TOL),
                "ice_35_min_partial_piecewiselinear_output"),
    "full": ("ice_1_hour_input", 0, "2015-10-15T23:05:00Z", 0.0, (44.0, 1.0), "ice_1_hour_output"),
}


@pytest.mark.parametrize("case", list(PIECEWISE_CASES))
def test_piecewise_linear_carbs_through_run(case):
    """LoopAlgorithm's piecewise-linear dynamic absorption (testDynamicAbsorptionPiecewiseLinear*,
    the cases the Swift test maps with the defaults run() uses: 10-min delay, overruns 1.5/1.5):
    run()'s ICE, carbStatus and activeCarbs, and the COB timeline of run()'s carb status, within
    the Swift tolerance. Remaining times are the Swift test's whole seconds."""
    ice_name, entry, start, remaining, observed, output = PIECEWISE_CASES[case]
    d = _carb_input(ice_name, entry, start, "piecewiseLinear")
    out = A.run(d)
    rows = load_reference(f"{ALG}{ice_name}.json")
    assert np.max(np.abs(np.array([r["velocity"] for r in rows])
                         - [x["value"] for x in out["effects"]["insulinCounteraction"]])) <= 1e-12
    status = out["effects"]["carbStatus"][0]
    assert status["estimatedTimeRemaining"] == pytest.approx(remaining, abs=1.0)
    if observed is not None:
        assert status["observedGrams"] == pytest.approx(observed[0], abs=observed[1])
    dates, expected = _series(f"{ALG}{output}.json")
    at_start = float(expected[dates == parse_dates([start], "d", [])[0]][0])
    assert out["activeCarbs"] == pytest.approx(at_start, abs=SWIFT_TOL)
    cob = carb_math.dynamic_carbs_on_board(A.predict(A.parse_algorithm_input(d)).carb_status, dates)
    assert float(np.max(np.abs(cob - expected))) <= SWIFT_TOL


def test_linear_carb_effect_through_run():
    """testDynamicGlucoseEffectAbsorptionFullyObserved (linear model with the default overruns and
    10-min delay, the only effect fixture mapped with run()'s settings): run()'s carb effect,
    which starts 180 min before predictionStart, on every fixture date it covers (21:30-23:15);
    the fixture then stays at the value that ends run()'s effect (220 mg/dL = 44 g x 40/8)."""
    dates, expected = _series(ALG + "dynamic_glucose_effect_fully_observed_output.json")
    out = A.run(_carb_input("ice_1_hour_input", 0, "2015-10-15T23:05:00Z", "linear"))
    effect = out["effects"]["carbs"]
    last = parse_dates([effect[-1]["date"]], "d", [])[0]
    covered = dates <= last
    assert _worst(effect, dates[covered], expected[covered]) <= SWIFT_TOL
    assert np.all(expected[~covered] == expected[-1])  # after run()'s last date the fixture stays at 220
    assert effect[-1]["value"] == pytest.approx(expected[-1], abs=SWIFT_TOL)


def _momentum_run(stem: str) -> tuple[float, list[dict]]:
    """predictionStart (the last reading) and run()'s momentum effect for a momentum fixture's
    readings. Some LoopAlgorithm copies carry trailing commas, stripped as in test_glucosekit."""
    text = reference_path(f"{ALG}momentum_effect_{stem}_input.json").read_text()
    rows = json.loads(re.sub(r",(\s*[}\]])", r"\1", text))
    readings = [{"date": r["date"] + "Z", "value": float(r["amount"]),
                 "isCalibration": str(r.get("display_only", False)).lower() == "true",
                 "provenanceIdentifier": r.get("provenance_identifier", "")} for r in rows]
    last = max(r["date"] for r in readings)
    return parse_dates([last], "d", [])[0], A.run(_algorithm_input("2015-10-25", last, readings))["effects"]["momentum"]


@pytest.mark.parametrize("stem, output", [("rising_glucose", "rising"), ("rising_glucose_double_entries", "rising"),
                                          ("falling_glucose", "falling"), ("stable_glucose", "stable"),
                                          ("bouncing_glucose", "bouncing")])
def test_momentum_through_run(stem, output):
    """GlucoseMathTests' momentum fixtures hold 30-min effects; run() projects 15 min (LoopAlgorithm's
    momentumDuration) on the 5-min grid, so its effect is the fixture's beginning, up to the grid
    date at or after 15 min past the last reading (slopes below the 4 mg/dL/min cap; worst seen 0)."""
    start, effect = _momentum_run(stem)
    dates, expected = _series(f"{ALG}momentum_effect_{output}_glucose_output.json")
    got = parse_dates([p["date"] for p in effect], "date", [])
    assert got[-1] == ceil_to_grid(start + 15 * 60.0)
    assert got.tolist() == dates[:got.size].tolist()
    assert _worst(effect, got, expected[:got.size]) <= SWIFT_TOL


@pytest.mark.parametrize("stem", ["duplicate_glucose", "incomplete_glucose", "display_only_glucose",
                                  "mixed_provenance_glucose"])
def test_momentum_refused_through_run(stem):
    """Readings at one date, with a gap, a calibration, or from two sources give no momentum."""
    assert _momentum_run(stem)[1] == []
