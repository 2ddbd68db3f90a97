"""An LSTM forecaster over CGM history and Loop's effect timelines (PyTorch, extra ``ml``).

Architecture: an LSTM reads the last 3 hours (36 steps) of ``[CGM, counteraction]``; its final
state, Loop's predicted trajectory, the future insulin and carb effects and IOB/COB at the origin
go through a two-layer MLP that outputs all 48 horizons at once. ``mode="residual"`` adds the
output to Loop's prediction (it learns Loop's error), ``mode="direct"`` adds it to the last CGM
reading. Inputs are scaled by fixed constants (no fitted normalisation to ship).
"""
from __future__ import annotations

import copy
import json
import os

import numpy as np

from ..errors import InvalidInputError, Problem
from .base import Forecaster
from .features import HISTORY_STEPS, HORIZON_STEPS, ForecastRows

GLUCOSE_CENTER_MG_DL = 140.0
GLUCOSE_SCALE_MG_DL = 50.0
COUNTERACTION_SCALE = 5.0
IOB_SCALE_U = 5.0
COB_SCALE_G = 50.0
MODES = ("residual", "direct")


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("pyloopkit.forecast's LSTM needs torch: pip install 'pyloopkit[ml]'") from e
    return torch


def _network(hidden: int):
    torch = _torch()
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(2, hidden, batch_first=True)
            self.head = nn.Sequential(nn.Linear(hidden + 3 * HORIZON_STEPS + 2, 2 * hidden), nn.Tanh(),
                                      nn.Linear(2 * hidden, HORIZON_STEPS))

        def forward(self, past, future, static):
            _, (h, _) = self.lstm(past)
            return self.head(torch.cat([h[-1], future, static], dim=1))

    return Net()


def _inputs(rows: ForecastRows):
    """Scaled network inputs: past (N, 36, 2), future (N, 144), static (N, 2), and the base (N, 48)."""
    last = rows.cgm_history[:, -1:]
    past = np.stack([(rows.cgm_history - GLUCOSE_CENTER_MG_DL) / GLUCOSE_SCALE_MG_DL,
                     rows.counteraction / COUNTERACTION_SCALE], axis=2)
    future = np.hstack([(rows.loop_prediction - last) / GLUCOSE_SCALE_MG_DL,
                        rows.insulin_effect / GLUCOSE_SCALE_MG_DL, rows.carb_effect / GLUCOSE_SCALE_MG_DL])
    static = np.stack([rows.iob_u / IOB_SCALE_U, rows.cob_g / COB_SCALE_G], axis=1)
    return past, future, static


