"""log() and the ``pyloopkit meal`` command on the synthetic issue report."""
from __future__ import annotations

import json
import sys
import types
from datetime import timedelta
from pathlib import Path

import pytest

from pyloopkit.cli import load_input, main
from pyloopkit.errors import InvalidInputError, LoopWarning
from pyloopkit.loop_data_manager import update
from pyloopkit.meals import log, parse
from pyloopkit.meals.loop import with_carb_entries

REPORT = Path(__file__).resolve().parents[2] / "example_files" / "synthetic_issue_report.json"


@pytest.fixture(scope="module")
def input_dict():
    return load_input(str(REPORT))


@pytest.fixture(scope="module")
def logged(input_dict):
    return log("2 slices of pizza and a coke", input_dict)


def test_entries_are_added_at_the_run_time_and_sorted(input_dict):
    meal = parse("2 slices of pizza and a coke", at=input_dict["time_to_calculate_at"])
    d = with_carb_entries(input_dict, meal)
    n = len(input_dict["carb_values"])
    assert d["carb_values"][:n] == input_dict["carb_values"]
    assert d["carb_values"][n:] == meal.to_carb_entries()["carb_values"]
    assert d["carb_absorption_times"][n:] == [240.0, 120.0]
    assert d["carb_dates"] == sorted(d["carb_dates"])
    assert len(input_dict["carb_values"]) == n  # the caller's dictionary is not changed


def test_log_reports_update_on_the_augmented_input(input_dict, logged):
    out = update(with_carb_entries(input_dict, parse("2 slices of pizza and a coke",
                                                     at=input_dict["time_to_calculate_at"])))
    assert logged["predicted_peak_mg_dl"] == pytest.approx(max(out["predicted_glucose_values"]))
    assert logged["recommended_bolus_u"] == pytest.approx(out["recommended_bolus"][0])
    assert logged["carb_entries"]["carb_values"] == pytest.approx([2 * 107 * 29.02 / 100, 370 * 10.36 / 100])
    json.dumps(logged)


def test_more_carbs_never_lower_the_bolus_or_the_peak(input_dict, logged):
    small = log("a banana", input_dict)
    assert small["recommended_bolus_u"] <= logged["recommended_bolus_u"]
    assert small["predicted_peak_mg_dl"] <= logged["predicted_peak_mg_dl"]
    assert logged["recommended_bolus_u"] > 0


def test_log_errors(input_dict):
    with pytest.raises(InvalidInputError):
        log("nothing to see", input_dict)
    bare = {k: v for k, v in input_dict.items() if k != "time_to_calculate_at"}
    with pytest.raises(InvalidInputError) as e:
        log("a banana", bare)
    assert e.value.problems[0].field == "time_to_calculate_at"


def test_cli_prints_what_it_logged_the_peak_and_the_bolus(tmp_path, capsys, logged):
    out = tmp_path / "meal.json"
    assert main(["meal", "2 slices of pizza and a coke", "--report", str(REPORT), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pizza" in printed and "coke" in printed
    assert f"recommended bolus: {logged['recommended_bolus_u']:.2f} U" in printed
    assert f"predicted peak: {logged['predicted_peak_mg_dl']:.1f} mg/dL" in printed
    assert json.loads(out.read_text())["recommended_bolus_u"] == pytest.approx(logged["recommended_bolus_u"])


def test_cli_without_data_prints_the_parse_and_rejects_garbage(capsys):
    assert main(["meal", "a banana, bg 140"]) == 0
    printed = capsys.readouterr().out
    assert "banana" in printed and "glucose: 140 mg/dL" in printed
    assert main(["meal", "blah blah"]) == 3


def test_cli_history_without_the_io_reader_says_so(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "pyloopkit.io", types.ModuleType("pyloopkit.io"))
    assert main(["meal", "a banana", "--history", str(tmp_path / "h.csv")]) == 4
    assert "pyloopkit.io.read" in capsys.readouterr().err


def test_cli_history_uses_the_reader(monkeypatch, capsys, input_dict):
    class FakeHistory:
        def to_input_dict(self, at=None):
            return input_dict

    fake = types.ModuleType("pyloopkit.io")
    fake.read = lambda path: FakeHistory()
    monkeypatch.setitem(sys.modules, "pyloopkit.io", fake)
    assert main(["meal", "a banana", "--history", "whatever.csv"]) == 0
    assert "recommended bolus" in capsys.readouterr().out


def test_stale_glucose_gives_no_bolus_but_still_a_result(input_dict):
    later = dict(input_dict, time_to_calculate_at=input_dict["time_to_calculate_at"] + timedelta(hours=2))
    with pytest.warns(LoopWarning, match="stale"):
        result = log("a banana", later)
    assert result["recommended_bolus_u"] is None
    assert any("stale" in w for w in result["update"]["warnings"])
    assert result["carb_entries"]["carb_dates"] == [later["time_to_calculate_at"].isoformat()]
    json.dumps(result)
