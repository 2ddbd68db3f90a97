"""Scoring forecasts: errors by horizon, Clarke and Parkes error grids, hypoglycaemia detection.

Clarke et al., Diabetes Care 10:622 (1987): zones A-E by the usual rules, A tested first.
Parkes et al., Diabetes Care 23:1143 (2000), type 1 diabetes grid, with the boundary vertices of
Pfützner et al., J Diabetes Sci Technol 7:1275 (2013), Table 1; the last segment of each boundary
is extended as a straight line.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError, Problem
from .features import HORIZONS_MIN, ForecastRows

ZONES = ("A", "B", "C", "D", "E")
EVALUATION_HORIZONS_MIN = (30, 60, 120, 180, 240)
HYPO_MG_DL = 70.0

# Parkes type 1 boundaries (reference mg/dL, prediction mg/dL), Pfützner et al. 2013, Table 1.
_PARKES_UPPER = {"B": ((0, 50), (30, 50), (140, 170), (280, 380), (430, 550)),
                 "C": ((0, 60), (30, 60), (50, 80), (70, 110), (260, 550)),
                 "D": ((0, 100), (25, 100), (50, 125), (80, 215), (125, 550)),
                 "E": ((0, 150), (35, 155), (50, 550))}
_PARKES_LOWER = {"B": ((50, 30), (170, 145), (385, 300), (550, 450)),
                 "C": ((120, 30), (260, 130), (550, 250)),
                 "D": ((250, 40), (550, 150))}


def clarke_zones(reference, predicted) -> np.ndarray:
    """Clarke error-grid zone (``"A"``..``"E"``) of each (reference, predicted) pair in mg/dL."""
    r, p = np.broadcast_arrays(np.asarray(reference, float), np.asarray(predicted, float))
    zone = np.full(r.shape, "B")
    d = ((r >= 240) & (p >= 70) & (p <= 180)) | ((r <= 70) & (p >= 70) & (p <= 180))
    c = ((r >= 70) & (r <= 290) & (p >= r + 110)) | ((r >= 130) & (r <= 180) & (p <= 1.4 * r - 182))
    e = ((r <= 70) & (p >= 180)) | ((r >= 180) & (p <= 70))
    a = (np.abs(p - r) <= 0.2 * r) | ((r < 70) & (p < 70))
    for mask, name in ((d, "D"), (c, "C"), (e, "E"), (a, "A")):
        zone[mask] = name
    return zone


def _extended(points, x):
    """A boundary's prediction value at reference ``x``, its last segment extended."""
    xs, ys = np.array(points, float).T
    slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return np.where(x <= xs[-1], np.interp(x, xs, ys), ys[-1] + slope * (x - xs[-1]))


def parkes_zones(reference, predicted) -> np.ndarray:
    """Parkes (consensus) type 1 error-grid zone of each (reference, predicted) pair in mg/dL."""
    r, p = np.broadcast_arrays(np.asarray(reference, float), np.asarray(predicted, float))
    zone = np.full(r.shape, "A")
    for name in ("B", "C", "D", "E"):
        outside = p > _extended(_PARKES_UPPER[name], r)
        if name in _PARKES_LOWER:
            lower = _PARKES_LOWER[name]
            outside |= (r >= lower[0][0]) & (p < _extended(lower, r))
        zone[outside] = name
    return zone


