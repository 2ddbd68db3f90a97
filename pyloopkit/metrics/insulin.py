"""Insulin and meal patterns of a :class:`pyloopkit.io.history.History` (extra ``io``: pandas).

Days and times of day are read on the local clock of ``tz`` (default: the zone of the
history's glucose times, UTC when they have none).

Basal delivery is the piecewise-constant rate of the doses table with the precedence a pump
applies: a suspension (rate 0) overrides a temporary basal, which overrides the scheduled
basal. Within one kind, where two entries overlap the one that started last is in force.
Boluses count on the day and time of their start (an extended bolus too).
"""
from __future__ import annotations

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem

#: Time-of-day periods of the pattern tables: (name, first hour, end hour).
DEFAULT_PERIODS = (
    ("night", 0, 6),
    ("breakfast", 6, 10),
    ("lunch", 10, 14),
    ("afternoon", 14, 18),
    ("dinner", 18, 22),
    ("late evening", 22, 24),
)
#: A bolus within this many minutes of a carb entry is a meal bolus; any other is a correction.
MEAL_BOLUS_WINDOW_MIN = 30.0
#: Post-meal rise: glucose this many minutes after the carb entry minus glucose at it.
POST_MEAL_MIN = 120.0

_BASAL_LEVELS = {"BASAL": 0, "TEMP_BASAL": 1, "SUSPEND": 2}
_KNOWN_TYPES = set(_BASAL_LEVELS) | {"BOLUS", "RESUME"}


def _pandas():
    from pyloopkit.io.history import _pandas as load

    return load()


def history_zone(history, tz=None):
    """The zone the history is read in: ``tz``, else the glucose times' zone, else UTC."""
    if tz is not None:
        return tz
    zone = getattr(history.glucose["time"].dt, "tz", None) if len(history.glucose) else None
    return zone if zone is not None else "UTC"


def _as_local(values, tz):
    pd = _pandas()
    times = pd.to_datetime(values)
    times = times.dt.tz_localize("UTC") if times.dt.tz is None else times
    return times.dt.tz_convert(tz).dt.as_unit("ns")


def _check_doses(doses):
    problems = []
    unknown = ~doses["type"].isin(list(_KNOWN_TYPES))
    for i in np.flatnonzero(unknown.to_numpy())[:10]:
        problems.append(Problem("doses.type", int(i), doses["type"].iloc[i], f"expected one of {sorted(_KNOWN_TYPES)}"))
    values = doses["value"].to_numpy(dtype=float)
    for i in np.flatnonzero(~(np.isfinite(values) & (values >= 0)))[:10]:
        problems.append(Problem("doses.value", int(i), float(values[i]), "must be finite and >= 0"))
    if problems:
        raise InvalidInputError(problems)


def basal_segments(doses, tz) -> "pd.DataFrame":
    """The basal rate in force, as contiguous pieces split at local midnights.

    Returns
    -------
    DataFrame
        ``start``, ``end`` (local times), ``rate_u_per_h``, ``units`` (rate x hours), ``kind``
        ("BASAL", "TEMP_BASAL" or "SUSPEND"); only pieces where some basal entry is in force.
    """
    pd = _pandas()
    _check_doses(doses)
    basal = doses[doses["type"].isin(list(_BASAL_LEVELS))]
    columns = ["start", "end", "rate_u_per_h", "units", "kind"]
    if basal.empty:
        return pd.DataFrame({c: [] for c in columns})
    start = _as_local(basal["start"], tz)
    end = _as_local(basal["end"], tz)
    start_ns, end_ns = start.astype("int64").to_numpy(), end.astype("int64").to_numpy()
    bad = np.flatnonzero(end_ns < start_ns)
    if bad.size:
        i = int(bad[0])
        raise InvalidInputError([Problem("doses.end", int(basal.index[i]), str(end.iloc[i]), "ends before it starts")])
    days = pd.date_range(start.min().normalize(), end.max().normalize() + pd.Timedelta(days=1), freq="D")
    midnights = days.as_unit("ns").asi8 if hasattr(days, "as_unit") else days.asi8
    edges = np.unique(np.r_[start_ns, end_ns, midnights])
    left, right = edges[:-1], edges[1:]
    rate = np.full(left.size, np.nan)
    kind = np.full(left.size, "", dtype=object)
    types = basal["type"].to_numpy()
    values = basal["value"].to_numpy(dtype=float)
    for name, level in sorted(_BASAL_LEVELS.items(), key=lambda item: item[1]):
        mine = np.flatnonzero(types == name)
        if mine.size == 0:
            continue
        order = mine[np.argsort(start_ns[mine], kind="stable")]
        latest = np.searchsorted(start_ns[order], left, side="right") - 1
        active = latest >= 0
        active[active] = end_ns[order[latest[active]]] > left[active]
        rate[active] = 0.0 if name == "SUSPEND" else values[order[latest[active]]]
        kind[active] = name
    covered = np.flatnonzero(np.isfinite(rate))
    left, right, rate, kind = left[covered], right[covered], rate[covered], kind[covered]
    # merge neighbouring pieces of the same kind and rate that do not cross a midnight
    joins = (left[1:] == right[:-1]) & (rate[1:] == rate[:-1]) & (kind[1:] == kind[:-1]) & ~np.isin(left[1:], midnights)
    first = np.flatnonzero(np.r_[True, ~joins])
    last = np.r_[first[1:], left.size] - 1
    zone = start.dt.tz
    return pd.DataFrame({
        "start": pd.to_datetime(left[first], utc=True).tz_convert(zone),
        "end": pd.to_datetime(right[last], utc=True).tz_convert(zone),
        "rate_u_per_h": rate[first],
        "units": rate[first] * (right[last] - left[first]) / 3.6e12,
        "kind": kind[first],
    })


