"""Loop in closed loop on the virtual population: patient-days per second, fast path vs update().

    python benchmarks/bench_closed_loop.py [--days 1] [--batches 30 300] [--update-members 30] [--threads N]
                                           [--protocol-seeds 2] [--protocol-days 5] [--workers 2]
                                           [--protocol-backend processes] [--memory-days 90] [--memory-batch 3]
                                           [--seed 1]

For each batch size (members: the 30 simglucose patients, adolescents, adults and children, in
turn, repeated for batches over 30 with their own meals and sensor noise) it runs ``--days`` of
closed loop (Dexcom noise, Insulet pump, random announced meals) with
:class:`pyloopkit.control.LoopController` on the fast engine (every member's decision compiled, the
members split between ``--threads`` threads, default one per CPU) and, in
the same run, on the ``update()`` engine (the PyLoopKit dictionary and ``update()`` per member and
decision) for the first ``--update-members`` members, timed once (``update()`` costs the same per
member at any batch size, so every ratio compares per-member throughput). Both engines must give the
same traces on the members both ran; the script checks it. It prints patient-days/s (wall and per
CPU-second), closed-loop milliseconds per member-decision (the simulator's share is ~1 %), the ratio,
and the simulator alone (basal-bolus controller) for scale.

Then the trial protocol as a user runs it, on all cores: :func:`pyloopkit.control.population.run_population_trial`
with Loop on the 30 patients x ``--protocol-seeds`` seeds x ``--protocol-days`` in ``--workers``
processes (one batch of 30 per seed, one thread each; process start and numba cache loading included,
a few seconds per process, so short runs understate the rate of long ones), or with
``--protocol-backend local`` in this process (the batches one after the other, each on all threads),
and what the paper
protocol (30 patients x 20 seeds x 10 days = 6,000 patient-days) would take at that rate.
``--protocol-seeds 0`` skips it.

Last, ``--memory-days`` of closed loop for ``--memory-batch`` members without storing traces: the
process's resident memory and the longest history (glucose readings, doses, carb entries) any
member holds, at days 1, 2, 5, 10, 30, 60, 90 (those within the run): Loop's histories are bounded
to what it reads (24 h of glucose, 24 h plus one insulin action of doses and carbs), so neither
grows with days. ``--memory-days 0`` skips it.

Loop's cost per decision grows until its 24 h of glucose and dose history are full: ``--days 1``
or more gives the steady-state figure (the first hours are cheaper).
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
MEMORY_MARKS_DAYS = (1, 2, 5, 10, 30, 60, 90)


def members(batch: int) -> list[str]:
    """The first ``batch`` members: the 30 patients in turn, repeated."""
    return [POPULATION[k % len(POPULATION)] for k in range(batch)]


def closed_loop(batch: int, days: float, seed: int, controller: str, threads: int | None = None
                ) -> tuple[float, float, dict]:
    """``(wall s, CPU s, run_trial result)`` of ``days`` of closed loop for ``batch`` members."""
    sim = Simulator(members(batch), sensor="Dexcom", pump="Insulet", scenario="random", seed=seed)
    if controller == "basal_bolus":
        ctrl = BasalBolusController(sim.patients)
    else:
        ctrl = LoopController.for_simulator(sim, engine=controller, threads=threads)
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_trial(sim, ctrl, days=days, seed=seed)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def same_traces(fast: dict, slow: dict, rows: int) -> bool:
    """Whether two runs gave bit-identical commands and BG on their first ``rows`` members."""
    return all(np.array_equal(fast[k][:rows], slow[k][:rows]) for k in ("basal_u_per_h", "bolus_u", "bg"))


def update_reference(members_n: int, days: float, seed: int) -> tuple[float, dict] | None:
    """``update()`` per member on the first ``members_n`` members (timed once: its cost per member does
    not depend on the batch): ``(wall s per member, result)``, printed; None when ``members_n`` is 0."""
    if not members_n:
        return None
    wall, _, result = closed_loop(members_n, days, seed, "update")
    decisions = days * 1440.0 / 5.0
    print(f"update() per member ({members_n} members x {days:g} day): {members_n * days / wall:8.2f} "
          f"patient-days/s, {1e3 * wall / (members_n * decisions):6.3f} closed-loop ms per member-decision")
    return wall / members_n, result


def throughput(batch: int, days: float, seed: int, reference, threads: int | None) -> None:
    """Print the fast path's and the simulator's patient-days per second for one batch, the ratio to
    ``update()`` per member (``reference``) and whether the traces of the members both ran agree."""
    decisions = days * 1440.0 / 5.0
    wall, cpu, fast = closed_loop(batch, days, seed, "fast", threads)
    print(f"batch {batch:4d} x {days:g} day, Loop fast path: {batch * days / wall:8.2f} patient-days/s "
          f"({batch * days / cpu:8.2f} per CPU-s), {1e3 * wall / (batch * decisions):6.3f} closed-loop ms per "
          f"member-decision")
    if reference is not None:
        per_member_s, slow = reference
        rows = min(batch, slow["bg"].shape[0])
        print(f"           fast path {per_member_s * batch / wall:5.1f}x update() per member; same traces "
              f"({rows} members): {same_traces(fast, slow, rows)}")
    sim_wall, _, _ = closed_loop(batch, days, seed, "basal_bolus")
    print(f"           simulator with basal-bolus: {batch * days / sim_wall:10.1f} patient-days/s")


def protocol(seeds: int, days: float, workers: int, backend: str) -> None:
    """Print the patient-days per second of the Loop protocol run in ``workers`` processes (``backend``
    ``"processes"``) or in this process (``"local"``)."""
    from pyloopkit.control.population import run_population_trial

    start = time.perf_counter()
    table = run_population_trial("loop", patients="all", seeds=seeds, days=days, backend=backend,
                                 workers=workers if backend == "processes" else None, progress=False)
    rate = 30 * seeds * days / (time.perf_counter() - start)
    where = f"{workers} processes" if backend == "processes" else "this process"
    print(f"protocol, Loop, 30 patients x {seeds} seeds x {days:g} day in {where}: {rate:7.2f} "
          f"patient-days/s ({len(table)} episodes); the 6,000 patient-day paper protocol: "
          f"{6000 / rate / 60:6.1f} min")


def resident_mb() -> float:
    """The process's current resident memory (MB), from /proc (peak memory where that is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2 ** 20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(batch: int, days: int, seed: int) -> None:
    """Print resident memory and history lengths along ``days`` of closed loop (no traces kept)."""
    sim = Simulator(members(batch), sensor="Dexcom", pump="Insulet", scenario="random", seed=seed)
    ctrl = LoopController.for_simulator(sim)
    step = sim.reset(seed)
    ctrl.reset()
    marks = [d for d in MEMORY_MARKS_DAYS if d <= days]
    start = time.perf_counter()
    for k in range(1, days * 288 + 1):
        step = sim.step(*ctrl.act(step), minutes=5)
        if k % 288 == 0 and k // 288 in marks:
            lengths = ctrl.history_lengths()
            print(f"day {k // 288:3d}: resident memory {resident_mb():7.1f} MB; longest history: "
                  f"{lengths['glucose']} glucose readings, {lengths['doses']} doses, "
                  f"{lengths['carbs']} carb entries ({time.perf_counter() - start:6.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=1.0, help="simulated days per throughput run")
    parser.add_argument("--batches", type=int, nargs="*", default=[30, 300], help="batch sizes (none: skip)")
    parser.add_argument("--update-members", type=int, default=30,
                        help="members run through update() for the ratio (0: skip)")
    parser.add_argument("--protocol-seeds", type=int, default=2, help="seeds of the protocol run (0: skip)")
    parser.add_argument("--protocol-days", type=float, default=5.0, help="episode length of the protocol run")
    parser.add_argument("--threads", type=int, default=None, help="threads of the fast path (default: one per CPU)")
    parser.add_argument("--workers", type=int, default=2, help="processes of the protocol run")
    parser.add_argument("--protocol-backend", choices=("processes", "local"), default="processes",
                        help="run the protocol in --workers processes or in this process")
    parser.add_argument("--memory-days", type=int, default=90, help="days of the memory run (0: skip)")
    parser.add_argument("--memory-batch", type=int, default=3, help="members in the memory run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for engine in ("fast", "update"):
        closed_loop(1, 1 / 24, args.seed, engine)  # compile / load the numba kernels once
    reference = update_reference(args.update_members, args.days, args.seed) if args.batches else None
    for batch in args.batches:
        throughput(batch, args.days, args.seed, reference, args.threads)
    if args.protocol_seeds:
        protocol(args.protocol_seeds, args.protocol_days, args.workers, args.protocol_backend)
    if args.memory_days:
        memory(args.memory_batch, args.memory_days, args.seed)


if __name__ == "__main__":
    main()
