"""Glucose forecasting to 4 hours (extra ``ml`` for the LSTM): baselines, an LSTM, evaluation.

>>> from pyloopkit.forecast import load_forecaster
>>> f = load_forecaster("default")          # the shipped LSTM, offline
>>> f.predict(input_dict)                   # {"dates": [...48], "values": [...48 mg/dL]}

See docs/forecast.md.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Forecaster": "base", "ForecastRows": "features", "rows_from_inputs": "features",
    "HORIZONS_MIN": "features", "Persistence": "baselines", "LinearTrend": "baselines",
    "Autoregressive": "baselines", "LoopPrediction": "baselines", "Truth": "baselines",
    "LSTMForecaster": "lstm", "evaluate": "evaluation", "score": "evaluation", "clarke_zones": "evaluation",
    "parkes_zones": "evaluation", "simulate_rows": "data", "DEFAULT_RECIPE": "data", "train": "training",
    "load_forecaster": "training", "rows_from_history": "history",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pyloopkit.forecast' has no attribute {name!r}")
