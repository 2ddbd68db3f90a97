"""What a forecaster sees at one time: CGM history and Loop's effect timelines on a 5-min grid.

A forecast is made at an *origin* (the input's ``time_to_calculate_at``) for the 48 times
``origin + 5, 10, ..., 240`` min. :func:`rows_from_inputs` runs the Loop core (``update()``) once
per PyLoopKit input dictionary and keeps, as arrays:

``cgm_history``
    (N, 36) mg/dL at ``origin - 175, ..., origin`` min: the last reading at or before each
    grid time (the first reading for grid times before it).
``counteraction``
    (N, 36) mg/dL/5 min: Loop's insulin counteraction effect over the same grid.
``loop_prediction``
    (N, 48) mg/dL: Loop's own prediction at the horizons.
``insulin_effect``, ``carb_effect``
    (N, 48) mg/dL: the change of Loop's insulin and carb effects from the origin to each horizon.
``iob_u``, ``cob_g``
    (N,) insulin (U) and carbs (g) on board at the origin.
``target``
    (N, 48) mg/dL or None: the readings that followed (training and evaluation only).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..date import to_second, to_seconds
from ..errors import InvalidInputError, MissingDataError, Problem

STEP_MIN = 5
HORIZON_STEPS = 48
HISTORY_STEPS = 36
HORIZONS_MIN = STEP_MIN * np.arange(1, HORIZON_STEPS + 1)
HISTORY_OFFSETS_MIN = STEP_MIN * np.arange(-(HISTORY_STEPS - 1), 1)


@dataclass
class ForecastRows:
    """Forecast inputs (and optionally targets) for N origins; see the module docstring."""

    origin: np.ndarray
    cgm_history: np.ndarray
    counteraction: np.ndarray
    loop_prediction: np.ndarray
    insulin_effect: np.ndarray
    carb_effect: np.ndarray
    iob_u: np.ndarray
    cob_g: np.ndarray
    target: np.ndarray | None = None
    group: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.origin)

    def take(self, index) -> "ForecastRows":
        """The rows at ``index`` (indices or a boolean mask)."""
        return ForecastRows(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                               for f in fields(self)})

    @staticmethod
    def concat(parts: list["ForecastRows"]) -> "ForecastRows":
        """All rows of ``parts`` in order."""
        def join(name):
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)
        return ForecastRows(**{f.name: join(f.name) for f in fields(ForecastRows)})

    def save(self, path: str) -> None:
        """Write the rows to a ``.npz`` file."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        np.savez_compressed(path, **arrays)

    @staticmethod
    def load(path: str) -> "ForecastRows":
        """Rows written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return ForecastRows(**{f.name: data[f.name] if f.name in data.files else None
                                   for f in fields(ForecastRows)})


def _seconds(dates, origin_s: float) -> np.ndarray:
    """Seconds of ``dates`` relative to the origin."""
    return to_seconds(dates) - origin_s if len(dates) else np.zeros(0)


def _step_history(times_s: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Last value at or before each history grid time (first value before the first time)."""
    order = np.argsort(times_s, kind="stable")
    times_s, values = times_s[order], values[order]
    grid_s = 60.0 * HISTORY_OFFSETS_MIN
    index = np.searchsorted(times_s, grid_s, side="right") - 1
    return values[np.clip(index, 0, len(values) - 1)]


def _at_horizons(times_s: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A timeline linearly interpolated at the origin and the 48 horizons (held past its end)."""
    grid_s = 60.0 * np.concatenate([[0.0], HORIZONS_MIN])
    return np.interp(grid_s, times_s, values)


def origin_s(input_dict: dict) -> float:
    """The forecast origin of an input (``time_to_calculate_at``), seconds since 2001-01-01Z."""
    origin = input_dict.get("time_to_calculate_at")
    if origin is None:
        raise MissingDataError("the input has no time_to_calculate_at: a forecast needs its origin")
    return to_second(origin)


def row_from_output(input_dict: dict, output: dict) -> dict:
    """One row's arrays from an ``update()`` input and its output (see the module docstring)."""
    origin = origin_s(input_dict)
    glucose_s = _seconds(input_dict["glucose_dates"], origin)
    past = glucose_s <= 0
    if not past.any():
        raise MissingDataError("no glucose reading at or before the forecast origin (time_to_calculate_at)")
    glucose = np.asarray(input_dict["glucose_values"], dtype=np.float64)
    prediction = _at_horizons(_seconds(output["predicted_glucose_dates"], origin),
                              np.asarray(output["predicted_glucose_values"]))
    insulin = _at_horizons(_seconds(output["insulin_effect_dates"], origin), np.asarray(output["insulin_effect_values"]))
    carb_dates = output["carb_effect_dates"]
    carb = (_at_horizons(_seconds(carb_dates, origin), np.asarray(output["carb_effect_values"]))
            if len(carb_dates) else np.zeros(HORIZON_STEPS + 1))
    ends = output["counteraction_effect_end_times"]
    counteraction = (_step_history(_seconds(ends, origin), np.asarray(output["counteraction_effect_values"]))
                     if len(ends) else np.zeros(HISTORY_STEPS))
    return {
        "origin": origin,
        "cgm_history": _step_history(glucose_s[past], glucose[past]),
        "counteraction": counteraction,
        "loop_prediction": prediction[1:],
        "insulin_effect": insulin[1:] - insulin[0],
        "carb_effect": carb[1:] - carb[0],
        "iob_u": float(output["insulin_on_board"]),
        "cob_g": float(output["carbs_on_board"]),
    }


def rows_from_inputs(input_dicts: list[dict], targets: np.ndarray | None = None, group=None,
                     progress: bool = False) -> ForecastRows:
    """Run ``update()`` on each input dictionary and collect the forecast rows.

    Parameters
    ----------
    input_dicts : list of dict
        PyLoopKit input dictionaries, each with ``time_to_calculate_at`` (the origin).
    targets : array (N, 48) or None
        The readings that followed each origin (mg/dL), for training and evaluation.
    group : array (N,) or None
        A label per row (patient, seed, ...) kept for splitting.
    progress : bool
        Show a progress bar (tqdm).
    """
    from ..loop_data_manager import update

    if targets is not None:
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != (len(input_dicts), HORIZON_STEPS):
            raise InvalidInputError([Problem("targets", None, targets.shape,
                                             f"must have shape ({len(input_dicts)}, {HORIZON_STEPS})")])
    iterator = input_dicts
    if progress:
        from tqdm import tqdm
        iterator = tqdm(input_dicts, desc="Loop features", unit="row")
    rows = [row_from_output(d, update(d, prediction_source="loop")) for d in iterator]
    if not rows:
        raise InvalidInputError([Problem("input_dicts", None, [], "needs at least one input dictionary")])
    arrays = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    return ForecastRows(**arrays, target=targets, group=None if group is None else np.asarray(group))
