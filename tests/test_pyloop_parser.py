"""Tests of pyloopkit.pyloop_parser on the four reference issue reports, a saved run and bad input.

Expected numbers were read from the report JSON by hand (the raw strings are quoted in
comments); PyLoopKit's own ``input_data`` in ``*-output.json`` is used as a second witness.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import sys
import types

import numpy as np
import pytest

from conftest import PROJECT_ROOT, load_reference, reference_path
from pyloopkit.dose import DoseType
from pyloopkit.errors import InvalidInputError, MissingDataError
from pyloopkit.pump_rounding import PUMP_ROUNDING
from pyloopkit.pyloop_parser import (
    input_dict_to_json,
    loop_reference_outputs,
    parse_dictionary_from_previous_run,
    parse_report,
    parse_report_and_run,
)

REPORTS = "issue_reports/example_issue_report_{}.json"
PDT = dt.timezone(dt.timedelta(hours=-7))  # basal_rate_timeZone = -25200 in all four reports


def utc(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")


def report(n: int) -> dict:
    return load_reference(REPORTS.format(n))


# (number of glucose samples, first date, first value, last date, last value, time Loop ran)
GLUCOSE_FACTS = {
    1: (267, "2019-07-25 23:12:46 +0000", 167.566, "2019-07-26 22:12:46 +0000", 152.968, "2019-07-26 22:13:17 +0000"),
    2: (232, "2019-08-14 22:59:34 +0000", 77.8431, "2019-08-15 18:59:34 +0000", 100.287, "2019-08-15 19:01:24 +0000"),
    3: (137, "2019-08-15 07:08:47 +0000", 86.561, "2019-08-15 19:18:10 +0000", 89.9028, "2019-08-15 19:18:10 +0000"),
    4: (150, "2019-08-15 07:08:47 +0000", 86.561, "2019-08-15 20:23:10 +0000", 99.9454, "2019-08-15 20:23:10 +0000"),
}


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_glucose_and_run_time(n):
    count, first, first_v, last, last_v, ran = GLUCOSE_FACTS[n]
    d = parse_report(reference_path(REPORTS.format(n)))
    assert len(d["glucose_dates"]) == len(d["glucose_values"]) == count
    assert d["glucose_dates"][0] == utc(first) and d["glucose_values"][0] == first_v
    assert d["glucose_dates"][-1] == utc(last) and d["glucose_values"][-1] == last_v
    # Loop ran within the printed second: the default calculation time is its midpoint.
    assert d["time_to_calculate_at"] == utc(ran) + dt.timedelta(seconds=0.5)
    # Dates are aware, in the report's local zone (-07:00), and sorted.
    assert all(x.utcoffset() == dt.timedelta(hours=-7) for x in d["glucose_dates"])
    assert d["time_to_calculate_at"].tzinfo == PDT
    assert d["offset_applied_to_dates"] == -25200
    assert d["glucose_dates"] == sorted(d["glucose_dates"])


def test_report_1_schedules_settings_and_doses():
    d = parse_report(report(1))
    # basal_rate_schedule: 0 s 1.45, 34200 s 0.9, 75600 s 0.75 U/h
    assert d["basal_rate_start_times"] == [dt.time(0), dt.time(9, 30), dt.time(21)]
    assert d["basal_rate_values"] == [1.45, 0.9, 0.75]
    assert d["basal_rate_minutes"] == [570.0, 690.0, 180.0]  # sums to one day
    assert d["sensitivity_ratio_start_times"] == [dt.time(0)] and d["sensitivity_ratio_values"] == [70.0]
    assert d["carb_ratio_start_times"] == [dt.time(0), dt.time(16, 30)] and d["carb_ratio_values"] == [12.0, 10.0]
    assert d["target_range_minimum_values"] == [90.0] and d["target_range_maximum_values"] == [95.0]
    s = d["settings_dictionary"]
    assert s["model"] == [360.0, 65.0]  # humalogNovologChild, insulin_action_duration 21600 s
    assert s["momentum_data_interval"] == 15.0  # glucose_store.momentumDataInterval " 900.0"
    assert s["suspend_threshold"] is None  # no suspend_threshold key in this report
    assert s["max_basal_rate"] == 7.0 and s["max_bolus"] == 8.0
    assert s["retrospective_correction_enabled"] is False
    assert s["default_absorption_times"] == [120.0, 180.0, 240.0]
    assert s["insulin_delay"] == 10 and s["carb_delay"] == 10 and s["pump_rounding"] == "default"
    # Only dose source is get_normalized_dose_entries: one 3.0 U bolus 22:13:11-22:15:11 UTC.
    assert d["dose_types"] == [DoseType.BOLUS]
    assert d["dose_start_times"] == [utc("2019-07-26 22:13:11 +0000")]
    assert d["dose_end_times"] == [utc("2019-07-26 22:15:11 +0000")]
    assert d["dose_values"] == [3.0] and d["dose_delivered_units"] == [None]
    # cached_carb_entries: 40 g at " 2019-07-26 22:13:01 +0000", absorptionTime " 14400.0" s
    assert d["carb_dates"] == [utc("2019-07-26 22:13:01 +0000")]
    assert d["carb_values"] == [40.0] and d["carb_absorption_times"] == [240.0]
    # last_temp_basal " type": "LoopKit.DoseType.basal", 22:13:17-22:33:17, " value": 0.0 starts at the
    # run time: this run enacted it, so no temp basal was running when Loop computed its recommendation.
    assert d["last_temporary_basal"] == []


def test_report_2_isf_schedule_and_carb_ratio():
    d = parse_report(report(2))
    # ISF starts 0, 1800, 32400, 59400 s
    assert d["sensitivity_ratio_start_times"] == [dt.time(0), dt.time(0, 30), dt.time(9), dt.time(16, 30)]
    assert d["sensitivity_ratio_end_times"] == [dt.time(0, 30), dt.time(9), dt.time(16, 30), dt.time(0)]
    assert d["sensitivity_ratio_values"] == [50.0, 60.0, 40.0, 45.0]
    assert d["carb_ratio_values"] == [5.0, 7.0, 11.0]
    assert d["basal_rate_minutes"] == [720.0, 90.0, 630.0]
    assert d["settings_dictionary"]["max_basal_rate"] == 15.0
    assert d["carb_absorption_times"] == [120.0]


def test_report_3_adds_the_running_temp_basal_trimmed_to_now():
    d = parse_report(report(3))
    s = d["settings_dictionary"]
    assert s["model"] == [360.0, 75.0]  # humalogNovologAdult
    assert s["suspend_threshold"] == 60.0 and s["retrospective_correction_enabled"] is True
    assert d["target_range_start_times"] == [dt.time(0), dt.time(13, 30)]  # startTime "48600.0"
    assert d["target_range_minimum_values"] == [85.0, 100.0] == d["target_range_maximum_values"]
    # Pump events hold the two boluses; the temp basal 19:13:10-19:43:10 (0 U/h) comes from the
    # last normalized dose entry and ends at the calculation time 19:18:10.5.
    assert d["dose_types"] == [DoseType.BOLUS, DoseType.BOLUS, DoseType.BASAL]  # "LoopKit.DoseType.basal"
    assert d["dose_values"] == [0.9, 3.0, 0.0]
    assert d["dose_start_times"][2] == utc("2019-08-15 19:13:10 +0000")
    assert d["dose_end_times"][2] == utc("2019-08-15 19:18:10 +0000") + dt.timedelta(seconds=0.5)
    # The temp basal running before this run (report's last_temp_basal starts at the run time).
    assert d["last_temporary_basal"] == [
        DoseType.BASAL, utc("2019-08-15 19:13:10 +0000"), utc("2019-08-15 19:43:10 +0000"), 0.0]
    assert d["carb_values"] == [10.0, 30.0] and d["carb_absorption_times"] == [120.0, 240.0]


def test_report_4_walsh_and_pump_event_doses():
    d = parse_report(report(4))
    assert d["settings_dictionary"]["model"] == [4.0]  # Walsh, insulin_action_duration 14400 s
    assert len(d["dose_types"]) == 19  # 18 normalized pump-event doses + the running temp basal
    assert sum(t == DoseType.BOLUS for t in d["dose_types"]) == 7
    assert sum(v for t, v in zip(d["dose_types"], d["dose_values"]) if t == DoseType.BOLUS) == pytest.approx(9.9)
    # The scheduled basal piece "BasalRateSchedule 2019-08-15T19:11:00Z 2019-08-15T19:13:10Z", 0.9 U/h.
    assert d["dose_types"][1] == DoseType.BASAL and d["dose_values"][1] == 0.9
    assert set(d["dose_types"]) == {DoseType.BOLUS, DoseType.BASAL}  # Loop 1.x calls temp basals "basal"
    assert d["dose_start_times"] == sorted(d["dose_start_times"])
    assert d["dose_start_times"][-1] == utc("2019-08-15 20:18:10 +0000")
    assert d["dose_end_times"][-1] == utc("2019-08-15 20:23:10 +0000") + dt.timedelta(seconds=0.5)
    assert len(d["carb_values"]) == 5 and sum(d["carb_values"]) == 100.0


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_agrees_with_pyloopkit_input_data(n):
    """PyLoopKit's parser saw the same report; its dates are local wall time labelled +00:00."""
    ref = load_reference(f"issue_reports/example_issue_report_{n}-output.json")["input_data"]
    d = parse_report(reference_path(REPORTS.format(n)))
    wall = [x.replace(tzinfo=None).isoformat() for x in d["glucose_dates"]]
    assert wall == [x[:19] for x in ref["glucose_dates"]]
    assert d["glucose_values"] == ref["glucose_values"]
    for key in ("dose_start_times", "dose_end_times", "carb_dates"):
        assert [x.replace(tzinfo=None).isoformat()[:19] for x in d[key]] == [x[:19] for x in ref[key]], key
    for key in ("dose_values", "carb_values", "carb_absorption_times", "sensitivity_ratio_values",
                "carb_ratio_values", "basal_rate_values", "target_range_minimum_values",
                "target_range_maximum_values"):
        assert d[key] == ref[key], key
    assert d["dose_types"] == [DoseType.parse(t) for t in ref["dose_types"]]
    # PyLoopKit passes the temp basal this run enacted; we pass the one running before it (none in 1, 2).
    assert len(d["last_temporary_basal"]) == (0 if n in (1, 2) else 4)
    mine = d["settings_dictionary"]
    ref_settings = dict(ref["settings_dictionary"])
    # PyLoopKit's rate_rounder 0.05 is our report default rule's basal step (no pump in these reports).
    assert PUMP_ROUNDING[mine["pump_rounding"]].basal.step == ref_settings.pop("rate_rounder") == 0.05
    assert {k: mine[k] for k in ref_settings} == ref_settings


