"""Loop issue reports and saved runs -> the :func:`pyloopkit.update` input dictionary.

A Loop issue report is the Markdown file the Loop app exports; Tidepool's
issue-report parser turns it into JSON (``example_issue_report_*.json``).
Its quirks, handled here one report section per function:

* keys copied from Swift ``description`` output often keep a leading space
  (``" date"``, ``" startDate"``) and values are often strings with a leading
  space (``" 14400.0"``, ``" true"``);
* times are UTC strings like ``2019-08-12 01:28:19 +0000``; the local UTC offset
  is ``basal_rate_timeZone`` (seconds);
* schedules with an active override applied (``basalProfileApplyingOverrideHistory_items``
  and the ISF / carb-ratio twins) take precedence over the plain schedules; their
  items may be lists or Python-repr strings;
* doses: Loop computed insulin effects from the normalized pump-event doses when
  there are any, else from the normalized dose entries, else from the cached dose
  entries (PyLoopKit's order). The pump-event list can lack the running temp basal,
  so the last normalized dose entry is added when it is not already there.

Conventions of the dictionary returned by :func:`parse_report`
--------------------------------------------------------------
* Datetimes are timezone-aware, in the report's local zone (a fixed
  ``datetime.timezone`` of ``basal_rate_timeZone`` seconds): the same instants as
  in the report, printed as local wall-clock time. (PyLoopKit instead shifts the
  UTC times by the offset and keeps ``+00:00``; ``offset_applied_to_dates`` keeps
  its name but here only records the offset the dates carry.)
* Schedule start/end times are ``datetime.time`` objects (local time of day).
* ``dose_types`` are :class:`pyloopkit.dose.DoseType` members, the type the report gives
  (``LoopKit.DoseType.basal`` -> ``BASAL``, ``.tempBasal`` -> ``TEMP_BASAL``). Loop 1.x reports
  list its temp basals as ``basal`` doses without a scheduled rate, which LoopKit counts as
  net zero; the Loop app's own ``insulin_effect`` in reports 3 and 4 agrees with that reading
  (to 0.03 mg/dL through :func:`update`) and disagrees by up to 35 mg/dL when they are read
  as temp basals.
* Dose values are U for boluses and U/h for basal-like doses (entries recorded in
  U are divided by their duration in hours, 0 U/h for a zero-length entry, like
  LoopKit ``DoseEntry.unitsPerHour``).
* Durations (absorption times, DIA, intervals, delays) are in minutes; glucose in mg/dL
  (mmol/L report values are converted with 18.01559).
* Basal-like doses still running at the time of calculation end at that time
  (Loop's ``basalDosingEnd``); PyLoopKit trims only the added last entry.
* ``basal_rate_minutes`` gives every item's true length; PyLoopKit gives the last
  item the length of the day up to its start instead.
"""
from __future__ import annotations

import ast
import datetime as _dt
import json
import math
import os
import re
import warnings
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from .date import parse_time_of_day
from .dose import DoseType
from .errors import InvalidInputError, LoopWarning, MissingDataError, Problem
from .dose_math import ROUNDING_MODES
from .input_validation import MMOL_TO_MGDL
from .pump_rounding import PUMP_ROUNDING, rule_name

_LOOP_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"

EXPONENTIAL_PEAKS_MIN = {
    "humalognovologadult": 75.0,
    "rapidactingadult": 75.0,
    "humalognovologchild": 65.0,
    "rapidactingchild": 65.0,
    "fiasp": 55.0,
    "lyumjev": 55.0,
    "afrezza": 29.0,
}
"""Peak activity time (minutes) of Loop's exponential insulin model presets, by lower-cased name."""

EXPONENTIAL_DEFAULT_DIA_MIN = {"afrezza": 300.0}
"""Preset action durations (minutes) differing from 360, used when a report has no DIA."""

LOOP_FIXED_SETTINGS = {
    "dynamic_carb_absorption_enabled": True,
    "retrospective_correction_integration_interval": 30,
    "recency_interval": 15,
    "retrospective_correction_grouping_interval": 30,
    "include_positive_velocity_and_rc_in_bolus": True,
    "insulin_delay": 10,
    "carb_delay": 10,
}
"""Settings Loop 1.x did not write into issue reports: its built-in values (minutes), and Loop 1.x's
manual-bolus prediction, which kept positive momentum and retrospective correction. The pump's
rounding comes from the report (:func:`pump_rounding_rule`)."""

RUN_TIME_MIDPOINT_S = 0.5
"""Reports print when Loop ran to the whole second; Loop ran within that second, so the default
calculation time is the printed time plus half a second (this decides, e.g., whether a glucose
sample exactly 15 min before the printed time is inside the momentum window: Loop's was not)."""

COUNTERACTION_SOURCES = ("report", "computed")

_OVERRIDE_SCHEDULE_KEYS = {
    "basal": ("basalProfileApplyingOverrideHistory_items", "basal_rate_schedule"),
    "sensitivity": ("insulinSensitivityScheduleApplyingOverrideHistory_items",
                    "insulin_sensitivity_factor_schedule"),
    "carb_ratio": ("carbRatioScheduleApplyingOverrideHistory_items", "carb_ratio_schedule"),
}
_OFFSET_KEYS = ("basal_rate_timeZone", "carb_ratio_timeZone", "insulin_sensitivity_factor_timeZone",
                "basalProfileApplyingOverrideHistory_timeZone")
