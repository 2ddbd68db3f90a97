"""The command line: python -m pyloopkit run|replay|scenario."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyloopkit.cli import EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE, main
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
