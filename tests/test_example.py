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
