"""The basal-bolus reference controller (simglucose's ``BBController`` rule, batched).

Basal: the steady-state rate ``u2ss * BW / 6000`` U/min (60 times that in U/h).
Bolus, when a meal is announced: ``CHO / CR`` plus, if the CGM reading is above
150 mg/dL, the correction ``(CGM - target) / CF`` (U), with ``CR`` (g/U) and
``CF`` (mg/dL/U) from simglucose's ``Quest.csv``. simglucose's controller reacts
to the meal eaten during the previous step; this one boluses for the meal
announced for the coming step (:attr:`StepResult.meal_announcement_g`).
"""
from __future__ import annotations

import numpy as np

from pyloopkit.simulation.patients import PatientParams

CORRECTION_THRESHOLD_MG_DL = 150.0


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

    def act(self, step) -> tuple[np.ndarray, np.ndarray]:
        """``(basal_u_per_h (n,), bolus_u (n,))`` for the next step, from a :class:`StepResult`."""
        meal_g = step.meal_announcement_g
        correction = (step.cgm > CORRECTION_THRESHOLD_MG_DL) * (step.cgm - self.target_mg_dl)
        bolus = (meal_g > 0) * (meal_g / self.carb_ratio_g_per_u + correction / self.correction_factor_mg_dl_per_u)
        return self.basal_u_per_h, bolus
