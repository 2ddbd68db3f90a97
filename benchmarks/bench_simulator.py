"""Simulator speed: simglucose versus pyloopkit.simulation, and the vector environment.

Prints, in one run:

1. simglucose 0.2.11's seconds per patient-day: its ``T1DSimEnv`` (Dexcom,
   Insulet, random meals) driven by its ``BBController``, measured on a shorter
   run of one patient (default 2 h) and scaled to a day;
2. our patient-days per second with the basal-bolus controller, Dexcom noise,
   Insulet pump and random meals, a decision every 5 min, for batches of
   1, 30, 300 and 3000 over 10 days (after a warm-up that loads the compiled kernels);
3. steps per second of ``pyloopkit.simulation.envs.T1DVectorEnv`` with 64
   environments over the 30 patients (64 simulated members: patient ``j % 30``,
   episode ``j // 30``), 3-min decisions, uniformly random basal rates in
   [0, 30] U/h, default options (Dexcom, Insulet, random meals, risk_diff reward,
   autoreset after a day or when BG leaves 10-1000 mg/dL). One vector step
   advances all 64 members; environment steps = 64 x vector steps.

Usage: ``python benchmarks/bench_simulator.py [--days 10] [--batches 1 30 300 3000]``.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from pyloopkit.control import BasalBolusController
from pyloopkit.simulation import Simulator

STEP_MIN = 5


def simglucose_seconds_per_day(minutes: int) -> float | None:
    """simglucose's seconds per simulated patient-day, or None (with the reason printed) when it cannot be
    imported: simglucose 0.2.11 imports ``gym``, which needs ``pkg_resources`` (removed from setuptools 81;
    ``pip install 'setuptools<81'`` restores it)."""
    try:
        return _simglucose_seconds_per_day(minutes)
    except ImportError as e:
        print(f"simglucose comparison skipped: {e} (simglucose 0.2.11 needs gym, which needs pkg_resources: "
              "pip install 'simglucose==0.2.11' 'setuptools<81')")
        return None


def _simglucose_seconds_per_day(minutes: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from datetime import datetime

        from simglucose.actuator.pump import InsulinPump
        from simglucose.controller.basal_bolus_ctrller import BBController
        from simglucose.patient.t1dpatient import T1DPatient
        from simglucose.sensor.cgm import CGMSensor
        from simglucose.simulation.env import T1DSimEnv
        from simglucose.simulation.scenario_gen import RandomScenario

        env = T1DSimEnv(T1DPatient.withName("adolescent#001"), CGMSensor.withName("Dexcom", seed=1),
                        InsulinPump.withName("Insulet"), RandomScenario(datetime(2018, 1, 1, 6), seed=1))
        controller = BBController()
        observation, reward, done, info = env.reset()
        start = time.perf_counter()
        for _ in range(minutes // int(env.sample_time)):
            action = controller.policy(observation, reward, done, **info)
            observation, reward, done, info = env.step(action)
        elapsed = time.perf_counter() - start
    return elapsed * 1440.0 / minutes


def _simulator(batch: int, seed: int = 0) -> Simulator:
    if batch < 30:
        return Simulator("adolescent#001", seed=seed, n_episodes_per_patient=batch)
    if batch % 30:
        raise SystemExit(f"batch {batch}: use 1..29 or a multiple of 30")
    return Simulator("all", seed=seed, n_episodes_per_patient=batch // 30)


def closed_loop(sim: Simulator, steps: int) -> float:
    """Seconds for ``steps`` basal-bolus decisions of the whole batch."""
    controller = BasalBolusController(sim.patients)
    result = sim.reset()
    start = time.perf_counter()
    for _ in range(steps):
        basal, bolus = controller.act(result)
        result = sim.step(basal, bolus, STEP_MIN)
    return time.perf_counter() - start


def vector_env_steps_per_second(num_envs: int, steps: int) -> tuple[float, int]:
    """Vector steps per second and the number of simulated members."""
    from pyloopkit.simulation.envs import T1DVectorEnv

    env = T1DVectorEnv("all", num_envs=num_envs, decision_interval_min=3)
    env.reset(seed=0)
    high = float(np.asarray(env.single_action_space.high).ravel()[0])
    actions = np.random.default_rng(0).uniform(0.0, high, (steps, num_envs) + env.single_action_space.shape)
    actions = actions.astype(env.single_action_space.dtype)
    env.step(actions[0])
    start = time.perf_counter()
    for k in range(steps):
        env.step(actions[k])
    elapsed = time.perf_counter() - start
    members = env.simulator.n
    env.close()
    return steps / elapsed, members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=10.0)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 30, 300, 3000])
    parser.add_argument("--simglucose-minutes", type=int, default=120)
    parser.add_argument("--vector-steps", type=int, default=3000)
    args = parser.parse_args()

    seconds = simglucose_seconds_per_day(args.simglucose_minutes)
    if seconds is not None:
        print(f"simglucose 0.2.11: {seconds:.2f} s per patient-day "
              f"({args.simglucose_minutes} min of adolescent#001 with BBController, scaled)")

    closed_loop(_simulator(1), 3)  # warm-up: load (or compile) the kernel
    steps = int(round(args.days * 1440 / STEP_MIN))
    for batch in args.batches:
        sim = _simulator(batch)
        elapsed = closed_loop(sim, steps)
        patient_days = sim.n * steps * STEP_MIN / 1440.0
        print(f"pyloopkit batch {sim.n:5d}: {patient_days / elapsed:10.1f} patient-days/s "
              f"({patient_days:.0f} patient-days in {elapsed:.2f} s, {1e6 * elapsed / steps:.1f} us per decision"
              + (f", speed-up {seconds * patient_days / elapsed:,.0f}x over simglucose" if seconds else "") + ")")

    rate, members = vector_env_steps_per_second(64, args.vector_steps)
    print(f"vector env (64 envs = {members} simulated members, 3-min steps, random actions): "
          f"{rate:,.0f} vector steps/s = {64 * rate:,.0f} environment steps/s")


if __name__ == "__main__":
    main()
