"""Trial speed: patient-days per second of each controller in the population protocol.

For each controller, one in-process chunk of :func:`pyloopkit.control.population.run_chunk`
(random meals, Dexcom noise, Insulet pump, 5-minute decisions, early termination, metrics
included) over the 30 patients x 1 seed (batch 30) and x 10 seeds (batch 300), after a
warm-up that loads the compiled kernels. The fast controllers run ``--days`` days (default
2); Loop (``loop`` and ``loop-ab``), which runs its algorithm for every member at every decision, runs ``--loop-hours``
hours (default 1 at batch 30, a quarter of that at batch 300) and its figure is for a
history that is still short (its cost per decision grows over the first day).

Usage: ``python benchmarks/bench_trials.py [--days 2] [--loop-hours 1] [--controllers bb,bb-cd,pid,pid-if,loop,loop-ab]``.
"""
from __future__ import annotations

import argparse
import time

from pyloopkit.control.population import CONTROLLERS, Chunk, run_chunk
from pyloopkit.simulation import patient_names


def patient_days_per_second(controller: str, seeds: int, days: float) -> float:
    chunk = Chunk(controller, CONTROLLERS[controller], tuple(patient_names("all")), tuple(range(seeds)), days,
                  {"seed": 0})
    start = time.perf_counter()
    run_chunk(chunk)
    return chunk.patient_days / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--loop-hours", type=float, default=1.0)
    parser.add_argument("--controllers", default=",".join(CONTROLLERS))
    args = parser.parse_args()
    run_chunk(Chunk("bb", CONTROLLERS["bb"], ("adult#001",), (0,), 1 / 288, {"seed": 0}))  # warm-up
    print(f"{'controller':<10} {'batch 30':>14} {'batch 300':>14}   (patient-days/s)")
    for controller in args.controllers.split(","):
        if controller.startswith("loop"):
            rates = [patient_days_per_second(controller, 1, args.loop_hours / 24),
                     patient_days_per_second(controller, 10, args.loop_hours / 96)]
        else:
            rates = [patient_days_per_second(controller, seeds, args.days) for seeds in (1, 10)]
        print(f"{controller:<10} {rates[0]:>14.2f} {rates[1]:>14.2f}", flush=True)


if __name__ == "__main__":
    main()
