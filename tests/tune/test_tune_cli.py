"""``python -m pyloopkit tune REQUEST.json``: Tune's response on stdout, exit 3 on malformed input."""
from __future__ import annotations

import json

from pyloopkit.cli import main
from pyloopkit.tune.simulate import TRUE_SETTINGS

from .conftest import MISSET, request_from_history


def test_cli_answers_in_tunes_layout(history14, tmp_path, capsys):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request_from_history(history14, TRUE_SETTINGS * MISSET, tuning_limit=0.3)))
    assert main(["tune", str(path), "--model", "autotune"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and len(out["basal_rate_schedule"]["index"]) == len(out["basal_rate_schedule"]["values"])
    target = tmp_path / "response.json"
    assert main(["tune", str(path), "--output", str(target)]) == 0
    assert json.loads(target.read_text())["training_loss"] > 0


def test_cli_reports_every_problem(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"version": 1, "timezone": "UTC",
                                "timelines": [{"type": "glucose", "index": [10, -5], "values": [100]}]}))
    assert main(["tune", str(path)]) == 3
    err = capsys.readouterr().err
    assert "timelines[0]" in err and "same decoded length" in err


def test_cli_too_little_data(tmp_path, capsys):
    path = tmp_path / "short.json"
    path.write_text(json.dumps({"version": 1, "timezone": "UTC", "timelines": [
        {"type": "glucose", "index": [1700000000, 300, 300], "values": [100, 1, 1]},
        {"type": "insulin", "index": [1700000000], "values": [1000]}]}))
    assert main(["tune", str(path)]) == 4
    assert "too little glucose data" in capsys.readouterr().err
