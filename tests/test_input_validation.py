"""Tests of pyloopkit.input_validation: each kind of impossible input, guardrail warnings, helpers."""
from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pytest
from conftest import load_reference
from hypothesis import given, settings
from hypothesis import strategies as st

from pyloopkit.errors import InvalidInputError
from pyloopkit.input_validation import MMOL_TO_MGDL, convert_glucose_units, glucose_is_stale, validate_input


def base_input() -> dict:
    """A small, valid PyLoopKit input dictionary inside every guardrail."""
    t0 = dt.datetime(2020, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    return {
        "glucose_dates": [t0 + dt.timedelta(minutes=5 * i) for i in range(4)],
        "glucose_values": [120.0, 125.0, 130.0, 128.0],
        "glucose_units": "mg/dL",
        "dose_types": ["TempBasal", "Bolus"],
        "dose_start_times": [t0, t0 + dt.timedelta(minutes=10)],
        "dose_end_times": [t0 + dt.timedelta(minutes=30), t0 + dt.timedelta(minutes=11)],
        "dose_values": [1.2, 2.0],
        "carb_dates": [t0.isoformat()],
        "carb_values": [30.0],
        "carb_absorption_times": [None],
        "sensitivity_ratio_start_times": [dt.time(0, 0), dt.time(12, 0)],
        "sensitivity_ratio_end_times": [dt.time(12, 0), dt.time(0, 0)],
        "sensitivity_ratio_values": [45.0, 50.0],
        "carb_ratio_start_times": [dt.time(0, 0)],
        "carb_ratio_values": [10.0],
        "basal_rate_start_times": [dt.time(0, 0), dt.time(6, 0)],
        "basal_rate_minutes": [360.0, 1080.0],
        "basal_rate_values": [0.8, 1.0],
        "target_range_start_times": [dt.time(0, 0)],
        "target_range_end_times": [dt.time(23, 59)],
        "target_range_minimum_values": [100.0],
        "target_range_maximum_values": [110.0],
        "last_temporary_basal": ["TempBasal", t0, t0 + dt.timedelta(minutes=30), 1.2],
        "time_to_calculate_at": t0 + dt.timedelta(minutes=16),
        "settings_dictionary": {
            "model": [360.0, 75.0], "momentum_data_interval": 15.0, "suspend_threshold": 75.0,
            "dynamic_carb_absorption_enabled": True, "retrospective_correction_enabled": False,
            "max_basal_rate": 3.0, "max_bolus": 10.0, "insulin_delay": 10, "carb_delay": 10,
            "rate_rounder": 0.05, "default_absorption_times": [120.0, 180.0, 240.0],
        },
    }


def problems_of(d):
    with pytest.raises(InvalidInputError) as err:
        validate_input(d)
    return [(p.field, p.index, p.value) for p in err.value.problems]


def test_valid_input_has_no_warning():
    assert validate_input(base_input()) == []


def test_reference_saved_input_is_valid():
    d = load_reference("issue_reports/example_from_previous_run.json")
    warnings = validate_input(d)
    # 90-95 mg/dL target and a 15 U/h max basal are outside Loop's recommended ranges.
    assert any(w.startswith("target_range_minimum_values[0] = 90") for w in warnings)
    assert any(w.startswith("settings_dictionary.max_basal_rate = 15") for w in warnings)


def test_unequal_lengths():
    d = base_input()
    d["glucose_values"].append(140.0)
    d["dose_values"] = [1.0]
    found = problems_of(d)
    assert ("glucose_values", None, 5) in found
    assert ("dose_values", None, 1) in found


def test_unsorted_and_duplicate_glucose_dates():
    d = base_input()
    g = d["glucose_dates"]
    g[2], g[3] = g[3], g[2]
    d["glucose_dates"] = g[:3] + [g[2]] + g[3:]
    d["glucose_values"] = d["glucose_values"] + [100.0]
    found = problems_of(d)
    assert ("glucose_dates", 3, g[2]) in found  # duplicate
    assert ("glucose_dates", 4, g[3]) in found  # out of order


def test_nan_inf_and_non_numbers():
    d = base_input()
    d["glucose_values"][1] = float("nan")
    d["dose_values"][0] = float("inf")
    d["carb_values"][0] = "thirty"
    found = problems_of(d)
    assert found[0][:2] == ("glucose_values", 1) and np.isnan(found[0][2])
    assert ("dose_values", 0, float("inf")) in found
    assert ("carb_values", 0, "thirty") in found


def test_negative_values():
    d = base_input()
    d["dose_values"][1] = -2.0
    d["carb_values"][0] = -5.0
    d["glucose_values"][0] = 0.0
    d["basal_rate_values"][1] = -0.1
    found = problems_of(d)
    for item in [("dose_values", 1, -2.0), ("carb_values", 0, -5.0), ("glucose_values", 0, 0.0),
                 ("basal_rate_values", 1, -0.1)]:
        assert item in found


def test_naive_and_aware_datetimes_mixed():
    d = base_input()
    naive = dt.datetime(2020, 1, 1, 12, 1)
    d["carb_dates"] = [naive]
    assert problems_of(d) == [("carb_dates", 0, naive)]


def test_unparseable_date_and_dose_ending_before_start():
    d = base_input()
    d["dose_start_times"][0] = "not a date"
    d["dose_end_times"][1] = d["dose_start_times"][1] - dt.timedelta(minutes=1)
    found = problems_of(d)
    assert ("dose_start_times", 0, "not a date") in found
    assert ("dose_end_times", 1, d["dose_end_times"][1]) in found


def test_unknown_dose_type():
    d = base_input()
    d["dose_types"][1] = "SquareWave"
    assert problems_of(d) == [("dose_types", 1, "SquareWave")]


@pytest.mark.parametrize("model,index,value", [([360.0, 200.0], 1, 200.0), ([360.0, 400.0], 1, 400.0),
                                               ([360.0, 0.0], 1, 0.0), ([-4.0], 0, -4.0),
                                               ([360.0, 75.0, 10.0], None, [360.0, 75.0, 10.0])])
def test_impossible_insulin_model(model, index, value):
    d = base_input()
    d["settings_dictionary"]["model"] = model
    assert problems_of(d) == [("settings_dictionary.model", index, value)]


def test_schedule_leaving_time_uncovered_or_overlapping():
    d = base_input()
    d["sensitivity_ratio_end_times"] = [dt.time(11, 0), dt.time(0, 0)]
    assert problems_of(d) == [("sensitivity_ratio_end_times", 0, dt.time(11, 0))]
    d = base_input()
    d["target_range_end_times"] = [dt.time(22, 0)]
    assert problems_of(d) == [("target_range_end_times", 0, dt.time(22, 0))]
    d = base_input()
    d["sensitivity_ratio_end_times"] = ["13:00:00", "00:00:00"]
    assert problems_of(d) == [("sensitivity_ratio_end_times", 0, "13:00:00")]


def test_schedule_start_times_must_increase_and_be_times():
    d = base_input()
    d["basal_rate_start_times"] = [dt.time(6, 0), dt.time(0, 0)]
    d["carb_ratio_start_times"] = ["25:00"]
    found = problems_of(d)
    assert ("basal_rate_start_times", 1, dt.time(0, 0)) in found
    assert ("carb_ratio_start_times", 0, "25:00") in found


def test_target_maximum_below_minimum_and_nonpositive_ratios():
    d = base_input()
    d["target_range_maximum_values"] = [90.0]
    d["carb_ratio_values"] = [0.0]
    d["sensitivity_ratio_values"][1] = -50.0
    found = problems_of(d)
    for item in [("target_range_maximum_values", 0, 90.0), ("carb_ratio_values", 0, 0.0),
                 ("sensitivity_ratio_values", 1, -50.0)]:
        assert item in found


@pytest.mark.parametrize("key,value", [("max_basal_rate", -1.0), ("momentum_data_interval", 0.0),
                                       ("rate_rounder", "0.05"), ("partial_application_factor", 1.5),
                                       ("dynamic_carb_absorption_enabled", "yes"), ("insulin_delay", -5.0),
                                       ("retrospective_correction", "magic"),
                                       ("default_absorption_times", [120.0, 180.0])])
def test_settings_out_of_type_or_range(key, value):
    d = base_input()
    d["settings_dictionary"][key] = value
    assert problems_of(d) == [(f"settings_dictionary.{key}", None, value)]


def test_time_to_calculate_at_before_last_glucose():
    d = base_input()
    early = d["glucose_dates"][-1] - dt.timedelta(seconds=1)
    d["time_to_calculate_at"] = early
    assert problems_of(d) == [("time_to_calculate_at", None, early)]


def test_missing_required_keys_and_bad_units():
    d = base_input()
    del d["carb_ratio_values"]
    d["glucose_values"] = None
    d["glucose_units"] = "mg"
    found = problems_of(d)
    assert ("carb_ratio_values", None, None) in found
    assert ("glucose_values", None, None) in found
    assert ("glucose_units", None, "mg") in found


def test_every_problem_is_reported_at_once():
    d = base_input()
    d["glucose_values"][0] = -1.0
    d["dose_types"][0] = "Nope"
    d["settings_dictionary"]["max_bolus"] = float("nan")
    assert len(problems_of(d)) == 3


def test_last_temporary_basal_checked():
    d = base_input()
    d["last_temporary_basal"][3] = -1.0
    assert problems_of(d) == [("last_temporary_basal", 3, -1.0)]


def test_guardrail_warnings():
    d = base_input()
    s = d["settings_dictionary"]
    s["suspend_threshold"] = 60.0  # below Loop's allowed 67
    s["max_bolus"] = 25.0  # Loop recommends < 20
    s["max_basal_rate"] = 0.5  # below the highest scheduled basal rate
    d["sensitivity_ratio_values"] = [12.0, 50.0]  # below recommended 16
    d["carb_ratio_values"] = [160.0]  # above allowed 150
    warnings = validate_input(d)
    expected_prefixes = ["settings_dictionary.suspend_threshold = 60", "settings_dictionary.max_bolus = 25",
                         "settings_dictionary.max_basal_rate = 0.5", "sensitivity_ratio_values[0] = 12",
                         "carb_ratio_values[0] = 160"]
    for prefix in expected_prefixes:
        assert any(w.startswith(prefix) for w in warnings), prefix
    assert "allows" in next(w for w in warnings if w.startswith("settings_dictionary.suspend_threshold"))
    assert "recommends" in next(w for w in warnings if w.startswith("sensitivity_ratio_values[0]"))


def test_stale_glucose_warning_and_helper():
    d = base_input()
    d["time_to_calculate_at"] = d["glucose_dates"][-1] + dt.timedelta(minutes=15)
    assert any("15.0 min old" in w for w in validate_input(d))
    assert glucose_is_stale(0.0, 900.0) and not glucose_is_stale(0.0, 899.0)
    assert glucose_is_stale(0.0, 600.0, max_age_min=10)


def test_mmol_input_converted_and_checked_in_mgdl():
    d = base_input()
    d["glucose_units"] = "mmol/L"
    d["glucose_values"] = [6.7, 6.9, 7.2, 7.1]
    d["settings_dictionary"]["suspend_threshold"] = 4.2
    d["sensitivity_ratio_value_units"] = "mmol/L/U"
    d["sensitivity_ratio_values"] = [2.5, 2.8]
    d["target_range_value_units"] = "mmol/L"
    d["target_range_minimum_values"] = [5.6]
    d["target_range_maximum_values"] = [6.1]
    assert validate_input(d) == []  # 4.2 mmol/L = 75.7 mg/dL etc.: inside every guardrail
    out = convert_glucose_units(d)
    assert out["glucose_values"][0] == pytest.approx(6.7 * MMOL_TO_MGDL)
    assert out["settings_dictionary"]["suspend_threshold"] == pytest.approx(4.2 * 18.01559)
    assert out["sensitivity_ratio_values"] == pytest.approx([2.5 * 18.01559, 2.8 * 18.01559])
    assert out["target_range_maximum_values"] == pytest.approx([6.1 * 18.01559])
    assert out["glucose_units"] == "mg/dL" and out["target_range_value_units"] == "mg/dL"
    assert convert_glucose_units(out) == out  # idempotent
    assert d["glucose_values"][0] == 6.7  # input untouched
    assert convert_glucose_units(copy.deepcopy(base_input()))["glucose_values"] == base_input()["glucose_values"]


GARBAGE = st.sampled_from([None, "x", -1, 0, 10**400, [10**400], float("nan"), float("inf"), [], [None], {}, [1, "a"], ["12:00"],
                           [dt.datetime(2020, 1, 1)], True, [-1.0, float("nan")]])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(base_input())), GARBAGE), min_size=1, max_size=4),
       st.lists(st.tuples(st.sampled_from(sorted(base_input()["settings_dictionary"])), GARBAGE), max_size=3))
def test_garbage_never_crashes(top_level, in_settings):
    d = base_input()
    for key, value in top_level:
        d[key] = copy.deepcopy(value)
    if isinstance(d.get("settings_dictionary"), dict):
        for key, value in in_settings:
            d["settings_dictionary"][key] = copy.deepcopy(value)
    try:
        warnings = validate_input(d)
    except InvalidInputError as err:
        assert err.problems and all(p.field and p.reason for p in err.problems)
    else:
        assert all(isinstance(w, str) for w in warnings)


@pytest.mark.parametrize("key", ["max_basal_rate", "max_bolus"])
def test_dose_limits_are_required(key):
    d = base_input()
    d["settings_dictionary"] = {k: v for k, v in d["settings_dictionary"].items() if k != key}
    with pytest.raises(InvalidInputError) as err:
        validate_input(d)
    assert any(p.field == f"settings_dictionary.{key}" for p in err.value.problems)