class LSTMForecaster(Forecaster):
    """LSTM + MLP forecaster (see the module docstring).

    Parameters
    ----------
    mode : "residual" or "direct"
        Predict a correction to Loop's prediction, or the change from the last reading.
    hidden : int
        LSTM units (the MLP has twice as many).
    seed : int
        Seed of the weight initialisation and of the training shuffles.
    """

    def __init__(self, mode: str = "residual", hidden: int = 32, seed: int = 0):
        if mode not in MODES:
            raise InvalidInputError([Problem("mode", None, mode, f"must be one of {MODES}")])
        if not (isinstance(hidden, (int, np.integer)) and 1 <= hidden <= 1024):
            raise InvalidInputError([Problem("hidden", None, hidden, "must be an integer in 1..1024")])
        torch = _torch()
        self.mode, self.hidden, self.seed = mode, int(hidden), int(seed)
        torch.manual_seed(self.seed)
        self.net = _network(self.hidden)
        self.name = f"lstm_{mode}"
        self.metadata: dict = {}

    # --- prediction ---------------------------------------------------------------------------
    def _base(self, rows: ForecastRows) -> np.ndarray:
        return rows.loop_prediction if self.mode == "residual" else np.repeat(rows.cgm_history[:, -1:],
                                                                                HORIZON_STEPS, axis=1)

    def _forward(self, rows: ForecastRows, grad: bool = False):
        torch = _torch()
        past, future, static = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in _inputs(rows))
        with torch.set_grad_enabled(grad):
            return self.net(past, future, static)

    def predict_rows(self, rows: ForecastRows) -> np.ndarray:
        self.net.eval()
        return self._base(rows) + GLUCOSE_SCALE_MG_DL * self._forward(rows).numpy().astype(np.float64)

    # --- training -----------------------------------------------------------------------------
    def _loss(self, rows: ForecastRows) -> float:
        return float(np.mean((self.predict_rows(rows) - rows.target) ** 2))

    def fit(self, train: ForecastRows, validation: ForecastRows | None = None, epochs: int = 30,
            lr: float = 2e-3, batch_size: int = 128, progress: bool = False) -> list[dict]:
        """Train with Adam on the mean squared error (mg/dL²); keep the weights of the best epoch.

        The best epoch is judged on ``validation`` (on ``train`` when it is None); the starting
        weights count as epoch 0, so training never returns a model worse than it started.

        Returns
        -------
        list of dict
            ``epoch``, ``train_mse`` (mean over the epoch's batches, while training), ``validation_mse``
            per epoch (mg/dL²).
        """
        torch = _torch()
        for name, rows in (("train", train), ("validation", validation)):
            if rows is not None and rows.target is None:
                raise InvalidInputError([Problem(name, None, None, "rows need targets to train on")])
        judge = validation if validation is not None else train
        generator = np.random.default_rng(self.seed)
        optimiser = torch.optim.Adam(self.net.parameters(), lr=lr)
        target = torch.from_numpy(((train.target - self._base(train)) / GLUCOSE_SCALE_MG_DL).astype(np.float32))
        best = (self._loss(judge), copy.deepcopy(self.net.state_dict()))
        log = [{"epoch": 0, "train_mse": self._loss(train), "validation_mse": best[0]}]
        epochs_iter = range(1, epochs + 1)
        if progress:
            from tqdm import tqdm
            epochs_iter = tqdm(epochs_iter, desc=f"training {self.name}", unit="epoch")
        for epoch in epochs_iter:
            self.net.train()
            total = 0.0
            for batch in np.array_split(generator.permutation(len(train)), max(1, len(train) // batch_size)):
                optimiser.zero_grad()
                loss = torch.mean((self._forward(train.take(batch), grad=True) - target[batch]) ** 2)
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            score = self._loss(judge)
            train_mse = GLUCOSE_SCALE_MG_DL ** 2 * total / len(train)
            log.append({"epoch": epoch, "train_mse": train_mse, "validation_mse": score})
            if score < best[0]:
                best = (score, copy.deepcopy(self.net.state_dict()))
        self.net.load_state_dict(best[1])
        return log

    def calibrate(self, rows: ForecastRows, epochs: int = 10, lr: float = 5e-4, holdout: float = 0.25) -> dict:
        """Fine-tune on a user's own rows (Aura's calibrate), judged on the last ``holdout`` of them.

        The rows are split in time order (the latest ``holdout`` fraction judges), and the weights
        are only replaced when the held-out error goes down.

        Returns
        -------
        dict
            ``rmse_before`` and ``rmse_after`` (mg/dL) on the held-out rows, ``rows`` used.
        """
        if rows.target is None or len(rows) < 8:
            raise InvalidInputError([Problem("rows", None, len(rows), "calibration needs >= 8 rows with targets")])
        order = np.argsort(rows.origin, kind="stable")
        cut = int(round(len(rows) * (1.0 - holdout)))
        train, judge = rows.take(order[:cut]), rows.take(order[cut:])
        before = np.sqrt(self._loss(judge))
        self.fit(train, judge, epochs=epochs, lr=lr, batch_size=min(16, len(train)))
        return {"rmse_before": float(before), "rmse_after": float(np.sqrt(self._loss(judge))), "rows": len(rows)}

    # --- persistence --------------------------------------------------------------------------
    def save(self, path: str, **metadata) -> None:
        """Write ``path`` + ``.pt`` (weights) and ``.json`` (architecture, seed and ``metadata``)."""
        torch = _torch()
        self.metadata = {**self.metadata, **metadata}
        torch.save(self.net.state_dict(), path + ".pt")
        with open(path + ".json", "w") as f:
            json.dump({"mode": self.mode, "hidden": self.hidden, "seed": self.seed,
                       "history_steps": HISTORY_STEPS, "horizon_steps": HORIZON_STEPS, **self.metadata}, f,
                      indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> "LSTMForecaster":
        """A forecaster written by :meth:`save` (``path`` without extension); weights only, no pickles."""
        torch = _torch()
        for ext in (".json", ".pt"):
            if not os.path.exists(path + ext):
                raise FileNotFoundError(f"no forecaster at {path}{ext}")
        with open(path + ".json") as f:
            meta = json.load(f)
        model = cls(meta.pop("mode"), meta.pop("hidden"), meta.pop("seed"))
        model.net.load_state_dict(torch.load(path + ".pt", weights_only=True))
        model.metadata = {k: v for k, v in meta.items() if k not in ("history_steps", "horizon_steps")}
        return model
