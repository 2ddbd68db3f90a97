"""Metrics of a timed CGM trace: variability across time and days, data sufficiency.

Times are float minutes on the local clock, minute 0 being a local midnight (use
:func:`local_minutes` to get them from datetimes); glucose is in mg/dL. Readings must be in
time order. Metrics that compare readings at a fixed lag (CONGA, MODD, MAGE) first put the
trace on a regular grid of ``step_min`` minutes anchored at midnight, interpolating linearly
between neighbouring readings, except across a gap longer than ``max_gap_min`` (45 min):
grid points strictly inside such a gap, and outside the first and last reading, are missing.
This is the grid of iglu (Broll et al. 2021, ``CGMS2DayByDay``), so the numbers agree with it.

References
----------
- McDonnell C.M. et al., "A novel approach to continuous glucose analysis utilizing glycemic
  variation", Diabetes Technol Ther 7(2), 2005: CONGA-n, the SD of the differences between
  readings n hours apart.
- Molnar G.D. et al., "Day-to-day variation of continuously monitored glycaemia",
  Diabetologia 8, 1972: MODD, the mean absolute difference between readings 24 h apart.
- Service F.J. et al., "Mean amplitude of glycemic excursions", Diabetes 19(9), 1970, and
  Fernandes N.J. et al., "Open-source algorithm to calculate mean amplitude of glycemic
  excursions using short and long moving averages", J Diabetes Sci Technol 16(2), 2022: MAGE
  with turning points found where a short (5-point) and a long (32-point) moving average cross.
- Kovatchev B.P. et al., "Evaluation of a new measure of blood glucose variability in
  diabetes", Diabetes Care 29(11), 2006: ADRR, the mean over days of the day's largest low
  risk plus its largest high risk.
- Battelino T. et al., Diabetes Care 42(8), 2019: "% time CGM is active", 70 % of 14 days
  recommended.
"""
from __future__ import annotations

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.metrics import RISK_MINIMUM_MG_DL, _low_high_risk, validate_glucose

MINUTES_PER_DAY = 1440.0
DEFAULT_STEP_MIN = 5.0
DEFAULT_MAX_GAP_MIN = 45.0


def local_minutes(times) -> np.ndarray:
    """Minutes elapsed since the local midnight that starts the first reading's day.

    Parameters
    ----------
    times : array_like of datetimes, numpy datetime64 or a pandas Series/DatetimeIndex
        Time-zone-aware times take their midnight on their own zone's clock; naive times
        are taken as local.

    Returns
    -------
    ndarray (m,)
        Float minutes of elapsed time (increasing when the times do, also across a DST
        change); ``floor(t / 1440)`` is the day number, 0 the first day. After a DST change
        the days of 1440 minutes are shifted from the local calendar days by the hour.
    """
    import pandas as pd

    index = pd.DatetimeIndex(times)
    if index.size == 0:
        return np.zeros(0)
    midnight = index.min().normalize()
    return np.asarray((index - midnight).total_seconds(), dtype=float) / 60.0


def validate_trace(time_min, glucose_mg_dl, metric: str, minimum_mg_dl: float | None = None):
    """``(time_min, glucose)`` as float arrays after checking shapes, order and values.

    Raises
    ------
    InvalidInputError
        Different lengths, a non-finite time, times out of order, or invalid glucose
        (see :func:`pyloopkit.metrics.validate_glucose`).
    """
    glucose = validate_glucose(glucose_mg_dl, metric, minimum_mg_dl)
    time = np.asarray(time_min, dtype=float)
    field = f"time_min (for {metric})"
    if glucose.ndim != 1 or time.shape != glucose.shape:
        raise InvalidInputError([Problem(field, None, time.shape, f"expected the shape of glucose {glucose.shape}")])
    bad = np.flatnonzero(~np.isfinite(time))
    if bad.size:
        raise InvalidInputError([Problem(field, int(bad[0]), float(time[bad[0]]), "times must be finite")])
    back = np.flatnonzero(np.diff(time) <= 0.0)
    if back.size:
        i = int(back[0]) + 1
        raise InvalidInputError([Problem(field, i, float(time[i]), f"times must increase (previous {time[i - 1]!r})")])
    return time, glucose


def grid_glucose(time_min, glucose_mg_dl, step_min: float = DEFAULT_STEP_MIN,
                 max_gap_min: float = DEFAULT_MAX_GAP_MIN) -> tuple[np.ndarray, np.ndarray]:
    """The trace on the regular grid ``k * step_min`` between the first and the last reading.

    Returns
    -------
    grid_min, glucose : ndarray (g,)
        Grid times [min] and linearly interpolated glucose [mg/dL]; NaN at grid points strictly
        inside a gap between readings longer than ``max_gap_min``.
    """
    time, glucose = validate_trace(time_min, glucose_mg_dl, "grid_glucose")
    first, last = np.ceil(time[0] / step_min), np.floor(time[-1] / step_min)
    grid = step_min * np.arange(first, last + 1)
    values = np.interp(grid, time, glucose)
    after = np.searchsorted(time, grid, side="right")  # first reading after each grid point
    inside = (after > 0) & (after < time.size)
    gap = np.zeros(grid.size, dtype=bool)
    gap[inside] = (time[after[inside]] - time[after[inside] - 1] > max_gap_min) & (grid[inside] > time[after[inside] - 1])
    values[gap] = np.nan
    return grid, values


