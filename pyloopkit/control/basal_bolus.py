"""The basal-bolus reference controllers BB and BB-CD (simglucose's ``BBController`` rule, batched).

BB. Basal: the steady-state rate ``u2ss * BW / 6000`` U/min (60 times that in U/h).
Bolus, when a meal is announced: ``CHO / CR`` plus, if the CGM reading is above
150 mg/dL, the correction ``(CGM - target) / CF`` (U), with ``CR`` (g/U) and
``CF`` (mg/dL/U) from simglucose's ``Quest.csv`` and ``target`` 140 mg/dL. simglucose's
controller reacts to the meal eaten during the previous step; this one boluses for the
meal announced for the coming step (:attr:`StepResult.meal_announcement_g`).

BB-CD (cooldown). The same rule, except that the correction term is left out when
the previous bolus was given less than ``cooldown_min`` (180 min) before: a meal within
3 h of the previous bolus gets ``CHO / CR`` only.
"""
from __future__ import annotations

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.simulation.patients import PatientParams

CORRECTION_THRESHOLD_MG_DL = 150.0
DEFAULT_COOLDOWN_MIN = 180.0


class BasalBolusController:
    """Basal at the steady-state rate, meal bolus with correction above 150 mg/dL.

    Parameters
    ----------
    patients : PatientParams
        The batch (``Simulator.patients``), one row per member.
    target_mg_dl : float
        Correction target (mg/dL); simglucose uses 140.
    """

    def __init__(self, patients: PatientParams, target_mg_dl: float = 140.0):
        self.basal_u_per_h = patients.basal_u_per_min * 60.0
        self.carb_ratio_g_per_u = np.asarray(patients.CR, dtype=np.float64)
        self.correction_factor_mg_dl_per_u = np.asarray(patients.CF, dtype=np.float64)
        self.target_mg_dl = float(target_mg_dl)

    def correction_u(self, step) -> np.ndarray:
        """``(CGM - target) / CF`` (U) where the CGM reading is above 150 mg/dL, else 0; shape (n,)."""
        above = step.cgm > CORRECTION_THRESHOLD_MG_DL
        return above * (step.cgm - self.target_mg_dl) / self.correction_factor_mg_dl_per_u

    def act(self, step) -> tuple[np.ndarray, np.ndarray]:
        """``(basal_u_per_h (n,), bolus_u (n,))`` for the next step, from a :class:`StepResult`."""
        meal_g = step.meal_announcement_g
        bolus = (meal_g > 0) * (meal_g / self.carb_ratio_g_per_u + self.correction_u(step))
        return self.basal_u_per_h, bolus


class CooldownBasalBolusController(BasalBolusController):
    """BB-CD: :class:`BasalBolusController` without a correction within ``cooldown_min`` of the previous bolus.

    Parameters
    ----------
    patients : PatientParams
        The batch, one row per member.
    target_mg_dl : float
        Correction target (mg/dL).
    cooldown_min : float
        Minutes after a bolus during which a meal bolus gets no correction (180).
    """

    def __init__(self, patients: PatientParams, target_mg_dl: float = 140.0,
                 cooldown_min: float = DEFAULT_COOLDOWN_MIN):
        super().__init__(patients, target_mg_dl)
        if not (np.isfinite(cooldown_min) and cooldown_min >= 0):
            raise InvalidInputError([Problem("cooldown_min", None, cooldown_min, "must be finite and >= 0")])
        self.cooldown_min = float(cooldown_min)
        self.reset()

    def reset(self) -> None:
        """Forget previous boluses (a new episode)."""
        self.last_bolus_min = np.full(self.basal_u_per_h.shape, -np.inf)

    def act(self, step) -> tuple[np.ndarray, np.ndarray]:
        """``(basal_u_per_h (n,), bolus_u (n,))``; remembers when each member was last given a bolus."""
        meal_g = step.meal_announcement_g
        cooled = step.time_min - self.last_bolus_min >= self.cooldown_min
        bolus = (meal_g > 0) * (meal_g / self.carb_ratio_g_per_u + cooled * self.correction_u(step))
        self.last_bolus_min = np.where(bolus > 0, step.time_min, self.last_bolus_min)
        return self.basal_u_per_h, bolus
