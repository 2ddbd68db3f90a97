"""Nightscout exports (files, folder) and the REST API against a local server with recorded responses."""
import json

import pytest

from pyloopkit.io import ImportFormatError, detect, read
from pyloopkit.io._build import MMOL_TO_MG_DL
from tests.data_io.nightscout_data import ENTRIES, PROFILE, TREATMENTS


def write_export(folder):
    for name, docs in (("entries", ENTRIES), ("treatments", TREATMENTS), ("profile", PROFILE)):
        (folder / f"{name}.json").write_text(json.dumps(docs))
    return folder


def check_history(h):
    # the profile's zone; 2026-03-29 is the spring-forward day in Berlin (01:00 UTC = 03:00 CEST)
    assert str(h.tz) == "Europe/Berlin"
    assert [t.isoformat() for t in h.glucose["time"]] == [
        "2026-03-29T01:00:00+01:00", "2026-03-29T03:05:00+02:00", "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:25:00+02:00", "2026-03-29T03:45:00+02:00"]
    assert h.glucose["kind"].tolist() == ["cgm", "smbg", "cgm", "cgm", "smbg"]
    assert h.glucose["glucose_mg_dl"].iloc[-1] == pytest.approx(7.5 * MMOL_TO_MG_DL)
    d = h.doses
    temps = d[d["type"] == "TEMP_BASAL"]
    assert temps["value"].tolist() == [1.2, 0.4]
    # the first temp basal is cut by the second, the second by the 0-min cancel at 00:40 UTC
    assert ((temps["end"] - temps["start"]).dt.total_seconds() / 60).tolist() == [20.0, 20.0]
    bolus = d[d["type"] == "BOLUS"]
    assert bolus["value"].tolist() == [1.5, 4.0, 2.0, pytest.approx(1.2)]  # combo: 1.2 U/h for 60 min
    assert ((bolus["end"] - bolus["start"]).dt.total_seconds() / 60).tolist() == [0, 0, 0, 60]
    assert d[d["type"] == "SUSPEND"]["value"].tolist() == [0.0]
    assert h.carbs["grams"].tolist() == [45.0, 15.0] and h.carbs["absorption_min"].iloc[0] == 180.0
    s = h.settings
    assert s["basal_rate_start_times"] == ["00:00:00", "06:30:00"] and s["basal_rate_values"] == [0.9, 1.1]
    assert s["sensitivity_ratio_values"] == pytest.approx([2.5 * MMOL_TO_MG_DL])
    assert s["target_range_maximum_values"] == pytest.approx([6.0 * MMOL_TO_MG_DL])
    assert s["settings_dictionary"]["model"] == [300.0, 75.0]
    assert s["settings_dictionary"]["suspend_threshold"] == pytest.approx(4.0 * MMOL_TO_MG_DL)
    assert s["settings_dictionary"]["max_basal_rate"] == 3.5
    assert [e["start"] for e in s["timeline"]] == ["2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"]
    assert h.settings_at("2025-06-01T00:00")["settings_dictionary"] == {"model": [240.0, 75.0]}
    reasons = h.skipped["reason"].tolist()
    for expected in ("entry type not imported (only sgv and mbg)", "temp basal given only as a percent",
                     "event type not imported", "unknown event type",
                     "zero-length basal (it only ends the running temp basal)"):
        assert expected in reasons
    assert "duplicate reading (same time, kind): the first is kept" in reasons
    assert reasons.count("cut short by the next temp basal or suspend") == 2


def test_export_folder(tmp_path):
    folder = write_export(tmp_path)
    assert detect(folder) == "nightscout"
    check_history(read(folder))


def test_single_files_are_detected(tmp_path):
    write_export(tmp_path)
    assert detect(tmp_path / "treatments.json") == "nightscout"
    h = read(tmp_path / "entries.json")
    assert len(h.glucose) == 4 and h.doses.empty and h.settings == {}


def test_truncated_export(tmp_path):
    (tmp_path / "entries.json").write_text(json.dumps(ENTRIES)[:-30])
    with pytest.raises(ImportFormatError, match="entries.json, line 1.*truncated"):
        read(tmp_path / "entries.json", format="nightscout")


def test_bad_value_names_the_record(tmp_path):
    bad = [dict(ENTRIES[0], sgv="high")]
    (tmp_path / "entries.json").write_text(json.dumps(bad))
    with pytest.raises(ImportFormatError, match=r"entries\[0\], field 'sgv': 'high': not a number"):
        read(tmp_path / "entries.json")


