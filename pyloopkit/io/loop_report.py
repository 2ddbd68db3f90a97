"""The Loop app's issue report: the Markdown "Loop Report" that Loop writes from Settings > Issue Report.

The report is a dump of Swift ``description`` strings under Markdown headings. Read from it:

* ``### cachedGlucoseSamples``: ``* StoredGlucoseSample(... startDate: <date>, quantity: 120 mg/dL, ...)``
  (``mmol/L`` converted; ``isDisplayOnly: true`` calibrations skipped; ``wasUserEntered: true`` = meter);
* doses, ``* DoseEntry(type: LoopKit.DoseType.<bolus|tempBasal|basal|suspend|resume>, startDate: ...,
  endDate: ..., value: ..., unit: LoopKit.DoseUnit.<units|unitsPerHour>, ...)``, from the first non-empty of
  ``### getNormalizedPumpEventDoseEntriesOverlaidWithBasalEntries``, ``### getNormalizedDoseEntries``,
  ``#### cachedDoseEntries`` (the order Loop computed its insulin effect from; the others are skipped);
* ``cachedCarbEntries:``: ``* StoredCarbEntry(... startDate: ..., quantity: 40 g, ..., absorptionTime: 10800.0 ...)``;
* settings: ``basalProfile``, ``carbRatioSchedule``, ``insulinSensitivitySchedule`` (Swift dictionary literals
  ``["items": [["startTime": 0.0, "value": 1.0], ...], "timeZone": -25200, ...]``), ``insulinModel``
  (``...(Exponential(actionDuration: 21600.0, peakActivityTime: 4500.0))``) or Loop 3's ``insulinModelSettings``
  (``...ExponentialInsulinModelPreset.rapidActingAdult``: Loop's preset curves), ``defaultAbsorptionTimes``,
  and from ``settings: LoopSettings(...)``: ``glucoseTargetRangeSchedule``, ``maximumBasalRatePerHour``,
  ``maximumBolus``, ``suspendThreshold``, ``retrospectiveCorrectionEnabled``;
* the pump: ``pumpManager: Optional(MinimedPumpManager)`` (or a ``## OmnipodPumpManager`` heading) and
  ``pumpModel: 723``, with the ``Loop v...`` version, give ``settings_dictionary.pump_rounding`` (Loop's
  rounding for that pump, :mod:`pyloopkit.pump_rounding`; the documented default when unknown);
* the app's own output (``History.app_output``): ``predictedGlucose`` and the ``recommendedTempBasal`` /
  ``recommendedBolus`` lines, ``Loop v...`` version and the ``Generated:`` time.

Times are UTC (``2019-07-26 22:13:17 +0000``); the tables are given in the basal profile's UTC offset
(``timeZone``, seconds) unless ``tz`` is passed.
"""
from __future__ import annotations

import datetime as _dt
import math
import re

from ..pump_rounding import MANAGER_CLASS_NAMES, rule_name
from ..pyloop_parser import EXPONENTIAL_DEFAULT_DIA_MIN, EXPONENTIAL_PEAKS_MIN
from ._build import MMOL_TO_MG_DL, Collector, ImportFormatError, number, timestamp, zone
from .history import zone_name
from .settings import SCHEDULE_KEYS, schedule

DOSE_SECTIONS = ("### getNormalizedPumpEventDoseEntriesOverlaidWithBasalEntries", "### getNormalizedDoseEntries",
                 "#### cachedDoseEntries")
LOGGED_SECTIONS = ("### getManuallyEnteredDoses", "### getLoggedDoses")
"""Doses the user logged in Loop (pen injections, ...): Loop 3 and the 2021 development builds."""
_DOSE_TYPES = {"bolus": "BOLUS", "tempBasal": "TEMP_BASAL", "basal": "BASAL", "suspend": "SUSPEND",
               "resume": "RESUME"}
