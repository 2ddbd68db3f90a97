"""Tune's JSON wire format, version 1 (mariusae/tune, README "API"), decoded and encoded exactly.

A request carries timelines indexed by Unix timestamps (seconds). Every ``index``, ``values`` and
``durations`` list is *delta encoded*: the first element is the difference from 0, each next one
the difference from the previous. An element may also be *run-length encoded* as a 2-element
list ``[delta, count]`` standing for ``count`` repetitions of ``delta`` (applied after delta
encoding; Tune's README strikes this option out but describes it, so it is accepted on input and
produced on output only when asked for). Units on the wire:

=========  ==========================================  ==================================
type       values                                      extra
=========  ==========================================  ==================================
basal      rate in mU/h delivered from the index time  ``durations`` in seconds (required)
insulin    amount in mU delivered at the index time    ``durations`` optional (s)
bolus      amount in mU (Tune's codec accepts it)      ``durations`` optional (s)
carb       grams eaten at the index time               ``parameters``: delay, duration (min)
glucose    mg/dL                                       --
=========  ==========================================  ==================================

Insulin timelines carry ``parameters`` (delay, peak, duration in minutes) of their action curve.
``durations`` are delta encoded like the other lists (as Tune's ``codec.py`` decodes them).
Current schedules are ``{"index": [minutes since midnight], "values": [...]}`` (ISF mg/dL/U,
carb ratio g/U, basal U/h). Optional fields: ``minimum_time_interval`` (s),
``maximum_schedule_item_count``, ``allowed_basal_rates`` (U/h), ``tuning_limit`` (fraction),
``basal_insulin_parameters``, ``tune_parameters`` and ``hyper_params``.

:func:`decode` checks everything and raises :class:`TuneFormatError` listing every problem
(field path, index, value, reason); :func:`encode` is its exact inverse for integer data
(floats round-trip to within an ulp of the running sum).
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError, Problem

VERSION = 1
TIMELINE_TYPES = ("basal", "insulin", "bolus", "carb", "glucose")
INSULIN_TYPES = ("basal", "insulin", "bolus")
SCHEDULE_FIELDS = ("insulin_sensitivity_schedule", "carb_ratio_schedule", "basal_rate_schedule")
DEFAULT_INSULIN_PARAMETERS = {"delay": 5.0, "peak": 65.0, "duration": 205.0}
"""Tune's defaults (``codec.Request.basal_insulin_parameters``), minutes."""
DEFAULT_CARB_PARAMETERS = {"delay": 15.0, "duration": 180.0}
"""Used when a carb timeline has no ``parameters`` (minutes)."""
_OPTIONAL = ("minimum_time_interval", "maximum_schedule_item_count", "allowed_basal_rates", "tuning_limit",
             "basal_insulin_parameters", "tune_parameters", "hyper_params")
_KNOWN = ("version", "timezone", "timelines") + SCHEDULE_FIELDS + _OPTIONAL
_TUNABLE = ("insulin_sensitivity_schedule", "carb_ratio_schedule", "basal_rate_schedule")


class TuneFormatError(InvalidInputError):
    """A Tune request that does not follow the version 1 layout (an HTTP 400)."""


@dataclass
class Timeline:
    """One decoded timeline: absolute Unix times (s) and values in the wire units."""

    type: str
    index_s: np.ndarray
    values: np.ndarray
    durations_s: np.ndarray | None = None
    parameters: dict = field(default_factory=dict)


@dataclass
class Schedule:
    """A daily schedule: minutes since midnight (sorted) and the value in force from each."""

    index_min: list
    values: list

    def to_dict(self) -> dict:
        return {"index": list(self.index_min), "values": list(self.values)}


@dataclass
class TuneRequest:
    """A decoded version 1 request (see the module docstring for the fields and units)."""

    timezone: str
    timelines: list
    insulin_sensitivity_schedule: Schedule | None = None
    carb_ratio_schedule: Schedule | None = None
    basal_rate_schedule: Schedule | None = None
    minimum_time_interval: int | None = None
    maximum_schedule_item_count: int | None = None
    allowed_basal_rates: list | None = None
    tuning_limit: float | None = None
    basal_insulin_parameters: dict | None = None
    tune_parameters: list | None = None
    hyper_params: dict | None = None
    version: int = VERSION

    def timelines_of(self, *types: str) -> list:
        return [t for t in self.timelines if t.type in types]


# --- helpers -------------------------------------------------------------------------------------

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite_number(v) -> bool:
    return _is_number(v) and math.isfinite(v)