def _lagged_differences(time_min, glucose_mg_dl, lag_min: float, step_min: float, max_gap_min: float):
    _, values = grid_glucose(time_min, glucose_mg_dl, step_min, max_gap_min)
    lag = int(round(lag_min / step_min))
    differences = values[lag:] - values[:-lag] if 0 < lag < values.size else np.zeros(0)
    return differences[np.isfinite(differences)]


def conga(time_min, glucose_mg_dl, hours: float = 1.0, step_min: float = DEFAULT_STEP_MIN,
          max_gap_min: float = DEFAULT_MAX_GAP_MIN) -> float:
    """CONGA-n [mg/dL]: sample SD (ddof=1) of the grid differences ``G(t) - G(t - n h)``.

    NaN when fewer than two differences exist.
    """
    differences = _lagged_differences(time_min, glucose_mg_dl, 60.0 * hours, step_min, max_gap_min)
    return float(np.std(differences, ddof=1)) if differences.size >= 2 else float("nan")


def modd(time_min, glucose_mg_dl, days: int = 1, step_min: float = DEFAULT_STEP_MIN,
         max_gap_min: float = DEFAULT_MAX_GAP_MIN) -> float:
    """MODD [mg/dL]: mean of ``|G(t) - G(t - 24 h)|`` on the grid; NaN when no pair exists."""
    differences = _lagged_differences(time_min, glucose_mg_dl, MINUTES_PER_DAY * days, step_min, max_gap_min)
    return float(np.abs(differences).mean()) if differences.size else float("nan")


def adrr(time_min, glucose_mg_dl) -> float:
    """Average daily risk range: mean over local days of ``max(rl) + max(rh)`` (Kovatchev 2006).

    ``rl``, ``rh`` are the low and high branches of ``r = 10 f(G)^2`` (see
    :func:`pyloopkit.metrics.low_high_risk`); a day is ``floor(time_min / 1440)``.
    """
    time, glucose = validate_trace(time_min, glucose_mg_dl, "adrr", RISK_MINIMUM_MG_DL)
    low, high = _low_high_risk(glucose)
    day = np.floor(time / MINUTES_PER_DAY).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    return float(np.mean(np.maximum.reduceat(low, starts) + np.maximum.reduceat(high, starts)))


