"""How each virtual patient responds to insulin and carbs, against the settings Loop is given.

    python scripts/patient_insulin_response.py [--hours 10] [--meal-g 30]

For each of the 30 UVA/Padova patients (simglucose parameters) at steady state (no meals, ideal
sensor and pump, steady basal), two paired runs are compared with a run without the event:

- **insulin**: a bolus of ``40 / CF`` U (Quest's CF predicts a 40 mg/dL drop). Printed: the largest
  drop per unit (mg/dL/U, the patient's effective ISF) against CF, the time of that largest drop, and
  the share of it reached at 2 h and 4 h, beside the share of the effect Loop's insulin model
  (exponential preset, default "adult") expects by then;
- **carbs**: a meal of ``--meal-g`` g without insulin. Printed: the largest rise per gram (mg/dL/g)
  against Quest's ``CF / CR`` (Loop's carb sensitivity factor), and the time of the largest rise
  (Loop's default absorption time is 180 min).

The effective ISF is the *peak* drop: the UVA/Padova model's glucose recovers after a single bolus
(endogenous production resumes), so there is no single "total" effect to compare with Loop's linear
model. Where the patient is more sensitive than its CF, or its insulin acts later than Loop's model,
Loop (which doses from CF and its curve) stacks insulin: see docs/trials.md, "Why Loop terminates".
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

from pyloopkit.insulin_models import PRESETS
from pyloopkit.simulation import Simulator, load_patients
from pyloopkit.simulation.scenario import CustomScenario

NAMES = [f"{group}#{k:03d}" for group in ("child", "adolescent", "adult") for k in range(1, 11)]
STEP_MIN = 5


def glucose_after(patients, bolus_u: np.ndarray, meal_g: float, hours: float) -> np.ndarray:
    """BG (mg/dL), (steps + 1, n), every 5 min after a bolus and/or a meal at minute 0."""
    scenario = CustomScenario([(0, meal_g)]) if meal_g > 0 else None
    sim = Simulator(patients, sensor=None, pump=None, scenario=scenario, seed=0)
    step = sim.reset(0)
    basal = sim.patients.basal_u_per_min * 60.0
    bg = [step.bg.copy()]
    for k in range(int(hours * 60 / STEP_MIN)):
        step = sim.step(basal, bolus_u if k == 0 else np.zeros(sim.n), minutes=STEP_MIN)
        bg.append(step.bg.copy())
    return np.array(bg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=10.0, help="hours after the event (default 10)")
    parser.add_argument("--meal-g", type=float, default=30.0, help="meal of the carb run (g, default 30)")
    parser.add_argument("--insulin-model", default="adult", choices=sorted(PRESETS))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    patients = load_patients(NAMES)
    dose_u = 40.0 / patients.CF
    none = glucose_after(patients, np.zeros(patients.n), 0.0, args.hours)
    drop_per_u = (none - glucose_after(patients, dose_u, 0.0, args.hours)) / dose_u
    rise_per_g = (glucose_after(patients, np.zeros(patients.n), args.meal_g, args.hours) - none) / args.meal_g
    minutes = np.arange(drop_per_u.shape[0]) * STEP_MIN
    model = PRESETS[args.insulin_model]
    loop_share = {h: 1.0 - float(model.percent_effect_remaining(np.array([h * 60.0]))[0]) for h in (2, 4)}
    print(f"Loop's {args.insulin_model} model expects {loop_share[2]:.0%} of a dose's effect by 2 h, "
          f"{loop_share[4]:.0%} by 4 h; carbs absorbed in 180 min by default")
    print("| patient | CF | peak drop/U | ISF ratio | peak drop at (min) | share at 2 h | share at 4 h "
          "| CF/CR | peak rise/g | CSF ratio | peak rise at (min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for i, name in enumerate(NAMES):
        drop, rise = drop_per_u[:, i], rise_per_g[:, i]
        k, j = int(np.argmax(drop)), int(np.argmax(rise))
        csf = patients.CF[i] / patients.CR[i]
        print(f"| {name} | {patients.CF[i]:.1f} | {drop[k]:.1f} | {drop[k] / patients.CF[i]:.2f} | {minutes[k]} "
              f"| {drop[24] / drop[k]:.0%} | {drop[48] / drop[k]:.0%} | {csf:.2f} | {rise[j]:.2f} "
              f"| {rise[j] / csf:.2f} | {minutes[j]} |")


if __name__ == "__main__":
    main()
