"""pyloopkit: the Loop automated insulin delivery algorithm in Python, on arrays.

``update()`` (Loop 2019 / Tidepool PyLoopKit's interface), ``replay()``, LoopAlgorithm's
``run()`` / ``generate_prediction()``, the UVA/Padova simulator and gymnasium environments
(``pyloopkit.simulation``), controllers (``pyloopkit.control``) and CGM metrics
(``pyloopkit.metrics``); the wings: importers and the ``History`` object (``pyloopkit.io``), the
clinical report (``pyloopkit.report``), therapy-settings estimation (``pyloopkit.tune``), glucose
forecasts (``pyloopkit.forecast``), meal logging in plain words (``pyloopkit.meals``) and the HTTP service
(``pyloopkit.service``).

``import pyloopkit`` stays light: the functions above and every submodule
(``pyloopkit.metrics``, ``pyloopkit.io``, ...) are imported on first use.
"""
from __future__ import annotations

import importlib
import importlib.util

__version__ = "0.1.0"

_LAZY = {
    "update": ("pyloopkit.loop_data_manager", "update"),
    "replay": ("pyloopkit.loop_replay", "replay"),
    "run": ("pyloopkit.algorithm", "run"),
    "generate_prediction": ("pyloopkit.algorithm", "generate_prediction"),
    "InvalidInputError": ("pyloopkit.errors", "InvalidInputError"),
    "MissingDataError": ("pyloopkit.errors", "MissingDataError"),
    "DoseType": ("pyloopkit.dose", "DoseType"),
}

__all__ = ["__version__", *_LAZY]

SUBPACKAGES = ("control", "forecast", "io", "meals", "metrics", "report", "service", "simulation", "tune")
"""Subpackages reachable as attributes (``pyloopkit.io.read``), imported on first use; listed by ``dir()``."""


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"pyloopkit.{name}") is not None:
        return importlib.import_module(f"pyloopkit.{name}")  # any submodule, e.g. pyloopkit.metrics
    raise AttributeError(f"module 'pyloopkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(SUBPACKAGES))
