"""The model method: hourly ISF, carb ratio and basal fitted to observed 5-minute glucose changes.

For each pair of consecutive readings (bins k and k + 1, 5 minutes apart) the predicted change is

    dG_k = ISF_h * ( C_k / CR_h  -  I_k  +  B_h * 5/60 )                       (mg/dL per 5 min)

with ``h`` the local hour of the interval, ``I_k`` the insulin acting during it (U, the Loop core's
exponential insulin curve applied to every delivery: basal, temp basal and bolus), ``C_k`` the
carbs absorbed during it (g, the core's piecewise-linear absorption curve), and ``B_h`` the basal
rate that holds glucose flat without food (U/h): endogenous glucose output expressed as insulin.

The parameters are fitted in log space, ``theta = log(ISF_h, CR_h, B_h)`` (72 numbers),  by a
projected Levenberg-Marquardt iteration (see :func:`fit`) minimising

    sum_k rho( ((dG_obs_k - dG_k) / sigma)^2 ),   rho(s) = 2 (sqrt(1 + s) - 1)  (soft L1)
      + sum_i ((theta_i - theta0_i) / TAU_PRIOR)^2          (towards the current settings)
      + sum_h ((theta_h - theta_{h+1}) / TAU_SMOOTH)^2       (neighbouring hours, cyclic)

where ``sigma`` is the robust (MAD) scale of the residuals, re-estimated once after a first fit.
``tuning_limit`` L bounds every value to ``current * [1 - L, 1 + L]``. The 95% confidence interval
of each value is ``exp(theta +- 1.96 sd)`` from the Gauss-Newton covariance ``(J^T W J)^-1`` at the
optimum (``W`` the robust loss's weights, priors included). A value whose data-only standard deviation (``1 / sqrt((J_data^T J_data)_ii)``, log
units) exceeds ``MAX_DATA_SD`` is reported as not estimable (it follows the prior and its
neighbours).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DT_H = 5.0 / 60.0
TAU_PRIOR = 0.5
TAU_SMOOTH = 0.3
MAX_DATA_SD = 0.2
UNBOUNDED_FACTOR = 4.0
"""Without a tuning limit, values stay within a factor 4 of the current settings (numerical safety)."""
MIN_GLUCOSE = 70.0
"""Changes with a reading below this (mg/dL) are left out of the fit: rescue carbs are often not
recorded and counter-regulation is outside the model."""


@dataclass
class Design:
    """Observed 5-minute changes and their regressors (one row per pair of consecutive readings)."""

    dg: np.ndarray
    insulin_u: np.ndarray
    carbs_g: np.ndarray
    hour: np.ndarray

    @classmethod
    def from_observations(cls, obs, min_glucose: float = 0.0) -> "Design":
        """Pairs of consecutive readings, both finite and at or above ``min_glucose`` (mg/dL)."""
        g = obs.glucose
        ok = np.isfinite(g[1:]) & np.isfinite(g[:-1])
        ok[ok] &= (g[1:][ok] >= min_glucose) & (g[:-1][ok] >= min_glucose)
        k = np.flatnonzero(ok)
        return cls(g[k + 1] - g[k], obs.insulin_activity()[k], obs.carb_activity()[k], obs.hour[k])


def predict(design: Design, isf: np.ndarray, cr: np.ndarray, basal: np.ndarray) -> np.ndarray:
    """Predicted 5-minute changes (mg/dL) for hourly ``isf`` (mg/dL/U), ``cr`` (g/U), ``basal`` (U/h)."""
    h = design.hour
    return isf[h] * (design.carbs_g / cr[h] - design.insulin_u + basal[h] * DT_H)


def rmse(design: Design, isf, cr, basal) -> float:
    """Root mean square error of the predicted 5-minute changes, mg/dL."""
    return float(np.sqrt(np.mean((design.dg - predict(design, isf, cr, basal)) ** 2)))


def _robust_sigma(r: np.ndarray) -> float:
    return max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 0.5)


@dataclass
class Fit:
    """Hourly estimates (3, 24) in natural units, 95% interval bounds, data-only sd (log units)."""

    values: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    data_sd: np.ndarray
    sigma: float
    at_bound: np.ndarray


def _soft_l1(z2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rho(z^2) = 2 (sqrt(1 + z^2) - 1)`` and its derivative with respect to ``z^2``."""
    root = np.sqrt(1.0 + z2)
    return 2.0 * (root - 1.0), 1.0 / root


def _smooth_matrix(free: np.ndarray) -> np.ndarray:
    """Rows ``(e_a - e_b) / TAU_SMOOTH`` for neighbouring hours (cyclic) of each schedule."""
    d = np.zeros((72, 72))
    for p in range(3):
        for h in range(24):
            d[p * 24 + h, p * 24 + h] = 1.0
            d[p * 24 + h, p * 24 + (h + 1) % 24] = -1.0
    return d / TAU_SMOOTH


def _gram(h: np.ndarray, parts, weights: np.ndarray) -> np.ndarray:
    """``J^T diag(weights) J`` (72 x 72) of the data rows: each row's three non-zeros are in its hour."""
    gram = np.zeros((72, 72))
    hours = np.arange(24)
    for a in range(3):
        for b in range(a, 3):
            block = np.bincount(h, weights=weights * parts[a] * parts[b], minlength=24)
            gram[a * 24 + hours, b * 24 + hours] = block
            gram[b * 24 + hours, a * 24 + hours] = block
    return gram


