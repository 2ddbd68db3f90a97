"""The model method: hourly ISF, carb ratio and basal fitted to observed glucose changes.

For each row of up to ``WINDOW`` consecutive 5-minute changes inside one local hour (see
:meth:`Design.from_observations`) the predicted change is

    dG_r = ISF_h * ( sum_e f_e C_re / CR_h  -  I_r  +  B_h * n_r * 5/60 )                 (mg/dL)

with ``h`` the local hour of the row, ``n_r`` its number of 5-minute changes, ``I_r`` the insulin
acting during it (U, the Loop core's exponential insulin curve applied to every delivery: basal, temp
basal and bolus), ``C_re`` the grams of carb entry ``e`` absorbed during it (the core's
piecewise-linear absorption curve), ``f_e`` the entry's counting factor (eaten / entered), and ``B_h``
the basal rate that holds glucose flat without food (U/h): endogenous glucose output expressed as insulin.

The parameters are fitted in log space, ``theta = log(ISF_h, CR_h, B_h)`` (72 numbers) and
``phi_e = log f_e``, by a projected Levenberg-Marquardt iteration (see :func:`fit`) minimising

    sum_r rho( ((dG_obs_r - dG_r) / sigma)^2 ),   rho(s) = 2 (sqrt(1 + s) - 1)  (soft L1)
      + sum_i ((theta_i - theta0_i) / TAU_PRIOR)^2          (towards the current settings)
      + sum_e (phi_e / TAU_CARBS)^2                          (carb counting errors)
      + sum_h TV_WEIGHT * TV_SCALE * rho(((theta_h - theta_{h+1}) / TV_SCALE)^2)   (neighbouring hours, cyclic)

where ``sigma`` is the robust (MAD) scale of the residuals, re-estimated once after a first fit.
The last term is a change-point penalty: about ``2 TV_WEIGHT |theta_h - theta_{h+1}|`` (total
variation of the log schedule) for steps above ``TV_SCALE``, quadratic below. Therapy schedules
are piecewise constant with a few items; this penalty lets neighbouring hours share one value
(their data pooled) while a real step costs only its size, where a quadratic penalty would smear
it over several hours.
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
TV_WEIGHT = 4.0
"""Weight of the change-point (total variation) penalty on neighbouring log values."""
TV_SCALE = 0.01
"""Log steps below this (1%) are penalised quadratically (the penalty is smooth at 0)."""
MAX_DATA_SD = 0.2
UNBOUNDED_FACTOR = 4.0
"""Without a tuning limit, values stay within a factor 4 of the current settings (numerical safety)."""
WINDOW = 6
"""5-minute changes summed per row of the fit (30 minutes, inside one local hour)."""
TAU_CARBS = 0.15
"""Prior sd of each carb entry's log factor (carb counts off by about +-15%)."""
CARB_FACTOR_BOUND = np.log(2.0)
"""Carb factors stay within 1/2-2."""
MIN_GLUCOSE = 70.0
"""Changes with a reading below this (mg/dL) are left out of the fit: rescue carbs are often not
recorded and counter-regulation is outside the model."""


