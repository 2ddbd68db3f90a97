"""History.to_tune_request() read back by the project's Tune codec and answered by pyloopkit.tune."""
import json

import numpy as np
import pandas as pd
import pytest

from pyloopkit.io.tune_request import decode
from pyloopkit.report import simulated_history
from pyloopkit.tune import answer
from pyloopkit.tune import decode as tune_decode

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

TZ = "America/New_York"


@pytest.fixture(scope="module")
def history():
    # 36 h across the 2024-03-10 spring-forward in New York
    return simulated_history(1.5, seed=4, start="2024-03-09T12:00:00", tz=TZ)


@pytest.fixture(scope="module")
def request_json(history):
    return json.loads(json.dumps(history.to_tune_request()))  # what goes over the wire


def _unix(times: pd.Series) -> np.ndarray:
    return np.array([t.timestamp() for t in times])


def _flat_numbers(seq) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seq)


def test_no_run_length_pairs_by_default(request_json, history):
    """Tune's README strikes run-length encoding out and its codec takes the plain running sum."""
    for timeline in request_json["timelines"]:
        for key in ("index", "values", "durations"):
            if key in timeline:
                assert _flat_numbers(timeline[key]), (timeline["type"], key)
        assert all(isinstance(v, int) for v in timeline["index"])  # whole Unix seconds
    rle = history.to_tune_request(run_length_encoding=True)
    glucose = next(t for t in rle["timelines"] if t["type"] == "glucose")
    assert any(isinstance(v, list) for v in glucose["index"])  # 5-min steps: runs of 300
    assert decode(glucose["index"]) == decode(next(t for t in request_json["timelines"]
                                                   if t["type"] == "glucose")["index"])


def test_tune_codec_decodes_the_history(request_json, history):
    req = tune_decode(request_json)
    assert req.timezone == TZ
    assert req.basal_rate_schedule.index_min == [0]
    assert req.basal_rate_schedule.values == history.settings["basal_rate_values"]
    assert req.insulin_sensitivity_schedule.values == history.settings["sensitivity_ratio_values"]
    assert req.carb_ratio_schedule.values == history.settings["carb_ratio_values"]
    tl = {t.type: t for t in req.timelines}
    assert set(tl) == {"basal", "insulin", "carb", "glucose"}

    g = history.glucose
    assert len(g) > 400 and tl["glucose"].index_s.tolist() == _unix(g["time"]).astype(int).tolist()
    np.testing.assert_allclose(tl["glucose"].values, g["glucose_mg_dl"], rtol=1e-13, atol=0)

    bolus = history.doses[history.doses["type"] == "BOLUS"]
    assert len(bolus) >= 3 and tl["insulin"].index_s.tolist() == _unix(bolus["start"]).astype(int).tolist()
    np.testing.assert_allclose(tl["insulin"].values, bolus["value"] * 1000.0, rtol=1e-13, atol=0)  # mU

    c = history.carbs
    assert len(c) >= 3 and tl["carb"].index_s.tolist() == _unix(c["time"]).astype(int).tolist()
    np.testing.assert_allclose(tl["carb"].values, c["grams"], rtol=1e-13, atol=0)
    assert tl["carb"].parameters == {"delay": 10.0, "duration": 180.0}
    assert tl["insulin"].parameters == {"delay": 10.0, "peak": 75.0, "duration": 360.0}  # the settings' model

    # basal: the history's BASAL entries, rates in mU/h; durations in s, end to end
    basal = history.doses[history.doses["type"] == "BASAL"].sort_values("start")
    b = tl["basal"]
    assert b.index_s[0] == int(basal["start"].iloc[0].timestamp())
    np.testing.assert_array_equal(b.index_s[1:], (b.index_s + b.durations_s)[:-1])  # no gap, no overlap
    delivered_u = float((b.values / 1000.0 * b.durations_s / 3600.0).sum())
    expected_u = float((basal["value"] * (basal["end"] - basal["start"]).dt.total_seconds() / 3600.0).sum())
    assert delivered_u == pytest.approx(expected_u, rel=1e-12)


def test_tune_answers_the_request(request_json):
    response = answer(request_json)
    assert response["version"] == 1 and response["timezone"] == TZ
    for name in ("insulin_sensitivity_schedule", "carb_ratio_schedule", "basal_rate_schedule"):
        schedule = response[name]
        assert schedule["index"][0] == 0 and len(schedule["index"]) == len(schedule["values"])
        assert all(np.isfinite(v) and v > 0 for v in schedule["values"])
    assert np.isfinite(response["training_loss"])


def test_loop_report_request_with_a_fixed_offset_zone_decodes():
    from pathlib import Path

    from pyloopkit.io import read

    req = tune_decode(read(Path(__file__).parent / "data" / "loop_report.md").to_tune_request())
    assert req.timezone == "GMT-0500" and req.carb_ratio_schedule.index_min == [0, 720]
    basal = req.timelines_of("basal")[0]
    assert basal.durations_s[0] == 1800 and basal.values[0] > 0  # the temp basal 07:00-07:30, mU/h
