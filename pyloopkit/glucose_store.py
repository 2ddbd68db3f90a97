"""Glucose samples as a struct of arrays, validated, sorted and filtered to windows.

Mirrors what LoopKit's ``GlucoseStore`` hands to the glucose math: samples in
chronological order with their provenance (the source app or device), the
display-only flag (calibrations and other samples that must not drive the
algorithm) and the user-entered flag (fingersticks typed in by hand).
Times are seconds since the reference date (:mod:`pyloopkit.date`), values mg/dL.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .date import overlaps
from .errors import Problem, raise_if

MOMENTUM_DATA_INTERVAL_S = 900.0
"""LoopKit ``GlucoseStore.momentumDataInterval``: momentum uses the samples of the last 15 min."""

DEFAULT_PROVENANCE = "pyloopkit"


def _bool_array(values, n: int, field: str) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=bool)
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise_if([Problem(field, None, arr.shape, f"expected {n} values to match the glucose dates")])
    return arr.astype(bool)


@dataclass(frozen=True)
class GlucoseArrays:
    """Index-matched glucose samples in chronological order.

    Attributes
    ----------
    date_s : float array, seconds since the reference date, non-decreasing
    value_mgdl : float array, glucose in mg/dL (> 0)
    provenance : object array of source identifiers (or an integer code array)
    is_display_only : bool array, True for calibrations / display-only samples
    was_user_entered : bool array, True for manually entered samples
    """

    date_s: np.ndarray
    value_mgdl: np.ndarray
    provenance: np.ndarray
    is_display_only: np.ndarray
    was_user_entered: np.ndarray

    @classmethod
    def from_arrays(cls, date_s, value_mgdl, provenance=None, is_display_only=None,
                    was_user_entered=None) -> "GlucoseArrays":
        """Validate and sort (stably, by date) index-matched sample arrays.

        Raises :class:`~pyloopkit.errors.InvalidInputError` naming every non-finite
        date, every non-finite or non-positive value and any length mismatch.
        """
        dates = np.asarray(date_s, dtype=float).reshape(-1)
        values = np.asarray(value_mgdl, dtype=float).reshape(-1)
        n = dates.size
        problems = []
        if values.size != n:
            problems.append(Problem("glucose.value_mgdl", None, values.size,
                                    f"expected {n} values to match the glucose dates"))
        raise_if(problems)
        problems += [Problem("glucose.date_s", int(i), dates[i], "not a finite time")
                     for i in np.flatnonzero(~np.isfinite(dates))]
        problems += [Problem("glucose.value_mgdl", int(i), values[i], "glucose must be a finite value > 0 mg/dL")
                     for i in np.flatnonzero(~(np.isfinite(values) & (values > 0)))]
        if provenance is None:
            prov = np.full(n, DEFAULT_PROVENANCE, dtype=object)
        elif isinstance(provenance, str):
            prov = np.full(n, provenance, dtype=object)
        else:
            prov = np.asarray(provenance)
            if prov.dtype.kind not in "iu":
                prov = prov.astype(object)
            if prov.shape != (n,):
                problems.append(Problem("glucose.provenance", None, prov.shape,
                                        f"expected {n} values to match the glucose dates"))
        raise_if(problems)
        display = _bool_array(is_display_only, n, "glucose.is_display_only")
        user = _bool_array(was_user_entered, n, "glucose.was_user_entered")
        order = np.argsort(dates, kind="stable")
        return cls(dates[order], values[order], prov[order], display[order], user[order])

    @classmethod
    def of_validated(cls, date_s: np.ndarray, value_mgdl: np.ndarray) -> "GlucoseArrays":
        """Samples from one source, none display-only nor user-entered, as float arrays already
        validated and in strictly increasing date order (the Loop core's input): no checks, no copy."""
        n = date_s.size
        return cls(date_s, value_mgdl, np.zeros(n, dtype=np.int8), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))

    def __len__(self) -> int:
        return int(self.date_s.size)

    def take(self, index) -> "GlucoseArrays":
        """The samples at ``index`` (an index array or boolean mask), order kept."""
        return GlucoseArrays(self.date_s[index], self.value_mgdl[index], self.provenance[index],
                             self.is_display_only[index], self.was_user_entered[index])

    def between(self, start_s: float | None = None, end_s: float | None = None) -> "GlucoseArrays":
        """Samples with ``start_s <= date <= end_s`` (either bound optional)."""
        return self.take(overlaps(self.date_s, self.date_s, start_s, end_s))


def as_glucose(glucose) -> GlucoseArrays:
    """Accept a :class:`GlucoseArrays` or a ``(dates_s, values_mgdl)`` pair."""
    if isinstance(glucose, GlucoseArrays):
        return glucose
    dates, values = glucose
    return GlucoseArrays.from_arrays(dates, values)


def momentum_samples(glucose, data_interval_s: float = MOMENTUM_DATA_INTERVAL_S,
                     now_s: float | None = None) -> GlucoseArrays:
    """The samples LoopKit feeds to the momentum effect: those dated at or after
    ``now_s - data_interval_s`` (``now_s`` defaults to the latest sample's date)."""
    g = as_glucose(glucose)
    if len(g) == 0:
        return g
    reference_s = g.date_s[-1] if now_s is None else now_s
    return g.between(reference_s - data_interval_s, None)
