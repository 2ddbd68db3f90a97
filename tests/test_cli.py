"""The command line: python -m pyloopkit run|replay|scenario."""
import csv
import datetime as dt
import re
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyloopkit.cli import EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE, EXIT_UNWRITABLE, main
from tests.conftest import PROJECT_ROOT, reference_path

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

REPORT = PROJECT_ROOT / "example_files" / "synthetic_issue_report.json"


def test_run_prints_recommendations_and_writes_json_and_plot(tmp_path, capsys):
    out_json, out_png = tmp_path / "out.json", tmp_path / "out.png"
    assert main(["run", str(REPORT), "--json", str(out_json), "--plot", str(out_png)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "recommended temp basal" in printed and "recommended bolus" in printed
    data = json.loads(out_json.read_text())
    assert len(data["predicted_glucose_values"]) == len(data["predicted_glucose_dates"]) > 10
    assert out_png.stat().st_size > 10_000


def test_run_at_an_earlier_time(tmp_path, capsys):
    out_json = tmp_path / "out.json"
    assert main(["run", str(REPORT), "--at", "2026-03-02T12:00:00-05:00", "--json", str(out_json)]) == EXIT_OK
    data = json.loads(out_json.read_text())
    assert data["predicted_glucose_dates"][0] <= "2026-03-02T12:00:00-05:00"


def test_replay_writes_csv(tmp_path, capsys):
    out_csv = tmp_path / "replay.csv"
    assert main(["replay", str(REPORT), "--every", "60", "--start", "2026-03-02T18:00:00-05:00",
                 "--csv", str(out_csv)]) == EXIT_OK
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) >= 6 and float(rows[0]["glucose"]) > 0
    assert "steps written" in capsys.readouterr().out


def test_scenario_prints_algorithm_output(capsys):
    path = reference_path("loopalgorithm/suspend_scenario.json")
    assert main(["scenario", str(path)]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["recommendation"]["automatic"]["basalAdjustment"]["unitsPerHour"] == 0


def test_missing_file_exit_code(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.json")]) == EXIT_UNREADABLE
    assert "nope.json" in capsys.readouterr().err


def test_invalid_input_exit_code_lists_problems(tmp_path, capsys):
    bad = json.loads(REPORT.read_text())
    bad["cached_glucose_samples"][3]["quantity"] = "abc"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["run", str(path)]) == EXIT_INVALID
    assert "cached_glucose_samples" in capsys.readouterr().err


def test_usage_error_exit_code():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "pyloopkit", "run", str(REPORT)], capture_output=True, text=True,
                            cwd=Path(PROJECT_ROOT))
    assert result.returncode == 0, result.stderr
    assert "predicted glucose" in result.stdout


# --------------------------------------------------------------------------- hazards (issue 8)

def _report_copy(tmp_path, mutate) -> Path:
    report = json.loads(REPORT.read_text())
    mutate(report)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    return path


@pytest.mark.parametrize("argv,option", [
    (["run", str(REPORT), "--at", "soon"], "at"),
    (["replay", str(REPORT), "--start", "soon", "--csv", "x.csv"], "--start"),
    (["replay", str(REPORT), "--end", "nan", "--csv", "x.csv"], "--end"),
    (["replay", str(REPORT), "--every", "-5", "--csv", "x.csv"], "--every"),
    (["replay", str(REPORT), "--every", "nan", "--csv", "x.csv"], "--every"),
])
def test_bad_option_values_are_invalid_input_naming_the_option(argv, option, capsys):
    assert main(argv) == EXIT_INVALID
    err = capsys.readouterr().err
    assert f"{option} = " in err and "cannot use" not in err


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_unwritable_output_blames_the_output_not_the_report(option, tmp_path, capsys):
    target = tmp_path / "missing_folder" / "out"
    assert main(["run", str(REPORT), option, str(target)]) == EXIT_UNWRITABLE
    err = capsys.readouterr().err
    assert f"cannot write {option} {target}" in err and "cannot use" not in err


