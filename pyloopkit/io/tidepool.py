"""Tidepool's data export: the JSON list of data items, and its flattened CSV form.

Each item has a ``type`` and a ``time`` (UTC ISO 8601; ``deviceTime``, local without zone, is used
when ``time`` is absent). Read:

* ``cbg`` / ``smbg``: ``value`` in ``units`` (Tidepool stores ``mmol/L``; converted to mg/dL);
* ``bolus``: ``subType`` ``normal`` and ``automated`` (Loop's automatic bolus; ``normal`` U), ``square``
  (``extended`` U over ``duration`` ms) and ``dual/square`` (both);
* ``wizard``: ``carbInput`` (g) as a carb entry (its bolus is its own ``bolus`` item; a nested one is read too);
* ``food``: ``nutrition.carbohydrate.net`` (g) with ``nutrition.estimatedAbsorptionDuration`` (s);
* ``basal``: ``deliveryType`` ``scheduled`` (BASAL), ``temp`` and ``automated`` (TEMP_BASAL), ``suspend``
  (SUSPEND), ``rate`` U/h for ``duration`` ms;
* ``pumpSettings`` (the newest; all of them by time in ``settings["timeline"]``): ``basalSchedules[activeSchedule]`` (``start`` ms, ``rate``),
  ``carbRatio(s)`` and ``insulinSensitivit(y|ies)`` (``start``, ``amount``), ``bgTarget(s)``
  (``target`` with ``low``/``high`` or ``range``), in ``units.bg``.

The CSV form has one column per field, nested fields joined with dots (``nutrition.carbohydrate.net``).
The spreadsheet export with human column titles (``.xlsx`` or CSV) is :mod:`pyloopkit.io.tidepool_sheets`.
Other item types are listed in ``History.skipped``.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io as _io
import json
import math

from ._build import MMOL_TO_MG_DL, Collector, ImportFormatError, number, timestamp, zone
from .settings import schedule

_BASAL = {"scheduled": "BASAL", "temp": "TEMP_BASAL", "automated": "TEMP_BASAL", "suspend": "SUSPEND"}
TYPES = ("cbg", "smbg", "bolus", "wizard", "food", "basal", "pumpSettings")


def looks_like(head: str) -> bool:
    """Tidepool JSON (items with a Tidepool ``type``) or its CSV (``type`` and ``time`` columns)."""
    text = head.lstrip()
    if text[:1] == "[":
        return any(f'"type": "{t}"' in text or f'"type":"{t}"' in text for t in TYPES)
    first = text.splitlines()[0].lower().split(",") if text else []
    return "type" in first and ("time" in first or "devicetime" in first)


def read(path, tz=None, **_):
    """Read a Tidepool JSON or CSV export."""
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    source = str(path)
    if text.lstrip()[:1] == "[":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise ImportFormatError(source, f"line {e.lineno}", "json", e.msg, "not valid JSON (truncated file?)") from None
        return parse([(f"item {i}", item) for i, item in enumerate(items)], source, tz)
    rows = csv.DictReader(_io.StringIO(text))
    records = []
    for row in rows:
        if None in row:
            raise ImportFormatError(source, f"line {rows.line_num}", "columns", row[None], "more fields than columns")
        records.append((f"line {rows.line_num}", {k: v for k, v in row.items() if v not in (None, "")}))
    return parse(records, source, tz)


def _get(item: dict, path: str, default=None):
    """A field by dotted path, flat (CSV) or nested (JSON)."""
    if path in item:
        return item[path]
    value = item
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def parse(records: list, source: str, tz=None):
    """A History from ``(record name, item dict)`` pairs."""
    c = Collector(source, tz)
    if c.tz is None:
        name = next((item["timezone"] for _, item in records if isinstance(item, dict) and item.get("timezone")), None)
        if name:
            c.tz = zone(name)
            c.settings["timezone"] = name
    settings = []
    for record, item in records:
        if not isinstance(item, dict):
            raise ImportFormatError(source, record, "item", item, "not an object")
        kind = item.get("type")
        if kind == "pumpSettings":
            settings.append((record, item))
        elif kind in _HANDLERS:
            _HANDLERS[kind](c, record, item, _time(c, record, item))
        else:
            c.skip(record, "type", kind, "item type not imported")
    if settings:
        timeline = sorted(((_time(c, record, item), _pump_settings(c, record, item)) for record, item in settings),
                          key=lambda ts: ts[0])
        c.settings.update(timeline[-1][1])
        if len(timeline) > 1:
            c.settings["timeline"] = [{"start": t.isoformat(), "settings": s} for t, s in timeline]
    return c.history()


def _time(c: Collector, record: str, item: dict) -> _dt.datetime:
    if item.get("time"):
        return timestamp(item["time"], c.source, record, "time")
    if item.get("deviceTime"):
        return timestamp(item["deviceTime"], c.source, record, "deviceTime")
    raise ImportFormatError(c.source, record, "time", None, "item without a time")


def _factor(c: Collector, record: str, units) -> float:
    unit = str(units or "mmol/L").lower()
    if unit in ("mmol/l", "mmol"):
        return MMOL_TO_MG_DL
    if unit in ("mg/dl", "mg"):
        return 1.0
    raise ImportFormatError(c.source, record, "units", units, "glucose units must be mmol/L or mg/dL")


def _glucose(c: Collector, record: str, item: dict, time) -> None:
    if "value" not in item:
        raise ImportFormatError(c.source, record, "value", None, "glucose item without a value")
    factor = _factor(c, record, item.get("units"))
    c.glucose(record, time, number(item["value"], c.source, record, "value") * factor,
              "mmol/L" if factor != 1.0 else "mg/dL", "cgm" if item["type"] == "cbg" else "smbg")


def _bolus(c: Collector, record: str, item: dict, time) -> None:
    sub = item.get("subType", "normal")
    if sub not in ("normal", "automated", "square", "dual/square"):
        c.skip(record, "subType", sub, "unknown bolus subtype")
        return
    if sub in ("normal", "automated", "dual/square"):
        c.dose(record, time, time, "BOLUS", number(_get(item, "normal", 0), c.source, record, "normal"))
    if sub in ("square", "dual/square"):
        ms = number(_get(item, "duration", 0), c.source, record, "duration")
        c.dose(record, time, _dt.timedelta(milliseconds=ms), "BOLUS",
               number(_get(item, "extended", 0), c.source, record, "extended"))


def _wizard(c: Collector, record: str, item: dict, time) -> None:
    carbs = _get(item, "carbInput")
    if carbs not in (None, "") and number(carbs, c.source, record, "carbInput") > 0:
        c.carb(record, time, number(carbs, c.source, record, "carbInput"))
    nested = item.get("bolus")
    if isinstance(nested, dict):
        _bolus(c, f"{record}.bolus", nested, _time(c, record, {**item, **nested}))
    elif carbs in (None, "") or number(carbs, c.source, record, "carbInput") == 0:
        c.skip(record, "carbInput", carbs, "wizard without carbs (its bolus is a separate item)")


def _food(c: Collector, record: str, item: dict, time) -> None:
    grams = _get(item, "nutrition.carbohydrate.net")
    if grams in (None, ""):
        c.skip(record, "nutrition.carbohydrate.net", None, "food without carbohydrate")
        return
    seconds = _get(item, "nutrition.estimatedAbsorptionDuration")
    c.carb(record, time, number(grams, c.source, record, "nutrition.carbohydrate.net"),
           math.nan if seconds in (None, "") else number(seconds, c.source, record, "estimatedAbsorptionDuration") / 60)


def _basal(c: Collector, record: str, item: dict, time) -> None:
    delivery = item.get("deliveryType")
    if delivery not in _BASAL:
        c.skip(record, "deliveryType", delivery, "unknown basal delivery type")
        return
    if _get(item, "duration") in (None, ""):
        c.skip(record, "duration", None, "basal without a duration (still running at export?)")
        return
    ms = number(item["duration"], c.source, record, "duration")
    rate = 0.0 if delivery == "suspend" else number(_get(item, "rate", 0), c.source, record, "rate")
    c.dose(record, time, _dt.timedelta(milliseconds=ms), _BASAL[delivery], rate)


_HANDLERS = {"cbg": _glucose, "smbg": _glucose, "bolus": _bolus, "wizard": _wizard, "food": _food, "basal": _basal}


def _named(item: dict, plural: str, singular: str):
    """A schedule that is either one list (``singular``) or lists by name (``plural``, the active one)."""
    if isinstance(item.get(singular), list):
        return item[singular]
    named = item.get(plural)
    if isinstance(named, dict) and named:
        return named.get(item.get("activeSchedule")) or next(iter(named.values()))
    return None


def _pump_settings(c: Collector, record: str, item: dict) -> dict:
    if isinstance(item.get("basalSchedules"), str) or any(isinstance(item.get(k), str) for k in
                                                          ("carbRatios", "insulinSensitivities", "bgTargets")):
        item = {k: (json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v) for k, v in item.items()}
    factor = _factor(c, record, _get(item, "units.bg", "mmol/L"))
    out: dict = {}
    basal = _named(item, "basalSchedules", "basalSchedule")
    if basal:
        out.update(schedule("basal", [_n(c, record, "basalSchedules.start", b.get("start")) / 1000 for b in basal],
                            [_n(c, record, "basalSchedules.rate", b.get("rate")) for b in basal]))
    ratio = _named(item, "carbRatios", "carbRatio")
    if ratio:
        out.update(schedule("carb_ratio", [_n(c, record, "carbRatio.start", r.get("start")) / 1000 for r in ratio],
                            [_n(c, record, "carbRatio.amount", r.get("amount")) for r in ratio]))
    isf = _named(item, "insulinSensitivities", "insulinSensitivity")
    if isf:
        out.update(schedule("sensitivity", [_n(c, record, "insulinSensitivity.start", s.get("start")) / 1000 for s in isf],
                            [_n(c, record, "insulinSensitivity.amount", s.get("amount")) * factor for s in isf]))
    target = _named(item, "bgTargets", "bgTarget")
    if target:
        lows, highs = [], []
        for t in target:
            if "low" in t and "high" in t:
                lo, hi = _n(c, record, "bgTarget.low", t["low"]), _n(c, record, "bgTarget.high", t["high"])
            else:
                mid = _n(c, record, "bgTarget.target", t.get("target"))
                half = _n(c, record, "bgTarget.range", t.get("range", 0))
                lo, hi = mid - half, mid + half
            lows.append(lo * factor)
            highs.append(hi * factor)
        out.update(schedule("target", [_n(c, record, "bgTarget.start", t.get("start")) / 1000 for t in target],
                            lows, highs))
    return out


def _n(c: Collector, record: str, field: str, value) -> float:
    if value is None:
        raise ImportFormatError(c.source, record, field, None, "missing")
    return number(value, c.source, record, field)