def score(reference, predicted) -> dict:
    """Errors of forecasts against what followed (mg/dL arrays of one shape).

    Returns ``rmse``, ``mae``, ``bias`` (mean predicted - reference), ``mard_percent``, the share
    of pairs in each Clarke and Parkes zone (``clarke_A_percent``, ...), and hypoglycaemia
    (< 70 mg/dL) detection ``hypo_sensitivity`` / ``hypo_precision`` (NaN when undefined).
    """
    r = np.asarray(reference, float).ravel()
    p = np.asarray(predicted, float).ravel()
    if r.shape != p.shape or not len(r):
        raise InvalidInputError([Problem("predicted", None, p.shape, f"must match the reference {r.shape}, non-empty")])
    bad = np.flatnonzero(~np.isfinite(p) | ~np.isfinite(r) | (r <= 0))
    if len(bad):
        i = int(bad[0])
        raise InvalidInputError([Problem("predicted/reference", i, (float(p[i]), float(r[i])),
                                         "must be finite, with a positive reference")])
    err = p - r
    out = {"n": len(r), "rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))),
           "bias": float(np.mean(err)), "mard_percent": float(100 * np.mean(np.abs(err) / r))}
    for grid, zones in (("clarke", clarke_zones(r, p)), ("parkes", parkes_zones(r, p))):
        for z in ZONES:
            out[f"{grid}_{z}_percent"] = float(100 * np.mean(zones == z))
    true_hypo, said_hypo = r < HYPO_MG_DL, p < HYPO_MG_DL
    hits = np.sum(true_hypo & said_hypo)
    out["hypo_sensitivity"] = float(hits / true_hypo.sum()) if true_hypo.any() else float("nan")
    out["hypo_precision"] = float(hits / said_hypo.sum()) if said_hypo.any() else float("nan")
    return out


def evaluate(forecasters, rows: ForecastRows, horizons_min=EVALUATION_HORIZONS_MIN):
    """A tidy table (pandas DataFrame): one row per forecaster x horizon with :func:`score`'s columns.

    Parameters
    ----------
    forecasters : list of Forecaster
        Scored on the same rows.
    rows : ForecastRows
        With targets.
    horizons_min : sequence of int
        Horizons (minutes, multiples of 5 up to 240).
    """
    import pandas as pd

    if rows.target is None:
        raise InvalidInputError([Problem("rows.target", None, None, "evaluation needs rows with targets")])
    columns = [int(np.flatnonzero(HORIZONS_MIN == h)[0]) if h in HORIZONS_MIN else None for h in horizons_min]
    problems = [Problem("horizons_min", i, h, "must be a multiple of 5 in 5..240")
                for i, (h, c) in enumerate(zip(horizons_min, columns)) if c is None]
    if problems:
        raise InvalidInputError(problems)
    table = []
    for f in forecasters:
        predicted = f.predict_rows(rows)
        for h, c in zip(horizons_min, columns):
            table.append({"model": f.name, "horizon_min": int(h), **score(rows.target[:, c], predicted[:, c])})
    return pd.DataFrame(table)


def plot_errors(table, path: str | None = None):
    """RMSE by horizon for every model of an :func:`evaluate` table; saved to ``path`` when given."""
    import matplotlib
    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for model, part in table.groupby("model", sort=False):
        ax.plot(part["horizon_min"], part["rmse"], marker="o", label=model)
    ax.set_xlabel("horizon (min)")
    ax.set_ylabel("RMSE (mg/dL)")
    ax.set_title("Forecast error by horizon (held-out patients and seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def plot_examples(forecasters, rows: ForecastRows, indices, path: str | None = None):
    """CGM history, what followed and each model's forecast for a few rows."""
    import matplotlib
    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .features import HISTORY_OFFSETS_MIN

    indices = list(indices)
    fig, axes = plt.subplots(len(indices), 1, figsize=(7, 2.6 * len(indices)), sharex=True, squeeze=False)
    predictions = {f.name: f.predict_rows(rows.take(indices)) for f in forecasters}
    for k, (ax, i) in enumerate(zip(axes[:, 0], indices)):
        ax.plot(HISTORY_OFFSETS_MIN, rows.cgm_history[i], color="k", label="CGM history")
        if rows.target is not None:
            ax.plot(HORIZONS_MIN, rows.target[i], color="k", ls=":", label="what followed")
        for name, values in predictions.items():
            ax.plot(HORIZONS_MIN, values[k], label=name)
        ax.axhspan(70, 180, color="g", alpha=0.08)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_ylabel("mg/dL")
    axes[0, 0].legend(fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("minutes from the forecast origin")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
