"""History methods: slice, resample, to_input_dict (-> update), replay, Tune request, CSV round trip."""
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pyloopkit.errors import MissingDataError
from pyloopkit.io import History, read, replay
from pyloopkit.io.tune_request import basal_timeline, decode, encode

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

DATA = Path(__file__).parent / "data"
TZ = "America/Chicago"
SETTINGS = {
    "basal_rate_start_times": ["00:00:00", "06:00:00"], "basal_rate_values": [0.8, 1.0],
    "carb_ratio_start_times": ["00:00:00"], "carb_ratio_values": [10.0],
    "sensitivity_ratio_start_times": ["00:00:00"], "sensitivity_ratio_values": [50.0],
    "target_range_start_times": ["00:00:00"], "target_range_minimum_values": [100.0],
    "target_range_maximum_values": [110.0],
    "settings_dictionary": {"model": [360.0, 75.0], "max_basal_rate": 4.0, "max_bolus": 10.0,
                            "suspend_threshold": 75.0, "retrospective_correction_enabled": True},
    "timezone": TZ,
}


def synthetic(days: float = 2.0) -> History:
    """CGM every 5 min (a daily sine), a temp basal every 30 min, a meal bolus three times a day."""
    start = pd.Timestamp("2026-03-07T00:00", tz=TZ)  # crosses the 2026-03-08 spring-forward in Chicago
    times = start + pd.to_timedelta(np.arange(int(days * 288)) * 5, unit="min")
    hours = np.arange(times.size) * 5 / 60
    glucose = pd.DataFrame({"time": times, "glucose_mg_dl": 130 + 40 * np.sin(2 * np.pi * hours / 24),
                            "source_unit": "mg/dL", "kind": "cgm"})
    temp_starts = start + pd.to_timedelta(np.arange(int(days * 48)) * 30, unit="min")
    temps = pd.DataFrame({"start": temp_starts, "end": temp_starts + pd.Timedelta(minutes=30), "type": "TEMP_BASAL",
                          "value": 0.5 + 0.05 * (np.arange(temp_starts.size) % 10), "unit": "U/h"})
    meal_times = pd.DatetimeIndex([start + pd.Timedelta(days=d, hours=h) for d in range(int(days)) for h in (7, 12, 18)])
    boluses = pd.DataFrame({"start": meal_times, "end": meal_times, "type": "BOLUS", "value": 4.0, "unit": "U"})
    carbs = pd.DataFrame({"time": meal_times, "grams": 40.0, "absorption_min": 180.0})
    doses = pd.concat([temps, boluses]).sort_values("start", kind="stable").reset_index(drop=True)
    return History(glucose=glucose, doses=doses, carbs=carbs, settings=dict(SETTINGS), source="synthetic")


def test_to_input_dict_window_offset_and_update_runs():
    from pyloopkit.loop_data_manager import update

    h = synthetic()
    at = "2026-03-08T12:02:00"  # local (CDT, -05:00, after the spring-forward)
    d = h.to_input_dict(at=at)
    assert d["time_to_calculate_at"].isoformat() == "2026-03-08T12:02:00-05:00"
    assert d["glucose_dates"][-1].isoformat() == "2026-03-08T12:00:00-05:00"
    assert all(t.utcoffset() == dt.timedelta(hours=-5) for t in d["glucose_dates"])
    # readings after at - 24 h (real time, 11:02 CST the day before): 11:05 CST to 12:00 CDT
    assert d["glucose_dates"][0].isoformat() == "2026-03-07T12:05:00-05:00" and len(d["glucose_dates"]) == 288
    assert d["last_temporary_basal"][0].name == "TEMP_BASAL" and d["last_temporary_basal"][3] == pytest.approx(
        h.doses[(h.doses["type"] == "TEMP_BASAL")].set_index("start").loc[pd.Timestamp("2026-03-08T12:00", tz=TZ), "value"])
    assert max(d["dose_start_times"]) <= d["time_to_calculate_at"]
    out = update(d)
    assert np.isfinite(out["predicted_glucose_values"]).all() and out["recommended_temp_basal"] is not None
    assert out["insulin_on_board"] > 0


def test_to_input_dict_from_a_loop_report_runs_update():
    from pyloopkit.loop_data_manager import update

    out = update(read(DATA / "loop_report.md").to_input_dict())
    assert out["predicted_glucose_values"][0] == pytest.approx(7.2 * 18.01559)