def tzinfo(name: str):
    """A ``tzinfo`` for an IANA name or iOS's ``GMT+HHMM`` / ``GMT-HHMM`` form."""
    if isinstance(name, str) and len(name) == 8 and name[:4] in ("GMT+", "GMT-") and name[4:].isdigit():
        delta = _dt.timedelta(hours=int(name[4:6]), minutes=int(name[6:8]))
        return _dt.timezone(-delta if name[3] == "-" else delta)
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _expand(raw, path: str, problems: list) -> list | None:
    """The delta list with run-length pairs expanded, or None after recording problems."""
    if not isinstance(raw, list):
        problems.append(Problem(path, None, raw, "must be a list"))
        return None
    out, ok = [], True
    for i, item in enumerate(raw):
        if isinstance(item, list):
            if (len(item) != 2 or not _finite_number(item[0]) or not isinstance(item[1], int)
                    or isinstance(item[1], bool) or item[1] < 1):
                problems.append(Problem(path, i, item, "a run-length pair must be [finite number, count >= 1]"))
                ok = False
                continue
            out.extend([item[0]] * item[1])
        elif _finite_number(item):
            out.append(item)
        else:
            problems.append(Problem(path, i, item, "must be a finite number (NaN/Infinity are not allowed)"))
            ok = False
    return out if ok else None


def undelta(deltas: list) -> np.ndarray:
    """Running sum of a delta list (Python ints stay exact; floats add left to right)."""
    if all(isinstance(d, int) for d in deltas):
        return np.array(list(_accumulate(deltas)), dtype=np.int64 if deltas else float)
    return np.cumsum(np.asarray(deltas, dtype=float))


def _accumulate(deltas):
    total = 0
    for d in deltas:
        total += d
        yield total


def _decoded(timeline: dict, key: str, path: str, problems: list) -> np.ndarray | None:
    deltas = _expand(timeline[key], f"{path}.{key}", problems)
    return None if deltas is None else undelta(deltas)


def _parameters(timeline: dict, kind: str, path: str, default: dict, problems: list) -> dict:
    raw = timeline.get("parameters")
    if raw is None:
        return dict(default)
    if not isinstance(raw, dict):
        problems.append(Problem(f"{path}.parameters", None, raw, "must be an object"))
        return dict(default)
    out = dict(default)
    n_before = len(problems)
    for name in default:
        if name in raw:
            v = raw[name]
            if not _finite_number(v) or v < 0:
                problems.append(Problem(f"{path}.parameters.{name}", None, v, "must be a finite number >= 0 (min)"))
            else:
                out[name] = float(v)
    unknown = sorted(set(raw) - set(default))
    if unknown:
        problems.append(Problem(f"{path}.parameters", None, unknown, f"unknown parameter(s) for a {kind} timeline"))
    if kind in INSULIN_TYPES and len(problems) == n_before and not out["peak"] < out["duration"] / 2:
        problems.append(Problem(f"{path}.parameters.peak", None, out["peak"], "must be below half the duration"))
    if kind == "carb" and len(problems) == n_before and not out["duration"] > 0:
        problems.append(Problem(f"{path}.parameters.duration", None, out["duration"], "must be > 0 minutes"))
    return out


def _check_values(kind: str, values: np.ndarray, path: str, problems: list) -> None:
    bad = np.flatnonzero(values <= 0) if kind == "glucose" else np.flatnonzero(values < 0)
    reason = "glucose must be > 0 mg/dL" if kind == "glucose" else "must be >= 0"
    problems.extend(Problem(f"{path}.values", int(i), values[i].item(), f"decoded value {reason}") for i in bad[:20])


def _check_sorted(index: np.ndarray, path: str, strict: bool, problems: list) -> None:
    steps = np.diff(index)
    bad = np.flatnonzero(steps <= 0 if strict else steps < 0)
    reason = "timestamps must increase" if strict else "timestamps must not decrease"
    problems.extend(Problem(f"{path}.index", int(i) + 1, index[i + 1].item(),
                            f"{reason} (decoded; the delta is negative or zero)" if strict else
                            f"{reason} (decoded; the delta is negative)") for i in bad[:20])