def fit(design: Design, current: np.ndarray, free: np.ndarray, tuning_limit: float | None,
        max_iterations: int = 100) -> Fit:
    """Fit ``log(ISF, CR, B)`` hourly (``current``: (3, 24) prior values; ``free``: (3, 24) bool).

    The objective (module docstring) is minimised by a projected Levenberg-Marquardt iteration on
    its Gauss-Newton model (the robust loss enters as IRLS weights ``1 / sqrt(1 + z^2)``): the
    data term's Jacobian has three non-zeros per row, in the row's hour, so the gradient and the
    72 x 72 Gauss-Newton matrix are per-hour sums (``np.bincount``). Values at a bound whose
    gradient points outwards are held there for the step.
    """
    theta0 = np.log(current).ravel()
    free_flat = free.ravel()
    lo_step = np.log1p(-tuning_limit) if tuning_limit else -np.log(UNBOUNDED_FACTOR)
    hi_step = np.log1p(tuning_limit) if tuning_limit else np.log(UNBOUNDED_FACTOR)
    lo = np.where(free_flat, theta0 + lo_step, theta0)
    hi = np.where(free_flat, theta0 + hi_step, theta0)
    h = design.hour
    smooth = _smooth_matrix(free)
    smooth_gram = smooth.T @ smooth
    prior_w = np.where(free_flat, 1.0 / TAU_PRIOR ** 2, 0.0)

    def derivatives(theta):
        isf, cr, basal = np.exp(theta.reshape(3, 24))
        pred = predict(design, isf, cr, basal)
        return pred, (pred, -isf[h] * design.carbs_g / cr[h], isf[h] * basal[h] * DT_H)

    def objective(theta, sigma):
        z = (design.dg - derivatives(theta)[0]) / sigma
        dz = theta - theta0
        return float(np.sum(_soft_l1(z * z)[0]) + np.sum(prior_w * dz * dz) + np.sum((smooth @ theta) ** 2))

    def model(theta, sigma):
        """Gradient and Gauss-Newton matrix of the objective at ``theta``."""
        pred, parts = derivatives(theta)
        z = (design.dg - pred) / sigma
        w = _soft_l1(z * z)[1]
        grad = np.concatenate([np.bincount(h, weights=-2.0 * w * z / sigma * d, minlength=24) for d in parts])
        grad += 2.0 * prior_w * (theta - theta0) + 2.0 * smooth_gram @ theta
        hess = 2.0 * (_gram(h, parts, w) / sigma ** 2 + np.diag(prior_w) + smooth_gram)
        return grad, hess

    def solve(theta, sigma):
        value, damping = objective(theta, sigma), 1e-3
        for _ in range(max_iterations):
            grad, hess = model(theta, sigma)
            held = ~free_flat | ((theta <= lo) & (grad > 0)) | ((theta >= hi) & (grad < 0))
            idx = np.flatnonzero(~held)
            if idx.size == 0:
                break
            sub = hess[np.ix_(idx, idx)]
            while True:
                step = np.zeros(72)
                step[idx] = np.linalg.solve(sub + damping * np.diag(np.diag(sub)), -grad[idx])
                candidate = np.clip(theta + step, lo, hi)
                new_value = objective(candidate, sigma)
                if new_value <= value:
                    damping = max(damping / 10.0, 1e-9)
                    break
                damping *= 10.0
                if damping > 1e8:
                    return theta
            converged = value - new_value <= 1e-10 * max(value, 1.0)
            theta, value = candidate, new_value
            if converged:
                break
        return theta

    theta = theta0.copy()
    sigma = _robust_sigma(design.dg - derivatives(theta)[0])
    for _ in range(2):
        theta = solve(theta, sigma)
        sigma = _robust_sigma(design.dg - derivatives(theta)[0])
    pred, parts = derivatives(theta)
    z = (design.dg - pred) / sigma
    gram = _gram(h, parts, _soft_l1(z * z)[1]) / sigma ** 2  # IRLS weights of the robust loss
    info_data = np.diag(gram).copy()
    idx = np.flatnonzero(free_flat)
    total = gram + np.diag(prior_w) + smooth_gram
    cov = np.linalg.pinv(total[np.ix_(idx, idx)])
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    low, high, data_sd = (np.full(72, np.nan) for _ in range(3))
    low[idx], high[idx] = np.exp(theta[idx] - 1.96 * sd), np.exp(theta[idx] + 1.96 * sd)
    with np.errstate(divide="ignore"):
        data_sd[idx] = np.where(info_data[idx] > 0, 1.0 / np.sqrt(info_data[idx]), np.inf)
    at_bound = free_flat & ((theta <= lo + 1e-6) | (theta >= hi - 1e-6))
    values = np.where(free, np.exp(theta).reshape(3, 24), current)  # fixed values exactly as given
    return Fit(values, low.reshape(3, 24), high.reshape(3, 24), data_sd.reshape(3, 24),
               sigma, at_bound.reshape(3, 24))