_LIST_STARTS = {"### cachedGlucoseSamples": "glucose", "cachedCarbEntries:": "carbs", "predictedGlucose:": "prediction",
                **{s: s for s in DOSE_SECTIONS}, **{s: "logged" for s in LOGGED_SECTIONS}}
_DATE = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}"
_ITEM = re.compile(r"^[A-Za-z_][\w.]*(<[^>]*>)?\(")
"""A bare Swift description line, ``StoredGlucoseSample(...)`` (Loop 2 and 3 list glucose samples so)."""
_HEADER = re.compile(r"^[A-Za-z_][\w.]*\(([^():]*)\)$")
"""A column header, ``StoredCarbEntry(sampleUUID, startDate, quantity, ...)``: names, no ``key: value``."""


def looks_like(head: str) -> bool:
    """A Loop report: ``Generated:`` and ``Loop`` lines or Loop's manager and store sections."""
    return (any(f"## {name}" in head for name in ("LoopDataManager", "GlucoseStore", "DeviceDataManager", "CarbStore",
                                                  "DoseStore"))
            or ("Generated: " in head and re.search(r"^Loop\b.* v\d", head, re.M) is not None))


def read(path, tz=None, **_):
    """Read a Loop report file (see the module docstring)."""
    with open(path, encoding="utf-8-sig") as f:
        return parse(f.read(), str(path), tz)


# ------------------------------------------------------------------ Swift description parsing

def fields(text: str) -> dict:
    """``Name(key: value, key: value(...), ...)`` -> ``{key: raw value}`` (nesting and quotes respected)."""
    open_at = text.find("(")
    body = text[open_at + 1:text.rfind(")")] if open_at >= 0 else text
    out = {}
    for part in _top_level_parts(body):
        key, sep, value = part.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _top_level_parts(body: str) -> list[str]:
    """``body`` split at the commas outside brackets, parentheses and quotes (stripped, empty parts left out)."""
    parts, depth, start, quoted = [], 0, 0, False
    for i, ch in enumerate(body + ","):
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            if body[start:i].strip():
                parts.append(body[start:i].strip())
            start = i + 1
    return parts


def literal(text: str):
    """A Swift array / dictionary literal (``["a": [1.0, 2.0], "b": -25200]``) as Python lists and dicts."""
    return _literal(text.strip(), 0)[0]


def _literal(s: str, i: int):
    while s[i] == " ":
        i += 1
    if s[i] == "[":
        items, keys, i = [], [], i + 1
        while True:
            while s[i] in " ,":
                i += 1
            if s[i] == "]":
                return (dict(zip(keys, items)) if keys else items), i + 1
            if s[i] == ":":  # empty dictionary "[:]"
                i += 1
                continue
            value, i = _literal(s, i)
            while s[i] == " ":
                i += 1
            if s[i] == ":":
                keys.append(value)
                value, i = _literal(s, i + 1)
            items.append(value)
    if s[i] == '"':
        end = s.index('"', i + 1)
        return s[i + 1:end], end + 1
    m = re.compile(r"[^,\]\[:]+").match(s, i)
    token = m.group(0).strip()
    try:
        return float(token), m.end()
    except ValueError:
        return token, m.end()


def _fields(item) -> dict:
    """An item's fields: a table row is already a dict, a Swift description is split by :func:`fields`."""
    return item if isinstance(item, dict) else fields(item)


def _quantity(raw: str, source: str, record: str, field: str) -> tuple[float, str]:
    value, _, unit = raw.strip().partition(" ")
    return number(value, source, record, field), unit.strip()


def _optional(raw: str | None) -> str | None:
    """``Optional(x)`` -> ``x``; ``nil`` -> None."""
    if raw is None or raw.strip() == "nil":
        return None
    raw = raw.strip()
    return raw[len("Optional("):-1] if raw.startswith("Optional(") else raw


# ------------------------------------------------------------------ the report