def _timeline(raw, i: int, insulin_default: dict, problems: list) -> Timeline | None:
    path = f"timelines[{i}]"
    if not isinstance(raw, dict):
        problems.append(Problem("timelines", i, raw, "must be an object"))
        return None
    kind = raw.get("type")
    if kind not in TIMELINE_TYPES:
        problems.append(Problem(f"{path}.type", None, kind, f"unknown timeline type; expected one of {TIMELINE_TYPES}"))
        return None
    allowed = {"type", "index", "values", "parameters"} | ({"durations"} if kind in INSULIN_TYPES else set())
    unknown = sorted(set(raw) - allowed)
    if unknown:
        problems.append(Problem(path, None, unknown, f"unknown field(s) for a {kind} timeline"))
    need = ("index", "values", "durations") if kind == "basal" else ("index", "values")
    missing = [k for k in need if k not in raw]
    if missing:
        problems.append(Problem(path, None, missing, "missing field(s)"))
        return None
    n_before = len(problems)
    index = _decoded(raw, "index", path, problems)
    values = _decoded(raw, "values", path, problems)
    durations = _decoded(raw, "durations", path, problems) if "durations" in raw else None
    default = insulin_default if kind in INSULIN_TYPES else DEFAULT_CARB_PARAMETERS if kind == "carb" else {}
    params = _parameters(raw, kind, path, default, problems) if default else {}
    if kind == "glucose" and "parameters" in raw:
        problems.append(Problem(f"{path}.parameters", None, raw["parameters"], "a glucose timeline has no parameters"))
    if len(problems) > n_before:
        return None
    lengths = {"index": len(index), "values": len(values)} | ({} if durations is None else {"durations": len(durations)})
    if len(set(lengths.values())) > 1:
        problems.append(Problem(path, None, lengths, "index, values (and durations) must have the same decoded length"))
        return None
    _check_sorted(index, path, kind == "glucose", problems)
    _check_values(kind, values, path, problems)
    if durations is not None:
        bad = np.flatnonzero(durations < 0)
        problems.extend(Problem(f"{path}.durations", int(j), durations[j].item(), "decoded duration must be >= 0 s")
                        for j in bad[:20])
    return Timeline(kind, index, values, durations, params)


def _schedule(raw, name: str, problems: list) -> Schedule | None:
    if not isinstance(raw, dict) or set(raw) != {"index", "values"}:
        problems.append(Problem(name, None, raw, 'must be an object with exactly "index" and "values"'))
        return None
    index, values = raw["index"], raw["values"]
    n_before = len(problems)
    for key, seq in (("index", index), ("values", values)):
        if not isinstance(seq, list) or not seq:
            problems.append(Problem(f"{name}.{key}", None, seq, "must be a non-empty list"))
    if len(problems) > n_before:
        return None
    if len(index) != len(values):
        problems.append(Problem(name, None, {"index": len(index), "values": len(values)}, "lengths differ"))
        return None
    for j, m in enumerate(index):
        if not _finite_number(m) or m != int(m) or not 0 <= m < 1440:
            problems.append(Problem(f"{name}.index", j, m, "must be whole minutes since midnight in [0, 1440)"))
        elif j and _finite_number(index[j - 1]) and m <= index[j - 1]:
            problems.append(Problem(f"{name}.index", j, m, "minutes must increase"))
    for j, v in enumerate(values):
        if not _finite_number(v) or v <= 0:
            problems.append(Problem(f"{name}.values", j, v, "must be a finite number > 0"))
    if len(problems) > n_before:
        return None
    return Schedule([int(m) for m in index], [float(v) for v in values])


def _optional_scalars(payload: dict, problems: list) -> dict:
    out = {}
    for key in ("minimum_time_interval", "maximum_schedule_item_count"):
        v = payload.get(key)
        if v is not None and (not _finite_number(v) or v != int(v) or v < 1):
            problems.append(Problem(key, None, v, "must be a whole number >= 1"))
        out[key] = None if v is None else int(v) if _finite_number(v) else None
    limit = payload.get("tuning_limit")
    if limit is not None and (not _finite_number(limit) or not 0 <= limit < 1):
        problems.append(Problem("tuning_limit", None, limit, "must be a fraction in [0, 1)"))
    out["tuning_limit"] = limit
    rates = payload.get("allowed_basal_rates")
    if rates is not None:
        if not isinstance(rates, list) or not rates:
            problems.append(Problem("allowed_basal_rates", None, rates, "must be a non-empty list of U/h"))
        else:
            problems.extend(Problem("allowed_basal_rates", j, r, "must be a finite number >= 0 (U/h)")
                            for j, r in enumerate(rates) if not _finite_number(r) or r < 0)
    out["allowed_basal_rates"] = rates
    tp = payload.get("tune_parameters")
    if tp is not None and (not isinstance(tp, list) or any(p not in _TUNABLE for p in tp)):
        problems.append(Problem("tune_parameters", None, tp, f"must be a list drawn from {_TUNABLE}"))
    out["tune_parameters"] = tp
    hp = payload.get("hyper_params")
    if hp is not None and not isinstance(hp, dict):
        problems.append(Problem("hyper_params", None, hp, "must be an object"))
    out["hyper_params"] = hp
    return out


