"""Closed-loop proof: do the estimated settings make the simulated patients' control better?

The 30 UVA/Padova virtual patients (simglucose parameters, :mod:`pyloopkit.simulation`; Dexcom
noise, Insulet pump, simglucose's random meals, announced) are driven by a controller whose
therapy settings (Quest basal, CR, CF) are mis-set by +30% or -30% (random sign per patient and
setting).

``--controller loop`` (default): Loop itself (:class:`pyloopkit.control.LoopController`, fast engine).

1. 28 days of Loop with the mis-set settings: days 1-14 are "before", days 15-28 the control.
2. The history of days 1-14 as a Loop user's history holds it: the CGM readings (5 min), the
   insulin the pump delivered (the basal rate of every 5-minute step as a temp basal, Loop's
   boluses as boluses) and the carb entries Loop was given (announced grams at the announcement,
   absorption 180 min).
3. ``estimate(method)`` from the mis-set settings (model: tuning_limit 0.5; autotune: oref0's own
   0.7-1.2 caps); the estimate's compacted schedules (``to_settings()``) are set in Loop.
4. Days 15-28 again from the simulator's and Loop's state at the end of day 14 (a copy), with
   the estimated schedules: same meals and sensor noise as the control days, which do not
   depend on the controller.

``--controller basal-bolus``: the earlier, faster proof with a scheduled basal-bolus rule (hourly
basal, ``CHO / CR`` at meals plus ``(CGM - 140) / ISF`` above 150 mg/dL), 14 days before and 14 days
after from a fresh start (same meals and noise in every after arm), estimated hourly values.

Outcomes are of BG (the model's true glucose): time in 70-180, below 70 and below 54 mg/dL, per
group and overall.

Usage: ``python scripts/tune_closed_loop.py [--controller loop|basal-bolus] [--days 14] [--seed 7]
[--patients all|NAME ...] [--methods model autotune] [--reference]``
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pandas as pd

from pyloopkit import metrics
from pyloopkit.control import LoopController
from pyloopkit.control.trial import run_trial
from pyloopkit.io.history import History
from pyloopkit.simulation import Simulator, load_patients
from pyloopkit.tune import estimate
from pyloopkit.tune.estimate import NAMES, hourly_settings

START = pd.Timestamp("2026-01-05", tz="UTC")
STEP_MIN = 5
LIMITS = {"model": {"tuning_limit": 0.5}, "autotune": None}  # autotune: oref0's own 0.7-1.2 caps
GROUPS = ("adolescent", "adult", "child", "all")


class ScheduledBasalBolus:
    """Basal from an hourly schedule; at announced meals ``CHO / CR_h`` plus the correction
    ``(CGM - 140) / ISF_h`` when CGM > 150 mg/dL. Schedules are (n, 24) arrays (U/h, g/U, mg/dL/U)."""

    def __init__(self, basal: np.ndarray, cr: np.ndarray, isf: np.ndarray, start_hour: float = 0.0):
        self.basal, self.cr, self.isf, self.start_hour = basal, cr, isf, start_hour

    def act(self, step):
        h = int((self.start_hour + step.time_min / 60.0) % 24)
        meal = step.meal_announcement_g
        correction = (step.cgm > 150.0) * (step.cgm - 140.0) / self.isf[:, h]
        bolus = (meal > 0) * (meal / self.cr[:, h] + correction)
        return self.basal[:, h], bolus


def flat_schedules(values: np.ndarray) -> list[dict]:
    """Per member, one-item ISF, CR and basal schedules from (3, n) values."""
    return [{"sensitivity_ratio_start_times": ["00:00"], "sensitivity_ratio_values": [float(values[0, i])],
             "carb_ratio_start_times": ["00:00"], "carb_ratio_values": [float(values[1, i])],
             "basal_rate_start_times": ["00:00"], "basal_rate_values": [float(values[2, i])]}
            for i in range(values.shape[1])]


def advance(sim: Simulator, controller, step, steps: int):
    """Run ``steps`` decisions from ``step``; return the last step and the record: ``cgm``, ``bg``
    (n, steps) after each step, delivered ``basal_u_per_h`` and ``bolus_u``, ``insulin_u``,
    ``announced_g`` (n, steps) at each decision."""
    n = sim.n
    record = {k: np.empty((n, steps)) for k in ("cgm", "bg", "basal_u_per_h", "bolus_u", "insulin_u",
                                                "announced_g", "decision_cgm")}
    record["time_min"] = np.empty(steps)
    for k in range(steps):
        record["time_min"][k], record["decision_cgm"][:, k] = step.time_min, step.cgm
        record["announced_g"][:, k] = step.meal_announcement_g
        basal, bolus = controller.act(step)
        record["basal_u_per_h"][:, k], record["bolus_u"][:, k] = sim.pump.basal(basal), sim.pump.bolus(bolus)
        step = sim.step(basal, bolus, minutes=STEP_MIN)
        record["cgm"][:, k], record["bg"][:, k], record["insulin_u"][:, k] = step.cgm, step.bg, step.insulin_u
    delivered = record["basal_u_per_h"] * STEP_MIN / 60.0 + record["bolus_u"]
    np.testing.assert_allclose(delivered, record["insulin_u"], atol=1e-9)  # the history holds what was delivered
    return step, record


def loop_history(record: dict, i: int, absorption_min: float) -> History:
    """Member ``i``'s history as Loop stores it: CGM at each decision, the delivered basal of each
    5-minute step (temp basal, U/h), boluses (U) and the announced carb entries (g)."""
    t = START + pd.to_timedelta(record["time_min"], unit="min")
    step = pd.Timedelta(minutes=STEP_MIN)
    glucose = pd.DataFrame({"time": t, "glucose_mg_dl": record["decision_cgm"][i], "source_unit": "mg/dL",
                            "kind": "cgm"})
    basal = pd.DataFrame({"start": t, "end": t + step, "type": "TEMP_BASAL", "value": record["basal_u_per_h"][i],
                          "unit": "U/h"})
    given = record["bolus_u"][i] > 0
    bolus = pd.DataFrame({"start": t[given], "end": t[given] + pd.Timedelta(minutes=1), "type": "BOLUS",
                          "value": record["bolus_u"][i][given], "unit": "U"})
    entered = record["announced_g"][i] > 0
    carbs = pd.DataFrame({"time": t[entered], "grams": record["announced_g"][i][entered],
                          "absorption_min": absorption_min})
    doses = pd.concat([basal, bolus], ignore_index=True).sort_values("start", kind="stable", ignore_index=True)
    return History(glucose=glucose, doses=doses, carbs=carbs, source="tune_closed_loop")


def outcome(bg: np.ndarray) -> pd.DataFrame:
    """TIR, <70, <54 (%) of each member's BG trace, and whether BG fell below 1 mg/dL (the model
    left its physiological range: the times in range still count it as below 54)."""
    return pd.DataFrame({"tir": 100 * np.mean((bg >= metrics.LOW_MG_DL) & (bg <= metrics.HIGH_MG_DL), axis=1),
                         "below70": 100 * np.mean(bg < metrics.LOW_MG_DL, axis=1),
                         "below54": 100 * np.mean(bg < metrics.VERY_LOW_MG_DL, axis=1),
                         "left_model": (bg < metrics.RISK_MINIMUM_MG_DL).any(axis=1)})


def print_table(table: list, groups: np.ndarray) -> None:
    print(f"{'arm':<31}{'group':<12}{'TIR %':>7}{'<70 %':>7}{'<54 %':>7}{'BG<1':>6}")
    for name, df in table:
        for g in GROUPS:
            sel = df if g == "all" else df[groups == g]
            print(f"{name:<31}{g:<12}{sel.tir.mean():7.1f}{sel.below70.mean():7.2f}{sel.below54.mean():7.2f}"
                  f"{int(sel.left_model.sum()):6d}")


def print_settings_error(estimated: dict, misset: np.ndarray, quest: np.ndarray) -> None:
    """Mean |setting / Quest - 1| of the day-averaged estimates, and the share moved towards Quest."""
    for method, est in estimated.items():
        err_before = np.abs(misset / quest - 1).mean(axis=1)
        err_after = np.abs(est / quest - 1).mean(axis=1)
        moved = np.mean(np.sign(est - misset) == np.sign(quest - misset), axis=1)
        print(f"{method}: mean |setting / Quest - 1| (ISF, CR, basal) before {np.round(100 * err_before, 1)} % "
              f"after {np.round(100 * err_after, 1)} %; moved towards Quest {np.round(100 * moved, 0)} %")


def loop_proof(patients, quest: np.ndarray, misset: np.ndarray, args) -> None:
    n, steps = patients.n, int(round(args.days * 1440 / STEP_MIN))
    sim = Simulator(patients, sensor="Dexcom", pump="Insulet", seed=args.seed)
    controller = LoopController.for_simulator(sim, schedules=flat_schedules(misset))
    t0 = time.perf_counter()
    step = sim.reset(args.seed)
    step, before = advance(sim, controller, step, steps)
    snapshot = copy.deepcopy((sim, controller, step))
    _, control = advance(sim, controller, step, steps)
    t_loop = time.perf_counter() - t0
    print(f"Loop, mis-set, {2 * args.days:g} days x {n} patients: {t_loop:.0f} s", flush=True)
    arms, estimated, t_est = {}, {}, 0.0
    for method in args.methods:
        schedules, day_mean = [], np.empty((3, n))
        for i in range(n):
            hourly_misset = hourly_settings(np.repeat(misset[:, i, None], 24, axis=1))
            t1 = time.perf_counter()
            e = estimate(loop_history(before, i, controller.carb_absorption_time_min), hourly_misset,
                         limits=LIMITS[method], method=method)
            t_est += time.perf_counter() - t1
            schedules.append(e.to_settings())
            day_mean[:, i] = [np.mean(e.hourly[k]) for k in NAMES]
        estimated[method] = day_mean
        arms[method] = schedules
    if args.reference:
        arms["Quest (reference)"] = flat_schedules(quest)
    after = {}
    for name, schedules in arms.items():
        t1 = time.perf_counter()
        sim_k, controller_k, step_k = copy.deepcopy(snapshot)
        controller_k.set_schedules(schedules)
        after[name] = advance(sim_k, controller_k, step_k, steps)[1]
        print(f"arm {name}: {time.perf_counter() - t1:.0f} s", flush=True)
    print(f"{n} patients, Loop, settings mis-set +-30%, {args.days:g} days before / control / after (seed "
          f"{args.seed}); estimation {t_est:.1f} s for {len(args.methods) * n} estimates; total "
          f"{time.perf_counter() - t0:.0f} s")
    first, second = f"days 1-{args.days:g}", f"days {args.days + 1:g}-{2 * args.days:g}"
    table = [(f"{first}: mis-set", outcome(before["bg"])), (f"{second}: mis-set (control)", outcome(control["bg"]))]
    table += [(f"{second}: {name}", outcome(rec["bg"])) for name, rec in after.items()]
    print_table(table, np.array(patients.groups))
    print_settings_error(estimated, misset, quest)
    if args.per_patient:
        print(pd.concat({name: df.set_index(pd.Index(patients.names)) for name, df in table}, axis=1).round(1)
              .to_string())


def basal_bolus_proof(patients, quest: np.ndarray, misset: np.ndarray, args) -> None:
    n = patients.n

    def run(settings: np.ndarray, seed: int) -> dict:
        """settings: (3, n, 24) ISF, CR, basal."""
        sim = Simulator(patients, seed=seed)
        return run_trial(sim, ScheduledBasalBolus(settings[2], settings[1], settings[0]), args.days, seed=seed)

    hourly_misset = np.repeat(misset[:, :, None], 24, axis=2)
    t0 = time.perf_counter()
    before = run(hourly_misset, args.seed)
    estimates = {method: np.empty_like(hourly_misset) for method in args.methods}
    t_est = time.perf_counter()
    for i in range(n):
        h = basal_bolus_history(before, i)
        for method in estimates:
            e = estimate(h, hourly_settings(hourly_misset[:, i, :]), limits=LIMITS[method], method=method)
            estimates[method][:, i, :] = [e.hourly[k] for k in NAMES]
    t_est = time.perf_counter() - t_est
    arms = {"mis-set (control)": hourly_misset, **estimates}
    if args.reference:
        arms["Quest (reference)"] = np.repeat(quest[:, :, None], 24, 2)
    after = {name: run(s, args.seed + 1)["bg"][:, 1:] for name, s in arms.items()}
    print(f"{n} patients, basal-bolus, mis-set +-30%, {args.days:g} days before / after; estimation {t_est:.1f} s "
          f"for {len(estimates) * n} estimates; total {time.perf_counter() - t0:.0f} s")
    table = [("before: mis-set", outcome(before["bg"][:, 1:]))] + [(f"after: {k}", outcome(v)) for k, v in after.items()]
    print_table(table, np.array(patients.groups))
    print_settings_error({k: v.mean(axis=2) for k, v in estimates.items()}, misset, quest)


def basal_bolus_history(result: dict, i: int) -> History:
    """Member ``i``'s basal-bolus trace as a History (CGM, delivered insulin per step, carbs eaten per step)."""
    t = START + pd.to_timedelta(result["time_min"], unit="min")
    step = pd.Timedelta(minutes=float(result["time_min"][1] - result["time_min"][0]))
    glucose = pd.DataFrame({"time": t, "glucose_mg_dl": result["cgm"][i], "source_unit": "mg/dL", "kind": "cgm"})
    doses = pd.DataFrame({"start": t[:-1], "end": t[:-1] + step, "type": "TEMP_BASAL",
                          "value": result["insulin_u"][i] / (step.total_seconds() / 3600.0), "unit": "U/h"})
    eaten = result["carbs_g"][i] > 0
    carbs = pd.DataFrame({"time": t[:-1][eaten], "grams": result["carbs_g"][i][eaten], "absorption_min": np.nan})
    return History(glucose=glucose, doses=doses, carbs=carbs, source="tune_closed_loop")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controller", choices=("loop", "basal-bolus"), default="loop")
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--patients", nargs="+", default=["all"])
    ap.add_argument("--methods", nargs="+", choices=("model", "autotune"), default=["model", "autotune"])
    ap.add_argument("--reference", action="store_true", help="also run the patients' Quest settings")
    ap.add_argument("--per-patient", action="store_true", help="also print each patient's outcomes (Loop)")
    args = ap.parse_args(argv)
    patients = load_patients(args.patients)
    rng = np.random.default_rng(args.seed)
    quest = np.stack([np.asarray(patients.CF, float), np.asarray(patients.CR, float),
                      patients.basal_u_per_min * 60.0])  # (3, n): ISF, CR, basal
    misset = quest * (1.0 + 0.3 * rng.choice([-1.0, 1.0], size=quest.shape))
    (loop_proof if args.controller == "loop" else basal_bolus_proof)(patients, quest, misset, args)


if __name__ == "__main__":
    main()
