"""Daily insulin, basal/bolus split and meal patterns of hand-made histories."""
import numpy as np
import pandas as pd
import pytest

from pyloopkit.errors import InvalidInputError
from pyloopkit.io.history import History
from pyloopkit.metrics.insulin import basal_segments, daily_insulin, meal_patterns

TZ = "Europe/Berlin"


def _t(text):
    return pd.Timestamp(text, tz=TZ)


def _doses(rows):
    return pd.DataFrame([{"start": _t(a), "end": _t(b), "type": kind, "value": v, "unit": "U" if kind == "BOLUS" else "U/h"}
                         for a, b, kind, v in rows])


def _history(doses, glucose=None, carbs=None):
    glucose = glucose if glucose is not None else pd.DataFrame({"time": [_t("2024-05-02T12:00")], "glucose_mg_dl": [100.0],
                                                                "source_unit": "mg/dL", "kind": "cgm"})
    carbs = carbs if carbs is not None else pd.DataFrame({"time": pd.Series([], dtype=f"datetime64[ns, {TZ}]"),
                                                          "grams": [], "absorption_min": []})
    return History(glucose=glucose, doses=doses, carbs=carbs)


def test_suspend_overrides_temp_basal_which_overrides_the_schedule():
    """Schedule 1 U/h all day; temp 3 U/h 01:00-02:00; suspend 01:30-02:30; boluses 5 + 2 U.
    Basal = 1 (00-01) + 3 x 0.5 (01-01:30) + 0 (01:30-02:30) + 21.5 x 1 = 24 U; bolus 7 U;
    basal share 24 / 31 = 77.42 %."""
    doses = _doses([("2024-05-02T00:00", "2024-05-03T00:00", "BASAL", 1.0),
                    ("2024-05-02T01:00", "2024-05-02T02:00", "TEMP_BASAL", 3.0),
                    ("2024-05-02T01:30", "2024-05-02T02:30", "SUSPEND", 0.0),
                    ("2024-05-02T07:00", "2024-05-02T07:00", "BOLUS", 5.0),
                    ("2024-05-02T15:00", "2024-05-02T15:00", "BOLUS", 2.0)])
    table = daily_insulin(_history(doses))
    assert table.index.tolist() == [pd.Timestamp("2024-05-02").date()]
    row = table.iloc[0]
    assert (row.basal_u, row.bolus_u, row.total_u) == pytest.approx((24.0, 7.0, 31.0))
    assert row.basal_percent == pytest.approx(100 * 24 / 31)
    kinds = basal_segments(doses, TZ)["kind"].tolist()
    assert kinds == ["BASAL", "TEMP_BASAL", "SUSPEND", "BASAL"]


def test_days_split_at_local_midnight_including_a_dst_day():
    """A 2 U/h temp basal 23:00-01:00 puts 2 U on each side of midnight. On 31 March 2024 Berlin's
    clock springs forward: a 1 U/h schedule from midnight to midnight delivers 23 U."""
    table = daily_insulin(_history(_doses([("2024-05-02T23:00", "2024-05-03T01:00", "TEMP_BASAL", 2.0)])))
    assert table["basal_u"].tolist() == pytest.approx([2.0, 2.0])
    dst = daily_insulin(_history(_doses([("2024-03-31T00:00", "2024-04-01T00:00", "BASAL", 1.0)])))
    assert dst["basal_u"].tolist() == pytest.approx([23.0])


def test_bad_doses_are_named():
    with pytest.raises(InvalidInputError, match="doses.type"):
        daily_insulin(_history(_doses([("2024-05-02T00:00", "2024-05-02T01:00", "SQUARE", 1.0)])))
    with pytest.raises(InvalidInputError, match="ends before it starts"):
        daily_insulin(_history(_doses([("2024-05-02T02:00", "2024-05-02T01:00", "BASAL", 1.0)])))


def test_meal_patterns_split_meal_and_correction_boluses_and_measure_the_rise():
    """Carbs 50 g at 07:10 with a 5 U bolus at 07:00 (a meal bolus, 10 min away) and a 2 U bolus
    at 15:00 (a correction). Glucose rises 1 mg/dL per minute from 110 at 07:00 to 260 at 09:30:
    the rise from 07:10 (120) to 09:10 (240) is 120 mg/dL. One day of records."""
    doses = _doses([("2024-05-02T07:00", "2024-05-02T07:00", "BOLUS", 5.0),
                    ("2024-05-02T15:00", "2024-05-02T15:00", "BOLUS", 2.0)])
    times = pd.date_range(_t("2024-05-02T07:00"), _t("2024-05-02T09:30"), freq="5min")
    glucose = pd.DataFrame({"time": times, "glucose_mg_dl": 110.0 + np.arange(times.size) * 5.0,
                            "source_unit": "mg/dL", "kind": "cgm"})
    carbs = pd.DataFrame({"time": [_t("2024-05-02T07:10")], "grams": [50.0], "absorption_min": [np.nan]})
    table = meal_patterns(_history(doses, glucose, carbs))
    breakfast, afternoon = table.loc["breakfast"], table.loc["afternoon"]
    assert breakfast.hours == "06-10"
    assert (breakfast.meals_per_day, breakfast.carbs_g_per_day, breakfast.meal_bolus_u_per_day) == (1.0, 50.0, 5.0)
    assert breakfast.corrections_per_day == 0.0
    assert (afternoon.corrections_per_day, afternoon.correction_u_per_day) == (1.0, 2.0)
    assert breakfast.post_meal_rise_mg_dl == pytest.approx(120.0)
    assert breakfast.mean_glucose_mg_dl == pytest.approx(np.mean(110.0 + np.arange(31) * 5.0))
    assert np.isnan(table.loc["night", "mean_glucose_mg_dl"])