def test_at_uses_only_data_known_then():
    at = dt.datetime(2019, 8, 15, 12, 40)  # naive = local time (-07:00) = 19:40:00 UTC
    d = parse_report(report(4), at=at)
    assert d["time_to_calculate_at"] == utc("2019-08-15 19:40:00 +0000")
    assert max(d["glucose_dates"]) <= d["time_to_calculate_at"]
    assert max(d["dose_start_times"]) <= d["time_to_calculate_at"]
    assert max(d["dose_end_times"][i] for i, t in enumerate(d["dose_types"]) if t != DoseType.BOLUS) \
        <= d["time_to_calculate_at"]
    assert d["carb_values"] == [10.0, 30.0, 30.0]  # 19:10:48, 19:11:06, 19:38:35 UTC
    # The temp basal programmed at 19:38:10 UTC ran (as programmed) to 20:08:10.
    assert d["last_temporary_basal"][1:3] == [utc("2019-08-15 19:38:10 +0000"), utc("2019-08-15 20:08:10 +0000")]
    assert d["last_temporary_basal"][3] == 0.0


def test_override_schedule_preferred_and_repr_string_items():
    r = copy.deepcopy(report(1))
    r["insulinSensitivityScheduleApplyingOverrideHistory_items"] = \
        "[{'startTime': 0.0, 'value': 45.0}, {'value': 55.0, 'startTime': 32400.0}]"
    d = parse_report(r)
    assert d["sensitivity_ratio_start_times"] == [dt.time(0), dt.time(9)]
    assert d["sensitivity_ratio_values"] == [45.0, 55.0]


