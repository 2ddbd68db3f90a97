"""example.py: the figure of a report goes to --out or <report>_output.png, never over the example figure."""
import shutil
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

REPORT = PROJECT_ROOT / "example_files" / "synthetic_issue_report.json"


def test_a_report_figure_does_not_overwrite_the_example_figure(tmp_path):
    report = tmp_path / "my_report.json"
    shutil.copy(REPORT, report)
    run = [sys.executable, str(PROJECT_ROOT / "example.py"), str(report)]
    result = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "my_report_output.png").stat().st_size > 10_000
    assert not (tmp_path / "example_output.png").exists()
    result = subprocess.run(run + ["--out", str(tmp_path / "chosen.png")], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "chosen.png").exists() and "chosen.png" in result.stdout


def test_the_readme_examples_run_on_shipped_files(tmp_path):
    """README's snippets name files of example_files/ (a fresh clone has no ../shared)."""
    import importlib.util
    import json
    import warnings

    from pyloopkit.algorithm import run
    from pyloopkit.pyloop_parser import parse_report_and_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = parse_report_and_run(str(REPORT))
    assert out["predicted_glucose_dates"][0] == out["input_data"]["glucose_dates"][-1]
    assert out["insulin_on_board"] > 0
    example = PROJECT_ROOT / "example_files" / "algorithm_input.json"
    recommendation = run(str(example))["recommendation"]
    assert 0.0 <= recommendation["automatic"]["basalAdjustment"]["unitsPerHour"] <= json.loads(
        example.read_text())["maxBasalRate"]
    spec = importlib.util.spec_from_file_location("make_algorithm_example",
                                                  PROJECT_ROOT / "scripts" / "make_algorithm_example.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert json.dumps(script.build(), indent=1, sort_keys=True) + "\n" == example.read_text()
