"""Controllers that drive the simulator (:class:`~pyloopkit.simulation.simulator.Simulator`) and the trial runners."""
from __future__ import annotations

from pyloopkit.control.basal_bolus import BasalBolusController, CooldownBasalBolusController
from pyloopkit.control.loop_controller import LoopController
from pyloopkit.control.pid import PIDController, PIDIFController
from pyloopkit.control.population import CONTROLLERS, run_population_trial
from pyloopkit.control.trial import run_trial

__all__ = ["BasalBolusController", "CONTROLLERS", "CooldownBasalBolusController", "LoopController", "PIDController",
           "PIDIFController", "run_population_trial", "run_trial"]
