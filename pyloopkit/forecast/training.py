"""Train the shipped forecaster and load it offline.

``pyloopkit forecast train`` simulates the three splits of :data:`~.data.DEFAULT_RECIPE`
(cached as ``.npz`` when a cache folder is given), trains an LSTM in each mode, keeps the one with
the lower validation RMSE at 60 min, and writes ``default.pt`` / ``default.json`` (weights, seed,
recipe, validation scores) to :data:`WEIGHTS_DIR`.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import InvalidInputError, Problem
from .data import DEFAULT_RECIPE, check_disjoint, make_split
from .features import HORIZONS_MIN, ForecastRows
from .lstm import MODES, LSTMForecaster

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")


def split_rows(recipe: dict, split: str, cache: str | None = None, progress: bool = False) -> ForecastRows:
    """The rows of one split, read from ``cache/<split>.npz`` when present, else simulated (and cached)."""
    path = None if cache is None else os.path.join(cache, f"{split}.npz")
    if path is not None and os.path.exists(path):
        return ForecastRows.load(path)
    rows = make_split(recipe, split, progress=progress)
    if path is not None:
        os.makedirs(cache, exist_ok=True)
        rows.save(path)
    return rows


def rmse_at(forecaster, rows: ForecastRows, horizon_min: int = 60) -> float:
    """RMSE (mg/dL) of a forecaster at one horizon."""
    column = int(np.flatnonzero(HORIZONS_MIN == horizon_min)[0])
    return float(np.sqrt(np.mean((forecaster.predict_rows(rows)[:, column] - rows.target[:, column]) ** 2)))


def train(out_dir: str = WEIGHTS_DIR, recipe: dict = DEFAULT_RECIPE, cache: str | None = None, seed: int = 0,
          epochs: int = 40, hidden: int = 32, progress: bool = True) -> LSTMForecaster:
    """Train both LSTM modes on the recipe's training split and save the better one as ``default``."""
    check_disjoint(recipe)
    train_rows = split_rows(recipe, "train", cache, progress)
    validation = split_rows(recipe, "validation", cache, progress)
    candidates = []
    for mode in MODES:
        model = LSTMForecaster(mode, hidden=hidden, seed=seed)
        model.fit(train_rows, validation, epochs=epochs, progress=progress)
        candidates.append((rmse_at(model, validation), model))
    score, best = min(candidates, key=lambda c: c[0])
    os.makedirs(out_dir, exist_ok=True)
    best.save(os.path.join(out_dir, "default"), recipe=recipe, epochs=epochs, training_rows=len(train_rows),
              validation_rmse_60_min={m.mode: s for s, m in candidates},
              command=f"pyloopkit forecast train --seed {seed} --epochs {epochs} --hidden {hidden}")
    return best


def load_forecaster(name: str = "default"):
    """A forecaster by name: ``"default"`` (the shipped LSTM), ``"persistence"``, ``"linear_trend"``,
    ``"loop"``, or a path written by :meth:`LSTMForecaster.save` (without extension)."""
    from .baselines import LinearTrend, LoopPrediction, Persistence

    simple = {"persistence": Persistence, "linear_trend": LinearTrend, "loop": LoopPrediction}
    if name in simple:
        return simple[name]()
    path = os.path.join(WEIGHTS_DIR, name) if name == "default" else name
    if not os.path.exists(path + ".pt"):
        raise InvalidInputError([Problem("name", None, name, "no such forecaster (default, persistence, "
                                                             "linear_trend, loop, or a saved path)")])
    return LSTMForecaster.load(path)
