"""Ambulatory glucose profile: percentiles of glucose by time of day (Bergenstal et al. 2013)."""
from __future__ import annotations

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem

AGP_PERCENTILES = (5, 25, 50, 75, 95)


def agp_percentiles(time_of_day_min, glucose_mg_dl, bin_min: float = 15.0, percentiles=AGP_PERCENTILES,
                    smooth: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Glucose percentiles in time-of-day bins, over all days pooled.

    Parameters
    ----------
    time_of_day_min : array_like (m,)
        Minutes after local midnight, in [0, 1440).
    glucose_mg_dl : array_like (m,)
        Readings [mg/dL].
    bin_min : float
        Bin width [min]; must divide 1440.
    percentiles : sequence of float
        Percentiles (0-100), computed with linear interpolation between order statistics.
    smooth : bool
        Replace each bin's value with the circular weighted mean ``(1, 2, 1) / 4`` of the bin and
        its neighbours (midnight joins 23:45 and 00:00), as AGP charts draw smooth bands. Bins
        without readings stay NaN and are left out of their neighbours' means.

    Returns
    -------
    centres_min : ndarray (b,)
        Bin centres [min after midnight].
    values : ndarray (len(percentiles), b)
        Percentiles [mg/dL]; NaN for a bin without readings.
    """
    t = np.asarray(time_of_day_min, dtype=float)
    g = np.asarray(glucose_mg_dl, dtype=float)
    n_bins = 1440.0 / bin_min
    if not (n_bins.is_integer() and n_bins >= 1):
        raise InvalidInputError([Problem("bin_min", None, bin_min, "must divide 1440 minutes")])
    if t.shape != g.shape or t.ndim != 1:
        raise InvalidInputError([Problem("time_of_day_min", None, t.shape, f"expected the shape of glucose {g.shape}")])
    outside = np.flatnonzero(~((t >= 0) & (t < 1440)))
    if outside.size:
        raise InvalidInputError([Problem("time_of_day_min", int(outside[0]), float(t[outside[0]]), "must be in [0, 1440)")])
    n_bins = int(n_bins)
    bins = (t // bin_min).astype(np.int64)
    order = np.lexsort((g, bins))
    bounds = np.searchsorted(bins[order], np.arange(n_bins + 1))
    values = np.full((len(percentiles), n_bins), np.nan)
    for b in range(n_bins):
        chunk = g[order[bounds[b]:bounds[b + 1]]]
        if chunk.size:
            values[:, b] = np.percentile(chunk, percentiles)
    if smooth:
        weights = np.where(np.isfinite(values), 1.0, 0.0)
        filled = np.where(np.isfinite(values), values, 0.0)
        kernel_sum = 2 * filled + np.roll(filled, 1, axis=1) + np.roll(filled, -1, axis=1)
        kernel_weight = 2 * weights + np.roll(weights, 1, axis=1) + np.roll(weights, -1, axis=1)
        values = np.where(np.isfinite(values), kernel_sum / np.maximum(kernel_weight, 1e-300), np.nan)
    centres = bin_min * (np.arange(n_bins) + 0.5)
    return centres, values