def test_mmol_glucose_is_converted():
    r = copy.deepcopy(report(1))
    r["cached_glucose_samples"][-1]["quantity"] = 10.0
    r["cached_glucose_samples"][-1]["quantity_units"] = "mmol/L"
    assert parse_report(r)["glucose_values"][-1] == pytest.approx(180.1559)


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("cached_glucose_samples"), "cached_glucose_samples"),
    (lambda r: r.pop("insulin_model"), "insulin_model"),
    (lambda r: r.pop("correction_range_schedule"), "correction_range_schedule"),
    (lambda r: r.pop("recommended_temp_basal") and r.pop("recommended_bolus"), "recommended_bolus"),
])
def test_missing_sections_are_named(mutate, message):
    r = copy.deepcopy(report(1))
    mutate(r)
    with pytest.raises(MissingDataError, match=message):
        parse_report(r)


def test_bad_values_name_field_and_index():
    r = copy.deepcopy(report(1))
    r["cached_glucose_samples"][5]["startDate"] = "yesterday"
    r["cached_glucose_samples"][7]["quantity"] = "NaN"
    with pytest.raises(InvalidInputError) as err:
        parse_report(r)
    fields = {(p.field, p.index) for p in err.value.problems}
    assert fields == {("cached_glucose_samples.startDate", 5), ("cached_glucose_samples.quantity", 7)}
    r = copy.deepcopy(report(1))
    r["insulin_model"] = "insulinX"
    with pytest.raises(InvalidInputError, match="insulin_model"):
        parse_report(r)