@dataclass
class Design:
    """Observed glucose changes and their regressors: per row, the summed change (mg/dL) of
    ``steps`` consecutive 5-minute changes inside one local hour, the insulin acting (U) and the
    carbs absorbed (g) over them."""

    dg: np.ndarray
    insulin_u: np.ndarray
    carbs_g: np.ndarray
    hour: np.ndarray
    steps: np.ndarray
    carb_row: np.ndarray
    """Row, carb entry and grams of each (row, entry) pair: ``carbs_g`` is the per-row sum of
    ``carb_grams``. An entry is a 5-minute bin of a carb stream with an amount (carb rows of one
    bin and absorption time are one entry), numbered in time order."""
    carb_entry: np.ndarray
    carb_grams: np.ndarray
    n_entries: int

    @classmethod
    def from_observations(cls, obs, min_glucose: float = 0.0, window: int = 1) -> "Design":
        """Rows of up to ``window`` consecutive usable 5-minute changes inside one local hour,
        summed; a change is usable when both readings are finite and at or above ``min_glucose``
        (mg/dL), and a row's changes are consecutive (a gap starts a new row).

        Summing consecutive changes telescopes the CGM noise: a row's change is
        ``CGM_end - CGM_start``, with the noise of one change and ``steps`` times its signal.
        """
        g = obs.glucose
        ok = np.isfinite(g[1:]) & np.isfinite(g[:-1])
        ok[ok] &= (g[1:][ok] >= min_glucose) & (g[:-1][ok] >= min_glucose)
        k = np.flatnonzero(ok)
        hour = obs.hour[k]
        new_run = np.concatenate(([True], (np.diff(k) != 1) | (hour[1:] != hour[:-1]))) if k.size else \
            np.zeros(0, dtype=bool)
        run = np.cumsum(new_run) - 1
        position = np.arange(k.size) - np.flatnonzero(new_run)[run] if k.size else np.zeros(0, dtype=int)
        new_row = new_run | (position % window == 0)
        row = np.cumsum(new_row) - 1
        n_rows = int(row[-1]) + 1 if k.size else 0

        def total(values):
            return np.bincount(row, weights=values[k], minlength=n_rows)
        row_of_bin = np.full(obs.n, -1)
        row_of_bin[k] = row
        rows, entries, grams, entry_bins = [], [], [], []
        for stream in obs.carbs:
            kernel = stream.kernel()
            bins = np.flatnonzero(stream.amount > 0)
            at = bins[:, None] + np.arange(kernel.size)[None, :]
            r = np.where(at < obs.n, row_of_bin[np.minimum(at, obs.n - 1)], -1)
            g_abs = stream.amount[bins][:, None] * kernel[None, :]
            keep = (r >= 0) & (g_abs > 0)
            rows.append(r[keep])
            entries.append(np.broadcast_to(sum(b.size for b in entry_bins) + np.arange(bins.size)[:, None],
                                           at.shape)[keep])
            grams.append(g_abs[keep])
            entry_bins.append(bins)
        n_entries = sum(b.size for b in entry_bins)
        # entries numbered in time order (then stream order) across the streams
        rank = np.empty(n_entries, dtype=int)
        rank[np.argsort(np.concatenate(entry_bins), kind="stable") if n_entries else []] = np.arange(n_entries)
        carb_row, carb_entry, carb_grams = (np.concatenate(a) if a else np.zeros(0, dtype=int)
                                            for a in (rows, entries, grams))
        carb_entry = rank[carb_entry.astype(int)]
        # merge (row, entry) duplicates so that each pair appears once
        key, inverse = np.unique(carb_row.astype(np.int64) * max(n_entries, 1) + carb_entry, return_inverse=True)
        carb_grams = np.bincount(inverse, weights=carb_grams, minlength=key.size)
        carb_row, carb_entry = key // max(n_entries, 1), key % max(n_entries, 1)
        return cls(total(np.diff(g)), total(obs.insulin_activity()),
                   np.bincount(carb_row, weights=carb_grams, minlength=n_rows), hour[new_row],
                   np.bincount(row, minlength=n_rows).astype(float), carb_row, carb_entry, carb_grams, n_entries)


def predict(design: Design, isf: np.ndarray, cr: np.ndarray, basal: np.ndarray) -> np.ndarray:
    """Predicted changes of the rows (mg/dL) for hourly ``isf`` (mg/dL/U), ``cr`` (g/U), ``basal`` (U/h)."""
    h = design.hour
    return isf[h] * (design.carbs_g / cr[h] - design.insulin_u + basal[h] * DT_H * design.steps)


def rmse(design: Design, isf, cr, basal) -> float:
    """Root mean square error of the rows' predicted changes, mg/dL."""
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
    carb_factors: np.ndarray
    """Estimated factor of each carb entry (eaten / entered)."""