def cgm_active_percent(time_min, step_min: float = DEFAULT_STEP_MIN, start_min: float | None = None,
                       end_min: float | None = None) -> float:
    """Percent of the expected CGM readings that are present.

    Without a window: the span from the first to the last reading holds
    ``round(span / step) + 1`` expected readings, of which every gap longer than one step
    misses ``round(sum(gap - step) / step)`` (iglu's ``active_percent``, automatic range).
    With ``start_min``/``end_min``: the share of the ``(end - start) / step`` slots of the
    window ``[start, end)`` that hold at least one reading.
    """
    time = np.asarray(time_min, dtype=float)
    if time.ndim != 1 or time.size == 0 or not np.all(np.isfinite(time)) or np.any(np.diff(time) <= 0):
        raise InvalidInputError([Problem("time_min (for cgm_active_percent)", None, time.shape,
                                         "expected a non-empty, finite, increasing array of minutes")])
    if start_min is None and end_min is None:
        gaps = np.diff(time)
        gaps = gaps[gaps > step_min]
        expected = round((time[-1] - time[0]) / step_min) + 1
        missing = round(float(np.sum(gaps - step_min)) / step_min)
        return 100.0 * (expected - missing) / expected
    start = time[0] if start_min is None else float(start_min)
    end = time[-1] + step_min if end_min is None else float(end_min)
    if not end > start:
        raise InvalidInputError([Problem("end_min (for cgm_active_percent)", None, end, f"must be after start {start}")])
    slots = int(np.ceil((end - start) / step_min - 1e-9))
    inside = time[(time >= start) & (time < end)]
    return 100.0 * np.unique(np.floor((inside - start) / step_min)).size / slots


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` points, skipping NaN (NaN where all are NaN)."""
    finite = np.isfinite(values)
    sums = np.cumsum(np.r_[0.0, np.where(finite, values, 0.0)])
    counts = np.cumsum(np.r_[0, finite.astype(np.int64)])
    lo = np.maximum(np.arange(values.size) + 1 - window, 0)
    hi = np.arange(1, values.size + 1)
    n = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[hi] - sums[lo]) / np.maximum(n, 1), np.nan)


def _moving_average_difference(glucose: np.ndarray, short: int, long: int) -> np.ndarray:
    """Short minus long trailing moving average, the first ``window`` points held at the first full one."""
    averages = []
    for window in (short, long):
        average = _rolling_mean(glucose, window)
        average[:window] = average[min(window, glucose.size) - 1]
        averages.append(average)
    difference = averages[0] - averages[1]
    difference[difference == 0.0] = np.nan
    return difference


def _crossings(glucose: np.ndarray, difference: np.ndarray) -> tuple[list[int], list[bool]]:
    """Indices where the moving averages cross, and whether a peak (True) or nadir follows.

    Consecutive points are compared when both readings and both differences are present;
    otherwise a point is compared with the last crossing. The first and the last point
    bound the list.
    """
    positions, peak_follows = [0], [bool(difference[0] > 0)]
    usable = np.isfinite(glucose) & np.isfinite(difference)
    for i in range(1, difference.size):
        if not np.isfinite(difference[i]):
            continue
        before = difference[i - 1] if usable[i] and usable[i - 1] else difference[positions[-1]]
        if difference[i] * before < 0:
            positions.append(i)
            peak_follows.append(bool(difference[i] > before))
    positions.append(difference.size - 1)
    peak_follows.append(bool(difference[-1] > 0))
    return positions, peak_follows


def _turning_points(glucose: np.ndarray, positions: list[int], peak_follows: list[bool]) -> np.ndarray:
    """The peak or nadir between each pair of crossings, searched from the previous turning point."""
    values, start = [], positions[0]
    for k in range(len(positions) - 1):
        segment = glucose[start:positions[k + 1] + 1]
        offset = int(np.nanargmax(segment) if peak_follows[k] else np.nanargmin(segment))
        values.append(segment[offset])
        start += offset
    return np.asarray(values)


def _excursions(extrema: np.ndarray, threshold: float, sign: float) -> list[float]:
    """Heights of the rises (sign +1) or falls (sign -1) between turning points larger than ``threshold``.

    From the last accepted excursion's end, the largest move into the current point is taken
    when it exceeds the threshold; the excursion then rides on while the points keep going its
    way and ends at the first point that turns back by more than the threshold (or at the end).
    """
    x = sign * extrema
    n = x.size
    heights, base, j = [], 0, 0
    while j < n:
        rise = x[j] - x[base:j + 1]
        origin = base + int(np.argmax(rise))
        if rise.max() <= threshold:
            j += 1
            continue
        k = j
        while True:
            if x[k] >= x[j]:
                j = k
            if x[k] - x[j] < -threshold or k == n - 1:
                break
            k += 1
        heights.append(float(x[j] - x[origin]))
        # a rise restarts its search at the point that ended it, a fall at its own nadir
        base = k if sign > 0 else j
        j = k
    return heights


def _segment_mage(glucose: np.ndarray, short: int, long: int) -> list[float]:
    """MAGE+ and MAGE- (mean heights) of one gap-bounded segment; [] when it has none."""
    present = glucose[np.isfinite(glucose)]
    if glucose.size < max(7, short) or present.size < 2 or np.std(present, ddof=1) < 1.0:
        return []
    difference = _moving_average_difference(glucose, short, long)
    extrema = _turning_points(glucose, *_crossings(glucose, difference))
    threshold = float(np.std(present, ddof=1))
    means = []
    for sign in (1.0, -1.0):
        heights = _excursions(extrema, threshold, sign)
        if heights:
            means.append(float(np.mean(heights)))
    return means


def mage(time_min, glucose_mg_dl, short_ma: int = 5, long_ma: int = 32, step_min: float = DEFAULT_STEP_MIN,
         max_gap_min: float = DEFAULT_MAX_GAP_MIN, segment_gap_min: float = 180.0) -> float:
    """Mean amplitude of glycaemic excursions [mg/dL], moving-average method (Fernandes 2022).

    The grid trace is cut into segments at gaps longer than ``segment_gap_min``. In each,
    turning points lie between the crossings of the ``short_ma``- and ``long_ma``-point
    moving averages; excursions are rises (MAGE+) and falls (MAGE-) between turning points
    larger than one SD of the segment's readings. The result is the mean of MAGE+ and MAGE-
    over the segments, each weighted by its duration. NaN when no segment has an excursion.
    """
    short, long = sorted((int(short_ma), int(long_ma)))
    grid, values = grid_glucose(time_min, glucose_mg_dl, step_min, max_gap_min)
    present = np.flatnonzero(np.isfinite(values))
    if present.size == 0:
        return float("nan")
    cuts = present[1:][np.diff(grid[present]) > segment_gap_min]
    bounds = np.r_[present[0], cuts]
    ends = np.r_[present[np.searchsorted(present, cuts) - 1], present[-1]] + 1
    total, weight = 0.0, 0.0
    for lo, hi in zip(bounds, ends):
        duration = grid[hi - 1] - grid[lo]
        for value in _segment_mage(values[lo:hi], short, long):
            total += duration * value
            weight += duration
    return float(total / weight) if weight > 0 else float("nan")
