"""Nightscout exports (files, folder) and the REST API against a local server with recorded responses."""
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pyloopkit.io import ImportFormatError, detect, read
from pyloopkit.io._build import MMOL_TO_MG_DL

ENTRIES = [  # newest first, as Nightscout answers; one duplicate, one calibration record
    {"type": "sgv", "sgv": 140, "date": 1774747500000, "dateString": "2026-03-29T01:25:00.000Z"},
    {"type": "sgv", "sgv": 135, "date": 1774746900000, "dateString": "2026-03-29T01:15:00.000Z"},
    {"type": "sgv", "sgv": 135, "date": 1774746900000, "dateString": "2026-03-29T01:15:00.000Z"},
    {"type": "cal", "slope": 1000, "date": 1774746600000},
    {"type": "mbg", "mbg": 128, "date": 1774746300000},
    {"type": "sgv", "sgv": 130, "date": 1774742400000, "dateString": "2026-03-29T00:00:00.000Z"},
]
TREATMENTS = [
    {"eventType": "Temp Basal", "created_at": "2026-03-29T00:00:00.000Z", "absolute": 1.2, "rate": 1.2, "duration": 30},
    {"eventType": "Temp Basal", "created_at": "2026-03-29T00:20:00.000Z", "absolute": 0.4, "duration": 30},
    {"eventType": "Temp Basal", "created_at": "2026-03-29T00:40:00.000Z", "absolute": 0, "duration": 0},
    {"eventType": "Temp Basal", "created_at": "2026-03-29T00:45:00.000Z", "percent": -50, "duration": 30},
    {"eventType": "Correction Bolus", "created_at": "2026-03-29T00:05:00.000Z", "insulin": 1.5},
    {"eventType": "Meal Bolus", "created_at": "2026-03-29T01:00:00.000Z", "insulin": 4.0, "carbs": 45,
     "absorptionTime": 180},
    {"eventType": "Combo Bolus", "created_at": "2026-03-29T01:30:00.000Z", "insulin": 2.0, "relative": 1.2,
     "duration": 60},
    {"eventType": "Carb Correction", "created_at": "2026-03-29T01:40:00.000Z", "carbs": 15},
    {"eventType": "BG Check", "created_at": "2026-03-29T01:45:00.000Z", "glucose": 7.5, "units": "mmol"},
    {"eventType": "Suspend Pump", "created_at": "2026-03-29T02:00:00.000Z", "duration": 15},
    {"eventType": "Site Change", "created_at": "2026-03-29T02:30:00.000Z"},
    {"eventType": "Mystery", "created_at": "2026-03-29T02:35:00.000Z"},
]
PROFILE = [
    {"defaultProfile": "Default", "startDate": "2026-01-01T00:00:00.000Z", "store": {"Default": {
        "dia": 5, "units": "mmol", "timezone": "Europe/Berlin",
        "basal": [{"time": "00:00", "value": 0.9, "timeAsSeconds": 0}, {"time": "06:30", "value": 1.1}],
        "carbratio": [{"time": "00:00", "value": 11}],
        "sens": [{"time": "00:00", "value": 2.5}],
        "target_low": [{"time": "00:00", "value": 5.5}], "target_high": [{"time": "00:00", "value": 6.0}]}},
     "loopSettings": {"maximumBasalRatePerHour": 3.5, "maximumBolus": 8, "minimumBGGuard": 4.0}},
    {"defaultProfile": "Old", "startDate": "2025-01-01T00:00:00.000Z", "store": {"Old": {"dia": 4}}},
]


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
    reasons = h.skipped["reason"].tolist()
    for expected in ("entry type not imported (only sgv and mbg)", "temp basal given only as a percent",
                     "event type not imported", "unknown event type", "older profile (the newest one is used)",
                     "zero-length basal (it only ends the running temp basal)"):
        assert expected in reasons
    assert any(r.startswith("duplicate reading") for r in reasons)
    assert sum(r.startswith("cut to") for r in reasons) == 2


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


class _Recorded(BaseHTTPRequestHandler):
    """Serves the recorded collections; remembers the queries; 401 without the token."""

    queries: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        type(self).queries.append((url.path, query))
        if query.get("token") != ["secret-1"]:
            self.send_response(401)
            self.end_headers()
            return
        name = url.path.rsplit("/", 1)[-1].removesuffix(".json")
        docs = {"entries": ENTRIES, "treatments": TREATMENTS, "profile": PROFILE}[name]
        if "find[date][$lt]" in query or "find[created_at][$lt]" in query:
            docs = []
        body = json.dumps(docs).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    server = HTTPServer(("127.0.0.1", 0), _Recorded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorded.queries = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_rest_api(site):
    import datetime as dt

    now = dt.datetime(2026, 3, 30, tzinfo=dt.timezone.utc)
    h = read(site, token="secret-1", days=2, now=now)
    assert h.source == site
    check_history(h)
    paths = [p for p, _ in _Recorded.queries]
    assert paths == ["/api/v1/entries.json", "/api/v1/treatments.json", "/api/v1/profile.json"]
    entries_query = _Recorded.queries[0][1]
    assert entries_query["find[date][$gte]"] == [str(int((now - dt.timedelta(days=2)).timestamp() * 1000))]
    assert _Recorded.queries[1][1]["find[created_at][$gte]"] == ["2026-03-28T00:00:00.000Z"]


def test_rest_api_paging(site, monkeypatch):
    import pyloopkit.io.nightscout as ns

    monkeypatch.setattr(ns, "PAGE", 3)  # a full page asks for the older records before the oldest seen
    read(site, token="secret-1", days=2)
    entry_queries = [q for p, q in _Recorded.queries if p.endswith("entries.json")]
    assert len(entry_queries) == 2 and entry_queries[1]["find[date][$lt]"] == ["1774742400000"]


def test_rest_api_wrong_token(site):
    with pytest.raises(ImportFormatError, match="HTTP 401.*unauthorized"):
        read(site, token="wrong", days=1)


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
