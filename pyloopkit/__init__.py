"""pyloopkit: the Loop automated insulin delivery algorithm in Python, on arrays.

``import pyloopkit`` stays light: the heavy subpackages (simulation, control,
forecasting) are imported on first use.
"""
from __future__ import annotations

import importlib

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


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in {"simulation", "control"}:
        return importlib.import_module(f"pyloopkit.{name}")
    raise AttributeError(f"module 'pyloopkit' has no attribute {name!r}")