def test_to_input_dict_names_missing_settings():
    h = read(DATA / "ohio.xml", tz="Europe/Berlin")
    with pytest.raises(MissingDataError, match="carb_ratio_start_times"):
        h.to_input_dict()
    d = h.to_input_dict(settings={k: v for k, v in SETTINGS.items() if k != "timezone"})
    assert d["settings_dictionary"]["max_bolus"] == 10.0


def test_slice_clips_basals_and_keeps_boluses_inside():
    h = synthetic()
    s = h.slice("2026-03-07T06:45", "2026-03-07T07:10")
    assert [t.strftime("%H:%M") for t in s.glucose["time"]] == ["06:45", "06:50", "06:55", "07:00", "07:05"]
    assert s.doses["start"].min().strftime("%H:%M") == "06:45" and s.doses["end"].max().strftime("%H:%M") == "07:10"
    assert s.doses[s.doses["type"] == "BOLUS"]["value"].tolist() == [4.0] and s.carbs["grams"].tolist() == [40.0]
    assert len(h.glucose) == 576  # the original is untouched


def test_resample_means_per_bin():
    g = pd.DataFrame({"time": pd.to_datetime(["2026-03-01T08:01", "2026-03-01T08:04", "2026-03-01T08:16",
                                              "2026-03-01T08:17"]).tz_localize("UTC"),
                      "glucose_mg_dl": [100.0, 110.0, 120.0, 125.0], "source_unit": "mg/dL",
                      "kind": ["cgm", "cgm", "cgm", "smbg"]})
    r = History(glucose=g).resample(15)
    assert r.glucose["glucose_mg_dl"].tolist() == [105.0, 120.0, 125.0]
    assert [t.strftime("%H:%M") for t in r.glucose["time"]] == ["08:00", "08:15", "08:17"]
    assert r.glucose["kind"].tolist() == ["cgm", "cgm", "smbg"]


def test_replay_in_chunks_equals_one_replay():
    h = synthetic(1.5)
    whole = replay(h, start="2026-03-07T18:00", end="2026-03-08T08:00", step_minutes=60, chunk_days=10)
    chunked = replay(h, start="2026-03-07T18:00", end="2026-03-08T08:00", step_minutes=60, chunk_days=0.25)
    assert len(whole) == len(chunked) == 14  # 18:00 CST to 08:00 CDT is 13 h of real time: 14 steps
    for column in ("glucose", "iob", "cob", "predicted_60"):
        np.testing.assert_allclose(chunked[column].astype(float), whole[column].astype(float), rtol=0, atol=1e-9)


def test_encode_decode_hand_computed():
    assert encode([10, 12, 14, 14, 15]) == [10, 2, 2, 0, 1]
    assert encode([10, 12, 14, 14, 15], run_length_encoding=True) == [10, [2, 2], 0, 1]
    assert encode([]) == [] and decode([]) == []
    assert decode([10, [2, 2], 0, 1]) == [10.0, 12.0, 14.0, 14.0, 15.0]
    values = [0.1, 0.35, 0.35, 0.35, 1.25]
    np.testing.assert_allclose(decode(encode(values)), values, atol=1e-12)


def test_tune_request_layout_and_basal_fill():
    h = synthetic(1.0)
    req = h.to_tune_request()
    assert req["version"] == 1 and req["timezone"] == TZ
    assert req["basal_rate_schedule"] == {"index": [0, 360], "values": [0.8, 1.0]}
    timelines = {t["type"]: t for t in req["timelines"]}
    assert set(timelines) == {"basal", "insulin", "carb", "glucose"}
    assert timelines["basal"]["parameters"] == {"delay": 10.0, "peak": 75.0, "duration": 360.0}
    glucose_index = decode(timelines["glucose"]["index"])
    assert glucose_index[0] == h.glucose["time"].iloc[0].timestamp() and len(glucose_index) == 288
    assert timelines["glucose"]["index"][1:] == [300] * 287  # every 5 min
    np.testing.assert_allclose(decode(timelines["glucose"]["values"]), h.glucose["glucose_mg_dl"], atol=1e-9)
    assert decode(timelines["insulin"]["values"]) == [4000.0, 4000.0, 4000.0]  # mU
    # temp basals cover the whole day: no scheduled fill needed; delivered insulin in U
    rates = np.array(decode(timelines["basal"]["values"])) / 1000
    hours = np.array(decode(timelines["basal"]["durations"])) / 3600
    assert timelines["basal"]["durations"] == [1800] + [0] * 47  # 48 half-hour temp basals, delta encoded
    assert (rates * hours).sum() == pytest.approx(h.doses.query("type == 'TEMP_BASAL'")
                                                  .eval("value * 0.5").sum())