def decode(payload: Any) -> TuneRequest:
    """Decode a version 1 request (parsed JSON) into a :class:`TuneRequest`.

    Raises
    ------
    TuneFormatError
        Listing every problem found (field path, index, value, reason).
    """
    if not isinstance(payload, dict):
        raise TuneFormatError([Problem("request", None, type(payload).__name__, "must be a JSON object")])
    problems: list[Problem] = []
    unknown = sorted(set(payload) - set(_KNOWN))
    if unknown:
        problems.append(Problem("request", None, unknown, "unknown field(s)"))
    version = payload.get("version")
    if version is None:
        problems.append(Problem("version", None, None, "missing"))
    elif version != VERSION or isinstance(version, bool):
        problems.append(Problem("version", None, version, f"unsupported version (this codec reads {VERSION})"))
    tz = payload.get("timezone")
    try:
        tzinfo(tz)
    except Exception:  # zoneinfo raises several types for bad keys
        problems.append(Problem("timezone", None, tz, "not an IANA time zone name or GMT+HHMM offset"))
    bip = payload.get("basal_insulin_parameters")
    insulin_default = dict(DEFAULT_INSULIN_PARAMETERS)
    if bip is not None:
        insulin_default = _parameters({"parameters": bip}, "basal", "basal_insulin_parameters",
                                      DEFAULT_INSULIN_PARAMETERS, problems)
    raw_timelines = payload.get("timelines")
    timelines = []
    if not isinstance(raw_timelines, list):
        problems.append(Problem("timelines", None, raw_timelines, "must be a list of timelines"))
    else:
        timelines = [_timeline(t, i, insulin_default, problems) for i, t in enumerate(raw_timelines)]
    schedules = {name: _schedule(payload[name], name, problems) if name in payload else None
                 for name in SCHEDULE_FIELDS}
    scalars = _optional_scalars(payload, problems)
    if problems:
        raise TuneFormatError(problems)
    return TuneRequest(timezone=tz, timelines=timelines, basal_insulin_parameters=bip, **schedules, **scalars)


def delta(values) -> list:
    """Delta-encode a sequence so that :func:`undelta` gives it back (ints exactly)."""
    out, total = [], 0
    for v in values:
        v = v.item() if hasattr(v, "item") else v
        d = v - total
        out.append(d)
        total = total + d
    return out


def run_length(deltas: list) -> list:
    """Replace runs of two or more equal deltas by ``[delta, count]`` pairs."""
    out: list = []
    for d in deltas:
        if out and isinstance(out[-1], list) and out[-1][0] == d:
            out[-1][1] += 1
        elif out and not isinstance(out[-1], list) and out[-1] == d:
            out[-1] = [d, 2]
        else:
            out.append(d)
    return out


def _encode_list(values, rle: bool) -> list:
    d = delta(values)
    return run_length(d) if rle else d


def encode(request: TuneRequest, run_length_encoding: bool = False) -> dict:
    """The version 1 JSON payload of ``request`` (delta encoded; optionally run-length encoded)."""
    out: dict = {"version": request.version, "timezone": request.timezone}
    if request.basal_insulin_parameters is not None:
        out["basal_insulin_parameters"] = dict(request.basal_insulin_parameters)
    for name in SCHEDULE_FIELDS:
        schedule = getattr(request, name)
        if schedule is not None:
            out[name] = schedule.to_dict()
    for key in ("minimum_time_interval", "maximum_schedule_item_count", "allowed_basal_rates", "tuning_limit",
                "tune_parameters", "hyper_params"):
        if getattr(request, key) is not None:
            out[key] = getattr(request, key)
    timelines = []
    for t in request.timelines:
        item = {"type": t.type}
        if t.parameters:
            item["parameters"] = dict(t.parameters)
        item["index"] = _encode_list(t.index_s, run_length_encoding)
        item["values"] = _encode_list(t.values, run_length_encoding)
        if t.durations_s is not None:
            item["durations"] = _encode_list(t.durations_s, run_length_encoding)
        timelines.append(item)
    out["timelines"] = timelines
    return out


@dataclass
class TuneResponse:
    """Tune's response: the three schedules (minutes since midnight) and the training loss."""

    timezone: str
    insulin_sensitivity_schedule: Schedule
    carb_ratio_schedule: Schedule
    basal_rate_schedule: Schedule
    training_loss: float | None = None
    version: int = VERSION

    def to_dict(self) -> dict:
        out = {"version": self.version, "timezone": self.timezone}
        for name in SCHEDULE_FIELDS:
            out[name] = getattr(self, name).to_dict()
        if self.training_loss is not None:
            out["training_loss"] = self.training_loss
        return out
