"""replay(): every step uses only data known then and agrees with update() run at that time."""
import copy
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from pyloopkit import replay, update
from pyloopkit.date import to_second
from pyloopkit.dose import DoseType
from pyloopkit.errors import InvalidInputError
from pyloopkit.pyloop_parser import parse_report
from pyloopkit.synthetic import dense_history

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")


def _known_at(d: dict, t: dt.datetime) -> dict:
    """The input as it stood at ``t``: later data removed (doses started by ``t`` kept as recorded)."""
    k = copy.deepcopy(d)
    g = [i for i, x in enumerate(d["glucose_dates"]) if x <= t]
    k["glucose_dates"] = [d["glucose_dates"][i] for i in g]
    k["glucose_values"] = [d["glucose_values"][i] for i in g]
    doses = [i for i, x in enumerate(d["dose_start_times"]) if x <= t]
    for key in ("dose_types", "dose_start_times", "dose_end_times", "dose_values", "dose_delivered_units"):
        k[key] = [d[key][i] for i in doses]
    temps = [i for i in doses if d["dose_types"][i] == DoseType.TEMP_BASAL and d["dose_end_times"][i] > t]
    k["last_temporary_basal"] = ([DoseType.TEMP_BASAL, d["dose_start_times"][temps[-1]], d["dose_end_times"][temps[-1]],
                                  d["dose_values"][temps[-1]]] if temps else None)
    carbs = [i for i, x in enumerate(d["carb_dates"]) if x <= t]
    for key in ("carb_dates", "carb_values", "carb_absorption_times"):
        k[key] = [d[key][i] for i in carbs]
    k["time_to_calculate_at"] = t
    return k


@pytest.fixture(scope="module")
def history():
    return dense_history(days=1.5, seed=3)


@pytest.fixture(scope="module")
def table(history):
    end = history["time_to_calculate_at"]
    return replay(history, start=end - dt.timedelta(hours=6), end=end, step_minutes=30, as_dataframe=False)


def test_columns_and_shapes(table):
    assert list(table) == ["time", "glucose", "iob", "cob", "counteraction", "predicted_30", "predicted_60",
                           "predicted_120", "temp_basal_rate", "temp_basal_duration", "bolus"]
    assert len({len(v) for v in table.values()}) == 1 and len(table["time"]) == 13
    for name in ("glucose", "iob", "cob", "counteraction", "predicted_30", "predicted_60", "predicted_120"):
        assert np.all(np.isfinite(table[name]))


def _assert_row_is_update(table, i, t, out):
    """Row ``i`` of a replay table holds update()'s 30/60/120-min predictions (1e-9 mg/dL), IOB and COB (1e-12)."""
    now = to_second(t)
    pred_s = np.array([to_second(x) for x in out["predicted_glucose_dates"]])
    for h in (30, 60, 120):
        expected = np.interp(now + 60 * h, pred_s, out["predicted_glucose_values"])
        assert table[f"predicted_{h}"][i] == pytest.approx(expected, abs=1e-9)
    assert table["iob"][i] == pytest.approx(out["insulin_on_board"], abs=1e-12)
    assert table["cob"][i] == pytest.approx(out["carbs_on_board"], abs=1e-12)


@pytest.mark.parametrize("step", [0, 5, 12])
def test_step_agrees_with_update_at_that_time(history, table, step):
    """Each replay step runs the array core on the data known at that time; update() on the
    truncated input gives the same row."""
    t = table["time"][step]
    out = update(_known_at(history, t))
    _assert_row_is_update(table, step, t, out)
    assert table["glucose"][step] == out["predicted_glucose_values"][0]
    if out["recommended_temp_basal"] is None:
        assert table["temp_basal_rate"][step] is None
    else:
        assert table["temp_basal_rate"][step] == out["recommended_temp_basal"][0]
    assert table["bolus"][step] == pytest.approx(out["recommended_bolus"][0], abs=1e-9)