def test_basal_timeline_fills_gaps_with_the_schedule():
    h = synthetic(1.0)
    h.doses = h.doses[(h.doses["type"] != "TEMP_BASAL") | (h.doses["start"] >= pd.Timestamp("2026-03-07T12:00", tz=TZ))]
    rows = basal_timeline(h)
    start, rate, duration = zip(*rows)
    # 00:00-06:00 at 0.8 U/h and 06:00-12:00 at 1.0 U/h from the schedule, then the temp basals
    assert duration[:2] == (6 * 3600.0, 6 * 3600.0) and rate[:2] == (0.8, 1.0)
    assert sum(duration) == pytest.approx(24 * 3600.0)  # no gap, no overlap: the last temp basal ends at 24:00


@pytest.mark.parametrize("name, kw", [("loop_report.md", {}), ("tidepool.json", {}), ("clarity.csv", {"tz": TZ}),
                                      ("ohio.xml", {"tz": "Europe/Berlin"}), ("plain.csv", {}),
                                      ("libreview_mmol.csv", {"tz": "Europe/London"}), ("tidepool.csv", {})])
def test_csv_round_trip(tmp_path, name, kw):
    h = read(DATA / name, **kw)
    back = History.from_csv(h.to_csv(tmp_path / "h"))
    for table in ("glucose", "doses", "carbs", "skipped"):
        pd.testing.assert_frame_equal(getattr(back, table), getattr(h, table))
    assert back.settings == json.loads(json.dumps(h.settings)) and back.app_output == h.app_output
    assert str(back.tz) == str(h.tz) and back.source == h.source
    assert read(tmp_path / "h").glucose.equals(h.glucose)  # read() detects the folder


def test_to_input_dict_follows_the_settings_timeline():
    h = synthetic(2.0)
    newer = {**SETTINGS, "basal_rate_values": [0.9, 1.2]}
    h.settings = {**newer, "timeline": [{"start": "2026-03-01T00:00:00-06:00", "settings": SETTINGS},
                                        {"start": "2026-03-08T00:00:00-06:00", "settings": newer}]}
    assert h.to_input_dict(at="2026-03-07T20:00")["basal_rate_values"] == [0.8, 1.0]
    d = h.to_input_dict(at="2026-03-08T10:00")
    assert d["basal_rate_values"] == [0.9, 1.2] and "timeline" not in d and "timezone" not in d


def test_tune_request_fixed_offset_zone_in_gmt_form():
    req = read(DATA / "loop_report.md").to_tune_request()
    assert req["timezone"] == "GMT-0500"
    assert req["carb_ratio_schedule"] == {"index": [0, 720], "values": [10.0, 12.0]}
    assert decode(req["timelines"][0]["durations"])[0] == 1800.0  # the temp basal 07:00-07:30


def test_repr_is_one_line():
    assert repr(read(DATA / "tidepool.json")).endswith(
        "3 readings, 6 doses, 2 carb entries, 5 skipped, zone America/New_York)")


def test_csv_round_trip_sub_second_times_and_offsets(tmp_path):
    times = pd.to_datetime(["2026-10-25T00:30:00.250+00:00", "2026-10-25T01:30:00.000000001+00:00"],
                           format="ISO8601").tz_convert("Europe/Berlin")  # 02:30 CEST, then 02:30 CET
    g = pd.DataFrame({"time": times, "glucose_mg_dl": [100.0, 101.5], "source_unit": "mg/dL", "kind": "cgm"})
    h = History(glucose=g, source="x")
    back = History.from_csv(h.to_csv(tmp_path / "h"))
    pd.testing.assert_frame_equal(back.glucose, h.glucose.astype({"source_unit": back.glucose["source_unit"].dtype,
                                                                  "kind": back.glucose["kind"].dtype}))
    assert (tmp_path / "h" / "glucose.csv").read_text().splitlines()[1].startswith(
        "2026-10-25T02:30:00.250000000+02:00")
