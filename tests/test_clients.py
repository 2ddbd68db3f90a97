"""Drop-in for programs written against Tidepool's PyLoopKit.

The call patterns below are written in this project's own words after two client
projects: GluPredKit's Loop model (a resampled pandas DataFrame whose columns become the
input lists, ``DoseType.from_str``, a ``[]`` result meaning "skip this row") and Tidepool's
data-science simulator controller (a closed loop that feeds the running temp basal back as
``last_temporary_basal = [DoseType.tempbasal, start, end, rate]`` and reads the
recommendations with ``dict.get``).
"""
import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest

from pyloopkit import update
from pyloopkit.compat import ENV_EMPTY_ON_ERROR
from pyloopkit.dose import DoseType
from pyloopkit.errors import InvalidInputError, LoopWarning

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

SETTINGS = {
    "model": [360.0, 75.0], "momentum_data_interval": 15.0, "suspend_threshold": 75.0,
    "dynamic_carb_absorption_enabled": True, "retrospective_correction_enabled": True,
    "retrospective_correction_integration_interval": 30.0, "recency_interval": 15.0,
    "retrospective_correction_grouping_interval": 30.0, "default_absorption_times": [120.0, 180.0, 240.0],
    "max_basal_rate": 4.0, "max_bolus": 10.0, "rate_rounder": 0.05,
}
SCHEDULES = {
    "sensitivity_ratio_start_times": [dt.time(0)], "sensitivity_ratio_end_times": [dt.time(0)],
    "sensitivity_ratio_values": [50.0],
    "carb_ratio_start_times": [dt.time(0)], "carb_ratio_values": [10.0],
    "basal_rate_start_times": [dt.time(0)], "basal_rate_minutes": [1440.0], "basal_rate_values": [1.0],
    "target_range_start_times": [dt.time(0)], "target_range_end_times": [dt.time(0)],
    "target_range_minimum_values": [100.0], "target_range_maximum_values": [110.0],
}


# --------------------------------------------------------------------------- PyLoopKit's DoseType

def test_dose_type_has_pyloopkits_names_and_values_as_aliases():
    expected = {"suspend": 0, "resume": 1, "basal": 2, "tempbasal": 3, "bolus": 4, "meal": 5}
    for name, value in expected.items():
        assert int(getattr(DoseType, name)) == value
    assert DoseType.tempbasal is DoseType.TEMP_BASAL and DoseType.bolus is DoseType.BOLUS
    assert DoseType.suspend is DoseType.SUSPEND and DoseType.basal is DoseType.BASAL
    assert DoseType.from_str("tempbasal") is DoseType.TEMP_BASAL
    assert DoseType.from_str("TempBasal") is DoseType.TEMP_BASAL
    assert DoseType.from_str("bolus") is DoseType.BOLUS
    assert DoseType.from_str("BasalProfileStart") is DoseType.BASAL
    assert DoseType.from_str("meal") is DoseType.MEAL
    with pytest.raises(ValueError, match="unknown dose type"):
        DoseType.from_str("squarewave")


def test_meal_in_the_dose_lists_is_an_error_naming_the_index():
    d = _glupredkit_input(_resampled_frame())
    d["dose_types"][2] = DoseType.meal
    with pytest.raises(InvalidInputError) as err:
        update(d)
    assert [(p.field, p.index) for p in err.value.problems] == [("dose_types", 2)]
    assert "carb" in err.value.problems[0].reason


# --------------------------------------------------------------------------- GluPredKit's Loop model