def daily_insulin(history, tz=None) -> "pd.DataFrame":
    """Insulin per local day: ``basal_u``, ``bolus_u``, ``total_u``, ``basal_percent`` (of the total).

    The index is the local date (every day from the first to the last dose; a day without
    doses has zeros and ``basal_percent`` NaN).
    """
    pd = _pandas()
    zone = history_zone(history, tz)
    doses = history.doses
    _check_doses(doses)
    segments = basal_segments(doses, zone)
    boluses = doses[doses["type"] == "BOLUS"]
    basal = segments.groupby(segments["start"].dt.date)["units"].sum() if len(segments) else pd.Series(dtype=float)
    bolus_days = _as_local(boluses["start"], zone).dt.date
    bolus = boluses["value"].astype(float).groupby(bolus_days.to_numpy()).sum() if len(boluses) else pd.Series(dtype=float)
    dates = sorted(set(basal.index) | set(bolus.index))
    if not dates:
        return pd.DataFrame(columns=["basal_u", "bolus_u", "total_u", "basal_percent"])
    index = pd.Index(pd.date_range(dates[0], dates[-1], freq="D").date, name="date")
    table = pd.DataFrame({"basal_u": basal.reindex(index, fill_value=0.0).to_numpy(),
                          "bolus_u": bolus.reindex(index, fill_value=0.0).to_numpy()}, index=index)
    table["total_u"] = table["basal_u"] + table["bolus_u"]
    with np.errstate(invalid="ignore", divide="ignore"):
        table["basal_percent"] = np.where(table["total_u"] > 0, 100.0 * table["basal_u"] / table["total_u"], np.nan)
    return table


def _period_of(hours: np.ndarray, periods) -> np.ndarray:
    edges = np.array([p[1] for p in periods] + [periods[-1][2]], dtype=float)
    if edges[0] != 0 or edges[-1] != 24 or np.any(np.diff(edges) <= 0):
        raise InvalidInputError([Problem("periods", None, periods, "must tile 0-24 h in increasing order")])
    return np.clip(np.searchsorted(edges, hours, side="right") - 1, 0, len(periods) - 1)


def _hour_of_day(times) -> np.ndarray:
    return (times.dt.hour + times.dt.minute / 60.0 + times.dt.second / 3600.0).to_numpy()


