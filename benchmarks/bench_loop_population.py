"""Loop in closed loop on the virtual population: patient-days per second, fast path vs update().

    python benchmarks/bench_loop_population.py [--days 0.25] [--batches 1 30] [--seed 1]

For each batch size (members: the 30 simglucose patients, adolescents, adults and children, in
turn) it runs ``--days`` of closed loop (Dexcom noise, Insulet pump, random announced meals) with
:class:`pyloopkit.control.LoopController` on the fast engine (arrays into the array core) and on
the ``update()`` engine (the dictionary round trip per member and decision), in the same process,
and prints patient-days/s of each, their ratio, and the simulator alone (basal-bolus controller)
for scale. Both engines must give the same traces; the script checks it. Last, the process's
peak resident memory (histories are bounded to what Loop reads, so it does not grow with days).

Short runs start with empty histories: Loop's cost per decision grows until its 24 h of
glucose and dose history are full, so ``--days 1`` or more gives the steady-state figure.
"""
import argparse
import resource
import time
import warnings

import numpy as np

from pyloopkit.control import BasalBolusController, LoopController
from pyloopkit.control.trial import run_trial
from pyloopkit.simulation import Simulator

POPULATION = [f"{group}#{k:03d}" for k in range(1, 11) for group in ("adolescent", "adult", "child")]


def patient_days_per_s(batch: int, days: float, seed: int, controller: str) -> tuple[float, dict]:
    sim = Simulator(POPULATION[:batch], sensor="Dexcom", pump="Insulet", scenario="random", seed=seed)
    if controller == "basal_bolus":
        ctrl = BasalBolusController(sim.patients)
    else:
        ctrl = LoopController.for_simulator(sim, engine=controller)
    start = time.perf_counter()
    result = run_trial(sim, ctrl, days=days, seed=seed)
    return batch * days / (time.perf_counter() - start), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=0.25, help="simulated days per run")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 30], help="batch sizes (<= 30)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    patient_days_per_s(1, 1 / 24, args.seed, "fast")  # compile / load the numba kernels once
    for batch in args.batches:
        fast, fast_result = patient_days_per_s(batch, args.days, args.seed, "fast")
        slow, slow_result = patient_days_per_s(batch, args.days, args.seed, "update")
        same = all(np.array_equal(fast_result[k], slow_result[k]) for k in ("basal_u_per_h", "bolus_u", "bg"))
        sim_only, _ = patient_days_per_s(batch, args.days, args.seed, "basal_bolus")
        print(f"batch {batch:3d} x {args.days:g} day: Loop fast path {fast:7.3f} patient-days/s, "
              f"update() path {slow:7.3f} patient-days/s, speedup {fast / slow:5.2f}x, same traces: {same}; "
              f"simulator with basal-bolus {sim_only:8.1f} patient-days/s")
    print(f"peak resident memory of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
