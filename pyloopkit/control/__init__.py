"""Controllers that drive the simulator (:class:`~pyloopkit.simulation.simulator.Simulator`)."""
from __future__ import annotations

from pyloopkit.control.basal_bolus import BasalBolusController
from pyloopkit.control.loop_controller import LoopController

__all__ = ["BasalBolusController", "LoopController"]
