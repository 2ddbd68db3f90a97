"""The plain CSV: one row per observation, the simplest file a user can write by hand.

Columns (header required, order free; ``duration_min`` and ``absorption_min`` may be absent)::

    time,type,value,unit,duration_min,absorption_min
    2026-03-01T08:00:00+01:00,cgm,120,mg/dL,,
    2026-03-01T08:02:00+01:00,smbg,6.5,mmol/L,,
    2026-03-01T08:05:00+01:00,bolus,2.5,U,,
    2026-03-01T08:05:00+01:00,carbs,40,g,,180
    2026-03-01T09:00:00+01:00,temp_basal,0.8,U/h,30,
    2026-03-01T12:00:00+01:00,basal,1.0,U/h,60,
    2026-03-01T13:00:00+01:00,suspend,0,U/h,20,

``time`` is ISO 8601; without an offset it is local time in ``tz``. ``type`` is one of
:data:`TYPES`; glucose ``unit`` is ``mg/dL`` or ``mmol/L``; a bolus may have a
``duration_min`` (an extended bolus, U over that time). Rows of another type are skipped.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io as _io

from ._build import MMOL_TO_MG_DL, Collector, ImportFormatError, number, timestamp

TYPES = ("cgm", "smbg", "bolus", "basal", "temp_basal", "suspend", "carbs")
REQUIRED = ("time", "type", "value")
COLUMNS = REQUIRED + ("unit", "duration_min", "absorption_min")
_DOSE_TYPE = {"bolus": "BOLUS", "basal": "BASAL", "temp_basal": "TEMP_BASAL", "suspend": "SUSPEND"}
GLUCOSE_UNITS = {"mg/dl": 1.0, "mmol/l": MMOL_TO_MG_DL}


def looks_like(head: str) -> bool:
    """True when the first line is a plain-CSV header."""
    first = head.lstrip("\ufeff").splitlines()[0].lower() if head.strip() else ""
    names = {c.strip() for c in first.split(",")}
    return set(REQUIRED) <= names <= set(COLUMNS)


def read(path, tz=None, **_) -> "History":
    """Read a plain CSV file (see the module docstring)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        return parse(f.read(), str(path), tz)


def parse(text: str, source: str, tz=None):
    """Read plain-CSV text; ``source`` names it in errors."""
    rows = csv.DictReader(_io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (rows.fieldnames or [])]
    if missing:
        raise ImportFormatError(source, "line 1", ",".join(missing), rows.fieldnames, "missing column(s)")
    c = Collector(source, tz)
    for row in rows:
        line = f"line {rows.line_num}"
        if None in row or any(row.get(k) is None for k in REQUIRED):
            raise ImportFormatError(source, line, "columns", row, "wrong number of fields (truncated file?)")
        kind = row["type"].strip().lower()
        if kind not in TYPES:
            c.skip(line, "type", row["type"], f"unknown type (expected one of {', '.join(TYPES)})")
            continue
        time = timestamp(row["time"], source, line, "time")
        value = number(row["value"], source, line, "value")
        if kind in ("cgm", "smbg"):
            unit = (row.get("unit") or "mg/dL").strip()
            if unit.lower() not in GLUCOSE_UNITS:
                raise ImportFormatError(source, line, "unit", unit, "glucose unit must be mg/dL or mmol/L")
            c.glucose(line, time, value * GLUCOSE_UNITS[unit.lower()], unit, kind)
        elif kind == "carbs":
            absorption = (row.get("absorption_min") or "").strip()
            c.carb(line, time, value, number(absorption, source, line, "absorption_min") if absorption else float("nan"))
        else:
            duration = (row.get("duration_min") or "").strip()
            minutes = number(duration, source, line, "duration_min") if duration else 0.0
            if kind != "bolus" and not duration:
                raise ImportFormatError(source, line, "duration_min", duration, f"a {kind} needs a duration")
            c.dose(line, time, _dt.timedelta(minutes=minutes), _DOSE_TYPE[kind], value)
    return c.history()