def test_loop_reference_outputs_report_4():
    out = loop_reference_outputs(reference_path(REPORTS.format(4)))
    assert len(out["predicted_glucose_values"]) == 68
    assert out["predicted_glucose_dates"][0] == utc("2019-08-15 20:23:10 +0000")
    assert out["predicted_glucose_values"][0] == pytest.approx(99.9453775888128, abs=0)
    assert out["insulin_effect_values"][0] == pytest.approx(-46.06980694882415, abs=0)
    assert len(out["carb_effect_values"]) == 74 and len(out["momentum_effect_values"]) == 5
    assert len(out["retrospective_effect_values"]) == 13
    assert len(out["counteraction_effect_start_times"]) == len(out["counteraction_effect_end_times"]) == 149
    assert out["counteraction_effect_end_times"][0] == utc("2019-08-15 07:13:47 +0000")
    assert out["carbs_on_board"] == 85.164 and out["carbs_on_board_date"] == utc("2019-08-15 20:20:00 +0000")
    assert out["recommended_temp_basal"] is None
    assert out["recommended_bolus"] == [0.0, 0.0, ["glucoseBelowSuspendThreshold", 59.8393]]
    assert isinstance(out["predicted_glucose_values"], np.ndarray)


def test_loop_reference_outputs_report_1_temp_basal():
    out = loop_reference_outputs(report(1))
    assert out["recommended_temp_basal"] == [1.2, 30.0]  # unitsPerHour 1.2, duration 1800 s
    assert out["recommended_bolus"] == [0.15, 0.0, None]
    assert out["retrospective_effect_values"].size == 0


def test_previous_run_dictionary():
    d = parse_dictionary_from_previous_run(reference_path("issue_reports/example_from_previous_run.json"))
    assert d["basal_rate_start_times"] == [dt.time(0), dt.time(12), dt.time(13, 30)]
    assert d["sensitivity_ratio_end_times"][-1] == dt.time(0)
    assert d["glucose_dates"][0] == dt.datetime(2019, 8, 14, 15, 59, 34, tzinfo=dt.timezone.utc)
    assert d["time_to_calculate_at"] == dt.datetime(2019, 8, 15, 12, 1, 24, tzinfo=dt.timezone.utc)
    assert d["dose_types"] == [DoseType.BOLUS]
    assert d["last_temporary_basal"][0] == DoseType.BASAL
    assert d["last_temporary_basal"][2] == dt.datetime(2019, 8, 15, 12, 31, 24, tzinfo=dt.timezone.utc)
    assert d["carb_absorption_times"] == [120.0]  # a *_times key of numbers is left alone
    assert d["settings_dictionary"]["model"] == [360.0, 65]