def test_rest_api(site):
    import datetime as dt

    now = dt.datetime(2026, 3, 30, tzinfo=dt.timezone.utc)
    h = read(site.url, token="secret-1", days=2, now=now)
    assert h.source == site.url
    check_history(h)
    paths = [p for p, _ in site.queries]
    assert paths == ["/api/v1/entries.json", "/api/v1/treatments.json", "/api/v1/profile.json"]
    entries_query = site.queries[0][1]
    assert entries_query["find[date][$gte]"] == [str(int((now - dt.timedelta(days=2)).timestamp() * 1000))]
    assert site.queries[1][1]["find[created_at][$gte]"] == ["2026-03-28T00:00:00.000Z"]


def test_rest_api_paging(site, monkeypatch):
    import pyloopkit.io.nightscout as ns

    monkeypatch.setattr(ns, "PAGE", 3)  # a full page asks for the older records before the oldest seen
    read(site.url, token="secret-1", days=2)
    entry_queries = [q for p, q in site.queries if p.endswith("entries.json")]
    assert len(entry_queries) == 2 and entry_queries[1]["find[date][$lt]"] == ["1774742400000"]


def test_rest_api_wrong_token(site):
    with pytest.raises(ImportFormatError, match="HTTP 401.*unauthorized"):
        read(site.url, token="wrong", days=1)


def test_fast_paths_equal_the_record_by_record_reader(tmp_path, monkeypatch):
    """The vectorised reading of plain sgv entries and temp basals gives what the one-by-one reader gives."""
    import numpy as np
    import pandas as pd

    import pyloopkit.io.nightscout as ns

    rng = np.random.default_rng(3)
    t0 = 1774742400000
    entries = ENTRIES + [{"type": "sgv", "sgv": float(v), "date": t0 + 300000 * k + int(rng.integers(0, 1000))}
                         for k, v in enumerate(rng.uniform(5, 450, 500))]  # some out of range
    treatments = TREATMENTS + [
        {"eventType": "Temp Basal", "created_at": pd.Timestamp(t0 + 600000 * k + int(rng.integers(-200000, 200000)),
                                                               unit="ms", tz="UTC").isoformat(),
         "absolute": float(r), "duration": float(d)}
        for k, (r, d) in enumerate(zip(rng.uniform(-0.2, 3, 300), rng.choice([0, 10, 30], 300)))]
    docs = {"entries": entries, "treatments": treatments, "profile": PROFILE}
    fast = ns.parse(docs, "x")
    monkeypatch.setattr(ns, "fast_entries", lambda c, e: list(range(len(e))))
    monkeypatch.setattr(ns, "fast_temp_basals", lambda c, t: list(range(len(t))))
    slow = ns.parse(docs, "x")
    for table in ("glucose", "doses", "carbs"):
        pd.testing.assert_frame_equal(getattr(fast, table), getattr(slow, table))
    key = ["record", "field", "reason"]
    assert sorted(map(tuple, fast.skipped[key].values)) == sorted(map(tuple, slow.skipped[key].values))
    assert (fast.skipped["reason"] == "negative insulin").sum() > 10


def test_csv_round_trip_keeps_the_settings_timeline(tmp_path):
    import pandas as pd

    from pyloopkit.io import History

    h = read(write_export(tmp_path))
    back = History.from_csv(h.to_csv(tmp_path / "h"))
    for table in ("glucose", "doses", "carbs", "skipped"):
        pd.testing.assert_frame_equal(getattr(back, table), getattr(h, table))
    assert back.settings == h.settings and str(back.tz) == "Europe/Berlin"


@pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")
def test_update_runs_on_the_nightscout_history(tmp_path):
    from pyloopkit.loop_data_manager import update

    h = read(write_export(tmp_path))
    d = h.to_input_dict(at="2026-03-29T03:30")  # local (CEST)
    assert d["time_to_calculate_at"].isoformat() == "2026-03-29T03:30:00+02:00"
    assert d["sensitivity_ratio_values"] == pytest.approx([2.5 * MMOL_TO_MG_DL])
    out = update(d)
    # boluses of 1.5 + 4 + 2 U in the 2.5 h before `at` (the combo's extended part only starts at `at`)
    assert 3.0 < out["insulin_on_board"] < 8.7 and out["carbs_on_board"] > 0