def test_empty_glucose_is_invalid_input_without_traceback(tmp_path, capsys):
    path = _report_copy(tmp_path, lambda r: r.update(cached_glucose_samples=[]))
    assert main(["run", str(path)]) == EXIT_INVALID
    assert "cached_glucose_samples" in capsys.readouterr().err


def _drop_recommendations(report):
    del report["recommended_temp_basal"], report["recommended_bolus"]


@pytest.mark.parametrize("source", ["report", "computed"])
def test_report_without_recommendation_runs_with_at(source, tmp_path, capsys):
    path = _report_copy(tmp_path, _drop_recommendations)
    assert main(["run", str(path)]) == EXIT_INVALID  # no run time: --at is needed
    assert "--at" in capsys.readouterr().err
    assert main(["run", str(path), "--at", "2026-03-02T12:00:00-05:00", "--counteraction", source]) == EXIT_OK
    assert "recommended temp basal" in capsys.readouterr().out


def test_counteraction_option_changes_the_source(tmp_path):
    """The synthetic report has no cached counteraction effects: store the computed ones shifted by
    0.5 mg/dL/min in it, and only ``--counteraction report`` sees the shift."""
    computed_json = tmp_path / "computed.json"
    assert main(["run", str(REPORT), "--counteraction", "computed", "--json", str(computed_json)]) == EXIT_OK
    computed = json.loads(computed_json.read_text())

    def loop_date(iso):
        return dt.datetime.fromisoformat(iso).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000")

    def cache(report):
        report["insulin_counteraction_effects"] = [
            {"start_time": loop_date(s), "end_time": loop_date(e), "value": v + 0.5}
            for s, e, v in zip(computed["counteraction_effect_start_times"], computed["counteraction_effect_end_times"],
                               computed["counteraction_effect_values"])]
    path = _report_copy(tmp_path, cache)
    outs = {}
    for source in ("report", "computed"):
        out_json = tmp_path / f"out_{source}.json"
        assert main(["run", str(path), "--counteraction", source, "--json", str(out_json)]) == EXIT_OK
        outs[source] = np.array(json.loads(out_json.read_text())["counteraction_effect_values"])
    assert outs["report"].size == outs["computed"].size > 100
    np.testing.assert_allclose(outs["computed"], computed["counteraction_effect_values"], atol=1e-12)
    np.testing.assert_allclose(outs["report"] - outs["computed"], 0.5, atol=1e-9)


def test_report_without_doses_needs_the_opt_in(tmp_path, capsys):
    def drop(report):
        for key in ("get_normalized_pump_event_dose", "get_normalized_dose_entries", "cached_dose_entries"):
            del report[key]
    path = _report_copy(tmp_path, drop)
    assert main(["run", str(path)]) == EXIT_INVALID
    assert "--allow-missing-doses" in capsys.readouterr().err
    assert main(["run", str(path), "--allow-missing-doses"]) == EXIT_OK
    assert "insulin on board: 0.000 U" in capsys.readouterr().out


def test_each_warning_is_printed_once_and_numbers_have_no_float_noise(tmp_path):
    path = _report_copy(tmp_path, lambda r: r["cached_glucose_samples"][-3].update(quantity=39.0))
    result = subprocess.run([sys.executable, "-m", "pyloopkit", "run", str(path)], capture_output=True, text=True,
                            cwd=Path(PROJECT_ROOT))
    assert result.returncode == EXIT_OK, result.stderr
    edge = [line for line in result.stderr.splitlines() if "CGM reports" in line]
    assert len(edge) == 1 and edge[0].startswith("warning: ")
    recommendations = [line for line in result.stdout.splitlines() if line.startswith("recommended")]
    assert recommendations and not any(re.search(r"\d\.\d{4,}", line) for line in recommendations)