def split_items(text: str) -> list[str]:
    """The top-level items of an inline Swift list, ``[A(x: 1, y: [2, 3]), B(...)]`` -> ``["A(...)", "B(...)"]``."""
    body = text.strip()
    return _top_level_parts(body[1:-1] if body.startswith("[") and body.endswith("]") else body)


def _row(header: list, line: str, source: str, record: str) -> dict:
    """A table row (``, a, b, c`` or ``a, b, c``) as ``{column: value}`` by the list's header.

    Loop writes carb entries as a header line and comma-joined rows whose first field is a tab; a
    free-text column (``foodType``) may itself hold commas: it takes whatever is left over.
    """
    values = [v.strip() for v in (line[1:] if line.startswith(",") else line).split(",")]
    if len(values) < len(header):
        raise ImportFormatError(source, record, "row", line, f"{len(values)} fields for {len(header)} columns "
                                                             f"({', '.join(header)}); truncated line?")
    if len(values) > len(header):
        free = header.index("foodType") if "foodType" in header else len(header) - 1
        tail = len(header) - free - 1
        values = values[:free] + [", ".join(values[free:len(values) - tail])] + values[len(values) - tail:]
    return dict(zip(header, values))


_NS_ARRAY = re.compile(r"<__NS\w+ 0x[0-9a-f]+>\(([^()]*)\)")
"""Loop 1's Objective-C arrays inside schedules, ``<__NSArrayI 0x17403c4a0>( 100, 110 )``."""


def _continued(value: str, lines: list, n: int, limit: int = 500) -> tuple[str, int]:
    """A ``key: value`` whose parentheses close on later lines (Loop 1 wrote arrays over several lines),
    joined into one; returns the value and the number of the first line after it. A blank line, a
    heading, a ``*`` item or another ``key: value`` line is never joined (some Loop lines lack a
    closing parenthesis: ``insulinModel: Optional(fiasp(ExponentialInsulinModel(...))``)."""
    depth = value.count("(") - value.count(")")
    end = n
    while (depth > 0 and end < len(lines) and end - n < limit
           and not re.match(r"\s*($|#|\*|\w+: )", lines[end])):
        value += " " + lines[end].strip()
        depth += lines[end].count("(") - lines[end].count(")")
        end += 1
    return value, end + 1


def sections(text: str, source: str = "report") -> tuple[dict, dict]:
    """(lists: section -> [(line number, item)], values: ``key: value`` lines by key).

    An item is a Swift description string (``DoseEntry(type: ..., ...)``) or, in lists written as a
    column header and rows (Loop's carb entries, predicted glucose), a ``{column: value}`` dict. A
    list runs from its heading or ``key: [`` line to the next heading, ``]`` or ``key: value`` line;
    blank lines inside it are passed over. ``key: [A(...), B(...)]`` on one line (Loop 1) is split.
    """
    lists: dict = {}
    values: dict = {}
    current, header = None, None
    lines = text.splitlines()
    skip_to = 0
    for n, raw in enumerate(lines, start=1):
        if n < skip_to:
            continue
        stripped = raw.strip()
        start = next((k for k in _LIST_STARTS if stripped.startswith(k)), None)
        if start is not None:
            current, header = _LIST_STARTS[start], None
            lists.setdefault(current, [])
            rest = stripped[len(start):].strip()
            if rest.startswith("[") and rest.endswith("]"):  # the whole list on one line
                lists[current].extend((n, item) for item in split_items(rest))
                current = None
            elif rest not in ("", "["):
                lists[current].append((n, rest))
            continue
        if current is not None:
            item = stripped[1:].strip() if stripped.startswith("*") else stripped
            if stripped in ("", "["):
                continue
            if stripped == "]" or stripped.startswith("#"):
                current = None
            elif _HEADER.match(item) and header is None and not lists[current]:
                header = [h.strip() for h in _HEADER.match(item).group(1).split(",")]
                continue
            elif header is not None and (item.startswith(",") or re.match(_DATE, item)):
                lists[current].append((n, _row(header, item, source, f"line {n}")))
                continue
            elif stripped.startswith("*") or _ITEM.match(item):
                lists[current].append((n, item))
                continue
            else:
                current = None
        if raw.startswith("#"):
            continue
        key, sep, value = stripped.lstrip("* ").partition(":")
        if sep and key and " " not in key.strip():
            value, skip_to = _continued(value, lines, n)
            values.setdefault(key.strip(), (n, value.strip()))
        elif stripped.startswith("Loop v") or stripped.startswith("Loop "):
            values.setdefault("loop_version", (n, stripped.rstrip(":")))
    return lists, values


