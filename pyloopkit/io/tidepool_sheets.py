"""Tidepool's spreadsheet export: human column titles, as an Excel workbook or as CSV.

Tidepool's "Export data" writes an ``.xlsx`` workbook with one sheet per data type (``CGM``,
``SMBG``, ``Basal``, ``Bolus``, ``Bolus Calculator``, ``Food``, and others such as ``Device Event``,
``Upload`` and the settings sheets) whose columns carry human titles instead of the JSON field
names. Each row is turned back into the JSON item :mod:`pyloopkit.io.tidepool` reads, so both
forms are read alike:

==================  ====================  ==========================================================
column              JSON field            notes
==================  ====================  ==========================================================
Type                type                  ``cbg``, ``basal``, ... (or the sheet's name, when absent)
Utc Time            time                  UTC; preferred when present
Local Time          deviceTime / time     with ``Timezone Offset`` (minutes east of UTC) it is a
                                          fixed-offset time; without it a local time in ``tz``
Value, Units        value, units          glucose (``mg/dL`` or ``mmol/L``; Units required)
Sub Type            subType               bolus: normal, square, dual/square, automated
Normal, Extended    normal, extended      bolus units
Duration (mins)     duration              minutes here, milliseconds in the JSON
Delivery Type       deliveryType          basal: scheduled, temp, automated, suspend
Rate                rate                  basal U/h
Carb Input          carbInput             bolus calculator grams
Nutrition           nutrition             food: JSON text with ``carbohydrate.net`` (g)
==================  ====================  ==========================================================

A CSV with these titles (one table with a ``Type`` column, or one sheet saved as CSV) is read the
same way. Rows of other sheets or types are listed in ``History.skipped``. The workbook is read
with pandas and openpyxl (``pip install 'pyloopkit[io]'``), imported on first use.
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import math

from . import tidepool
from ._build import ImportFormatError, number

XLSX_MAGIC = "PK\x03\x04"
"""An ``.xlsx`` workbook is a zip archive."""

SHEET_TYPES = {"cgm": "cbg", "smbg": "smbg", "basal": "basal", "bolus": "bolus", "bolus calculator": "wizard",
               "food": "food"}
"""Sheet names (lower case) of the workbook -> Tidepool item type."""

COLUMNS = {"Type": "type", "Sub Type": "subType", "Delivery Type": "deliveryType", "Value": "value",
           "Units": "units", "Rate": "rate", "Normal": "normal", "Extended": "extended", "Carb Input": "carbInput",
           "Nutrition": "nutrition", "Name": "name"}
"""Human column titles -> JSON field names (times and durations are converted separately)."""

TIME_COLUMNS = ("Utc Time", "Local Time")


def looks_like(head: str) -> bool:
    """An xlsx workbook, or CSV whose header has a Tidepool time title and a data column."""
    if head.startswith(XLSX_MAGIC):
        return True
    lines = head.lstrip("\ufeff").splitlines()
    titles = {t.strip().strip('"') for t in next(csv.reader(lines[:1]), [])}
    return bool(titles & set(TIME_COLUMNS)) and bool(titles & {"Type", "Value", "Rate", "Normal", "Carb Input"})


def read(path, tz=None, **_):
    """Read a Tidepool spreadsheet export (``.xlsx``) or a CSV with its column titles."""
    source = str(path)
    with open(path, "rb") as f:
        is_xlsx = f.read(4).decode("latin-1") == XLSX_MAGIC
    tables = _workbook(path, source) if is_xlsx else [(None, _csv_rows(path, source))]
    records = []
    for sheet, rows in tables:
        default = None if sheet is None else SHEET_TYPES.get(sheet.strip().lower(), sheet)
        for record, row in rows:
            records.append((record, _item(row, default, source, record)))
    if not records:
        raise ImportFormatError(source, "file", "rows", 0, "no data rows in the spreadsheet")
    return tidepool.parse(records, source, tz)


def _csv_rows(path, source: str) -> list:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        rows = []
        for row in reader:
            if None in row:
                raise ImportFormatError(source, f"line {reader.line_num}", "columns", row[None],
                                        "more fields than columns")
            rows.append((f"line {reader.line_num}", {k.strip(): v for k, v in row.items() if v not in (None, "")}))
    return rows


def _workbook(path, source: str) -> list:
    """``(sheet name, [(record, row dict), ...])`` for every sheet of the workbook."""
    from .history import _pandas

    pd = _pandas()
    try:
        import openpyxl  # noqa: F401  (pandas' engine for xlsx)
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("reading .xlsx needs openpyxl: pip install 'pyloopkit[io]'") from e
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=object, engine="openpyxl")
    except Exception as e:  # openpyxl raises several types for damaged archives
        raise ImportFormatError(source, "workbook", "xlsx", type(e).__name__,
                                f"not a readable .xlsx workbook ({e})") from None
    out = []
    for name, frame in sheets.items():
        rows = []
        for i, values in enumerate(frame.itertuples(index=False, name=None)):
            row = {str(k).strip(): v for k, v in zip(frame.columns, values) if not _blank(v)}
            if row:
                rows.append((f"sheet {name!r} row {i + 2}", row))  # row 1 holds the titles
        out.append((name, rows))
    return out


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()) or (
        type(v).__name__ == "NaTType")


def _item(row: dict, default_type, source: str, record: str) -> dict:
    """The Tidepool JSON item of one spreadsheet row."""
    item = {field: row[title] for title, field in COLUMNS.items() if title in row}
    if "type" not in item:
        if default_type is None:
            raise ImportFormatError(source, record, "Type", None, "row without a Type (and not in a named sheet)")
        item["type"] = default_type
    item["type"] = SHEET_TYPES.get(str(item["type"]).strip().lower(), str(item["type"]).strip())
    item.update(_times(row, source, record))
    if "Duration (mins)" in row:
        item["duration"] = number(row["Duration (mins)"], source, record, "Duration (mins)") * 60_000.0
    if isinstance(item.get("nutrition"), str):
        try:
            item["nutrition"] = json.loads(item["nutrition"])
        except json.JSONDecodeError:
            raise ImportFormatError(source, record, "Nutrition", item["nutrition"], "not JSON text") from None
    if item["type"] in ("cbg", "smbg") and "value" in item and "units" not in item:
        raise ImportFormatError(source, record, "Units", None, "glucose row without Units (mg/dL or mmol/L)")
    return item


def _times(row: dict, source: str, record: str) -> dict:
    """``time`` (UTC or with the row's offset) or ``deviceTime`` (local, naive) of a row."""
    if "Utc Time" in row:
        utc = _naive(row["Utc Time"], source, record, "Utc Time")
        return {"time": utc.replace(tzinfo=_dt.timezone.utc).isoformat()}
    if "Local Time" not in row:
        raise ImportFormatError(source, record, "Local Time", None, "row without a time")
    local = _naive(row["Local Time"], source, record, "Local Time")
    if "Timezone Offset" in row:
        minutes = number(row["Timezone Offset"], source, record, "Timezone Offset")
        return {"time": local.replace(tzinfo=_dt.timezone(_dt.timedelta(minutes=minutes))).isoformat()}
    return {"deviceTime": local.isoformat()}


def _naive(value, source: str, record: str, field: str) -> _dt.datetime:
    """A spreadsheet time (a cell's datetime, or ISO text with a space or T) without a zone."""
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, _dt.datetime):
        out = value
    else:
        try:
            out = _dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ImportFormatError(source, record, field, value, "not a date and time") from None
    if out.tzinfo is not None:
        raise ImportFormatError(source, record, field, value, "expected a time without a zone")
    return out
