"""Insulin pumps of simglucose's ``pump_params.csv`` (Cozmo, Insulet): increments and limits.

A requested basal rate (U/h) is rounded to the nearest ``basal_increment_u_per_h``
and limited to ``[basal_min_u_per_h, basal_max_u_per_h]``; a requested bolus (U)
likewise with the bolus increment and limits. The CSV's numbers are read in
these natural units (Insulet: 0.05 U/h and 0.05 U steps, at most 30 U/h and
30 U), which are the devices' specifications. simglucose 0.2.11 instead applies
them to rates in pmol/min (``U/min * 6000``), which makes its increment
0.05/6000 U/min and its limits 30 U/min; we deviate on purpose. What a pump
delivers is reported by the simulator (``StepResult.insulin_u``), so limits
never act silently.
"""
from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.simulation.patients import simglucose_params_file
from pyloopkit.simulation.model import inline_jit


@dataclass(frozen=True)
class Pump:
    """Increments and limits of an insulin pump (U/h for basal, U for bolus)."""

    name: str
    basal_increment_u_per_h: float
    basal_min_u_per_h: float
    basal_max_u_per_h: float
    bolus_increment_u: float
    bolus_min_u: float
    bolus_max_u: float

    def __post_init__(self):
        problems = [Problem(key, None, getattr(self, key), "must be finite and >= 0")
                    for key in ("basal_increment_u_per_h", "basal_min_u_per_h", "bolus_increment_u", "bolus_min_u")
                    if not (np.isfinite(getattr(self, key)) and getattr(self, key) >= 0)]
        problems += [Problem(f"{kind}_max{unit}", None, getattr(self, f"{kind}_max{unit}"),
                             f"must be >= {kind}_min{unit}")
                     for kind, unit in (("basal", "_u_per_h"), ("bolus", "_u"))
                     if not getattr(self, f"{kind}_max{unit}") >= getattr(self, f"{kind}_min{unit}")]
        if problems:
            raise InvalidInputError(problems)

    @classmethod
    def from_name(cls, name: str) -> "Pump":
        """The pump ``name`` of simglucose's ``pump_params.csv`` (``"Insulet"`` or ``"Cozmo"``)."""
        rows = _pump_rows()
        if name not in rows:
            raise InvalidInputError([Problem("pump", None, name, f"unknown pump; expected one of {sorted(rows)}")])
        row = {key: float(value) for key, value in rows[name].items() if key != "Name"}
        return cls(name=name, basal_increment_u_per_h=row["inc_basal"], basal_min_u_per_h=row["min_basal"],
                   basal_max_u_per_h=row["max_basal"], bolus_increment_u=row["inc_bolus"],
                   bolus_min_u=row["min_bolus"], bolus_max_u=row["max_bolus"])

    @classmethod
    def ideal(cls) -> "Pump":
        """A pump that delivers any non-negative request exactly."""
        return cls("ideal", 0.0, 0.0, np.inf, 0.0, 0.0, np.inf)

    def as_array(self) -> np.ndarray:
        """``[basal inc, min, max (U/h), bolus inc, min, max (U)]`` for the kernels."""
        return np.array([self.basal_increment_u_per_h, self.basal_min_u_per_h, self.basal_max_u_per_h,
                         self.bolus_increment_u, self.bolus_min_u, self.bolus_max_u])

    def basal(self, rate_u_per_h) -> np.ndarray:
        """Delivered basal rate (U/h) for requested non-negative rates (U/h)."""
        return _quantize_numpy(_checked("basal_u_per_h", rate_u_per_h), self.basal_increment_u_per_h,
                        self.basal_min_u_per_h, self.basal_max_u_per_h)

    def bolus(self, amount_u) -> np.ndarray:
        """Delivered bolus (U) for requested non-negative amounts (U)."""
        return _quantize_numpy(_checked("bolus_u", amount_u), self.bolus_increment_u, self.bolus_min_u,
                               self.bolus_max_u)


def _checked(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(array) & (array >= 0)))
    if bad.size:
        raise InvalidInputError([Problem(name, int(k), float(array.flat[k]), "must be finite and >= 0")
                                 for k in bad[:10]])
    return array


@inline_jit
def quantize(value, increment, low, high):
    """Round ``value`` to the nearest multiple of ``increment`` (0: none), then limit to [low, high]."""
    steps = np.round(value / (increment + 1.0 * (increment == 0)))
    rounded = (1.0 * (increment > 0)) * steps * increment + (1.0 * (increment == 0)) * value
    return np.minimum(np.maximum(rounded, low), high)


_quantize_numpy = getattr(quantize, "py_func", quantize)


@functools.lru_cache(maxsize=1)
def _pump_rows() -> dict:
    text = simglucose_params_file("pump_params.csv")
    return {row["Name"]: row for row in csv.DictReader(io.StringIO(text))}
