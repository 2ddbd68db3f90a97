"""In-silico trial runner: a controller drives a :class:`~pyloopkit.simulation.simulator.Simulator`.

:func:`run_trial` resets the simulator (and the controller, when it has ``reset()``),
asks the controller for a command at every decision, steps the batch, records CGM
and BG every ``step_minutes`` together with the commands, and summarises each
member's BG (and CGM) trace with :func:`pyloopkit.metrics.summary`.
"""
from __future__ import annotations

import numpy as np

from pyloopkit import metrics
from pyloopkit.errors import InvalidInputError, Problem


def run_trial(simulator, controller, days: float, seed: int | None = None, step_minutes: int = 5) -> dict:
    """Run ``days`` of closed loop and return the traces and per-member outcome metrics.

    Parameters
    ----------
    simulator : Simulator
        The batch (``n`` members); it is reset with ``seed``.
    controller : object
        ``act(step) -> (basal_u_per_h (n,), bolus_u (n,))``; its ``reset()``, if any, is called
        after the simulator's.
    days : float
        Simulated length (days); must be a whole number of steps.
    seed : int or None
        Seed of the simulator's episodes (meals, sensor noise); ``None``: fresh entropy.
    step_minutes : int
        Decision interval (minutes).

    Returns
    -------
    dict
        ``time_min`` (steps + 1,); ``cgm``, ``bg`` (n, steps + 1) mg/dL at the decisions, the
        first column at the reset; ``basal_u_per_h``, ``bolus_u`` (n, steps): the commands
        (before pump rounding); ``insulin_u``, ``carbs_g`` (n, steps): delivered insulin (U) and
        CHO eaten (g) per step; ``metrics`` and ``cgm_metrics``: :func:`pyloopkit.metrics.summary`
        of ``bg`` and ``cgm`` (dict of (n,) arrays: ``time_in_70_180``, ``time_below_54``,
        ``mean_mg_dl``, ``cv``, ``gmi_percent``, ``lbgi``, ``hbgi``, ``gri``, ...); ``bg_valid``
        (n,) bool: BG and CGM stayed at or above 1 mg/dL. Below that the model has left any
        physiological range and the risk scale is undefined (:data:`metrics.RISK_MINIMUM_MG_DL`):
        a member with ``bg_valid`` False has metrics of its readings before the first such value.
    """
    if not (isinstance(step_minutes, (int, np.integer)) and step_minutes >= 1):
        raise InvalidInputError([Problem("step_minutes", None, step_minutes, "must be an integer >= 1")])
    steps = float(days) * 1440.0 / step_minutes
    if not (np.isfinite(steps) and steps >= 1 and steps.is_integer()):
        raise InvalidInputError([Problem("days", None, days, f"must be a positive whole number of "
                                                             f"{step_minutes}-minute steps")])
    steps = int(steps)
    n = simulator.n
    cgm, bg = np.empty((n, steps + 1)), np.empty((n, steps + 1))
    basal, bolus, insulin, carbs = (np.empty((n, steps)) for _ in range(4))
    step = simulator.reset(seed)
    if hasattr(controller, "reset"):
        controller.reset()
    cgm[:, 0], bg[:, 0] = step.cgm, step.bg
    for k in range(steps):
        basal[:, k], bolus[:, k] = controller.act(step)
        step = simulator.step(basal[:, k], bolus[:, k], minutes=step_minutes)
        cgm[:, k + 1], bg[:, k + 1] = step.cgm, step.bg
        insulin[:, k], carbs[:, k] = step.insulin_u, step.carbs_g
    in_domain = (bg >= metrics.RISK_MINIMUM_MG_DL) & (cgm >= metrics.RISK_MINIMUM_MG_DL)
    readings = np.where(in_domain.all(axis=1), steps + 1, np.argmin(in_domain, axis=1))
    return {
        "time_min": step_minutes * np.arange(steps + 1, dtype=np.float64),
        "cgm": cgm, "bg": bg, "basal_u_per_h": basal, "bolus_u": bolus, "insulin_u": insulin, "carbs_g": carbs,
        "bg_valid": readings == steps + 1,
        "metrics": _summaries(bg, readings), "cgm_metrics": _summaries(cgm, readings),
    }


def _summaries(glucose: np.ndarray, readings: np.ndarray) -> dict:
    """:func:`metrics.summary` of each row's first ``readings[i]`` values, as (n,) arrays."""
    if np.all(readings == glucose.shape[1]):
        return metrics.summary(glucose)
    rows = [metrics.summary(row[:count]) for row, count in zip(glucose, readings)]
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}