def _resampled_frame(minutes: int = 6 * 60) -> pd.DataFrame:
    """Five-minute rows of CGM, basal rate (U/h), bolus (U) and carbs (g), like a resampled export."""
    index = pd.date_range("2026-03-02 06:00", periods=minutes // 5, freq="5min")
    t = np.arange(index.size) * 5.0
    frame = pd.DataFrame(index=index, data={
        "CGM": 110.0 + 40.0 * np.exp(-0.5 * ((t - 200.0) / 60.0) ** 2),
        "basal": np.where((t > 150) & (t < 260), 1.6, 1.0),
        "bolus": np.zeros(index.size),
        "carbs": np.zeros(index.size),
    })
    frame.iloc[30, frame.columns.get_loc("bolus")] = 4.0
    frame.iloc[30, frame.columns.get_loc("carbs")] = 40.0
    return frame


def _glupredkit_input(frame: pd.DataFrame) -> dict:
    """The input dictionary built the way GluPredKit's Loop model builds it: pandas objects throughout."""
    boluses = frame[frame["bolus"] > 0]
    meals = frame[frame["carbs"] > 0]
    step = pd.Timedelta(minutes=5)
    dose_types = ([DoseType.from_str("tempbasal")] * len(frame) + [DoseType.from_str("bolus")] * len(boluses))
    starts = list(frame.index) + list(boluses.index)
    ends = list(frame.index + step) + list(boluses.index)
    values = list(frame["basal"].to_numpy()) + list(boluses["bolus"].to_numpy())
    order = np.argsort(np.array(starts, dtype="datetime64[ns]"), kind="stable")
    return {
        "time_to_calculate_at": frame.index[-1] + pd.Timedelta(seconds=30),
        "glucose_dates": frame.index, "glucose_values": frame["CGM"].to_numpy(),
        "dose_types": [dose_types[i] for i in order], "dose_start_times": [starts[i] for i in order],
        "dose_end_times": [ends[i] for i in order], "dose_values": [values[i] for i in order],
        "carb_dates": meals.index, "carb_values": meals["carbs"], "carb_absorption_times": [180] * len(meals),
        **SCHEDULES, "settings_dictionary": dict(SETTINGS),
    }


def _plain_python(d: dict) -> dict:
    """The same input as plain lists of datetimes, floats and our own dose type names."""
    def plain(v):
        if isinstance(v, (pd.Index, pd.Series, np.ndarray, tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, pd.Timestamp):
            return v.to_pydatetime()
        if isinstance(v, DoseType):
            return v.name
        if isinstance(v, (np.floating, np.integer)):
            return float(v)
        return v
    return {k: (v if isinstance(v, dict) or k.endswith(("_start_times", "_end_times")) and "dose" not in k
                else plain(v)) for k, v in d.items()}


def test_glupredkit_pattern_runs_and_equals_the_plain_python_input():
    frame = _resampled_frame()
    out = update(_glupredkit_input(frame))
    assert type(out) is dict
    reference = update(_plain_python(_glupredkit_input(frame)))
    assert out["predicted_glucose_values"] == reference["predicted_glucose_values"]
    assert out["recommended_temp_basal"] == reference["recommended_temp_basal"]
    assert out["insulin_on_board"] == reference["insulin_on_board"] > 0
    assert out["predicted_glucose_dates"][0] == frame.index[-1].to_pydatetime()
    assert "recommended_autobolus" in out


def test_glupredkit_pattern_with_tuples_and_numpy_scalars():
    d = _glupredkit_input(_resampled_frame())
    reference = update(d)
    d["glucose_dates"] = tuple(np.array(d["glucose_dates"], dtype="datetime64[us]"))
    d["glucose_values"] = tuple(np.float32(v) for v in d["glucose_values"])
    d["sensitivity_ratio_values"] = np.array([50.0])
    d["settings_dictionary"] = {**SETTINGS, "model": np.array([360.0, 75.0]), "max_basal_rate": np.float64(4.0),
                                "default_absorption_times": (120, 180, 240)}
    out = update(d)
    assert out["recommended_temp_basal"] == reference["recommended_temp_basal"]
    np.testing.assert_allclose(out["predicted_glucose_values"], reference["predicted_glucose_values"], atol=1e-4)


def test_rows_that_cannot_run_give_an_empty_list_under_the_compat_switch(monkeypatch):
    frame = _resampled_frame()
    frame.iloc[-3, frame.columns.get_loc("CGM")] = np.nan  # a CGM gap that was not dropped
    d = _glupredkit_input(frame)
    with pytest.raises(InvalidInputError, match=r"glucose_values\[69\]"):
        update(d)
    monkeypatch.setenv(ENV_EMPTY_ON_ERROR, "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = update(d)
    assert out == [] and type(out) == list  # noqa: E721 (the client's own test)
    messages = [str(w.message) for w in caught if issubclass(w.category, LoopWarning)]
    assert len(messages) == 1 and "glucose_values[69] = nan" in messages[0]
    monkeypatch.setenv(ENV_EMPTY_ON_ERROR, "0")
    with pytest.raises(InvalidInputError):
        update(d)


# --------------------------------------------------------------------------- Tidepool's simulator controller

def test_simulator_controller_closed_loop_feeds_back_last_temporary_basal():
    """Every 5 min: update() on the history so far, enact ``recommended_temp_basal`` (read with .get) and
    pass it back as ``last_temporary_basal`` the next time; glucose falls 0.5 mg/dL per 5 min per U/h above
    the 1 U/h schedule (a toy patient, not physiology)."""
    start = dt.datetime(2026, 3, 2, 8, 0)
    glucose_dates = [start + dt.timedelta(minutes=5 * i) for i in range(12)]
    glucose_values = [180.0] * 12
    dose_types, dose_starts, dose_ends, dose_values = [], [], [], []
    last_temporary_basal = []
    enacted = []
    for step in range(12):
        now = glucose_dates[-1] + dt.timedelta(seconds=10)
        d = {
            "time_to_calculate_at": now, "glucose_dates": glucose_dates, "glucose_values": glucose_values,
            "dose_types": dose_types, "dose_start_times": dose_starts, "dose_end_times": dose_ends,
            "dose_values": dose_values, "carb_dates": [], "carb_values": [], "carb_absorption_times": [],
            "last_temporary_basal": last_temporary_basal, **SCHEDULES, "settings_dictionary": dict(SETTINGS),
        }
        out = update(d)
        temp = out.get("recommended_temp_basal")
        bolus = out.get("recommended_bolus")
        if last_temporary_basal and last_temporary_basal[2] > now:
            # the running temp basal's insulin above the schedule, still to come, is pending for the bolus
            remaining_h = (last_temporary_basal[2] - now).total_seconds() / 3600.0
            assert bolus[1] == pytest.approx(max(0.0, (last_temporary_basal[3] - 1.0) * remaining_h), abs=1e-9)
        if temp is not None:
            rate, minutes = temp
            assert 0.0 <= rate <= SETTINGS["max_basal_rate"] and minutes == 30
            if dose_types and dose_types[-1] is DoseType.tempbasal and dose_ends[-1] > now:
                dose_ends[-1] = now  # the new temp basal cancels the running one
            last_temporary_basal = [DoseType.tempbasal, now, now + dt.timedelta(minutes=minutes), rate]
            dose_types.append(DoseType.tempbasal)
            dose_starts.append(now)
            dose_ends.append(last_temporary_basal[2])
            dose_values.append(rate)
            enacted.append(rate)
        running = last_temporary_basal[3] if last_temporary_basal and last_temporary_basal[2] > now else 1.0
        glucose_dates = glucose_dates + [glucose_dates[-1] + dt.timedelta(minutes=5)]
        glucose_values = glucose_values + [glucose_values[-1] - 0.5 * (running - 1.0)]
    assert enacted and enacted[0] > 1.0, "180 mg/dL over a 100-110 target must raise the basal rate"
    assert out["insulin_on_board"] > 0
    assert glucose_values[-1] < 180.0