def parse(text: str, source: str, tz=None):
    """Read the text of a Loop report; ``source`` names it in errors."""
    if not looks_like(text[:20000]) and "cachedGlucoseSamples" not in text:
        raise ImportFormatError(source, "line 1", "format", text[:40], "not a Loop report")
    lists, values = sections(text, source)
    c = Collector(source, tz)
    c.settings = _settings(c, values)
    c.settings.setdefault("settings_dictionary", {})["pump_rounding"] = pump_rounding_rule(text, values)
    if c.tz is None and "timezone" in c.settings:
        c.tz = zone(c.settings["timezone"])
    for n, item in lists.get("glucose", []):
        _glucose(c, f"line {n}", item)
    used = next((s for s in DOSE_SECTIONS if lists.get(s)), None)
    for s in DOSE_SECTIONS:
        for n, item in lists.get(s, []):
            if s == used:
                _dose(c, f"line {n}", item)
            else:
                c.skip(f"line {n}", "section", s.strip("# "), f"another dose list is used ({used.strip('# ')})")
    for n, item in lists.get("logged", []):  # also in the normalized list when Loop used them: duplicates skipped
        _dose(c, f"line {n}", item)
    for n, item in lists.get("carbs", []):
        _carb(c, f"line {n}", item)
    history = c.history()
    history.app_output = _app_output(c, lists, values)
    return history


def pump_rounding_rule(text: str, values: dict) -> str:
    """The :data:`pyloopkit.pump_rounding.PUMP_ROUNDING` rule for the report's pump manager (the
    ``pumpManager:`` line, else the first ``## <Name>PumpManager`` heading), Medtronic ``pumpModel``
    and Loop version; the documented default when the report names no known pump."""
    names = "|".join(MANAGER_CLASS_NAMES)
    line = values.get("pumpManager", (0, ""))[1]
    m = re.search(rf"\b({names})\b", line) or re.search(rf"^#+ ({names})\b", text, re.M)
    model = _optional(values.get("pumpModel", (0, None))[1])
    return rule_name(m.group(1) if m else None, model, values.get("loop_version", (0, None))[1])


def _glucose(c: Collector, record: str, item) -> None:
    f = _fields(item)
    if "startDate" not in f or "quantity" not in f:
        raise ImportFormatError(c.source, record, "startDate" if "startDate" not in f else "quantity", item,
                                "glucose sample without a date or quantity (truncated line?)")
    if f.get("isDisplayOnly") == "true":
        c.skip(record, "isDisplayOnly", "true", "display-only (calibration) sample")
        return
    value, unit = _quantity(f["quantity"], c.source, record, "quantity")
    factor = MMOL_TO_MG_DL if unit.lower().startswith("mmol") else 1.0
    c.glucose(record, timestamp(f["startDate"], c.source, record, "startDate"), value * factor,
              "mmol/L" if factor != 1.0 else "mg/dL", "smbg" if f.get("wasUserEntered") == "true" else "cgm")


