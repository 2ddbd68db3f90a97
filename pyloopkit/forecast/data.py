"""Training and evaluation data from the simulator: Loop and basal-bolus in closed loop.

:func:`simulate_rows` runs Loop (:class:`~pyloopkit.control.LoopController`) on a batch of virtual
patients with random meals (some unannounced, the others announced with mis-estimated carbs, see
:class:`~pyloopkit.simulation.conditions.Conditions`) and a noisy Dexcom sensor, and at every origin
(after a warm-up) keeps each member's ``update()`` input and the 48 CGM readings of the next 4 hours
as the target. :func:`basal_bolus_rows` does the same for the basal-bolus controller, through a
simulated :class:`~pyloopkit.io.History` (:func:`pyloopkit.report.simulated_history`).
:data:`DEFAULT_RECIPE` splits patients *and* seeds between training, validation and test, so no
patient or meal/noise draw of the test set is ever seen in training.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError, Problem
from .features import HORIZON_STEPS, STEP_MIN, ForecastRows, rows_from_inputs

GROUPS = ("child", "adolescent", "adult")


def _names(numbers) -> list[str]:
    return [f"{g}#{k:03d}" for g in GROUPS for k in numbers]


#: Patients and seeds of each split (disjoint), the simulated days per episode and the origin spacing.
DEFAULT_RECIPE = {
    "train": {"patients": _names(range(1, 7)), "seeds": [101, 102], "days": 2},
    "validation": {"patients": _names((7, 8)), "seeds": [201], "days": 2},
    "test": {"patients": _names((9, 10)), "seeds": [301, 302], "days": 2},
    "origin_every_min": 30,
    "warmup_min": 720,
    "conditions": {"unannounced_probability": 0.15, "carb_fraction_range": (0.7, 1.3)},
    "basal_bolus_days": 2,
}


def check_disjoint(recipe: dict) -> None:
    """Raise when two splits of ``recipe`` share a patient or a seed."""
    splits = ("train", "validation", "test")
    problems = []
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            for key in ("patients", "seeds"):
                shared = sorted(set(recipe[a][key]) & set(recipe[b][key]))
                if shared:
                    problems.append(Problem(f"recipe.{b}.{key}", None, shared, f"also in the {a} split"))
    if problems:
        raise InvalidInputError(problems)


def simulate_rows(patients: list[str], seed: int, days: float, origin_every_min: int = 30,
                  warmup_min: int = 720, conditions: dict | None = None, progress: bool = False,
                  **loop_settings) -> ForecastRows:
    """Closed-loop Loop episodes and the forecast rows at their origins.

    Parameters
    ----------
    patients : list of str
        Virtual patients (``"adult#001"``, ...), one episode each.
    seed : int
        Seed of the episodes (meals, sensor noise).
    days : float
        Episode length (days).
    origin_every_min : int
        Minutes between forecast origins (a multiple of 5).
    warmup_min : int
        No origin before this minute (Loop needs history for its effects).
    conditions : dict, optional
        Keywords of :class:`~pyloopkit.simulation.conditions.Conditions` (what Loop is told of
        the meals, sensor dropouts, ...); the targets are always the sensor's real readings.
    loop_settings
        Keywords of :class:`~pyloopkit.control.LoopController`.

    Returns
    -------
    ForecastRows
        With ``target`` (the CGM readings at the 48 horizons) and ``group`` ("patient/seed/loop").
    """
    from ..control.loop_controller import LoopController
    from ..simulation.conditions import Conditions
    from ..simulation.simulator import Simulator

    if origin_every_min % STEP_MIN or origin_every_min <= 0:
        raise InvalidInputError([Problem("origin_every_min", None, origin_every_min, "must be a positive multiple of 5")])
    steps = int(round(days * 1440 / STEP_MIN))
    sim = Simulator(patients, sensor="Dexcom", scenario="random", seed=seed)
    controller = LoopController.for_simulator(sim, **loop_settings)
    step = sim.reset(seed)
    controller.reset()
    state = Conditions(**(conditions or {})).start(sim.patients.names, sim.episode, seed, steps, STEP_MIN)
    cgm = np.empty((sim.n, steps + 1))
    cgm[:, 0] = step.cgm
    inputs, origin_steps = [], []
    iterator = range(steps)
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc=f"Loop closed loop (seed {seed})", unit="step")
    for k in iterator:
        seen = state.view(step, k)
        basal, bolus = controller.act(seen)
        bolus = state.bolus(bolus, seen, k)
        now = step.time_min
        if now >= warmup_min and now % origin_every_min == 0 and k + HORIZON_STEPS <= steps:
            inputs.append([controller.input_dict(i, now) for i in range(sim.n)])
            origin_steps.append(k)
        step = sim.step(basal, bolus, minutes=STEP_MIN)
        cgm[:, k + 1] = step.cgm
    if not inputs:
        raise InvalidInputError([Problem("days", None, days, "too short for one origin after the warm-up "
                                                             "and 4 hours of targets")])
    flat = [d for batch in inputs for d in batch]
    targets = np.concatenate([cgm[:, k + 1:k + 1 + HORIZON_STEPS] for k in origin_steps])
    group = np.array([f"{name}/{seed}/loop" for _ in origin_steps for name in sim.patients.names])
    return rows_from_inputs(flat, targets, group=group)


def basal_bolus_rows(patient: str, seed: int, days: float, origin_every_min: int = 30,
                     warmup_min: int = 720) -> ForecastRows:
    """Rows of one basal-bolus episode (announced meals, Dexcom noise, a few CGM dropouts).

    Needs the ``io`` extra (pandas); origins without 4 hours of readings after them are left out.
    """
    from ..report import simulated_history
    from .history import rows_from_history

    rows = rows_from_history(simulated_history(days=days, seed=seed, patient=patient),
                             every_min=origin_every_min, warmup_min=warmup_min)
    rows.group = np.full(len(rows), f"{patient}/{seed}/bb")
    return rows


def make_split(recipe: dict, split: str, progress: bool = False) -> ForecastRows:
    """All rows of one split (``"train"``, ``"validation"``, ``"test"``) of ``recipe``."""
    check_disjoint(recipe)
    part = recipe[split]
    every, warmup = recipe["origin_every_min"], recipe["warmup_min"]
    loop = [simulate_rows(part["patients"], seed, part["days"], every, warmup, recipe.get("conditions"),
                          progress=progress) for seed in part["seeds"]]
    bb = [basal_bolus_rows(patient, seed, recipe["basal_bolus_days"], every, warmup)
          for seed in part["seeds"] for patient in part["patients"]] if recipe.get("basal_bolus_days") else []
    return ForecastRows.concat(loop + bb)
