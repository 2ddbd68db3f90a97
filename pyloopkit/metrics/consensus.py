"""The consensus CGM metrics of a timed trace in one dictionary (Battelino 2019, Klonoff 2022)."""
from __future__ import annotations

import numpy as np

from pyloopkit import metrics
from pyloopkit.metrics import series

#: Time-in-ranges bands of the consensus report, lowest first: (key, label, lower, upper) with
#: lower <= G < upper for the two low bands and lower < G <= upper above 70 mg/dL.
RANGE_BANDS = (
    ("percent_below_54", "Very low", -np.inf, 54.0),
    ("percent_54_69", "Low", 54.0, 70.0),
    ("percent_70_180", "In range", 70.0, 180.0),
    ("percent_181_250", "High", 180.0, 250.0),
    ("percent_above_250", "Very high", 250.0, np.inf),
)


def band_percentages(glucose_mg_dl) -> dict:
    """Percent of readings in each of the five :data:`RANGE_BANDS` (they add up to 100)."""
    tir = metrics.time_in_ranges(glucose_mg_dl, percent=True)
    return {
        "percent_below_54": tir["below_54"],
        "percent_54_69": tir["below_70"] - tir["below_54"],
        "percent_70_180": tir["in_70_180"],
        "percent_181_250": tir["above_180"] - tir["above_250"],
        "percent_above_250": tir["above_250"],
    }


def cgm_summary(time_min, glucose_mg_dl, start_min: float | None = None, end_min: float | None = None) -> dict:
    """Every consensus metric of one trace.

    Parameters
    ----------
    time_min : array_like (m,)
        Local clock minutes, increasing (see :func:`pyloopkit.metrics.local_minutes`).
    glucose_mg_dl : array_like (m,)
        CGM readings [mg/dL], at least two, each >= 1 mg/dL.
    start_min, end_min : float, optional
        The reporting window, for ``cgm_active_percent`` (default: first to last reading).

    Returns
    -------
    dict
        ``n_readings``, ``days`` (window length), ``cgm_active_percent``, ``mean_mg_dl``,
        ``sd_mg_dl``, ``cv_percent``, ``gmi_percent``, ``gmi_mmol_mol``, the five band
        percentages of :data:`RANGE_BANDS` plus ``percent_below_70`` and ``percent_above_180``,
        ``gri`` and ``gri_zone``, ``lbgi``, ``hbgi``, ``adrr``, ``j_index``, ``mage_mg_dl``,
        ``conga1_mg_dl``, ``modd_mg_dl`` (NaN when the trace is too short for it).
    """
    time, glucose = series.validate_trace(time_min, glucose_mg_dl, "cgm_summary", metrics.RISK_MINIMUM_MG_DL)
    base = metrics.summary(glucose)
    start = time[0] if start_min is None else float(start_min)
    end = time[-1] + series.DEFAULT_STEP_MIN if end_min is None else float(end_min)
    result = {
        "n_readings": int(glucose.size),
        "days": float(end - start) / series.MINUTES_PER_DAY,
        "cgm_active_percent": series.cgm_active_percent(time, start_min=start, end_min=end),
        "mean_mg_dl": base["mean_mg_dl"],
        "sd_mg_dl": base["sd_mg_dl"],
        "cv_percent": 100.0 * base["cv"],
        "gmi_percent": base["gmi_percent"],
        "gmi_mmol_mol": metrics.gmi_mmol_mol(glucose),
    }
    result.update(band_percentages(glucose))
    result["percent_below_70"] = 100.0 * base["time_below_70"]
    result["percent_above_180"] = 100.0 * base["time_above_180"]
    result.update({
        "gri": base["gri"],
        "gri_zone": metrics.gri_zone(base["gri"]),
        "lbgi": base["lbgi"],
        "hbgi": base["hbgi"],
        "adrr": series.adrr(time, glucose),
        "j_index": metrics.j_index(glucose),
        "mage_mg_dl": float(series.mage(time, glucose)),
        "conga1_mg_dl": series.conga(time, glucose, hours=1.0),
        "modd_mg_dl": series.modd(time, glucose),
    })
    return result
