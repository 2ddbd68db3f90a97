"""``estimate()`` and ``answer()``: settings from history, in PyLoopKit's and in Tune's layout.

Both methods estimate hourly values (24 per schedule: ISF mg/dL/U, carb ratio g/U, basal U/h);
:func:`compact` then turns them into schedules that respect the request's limits.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidInputError, MissingDataError, Problem
from . import data as _data
from . import model_fit
from .codec import Schedule, TuneFormatError, TuneResponse, decode

NAMES = ("isf", "cr", "basal")
TUNE_NAMES = {"isf": "insulin_sensitivity_schedule", "cr": "carb_ratio_schedule", "basal": "basal_rate_schedule"}
PYLOOPKIT_KEYS = {"isf": ("sensitivity_ratio_start_times", "sensitivity_ratio_values"),
                  "cr": ("carb_ratio_start_times", "carb_ratio_values"),
                  "basal": ("basal_rate_start_times", "basal_rate_values")}
METHODS = ("model", "autotune")
MIN_DAYS = 1.0


@dataclass
class Limits:
    """What the estimate may change and how the schedules must look (Tune's optional fields).

    ``tuning_limit``: fraction each value may move from the current one (None or 0: free);
    ``allowed_basal_rates`` (U/h): basal values are set to the nearest allowed rate;
    ``minimum_time_interval_s``: schedule items start at multiples of it (and of an hour);
    ``maximum_schedule_item_count``: adjacent items are merged until the count fits;
    ``tune``: the schedules to estimate (others stay as they are).
    """

    tuning_limit: float | None = None
    allowed_basal_rates: tuple | None = None
    minimum_time_interval_s: int | None = None
    maximum_schedule_item_count: int | None = None
    tune: tuple = NAMES

    def __post_init__(self):
        problems = []
        if self.tuning_limit is not None and not (isinstance(self.tuning_limit, (int, float))
                                                  and 0 <= self.tuning_limit < 1):
            problems.append(Problem("tuning_limit", None, self.tuning_limit, "must be a fraction in [0, 1)"))
        for key in ("minimum_time_interval_s", "maximum_schedule_item_count"):
            v = getattr(self, key)
            if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                problems.append(Problem(key, None, v, "must be a whole number >= 1"))
        rates = self.allowed_basal_rates
        if rates is not None and (len(rates) == 0 or not all(isinstance(r, (int, float)) and math.isfinite(r)
                                                             and r >= 0 for r in rates)):
            problems.append(Problem("allowed_basal_rates", None, rates, "must be finite rates >= 0 (U/h)"))
        bad = [t for t in self.tune if t not in NAMES]
        if bad or not self.tune:
            problems.append(Problem("tune", None, self.tune, f"must be a non-empty selection of {NAMES}"))
        if problems:
            raise InvalidInputError(problems)

    @classmethod
    def from_request(cls, req) -> "Limits":
        by_tune = {v: k for k, v in TUNE_NAMES.items()}
        tune = NAMES if req.tune_parameters is None else tuple(by_tune[p] for p in req.tune_parameters)
        return cls(req.tuning_limit or None,
                   None if req.allowed_basal_rates is None else tuple(float(r) for r in req.allowed_basal_rates),
                   req.minimum_time_interval, req.maximum_schedule_item_count, tune)


def hourly(start_min, values) -> np.ndarray:
    """Time-weighted mean of a daily schedule over each hour (24 values)."""
    start = np.asarray(start_min, dtype=float)
    minute = np.arange(1440)
    idx = np.searchsorted(start, minute, side="right") - 1  # -1 wraps to the last item before the first
    per_minute = np.asarray(values, dtype=float)[idx].reshape(24, 60)
    single = np.all(per_minute == per_minute[:, :1], axis=1)
    return np.where(single, per_minute[:, 0], per_minute.mean(axis=1))  # one item: its value exactly


def current_from_settings(settings: dict) -> np.ndarray:
    """(3, 24) hourly ISF, CR, basal from PyLoopKit schedule keys (start times and values)."""
    from ..date import parse_time_of_day

    problems, out = [], []
    for name in NAMES:
        k_start, k_values = PYLOOPKIT_KEYS[name]
        if k_start not in settings or k_values not in settings:
            problems.append(Problem(k_start if k_start not in settings else k_values, None, None,
                                    f"missing: the current {name} schedule is needed"))
            continue
        starts, values = list(settings[k_start]), list(settings[k_values])
        bad = [Problem(k_values, i, v, "must be a finite number > 0") for i, v in enumerate(values)
               if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0]
        if len(starts) != len(values) or not starts:
            bad.append(Problem(k_start, None, len(starts), f"needs one start per value ({len(values)})"))
        problems.extend(bad)
        if not bad:
            minutes = np.array([parse_time_of_day(s) for s in starts]) / 60.0
            if np.any(np.diff(minutes) <= 0):
                problems.append(Problem(k_start, None, starts, "start times must increase"))
                continue
            out.append(hourly(minutes, values))
    if problems:
        raise InvalidInputError(problems)
    return np.array(out)


def hourly_settings(values: np.ndarray) -> dict:
    """PyLoopKit schedule keys with 24 hourly items from (3, 24) ISF, CR, basal values."""
    times = [_dt.time(h) for h in range(24)]
    out = {}
    for p, name in enumerate(NAMES):
        k_start, k_values = PYLOOPKIT_KEYS[name]
        out[k_start], out[k_values] = list(times), [float(v) for v in values[p]]
    return out


def de_novo(obs) -> np.ndarray:
    """Starting settings from the total daily dose when a request gives none: basal 0.5 TDD / 24,
    ISF 1800 / TDD, CR 500 / TDD (the classic 50% / 1800 / 500 rules)."""
    days = obs.n * _data.BIN_S / 86400.0
    tdd = float(np.sum(obs.insulin_delivered())) / days
    if not tdd > 0:
        raise MissingDataError("no insulin delivered: there is nothing to derive settings from")
    return np.array([np.full(24, 1800.0 / tdd), np.full(24, 500.0 / tdd), np.full(24, 0.5 * tdd / 24.0)])


def _round_to(values: np.ndarray, allowed) -> np.ndarray:
    grid = np.sort(np.asarray(allowed, dtype=float))
    i = np.clip(np.searchsorted(grid, values), 1, grid.size - 1) if grid.size > 1 else np.zeros(values.size, int)
    if grid.size == 1:
        return np.full(values.size, grid[0])
    lower, upper = grid[i - 1], grid[i]
    return np.where(values - lower <= upper - values, lower, upper)


def compact(hourly_values: np.ndarray, limits: Limits, basal: bool) -> Schedule:
    """A schedule (minutes since midnight) from 24 hourly values under ``limits``.

    Blocks of ``lcm(minimum_time_interval, 3600) / 3600`` hours are averaged; basal values are set to
    the nearest allowed rate; equal neighbours merge; while there are more items than
    ``maximum_schedule_item_count`` the two adjacent items closest in relative value merge into
    their time-weighted mean.
    """
    block = 1
    if limits.minimum_time_interval_s:
        block = math.lcm(int(limits.minimum_time_interval_s), 3600) // 3600
        if 24 % block:
            block = 24
    starts = list(range(0, 24 * 60, 60 * block))
    values = [float(np.mean(hourly_values[i // 60: i // 60 + block])) for i in starts]
    lengths = [60 * block] * len(starts)

    def finish(vals):
        return _round_to(np.array(vals), limits.allowed_basal_rates) if basal and limits.allowed_basal_rates else \
            np.array(vals)

    def merge_equal(st, vals, lens):
        out_s, out_v, out_l = [st[0]], [vals[0]], [lens[0]]
        for s, v, n in zip(st[1:], vals[1:], lens[1:]):
            if v == out_v[-1]:
                out_l[-1] += n
            else:
                out_s.append(s)
                out_v.append(v)
                out_l.append(n)
        return out_s, out_v, out_l

    starts, values, lengths = merge_equal(starts, list(finish(values)), lengths)
    cap = limits.maximum_schedule_item_count
    while cap and len(starts) > cap:
        gaps = [abs(math.log(values[i + 1] / values[i])) if values[i] > 0 and values[i + 1] > 0
                else abs(values[i + 1] - values[i]) for i in range(len(values) - 1)]
        i = int(np.argmin(gaps))
        merged = (values[i] * lengths[i] + values[i + 1] * lengths[i + 1]) / (lengths[i] + lengths[i + 1])
        values[i:i + 2] = [float(finish([merged])[0])]
        lengths[i:i + 2] = [lengths[i] + lengths[i + 1]]
        del starts[i + 1]
        starts, values, lengths = merge_equal(starts, values, lengths)
    return Schedule(starts, [float(v) for v in values])


@dataclass
class EstimatedSettings:
    """The result of :func:`estimate`.

    Attributes
    ----------
    method : str
        "model" or "autotune".
    hourly : dict
        Per-hour raw estimates (24 values each) of ``isf`` (mg/dL/U), ``cr`` (g/U), ``basal`` (U/h),
        before they are compacted into schedules.
    current : dict
        The current settings per hour, same keys.
    schedules : dict
        :class:`~pyloopkit.tune.codec.Schedule` per key (minutes since midnight), under the limits.
    ci_low, ci_high : dict or None
        95% confidence bounds per hour (model method; NaN for values not estimated).
    not_estimable : list of dict
        ``{"parameter", "hour", "reason"}`` for every value the data could not determine (it keeps
        the prior / current value or its neighbours' level).
    loss : float
        RMSE (mg/dL) of the 5-minute glucose changes predicted with the estimate (model equation,
        see :mod:`pyloopkit.tune.model_fit`); ``loss_current`` the same with the current settings.
    details : dict
        Method-specific figures (counts, per-day values).
    """

    method: str
    hourly: dict
    current: dict
    schedules: dict
    loss: float
    loss_current: float
    n_changes: int
    timezone: str
    ci_low: dict | None = None
    ci_high: dict | None = None
    not_estimable: list = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def to_settings(self) -> dict:
        """The PyLoopKit input-dictionary schedule keys (start times as ``datetime.time``)."""
        out = {}
        for name in NAMES:
            s = self.schedules[name]
            times = [_dt.time(m // 60, m % 60) for m in s.index_min]
            k_start, k_values = PYLOOPKIT_KEYS[name]
            out[k_start], out[k_values] = times, list(s.values)
            if name == "isf":
                out["sensitivity_ratio_end_times"] = times[1:] + times[:1]
                out["sensitivity_ratio_value_units"] = "mg/dL/U"
            elif name == "cr":
                out["carb_ratio_value_units"] = "g/U"
            else:
                out["basal_rate_minutes"] = [float(m) for m in np.diff(list(s.index_min) + [1440])]
                out["basal_rate_units"] = "U/hr"
        return out

    def to_dict(self) -> dict:
        """JSON-able summary (schedules under Tune's names, hourly arrays as lists)."""
        def lists(d):
            return None if d is None else {k: [None if not np.isfinite(v) else float(v) for v in d[k]] for k in d}
        return {
            "method": self.method, "timezone": self.timezone,
            "schedules": {TUNE_NAMES[k]: self.schedules[k].to_dict() for k in NAMES},
            "hourly": lists(self.hourly), "current": lists(self.current),
            "ci_low": lists(self.ci_low), "ci_high": lists(self.ci_high),
            "not_estimable": list(self.not_estimable), "loss": self.loss, "loss_current": self.loss_current,
            "n_changes": self.n_changes, "details": self.details,
        }

    def to_response(self) -> dict:
        """Tune's version 1 response layout."""
        return TuneResponse(self.timezone, *(self.schedules[k] for k in NAMES), self.loss).to_dict()


def _reasons(fit, design: model_fit.Design, free: np.ndarray) -> list:
    out = []
    carbs_by_hour = np.bincount(design.hour, weights=design.carbs_g, minlength=24)
    count_by_hour = np.bincount(design.hour, minlength=24)
    for p, name in enumerate(NAMES):
        for h in range(24):
            if not free[p, h]:
                continue
            if count_by_hour[h] == 0:
                reason = "no glucose changes in this hour"
            elif fit.data_sd[p, h] <= model_fit.MAX_DATA_SD:
                if fit.at_bound[p, h]:
                    out.append({"parameter": name, "hour": h, "reason": "estimate at the tuning limit"})
                continue
            elif name == "cr":
                reason = f"too little carb absorption in this hour ({carbs_by_hour[h]:.0f} g absorbed in the data)"
            elif name == "isf":
                reason = "insulin action varies too little in this hour to separate sensitivity from basal need"
            else:
                reason = "too few glucose changes without carbs in this hour"
            out.append({"parameter": name, "hour": h, "reason": reason})
    return out


def _estimate(obs, current: np.ndarray, limits: Limits, method: str, timezone: str) -> EstimatedSettings:
    if method not in METHODS:
        raise InvalidInputError([Problem("method", None, method, f"unknown method; expected one of {METHODS}")])
    _data.require_enough(obs, MIN_DAYS)
    design = model_fit.Design.from_observations(obs, model_fit.MIN_GLUCOSE, model_fit.WINDOW)
    changes = model_fit.Design.from_observations(obs)  # every 5-minute change, for the loss
    free = np.array([[name in limits.tune] * 24 for name in NAMES])
    ci_low = ci_high = None
    if method == "model":
        fit = model_fit.fit(design, current, free, limits.tuning_limit)
        values, not_estimable = fit.values, _reasons(fit, design, free)
        details = {"sigma_mg_dl": fit.sigma, "carb_entry_factors": [float(f) for f in fit.carb_factors]}
        ci_low = {k: fit.ci_low[p] for p, k in enumerate(NAMES)}
        ci_high = {k: fit.ci_high[p] for p, k in enumerate(NAMES)}
    else:
        from .autotune import autotune

        values, not_estimable, details = autotune(obs, current, free, limits.tuning_limit)
    schedules = {k: compact(values[p], limits, k == "basal") for p, k in enumerate(NAMES)}
    return EstimatedSettings(
        method=method, hourly={k: values[p] for p, k in enumerate(NAMES)},
        current={k: current[p] for p, k in enumerate(NAMES)}, schedules=schedules,
        loss=model_fit.rmse(changes, *values), loss_current=model_fit.rmse(changes, *current),
        n_changes=int(changes.dg.size), timezone=timezone, ci_low=ci_low, ci_high=ci_high,
        not_estimable=not_estimable, details=details)


def estimate(history, current_settings: dict | None = None, limits: Limits | dict | None = None,
             method: str = "model") -> EstimatedSettings:
    """Estimate hourly ISF, carb ratio and basal from a :class:`~pyloopkit.io.history.History`.

    Parameters
    ----------
    history : History
        Glucose, doses and carbs (at least a day of 5-minute readings).
    current_settings : dict or None
        PyLoopKit schedule keys (``basal_rate_start_times``/``_values``, ``sensitivity_ratio_...``,
        ``carb_ratio_...``); ``None`` uses ``history.settings`` (and, when that lacks them, starting
        values from the total daily dose, see :func:`de_novo`).
    limits : Limits, dict of its fields, or None
    method : "model" or "autotune"

    Raises
    ------
    InvalidInputError
        Bad settings, limits or method. ``MissingDataError``: too little data.
    """
    obs = _data.from_history(history)
    settings = history.settings if current_settings is None else current_settings
    current = current_from_settings(settings) if settings and "basal_rate_values" in settings else de_novo(obs)
    if isinstance(limits, dict) and set(limits) - set(Limits.__dataclass_fields__):
        raise InvalidInputError([Problem("limits", None, sorted(set(limits) - set(Limits.__dataclass_fields__)),
                                         "unknown limit(s)")])
    lim = limits if isinstance(limits, Limits) else Limits(**(limits or {}))
    return _estimate(obs, current, lim, method, getattr(obs.tz, "key", str(obs.tz)))


def answer(request: dict, model: str = "model") -> dict:
    """Answer a Tune version 1 request (parsed JSON) in Tune's response layout.

    ``model`` is "model" (also Tune's name "standard") or "autotune". Malformed requests raise
    :class:`TuneFormatError`; too little data raises :class:`~pyloopkit.errors.MissingDataError`.
    """
    method = "model" if model == "standard" else model
    if method not in METHODS:
        raise TuneFormatError([Problem("model", None, model, f"unknown model; expected one of {METHODS}")])
    req = decode(request)
    obs = _data.from_request(req)
    given = [getattr(req, TUNE_NAMES[k]) for k in NAMES]
    base = de_novo(obs) if any(s is None for s in given) else None
    current = np.array([hourly(s.index_min, s.values) if s is not None else base[p] for p, s in enumerate(given)])
    return _estimate(obs, current, Limits.from_request(req), method, req.timezone).to_response()
