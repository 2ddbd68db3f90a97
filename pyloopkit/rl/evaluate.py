"""Evaluation of a policy against baseline controllers with :func:`~pyloopkit.control.trial.run_trial`.

Each patient runs ``seeds`` episodes of ``days`` days in one simulator batch
(``n_episodes_per_patient=seeds``, seeded with ``first_seed``, never a training
seed: training uses small seeds, evaluation 1000 by default), once with the policy
and once with each baseline of the trials protocol
(:data:`pyloopkit.control.population.CONTROLLERS`: ``bb`` boluses for announced
meals, ``pid`` doses by CGM alone, ``loop`` is Loop itself), on the same meals and
sensor noise. A meal-bolus policy's simulator announces meals over the policy's
decision interval, as in training. BG is recorded every 5 min. Reported per
controller: time in 70-180, below 70 and below 54 mg/dL (mean over episodes, %),
and "terminations", episodes whose BG left the training termination bounds
(10-1000 mg/dL) at some 5-minute sample.

:func:`evaluate_groups` runs each age group's shipped policy on its own group (the
population evaluation: 30 patients).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from pyloopkit.control.population import CONTROLLERS
from pyloopkit.control.trial import run_trial
from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.rl.policy import load_policy
from pyloopkit.simulation.simulator import Simulator

STEP_MIN = 5
#: Labels of the baseline rows.
BASELINE_LABELS = {"bb": "basal-bolus"}
GROUPS = ("child", "adolescent", "adult")


def _policy(spec: str, shield: bool):
    """A controller from a path (``.zip``/``.json``) or ``ALGO:NAME`` of a shipped policy."""
    if ":" in spec and not Path(spec).exists():
        algo, name = spec.split(":", 1)
        who = {"patient": name} if "#" in name else {"group": name}
        return load_policy(algo, shield=True if shield else None, **who)
    path = Path(spec)
    algo = json.loads(path.with_suffix(".json").read_text())["algo"]
    return load_policy(algo, path=path, shield=True if shield else None)


def outcome(trial: dict, bounds=(10.0, 1000.0)) -> dict:
    """TIR, time below 70 and 54 (mean %, and the worst episode's), terminations of a trial."""
    m = trial["metrics"]
    bg = trial["bg"]
    terminated = (bg < bounds[0]).any(axis=1) | (bg > bounds[1]).any(axis=1)
    return {"episodes": int(bg.shape[0]),
            "tir_70_180": 100 * float(np.mean(m["time_in_70_180"])),
            "below_70": 100 * float(np.mean(m["time_below_70"])),
            "below_54": 100 * float(np.mean(m["time_below_54"])),
            "above_250": 100 * float(np.mean(m["time_above_250"])),
            "min_tir": 100 * float(np.min(m["time_in_70_180"])),
            "mean_mg_dl": float(np.mean(m["mean_mg_dl"])),
            "terminations": int(terminated.sum())}


def evaluate(policy: str, seeds: int = 20, days: float = 10.0, patients: str | None = None,
             first_seed: int = 1000, shield: bool = False, baselines=("bb",)) -> dict:
    """Policy and baseline outcomes on the same episodes.

    Parameters
    ----------
    policy : str
        A policy's ``.zip``/``.json`` path or ``ALGO:NAME`` (``ppo-lstm:adult#001``).
    seeds : int
        Episodes per patient.
    days : float
        Days per episode.
    patients : str or None
        Patients or group; ``None``: the policy's own.
    first_seed : int
        Seed of the batch (meals, sensor noise).
    shield : bool
        Pass the policy's doses through its default shield.
    baselines : sequence of str
        Names of :data:`pyloopkit.control.population.CONTROLLERS` to run on the same episodes.

    Returns
    -------
    dict
        ``policy``, ``patients``, ``seeds``, ``days``, ``first_seed``, ``seconds`` and
        ``rows``: one dict per controller (``controller``, then :func:`outcome`'s keys).
    """
    unknown = [name for name in baselines if name not in CONTROLLERS]
    if unknown:
        raise InvalidInputError([Problem("baselines", None, name, f"must be one of {sorted(CONTROLLERS)}")
                                 for name in unknown])
    controller = _policy(policy, shield)
    patients = patients or controller.meta["patients"]
    rows = []
    started = time.perf_counter()
    sim = Simulator(patients, seed=first_seed, n_episodes_per_patient=seeds, announce_min=controller.announce_min)
    controller.bind(sim.patients)
    trial = run_trial(sim, controller, days, seed=first_seed, step_minutes=STEP_MIN)
    rows.append({"controller": f"{controller.algo}{'+shield' if shield else ''}", **outcome(trial)})
    for name in baselines:
        sim = Simulator(patients, seed=first_seed, n_episodes_per_patient=seeds)
        trial = run_trial(sim, CONTROLLERS[name](sim), days, seed=first_seed, step_minutes=STEP_MIN)
        rows.append({"controller": BASELINE_LABELS.get(name, name), **outcome(trial)})
    return {"policy": policy, "patients": patients, "seeds": seeds, "days": days, "first_seed": first_seed,
            "seconds": round(time.perf_counter() - started, 1), "rows": rows}


def evaluate_groups(algo: str, seeds: int = 20, days: float = 10.0, first_seed: int = 1000, shield: bool = False,
                    baselines=("bb",), groups=GROUPS) -> dict:
    """Each group's shipped ``algo`` policy on its own group (:func:`evaluate` per group), and the pooled
    outcome over every patient (``rows`` of group ``"all"``: episode-weighted means).

    Returns
    -------
    dict
        ``algo``, ``seeds``, ``days``, ``first_seed``, ``seconds`` and ``rows`` (``group``,
        ``controller``, then :func:`outcome`'s keys).
    """
    rows = []
    started = time.perf_counter()
    for group in groups:
        table = evaluate(f"{algo}:{group}", seeds, days, group, first_seed, shield, baselines)
        rows += [{"group": group, **row} for row in table["rows"]]
    for controller in dict.fromkeys(row["controller"] for row in rows):
        mine = [row for row in rows if row["controller"] == controller]
        episodes = sum(row["episodes"] for row in mine)
        pooled = {key: sum(row[key] * row["episodes"] for row in mine) / episodes
                  for key in ("tir_70_180", "below_70", "below_54", "above_250", "mean_mg_dl")}
        rows.append({"group": "all", "controller": controller, "episodes": episodes, **pooled,
                     "min_tir": min(row["min_tir"] for row in mine),
                     "terminations": sum(row["terminations"] for row in mine)})
    return {"policy": f"{algo}:<group>", "patients": "each group", "seeds": seeds, "days": days,
            "first_seed": first_seed, "seconds": round(time.perf_counter() - started, 1), "rows": rows}


def format_table(table: dict) -> str:
    """A Markdown table of :func:`evaluate`'s rows."""
    lines = [f"{table['policy']} on {table['patients']}: {table['seeds']} episodes x {table['days']} days "
             f"(seed {table['first_seed']}), {table['seconds']} s",
             "| group | controller | TIR 70-180 % | <70 % | <54 % | >250 % | worst TIR % | mean mg/dL | terminations |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in table["rows"]:
        lines.append(f"| {row.get('group', table['patients'])} | {row['controller']} | {row['tir_70_180']:.1f} | "
                     f"{row['below_70']:.2f} | {row['below_54']:.2f} | {row['above_250']:.2f} | {row['min_tir']:.1f} | "
                     f"{row['mean_mg_dl']:.0f} | {row['terminations']}/{row['episodes']} |")
    return "\n".join(lines)
