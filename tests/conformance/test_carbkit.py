"""Conformance of carb_math with LoopKit's CarbKit fixtures and LoopAlgorithm's carb fixtures.

Settings follow the Swift tests that use each fixture:

* LoopKit ``LoopKitTests/CarbMathTests.swift`` (Loop 2019 semantics, our ``model="parabolic"``):
  carb ratios from ``read_carb_ratios.json``, ISF 40 mg/dL/U; static effect and COB with a
  180-min default absorption time and 10-min delay; dynamic absorption mapped with
  ``absorptionTimeOverrun = slow/medium = 4h/2h``, default absorption 2 h, delay 0, COB and
  effects from the first ICE start over 6 h (18 h for slow absorption), delay 10 min,
  delta 5 min. PyLoopKit's ``tests/test_carb_math.py`` reads the same fixtures the same way.
* LoopAlgorithm ``Tests/LoopAlgorithmTests/CarbMathTests.swift`` (our ``"linear"`` and
  ``"piecewise_linear"``): absolute CR 8 g/U (9 for the none-observed effect), ISF 40.

Swift's tolerance is ``Float.ulpOfOne`` (1.19e-7) on grams and mg/dL; dates exact.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import load_reference

from pyloopkit import carb_math, carb_store
from pyloopkit.carb_math import (carb_effects, carbs_on_board, dynamic_carb_effects, dynamic_carbs_on_board,
                                 group_by_overlapping_absorption_windows, map_absorption, simulation_dates)
from pyloopkit.date import to_seconds
from pyloopkit.loop_input import parse_input
from pyloopkit.pyloop_parser import loop_reference_outputs, parse_report
from pyloopkit.schedule import DailySchedule

SWIFT_TOL = float(np.finfo(np.float32).eps)
LOOPKIT = "loopkit/LoopKit/CarbKit"
LOOPALGORITHM = "loopalgorithm"
HOUR = 3600.0


def carb_ratio_schedule() -> DailySchedule:
    fixture = load_reference("loopkit/LoopKit/read_carb_ratios.json")
    rows = fixture["schedule"]
    return DailySchedule.from_lists([r["offset"] * 60.0 for r in rows], [r["ratio"] for r in rows])


def entries(relative: str, default_absorption_min: float):
    rows = load_reference(relative)
    dates = to_seconds([r["start_at"] for r in rows])
    grams = np.array([r["amount"] for r in rows], dtype=float)
    minutes = np.array([r.get("absorption_time") or default_absorption_min for r in rows], dtype=float)
    return dates, grams, minutes * 60.0


def series(relative: str):
    rows = load_reference(relative)
    return to_seconds([r["date"] for r in rows]), np.array([r["amount"] for r in rows], dtype=float)


def ice(relative: str):
    rows = load_reference(relative)
    return (to_seconds([r["start_at"] for r in rows]), to_seconds([r["end_at"] for r in rows]),
            np.array([r["velocity"] for r in rows], dtype=float))


def assert_series(dates, values, expected_dates, expected_values, tol=SWIFT_TOL):
    np.testing.assert_array_equal(dates, expected_dates)
    np.testing.assert_allclose(values, expected_values, rtol=0, atol=tol)


# --- Static (Loop 2019, parabolic) ---

def test_carb_effect_from_history():
    dates, grams, times = entries(f"{LOOPKIT}/carb_effect_from_history_input.json", 180)
    expected_dates, expected = series(f"{LOOPKIT}/carb_effect_from_history_output.json")
    grid = simulation_dates(dates, times, delay_s=600)
    effect = carb_effects(dates, grams, times, carb_ratio_schedule(), 40.0, grid, delay_s=600)
    assert_series(grid, effect, expected_dates, expected)


def test_carbs_on_board_from_history():
    dates, grams, times = entries(f"{LOOPKIT}/carb_effect_from_history_input.json", 180)
    expected_dates, expected = series(f"{LOOPKIT}/carbs_on_board_output.json")
    grid = simulation_dates(dates, times, delay_s=600)
    cob = carbs_on_board(dates, grams, times, grid, delay_s=600)
    assert_series(grid, cob, expected_dates, expected)


# --- Grouping ---

@pytest.mark.parametrize("name", ["grouped_by_overlapping_absorption_times",
                                  "grouped_by_overlapping_absorption_times_border_case"])
def test_grouped_by_overlapping_absorption_times(name):
    rows = load_reference(f"{LOOPKIT}/{name}_input.json")
    expected = load_reference(f"{LOOPKIT}/{name}_output.json")
    dates, _, times = entries(f"{LOOPKIT}/{name}_input.json", 180)
    groups = group_by_overlapping_absorption_windows(dates, times)
    assert [[rows[i] for i in group] for group in groups] == expected


# --- Dynamic absorption ---

LOOPKIT_CASES = {
    # (ICE input, entry index, COB output, effect output, hours, estimated time remaining s, observed g)
    "none": ("ice_35_min_input", 2, "ice_35_min_none_output", "dynamic_glucose_effect_none_observed_output",
             6, 4 * HOUR, None),
    "partial": ("ice_35_min_input", 0, "ice_35_min_partial_output",
                "dynamic_glucose_effect_partially_observed_output", 6, 8509, 18.0),
    "full": ("ice_1_hour_input", 0, "ice_1_hour_output", "dynamic_glucose_effect_fully_observed_output",
             6, 0.0, 44.0),
    "never": ("ice_slow_absorption", 1, "ice_slow_absorption_output",
              "dynamic_glucose_effect_never_fully_observed_output", 18, 10488, None),
}


def loopkit_status(case: str):
    ice_name, index, *_ = LOOPKIT_CASES[case]
    dates, grams, times = entries(f"{LOOPKIT}/carb_entry_input.json", 120)
    counteraction = ice(f"{LOOPKIT}/{ice_name}.json")
    status = map_absorption(dates[[index]], grams[[index]], times[[index]], counteraction,
                            carb_ratio_schedule(), 40.0, absorption_time_overrun=2.0, delay_s=0.0,
                            model="parabolic")
    return status, counteraction[0][0]


@pytest.mark.parametrize("case", list(LOOPKIT_CASES))
def test_loopkit_dynamic_absorption(case):
    status, start = loopkit_status(case)
    _, _, cob_name, _, hours, remaining, observed = LOOPKIT_CASES[case]
    assert status.estimated_time_remaining_s[0] == pytest.approx(remaining, abs=1)
    if observed is not None:
        assert status.observed_grams[0] == pytest.approx(observed, abs=1 if observed == 44 else SWIFT_TOL)
    expected_dates, expected = series(f"{LOOPKIT}/{cob_name}.json")
    grid = simulation_dates([], [], start_s=start, end_s=start + hours * HOUR)
    cob = dynamic_carbs_on_board(status, grid, delay_s=600, delta_s=300)
    assert_series(grid, cob, expected_dates, expected)


@pytest.mark.parametrize("folder", [LOOPKIT, LOOPALGORITHM])
@pytest.mark.parametrize("case", list(LOOPKIT_CASES))
def test_loopkit_dynamic_glucose_effects(folder, case):
    status, start = loopkit_status(case)
    _, _, _, effect_name, hours, _, _ = LOOPKIT_CASES[case]
    expected_dates, expected = series(f"{folder}/{effect_name}.json")
    grid = simulation_dates([], [], start_s=start, end_s=start + hours * HOUR)
    effect = dynamic_carb_effects(status, grid, delay_s=600, delta_s=300)
    assert_series(grid, effect, expected_dates, expected)


# --- LoopAlgorithm: linear, piecewise-linear and adaptive-rate models ---

def loopalgorithm_status(ice_name: str, index, *, carb_ratio=8.0, **settings):
    dates, grams, times = entries(f"{LOOPALGORITHM}/carb_entry_input.json", 180)
    counteraction = ice(f"{LOOPALGORITHM}/{ice_name}.json")
    status = map_absorption(dates[index], grams[index], times[index], counteraction, carb_ratio, 40.0, **settings)
    return status, counteraction[0][0]


LINEAR_2 = dict(model="linear", initial_absorption_time_overrun=2.0)
LINEAR_FULL = dict(model="linear", absorption_time_overrun=2.0, initial_absorption_time_overrun=2.0)
LINEAR_SLOW = dict(LINEAR_FULL, delay_s=0.0)
PIECEWISE = dict(model="piecewise_linear")

# name: (ICE input, entry, map settings, COB model, hours, remaining s, observed g (tolerance), COB output)
LOOPALGORITHM_COB_CASES = {
    "linear_none": ("ice_35_min_input", 2, LINEAR_2, 6, 4 * HOUR, None, "ice_35_min_none_output"),
    "linear_partial": ("ice_35_min_input", 0, LINEAR_2, 6, 8509, (18.0, SWIFT_TOL), "ice_35_min_partial_output"),
    "linear_full": ("ice_1_hour_input", 0, LINEAR_FULL, 6, 0.0, (44.0, 1.0), "ice_1_hour_output"),
    "linear_never": ("ice_slow_absorption", 1, LINEAR_SLOW, 18, 10488, None, "ice_slow_absorption_output"),
    "piecewise_none": ("ice_35_min_input", 2, PIECEWISE, 6, 3 * HOUR, None,
                       "ice_35_min_none_piecewiselinear_output"),
    "piecewise_partial": ("ice_35_min_input", 0, PIECEWISE, 6, 7008, (18.0, SWIFT_TOL),
                          "ice_35_min_partial_piecewiselinear_output"),
    "piecewise_full": ("ice_1_hour_input", 0, PIECEWISE, 6, 0.0, (44.0, 1.0), "ice_1_hour_output"),
    "piecewise_never": ("ice_slow_absorption", 1, dict(PIECEWISE, delay_s=0.0), 18, 6888, None,
                        "ice_slow_absorption_piecewiselinear_output"),
    "piecewise_adaptive_partial": ("ice_35_min_input", 0,
                                   dict(PIECEWISE, delay_s=0.0, initial_absorption_time_overrun=1.0,
                                        adaptive_rate=True),
                                   6, 3326, (18.0, SWIFT_TOL),
                                   "ice_35_min_partial_piecewiselinear_adaptiverate_output"),
}


@pytest.mark.parametrize("case", list(LOOPALGORITHM_COB_CASES))
def test_loopalgorithm_dynamic_carbs_on_board(case):
    ice_name, index, settings, hours, remaining, observed, output = LOOPALGORITHM_COB_CASES[case]
    status, start = loopalgorithm_status(ice_name, [index], **settings)
    assert status.estimated_time_remaining_s[0] == pytest.approx(remaining, abs=1)
    if observed is not None:
        assert status.observed_grams[0] == pytest.approx(observed[0], abs=observed[1])
    expected_dates, expected = series(f"{LOOPALGORITHM}/{output}.json")
    grid = simulation_dates([], [], start_s=start, end_s=start + hours * HOUR)
    cob = dynamic_carbs_on_board(status, grid)
    assert_series(grid, cob, expected_dates, expected)


# name: (ICE input, entry, carb ratio, map settings, effect delay s, hours, remaining s, effect output)
LOOPALGORITHM_EFFECT_CASES = {
    "none": ("ice_35_min_input", 2, 9.0, LINEAR_2, 0.0, 6, 4 * HOUR,
             "dynamic_glucose_effect_none_observed_output"),
    "partial": ("ice_35_min_input", 0, 8.0, LINEAR_2, 600.0, 6, 8509,
                "dynamic_glucose_effect_partially_observed_output"),
    "full": ("ice_1_hour_input", 0, 8.0, dict(model="linear"), 600.0, 6, 0.0,
             "dynamic_glucose_effect_fully_observed_output"),
    "never": ("ice_slow_absorption", 1, 8.0, LINEAR_SLOW, 600.0, 18, 10488,
              "dynamic_glucose_effect_never_fully_observed_output"),
}


@pytest.mark.parametrize("case", list(LOOPALGORITHM_EFFECT_CASES))
def test_loopalgorithm_dynamic_glucose_effects(case):
    ice_name, index, carb_ratio, settings, delay_s, hours, remaining, output = LOOPALGORITHM_EFFECT_CASES[case]
    status, start = loopalgorithm_status(ice_name, [index], carb_ratio=carb_ratio, **settings)
    assert status.estimated_time_remaining_s[0] == pytest.approx(remaining, abs=1)
    expected_dates, expected = series(f"{LOOPALGORITHM}/{output}.json")
    grid = simulation_dates([], [], start_s=start, end_s=start + hours * HOUR)
    effect = dynamic_carb_effects(status, grid, delay_s=delay_s)
    assert_series(grid, effect, expected_dates, expected)


def test_loopalgorithm_zero_entry():
    counteraction = ice(f"{LOOPALGORITHM}/ice_35_min_input.json")
    status = map_absorption([counteraction[0][0]], [0.0], [120 * 60.0], counteraction, 8.0, 40.0, model="linear")
    assert status.estimated_time_remaining_s[0] == 0.0


def test_loopkit_zero_entry():
    counteraction = ice(f"{LOOPKIT}/ice_35_min_input.json")
    status = map_absorption([counteraction[0][0]], [0.0], [120 * 60.0], counteraction, carb_ratio_schedule(), 40.0,
                            absorption_time_overrun=0.5, delay_s=0.0)
    assert status.estimated_time_remaining_s[0] == 0.0


def test_loopalgorithm_multiple_entries():
    """``testDynamicAbsorptionMultipleEntries``: the ICE split by current absorption rates."""
    status, _ = loopalgorithm_status("ice_35_min_input", slice(None), **LINEAR_SLOW)
    expected = [(16.193665456944906, 9100.254941363484), (1.806334543055097, 13532.959419333554), (0.0, 14400.0)]
    np.testing.assert_allclose(status.observed_grams, [e[0] for e in expected], rtol=0, atol=SWIFT_TOL)
    np.testing.assert_allclose(status.estimated_time_remaining_s, [e[1] for e in expected], rtol=0, atol=SWIFT_TOL)


# --- Loop 2019 issue reports: carb effect and COB from Loop's own counteraction effects ---

@pytest.mark.parametrize("report", [1, 2, 3, 4])
def test_issue_report_carbs_from_loop_counteraction(report):
    """Given the ICE Loop itself computed (stored in the report), ``carb_store`` reproduces the
    report's carb effect within 0.01 mg/dL and its COB at Loop's COB date. The reports print
    ICE dates to whole seconds while Loop integrated over sub-second intervals, which accounts
    for the few thousandths of a mg/dL left."""
    relative = f"issue_reports/example_issue_report_{report}.json"
    raw = load_reference(relative)
    inp = parse_input(parse_report(raw))
    ref = loop_reference_outputs(raw)
    counteraction = (to_seconds(ref["counteraction_effect_start_times"]),
                     to_seconds(ref["counteraction_effect_end_times"]),
                     np.asarray(ref["counteraction_effect_values"], dtype=float))
    expected_dates = to_seconds(ref["carb_effect_dates"])
    dates, effect = carb_store.glucose_effects(inp, counteraction, start_s=expected_dates[0])
    np.testing.assert_array_equal(dates, expected_dates)
    np.testing.assert_allclose(effect, ref["carb_effect_values"], rtol=0, atol=0.01)
    cob_date = to_seconds([ref["carbs_on_board_date"]])[0]
    status = carb_store.carb_status(inp, counteraction, start_s=cob_date - 300.0)
    cob = carb_math.dynamic_carbs_on_board(status, [cob_date], delay_s=inp.settings.carb_delay * 60.0)
    assert cob[0] == pytest.approx(ref["carbs_on_board"], abs=1e-3)
