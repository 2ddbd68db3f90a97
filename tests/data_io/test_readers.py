"""Each reader on a small hand-made file: values, units, zones, DST, Low/High, duplicates, overlaps, errors."""
import math
from pathlib import Path

import pytest

from pyloopkit.io import ImportFormatError, detect, read
from pyloopkit.io._build import MMOL_TO_MG_DL

DATA = Path(__file__).parent / "data"


def iso(series):
    return [t.isoformat() for t in series]


def reasons(history):
    return list(history.skipped["reason"])


@pytest.mark.parametrize("name, fmt", [("loop_report.md", "loop_report"), ("clarity.csv", "clarity"),
                                       ("libreview_mmol.csv", "libreview"), ("tidepool.json", "tidepool"),
                                       ("tidepool.csv", "tidepool"), ("ohio.xml", "ohio"), ("plain.csv", "csv")])
def test_detect(name, fmt):
    assert detect(DATA / name) == fmt


def test_unknown_format_names_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(ImportFormatError, match="notes.txt.*unknown format"):
        read(path)


# ------------------------------------------------------------------------------------------ Loop report

def test_loop_report_tables_settings_and_app_output():
    h = read(DATA / "loop_report.md")
    assert str(h.tz) == "UTC-05:00"  # the basal profile's timeZone, -18000 s
    assert iso(h.glucose["time"]) == ["2026-03-02T07:15:00-05:00", "2026-03-02T07:20:00-05:00",
                                      "2026-03-02T07:25:00-05:00"]
    assert list(h.glucose["kind"]) == ["cgm", "cgm", "smbg"]
    assert h.glucose["glucose_mg_dl"].iloc[2] == pytest.approx(7.2 * MMOL_TO_MG_DL)
    # the temp basal is recorded in U over 30 min: 0.5 U / 0.5 h = 1.0 U/h
    temp = h.doses[h.doses["type"] == "TEMP_BASAL"].iloc[0]
    assert temp["value"] == pytest.approx(1.0) and temp["unit"] == "U/h"
    assert h.doses[h.doses["type"] == "BOLUS"]["value"].tolist() == [3.0]
    assert h.carbs["grams"].tolist() == [30.0, 12.0]
    assert h.carbs["absorption_min"].iloc[0] == 180.0 and math.isnan(h.carbs["absorption_min"].iloc[1])
    s = h.settings
    assert s["basal_rate_start_times"] == ["00:00:00", "06:00:00"] and s["basal_rate_values"] == [0.8, 1.1]
    assert s["carb_ratio_values"] == [10.0, 12.0] and s["sensitivity_ratio_values"] == [45.0]
    assert s["target_range_minimum_values"] == [100.0, 90.0] and s["target_range_maximum_values"] == [110.0, 100.0]
    assert s["settings_dictionary"] == {"model": [360.0, 75.0], "default_absorption_times": [30.0, 180.0, 300.0],
                                        "max_basal_rate": 4.0, "max_bolus": 10.0, "suspend_threshold": 70.0,
                                        "retrospective_correction_enabled": True,
                                        "pump_rounding": "default"}  # MinimedPumpManager without pumpModel
    out = h.app_output
    assert out["predicted_glucose"][1] == ["2026-03-02T12:30:00+00:00", 133.5]
    assert out["recommended_temp_basal"] == {"rate_u_per_h": 1.35, "duration_min": 30.0,
                                             "date": "2026-03-02T12:30:00+00:00"}
    assert out["recommended_bolus"]["amount_u"] == 0.4 and out["loop_version"] == "Loop v2.2.4"
    assert sorted(reasons(h)) == sorted([
        "display-only (calibration) sample", "resume marks the end of a suspend (not a dose)",
        "another dose list is used (getNormalizedDoseEntries)",
        "duplicate reading (same time, kind): the first is kept"])
    assert h.skipped["value"].iloc[-1] == "128 at 2026-03-02T07:20:00-05:00"