def _dose(c: Collector, record: str, item) -> None:
    f = _fields(item)
    for key in ("type", "startDate", "endDate", "value"):
        if key not in f:
            raise ImportFormatError(c.source, record, key, item, "dose entry without it (truncated line?)")
    name = f["type"].rsplit(".", 1)[-1]
    if name not in _DOSE_TYPES:
        c.skip(record, "type", f["type"], "unknown dose type")
        return
    start = timestamp(f["startDate"], c.source, record, "startDate")
    end = timestamp(f["endDate"], c.source, record, "endDate")
    delivered = _optional(f.get("deliveredUnits"))  # Loop 2.2+: what the pump reported as delivered
    value = number(f["value"] if delivered is None else delivered, c.source, record,
                   "value" if delivered is None else "deliveredUnits")
    kind = _DOSE_TYPES[name]
    if kind == "RESUME":
        c.skip(record, "type", f["type"], "resume marks the end of a suspend (not a dose)")
        return
    if kind != "BOLUS" and f.get("unit", "").endswith(".units"):
        hours = (end - start).total_seconds() / 3600.0
        value = value / hours if hours > 0 else 0.0
    c.dose(record, start, end, kind, value)


def _carb(c: Collector, record: str, item) -> None:
    f = _fields(item)
    if "startDate" not in f or "quantity" not in f:
        raise ImportFormatError(c.source, record, "startDate" if "startDate" not in f else "quantity", item,
                                "carb entry without a date or quantity (truncated line?)")
    grams, _ = _quantity(f["quantity"], c.source, record, "quantity")
    absorption = _optional(f.get("absorptionTime"))
    c.carb(record, timestamp(f["startDate"], c.source, record, "startDate"), grams,
           math.nan if absorption is None else number(absorption, c.source, record, "absorptionTime") / 60.0)


def _schedule_literal(c: Collector, values: dict, key: str):
    """The schedule on a store's ``* key: [...]`` line (None when absent, ``nil`` or empty)."""
    if key not in values:
        return None
    n, raw = values[key]
    return _schedule_value(c, f"line {n}", key, raw)


def _schedule_value(c: Collector, record: str, key: str, raw: str | None):
    """A schedule's dictionary literal, also inside Loop 2.2's ``GlucoseRangeSchedule(..., rangeSchedule: [...])``.

    An empty value (Loop writes ``* carbRatioSchedule: `` when none is set) and any other form than a
    literal are skipped with the reason; a literal that does not parse raises :class:`ImportFormatError`.
    """
    raw = _optional(raw)
    if raw is None:
        return None
    if not raw:
        c.skip(record, key, "", "empty in the report (not set in Loop)")
        return None
    raw = _NS_ARRAY.sub(lambda m: "[" + m.group(1).strip() + "]", raw)
    if not raw.startswith("[") and "rangeSchedule: [" in raw:
        raw = _optional(fields(raw).get("rangeSchedule")) or ""
    if not raw.startswith("["):
        c.skip(record, key, raw, "schedule not written as a dictionary literal (a form this reader does not know)")
        return None
    try:
        parsed = literal(raw)
    except (ValueError, IndexError, AttributeError):
        raise ImportFormatError(c.source, record, key, raw, "not a Swift dictionary literal") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("items"), list):
        raise ImportFormatError(c.source, record, key, raw, "schedule without items")
    for j, item in enumerate(parsed["items"]):
        if not isinstance(item, dict) or "startTime" not in item or "value" not in item:
            raise ImportFormatError(c.source, record, f"{key}.items[{j}]", item, "needs startTime and value")
    return parsed


