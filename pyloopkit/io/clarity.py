"""Dexcom Clarity CSV export.

Header: ``Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,...,Glucose Value (mg/dL)`` (or
``(mmol/L)``)``,Insulin Value (u),Carb Value (grams),Duration (hh:mm:ss),...``. The first rows hold the
patient and device (no timestamp) and are skipped. Timestamps are local times without zone (pass
``tz``). Read: ``EGV`` (CGM; ``Low``/``High`` markers skipped or set to the 40/400 mg/dL limits with
``low_high="limit"``), ``Calibration`` (meter), ``Insulin`` ``Fast-Acting`` (bolus; ``Long-Acting`` is
skipped: not pump insulin), ``Carbs``. Other event types are skipped with the reason.
"""
from __future__ import annotations

import csv

from ._build import MMOL_TO_MG_DL, Collector, ImportFormatError, is_low_high, number, sensor_limit, timestamp

LIMITS_MG_DL = (40.0, 400.0)
"""Dexcom G6/G7 reporting range: "Low" is below, "High" above."""
TIME_COLUMN = "Timestamp (YYYY-MM-DDThh:mm:ss)"


def looks_like(head: str) -> bool:
    """The Clarity header row."""
    return TIME_COLUMN in head.splitlines()[0] if head.strip() else False


def read(path, tz=None, low_high: str = "skip", **_):
    """Read a Clarity CSV; ``tz``: the zone of its local times; ``low_high``: see the module docstring."""
    source = str(path)
    c = Collector(source, tz)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.DictReader(f)
        names = rows.fieldnames or []
        glucose_col = next((n for n in names if n.startswith("Glucose Value")), None)
        if TIME_COLUMN not in names or glucose_col is None:
            raise ImportFormatError(source, "line 1", "header", names, "not a Clarity export header")
        unit = "mmol/L" if "mmol" in glucose_col else "mg/dL"
        factor = MMOL_TO_MG_DL if unit == "mmol/L" else 1.0
        for row in rows:
            line = f"line {rows.line_num}"
            if None in row or row.get("Event Type") is None:
                raise ImportFormatError(source, line, "columns", row.get(None, row), "wrong number of fields (truncated file?)")
            event, when = row["Event Type"].strip(), (row[TIME_COLUMN] or "").strip()
            if not when:
                c.skip(line, "Event Type", event, "header row (patient or device information)")
                continue
            time = timestamp(when, source, line, TIME_COLUMN)
            if event in ("EGV", "Calibration"):
                text = (row[glucose_col] or "").strip()
                value = (sensor_limit(c, line, glucose_col, text, *LIMITS_MG_DL, low_high) if is_low_high(text)
                         else number(text, source, line, glucose_col) * factor)
                if value is not None:
                    c.glucose(line, time, value, unit, "cgm" if event == "EGV" else "smbg")
            elif event == "Insulin":
                sub = (row.get("Event Subtype") or "").strip()
                if sub == "Long-Acting":
                    c.skip(line, "Event Subtype", sub, "long-acting insulin (not a pump dose)")
                else:
                    c.dose(line, time, time, "BOLUS", number(row["Insulin Value (u)"], source, line, "Insulin Value (u)"))
            elif event == "Carbs":
                c.carb(line, time, number(row["Carb Value (grams)"], source, line, "Carb Value (grams)"))
            else:
                c.skip(line, "Event Type", event, "event type not imported")
    return c.history()
