"""Whole-algorithm conformance with LoopKit/LoopAlgorithm's scenario fixture.

``loopalgorithm/suspend_scenario.json`` is an ``AlgorithmInput`` (automatic bolus dosing,
novolog, piecewise-linear carbs); Swift's ``LoopAlgorithm.run`` recommends exactly
``loopalgorithm/suspend_recommendation.json`` (Swift's scenario tests compare recommendations
exactly). The fixture set has no whole-forecast output, so the forecast itself is checked for
self-consistency (the prediction-only path, the format converters and ``update()`` agree).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from pyloopkit import algorithm as A
from pyloopkit.algorithm_input import from_algorithm_input, parse_prediction_input, to_algorithm_input
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


def test_insulin_effect_of_dose_history_through_the_algorithm_input_path():
    """LoopAlgorithm's testGlucoseEffectFromHistory: dose_history.json relative to an absolute basal
    timeline of 1.0 U/h except 0.8 U/h over 18:30-19:00 and 20:30-21:00, ISF 40 mg/dL/U, adult
    preset; here through AlgorithmInput parsing, basal annotation and the 5-min effect grid of
    ``run``, within the Swift math tolerance (1e-7 mg/dL; reached: 3.4e-13). With one ISF value
    the mid-absorption effect is the same timeline."""
    def item(start, end, value):
        return {"startDate": f"2015-10-15T{start}Z", "endDate": f"2015-10-{end}Z", "value": value}

    expected = load_reference("loopalgorithm/effect_from_history_output.json")
    data = {
        "glucoseHistory": [{"date": "2015-10-15T18:06:00Z", "value": 100.0}],
        "doses": load_reference("loopalgorithm/dose_history.json"), "carbEntries": [],
        "basal": [item("00:00:00", "15T18:30:00", 1.0), item("18:30:00", "15T19:00:00", 0.8),
                  item("19:00:00", "15T20:30:00", 1.0), item("20:30:00", "15T21:00:00", 0.8),
                  item("21:00:00", "16T06:00:00", 1.0)],
        "sensitivity": [item("00:00:00", "16T06:00:00", 40.0)],
        "carbRatio": [item("00:00:00", "16T06:00:00", 10.0)],
    }
    inp = parse_prediction_input(data)
    groups = A.relative_doses(inp)
    _, (dates, effect) = A._insulin(inp, groups, False)
    assert A.format_dates(dates) == [e["date"] + "Z" for e in expected]
    worst = float(np.max(np.abs(effect - np.array([e["amount"] for e in expected]))))
    assert worst <= 1e-7
    _, (_, mid) = A._insulin(inp, groups, True)
    assert mid == pytest.approx(effect, abs=1e-9)
