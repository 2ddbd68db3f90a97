"""Forecast rows from a user's own data (a :class:`pyloopkit.io.History`), for calibration and evaluation.

Origins are taken every ``every_min`` minutes where the history has CGM before and a reading at
each of the next 48 five-minute horizons (within ``tolerance_min``); Loop's effects come from
``History.to_input_dict(at=origin)``.
"""
from __future__ import annotations

import numpy as np

from ..errors import MissingDataError
from .features import HORIZONS_MIN, ForecastRows, rows_from_inputs


def targets_at(times_s: np.ndarray, values: np.ndarray, origin_s: float, tolerance_min: float = 2.5):
    """Readings (mg/dL) at ``origin + 5..240`` min (nearest within the tolerance), or None if one is missing."""
    want = origin_s + 60.0 * HORIZONS_MIN
    index = np.clip(np.searchsorted(times_s, want), 1, len(times_s) - 1)
    nearest = np.where(np.abs(times_s[index - 1] - want) <= np.abs(times_s[index] - want), index - 1, index)
    if np.any(np.abs(times_s[nearest] - want) > 60.0 * tolerance_min):
        return None
    return values[nearest]


def rows_from_history(history, every_min: int = 60, warmup_min: int = 360, progress: bool = False) -> ForecastRows:
    """Forecast rows with targets from a History (needs ``History.to_input_dict``, extra ``io``)."""
    glucose = history.glucose.sort_values("time")
    times = glucose["time"]
    seconds = (times - times.iloc[0]).dt.total_seconds().to_numpy()
    values = glucose["glucose_mg_dl"].to_numpy(dtype=np.float64)
    inputs, targets = [], []
    for origin in np.arange(60.0 * warmup_min, seconds[-1] - 60.0 * HORIZONS_MIN[-1], 60.0 * every_min):
        target = targets_at(seconds, values, origin)
        if target is not None:
            inputs.append(history.to_input_dict(at=times.iloc[0] + np.timedelta64(int(origin), "s")))
            targets.append(target)
    if not inputs:
        raise MissingDataError("the history has no origin with 4 hours of CGM after it (gaps or too short)")
    return rows_from_inputs(inputs, np.array(targets), progress=progress)
