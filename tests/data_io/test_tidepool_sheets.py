"""Tidepool's spreadsheet export (human column titles) as CSV and as an .xlsx workbook written here."""
import json

import pandas as pd
import pytest

from pyloopkit.io import ImportFormatError, detect, read
from pyloopkit.io._build import MMOL_TO_MG_DL

pytest.importorskip("openpyxl")

# One table with a Type column; Local Time with the Timezone Offset (minutes east of UTC) across the
# 2026-03-08 spring-forward in Chicago (-360 before, -300 after).
CSV = """\
Type,Sub Type,Delivery Type,Local Time,Timezone Offset,Value,Units,Duration (mins),Rate,Normal,Extended,Carb Input
cbg,,,2026-03-07 23:55:00,-360,6.5,mmol/L,,,,,
cbg,,,2026-03-08 03:05:00,-300,120,mg/dL,,,,,
basal,,temp,2026-03-08 03:00:00,-300,,,30,0.8,,,
basal,,suspend,2026-03-08 03:30:00,-300,,,15,,,,
bolus,normal,,2026-03-08 07:00:00,-300,,,,,4.5,,
wizard,,,2026-03-08 07:00:00,-300,,,,,,,45
bolus,dual/square,,2026-03-08 12:00:00,-300,,,120,,2,3,
bolus,automated,,2026-03-08 12:30:00,-300,,,,,0.35,,
deviceEvent,,,2026-03-08 13:00:00,-300,,,,,,,
"""


def iso(series):
    return [t.isoformat() for t in series]


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "tidepool_export.csv"
    path.write_text(CSV)
    return path


def test_csv_with_titles_is_detected_and_read(csv_path):
    assert detect(csv_path) == "tidepool_sheets"
    h = read(csv_path, tz="America/Chicago")
    assert iso(h.glucose["time"]) == ["2026-03-07T23:55:00-06:00", "2026-03-08T03:05:00-05:00"]
    assert h.glucose["glucose_mg_dl"].tolist() == [6.5 * MMOL_TO_MG_DL, 120.0]
    assert h.glucose["source_unit"].tolist() == ["mmol/L", "mg/dL"]
    d = h.doses
    assert d["type"].tolist() == ["TEMP_BASAL", "SUSPEND", "BOLUS", "BOLUS", "BOLUS", "BOLUS"]
    assert iso(d["start"]) == ["2026-03-08T03:00:00-05:00", "2026-03-08T03:30:00-05:00", "2026-03-08T07:00:00-05:00",
                               "2026-03-08T12:00:00-05:00", "2026-03-08T12:00:00-05:00", "2026-03-08T12:30:00-05:00"]
    assert iso(d["end"])[:2] == ["2026-03-08T03:30:00-05:00", "2026-03-08T03:45:00-05:00"]  # 30 and 15 min
    assert d["value"].tolist()[:3] == [0.8, 0.0, 4.5]
    # dual/square: 2 U now and 3 U over 120 min; the automated (Loop) bolus 0.35 U
    square = d[(d["start"] == pd.Timestamp("2026-03-08T12:00", tz="America/Chicago"))]
    assert sorted(zip(square["value"], (square["end"] - square["start"]).dt.total_seconds())) == [(2.0, 0.0),
                                                                                                   (3.0, 7200.0)]
    assert d["value"].iloc[-1] == 0.35
    assert h.carbs["grams"].tolist() == [45.0] and iso(h.carbs["time"]) == ["2026-03-08T07:00:00-05:00"]
    assert h.skipped["reason"].tolist() == ["item type not imported"]
    assert h.skipped["record"].tolist() == ["line 10"]


def test_csv_rows_match_the_json_items(csv_path, tmp_path):
    """The same data as Tidepool JSON items (durations in ms, UTC times) gives the same tables."""
    items = [
        {"type": "cbg", "time": "2026-03-08T05:55:00Z", "value": 6.5, "units": "mmol/L"},
        {"type": "cbg", "time": "2026-03-08T08:05:00Z", "value": 120, "units": "mg/dL"},
        {"type": "basal", "deliveryType": "temp", "time": "2026-03-08T08:00:00Z", "duration": 1800000, "rate": 0.8},
        {"type": "basal", "deliveryType": "suspend", "time": "2026-03-08T08:30:00Z", "duration": 900000},
        {"type": "bolus", "subType": "normal", "time": "2026-03-08T12:00:00Z", "normal": 4.5},
        {"type": "wizard", "time": "2026-03-08T12:00:00Z", "carbInput": 45},
        {"type": "bolus", "subType": "dual/square", "time": "2026-03-08T17:00:00Z", "normal": 2, "extended": 3,
         "duration": 7200000},
        {"type": "bolus", "subType": "automated", "time": "2026-03-08T17:30:00Z", "normal": 0.35},
        {"type": "deviceEvent", "time": "2026-03-08T18:00:00Z"},
    ]
    json_path = tmp_path / "items.json"
    json_path.write_text(json.dumps(items))
    a, b = read(csv_path, tz="America/Chicago"), read(json_path, tz="America/Chicago")
    for table in ("glucose", "doses", "carbs"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))