def _settings(c: Collector, values: dict) -> dict:
    out: dict = {}
    basal = _schedule_literal(c, values, "basalProfile")
    if basal:
        out.update(schedule("basal", [i["startTime"] for i in basal["items"]], [i["value"] for i in basal["items"]]))
        if isinstance(basal.get("timeZone"), float):
            out["timezone"] = zone_name(_dt.timezone(_dt.timedelta(seconds=basal["timeZone"])))
    ratio = _schedule_literal(c, values, "carbRatioSchedule")
    if ratio:
        out.update(schedule("carb_ratio", [i["startTime"] for i in ratio["items"]], [i["value"] for i in ratio["items"]]))
    isf = _schedule_literal(c, values, "insulinSensitivitySchedule")
    if isf:
        factor = MMOL_TO_MG_DL if str(isf.get("unit", "")).lower().startswith("mmol") else 1.0
        out.update(schedule("sensitivity", [i["startTime"] for i in isf["items"]],
                            [i["value"] * factor for i in isf["items"]]))
    sd: dict = {}
    if "insulinModel" in values:
        n, raw = values["insulinModel"]
        m = re.search(r"actionDuration: ([\d.]+), peakActivityTime: ([\d.]+)", raw)
        if m:
            sd["model"] = [float(m.group(1)) / 60.0, float(m.group(2)) / 60.0]
        else:
            c.skip(f"line {n}", "insulinModel", raw, "not an exponential insulin model")
    elif "insulinModelSettings" in values:  # Loop 3: a preset name, e.g. ExponentialInsulinModelPreset.rapidActingAdult
        n, raw = values["insulinModelSettings"]
        m = re.search(r"ExponentialInsulinModelPreset\.(\w+)", raw)
        name = m.group(1).lower() if m else None
        if name in EXPONENTIAL_PEAKS_MIN:
            sd["model"] = [EXPONENTIAL_DEFAULT_DIA_MIN.get(name, 360.0), EXPONENTIAL_PEAKS_MIN[name]]
        else:
            c.skip(f"line {n}", "insulinModelSettings", raw, "not a known exponential insulin preset")
    if "defaultAbsorptionTimes" in values:
        times = dict(re.findall(r"(fast|medium|slow): ([\d.]+)", values["defaultAbsorptionTimes"][1]))
        if len(times) == 3:
            sd["default_absorption_times"] = [float(times[k]) / 60.0 for k in ("fast", "medium", "slow")]
    if "settings" in values:
        _loop_settings(c, values["settings"], out, sd)
    if sd:
        out["settings_dictionary"] = sd
    return out


_LOOP_SETTINGS_SCHEDULES = (("basalRateSchedule", "basal"), ("carbRatioSchedule", "carb_ratio"),
                            ("insulinSensitivitySchedule", "sensitivity"))
"""Schedules Loop 3's ``LoopSettings`` carries; read when the stores' lines did not give them."""


def _loop_settings(c: Collector, line: tuple, out: dict, sd: dict) -> None:
    """``settings: LoopSettings(...)``: limits and target range (Loop 1-3), Loop 3's schedules and model."""
    n, raw = line
    record = f"line {n}"
    f = fields(raw)
    for src, dst in (("maximumBasalRatePerHour", "max_basal_rate"), ("maximumBolus", "max_bolus")):
        value = _optional(f.get(src))
        if value is not None:
            sd[dst] = number(value, c.source, record, src)
    threshold = _optional(f.get("suspendThreshold", f.get("minimumBGGuard")))  # Loop 1 named it minimumBGGuard
    if threshold:
        t = fields(threshold)
        if "value" in t:
            factor = MMOL_TO_MG_DL if t.get("unit", "").lower().startswith("mmol") else 1.0
            sd["suspend_threshold"] = number(t["value"], c.source, record, "suspendThreshold") * factor
    if f.get("retrospectiveCorrectionEnabled") in ("true", "false"):
        sd["retrospective_correction_enabled"] = f["retrospectiveCorrectionEnabled"] == "true"
    target = _schedule_value(c, record, "glucoseTargetRangeSchedule", f.get("glucoseTargetRangeSchedule"))
    if target and target["items"]:
        items = target["items"]
        factor = MMOL_TO_MG_DL if str(target.get("unit", "")).lower().startswith("mmol") else 1.0
        out.update(schedule("target", [i["startTime"] for i in items], [i["value"][0] * factor for i in items],
                            [i["value"][1] * factor for i in items]))
    for key, kind in _LOOP_SETTINGS_SCHEDULES:
        if key in f and SCHEDULE_KEYS[kind][0] not in out:
            parsed = _schedule_value(c, record, key, f[key])
            if parsed:
                if kind == "basal" and "timezone" not in out and isinstance(parsed.get("timeZone"), float):
                    out["timezone"] = zone_name(_dt.timezone(_dt.timedelta(seconds=parsed["timeZone"])))
                factor = MMOL_TO_MG_DL if str(parsed.get("unit", "")).lower().startswith("mmol") else 1.0
                out.update(schedule(kind, [i["startTime"] for i in parsed["items"]],
                                    [i["value"] * (factor if kind == "sensitivity" else 1.0) for i in parsed["items"]]))
    preset = re.search(r"ExponentialInsulinModelPreset\.(\w+)", f.get("defaultRapidActingModel", ""))
    if preset and "model" not in sd and preset.group(1).lower() in EXPONENTIAL_PEAKS_MIN:
        name = preset.group(1).lower()
        sd["model"] = [EXPONENTIAL_DEFAULT_DIA_MIN.get(name, 360.0), EXPONENTIAL_PEAKS_MIN[name]]