_DOSE_SOURCES = ("get_normalized_pump_event_dose", "get_normalized_dose_entries", "cached_dose_entries")
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


# ---------------------------------------------------------------- field access

def _get(entry: Mapping, key: str, default=None):
    """``entry[key]`` tolerating the leading space Swift descriptions leave on keys."""
    if key in entry:
        return entry[key]
    return entry.get(" " + key, default)


def _is_nil(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "nil"))


def _require(entry: Mapping, key: str, where: str):
    value = _get(entry, key)
    if _is_nil(value):
        raise MissingDataError(f"issue report: {where} has no {key!r}")
    return value


def _number(value, field: str, index: int | None) -> float:
    """A finite float from a number or a string such as ``" 14400.0"``."""
    try:
        x = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise InvalidInputError([Problem(field, index, value, "not a number")]) from None
    if not math.isfinite(x):
        raise InvalidInputError([Problem(field, index, value, "not a finite number")])
    return x


def _loop_datetime(value, field: str, index: int | None) -> _dt.datetime:
    """Aware UTC datetime for a Loop time string ``2019-08-12 01:28:19 +0000``."""
    text = value.strip() if isinstance(value, str) else value
    try:
        d = _dt.datetime.strptime(text, _LOOP_DATE_FORMAT)
    except (TypeError, ValueError):
        raise InvalidInputError([Problem(field, index, value, "not a time like '2019-08-12 01:28:19 +0000'")]) from None
    return d.astimezone(_dt.timezone.utc)


def _bool(value) -> bool:
    return str(value).strip().lower() == "true"


