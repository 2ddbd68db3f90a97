"""The estimators' view of a history: a 5-minute grid of glucose, insulin and carbs.

Both entry points (a :class:`~pyloopkit.io.history.History` and a decoded Tune request) become one
:class:`Observations`: bins of ``BIN_S`` seconds from ``start_s`` (Unix time, a multiple of 300),
the glucose reading of each bin (mean of the readings whose time rounds to it; NaN when none),
and insulin and carb *streams* (amount per bin with its action curve). Insulin and carb *activity*
per bin, the amount acting or absorbed between a bin's start and the next, is the amount per bin
convolved with the curve's per-bin fractions; a dose inside a bin is taken at the bin's middle.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass

import numpy as np

from ..carb_math import PIECEWISE_LINEAR
from ..errors import MissingDataError, Problem, raise_if
from ..insulin_models import PRESETS, ExponentialInsulinModel

BIN_S = 300.0
BIN_MIN = BIN_S / 60.0
DEFAULT_ABSORPTION_MIN = 180.0
DEFAULT_CARB_DELAY_MIN = 10.0
CARB_MODEL = PIECEWISE_LINEAR
"""Carb absorption curve of the estimators (LoopKit's default for dynamic absorption)."""
DEFAULT_INSULIN_MODEL = PRESETS["adult"]
MAX_SPAN_DAYS = 400
"""Longest history the estimators take (the grid is dense: 288 bins a day)."""


@dataclass
class Stream:
    """An amount per bin (U or g) and the curve it acts through."""

    amount: np.ndarray
    insulin_model: ExponentialInsulinModel | None = None
    absorption_min: float | None = None
    delay_min: float = 0.0

    def kernel(self) -> np.ndarray:
        """Fraction of a mid-bin amount acting in bin j = 0, 1, ... after its own."""
        if self.insulin_model is not None:
            n = int(math.ceil(self.insulin_model.effect_duration_min / BIN_MIN)) + 2
            remaining = self.insulin_model.percent_effect_remaining
        else:
            n = int(math.ceil((self.absorption_min + self.delay_min) / BIN_MIN)) + 2
            a, d = self.absorption_min, self.delay_min

            def remaining(t):
                return 1.0 - CARB_MODEL.percent_absorption(np.clip((np.asarray(t) - d) / a, 0.0, 1.0))
        edges = BIN_MIN * np.arange(n + 1) - BIN_MIN / 2.0
        r = np.where(edges < 0, 1.0, remaining(np.maximum(edges, 0.0)))
        return r[:-1] - r[1:]

    def activity(self) -> np.ndarray:
        """Amount acting in each bin (same length as ``amount``)."""
        return np.convolve(self.amount, self.kernel())[: self.amount.size]

    def on_board(self) -> np.ndarray:
        """Amount still to act at the end of each bin."""
        return np.cumsum(self.amount) - np.cumsum(self.activity())


@dataclass
class Observations:
    """Glucose (mg/dL), insulin (U) and carb (g) streams on a 5-minute grid from ``start_s``."""

    start_s: float
    glucose: np.ndarray
    insulin: list
    carbs: list
    hour: np.ndarray
    tz: _dt.tzinfo
    carb_entries: int = 0

    @property
    def n(self) -> int:
        return self.glucose.size

    def insulin_activity(self) -> np.ndarray:
        return sum((s.activity() for s in self.insulin), np.zeros(self.n))

    def carb_activity(self) -> np.ndarray:
        return sum((s.activity() for s in self.carbs), np.zeros(self.n))

    def insulin_delivered(self) -> np.ndarray:
        return sum((s.amount for s in self.insulin), np.zeros(self.n))

    def carbs_entered(self) -> np.ndarray:
        return sum((s.amount for s in self.carbs), np.zeros(self.n))


def local_hours(start_s: float, n: int, tz) -> np.ndarray:
    """Local hour of day (0-23) at each bin's middle, honouring the zone's offset changes."""
    t = start_s + BIN_S * (np.arange(n) + 0.5)
    first_hour = math.floor(t[0] / 3600.0) * 3600.0 if n else 0.0
    hour_starts = np.arange(first_hour, (t[-1] if n else first_hour) + 3600.0, 3600.0)
    offsets = np.array([_dt.datetime.fromtimestamp(h, tz).utcoffset().total_seconds() for h in hour_starts])
    off = offsets[((t - first_hour) // 3600.0).astype(int)]
    return (((t + off) % 86400.0) // 3600.0).astype(int)


def grid_bounds(times_s: list) -> tuple[float, int]:
    """Grid start (floored to 300 s) and bin count covering every time in the arrays.

    Raises :class:`InvalidInputError` when the data span more than ``MAX_SPAN_DAYS``.
    """
    nonempty = [np.asarray(t, dtype=float) for t in times_s if np.size(t)]
    lo = min(float(t.min()) for t in nonempty)
    hi = max(float(t.max()) for t in nonempty)
    span_days = (hi - lo) / 86400.0
    if span_days > MAX_SPAN_DAYS:
        raise_if([Problem("timestamps", None, round(span_days, 1),
                          f"the data span more than {MAX_SPAN_DAYS} days (first to last time)")])
    start = math.floor(lo / BIN_S) * BIN_S
    return start, int((hi - start) // BIN_S) + 2


def glucose_on_grid(times_s: np.ndarray, values: np.ndarray, start_s: float, n: int) -> np.ndarray:
    """Mean reading per bin (readings rounded to the nearest bin start); NaN where none."""
    k = np.rint((np.asarray(times_s, float) - start_s) / BIN_S).astype(int)
    ok = (k >= 0) & (k < n)
    total = np.bincount(k[ok], weights=np.asarray(values, float)[ok], minlength=n)
    count = np.bincount(k[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def spread(start_s: np.ndarray, end_s: np.ndarray, units: np.ndarray, grid_start: float, n: int) -> np.ndarray:
    """Units per bin: each delivery spread uniformly over [start, end) (instant ones in their bin)."""
    out = np.zeros(n)
    start_s, end_s, units = (np.asarray(a, dtype=float) for a in (start_s, end_s, units))
    instant = end_s <= start_s
    k = np.floor((start_s[instant] - grid_start) / BIN_S).astype(int)
    np.add.at(out, np.clip(k, 0, n - 1), units[instant])
    s, e, u = start_s[~instant], end_s[~instant], units[~instant]
    if s.size:
        # The delivered amount up to time t is piecewise linear with breaks at the starts and ends.
        points = np.concatenate((s, e))
        rate = u / (e - s)
        order = np.argsort(points, kind="stable")
        points = points[order]
        level = np.cumsum(np.concatenate((rate, -rate))[order])
        integral = np.concatenate(([0.0], np.cumsum(level[:-1] * np.diff(points))))
        edges = grid_start + BIN_S * np.arange(n + 1)
        out += np.diff(np.interp(edges, points, integral, left=0.0, right=integral[-1]))
    return out


def require_enough(obs: Observations, min_days: float = 1.0) -> None:
    """Raise :class:`MissingDataError` when fewer than ``min_days`` of 5-minute changes exist."""
    pairs = int(np.sum(np.isfinite(obs.glucose[1:]) & np.isfinite(obs.glucose[:-1])))
    need = int(min_days * 288)
    if pairs < need:
        raise MissingDataError(f"too little glucose data to estimate settings: {pairs} consecutive 5-minute "
                               f"changes, at least {need} ({min_days:g} day(s)) are needed")
    if not obs.insulin:
        raise MissingDataError("no insulin deliveries: basal, ISF and CR cannot be estimated")


def from_request(req) -> Observations:
    """:class:`Observations` of a decoded Tune request (mU -> U, mU/h x s -> U)."""
    from .codec import tzinfo

    tz = tzinfo(req.timezone)
    glucose_tl = req.timelines_of("glucose")
    if not glucose_tl or not any(t.index_s.size for t in glucose_tl):
        raise MissingDataError("the request has no glucose timeline (or it is empty)")
    start, n = grid_bounds([t.index_s for t in req.timelines]
                           + [t.index_s + t.durations_s for t in req.timelines if t.durations_s is not None])
    g_t = np.concatenate([t.index_s for t in glucose_tl]).astype(float)
    g_v = np.concatenate([t.values for t in glucose_tl]).astype(float)
    insulin, carbs = [], []
    for t in req.timelines_of("basal", "insulin", "bolus"):
        p = t.parameters
        model = ExponentialInsulinModel(p["duration"], p["peak"], p["delay"])
        idx = t.index_s.astype(float)
        if t.type == "basal":
            dur = t.durations_s.astype(float)
            units = t.values.astype(float) / 1000.0 * dur / 3600.0
        else:
            dur = np.zeros(idx.size) if t.durations_s is None else t.durations_s.astype(float)
            units = t.values.astype(float) / 1000.0
        insulin.append(Stream(spread(idx, idx + dur, units, start, n), insulin_model=model))
    n_carbs = 0
    for t in req.timelines_of("carb"):
        p = t.parameters
        idx = t.index_s.astype(float)
        carbs.append(Stream(spread(idx, idx, t.values.astype(float), start, n), absorption_min=p["duration"],
                            delay_min=p["delay"]))
        n_carbs += int(np.sum(t.values > 0))
    return Observations(start, glucose_on_grid(g_t, g_v, start, n), insulin, carbs, local_hours(start, n, tz), tz,
                        n_carbs)


def _unix(series) -> np.ndarray:
    return series.astype("int64").to_numpy() / 1e9 if series.size else np.empty(0)


def _unix_times(column) -> np.ndarray:
    import pandas as pd

    return _unix(pd.to_datetime(column, utc=True).dt.tz_convert("UTC").dt.as_unit("ns"))


def _bad_rows(field: str, values: np.ndarray, bad: np.ndarray, reason: str) -> list:
    return [Problem(field, int(i), values[i].item(), reason) for i in np.flatnonzero(bad)[:20]]


def _check_history(history) -> None:
    """Raise :class:`InvalidInputError` for readings, doses or carbs the estimators cannot use."""
    from ..dose import DoseType

    problems = []
    g = history.glucose["glucose_mg_dl"].to_numpy(dtype=float)
    problems += _bad_rows("glucose.glucose_mg_dl", g, ~(np.isfinite(g) & (g > 0)), "must be a finite value > 0 mg/dL")
    d = history.doses
    v = d["value"].to_numpy(dtype=float)
    problems += _bad_rows("doses.value", v, ~(np.isfinite(v) & (v >= 0)), "must be a finite value >= 0")
    start, end = _unix_times(d["start"]), _unix_times(d["end"])
    problems += _bad_rows("doses.end", end, ~(end >= start), "must be at or after start (and not missing)")
    for i, t in enumerate(d["type"]):
        try:
            DoseType.parse(t)
        except ValueError:
            problems.append(Problem("doses.type", i, t, "unknown dose type"))
    c = history.carbs["grams"].to_numpy(dtype=float)
    problems += _bad_rows("carbs.grams", c, ~(np.isfinite(c) & (c >= 0)), "must be a finite value >= 0 g")
    a = history.carbs["absorption_min"].to_numpy(dtype=float)
    problems += _bad_rows("carbs.absorption_min", a, ~(np.isnan(a) | (np.isfinite(a) & (a > 0))),
                          "must be > 0 minutes (or NaN for the default)")
    raise_if(problems)


def from_history(history, insulin_model: ExponentialInsulinModel | None = None,
                 carb_delay_min: float = DEFAULT_CARB_DELAY_MIN) -> Observations:
    """:class:`Observations` of a :class:`~pyloopkit.io.history.History`.

    Bolus rows are units at ``start`` (spread to ``end`` when later); BASAL / TEMP_BASAL rows are
    U/h from ``start`` to ``end``; SUSPEND rows deliver nothing. Carb rows without an absorption time
    use ``DEFAULT_ABSORPTION_MIN``. The zone is the glucose column's.
    """
    from ..dose import DoseType

    model = insulin_model or DEFAULT_INSULIN_MODEL
    g = history.glucose
    if g.empty:
        raise MissingDataError("the history has no glucose readings")
    _check_history(history)
    tz = getattr(g["time"].dt, "tz", None) or _dt.timezone.utc
    g_t = _unix_times(g["time"])
    d = history.doses
    c = history.carbs
    d_start, d_end = _unix_times(d["start"]), _unix_times(d["end"])
    c_t = _unix_times(c["time"])
    start, n = grid_bounds([g_t, d_start, d_end, c_t])
    types = [DoseType.parse(x) for x in d["type"]]
    values = d["value"].to_numpy(dtype=float)
    is_bolus = np.array([t == DoseType.BOLUS for t in types], dtype=bool)
    is_rate = np.array([t in (DoseType.BASAL, DoseType.TEMP_BASAL) for t in types], dtype=bool)
    units = np.where(is_bolus, values, np.where(is_rate, values * (d_end - d_start) / 3600.0, 0.0))
    insulin = [Stream(spread(d_start, np.where(is_bolus & (d_end <= d_start), d_start, d_end), units, start, n),
                      insulin_model=model)] if len(d) else []
    carbs = []
    if len(c):
        absorption = c["absorption_min"].to_numpy(dtype=float)
        absorption = np.where(np.isnan(absorption), DEFAULT_ABSORPTION_MIN, absorption)
        grams = c["grams"].to_numpy(dtype=float)
        for a in np.unique(absorption):
            sel = absorption == a
            carbs.append(Stream(spread(c_t[sel], c_t[sel], grams[sel], start, n), absorption_min=float(a),
                                delay_min=carb_delay_min))
    glucose = glucose_on_grid(g_t, g["glucose_mg_dl"].to_numpy(dtype=float), start, n)
    return Observations(start, glucose, insulin, carbs, local_hours(start, n, tz), tz, int(np.sum(c["grams"] > 0)))
