"""Cost of the RL wing: guarded_update() over update(), its parts, and policy inference in a trial.

Run: ``PYTHONPATH=. python benchmarks/bench_rl.py`` (prints figures; nothing is asserted).
"""
from __future__ import annotations

import time

import numpy as np


#: (algorithm, patient): adult#001's own policy and, for adult#002, the adult group policy.
POLICIES = (("ppo-lstm", "adult#001"), ("ppo-lstm", "adult#002"), ("dqn", "adult#002"))


def per_call_ms(function, repeats: int) -> float:
    """Median wall time (ms) of ``function()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> None:
    import torch

    from pyloopkit import update
    from pyloopkit.control.trial import run_trial
    from pyloopkit.rl.guarded import guarded_update, observation_from_input, shield_from_input
    from pyloopkit.rl.policy import load_policy
    from pyloopkit.simulation.simulator import Simulator
    from pyloopkit.synthetic import dense_history

    torch.set_num_threads(1)
    d = dense_history(1.0, seed=0)
    out = update(d)
    shield = shield_from_input(d)
    print(f"{'update()':48s} {per_call_ms(lambda: update(d), 50):8.3f} ms/call (median of 50)")
    for algo, patient in POLICIES:
        controller = load_policy(algo, patient=patient)
        guarded_update(d, controller)
        features = observation_from_input(d, out, controller.options.decision_interval_min)
        print(f"{algo} policy for {patient} ({controller.meta['patients']}, {controller.options.observation} "
              f"observation{', meal bolus' if controller.options.meal_bolus else ''}):")
        parts = {
            "  guarded_update()": lambda: guarded_update(d, controller),
            "    observation_from_input": lambda: observation_from_input(d, out, 30),
            "    policy recommend_doses (network forward)": lambda: controller.recommend_doses(features),
            "    shield_from_input + apply": lambda: shield_from_input(d).apply(np.array([1.0]), np.zeros(1),
                                                                              np.array([100.0])),
            "    shield.apply alone": lambda: shield.apply(np.array([1.0]), np.zeros(1), np.array([100.0])),
        }
        for name, function in parts.items():
            print(f"{name:48s} {per_call_ms(function, 50):8.3f} ms/call (median of 50)")
        sim = Simulator(patient, seed=1000, n_episodes_per_patient=20, announce_min=controller.announce_min)
        controller.bind(sim.patients)
        start = time.perf_counter()
        run_trial(sim, controller, days=10, seed=1000, step_minutes=5)
        print(f"  run_trial, 20 episodes x 10 days at 5-min steps: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