def _items(value, field: str) -> list:
    """A report list, given as a list or (override histories) as its Python repr string."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise InvalidInputError([Problem(field, None, value, "not a list of schedule items")]) from None
    if not isinstance(value, (list, tuple)):
        raise InvalidInputError([Problem(field, None, value, "expected a list")])
    return list(value)


def _parse_all(entries: Sequence, field: str, parse_one: Callable[[Mapping, int], Any]) -> list:
    """Apply ``parse_one(entry, index)`` to every entry; one error lists every bad entry."""
    problems: list[Problem] = []
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(Problem(field, i, entry, "expected an object"))
            continue
        try:
            out.append(parse_one(entry, i))
        except InvalidInputError as e:
            problems.extend(e.problems)
        except MissingDataError as e:
            problems.append(Problem(field, i, entry, str(e)))
    if problems:
        raise InvalidInputError(problems)
    return out


def _to_mg_dl(value: float, unit, field: str, index: int | None) -> float:
    u = "mg/dL" if _is_nil(unit) else str(unit).strip()
    if u.lower() == "mg/dl":
        return value
    if u.lower() == "mmol/l":
        return value * MMOL_TO_MGDL
    raise InvalidInputError([Problem(field, index, unit, "unknown glucose unit (expected mg/dL or mmol/L)")])


# ---------------------------------------------------------------- report time

def report_offset_s(report: Mapping) -> int:
    """Local UTC offset of the report in seconds (``basal_rate_timeZone``, else the other schedules' zones)."""
    for key in _OFFSET_KEYS:
        if not _is_nil(report.get(key)):
            return int(_number(report[key], key, None))
    warnings.warn("issue report has no time zone (basal_rate_timeZone); using UTC", LoopWarning, stacklevel=2)
    return 0


def loop_run_time(report: Mapping) -> _dt.datetime:
    """When Loop ran (aware UTC): the date of its recommended temp basal, else of its recommended bolus."""
    for key in ("recommended_temp_basal", "recommended_bolus"):
        rec = report.get(key)
        if isinstance(rec, Mapping) and not _is_nil(_get(rec, "date")):
            return _loop_datetime(_get(rec, "date"), f"{key}.date", None)
    raise MissingDataError(
        "issue report: no 'recommended_temp_basal' or 'recommended_bolus' date tells when Loop ran; pass at= "
        "(CLI --at)")


def _calculation_time(at, tz: _dt.tzinfo) -> _dt.datetime:
    """``at`` as an aware datetime; naive datetimes and strings without zone are local report time."""
    if isinstance(at, str):
        text = at.strip()
        try:
            d = _dt.datetime.strptime(text, _LOOP_DATE_FORMAT)
        except ValueError:
            try:
                d = _dt.datetime.fromisoformat(text)
            except ValueError:
                raise InvalidInputError([Problem("at", None, at, "not an ISO 8601 time")]) from None
    elif isinstance(at, _dt.datetime):
        d = at
    else:
        raise InvalidInputError([Problem("at", None, at, "expected a datetime or an ISO 8601 string")])
    return d.replace(tzinfo=tz) if d.tzinfo is None else d


# ---------------------------------------------------------------- sections

def glucose_section(report: Mapping, tz: _dt.tzinfo, until: _dt.datetime) -> dict:
    """``cached_glucose_samples`` up to ``until``, sorted: dates and values in mg/dL."""
    samples = report.get("cached_glucose_samples")
    if not samples:
        raise MissingDataError("issue report: no 'cached_glucose_samples'")

    def one(e, i):
        date = _loop_datetime(_require(e, "startDate", f"cached_glucose_samples[{i}]"),
                              "cached_glucose_samples.startDate", i)
        value = _number(_require(e, "quantity", f"cached_glucose_samples[{i}]"), "cached_glucose_samples.quantity", i)
        return date, _to_mg_dl(value, _get(e, "quantity_units"), "cached_glucose_samples.quantity_units", i)

    rows = sorted((r for r in _parse_all(samples, "cached_glucose_samples", one) if r[0] <= until),
                  key=lambda r: r[0])
    if not rows:
        raise MissingDataError(f"issue report: no glucose sample at or before {until.isoformat()}")
    return {
        "glucose_dates": [d.astimezone(tz) for d, _ in rows],
        "glucose_values": [v for _, v in rows],
        "glucose_units": "mg/dL",
    }


class _Dose(NamedTuple):
    """One dose of a report list; datetimes are aware UTC."""

    kind: DoseType
    start: _dt.datetime
    end: _dt.datetime
    value: float  # U for a bolus, U/h otherwise
    delivered_units: float | None
    scheduled: bool  # the scheduled basal ("BasalRateSchedule ..." sync identifier)


def _dose_type(entry: Mapping, field: str, index: int) -> DoseType:
    text = str(_require(entry, "type", f"{field}[{index}]")).strip()
    try:
        return DoseType.parse(text.rsplit(".", 1)[-1])
    except ValueError:
        raise InvalidInputError([Problem(f"{field}.type", index, text, "unknown dose type")]) from None


def _dose_value(kind: DoseType, entry: Mapping, hours: float, field: str, index: int) -> float:
    """U for boluses, U/h for basal-like doses, whatever unit the entry was recorded in."""
    value = _number(_require(entry, "value", f"{field}[{index}]"), f"{field}.value", index)
    unit = str(_get(entry, "unit", "")).strip().rsplit(".", 1)[-1].lower()
    if unit not in ("units", "unitsperhour"):
        raise InvalidInputError([Problem(f"{field}.unit", index, _get(entry, "unit"),
                                         "expected LoopKit.DoseUnit.units or .unitsPerHour")])
    if kind == DoseType.BOLUS:
        return value * hours if unit == "unitsperhour" else value
    if unit == "units":
        return value / hours if hours > 0 else 0.0
    return value


def _parse_doses(entries: Sequence, field: str, first_index: int = 0) -> list[_Dose]:
    """The doses of a report dose list."""

    def one(e, i):
        i += first_index
        start = _loop_datetime(_require(e, "startDate", f"{field}[{i}]"), f"{field}.startDate", i)
        end = _loop_datetime(_require(e, "endDate", f"{field}[{i}]"), f"{field}.endDate", i)
        if end < start:
            raise InvalidInputError([Problem(f"{field}.endDate", i, _get(e, "endDate"), "ends before it starts")])
        kind = _dose_type(e, field, i)
        value = _dose_value(kind, e, (end - start).total_seconds() / 3600.0, field, i)
        delivered = _get(e, "deliveredUnits")
        delivered = None if _is_nil(delivered) else _number(delivered, f"{field}.deliveredUnits", i)
        scheduled = "BasalRateSchedule" in str(_get(e, "syncIdentifier", ""))
        return _Dose(kind, start, end, value, delivered, scheduled)

    return _parse_all(entries, field, one)


def _loop_dose_rows(report: Mapping, allow_missing_doses: bool = False) -> list[_Dose]:
    """The dose list Loop used (see the module docstring), unsorted.

    A report with none of the dose sections is an error (it would read as "no insulin": IOB 0 and
    maximal dosing) unless ``allow_missing_doses``; sections present but empty give a warning."""
    if all(report.get(key) is None for key in _DOSE_SOURCES):
        if not allow_missing_doses:
            raise MissingDataError(f"issue report has no dose section ({', '.join(_DOSE_SOURCES)}): without "
                                   "the insulin history IOB would read 0; pass allow_missing_doses=True "
                                   "(CLI --allow-missing-doses) to run on no insulin deliberately")
        warnings.warn("issue report has no dose section: running with no insulin history (allow_missing_doses)",
                      LoopWarning, stacklevel=3)
        return []
    pump, normalized, cached = (report.get(key) or [] for key in _DOSE_SOURCES)
    if pump:
        rows = _parse_doses(pump, _DOSE_SOURCES[0])
        if normalized:
            last = _parse_doses(normalized[-1:], _DOSE_SOURCES[1], first_index=len(normalized) - 1)[0]
            if not any(r.kind == last.kind and r.start == last.start for r in rows):
                rows.append(last)
        return rows
    if normalized:
        return _parse_doses(normalized, _DOSE_SOURCES[1])
    if cached:
        return _parse_doses(cached, _DOSE_SOURCES[2])
    warnings.warn("issue report has no insulin doses", LoopWarning, stacklevel=3)
    return []


def _known_at(rows: list[_Dose], now: _dt.datetime) -> list[_Dose]:
    """Doses started by ``now``, sorted by start (stable); basal-like doses end at ``now`` at the latest."""
    kept = sorted((r for r in rows if r.start <= now), key=lambda r: r.start)
    return [r if r.kind == DoseType.BOLUS or r.end <= now else r._replace(end=now) for r in kept]


def dose_section(report: Mapping, tz: _dt.tzinfo, now: _dt.datetime, allow_missing_doses: bool = False) -> dict:
    """The doses Loop used, as PyLoopKit's index-matched dose lists (see :func:`_loop_dose_rows`)."""
    rows = _known_at(_loop_dose_rows(report, allow_missing_doses), now)
    return {
        "dose_types": [r.kind for r in rows],
        "dose_start_times": [r.start.astimezone(tz) for r in rows],
        "dose_end_times": [r.end.astimezone(tz) for r in rows],
        "dose_values": [r.value for r in rows],
        "dose_delivered_units": [r.delivered_units for r in rows],
        "dose_value_units": "U or U/hr",
    }


def carb_section(report: Mapping, tz: _dt.tzinfo, until: _dt.datetime | None) -> dict:
    """``cached_carb_entries`` sorted by date (those dated after ``until`` dropped when it is given):
    grams and absorption times in minutes (None = Loop's medium default)."""

    def one(e, i):
        where = f"cached_carb_entries[{i}]"
        date = _loop_datetime(_require(e, "startDate", where), "cached_carb_entries.startDate", i)
        grams = _number(_require(e, "quantity", where), "cached_carb_entries.quantity", i)
        absorption = _get(e, "absorptionTime")
        minutes = None if _is_nil(absorption) else _number(absorption, "cached_carb_entries.absorptionTime", i) / 60.0
        return date, grams, minutes

    rows = _parse_all(report.get("cached_carb_entries") or [], "cached_carb_entries", one)
    rows = sorted((r for r in rows if until is None or r[0] <= until), key=lambda r: r[0])
    return {
        "carb_dates": [r[0].astimezone(tz) for r in rows],
        "carb_values": [r[1] for r in rows],
        "carb_absorption_times": [r[2] for r in rows],
        "carb_value_units": "g",
    }


def insulin_model(report: Mapping) -> list[float]:
    """PyLoopKit's ``model``: ``[DIA min, peak min]`` for exponential presets, ``[DIA h]`` for Walsh."""
    name = report.get("insulin_model")
    if _is_nil(name):
        raise MissingDataError("issue report: no 'insulin_model'")
    key = str(name).strip().lower()
    dia = report.get("insulin_action_duration")
    dia_s = None if _is_nil(dia) else _number(dia, "insulin_action_duration", None)
    if key == "walsh":
        if dia_s is None:
            raise MissingDataError("issue report: Walsh insulin model without 'insulin_action_duration'")
        return [dia_s / 3600.0]
    if key not in EXPONENTIAL_PEAKS_MIN:
        raise InvalidInputError([Problem("insulin_model", None, name, "unknown insulin model")])
    dia_min = dia_s / 60.0 if dia_s is not None else EXPONENTIAL_DEFAULT_DIA_MIN.get(key, 360.0)
    return [dia_min, EXPONENTIAL_PEAKS_MIN[key]]


def pump_rounding_rule(report: Mapping) -> str:
    """The :data:`pyloopkit.pump_rounding.PUMP_ROUNDING` rule for the report's pump and Loop version:
    Tidepool's parser writes ``pump_manager_type`` (``minimed``, ``omnipod`` = Eros, ``unknown``) and, for
    Medtronic, ``pump_model``; a report without them (the reference reports) gets the documented
    default, 0.05 U/h and 0.05 U rounded down (:data:`pyloopkit.pump_rounding.DEFAULT_RULE`)."""
    manager, model, version = (report.get(k) for k in ("pump_manager_type", "pump_model", "loop_version"))
    return rule_name(None if _is_nil(manager) else str(manager).strip(),
                     None if _is_nil(model) else str(model).strip(),
                     None if _is_nil(version) else str(version))


def settings_section(report: Mapping) -> dict:
    """``settings_dictionary``: insulin model, momentum interval, suspend threshold, carb defaults,
    maximum basal rate and bolus, retrospective correction, the pump's rounding rule
    (``pump_rounding``) and Loop's built-in values."""
    store = report.get("glucose_store") or {}
    momentum = _get(store, "momentumDataInterval")
    threshold = report.get("suspend_threshold")
    settings = {
        "model": insulin_model(report),
        "momentum_data_interval": 15.0 if _is_nil(momentum) else _number(
            momentum, "glucose_store.momentumDataInterval", None) / 60.0,
        "suspend_threshold": None if _is_nil(threshold) else _to_mg_dl(
            _number(threshold, "suspend_threshold", None), report.get("suspend_threshold_unit"),
            "suspend_threshold_unit", None),
        "retrospective_correction_enabled": _bool(report.get("retrospective_correction_enabled")),
        "default_absorption_times": [
            _number(_require(report, f"carb_default_absorption_times_{speed}", "report"),
                    f"carb_default_absorption_times_{speed}", None) / 60.0
            for speed in ("fast", "medium", "slow")],
        "max_basal_rate": _number(_require(report, "maximum_basal_rate", "report"), "maximum_basal_rate", None),
        "max_bolus": _number(_require(report, "maximum_bolus", "report"), "maximum_bolus", None),
    }
    settings["pump_rounding"] = pump_rounding_rule(report)
    settings.update(LOOP_FIXED_SETTINGS)
    return settings


def _schedule_items(report: Mapping, kind: str) -> tuple[str, list]:
    """(key, items) of a schedule, preferring the one with the active override applied."""
    for key in _OVERRIDE_SCHEDULE_KEYS[kind]:
        if not _is_nil(report.get(key)) and report.get(key) != []:
            return key, _items(report[key], key)
    raise MissingDataError(f"issue report: no {' or '.join(map(repr, _OVERRIDE_SCHEDULE_KEYS[kind]))}")


def _schedule_rows(items: list, field: str, value_of: Callable[[Any, int], Any]) -> tuple[np.ndarray, list]:
    """Start seconds (sorted, unique, in [0, 86400)) and values of schedule items."""

    def one(e, i):
        start = _number(_require(e, "startTime", f"{field}[{i}]"), f"{field}.startTime", i)
        if not 0.0 <= start < 86400.0:
            raise InvalidInputError([Problem(f"{field}.startTime", i, start, "not in [0, 86400) s")])
        return start, value_of(_require(e, "value", f"{field}[{i}]"), i)

    rows = sorted(_parse_all(items, field, one), key=lambda r: r[0])
    if not rows:
        raise MissingDataError(f"issue report: {field} is empty")
    starts = np.array([r[0] for r in rows])
    dup = np.flatnonzero(np.diff(starts) == 0)
    if dup.size:
        raise InvalidInputError([Problem(f"{field}.startTime", None, float(starts[k]), "repeated start time")
                                 for k in dup])
    return starts, [r[1] for r in rows]


def _time_of_day(seconds: float) -> _dt.time:
    s = int(round(seconds))
    return _dt.time(s // 3600, s % 3600 // 60, s % 60)


def _starts_and_ends(starts_s: np.ndarray) -> tuple[list[_dt.time], list[_dt.time]]:
    """Start times and end times (the next start; the last wraps to the first)."""
    starts = [_time_of_day(s) for s in starts_s]
    return starts, starts[1:] + starts[:1]


def basal_section(report: Mapping) -> dict:
    """Basal rate schedule (U/h) with each item's length in minutes."""
    key, items = _schedule_items(report, "basal")
    starts_s, values = _schedule_rows(items, key, lambda v, i: _number(v, f"{key}.value", i))
    minutes = np.diff(np.append(starts_s, 86400.0)) / 60.0
    return {
        "basal_rate_start_times": _starts_and_ends(starts_s)[0],
        "basal_rate_minutes": minutes.tolist(),
        "basal_rate_values": values,
        "basal_rate_units": "U/hr",
    }


def sensitivity_section(report: Mapping) -> dict:
    """Insulin sensitivity schedule in mg/dL/U."""
    key, items = _schedule_items(report, "sensitivity")
    unit = report.get("insulin_sensitivity_factor_unit")
    starts_s, values = _schedule_rows(
        items, key, lambda v, i: _to_mg_dl(_number(v, f"{key}.value", i), unit, "insulin_sensitivity_factor_unit", i))
    starts, ends = _starts_and_ends(starts_s)
    return {
        "sensitivity_ratio_start_times": starts,
        "sensitivity_ratio_end_times": ends,
        "sensitivity_ratio_values": values,
        "sensitivity_ratio_value_units": "mg/dL/U",
    }


def carb_ratio_section(report: Mapping) -> dict:
    """Carb ratio schedule in g/U."""
    key, items = _schedule_items(report, "carb_ratio")
    starts_s, values = _schedule_rows(items, key, lambda v, i: _number(v, f"{key}.value", i))
    return {
        "carb_ratio_start_times": _starts_and_ends(starts_s)[0],
        "carb_ratio_values": values,
        "carb_ratio_value_units": "g/U",
    }


def target_range_section(report: Mapping) -> dict:
    """Correction range schedule (min, max) in mg/dL. The unit is ``override_units`` when the
    report has it, else the ISF unit, else mg/dL (Loop uses one display unit for all)."""
    key = "correction_range_schedule"
    if _is_nil(report.get(key)) or report.get(key) == []:
        raise MissingDataError(f"issue report: no {key!r}")
    unit = report.get("override_units") or report.get("insulin_sensitivity_factor_unit")

    def bounds(value, i):
        pair = _items(value, f"{key}.value") if isinstance(value, str) else value
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InvalidInputError([Problem(f"{key}.value", i, value, "expected [minimum, maximum]")])
        lo, hi = (_to_mg_dl(_number(x, f"{key}.value", i), unit, "override_units", i) for x in pair)
        if lo > hi:
            raise InvalidInputError([Problem(f"{key}.value", i, value, "minimum above maximum")])
        return lo, hi

    starts_s, pairs = _schedule_rows(_items(report[key], key), key, bounds)
    starts, ends = _starts_and_ends(starts_s)
    return {
        "target_range_start_times": starts,
        "target_range_end_times": ends,
        "target_range_minimum_values": [p[0] for p in pairs],
        "target_range_maximum_values": [p[1] for p in pairs],
        "target_range_value_units": "mg/dL",
    }


def _last_temp_basal_list(dose: _Dose, tz: _dt.tzinfo) -> list:
    return [dose.kind, dose.start.astimezone(tz), dose.end.astimezone(tz), dose.value]


def last_temp_basal_section(report: Mapping, tz: _dt.tzinfo) -> list:
    """``[type, start, end, rate U/h]`` from ``last_temp_basal`` (type as the report gives it,
    ``BASAL`` in Loop 1.x reports), or ``[]`` when absent."""
    entry = report.get("last_temp_basal")
    if not isinstance(entry, Mapping) or not entry:
        warnings.warn("issue report has no 'last_temp_basal'", LoopWarning, stacklevel=3)
        return []
    dose = _parse_doses([entry], "last_temp_basal")[0]
    if dose.kind not in (DoseType.BASAL, DoseType.TEMP_BASAL):
        raise InvalidInputError([Problem("last_temp_basal.type", None, _get(entry, "type"), "not a basal")])
    return _last_temp_basal_list(dose, tz)


def _programmed_temp_basal_ends(report: Mapping) -> dict:
    """Programmed end (aware UTC) of each temp basal in the raw ``get_pump_event_values``, by start.
    The normalized doses end a temp basal where the next one began; the pump event keeps its
    programmed end. Events without start and end dates (alarms, prime, ...) are not doses."""
    field = "get_pump_event_values"
    events = [(i, e) for i, e in enumerate(report.get(field) or [])
              if isinstance(e, Mapping) and "asal" in str(_get(e, "type", ""))
              and not _is_nil(_get(e, "startDate")) and not _is_nil(_get(e, "endDate"))]
    return {_loop_datetime(_get(e, "startDate"), f"{field}.startDate", i):
            _loop_datetime(_get(e, "endDate"), f"{field}.endDate", i) for i, e in events}


def _last_temp_basal_at(report: Mapping, tz: _dt.tzinfo, now: _dt.datetime) -> list:
    """The temp basal running (as programmed) when Loop ran at ``now``: the report's last one when it
    started before ``now``, else the latest basal or temp basal dose (not the scheduled basal) started
    before ``now``, with its programmed end from the pump events when they have it. A temp basal
    starting exactly at ``now`` is the one this run enacted, so it is not the previous one."""
    reported = last_temp_basal_section(report, tz)
    if reported and reported[1] < now:
        return reported
    temps = [r for r in _loop_dose_rows(report)
             if r.kind in (DoseType.BASAL, DoseType.TEMP_BASAL) and not r.scheduled and r.start < now]
    if not temps:
        return []
    last = max(temps, key=lambda r: r.start)
    return _last_temp_basal_list(last._replace(end=_programmed_temp_basal_ends(report).get(last.start, last.end)), tz)


# ---------------------------------------------------------------- public API

def _load(path_or_dict) -> dict:
    if isinstance(path_or_dict, Mapping):
        return dict(path_or_dict)
    with open(path_or_dict, "r", encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise InvalidInputError([Problem("report", None, type(data).__name__, "expected a JSON object")])
    return data


def _joined(path, file_name) -> str:
    return os.fspath(path) if file_name is None else os.path.join(path, file_name)


def parse_report(path_or_dict, at=None, counteraction: str = "report", allow_missing_doses: bool = False,
                 rounding: str | None = None, pump_rounding: str | None = None) -> dict:
    """The :func:`pyloopkit.update` input dictionary for a Tidepool-parsed Loop issue report.

    Parameters
    ----------
    path_or_dict : str, os.PathLike or dict
        The report JSON file, or its already-loaded dictionary.
    at : datetime or str, optional
        Time to calculate at. Default: when Loop ran (the date of its recommendations), so the
        result can be compared with the report's own ``predicted_glucose``. A naive datetime or
        zone-less string is local report time. Glucose after ``at``, doses started after it and
        carbs dated after it are left out, basal-like doses end at ``at`` at the latest, and the
        last temporary basal is the one programmed before then.
    counteraction : ``"report"`` or ``"computed"``
        ``"report"`` (default): use the counteraction effects Loop had cached (those in the
        report that ended by the calculation time), as Loop itself does between runs.
        ``"computed"``: recompute them from the report's glucose and doses only.
    allow_missing_doses : bool
        Run a report that has no dose section at all as if no insulin had been given (with a
        warning). By default that is a :class:`MissingDataError`: the missing history would read
        as IOB 0 and give maximal dosing.
    rounding : ``"nearest"`` or ``"down"``, optional
        Round recommendations this way instead of the pump rule's direction (the rule's increments
        are kept). Default: the rule's own (see docs/update.md, "Pump rounding").
    pump_rounding : str, optional
        A :data:`pyloopkit.pump_rounding.PUMP_ROUNDING` rule name to use instead of the one read from
        the report (for a report that does not say which pump it came from).

    Returns
    -------
    dict
        PyLoopKit's input keys (see the module docstring for units and conventions), plus
        ``offset_applied_to_dates`` (local UTC offset in seconds) and ``dose_delivered_units``.

    Raises
    ------
    MissingDataError
        A section the algorithm needs is absent (names the key).
    InvalidInputError
        Values that cannot be read (names field, index and value).
    """
    report = _load(path_or_dict)
    offset_s = report_offset_s(report)
    tz = _dt.timezone(_dt.timedelta(seconds=offset_s))
    if counteraction not in COUNTERACTION_SOURCES:
        raise ValueError(f"counteraction must be one of {COUNTERACTION_SOURCES}, got {counteraction!r}")
    printed = loop_run_time(report) if at is None else _calculation_time(at, tz)
    now = printed + _dt.timedelta(seconds=RUN_TIME_MIDPOINT_S) if at is None else printed
    last_temp = _last_temp_basal_at(report, tz, printed)
    out: dict[str, Any] = {"offset_applied_to_dates": offset_s, "time_to_calculate_at": now.astimezone(tz)}
    out.update(glucose_section(report, tz, now))
    out.update(dose_section(report, tz, now, allow_missing_doses))
    out.update(carb_section(report, tz, None if at is None else now))
    out["settings_dictionary"] = settings_section(report)
    out["settings_dictionary"].update(_rounding_overrides(rounding, pump_rounding))
    out.update(sensitivity_section(report))
    out.update(carb_ratio_section(report))
    out.update(basal_section(report))
    out.update(target_range_section(report))
    out["last_temporary_basal"] = last_temp
    if counteraction == "report":
        out.update(counteraction_section(report, tz, now))
    return out


def _rounding_overrides(rounding: str | None, pump_rounding: str | None) -> dict:
    """The caller's ``rounding`` / ``pump_rounding`` settings, checked (None: keep the report's rule)."""
    out = {}
    if rounding is not None:
        if rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {rounding!r}")
        out["rounding"] = rounding
    if pump_rounding is not None:
        if pump_rounding not in PUMP_ROUNDING:
            raise ValueError(f"pump_rounding must be one of {tuple(PUMP_ROUNDING)}, got {pump_rounding!r}")
        out["pump_rounding"] = pump_rounding
    return out


def counteraction_section(report: Mapping, tz: _dt.tzinfo, until: _dt.datetime) -> dict:
    """Loop's cached insulin counteraction effects (mg/dL/min) that ended by ``until``, as
    ``update()``'s ``counteraction_starts/ends/values``; empty when the report has none.

    Loop keeps these between runs and only adds the intervals after the last cached one;
    the report's dose list covers only the last hours, so counteraction recomputed from it
    misses older insulin (up to 1.3 mg/dL/min off in the reference reports).
    """
    starts, ends, values = _counteraction_series(report, tz)
    keep = [i for i, end in enumerate(ends) if end <= until]
    if not keep:
        return {}
    return {"counteraction_starts": [starts[i] for i in keep],
            "counteraction_ends": [ends[i] for i in keep],
            "counteraction_values": [float(values[i]) for i in keep]}


def parse_report_and_run(path, file_name=None, at=None, counteraction: str = "report",
                         allow_missing_doses: bool = False, rounding: str | None = None,
                         pump_rounding: str | None = None) -> dict:
    """Parse an issue report (``path`` joined with ``file_name`` when given) and run
    :func:`pyloopkit.loop_data_manager.update` on it; the output carries ``input_data``.
    ``at``, ``counteraction``, ``allow_missing_doses``, ``rounding`` and ``pump_rounding`` are as in
    :func:`parse_report`."""
    from .loop_data_manager import update

    input_dict = parse_report(_joined(path, file_name), at=at, counteraction=counteraction,
                              allow_missing_doses=allow_missing_doses, rounding=rounding,
                              pump_rounding=pump_rounding)
    output = update(input_dict)
    output.setdefault("input_data", input_dict)
    return output


def _decode_time_value(value):
    """A ``datetime.time`` for ``HH:MM[:SS]`` strings, a datetime for other strings."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _TIME_OF_DAY.match(text):
        return _time_of_day(parse_time_of_day(text))
    try:
        return _dt.datetime.fromisoformat(text)
    except ValueError:
        return _loop_datetime(text, "date", None)


_DATE_KEY_SUFFIXES = ("_dates", "_times", "_starts", "_ends")


def parse_dictionary_from_previous_run(path, file_name=None) -> dict:
    """A saved :func:`update` input dictionary (like PyLoopKit's ``example_from_previous_run.json``;
    ``path`` joined with ``file_name`` when given) with its ISO date strings as datetimes,
    ``HH:MM:SS`` strings as ``datetime.time`` and dose types as :class:`DoseType`. Keys ending
    in ``_dates``, ``_times``, ``_starts`` or ``_ends`` are decoded, as are ``time_to_calculate_at``
    and ``last_temporary_basal``. ``path`` may also be the already-loaded JSON object (a dict,
    as an HTTP request body arrives). Unlike PyLoopKit's function of this name it does not run
    :func:`update`: pass the result to it."""
    data = _load(path if isinstance(path, Mapping) else _joined(path, file_name))
    out = dict(data)
    problems = []
    for key, value in data.items():
        if not (key.endswith(_DATE_KEY_SUFFIXES) or key == "time_to_calculate_at"):
            continue
        try:
            out[key] = ([_decode_time_value(v) for v in value] if isinstance(value, list)
                        else _decode_time_value(value))
        except (ValueError, InvalidInputError):
            problems.append(Problem(key, None, value, "not ISO 8601 dates or HH:MM:SS times"))
    types = data.get("dose_types", [])
    try:
        if not isinstance(types, list):
            raise ValueError("expected a list of dose types")
        out["dose_types"] = [DoseType.parse(t) for t in types]
    except ValueError as e:
        problems.append(Problem("dose_types", None, types, str(e)))
    last = data.get("last_temporary_basal") or []
    if last:
        if not isinstance(last, list) or len(last) != 4:
            problems.append(Problem("last_temporary_basal", None, last, "expected [type, start, end, rate]"))
        else:
            try:
                out["last_temporary_basal"] = [DoseType.parse(last[0]), _decode_time_value(last[1]),
                                               _decode_time_value(last[2]), last[3]]
            except (ValueError, InvalidInputError):
                problems.append(Problem("last_temporary_basal", None, last, "unreadable type or dates"))
    if problems:
        raise InvalidInputError(problems)
    return out


def _json_value(value):
    if isinstance(value, DoseType):
        return value.name.lower().replace("_", "")
    if isinstance(value, (_dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def input_dict_to_json(input_dict: Mapping) -> dict:
    """A JSON-ready copy of an input dictionary in PyLoopKit's saved-run format: ISO 8601
    datetimes, ``HH:MM:SS`` times, dose types as lower-case names (``bolus``, ``tempbasal``)."""
    return {k: _json_value(v) for k, v in input_dict.items()}


# ---------------------------------------------------------------- Loop's own outputs

def _series(report: Mapping, key: str, date_key: str, value_key: str, tz) -> tuple[list, np.ndarray]:
    entries = report.get(key) or []

    def one(e, i):
        return (_loop_datetime(_require(e, date_key, f"{key}[{i}]"), f"{key}.{date_key}", i),
                _number(_require(e, value_key, f"{key}[{i}]"), f"{key}.{value_key}", i))

    rows = _parse_all(entries, key, one)
    return [d.astimezone(tz) for d, _ in rows], np.array([v for _, v in rows], dtype=float)


def _bolus_notice(rec: Mapping):
    """``None`` or ``[name, glucose mg/dL or None]`` from Loop's truncated notice description."""
    notice = _get(rec, "notice")
    if _is_nil(notice):
        return None
    match = re.search(r"BolusRecommendationNotice\.(\w+)", str(notice))
    name = match.group(1) if match else str(notice).strip()
    quantity = _get(rec, "quantity")
    glucose = None
    if not _is_nil(quantity):
        parts = str(quantity).split()
        glucose = _to_mg_dl(_number(parts[0], "recommended_bolus.quantity", None),
                            parts[1] if len(parts) > 1 else None, "recommended_bolus.quantity", None)
    return [name, glucose]


def _counteraction_series(report: Mapping, tz) -> tuple[list, list, np.ndarray]:
    """The report's insulin counteraction effects: start and end datetimes (local zone), mg/dL/min."""
    ice = report.get("insulin_counteraction_effects") or []
    starts, values = _series(report, "insulin_counteraction_effects", "start_time", "value", tz)
    ends = [_loop_datetime(_require(e, "end_time", f"insulin_counteraction_effects[{i}]"),
                           "insulin_counteraction_effects.end_time", i).astimezone(tz) for i, e in enumerate(ice)]
    return starts, ends, values


def loop_reference_outputs(report) -> dict:
    """The Loop app's own results stored in an issue report, for conformance tests.

    Dates are aware datetimes in the report's local zone, values float arrays:
    ``predicted_glucose_*`` (mg/dL), ``insulin_effect_*``, ``carb_effect_*``,
    ``momentum_effect_*``, ``retrospective_effect_*`` (mg/dL; Loop stored the retrospective
    effect as glucose values), ``counteraction_effect_start_times/end_times/values`` (mg/dL/min),
    ``carbs_on_board`` (g, or None) with ``carbs_on_board_date``,
    ``recommended_temp_basal`` (``[rate U/h, duration min]`` or None),
    ``recommended_bolus`` (``[amount U, pending insulin U, notice]`` or None, notice None or
    ``[name, glucose mg/dL]``) and ``time_to_calculate_at`` (when Loop ran).
    """
    report = _load(report)
    tz = _dt.timezone(_dt.timedelta(seconds=report_offset_s(report)))
    out: dict[str, Any] = {}
    for name, key, date_key, value_key in (
            ("predicted_glucose", "predicted_glucose", "start_time", "value"),
            ("insulin_effect", "insulin_effect", "start_time", "value"),
            ("carb_effect", "carb_effect", "start_time", "value"),
            ("momentum_effect", "glucose_momentum_effect", "startDate", "quantity"),
            ("retrospective_effect", "retrospective_glucose_effect", "startDate", "quantity")):
        out[f"{name}_dates"], out[f"{name}_values"] = _series(report, key, date_key, value_key, tz)

    (out["counteraction_effect_start_times"], out["counteraction_effect_end_times"],
     out["counteraction_effect_values"]) = _counteraction_series(report, tz)

    cob = report.get("carbs_on_board")
    if isinstance(cob, Mapping) and not _is_nil(_get(cob, "quantity")):
        out["carbs_on_board"] = _number(_get(cob, "quantity"), "carbs_on_board.quantity", None)
        out["carbs_on_board_date"] = _loop_datetime(
            _require(cob, "startDate", "carbs_on_board"), "carbs_on_board.startDate", None).astimezone(tz)
    else:
        out["carbs_on_board"], out["carbs_on_board_date"] = None, None

    temp = report.get("recommended_temp_basal")
    out["recommended_temp_basal"] = None if not isinstance(temp, Mapping) or not temp else [
        _number(_require(temp, "unitsPerHour", "recommended_temp_basal"), "recommended_temp_basal.unitsPerHour", None),
        _number(_require(temp, "duration", "recommended_temp_basal"), "recommended_temp_basal.duration", None) / 60.0]
    bolus = report.get("recommended_bolus")
    out["recommended_bolus"] = None if not isinstance(bolus, Mapping) or not bolus else [
        _number(_require(bolus, "amount", "recommended_bolus"), "recommended_bolus.amount", None),
        0.0 if _is_nil(_get(bolus, "pendingInsulin")) else _number(
            _get(bolus, "pendingInsulin"), "recommended_bolus.pendingInsulin", None),
        _bolus_notice(bolus)]
    out["time_to_calculate_at"] = loop_run_time(report).astimezone(tz)
    return out
