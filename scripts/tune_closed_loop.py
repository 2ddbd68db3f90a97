"""Closed-loop proof: do the estimated settings make the simulated patients' control better?

The 30 UVA/Padova virtual patients (simglucose parameters, :mod:`pyloopkit.simulation`) are
driven by a *scheduled basal-bolus* controller: hourly basal, a meal bolus ``CHO / CR`` and, at
meals, a correction ``(CGM - 140) / ISF`` above 150 mg/dL (simglucose's BB rule with schedules).
Loop itself (:class:`pyloopkit.control.LoopController`) runs at about 5 s per patient-day on this
machine (2 shared cores): 30 patients x 4 arms x 14 days would take hours, so this proof uses the
basal-bolus rule; the estimated settings feed Loop the same way (``EstimatedSettings.to_settings``).

1. Each patient's Quest settings (basal, CR, CF) are mis-set by +30% or -30% (random sign each).
2. 14 days ("before") with the mis-set settings; the history is recorded as CGM every 5 min,
   delivered insulin per 5 min (as a temp basal rate) and the carbs eaten.
3. ``estimate(method="model")`` from the mis-set settings with tuning_limit 0.5, and
   ``estimate(method="autotune")`` with oref0's own caps (0.7-1.2 x the current settings).
4. 14 more days with the same meals and sensor noise for every arm: the mis-set settings
   (control), each method's estimate, and the patient's Quest settings (reference).

Usage: ``python scripts/tune_closed_loop.py [--days 14] [--seed 7]``
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from pyloopkit.control.trial import run_trial
from pyloopkit.io.history import History
from pyloopkit.simulation import Simulator, load_patients
from pyloopkit.tune import estimate
from pyloopkit.tune.estimate import NAMES, hourly_settings

START = pd.Timestamp("2026-01-05", tz="UTC")


class ScheduledBasalBolus:
    """Basal from an hourly schedule; at announced meals ``CHO / CR_h`` plus the correction
    ``(CGM - 140) / ISF_h`` when CGM > 150 mg/dL. Schedules are (n, 24) arrays (U/h, g/U, mg/dL/U)."""

    def __init__(self, basal: np.ndarray, cr: np.ndarray, isf: np.ndarray, start_hour: float = 0.0):
        self.basal, self.cr, self.isf, self.start_hour = basal, cr, isf, start_hour
        self.rows = np.arange(basal.shape[0])

    def act(self, step):
        h = int((self.start_hour + step.time_min / 60.0) % 24)
        meal = step.meal_announcement_g
        correction = (step.cgm > 150.0) * (step.cgm - 140.0) / self.isf[:, h]
        bolus = (meal > 0) * (meal / self.cr[:, h] + correction)
        return self.basal[:, h], bolus


def history_of(result: dict, i: int) -> History:
    """Member ``i``'s trace as a History (CGM, delivered insulin per step, carbs eaten per step)."""
    t = START + pd.to_timedelta(result["time_min"], unit="min")
    step = pd.Timedelta(minutes=float(result["time_min"][1] - result["time_min"][0]))
    glucose = pd.DataFrame({"time": t, "glucose_mg_dl": result["cgm"][i], "source_unit": "mg/dL", "kind": "cgm"})
    doses = pd.DataFrame({"start": t[:-1], "end": t[:-1] + step, "type": "TEMP_BASAL",
                          "value": result["insulin_u"][i] / (step.total_seconds() / 3600.0), "unit": "U/h"})
    eaten = result["carbs_g"][i] > 0
    carbs = pd.DataFrame({"time": t[:-1][eaten], "grams": result["carbs_g"][i][eaten], "absorption_min": np.nan})
    return History(glucose=glucose, doses=doses, carbs=carbs, source="tune_closed_loop")


def outcome(result: dict) -> pd.DataFrame:
    m = result["metrics"]
    return pd.DataFrame({"tir": 100 * m["time_in_70_180"], "below70": 100 * m["time_below_70"],
                         "below54": 100 * m["time_below_54"]})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    patients = load_patients("all")
    n = patients.n
    rng = np.random.default_rng(args.seed)
    quest = np.stack([np.asarray(patients.CF, float), np.asarray(patients.CR, float),
                      patients.basal_u_per_min * 60.0])  # (3, n): ISF, CR, basal
    factors = 1.0 + 0.3 * rng.choice([-1.0, 1.0], size=(3, n))
    misset = quest * factors

    def run(settings: np.ndarray, seed: int) -> dict:
        """settings: (3, n, 24) ISF, CR, basal."""
        sim = Simulator(patients, seed=seed)
        return run_trial(sim, ScheduledBasalBolus(settings[2], settings[1], settings[0]), args.days, seed=seed)

    hourly_misset = np.repeat(misset[:, :, None], 24, axis=2)
    t0 = time.perf_counter()
    before = run(hourly_misset, args.seed)
    estimates = {"model": np.empty_like(hourly_misset), "autotune": np.empty_like(hourly_misset)}
    t_est = time.perf_counter()
    for i in range(n):
        h = history_of(before, i)
        for method in estimates:
            limits = {"tuning_limit": 0.5} if method == "model" else None  # autotune: oref0's own 0.7-1.2 caps
            e = estimate(h, hourly_settings(hourly_misset[:, i, :]), limits=limits, method=method)
            estimates[method][:, i, :] = [e.hourly[k] for k in NAMES]
    t_est = time.perf_counter() - t_est
    arms = {"mis-set (control)": hourly_misset, **estimates, "Quest (reference)": np.repeat(quest[:, :, None], 24, 2)}
    after = {name: outcome(run(s, args.seed + 1)) for name, s in arms.items()}
    groups = np.array(patients.groups)
    print(f"30 patients, mis-set +-30%, {args.days:g} days before / after; estimation {t_est:.1f} s for "
          f"{2 * n} estimates; total {time.perf_counter() - t0:.0f} s")
    table = [("before: mis-set", outcome(before))] + [(f"after: {k}", v) for k, v in after.items()]
    print(f"{'arm':<28}{'group':<12}{'TIR %':>7}{'<70 %':>7}{'<54 %':>7}")
    for name, df in table:
        for g in ("adolescent", "adult", "child", "all"):
            sel = df if g == "all" else df[groups == g]
            print(f"{name:<28}{g:<12}{sel.tir.mean():7.1f}{sel.below70.mean():7.2f}{sel.below54.mean():7.2f}")
    for method in estimates:
        est = estimates[method].mean(axis=2)
        err_before = np.abs(misset / quest - 1).mean(axis=1)
        err_after = np.abs(est / quest - 1).mean(axis=1)
        print(f"{method}: mean |setting / Quest - 1| (ISF, CR, basal) before {np.round(100 * err_before, 1)} % "
              f"after {np.round(100 * err_after, 1)} %")
        moved = np.mean(np.sign(est - misset) == np.sign(quest - misset), axis=1)
        print(f"{method}: share of patients moved towards Quest (ISF, CR, basal) {np.round(100 * moved, 0)} %")


if __name__ == "__main__":
    main()