def test_loop_report_truncated_line_names_line_and_field(tmp_path):
    text = (DATA / "loop_report.md").read_text().replace(
        "startDate: 2026-03-02 12:28:00 +0000, quantity: 12 g,", "startDate: 2026-03-02 12:28:00 +0000")
    text = text.split("* StoredCarbEntry(sampleUUID: C2")[0] + "* StoredCarbEntry(sampleUUID: C2, startDate: 2026-03-02\n"
    path = tmp_path / "cut.md"
    path.write_text(text)
    with pytest.raises(ImportFormatError) as e:
        read(path)
    assert e.value.source.endswith("cut.md") and e.value.field == "quantity"
    assert str(e.value).startswith("cut.md, line ")


# ------------------------------------------------------------------------------------------ Clarity

def test_clarity_dst_fall_back_low_high_and_events():
    h = read(DATA / "clarity.csv", tz="America/New_York")
    # 01:50 is before the clock steps back (EDT, -04:00); 01:10 after it (EST, -05:00), in file order
    assert iso(h.glucose["time"]) == ["2026-11-01T01:50:00-04:00", "2026-11-01T01:10:00-05:00",
                                      "2026-11-01T01:20:00-05:00"]
    assert (h.glucose["time"].diff().dt.total_seconds().iloc[1:] > 0).all()  # strictly increasing instants
    assert list(h.glucose["kind"]) == ["cgm", "cgm", "smbg"]
    assert h.doses["value"].tolist() == [3.5] and h.carbs["grams"].tolist() == [45.0]
    r = reasons(h)
    assert r.count("header row (patient or device information)") == 3
    assert sum("below its range (<40 mg/dL)" in x for x in r) == 1 and sum("above its range (>400" in x for x in r) == 1
    assert "long-acting insulin (not a pump dose)" in r and "event type not imported" in r


def test_clarity_low_high_as_limits():
    h = read(DATA / "clarity.csv", tz="America/New_York", low_high="limit")
    assert h.glucose[h.glucose["kind"] == "cgm"]["glucose_mg_dl"].tolist() == [101.0, 40.0, 99.0, 400.0]


def test_clarity_bad_value_names_line_and_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text((DATA / "clarity.csv").read_text().replace(",101,", ",1O1,"))
    with pytest.raises(ImportFormatError, match=r"c.csv, line 5, field 'Glucose Value \(mg/dL\)': '1O1': not a number"):
        read(path, tz="America/New_York")