def test_json_round_trip(tmp_path):
    parsed = parse_report(report(4))
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(input_dict_to_json(parsed)))
    back = parse_dictionary_from_previous_run(str(tmp_path), "saved.json")
    assert back == parsed


def test_parse_report_and_run_passes_input_data(monkeypatch):
    fake = types.ModuleType("pyloopkit.loop_data_manager")
    fake.update = lambda d: {"predicted_glucose_values": [], "seen": d}
    monkeypatch.setitem(sys.modules, "pyloopkit.loop_data_manager", fake)
    path = reference_path(REPORTS.format(2))
    out = parse_report_and_run(str(path.parent), path.name)
    assert out["input_data"] is out["seen"]
    assert out["input_data"]["carb_values"] == [15.0]


def test_synthetic_report_round_trips():
    path = PROJECT_ROOT / "example_files" / "synthetic_issue_report.json"
    if not path.exists():
        pytest.skip("example_files/synthetic_issue_report.json not generated")
    d = parse_report(path)
    est = dt.timezone(dt.timedelta(hours=-5))  # the script's UTC_OFFSET_S
    first = dt.datetime(2026, 3, 2, 0, 2, 37, tzinfo=est)  # the script's DAY_START_UTC
    assert len(d["glucose_values"]) == 289
    assert d["glucose_dates"][0] == first and d["glucose_dates"][-1] == first + dt.timedelta(hours=24)
    assert d["time_to_calculate_at"] == first + dt.timedelta(hours=24, seconds=45.5)
    assert all(40.0 <= g <= 400.0 for g in d["glucose_values"])
    assert sum(t == DoseType.BOLUS for t in d["dose_types"]) == 4
    assert d["carb_values"] == [45.0, 60.0, 15.0, 70.0]
    assert d["carb_absorption_times"] == [180.0, 180.0, 120.0, 240.0]
    assert d["settings_dictionary"]["model"] == [360.0, 75.0]
    assert d["basal_rate_values"] == [0.8, 1.0, 0.85, 0.75]
    assert d["last_temporary_basal"][0] == DoseType.TEMP_BASAL
    assert path.stat().st_size < 300_000


def test_parse_report_and_run_on_the_synthetic_day():
    path = PROJECT_ROOT / "example_files" / "synthetic_issue_report.json"
    if not path.exists():
        pytest.skip("example_files/synthetic_issue_report.json not generated")
    out = parse_report_and_run(str(path.parent), path.name)
    assert out["input_data"]["carb_values"] == [45.0, 60.0, 15.0, 70.0]
    assert out["predicted_glucose_dates"][0] == out["input_data"]["glucose_dates"][-1]
    assert np.all(np.isfinite(out["predicted_glucose_values"]))
    rate = out["recommended_temp_basal"]
    assert rate is None or 0.0 <= rate[0] <= 3.0  # maximum_basal_rate of the synthetic report


def test_previous_run_dictionary_from_a_loaded_json_object():
    """An HTTP body arrives as a dict: decoded like the file, and bad shapes are listed as problems."""
    path = PROJECT_ROOT / "example_files" / "synthetic_issue_report.json"
    parsed = parse_report(path)
    as_json = json.loads(json.dumps(input_dict_to_json(parsed)))
    assert parse_dictionary_from_previous_run(as_json) == parsed
    as_json.update(dose_types=5, last_temporary_basal=7, glucose_dates=["yesterday"])
    with pytest.raises(InvalidInputError) as e:
        parse_dictionary_from_previous_run(as_json)
    assert sorted((p.field, repr(p.value)) for p in e.value.problems) == [
        ("dose_types", "5"), ("glucose_dates", "['yesterday']"), ("last_temporary_basal", "7")]
