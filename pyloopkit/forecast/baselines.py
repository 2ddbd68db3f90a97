"""Reference forecasters: persistence, linear trend, autoregression on CGM, and Loop's own prediction.

None of them clamps its output: a forecast below 40 or above 400 mg/dL is reported as it is, so
the evaluation sees every error.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError, Problem
from .base import Forecaster
from .features import HORIZON_STEPS, HORIZONS_MIN, STEP_MIN, ForecastRows


class Persistence(Forecaster):
    """The last CGM reading, held for 4 hours."""

    name = "persistence"

    def predict_rows(self, rows: ForecastRows) -> np.ndarray:
        return np.repeat(rows.cgm_history[:, -1:], HORIZON_STEPS, axis=1)


class LinearTrend(Forecaster):
    """The least-squares line through the last ``window_min`` minutes of CGM, extrapolated.

    Parameters
    ----------
    window_min : int
        Minutes of history fitted (a multiple of 5, at least 10).
    """

    name = "linear_trend"

    def __init__(self, window_min: int = 30):
        if window_min % STEP_MIN or window_min < 2 * STEP_MIN:
            raise InvalidInputError([Problem("window_min", None, window_min, "must be a multiple of 5, >= 10")])
        self.window_min = window_min

    def predict_rows(self, rows: ForecastRows) -> np.ndarray:
        k = self.window_min // STEP_MIN + 1
        t = STEP_MIN * np.arange(-(k - 1), 1, dtype=np.float64)
        y = rows.cgm_history[:, -k:]
        slope = ((t - t.mean()) * (y - y.mean(axis=1, keepdims=True))).sum(axis=1) / ((t - t.mean()) ** 2).sum()
        return y[:, -1:] + slope[:, None] * HORIZONS_MIN[None, :]


class Autoregressive(Forecaster):
    """AR(p) on the 5-min CGM differences, fitted by least squares and iterated to 4 hours.

    ``delta[t+1] = sum_j a_j delta[t-j] + c``, glucose = last reading + cumulative deltas.

    Parameters
    ----------
    order : int
        Number of past differences (p).
    """

    name = "autoregressive"

    def __init__(self, order: int = 6):
        if not 1 <= order <= 30:
            raise InvalidInputError([Problem("order", None, order, "must be in 1..30")])
        self.order = order
        self.coef_: np.ndarray | None = None

    def fit(self, rows: ForecastRows) -> "Autoregressive":
        """Fit on the rows' CGM histories followed by their targets (mg/dL)."""
        series = rows.cgm_history if rows.target is None else np.hstack([rows.cgm_history, rows.target])
        d = np.diff(series, axis=1)
        p = self.order
        x = np.stack([d[:, j:d.shape[1] - p + j] for j in range(p)], axis=2).reshape(-1, p)
        y = d[:, p:].reshape(-1)
        design = np.hstack([x, np.ones((len(x), 1))])
        self.coef_ = np.linalg.lstsq(design, y, rcond=None)[0]
        return self

    def predict_rows(self, rows: ForecastRows) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("Autoregressive.fit() must be called before predicting")
        p = self.order
        lags = list(np.diff(rows.cgm_history, axis=1)[:, -p:].T)
        level = rows.cgm_history[:, -1].copy()
        out = np.empty((len(rows), HORIZON_STEPS))
        for h in range(HORIZON_STEPS):
            delta = sum(self.coef_[j] * lags[-p + j] for j in range(p)) + self.coef_[-1]
            lags.append(delta)
            level = level + delta
            out[:, h] = level
        return out


class LoopPrediction(Forecaster):
    """Loop's own prediction (``update()``'s ``predicted_glucose``) at the horizons."""

    name = "loop"

    def predict_rows(self, rows: ForecastRows) -> np.ndarray:
        return rows.loop_prediction.copy()


class Truth(Forecaster):
    """The readings that followed (rows with targets only): the zero-error reference for tests."""

    name = "truth"

    def predict_rows(self, rows: ForecastRows) -> np.ndarray:
        if rows.target is None:
            raise InvalidInputError([Problem("rows.target", None, None, "Truth needs rows with targets")])
        return rows.target.copy()
