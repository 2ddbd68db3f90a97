"""CGM sensor models of simglucose's ``sensor_params.csv`` (Dexcom, GuardianRT, Navigator).

The noise follows simglucose 0.2.11: a Gaussian AR(1) sequence every 15 minutes,
``e_0 = w_0``, ``e_k = PACF * (e_{k-1} + w_k)`` with ``w ~ N(0, 1)``, mapped through
the Johnson SU transform ``xi + lambda * sinh((e - gamma) / delta)`` (mg/dL), and
interpolated by a not-a-knot cubic spline in blocks of ten 15-minute intervals
(each block starting at the last value of the previous one) to the sensor's
sample time. Sample ``j`` of the noise sequence is the ``j``-th value simglucose's
generator yields (the spline at ``(j mod S + 1) * sample_time`` within its block,
``S = floor(150 / sample_time)``). A reading is ``clip(BG + noise, min, max)``,
taken every ``sample_time`` minutes and held in between.

Each batch member has its own random stream (one :class:`numpy.random.Generator`
per member), so a patient's noise does not depend on the rest of the batch.
"""
from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.simulation.patients import simglucose_params_file

_BLOCK_INTERVALS = 10
_MODEL_SAMPLE_MIN = 15


@dataclass(frozen=True)
class CGMSensor:
    """A CGM model: noise parameters, sample time (min) and reading limits (mg/dL)."""

    name: str
    pacf: float
    gamma: float
    lam: float
    delta: float
    xi: float
    sample_time_min: int
    min_mg_dl: float
    max_mg_dl: float

    def __post_init__(self):
        problems = []
        if not (float(self.sample_time_min).is_integer() and self.sample_time_min >= 1):
            problems.append(Problem("sample_time_min", None, self.sample_time_min,
                                    "must be a whole number of minutes >= 1"))
        if not self.min_mg_dl < self.max_mg_dl:
            problems.append(Problem("min_mg_dl", None, self.min_mg_dl, f"must be below max_mg_dl={self.max_mg_dl}"))
        if not self.delta > 0:
            problems.append(Problem("delta", None, self.delta, "must be > 0"))
        if problems:
            raise InvalidInputError(problems)
        object.__setattr__(self, "sample_time_min", int(self.sample_time_min))

    @classmethod
    def from_name(cls, name: str) -> "CGMSensor":
        """The sensor ``name`` of simglucose's ``sensor_params.csv`` (e.g. ``"Dexcom"``)."""
        rows = _sensor_rows()
        if name not in rows:
            raise InvalidInputError([Problem("sensor", None, name, f"unknown sensor; expected one of {sorted(rows)}")])
        row = rows[name]
        return cls(name=name, pacf=float(row["PACF"]), gamma=float(row["gamma"]), lam=float(row["lambda"]),
                   delta=float(row["delta"]), xi=float(row["xi"]), sample_time_min=int(float(row["sample_time"])),
                   min_mg_dl=float(row["min"]), max_mg_dl=float(row["max"]))

    @property
    def samples_per_block(self) -> int:
        """Noise samples per 150-minute spline block."""
        return int(np.floor(_BLOCK_INTERVALS * _MODEL_SAMPLE_MIN / self.sample_time_min))

    def johnson(self, e: np.ndarray) -> np.ndarray:
        """Johnson SU transform of the Gaussian AR(1) values ``e`` (mg/dL)."""
        return self.xi + self.lam * np.sinh((e - self.gamma) / self.delta)

    def noise_stream(self, seeds) -> "NoiseStream":
        """A per-member noise stream; ``seeds`` is one ``SeedSequence`` (or int) per member."""
        return NoiseStream(self, [np.random.default_rng(seed) for seed in seeds])

    def noise(self, seeds, n_samples: int) -> np.ndarray:
        """The first ``n_samples`` noise values (mg/dL) of each member, shape (len(seeds), n_samples)."""
        return self.noise_stream(seeds).next(n_samples)


@functools.lru_cache(maxsize=1)
def _sensor_rows() -> dict:
    text = simglucose_params_file("sensor_params.csv")
    return {row["Name"]: row for row in csv.DictReader(io.StringIO(text))}


@functools.lru_cache(maxsize=16)
def _spline_matrix(sample_time_min: int) -> np.ndarray:
    """(S, 11) matrix mapping a block's 11 values at 0, 15, ..., 150 min to its S returned samples."""
    from scipy.interpolate import make_interp_spline

    knots = np.arange(_BLOCK_INTERVALS + 1) * float(_MODEL_SAMPLE_MIN)
    n_samples = int(np.floor(_BLOCK_INTERVALS * _MODEL_SAMPLE_MIN / sample_time_min))
    times = np.arange(1, n_samples + 1) * float(sample_time_min)
    return make_interp_spline(knots, np.eye(_BLOCK_INTERVALS + 1), k=3)(times)


class NoiseStream:
    """Continuing CGM noise sequences for a batch, generated block by block.

    ``generators``: one object per member with a ``standard_normal(size)`` method
    (a :class:`numpy.random.Generator`), drawn from in order.
    """

    def __init__(self, sensor: CGMSensor, generators):
        self.sensor = sensor
        self._generators = list(generators)
        self._e = None
        self._last_value = None
        self._pending = np.empty((len(self._generators), 0))

    def _blocks(self, n_blocks: int) -> np.ndarray:
        sensor = self.sensor
        first = self._e is None
        n_new = _BLOCK_INTERVALS * n_blocks + int(first)
        w = np.array([g.standard_normal(n_new) for g in self._generators]).reshape(len(self._generators), n_new)
        e = np.empty_like(w)
        previous = w[:, 0] if first else sensor.pacf * (self._e + w[:, 0])
        e[:, 0] = previous
        for k in range(1, n_new):
            previous = sensor.pacf * (previous + w[:, k])
            e[:, k] = previous
        values = sensor.johnson(e)
        grid = values if first else np.concatenate([self._last_value[:, None], values], axis=1)
        self._e, self._last_value = e[:, -1], values[:, -1]
        windows = np.stack([grid[:, b * _BLOCK_INTERVALS: (b + 1) * _BLOCK_INTERVALS + 1]
                            for b in range(n_blocks)], axis=1)
        return (windows @ _spline_matrix(sensor.sample_time_min).T).reshape(len(self._generators), -1)

    def next(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` noise values (mg/dL) of every member, shape (n, n_samples)."""
        missing = n_samples - self._pending.shape[1]
        if missing > 0:
            n_blocks = -(-missing // self.sensor.samples_per_block)
            self._pending = np.concatenate([self._pending, self._blocks(n_blocks)], axis=1)
        out, self._pending = self._pending[:, :n_samples], self._pending[:, n_samples:]
        return out