def test_clarity_truncated_row(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text((DATA / "clarity.csv").read_text()[:-40])
    with pytest.raises(ImportFormatError, match="c.csv, line 13"):
        read(path, tz="America/New_York")


# ------------------------------------------------------------------------------------------ LibreView

def test_libreview_mmol_day_first_and_records():
    h = read(DATA / "libreview_mmol.csv", tz="Europe/London")
    assert iso(h.glucose["time"]) == ["2026-03-13T07:00:00+00:00", "2026-03-13T07:15:00+00:00",
                                      "2026-03-13T07:40:00+00:00"]
    assert h.glucose["glucose_mg_dl"].tolist() == pytest.approx([5.5 * MMOL_TO_MG_DL, 6.1 * MMOL_TO_MG_DL,
                                                                 7.0 * MMOL_TO_MG_DL])
    assert set(h.glucose["source_unit"]) == {"mmol/L"} and list(h.glucose["kind"]) == ["cgm", "cgm", "smbg"]
    assert h.doses["value"].tolist() == [4.5] and h.carbs["grams"].tolist() == [50.0]
    assert len(h.skipped) == 4  # LO, HI, long-acting insulin, time change


def test_libreview_limits_in_mg_dl():
    h = read(DATA / "libreview_mmol.csv", tz="Europe/London", low_high="limit")
    assert sorted(h.glucose[h.glucose["kind"] == "cgm"]["glucose_mg_dl"])[0] == 40.0
    assert sorted(h.glucose["glucose_mg_dl"])[-1] == 500.0


def test_libreview_summer_time_offset(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text((DATA / "libreview_mmol.csv").read_text().replace("-03-2026", "-07-2026"))
    h = read(path, tz="Europe/London")
    assert h.glucose["time"].iloc[0].isoformat() == "2026-07-13T07:00:00+01:00"


# ------------------------------------------------------------------------------------------ Tidepool

def test_tidepool_json():
    h = read(DATA / "tidepool.json")
    assert str(h.tz) == "America/New_York"  # from the upload's timezone
    assert h.glucose["glucose_mg_dl"].tolist() == pytest.approx([6.66 * MMOL_TO_MG_DL, 7.0 * MMOL_TO_MG_DL, 130.0])
    d = h.doses
    assert d["type"].tolist() == ["BASAL", "TEMP_BASAL", "BOLUS", "SUSPEND", "BOLUS", "BOLUS"]
    # the temp basal is cut at the suspend 20 min later; the dual bolus is 1 U now + 1.5 U over 1 h
    assert (d["end"] - d["start"]).dt.total_seconds().tolist() == [3600, 1200, 0, 600, 0, 3600]
    assert d["value"].tolist() == [0.8, 1.2, 2.0, 0.0, 1.0, 1.5]
    assert h.carbs["grams"].tolist() == [36.0, 15.0] and h.carbs["absorption_min"].iloc[1] == 120.0
    s = h.settings
    assert s["basal_rate_values"] == [0.8, 1.0] and s["basal_rate_start_times"] == ["00:00:00", "06:00:00"]
    assert s["sensitivity_ratio_values"] == pytest.approx([2.5 * MMOL_TO_MG_DL])
    assert s["target_range_minimum_values"] == pytest.approx([5.5 * MMOL_TO_MG_DL])
    r = reasons(h)
    assert r.count("item type not imported") == 2 and len(r) == 5
    timeline = s["timeline"]
    assert [e["start"] for e in timeline] == ["2026-03-01T00:00:00+00:00", "2026-03-02T08:00:00+00:00"]
    assert timeline[0]["settings"]["basal_rate_values"] == [0.5] and timeline[1]["settings"]["basal_rate_values"] == [0.8, 1.0]
    assert h.settings_at("2026-03-01T12:00")["basal_rate_values"] == [0.5]
    assert h.settings_at("2026-03-02T08:00Z")["basal_rate_values"] == [0.8, 1.0]
    assert "basal without a duration (still running at export?)" in r


def test_tidepool_csv_matches_json_items():
    h = read(DATA / "tidepool.csv", tz="UTC")
    assert h.glucose["glucose_mg_dl"].tolist() == pytest.approx([6.66 * MMOL_TO_MG_DL])
    assert h.doses["type"].tolist() == ["TEMP_BASAL", "BOLUS"] and h.doses["value"].tolist() == [1.2, 1.5]
    assert h.carbs["grams"].tolist() == [36.0]
    assert reasons(h) == ["item type not imported"]


def test_tidepool_truncated_json(tmp_path):
    path = tmp_path / "t.json"
    path.write_text((DATA / "tidepool.json").read_text()[:300])
    with pytest.raises(ImportFormatError, match="t.json, line .*truncated"):
        read(path, format="tidepool")


# ------------------------------------------------------------------------------------------ OhioT1DM

def test_ohio_spring_forward_basal_segments_and_overlap():
    h = read(DATA / "ohio.xml", tz="Europe/Berlin")
    assert iso(h.glucose["time"])[1:3] == ["2026-03-29T01:55:00+01:00", "2026-03-29T03:00:00+02:00"]
    basal = h.doses[h.doses["type"] == "BASAL"]
    # 00:00 CET to 03:00 CEST is two hours of real time
    assert (basal["end"] - basal["start"]).dt.total_seconds().tolist() == [7200.0, 300.0]
    first_temp = h.doses[h.doses["type"] == "SUSPEND"].iloc[0]
    assert first_temp["end"].isoformat() == "2026-03-29T01:20:00+01:00"  # cut by the next temp basal
    assert h.doses[h.doses["type"] == "BOLUS"]["value"].tolist() == [2.5, 1.0]
    assert h.carbs["grams"].tolist() == [30.0]
    assert ("exercise", "1", "stream not imported") in set(zip(h.skipped["record"], h.skipped["value"],
                                                               h.skipped["reason"]))


def test_ohio_truncated_xml(tmp_path):
    path = tmp_path / "o.xml"
    path.write_text((DATA / "ohio.xml").read_text()[:500])
    with pytest.raises(ImportFormatError, match="o.xml, line"):
        read(path)


def test_ohio_bad_time(tmp_path):
    path = tmp_path / "o.xml"
    path.write_text((DATA / "ohio.xml").read_text().replace('ts="29-03-2026 01:55:00"', 'ts="2026-03-29 01:55"'))
    with pytest.raises(ImportFormatError, match=r"glucose_level\[1\], field 'ts'"):
        read(path, tz="Europe/Berlin")


# ------------------------------------------------------------------------------------------ plain CSV

def test_plain_csv():
    h = read(DATA / "plain.csv", tz="Europe/Berlin")
    assert h.glucose["glucose_mg_dl"].tolist() == pytest.approx([120.0, 6.5 * MMOL_TO_MG_DL])
    assert h.doses["type"].tolist() == ["BOLUS", "TEMP_BASAL", "TEMP_BASAL", "BASAL", "SUSPEND"]
    assert h.doses["end"].iloc[1].isoformat() == "2026-03-01T09:10:00+01:00"  # overlapping temp basal cut
    assert h.carbs["absorption_min"].tolist() == [180.0]
    assert "cut short by the next temp basal or suspend" in reasons(h)
    assert any(r.startswith("unknown type") for r in reasons(h))
    assert "duplicate reading (same time, kind): the first is kept" in reasons(h)
    cut = h.skipped[h.skipped["reason"].str.startswith("cut short")].iloc[0]
    assert (cut["record"], cut["value"]) == ("line 7", "2026-03-01T09:30:00+01:00 -> 2026-03-01T09:10:00+01:00")


def test_plain_csv_naive_times_without_tz_warn_and_read_as_utc(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("time,type,value,unit\n2026-03-01T08:00:00,cgm,100,mg/dL\n")
    with pytest.warns(UserWarning, match="read as UTC"):
        h = read(path)
    assert h.glucose["time"].iloc[0].isoformat() == "2026-03-01T08:00:00+00:00"


def test_plain_csv_nonexistent_local_time_is_skipped(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("time,type,value,unit\n2026-03-29T02:30:00,cgm,100,mg/dL\n2026-03-29T03:30:00,cgm,101,mg/dL\n")
    h = read(path, tz="Europe/Berlin")
    assert h.glucose["glucose_mg_dl"].tolist() == [101.0]
    assert h.skipped["reason"].iloc[0].startswith("local time does not exist in Europe/Berlin")


@pytest.mark.parametrize("row, field", [("2026-03-01T08:00:00+01:00,cgm,abc,mg/dL", "value"),
                                        ("yesterday,cgm,100,mg/dL", "time"),
                                        ("2026-03-01T08:00:00+01:00,cgm,5,mmol", "unit"),
                                        ("2026-03-01T08:00:00+01:00,temp_basal,1.0,U/h", "duration_min"),
                                        ("2026-03-01T08:00:00+01:00,cgm", "columns")])
def test_plain_csv_errors_name_line_and_field(tmp_path, row, field):
    path = tmp_path / "p.csv"
    path.write_text("time,type,value,unit,duration_min\n2026-03-01T07:55:00+01:00,cgm,99,mg/dL,\n" + row + "\n")
    with pytest.raises(ImportFormatError) as e:
        read(path)
    assert e.value.record == "line 3" and e.value.field == field and "p.csv, line 3" in str(e.value)


def test_out_of_range_glucose_is_skipped_not_clipped(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("time,type,value,unit\n2026-03-01T08:00:00+00:00,cgm,5,mg/dL\n2026-03-01T08:05:00+00:00,cgm,90,mg/dL\n")
    h = read(path)
    assert h.glucose["glucose_mg_dl"].tolist() == [90.0]
    assert h.skipped[["record", "reason"]].values.tolist() == [["line 2", "outside 10-1000 mg/dL"]]


def test_loop_3_insulin_preset(tmp_path):
    text = (DATA / "loop_report.md").read_text().replace(
        "* insulinModel: Optional(humalogNovologAdult(Exponential(actionDuration: 21600.0, peakActivityTime: 4500.0)))",
        "* insulinModelSettings: Optional(LoopKit.InsulinModelSettings.exponentialPreset("
        "LoopKit.ExponentialInsulinModelPreset.fiasp))")
    path = tmp_path / "loop3.md"
    path.write_text(text)
    assert read(path).settings["settings_dictionary"]["model"] == [360.0, 55.0]


def test_fall_back_hour_resolved_in_file_order_per_table(tmp_path):
    """Readings and doses interleaved across the repeated hour; both tables follow the file's clock."""
    path = tmp_path / "p.csv"
    path.write_text("time,type,value,unit,duration_min\n"
                    "2026-10-25T00:55:00,cgm,100,mg/dL,\n"
                    "2026-10-25T02:30:00,cgm,101,mg/dL,\n"        # CEST (+02:00)
                    "2026-10-25T02:40:00,bolus,1.0,U,\n"          # CEST
                    "2026-10-25T02:10:00,cgm,102,mg/dL,\n"        # the clock stepped back: CET (+01:00)
                    "2026-10-25T02:15:00,bolus,2.0,U,\n"          # CET
                    "2026-10-25T03:05:00,cgm,103,mg/dL,\n")
    h = read(path, tz="Europe/Berlin")
    assert iso(h.glucose["time"]) == ["2026-10-25T00:55:00+02:00", "2026-10-25T02:30:00+02:00",
                                      "2026-10-25T02:10:00+01:00", "2026-10-25T03:05:00+01:00"]
    assert iso(h.doses["start"]) == ["2026-10-25T02:40:00+02:00", "2026-10-25T02:15:00+01:00"]
    assert h.skipped.empty


def test_loop_report_detected_from_its_preamble(tmp_path):
    path = tmp_path / "report.md"
    path.write_text("Loading...\n\nUse the Share button above to save this report.\n\nGenerated: 2026-03-02 12:30:10 +0000\n\n"
                    "Loop (Automatic Bolusing) v2.1.0\n* gitRevision: abc\n" + "x" * 5000 + "\n"
                    + (DATA / "loop_report.md").read_text().split("## DeviceDataManager", 1)[1])
    assert detect(path) == "loop_report"
    h = read(path)
    assert h.app_output["loop_version"] == "Loop (Automatic Bolusing) v2.1.0" and len(h.glucose) == 3


def test_clarity_mmol_export(tmp_path):
    text = (DATA / "clarity.csv").read_text().replace("Glucose Value (mg/dL)", "Glucose Value (mmol/L)")
    text = text.replace(",101,", ",5.6,").replace(",99,", ",5.5,").replace(",104,", ",5.8,")
    path = tmp_path / "c.csv"
    path.write_text(text)
    h = read(path, tz="America/New_York", low_high="limit")
    assert h.glucose["glucose_mg_dl"].tolist() == pytest.approx([5.6 * MMOL_TO_MG_DL, 40.0, 5.5 * MMOL_TO_MG_DL,
                                                                 400.0, 5.8 * MMOL_TO_MG_DL])
    assert set(h.glucose["source_unit"]) == {"mmol/L"}


def test_duplicate_with_another_value_names_both(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("time,type,value,unit\n2026-03-01T08:00:00+00:00,cgm,100,mg/dL\n"
                    "2026-03-01T08:00:00+00:00,cgm,105,mg/dL\n2026-03-01T08:00:00+00:00,smbg,104,mg/dL\n")
    h = read(path)
    assert h.glucose["glucose_mg_dl"].tolist() == [100.0, 104.0]  # a meter reading at the same time is kept
    assert h.skipped[["record", "value"]].values.tolist() == [["line 3", "105 at 2026-03-01T08:00:00+00:00 (kept 100)"]]


def test_tz_argument_errors_and_fixed_offsets():
    with pytest.raises(ImportFormatError, match="field 'tz': 'Mars/Olympus'"):
        read(DATA / "plain.csv", tz="Mars/Olympus")
    h = read(DATA / "ohio.xml", tz="UTC+05:30")
    assert h.glucose["time"].iloc[0].isoformat() == "2026-03-29T01:50:00+05:30"
