"""LibreView CSV export (FreeStyle Libre readers and apps).

Line 1 names the report (``Glucose Data,Generated on,...``), line 2 is the header: ``Device,Serial Number,
Device Timestamp,Record Type,Historic Glucose mg/dL,Scan Glucose mg/dL,...,Rapid-Acting Insulin (units),...,
Carbohydrates (grams),...,Strip Glucose mg/dL,...`` (``mmol/L`` in the glucose column names for mmol/L
exports). ``Device Timestamp`` is local time without zone, ``MM-DD-YYYY HH:MM`` (US) or ``DD-MM-YYYY HH:MM``;
the order is taken from ``date_order`` ("MDY"/"DMY") or detected from a day above 12. Record types read:
0 historic (CGM every 15 min), 1 scan (CGM on demand), 2 strip (meter), 4 insulin (rapid-acting as a bolus;
long-acting skipped), 5 food (carbohydrates in grams; servings are skipped). ``LO``/``HI`` markers are
skipped, or set to 40/500 mg/dL with ``low_high="limit"``. Other record types are skipped with the reason.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io as _io
import re
import warnings

from ..errors import LoopWarning
from ._build import MMOL_TO_MG_DL, Collector, ImportFormatError, is_low_high, number, sensor_limit

LIMITS_MG_DL = (40.0, 500.0)
"""FreeStyle Libre reporting range: LO is below, HI above."""
RECORD_TYPES = {"0": ("Historic Glucose", "cgm"), "1": ("Scan Glucose", "cgm"), "2": ("Strip Glucose", "smbg")}
_FORMATS = {"MDY": ("%m-%d-%Y %H:%M", "%m-%d-%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p"),
            "DMY": ("%d-%m-%Y %H:%M", "%d-%m-%Y %I:%M %p", "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M")}


def looks_like(head: str) -> bool:
    """A LibreView export: the ``Device Timestamp`` and ``Record Type`` header in the first lines."""
    return any("Device Timestamp" in line and "Record Type" in line for line in head.splitlines()[:3])


def read(path, tz=None, low_high: str = "skip", date_order: str | None = None, **_):
    """Read a LibreView CSV; see the module docstring for ``low_high`` and ``date_order``."""
    source = str(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        lines = f.read().splitlines()
    header_at = next((i for i, line in enumerate(lines[:3]) if "Device Timestamp" in line), None)
    if header_at is None:
        raise ImportFormatError(source, "line 1", "header", lines[:2], "no LibreView header (Device Timestamp, Record Type)")
    rows = list(csv.reader(_io.StringIO("\n".join(lines[header_at:]))))
    names = [n.strip() for n in rows[0]]
    order = date_order or _date_order([r[names.index("Device Timestamp")] for r in rows[1:] if len(r) == len(names)])
    if order not in _FORMATS:
        raise ImportFormatError(source, "argument", "date_order", order, "expected 'MDY' or 'DMY'")
    c = Collector(source, tz)
    for k, values in enumerate(rows[1:]):
        line = f"line {header_at + k + 2}"
        if len(values) != len(names):
            raise ImportFormatError(source, line, "columns", values, f"{len(values)} fields, the header has "
                                                                       f"{len(names)} (truncated file?)")
        row = dict(zip(names, (v.strip() for v in values)))
        _row(c, line, row, names, order, low_high)
    return c.history()


def _date_order(stamps: list[str]) -> str:
    """MDY or DMY from the timestamps themselves (a first field above 12 is a day)."""
    firsts = [int(m.group(1)) for m in (re.match(r"(\d+)[-/.](\d+)", s.strip()) for s in stamps) if m]
    seconds = [int(m.group(2)) for m in (re.match(r"(\d+)[-/.](\d+)", s.strip()) for s in stamps) if m]
    if any(x > 12 for x in firsts):
        return "DMY"
    if not any(x > 12 for x in seconds):
        warnings.warn("LibreView dates are ambiguous (no day above 12): read as MM-DD-YYYY; pass date_order='DMY' "
                      "for day-first exports", LoopWarning, stacklevel=3)
    return "MDY"


def _parse_time(c: Collector, line: str, text: str, order: str) -> _dt.datetime:
    for fmt in _FORMATS[order]:
        try:
            return _dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ImportFormatError(c.source, line, "Device Timestamp", text, f"not a {order} date and time")


def _column(names: list, prefix: str) -> tuple[str | None, str]:
    name = next((n for n in names if n.startswith(prefix)), None)
    return name, ("mmol/L" if name and "mmol" in name else "mg/dL")


def _row(c: Collector, line: str, row: dict, names: list, order: str, low_high: str) -> None:
    kind = row.get("Record Type", "")
    time = _parse_time(c, line, row["Device Timestamp"], order)
    if kind in RECORD_TYPES:
        prefix, glucose_kind = RECORD_TYPES[kind]
        column, unit = _column(names, prefix)
        text = row.get(column or "", "")
        if not text:
            raise ImportFormatError(c.source, line, column or prefix, text, "glucose record without a value")
        factor = MMOL_TO_MG_DL if unit == "mmol/L" else 1.0
        value = (sensor_limit(c, line, column, text, *LIMITS_MG_DL, low_high) if is_low_high(text)
                 else number(text, c.source, line, column) * factor)
        if value is not None:
            c.glucose(line, time, value, unit, glucose_kind)
    elif kind == "4":
        rapid = row.get("Rapid-Acting Insulin (units)", "")
        if rapid:
            c.dose(line, time, time, "BOLUS", number(rapid, c.source, line, "Rapid-Acting Insulin (units)"))
        else:
            c.skip(line, "Record Type", kind, "insulin record without rapid-acting units (long-acting is not a pump dose)")
    elif kind == "5":
        grams = row.get("Carbohydrates (grams)", "")
        if grams:
            c.carb(line, time, number(grams, c.source, line, "Carbohydrates (grams)"))
        else:
            c.skip(line, "Carbohydrates (servings)", row.get("Carbohydrates (servings)"), "food without grams")
    else:
        c.skip(line, "Record Type", kind, "record type not imported (ketones, notes, time changes, ...)")

