"""Per-patient PID and PID-IF gains by grid search on simulated days: ``python -m pyloopkit.control.pid_tuning``.

Gains are searched relative to each patient's steady-state basal ``u_b`` (U/h)::

    Kp = kp_rel u_b / 100           (U/h per mg/dL: + kp_rel x u_b at 100 mg/dL above the setpoint)
    Ki = ki_rel u_b / (100 x 60)    (U/h per mg/dL min: + ki_rel x u_b after 1 h at 100 mg/dL above)
    Kd = kd_rel u_b x 60 / 100      (U/h per mg/dL/min: + kd_rel x u_b while rising 100 mg/dL/h)

over the grid :data:`KP_REL` x :data:`KI_REL` x :data:`KD_REL`. Every patient runs every
gain on the same :data:`TUNING_EPISODES` (random meals, Dexcom noise, Insulet pump, trial
seed :data:`TUNING_SEED`, which the protocol's default seed 0 does not share) for
:data:`TUNING_DAYS` days, with early termination outside 10-1000 mg/dL. The chosen gains
maximise the mean fraction of the episodes completed, then minimise the mean Kovatchev
risk index (LBGI + HBGI) of the BG readings. The table is written to
``pyloopkit/control/data/pid_gains.csv`` (provenance in ``data/SOURCE.md``).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import time
from pathlib import Path

import numpy as np

from pyloopkit.control.pid import GAIN_COLUMNS, GAINS_FILE, PIDController, PIDIFController
from pyloopkit.control.population import episode_metrics, run_episodes

KP_REL = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
KI_REL = (0.0, 0.25, 0.5, 1.0, 2.0)
KD_REL = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)
TUNING_SEED = 20220
TUNING_EPISODES = (0, 1, 2)
TUNING_DAYS = 3
STEP_MINUTES = 5


def relative_to_absolute(basal_u_per_h, kp_rel, ki_rel, kd_rel) -> tuple[np.ndarray, ...]:
    """``(Kp, Ki, Kd)`` in the controller's units from the relative gains (see the module)."""
    basal = np.asarray(basal_u_per_h, dtype=np.float64)
    return basal * kp_rel / 100.0, basal * ki_rel / 6000.0, basal * kd_rel * 60.0 / 100.0


def choose(fraction_completed: np.ndarray, risk_index: np.ndarray) -> np.ndarray:
    """Index of the best gain per patient from (patients, gains) scores: most completed, then lowest risk."""
    completed = np.round(fraction_completed, 12)
    risk = np.where(np.isfinite(risk_index), risk_index, np.inf)
    best_completed = completed.max(axis=1, keepdims=True)
    return np.argmin(np.where(completed == best_completed, risk, np.inf), axis=1)


def tune(controller_class, patients: str = "all", days: float = TUNING_DAYS, seed: int = TUNING_SEED,
         episodes=TUNING_EPISODES) -> list[dict]:
    """Grid-search gains for ``controller_class`` (PIDController or PIDIFController); one row per patient."""
    from pyloopkit.simulation import Simulator, load_patients, patient_names

    names = patient_names(patients) if "#" not in patients else [patients]
    grid = np.array(list(itertools.product(KP_REL, KI_REL, KD_REL)))
    g, p, e = len(grid), len(names), len(episodes)
    members = [(ei, gi, pi) for ei in range(e) for gi in range(g) for pi in range(p)]
    batch = load_patients([names[pi] for _, _, pi in members])
    simulator = Simulator(batch, seed=seed, episodes=np.array([episodes[ei] for ei, _, _ in members]))
    basal = simulator.patients.basal_u_per_min * 60.0
    gains = relative_to_absolute(basal, *(grid[[gi for _, gi, _ in members], j] for j in range(3)))
    controller = controller_class(simulator.patients, *gains)
    steps = int(round(days * 1440 / STEP_MINUTES))
    result = run_episodes(simulator, controller, steps, STEP_MINUTES, seed=seed)
    risk = episode_metrics(result["bg"], result["readings"])["risk_index"]
    shape = (e, g, p)
    completed = result["fraction_completed"].reshape(shape).mean(axis=0).T  # (p, g)
    mean_risk = risk.reshape(shape).mean(axis=0).T
    best = choose(completed, mean_risk)
    rows = []
    for pi, name in enumerate(names):
        kp_rel, ki_rel, kd_rel = grid[best[pi]]
        absolute = relative_to_absolute(basal[pi], kp_rel, ki_rel, kd_rel)
        rows.append({"patient": name, "controller": controller_class.gains_name,
                     **{column: repr(float(v)) for column, v in zip(GAIN_COLUMNS, absolute)},
                     "kp_rel": kp_rel, "ki_rel": ki_rel, "kd_rel": kd_rel,
                     "tuning_fraction_completed": repr(float(completed[pi, best[pi]])),
                     "tuning_risk_index": repr(float(mean_risk[pi, best[pi]]))})
    return rows


def write_gains(rows: list[dict], path) -> None:
    """Write the gain table (CSV)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyloopkit.control.pid_tuning", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "data" / GAINS_FILE))
    parser.add_argument("--patients", default="all")
    parser.add_argument("--days", type=float, default=TUNING_DAYS)
    parser.add_argument("--seed", type=int, default=TUNING_SEED)
    args = parser.parse_args(argv)
    rows = []
    for controller_class in (PIDController, PIDIFController):
        start = time.perf_counter()
        found = tune(controller_class, args.patients, args.days, args.seed)
        print(f"{controller_class.gains_name}: {len(found)} patients tuned in {time.perf_counter() - start:.1f} s")
        rows.extend(found)
    write_gains(rows, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