def _workbook(path):
    """Sheets as Tidepool names them, without a Type column; Local Time without an offset."""
    t = pd.Timestamp
    sheets = {
        "CGM": pd.DataFrame({"Local Time": [t("2026-03-29 01:55"), t("2026-03-29 03:00")],
                             "Value": [5.0, 180.0], "Units": ["mmol/L", "mg/dL"]}),
        "Basal": pd.DataFrame({"Local Time": [t("2026-03-29 01:30")], "Delivery Type": ["scheduled"],
                               "Duration (mins)": [90.0], "Rate": [0.65]}),
        "Bolus": pd.DataFrame({"Local Time": [t("2026-03-29 08:00"), t("2026-03-29 09:00")],
                               "Sub Type": ["square", "normal"], "Normal": [None, 1.5], "Extended": [2.0, None],
                               "Duration (mins)": [60.0, None]}),
        "Bolus Calculator": pd.DataFrame({"Local Time": [t("2026-03-29 08:00")], "Carb Input": [30.0],
                                          "Recommended Net": [3.0]}),
        "Food": pd.DataFrame({"Local Time": [t("2026-03-29 10:00")], "Name": ["apple"],
                              "Nutrition": [json.dumps({"carbohydrate": {"net": 15, "units": "grams"},
                                                        "estimatedAbsorptionDuration": 7200})]}),
        "Upload": pd.DataFrame({"Local Time": [t("2026-03-29 11:00")], "Device Manufacturers": ["x"]}),
    }
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return path


def test_xlsx_workbook_is_detected_and_read(tmp_path):
    path = _workbook(tmp_path / "export.xlsx")
    assert detect(path) == "tidepool_sheets"
    h = read(path, tz="Europe/Berlin")  # Berlin springs forward at 02:00 on 2026-03-29
    assert iso(h.glucose["time"]) == ["2026-03-29T01:55:00+01:00", "2026-03-29T03:00:00+02:00"]
    assert h.glucose["glucose_mg_dl"].tolist() == [5.0 * MMOL_TO_MG_DL, 180.0]
    d = h.doses
    assert d["type"].tolist() == ["BASAL", "BOLUS", "BOLUS"] and d["value"].tolist() == [0.65, 2.0, 1.5]
    # 01:30 CET + 90 min of real time = 04:00 CEST
    assert iso(d["end"]) == ["2026-03-29T04:00:00+02:00", "2026-03-29T09:00:00+02:00", "2026-03-29T09:00:00+02:00"]
    assert h.carbs["grams"].tolist() == [30.0, 15.0]
    assert h.carbs["absorption_min"].iloc[1] == 120.0
    assert h.skipped["record"].tolist() == ["sheet 'Upload' row 2"]
    assert h.skipped["reason"].tolist() == ["item type not imported"]


def test_glucose_without_units_names_the_row(tmp_path):
    path = tmp_path / "no_units.csv"
    path.write_text("Type,Local Time,Value\ncbg,2026-03-08 03:05:00,120\n")
    with pytest.raises(ImportFormatError, match=r"no_units.csv, line 2, field 'Units'"):
        read(path)


def test_bad_time_and_damaged_workbook(tmp_path):
    path = tmp_path / "bad_time.csv"
    path.write_text("Type,Local Time,Value,Units\ncbg,yesterday,120,mg/dL\n")
    with pytest.raises(ImportFormatError, match=r"line 2, field 'Local Time': 'yesterday'"):
        read(path)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(_workbook(tmp_path / "ok.xlsx").read_bytes()[:600])  # truncated zip
    assert detect(broken) == "tidepool_sheets"
    with pytest.raises(ImportFormatError, match="broken.xlsx, workbook.*not a readable .xlsx"):
        read(broken)
