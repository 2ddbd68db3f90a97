"""Batched UVA/Padova type 1 diabetes simulator (extra ``sim``).

The 30 simglucose virtual patients (:mod:`~pyloopkit.simulation.patients`), the
13-state model with compiled RK4 integrators (:mod:`~pyloopkit.simulation.model`),
CGM sensors, insulin pumps and meal scenarios, and the closed-loop
:class:`~pyloopkit.simulation.simulator.Simulator`. Importing this package
registers the gymnasium environment ``pyloopkit/T1D-v0``
(:mod:`pyloopkit.simulation.envs`).
"""
from __future__ import annotations

import importlib.util

if importlib.util.find_spec("simglucose") is None:  # pragma: no cover - only without the `sim` extra
    raise ImportError("pyloopkit.simulation needs simglucose (its patient parameters): pip install 'pyloopkit[sim]'")

from pyloopkit.simulation.model import OpenLoopResult, simulate_open_loop
from pyloopkit.simulation.patients import PatientParams, load_patients, patient_names
from pyloopkit.simulation.pump import Pump
from pyloopkit.simulation.scenario import CustomScenario, HarrisBenedictScenario, MealPlan, RandomScenario, Scenario
from pyloopkit.simulation.sensor import CGMSensor
from pyloopkit.simulation.simulator import Simulator, StepResult

ENV_ID = "pyloopkit/T1D-v0"


def _register_env() -> None:
    try:
        import gymnasium
    except ImportError:  # the environments need gymnasium (extra `sim`); the simulator does not
        return
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="pyloopkit.simulation.envs:T1DEnv")


_register_env()

__all__ = ["CGMSensor", "CustomScenario", "ENV_ID", "HarrisBenedictScenario", "MealPlan", "OpenLoopResult",
           "PatientParams", "Pump", "RandomScenario", "Scenario", "Simulator", "StepResult", "load_patients",
           "patient_names", "simulate_open_loop"]
