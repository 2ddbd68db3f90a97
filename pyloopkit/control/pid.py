"""PID and PID with insulin feedback (PID-IF), batched, with per-patient gains.

PID (fully closed loop: no meal bolus). At each decision ``k`` (time ``t_k``, min) with
CGM reading ``G_k`` (mg/dL) and error ``e_k = G_k - G_sp`` (setpoint ``G_sp`` = 112.5 mg/dL)::

    I_k = I_{k-1} + e_k (t_k - t_{k-1})                  (integral, mg/dL min; I_0 = 0)
    D_k = (e_k - e_{k-1}) / (t_k - t_{k-1})              (derivative, mg/dL/min; D_0 = 0)
    u_k = u_b + Kp e_k + Ki I_k + Kd D_k                 (U/h)
    basal_k = max(u_k, 0),  bolus_k = 0

with ``u_b = 60 u2ss BW / 6000`` the patient's steady-state basal (U/h), ``Kp`` in U/h per
mg/dL, ``Ki`` in U/h per mg/dL min, ``Kd`` in U/h per mg/dL/min. Anti-windup by
conditional integration: the error is not integrated at a decision where the command is
held at 0 and the error is negative.

PID-IF (Steil's insulin feedback). A two-compartment subcutaneous model with time
constants ``tau1`` = 55 and ``tau2`` = 70 min estimates plasma insulin ``Ip`` (U/h) from
the insulin the pump delivered (``StepResult.insulin_u``, as a rate held over each step)::

    tau1 dIsc/dt = r - Isc,   tau2 dIp/dt = Isc - Ip,   Isc(0) = Ip(0) = u_b

(integrated exactly over each step), and the command is
``u_k = (1 + gamma) u^PID_k - gamma Kpi Ip_k`` with ``gamma`` = 0.5 and ``Kpi`` = 1, so
that at steady state (``Ip = u``) it equals the PID command.

Gains: :func:`load_gains` reads ``data/pid_gains.csv``, written by
:mod:`pyloopkit.control.pid_tuning` (a grid search on simulated days, see ``data/SOURCE.md``).
"""
from __future__ import annotations

import csv
from importlib import resources

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.simulation.patients import PatientParams

SETPOINT_MG_DL = 112.5
GAINS_FILE = "pid_gains.csv"
GAIN_COLUMNS = ("kp_u_per_h_per_mg_dl", "ki_u_per_h_per_mg_dl_min", "kd_u_per_h_per_mg_dl_per_min")


def _gain_array(name: str, value, n: int, problems: list[Problem]) -> np.ndarray:
    array = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
    for i in np.flatnonzero(~(np.isfinite(array) & (array >= 0))):
        problems.append(Problem(name, int(i), float(array[i]), "must be finite and >= 0"))
    return array


