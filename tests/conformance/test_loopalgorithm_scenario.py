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
from pyloopkit.algorithm_input import from_algorithm_input, to_algorithm_input
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