def _soft_l1(z2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rho(z^2) = 2 (sqrt(1 + z^2) - 1)`` and its derivative with respect to ``z^2``."""
    root = np.sqrt(1.0 + z2)
    return 2.0 * (root - 1.0), 1.0 / root


def _difference_matrix() -> np.ndarray:
    """Rows ``e_h - e_{h+1}`` for neighbouring hours (cyclic) of each schedule (72 x 72)."""
    d = np.zeros((72, 72))
    for p in range(3):
        for h in range(24):
            d[p * 24 + h, p * 24 + h] = 1.0
            d[p * 24 + h, p * 24 + (h + 1) % 24] = -1.0
    return d


def _change_points(diff: np.ndarray, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The change-point penalty at ``theta``: value, gradient and half its IRLS curvature matrix
    (``D^T diag(TV_WEIGHT w / TV_SCALE) D``, ``w = 1 / sqrt(1 + s^2)``, a majorizer of the penalty)."""
    s = diff @ theta / TV_SCALE
    rho, w = _soft_l1(s * s)
    value = TV_WEIGHT * TV_SCALE * float(np.sum(rho))
    grad = diff.T @ (2.0 * TV_WEIGHT * w * s)
    half_hess = diff.T @ (diff * (TV_WEIGHT * w / TV_SCALE)[:, None])
    return value, grad, half_hess


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


def _schur(matrix: np.ndarray, k: int):
    """For a symmetric ``matrix`` whose trailing block (carb factors) is sparse: a function solving
    ``matrix x = rhs`` and the Schur complement of the leading ``k x k`` block (hourly values).

    The trailing block is factorised sparsely (SuperLU) and its elimination uses ``einsum``, so no
    large dense (multi-threaded BLAS) solve is needed: with hundreds of carb entries that stays
    fast on a loaded machine.
    """
    from scipy import sparse
    from scipy.sparse.linalg import splu

    a, b = matrix[:k, :k], matrix[:k, k:]
    if b.shape[1] == 0:
        return (lambda rhs: np.linalg.solve(a, rhs)), a
    lu = splu(sparse.csc_matrix(matrix[k:, k:]))
    d_inv_bt = lu.solve(np.ascontiguousarray(b.T))
    complement = a - np.einsum("ie,ej->ij", b, d_inv_bt)

    def solve(rhs):
        d_inv_r = lu.solve(rhs[k:])
        head = np.linalg.solve(complement, rhs[:k] - np.einsum("ie,e->i", b, d_inv_r))
        return np.concatenate((head, d_inv_r - np.einsum("ej,j->e", d_inv_bt, head)))
    return solve, complement


def fit(design: Design, current: np.ndarray, free: np.ndarray, tuning_limit: float | None,
        max_iterations: int = 100) -> Fit:
    """Fit ``log(ISF, CR, B)`` hourly (``current``: (3, 24) prior values; ``free``: (3, 24) bool)
    together with one log factor per carb entry (its counting error, prior sd ``TAU_CARBS``).

    The objective (module docstring) is minimised by a projected Levenberg-Marquardt iteration on
    its Gauss-Newton model (the robust loss enters as IRLS weights ``1 / sqrt(1 + z^2)``): the
    data term's hourly derivatives of a row are in the row's hour, so their gradient and
    Gauss-Newton blocks are per-hour sums (``np.bincount``); a carb factor's derivatives are in
    the rows its entry is absorbed in (``design.carb_row``). Values at a bound whose gradient
    points outwards are held there for the step.
    """
    from scipy import sparse

    n_e = design.n_entries
    n = 72 + n_e
    theta0 = np.concatenate((np.log(current).ravel(), np.zeros(n_e)))
    free_flat = np.concatenate((free.ravel(), np.ones(n_e, dtype=bool)))
    lo_step = np.log1p(-tuning_limit) if tuning_limit else -np.log(UNBOUNDED_FACTOR)
    hi_step = np.log1p(tuning_limit) if tuning_limit else np.log(UNBOUNDED_FACTOR)
    lo = np.concatenate((np.where(free.ravel(), theta0[:72] + lo_step, theta0[:72]), np.full(n_e, -CARB_FACTOR_BOUND)))
    hi = np.concatenate((np.where(free.ravel(), theta0[:72] + hi_step, theta0[:72]), np.full(n_e, CARB_FACTOR_BOUND)))
    h = design.hour
    diff = _difference_matrix()
    prior_w = np.concatenate((np.where(free.ravel(), 1.0 / TAU_PRIOR ** 2, 0.0), np.full(n_e, 1.0 / TAU_CARBS ** 2)))
    c_row, c_entry = design.carb_row, design.carb_entry
    c_hour = h[c_row]
    n_rows = h.size

    def derivatives(x):
        isf, cr, basal = np.exp(x[:72].reshape(3, 24))
        grams = design.carb_grams * np.exp(x[72:])[c_entry]
        carbs = np.bincount(c_row, weights=grams, minlength=n_rows)
        pred = isf[h] * (carbs / cr[h] - design.insulin_u + basal[h] * DT_H * design.steps)
        d_entry = isf[c_hour] / cr[c_hour] * grams  # d pred[c_row] / d log factor[c_entry]
        return pred, (pred, -isf[h] * carbs / cr[h], isf[h] * basal[h] * DT_H * design.steps), d_entry

    def half_hessian(parts, d_entry, w):
        """``J^T diag(w) J`` of the data rows, (n, n)."""
        out = np.zeros((n, n))
        out[:72, :72] = _gram(h, parts, w)
        if n_e:
            for p, d in enumerate(parts):
                cross = np.bincount(c_hour * n_e + c_entry, weights=w[c_row] * d[c_row] * d_entry,
                                    minlength=24 * n_e).reshape(24, n_e)
                out[p * 24:(p + 1) * 24, 72:] = cross
                out[72:, p * 24:(p + 1) * 24] = cross.T
            a = sparse.csr_matrix((np.sqrt(w[c_row]) * d_entry, (c_row, c_entry)), shape=(n_rows, n_e))
            out[72:, 72:] = (a.T @ a).toarray()
        return out

    def objective(x, sigma):
        z = (design.dg - derivatives(x)[0]) / sigma
        dz = x - theta0
        return float(np.sum(_soft_l1(z * z)[0]) + np.sum(prior_w * dz * dz) + _change_points(diff, x[:72])[0])

    def model(x, sigma):
        """Gradient and Gauss-Newton matrix of the objective at ``x``."""
        pred, parts, d_entry = derivatives(x)
        z = (design.dg - pred) / sigma
        w = _soft_l1(z * z)[1]
        dres = -2.0 * w * z / sigma
        _, smooth_grad, smooth_half_hess = _change_points(diff, x[:72])
        grad = np.concatenate([np.bincount(h, weights=dres * d, minlength=24) for d in parts]
                              + [np.bincount(c_entry, weights=dres[c_row] * d_entry, minlength=n_e)])
        grad += 2.0 * prior_w * (x - theta0)
        grad[:72] += smooth_grad
        hess = half_hessian(parts, d_entry, w) / sigma ** 2 + np.diag(prior_w)
        hess[:72, :72] += smooth_half_hess
        return grad, 2.0 * hess

    def solve(x, sigma):
        value, damping = objective(x, sigma), 1e-3
        for _ in range(max_iterations):
            grad, hess = model(x, sigma)
            held = ~free_flat | ((x <= lo) & (grad > 0)) | ((x >= hi) & (grad < 0))
            idx = np.flatnonzero(~held)
            if idx.size == 0:
                break
            sub = hess[np.ix_(idx, idx)]
            k = int(np.count_nonzero(idx < 72))
            while True:
                step = np.zeros(n)
                step[idx] = _schur(sub + damping * np.diag(np.diag(sub)), k)[0](-grad[idx])
                candidate = np.clip(x + step, lo, hi)
                new_value = objective(candidate, sigma)
                if new_value <= value:
                    damping = max(damping / 10.0, 1e-9)
                    break
                damping *= 10.0
                if damping > 1e8:
                    return x
            converged = value - new_value <= 1e-10 * max(value, 1.0)
            x, value = candidate, new_value
            if converged:
                break
        return x

    x = theta0.copy()
    sigma = _robust_sigma(design.dg - derivatives(x)[0])
    for _ in range(2):
        x = solve(x, sigma)
        sigma = _robust_sigma(design.dg - derivatives(x)[0])
    pred, parts, d_entry = derivatives(x)
    z = (design.dg - pred) / sigma
    gram = half_hessian(parts, d_entry, _soft_l1(z * z)[1]) / sigma ** 2  # IRLS weights of the robust loss
    info_data = np.diag(gram)[:72].copy()
    idx = np.flatnonzero(free_flat)
    total = gram + np.diag(prior_w)
    total[:72, :72] += _change_points(diff, x[:72])[2]
    free_h = free.ravel()
    cov = np.linalg.pinv(_schur(total[np.ix_(idx, idx)], int(np.count_nonzero(free_h)))[1])
    sd = np.zeros(72)
    sd[free_h] = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    theta = x[:72]
    low, high, data_sd = (np.full(72, np.nan) for _ in range(3))
    low[free_h], high[free_h] = np.exp(theta[free_h] - 1.96 * sd[free_h]), np.exp(theta[free_h] + 1.96 * sd[free_h])
    with np.errstate(divide="ignore"):
        data_sd[free_h] = np.where(info_data[free_h] > 0, 1.0 / np.sqrt(info_data[free_h]), np.inf)
    at_bound = free_h & ((theta <= lo[:72] + 1e-6) | (theta >= hi[:72] - 1e-6))
    values = np.where(free, np.exp(theta).reshape(3, 24), current)  # fixed values exactly as given
    return Fit(values, low.reshape(3, 24), high.reshape(3, 24), data_sd.reshape(3, 24),
               sigma, at_bound.reshape(3, 24), np.exp(x[72:]))