class PIDController:
    """PID on the CGM reading around a setpoint, added to the steady-state basal (see the module).

    Parameters
    ----------
    patients : PatientParams
        The batch, one row per member (for the basal ``u_b``).
    kp, ki, kd : float or array (n,)
        Gains (U/h per mg/dL, U/h per mg/dL min, U/h per mg/dL/min), >= 0; ``None`` for all
        three: the tuned gains of :func:`load_gains` for ``gains`` (``"pid"``).
    setpoint_mg_dl : float
        Glucose setpoint (mg/dL).
    gains : str
        Row of the shipped gain table used when ``kp`` is ``None``.
    """

    gains_name = "pid"

    def __init__(self, patients: PatientParams, kp=None, ki=None, kd=None,
                 setpoint_mg_dl: float = SETPOINT_MG_DL, gains: str | None = None):
        if kp is None and ki is None and kd is None:
            kp, ki, kd = load_gains(patients.names, gains or self.gains_name)
        problems = []
        self.kp, self.ki, self.kd = (_gain_array(name, value, patients.n, problems)
                                     for name, value in zip(("kp", "ki", "kd"), (kp, ki, kd)))
        if not np.isfinite(setpoint_mg_dl):
            problems.append(Problem("setpoint_mg_dl", None, setpoint_mg_dl, "must be finite"))
        if problems:
            raise InvalidInputError(problems)
        self.basal_u_per_h = patients.basal_u_per_min * 60.0
        self.setpoint_mg_dl = float(setpoint_mg_dl)
        self.reset()

    def reset(self) -> None:
        """Clear the integral and the previous error (a new episode)."""
        self.integral = np.zeros(self.basal_u_per_h.shape)
        self.previous_error = None
        self.previous_time_min = None

    def pid_terms(self, step) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Error (mg/dL), candidate integral (mg/dL min) and derivative (mg/dL/min) at this decision."""
        error = step.cgm - self.setpoint_mg_dl
        if self.previous_error is None:
            return error, self.integral, np.zeros_like(error)
        dt = step.time_min - self.previous_time_min
        return error, self.integral + error * dt, (error - self.previous_error) / dt

    def command(self, step, u_pid_to_rate) -> np.ndarray:
        """The basal command (U/h) for ``rate = u_pid_to_rate(u_pid)``, updating the PID state."""
        error, integral, derivative = self.pid_terms(step)
        rate = u_pid_to_rate(self.basal_u_per_h + self.kp * error + self.ki * integral + self.kd * derivative)
        frozen = (rate <= 0) & (error < 0)
        self.integral = np.where(frozen, self.integral, integral)
        self.previous_error, self.previous_time_min = error, step.time_min
        return np.maximum(rate, 0.0)

    def act(self, step) -> tuple[np.ndarray, np.ndarray]:
        """``(basal_u_per_h (n,), bolus_u (n,))``: the PID basal and no bolus."""
        return self.command(step, lambda u: u), np.zeros(self.basal_u_per_h.shape)


class PIDIFController(PIDController):
    """PID with insulin feedback (see the module): ``u = (1 + gamma) u_PID - gamma Kpi Ip``.

    Parameters
    ----------
    patients, kp, ki, kd, setpoint_mg_dl, gains
        As :class:`PIDController` (tuned gains: the ``"pid-if"`` rows).
    gamma : float
        Insulin feedback weight (0.5).
    kpi : float
        Gain of the plasma insulin estimate (1: ``Ip`` in U/h, equal to the rate at steady state).
    tau1_min, tau2_min : float
        Subcutaneous and plasma insulin time constants (55, 70 min; must differ).
    """

    gains_name = "pid-if"

    def __init__(self, patients: PatientParams, kp=None, ki=None, kd=None,
                 setpoint_mg_dl: float = SETPOINT_MG_DL, gains: str | None = None, gamma: float = 0.5,
                 kpi: float = 1.0, tau1_min: float = 55.0, tau2_min: float = 70.0):
        problems = [Problem(name, None, value, "must be finite and > 0")
                    for name, value in (("kpi", kpi), ("tau1_min", tau1_min), ("tau2_min", tau2_min))
                    if not (np.isfinite(value) and value > 0)]
        if not (np.isfinite(gamma) and gamma >= 0):
            problems.append(Problem("gamma", None, gamma, "must be finite and >= 0"))
        if tau1_min == tau2_min:
            problems.append(Problem("tau2_min", None, tau2_min, "must differ from tau1_min"))
        if problems:
            raise InvalidInputError(problems)
        self.gamma, self.kpi = float(gamma), float(kpi)
        self.tau1_min, self.tau2_min = float(tau1_min), float(tau2_min)
        super().__init__(patients, kp, ki, kd, setpoint_mg_dl, gains)

    def reset(self) -> None:
        """Clear the PID state; the insulin compartments start at the steady-state basal."""
        super().reset()
        self.subcutaneous_u_per_h = self.basal_u_per_h.copy()
        self.plasma_u_per_h = self.basal_u_per_h.copy()

    def advance_insulin(self, rate_u_per_h: np.ndarray, minutes: float) -> None:
        """Integrate the two compartments exactly over ``minutes`` with the input rate held constant."""
        a1, a2 = np.exp(-minutes / self.tau1_min), np.exp(-minutes / self.tau2_min)
        c = self.subcutaneous_u_per_h - rate_u_per_h
        coupled = c * self.tau1_min / (self.tau1_min - self.tau2_min)
        self.plasma_u_per_h = rate_u_per_h + coupled * a1 + (self.plasma_u_per_h - rate_u_per_h - coupled) * a2
        self.subcutaneous_u_per_h = rate_u_per_h + c * a1

    def act(self, step) -> tuple[np.ndarray, np.ndarray]:
        """``(basal_u_per_h (n,), bolus_u (n,))``: the insulin-feedback PID basal and no bolus."""
        if self.previous_time_min is not None:
            minutes = step.time_min - self.previous_time_min
            self.advance_insulin(step.insulin_u * 60.0 / minutes, minutes)
        feedback = self.gamma * self.kpi * self.plasma_u_per_h
        basal = self.command(step, lambda u: (1.0 + self.gamma) * u - feedback)
        return basal, np.zeros(self.basal_u_per_h.shape)


def load_gains(names: list[str], controller: str = "pid", path=None) -> tuple[np.ndarray, ...]:
    """Tuned ``(kp, ki, kd)`` arrays (n,) for patients ``names`` from the gain table.

    Parameters
    ----------
    names : list of str
        Patient names (repeats allowed).
    controller : "pid" or "pid-if"
        Which tuning's rows.
    path : str, Path or None
        A CSV with columns ``patient, controller`` and :data:`GAIN_COLUMNS`; ``None``: the
        shipped ``pyloopkit/control/data/pid_gains.csv``.
    """
    if path is None:
        text = resources.files("pyloopkit.control").joinpath("data", GAINS_FILE).read_text()
    else:
        with open(path) as f:
            text = f.read()
    table = {(row["patient"], row["controller"]): row for row in csv.DictReader(text.splitlines())}
    missing = [Problem("names", i, name, f"no {controller!r} gains in {path or GAINS_FILE}")
               for i, name in enumerate(names) if (name, controller) not in table]
    if missing:
        raise InvalidInputError(missing)
    return tuple(np.array([float(table[name, controller][column]) for name in names]) for column in GAIN_COLUMNS)