def _app_output(c: Collector, lists: dict, values: dict) -> dict:
    out: dict = {}
    prediction = []
    for n, item in lists.get("prediction", []):
        if isinstance(item, dict):  # rows under "PredictedGlucoseValue(start, mg/dL)"
            unit = next((k for k in item if "/" in k), "mg/dL")
            when, quantity = item.get("start", item.get("startDate")), f"{item.get(unit, '')} {unit}"
        elif "startDate" in item:
            f = fields(item)
            when, quantity = f.get("startDate"), f.get("quantity", "")
        else:
            when, _, quantity = item.rpartition(", ")
        value, unit = _quantity(quantity, c.source, f"line {n}", "predictedGlucose")
        t = timestamp(when, c.source, f"line {n}", "predictedGlucose")
        prediction.append([t.isoformat(), value * (MMOL_TO_MG_DL if unit.lower().startswith("mmol") else 1.0)])
    if prediction:
        out["predicted_glucose"] = prediction
    temp = values.get("recommendedTempBasal")
    if temp:
        m = re.search(r"unitsPerHour: ([\d.]+), duration: ([\d.]+)", temp[1])
        d = re.search(_DATE, temp[1])
        if m:
            out["recommended_temp_basal"] = {"rate_u_per_h": float(m.group(1)), "duration_min": float(m.group(2)) / 60,
                                             "date": timestamp(d.group(0), c.source, "", "").isoformat() if d else None}
    automatic = values.get("recommendedAutomaticDose")  # Loop 3: a temp basal and/or an automatic bolus
    if automatic and _optional(automatic[1]):
        m = re.search(r"unitsPerHour: ([\d.]+), duration: ([\d.]+)", automatic[1])
        b = re.search(r"bolusUnits: Optional\(([\d.]+)\)", automatic[1])
        d = re.search(_DATE, automatic[1])
        date = timestamp(d.group(0), c.source, "", "").isoformat() if d else None
        if m:
            out["recommended_temp_basal"] = {"rate_u_per_h": float(m.group(1)), "duration_min": float(m.group(2)) / 60,
                                             "date": date}
        if b:
            out["recommended_automatic_bolus"] = {"amount_u": float(b.group(1)), "date": date}
    bolus = values.get("recommendedBolus")
    if bolus:
        m = re.search(r"amount: ([\d.]+)", bolus[1])
        d = re.search(_DATE, bolus[1])
        if m:
            out["recommended_bolus"] = {"amount_u": float(m.group(1)),
                                        "date": timestamp(d.group(0), c.source, "", "").isoformat() if d else None}
    if "loop_version" in values:
        out["loop_version"] = values["loop_version"][1]
    if "Generated" in values:
        out["generated"] = timestamp(values["Generated"][1], c.source, f"line {values['Generated'][0]}",
                                     "Generated").isoformat()
    return out