def test_future_data_does_not_leak(history):
    """Changing glucose after a step time leaves that step unchanged."""
    end = history["time_to_calculate_at"]
    start = end - dt.timedelta(hours=2)
    before = replay(history, start=start, end=start, as_dataframe=False)
    changed = copy.deepcopy(history)
    changed["glucose_values"] = [v if x <= start else 300.0 for x, v in zip(history["glucose_dates"],
                                                                          history["glucose_values"])]
    after = replay(changed, start=start, end=start, as_dataframe=False)
    for name in ("predicted_30", "predicted_60", "iob", "cob"):
        assert before[name][0] == after[name][0]


def test_dataframe_output(history):
    pd = pytest.importorskip("pandas")
    end = history["time_to_calculate_at"]
    df = replay(history, start=end - dt.timedelta(hours=1), end=end)
    assert isinstance(df, pd.DataFrame) and len(df) == 13


def test_bad_step_is_an_error(history):
    with pytest.raises(InvalidInputError, match="step_minutes"):
        replay(history, step_minutes=0)


# ------------------------------------------------------------------ an issue report (issue 8, item 5)

REPORT = Path(__file__).resolve().parents[1] / "example_files" / "synthetic_issue_report.json"


@pytest.fixture(scope="module")
def report():
    with open(REPORT) as f:
        return parse_report(json.load(f))


def test_every_row_of_an_issue_report_replay_equals_update(report):
    """The shipped issue report has temp basals, boluses and a meal in the 6-h window: every row's
    IOB, COB, latest counteraction and 30/60/120-min predictions are those of update() at that time."""
    end = report["time_to_calculate_at"]
    start = end - dt.timedelta(hours=6)
    assert sum(start <= x <= end for x in report["carb_dates"]) >= 1
    assert sum(start <= x <= end for x in report["dose_start_times"]) >= 10
    table = replay(report, start=start, end=end, step_minutes=30, as_dataframe=False)
    assert len(table["time"]) == 13
    for i, t in enumerate(table["time"]):
        out = update(_known_at(report, t))
        _assert_row_is_update(table, i, t, out)
        assert table["counteraction"][i] == pytest.approx(out["counteraction_effect_values"][-1], abs=1e-12)
        temp = out["recommended_temp_basal"]
        assert table["temp_basal_rate"][i] == (None if temp is None else temp[0])
    # the columns carry information: insulin and carbs on board, distinct horizons
    assert table["iob"].min() > 0.5 and table["cob"].max() > 10.0
    assert np.all(table["predicted_30"] != table["predicted_120"])


def test_long_gaps_and_late_end_run_like_update(report):
    """A 40-h CGM gap before the step and an end 40 h after the last reading: no crash, update()'s values."""
    last = report["glucose_dates"][-1]
    end = last + dt.timedelta(hours=40)
    table = replay(report, start=end, end=end, as_dataframe=False)
    out = update(_known_at(report, end))
    assert table["glucose"][0] == report["glucose_values"][-1]
    assert table["iob"][0] == pytest.approx(out["insulin_on_board"], abs=1e-12)
    assert table["bolus"][0] is None and table["temp_basal_rate"][0] is None  # glucose too old to dose on


@pytest.mark.parametrize("kwargs, field", [
    ({"step_minutes": "5"}, "step_minutes"),
    ({"step_minutes": float("nan")}, "step_minutes"),
    ({"step_minutes": True}, "step_minutes"),
    ({"start": "soon"}, "start"),
    ({"start": float("nan")}, "start"),
    ({"end": "later"}, "end"),
    ({"max_steps": 0}, "max_steps"),
])
def test_unusable_arguments_name_the_argument(report, kwargs, field):
    with pytest.raises(InvalidInputError) as e:
        replay(report, as_dataframe=False, **kwargs)
    assert [p.field for p in e.value.problems] == [field]


def test_end_before_start_and_too_many_steps_are_refused(report):
    end = report["time_to_calculate_at"]
    with pytest.raises(InvalidInputError, match="is before start"):
        replay(report, start=end, end=end - dt.timedelta(minutes=5))
    with pytest.raises(InvalidInputError, match="before the first glucose"):
        replay(report, start=report["glucose_dates"][0] - dt.timedelta(hours=1), end=end)
    with pytest.raises(InvalidInputError, match="more than max_steps=100"):
        replay(report, step_minutes=0.01, max_steps=100)