def meal_patterns(history, periods=DEFAULT_PERIODS, tz=None) -> "pd.DataFrame":
    """Meals, meal boluses, corrections and glucose by time of day.

    A bolus within :data:`MEAL_BOLUS_WINDOW_MIN` minutes (before or after) of a carb entry is a
    meal bolus; any other bolus is a correction. Per-day rates divide by the number of local
    days the glucose and dose records span.

    Returns
    -------
    DataFrame
        One row per period (index: the period name) with ``hours`` ("06-10"),
        ``meals_per_day``, ``carbs_g_per_day``, ``meal_bolus_u_per_day``,
        ``corrections_per_day``, ``correction_u_per_day``, ``mean_glucose_mg_dl`` (NaN without
        readings) and ``post_meal_rise_mg_dl``: the median over the period's meals of glucose
        :data:`POST_MEAL_MIN` minutes after the entry minus glucose at it (interpolated between
        readings at most 15 min from each time; NaN without such a pair).
    """
    pd = _pandas()
    zone = history_zone(history, tz)
    _check_doses(history.doses)
    glucose_time = _as_local(history.glucose["time"], zone)
    glucose = history.glucose["glucose_mg_dl"].to_numpy(dtype=float)
    carbs_time = _as_local(history.carbs["time"], zone)
    grams = history.carbs["grams"].to_numpy(dtype=float)
    boluses = history.doses[history.doses["type"] == "BOLUS"]
    bolus_time = _as_local(boluses["start"], zone)
    bolus_u = boluses["value"].to_numpy(dtype=float)

    all_times = pd.concat([glucose_time, carbs_time, bolus_time, _as_local(history.doses["start"], zone)])
    n_days = max(len(set(all_times.dt.date)), 1) if len(all_times) else 1

    carbs_ns = np.sort(carbs_time.astype("int64").to_numpy())
    bolus_ns = bolus_time.astype("int64").to_numpy()
    window = MEAL_BOLUS_WINDOW_MIN * 60e9
    if carbs_ns.size:
        nearest = np.searchsorted(carbs_ns, bolus_ns)
        gap_after = np.abs(carbs_ns[np.minimum(nearest, carbs_ns.size - 1)] - bolus_ns)
        gap_before = np.abs(bolus_ns - carbs_ns[np.maximum(nearest - 1, 0)])
        is_meal = np.minimum(gap_after, gap_before) <= window
    else:
        is_meal = np.zeros(bolus_ns.size, dtype=bool)

    rise = _post_meal_rise(glucose_time.astype("int64").to_numpy(), glucose, carbs_time.astype("int64").to_numpy())
    carb_period = _period_of(_hour_of_day(carbs_time), periods)
    bolus_period = _period_of(_hour_of_day(bolus_time), periods)
    glucose_period = _period_of(_hour_of_day(glucose_time), periods)
    rows = []
    for k, (name, first, last) in enumerate(periods):
        meal_rise = rise[carb_period == k]
        meal_rise = meal_rise[np.isfinite(meal_rise)]
        in_glucose = glucose[glucose_period == k]
        rows.append({
            "period": name,
            "hours": f"{first:02d}-{last:02d}",
            "meals_per_day": np.sum(carb_period == k) / n_days,
            "carbs_g_per_day": grams[carb_period == k].sum() / n_days,
            "meal_bolus_u_per_day": bolus_u[(bolus_period == k) & is_meal].sum() / n_days,
            "corrections_per_day": np.sum((bolus_period == k) & ~is_meal) / n_days,
            "correction_u_per_day": bolus_u[(bolus_period == k) & ~is_meal].sum() / n_days,
            "mean_glucose_mg_dl": in_glucose.mean() if in_glucose.size else np.nan,
            "post_meal_rise_mg_dl": float(np.median(meal_rise)) if meal_rise.size else np.nan,
        })
    return pd.DataFrame(rows).set_index("period")


def _glucose_at(times_ns: np.ndarray, glucose: np.ndarray, at_ns: np.ndarray, max_distance_ns: float) -> np.ndarray:
    """Glucose interpolated at ``at_ns`` between the neighbouring readings, NaN if either is too far."""
    order = np.argsort(times_ns, kind="stable")
    t, g = times_ns[order].astype(float), glucose[order]
    if t.size == 0:
        return np.full(at_ns.size, np.nan)
    after = np.clip(np.searchsorted(t, at_ns), 1, max(t.size - 1, 1))
    before = after - 1
    t_before, t_after = t[before], t[np.minimum(after, t.size - 1)]
    near = ((t_before <= at_ns) & (at_ns <= t_after)
            & (at_ns - t_before <= max_distance_ns) & (t_after - at_ns <= max_distance_ns))
    value = np.interp(at_ns.astype(float), t, g)
    return np.where(near, value, np.nan)


def _post_meal_rise(glucose_ns, glucose, carbs_ns) -> np.ndarray:
    limit = 15 * 60e9
    return (_glucose_at(glucose_ns, glucose, carbs_ns + POST_MEAL_MIN * 60e9, limit)
            - _glucose_at(glucose_ns, glucose, carbs_ns, limit))
