"""Conformance of glucose_math with LoopKit's GlucoseKit fixtures and LoopAlgorithm's copies.

Inputs and settings follow LoopAlgorithm ``Tests/LoopAlgorithmTests/GlucoseMathTests.swift``
(LoopKit ``GlucoseMathTests.swift`` uses the same fixtures): momentum with a 30-min duration
and no velocity cap for the fixture outputs, default (15-min) duration for the refusals;
counteraction effects against the 100 mg/dL flat insulin effect. Swift's tolerance is
``Float.ulpOfOne`` (1.19e-7); dates must be exact.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pyloopkit.date import to_seconds
from pyloopkit.glucose_math import counteraction_effects, momentum_effect
from pyloopkit.glucose_store import GlucoseArrays
from conftest import reference_path

SWIFT_TOL = float(np.finfo(np.float32).eps)
FOLDERS = ["loopkit/LoopKit/GlucoseKit", "loopalgorithm"]


def load(relative: str):
    """Parse a fixture; LoopAlgorithm's copies of some inputs carry trailing commas."""
    text = reference_path(relative).read_text()
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


def _flag(value) -> bool:
    return value is True or str(value).lower() == "true"


def glucose_input(relative: str) -> GlucoseArrays:
    rows = load(relative)
    return GlucoseArrays.from_arrays(
        to_seconds([r["date"] for r in rows]),
        [r["amount"] for r in rows],
        provenance=[r.get("provenance_identifier", "com.loopkit.LoopKitTests") for r in rows],
        is_display_only=[_flag(r.get("display_only", False)) for r in rows],
        was_user_entered=[_flag(r.get("user_entered", False)) for r in rows],
    )


def effect_output(relative: str):
    rows = load(relative)
    return to_seconds([r["date"] for r in rows]), np.array([r["amount"] for r in rows], dtype=float)


def doubled(g: GlucoseArrays) -> GlucoseArrays:
    """Swift's "duplicates" tests append the input to itself and sort it."""
    return GlucoseArrays.from_arrays(np.tile(g.date_s, 2), np.tile(g.value_mgdl, 2),
                                     np.tile(g.provenance, 2), np.tile(g.is_display_only, 2),
                                     np.tile(g.was_user_entered, 2))


MOMENTUM_CASES = [
    ("momentum_effect_bouncing_glucose_input", "momentum_effect_bouncing_glucose_output", False),
    ("momentum_effect_rising_glucose_input", "momentum_effect_rising_glucose_output", False),
    ("momentum_effect_rising_glucose_double_entries_input", "momentum_effect_rising_glucose_output", False),
    ("momentum_effect_falling_glucose_input", "momentum_effect_falling_glucose_output", False),
    ("momentum_effect_falling_glucose_input", "momentum_effect_falling_glucose_output", True),
    ("momentum_effect_stable_glucose_input", "momentum_effect_stable_glucose_output", False),
]


@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("input_name,output_name,duplicate", MOMENTUM_CASES)
def test_momentum_effect(folder, input_name, output_name, duplicate):
    g = glucose_input(f"{folder}/{input_name}.json")
    if duplicate:
        g = doubled(g)
    expected_dates, expected_values = effect_output(f"{folder}/{output_name}.json")
    dates, values = momentum_effect(g, duration_min=30)
    np.testing.assert_array_equal(dates, expected_dates)
    np.testing.assert_allclose(values, expected_values, rtol=0, atol=SWIFT_TOL)


def test_momentum_falling_duplicate_fixture():
    """LoopKit's own doubled falling-glucose input gives the falling output."""
    g = glucose_input("loopkit/LoopKit/GlucoseKit/momentum_effect_falling_glucose_duplicate_input.json")
    expected_dates, expected_values = effect_output(
        "loopkit/LoopKit/GlucoseKit/momentum_effect_falling_glucose_output.json")
    dates, values = momentum_effect(g, duration_min=30)
    np.testing.assert_array_equal(dates, expected_dates)
    np.testing.assert_allclose(values, expected_values, rtol=0, atol=SWIFT_TOL)


REFUSED = [
    "momentum_effect_duplicate_glucose_input",  # all samples at one time: slope not finite
    "momentum_effect_incomplete_glucose_input",  # a 10-min gap: not continuous
    "momentum_effect_display_only_glucose_input",  # a calibration among the samples
    "momentum_effect_mixed_provenance_glucose_input",  # two sources
]


@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("input_name", REFUSED)
def test_momentum_refused(folder, input_name):
    dates, values = momentum_effect(glucose_input(f"{folder}/{input_name}.json"))
    assert dates.size == 0 and values.size == 0


@pytest.mark.parametrize("folder", FOLDERS)
def test_momentum_too_few_and_empty(folder):
    g = glucose_input(f"{folder}/momentum_effect_bouncing_glucose_input.json")
    assert momentum_effect(g.take(slice(0, 2)))[0].size == 0
    assert momentum_effect((np.empty(0), np.empty(0)))[0].size == 0


def ice_output(relative: str):
    rows = load(relative)
    return (to_seconds([r["startDate"] for r in rows]), to_seconds([r["endDate"] for r in rows]),
            np.array([r["value"] for r in rows], dtype=float))


COUNTERACTION_CASES = [
    ("counteraction_effect_falling_glucose_input", "counteraction_effect_falling_glucose_output", False),
    ("counteraction_effect_falling_glucose_input", "counteraction_effect_falling_glucose_output", True),
    ("counteraction_effect_falling_glucose_almost_duplicates_input",
     "counteraction_effect_falling_glucose_almost_duplicates_output", False),
]


@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("input_name,output_name,duplicate", COUNTERACTION_CASES)
def test_counteraction_effects(folder, input_name, output_name, duplicate):
    g = glucose_input(f"{folder}/{input_name}.json")
    if duplicate:
        g = doubled(g)
    effect_dates, effect_values = effect_output(f"{folder}/counteraction_effect_falling_glucose_insulin.json")
    exp_start, exp_end, exp_velocity = ice_output(f"{folder}/{output_name}.json")
    start, end, velocity = counteraction_effects(g, effect_dates, effect_values)
    np.testing.assert_array_equal(start, exp_start)
    np.testing.assert_array_equal(end, exp_end)
    np.testing.assert_allclose(velocity, exp_velocity, rtol=0, atol=SWIFT_TOL)


def test_counteraction_double_entries_fixture():
    """LoopKit's own doubled input gives the single-entry output."""
    folder = "loopkit/LoopKit/GlucoseKit"
    g = glucose_input(f"{folder}/counteraction_effect_falling_glucose_double_entries_input.json")
    effect_dates, effect_values = effect_output(f"{folder}/counteraction_effect_falling_glucose_insulin.json")
    exp_start, exp_end, exp_velocity = ice_output(f"{folder}/counteraction_effect_falling_glucose_output.json")
    start, end, velocity = counteraction_effects(g, effect_dates, effect_values)
    np.testing.assert_array_equal(start, exp_start)
    np.testing.assert_array_equal(end, exp_end)
    np.testing.assert_allclose(velocity, exp_velocity, rtol=0, atol=SWIFT_TOL)


@pytest.mark.parametrize("folder", FOLDERS)
def test_counteraction_no_glucose(folder):
    effect_dates, effect_values = effect_output(f"{folder}/counteraction_effect_falling_glucose_insulin.json")
    start, end, velocity = counteraction_effects((np.empty(0), np.empty(0)), effect_dates, effect_values)
    assert start.size == end.size == velocity.size == 0
