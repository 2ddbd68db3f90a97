"""Replay: run the Loop algorithm at every step over a history, as Loop would have run.

At each step time ``t`` only data known at ``t`` is used: glucose dated at or
before ``t``, doses started at or before ``t`` (as recorded; a dose still running
at ``t`` counts only up to ``t``, as in ``update()``, and the temp basal running at
``t`` becomes ``last_temporary_basal``), carb entries dated at or before ``t``.
Effects a report carries precomputed (its counteraction, ``*_effect_*`` keys) are
not used: each step computes them from the data known then. The input is validated
and converted to arrays once; each step slices those arrays to what the algorithm
reads at ``t`` and runs the array core (:func:`pyloopkit.loop_data_manager.core`), so
every row is what ``update()`` gives on the data known at that time.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .date import from_seconds, to_second
from .dose import DoseType
from .errors import InvalidInputError, Problem
from .input_validation import convert_glucose_units, glucose_is_stale, validate_input
from .loop_data_manager import HISTORY_S, core, model_for, value_at
from .loop_input import LoopInput, parse_input

HORIZONS_MIN = (30, 60, 120)
"""Prediction horizons reported per step (minutes after the step time)."""

MAX_STEPS = 100_000
"""Default bound on the number of steps of one replay (347 days at 5 min)."""

COLUMNS = ("time", "glucose", "iob", "cob", "counteraction", "predicted_30", "predicted_60", "predicted_120",
           "temp_basal_rate", "temp_basal_duration", "bolus")
"""Per-step columns: time (datetime), latest glucose (mg/dL), IOB (U), COB (g), latest counteraction
(mg/dL/min), predictions at +30/60/120 min (mg/dL), recommended temp basal rate (U/h) and duration (min)
(None when Loop would not issue one), recommended bolus (U; None when no recommendation is possible)."""


def replay(input_dict: dict, start=None, end=None, step_minutes: float = 5.0, as_dataframe: bool | None = None,
           max_steps: int = MAX_STEPS):
    """Run the algorithm every ``step_minutes`` from ``start`` to ``end`` (inclusive).

    Parameters
    ----------
    input_dict : dict
        PyLoopKit input dictionary holding the whole history.
    start, end : datetime or ISO string, optional
        Defaults: one hour after the first glucose (at most ``end``); ``time_to_calculate_at``
        (or the last glucose). ``start`` must not be after ``end``, nor before the first glucose.
    step_minutes : float
        Step between runs (minutes), > 0.
    as_dataframe : bool, optional
        Return a pandas DataFrame (default: when pandas is importable); else a dict of arrays.
    max_steps : int
        Refuse replays of more steps than this (each step costs about one ``update()``).

    Returns
    -------
    dict of numpy arrays (or DataFrame) with :data:`COLUMNS`.

    Raises
    ------
    InvalidInputError
        Invalid input dictionary, or ``start``/``end``/``step_minutes``/``max_steps`` that are not
        usable (each named with its value and the reason).
    """
    _check_numbers(step_minutes, max_steps)
    seconds: dict = {}
    validate_input(input_dict, seconds)
    inp = parse_input(convert_glucose_units(input_dict), seconds)
    if inp.glucose_s.size == 0:
        raise InvalidInputError([Problem("glucose_values", None, [], "replay needs at least one glucose reading")])
    start_s, end_s = _window(inp, start, end)
    count = math.floor((end_s - start_s) / (step_minutes * 60.0) + 1e-9) + 1
    if count > max_steps:
        raise InvalidInputError([Problem("step_minutes", None, step_minutes,
                                         f"gives {count} steps from start to end, more than max_steps={max_steps}")])
    times = start_s + step_minutes * 60.0 * np.arange(count)
    table = _run_steps(inp, times)
    table["time"] = np.array(from_seconds(times, inp.tz), dtype=object)
    return _as_table(table, as_dataframe)


def _check_numbers(step_minutes, max_steps) -> None:
    problems = []
    if isinstance(step_minutes, bool) or not isinstance(step_minutes, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(step_minutes) and step_minutes > 0):
        problems.append(Problem("step_minutes", None, step_minutes, "must be a finite number of minutes > 0"))
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        problems.append(Problem("max_steps", None, max_steps, "must be an integer >= 1"))
    if problems:
        raise InvalidInputError(problems)


def _time(name: str, value, problems: list) -> float | None:
    try:
        seconds = to_second(value)
    except (TypeError, ValueError, OverflowError) as e:
        problems.append(Problem(name, None, value, f"is not a date ({e})"))
        return None
    if not np.isfinite(seconds):
        problems.append(Problem(name, None, value, "is not a date"))
        return None
    return seconds


def _window(inp: LoopInput, start, end) -> tuple[float, float]:
    """``(start_s, end_s)`` of the replay, checked against each other and the glucose history."""
    problems = []
    end_s = inp.now_s if end is None else _time("end", end, problems)
    start_s = None if start is None else _time("start", start, problems)
    if problems:
        raise InvalidInputError(problems)
    first_s = float(inp.glucose_s[0])
    if start_s is None:
        start_s = min(first_s + 3600.0, end_s)
    if end_s < start_s:
        problems.append(Problem("end", None, end, f"is before start ({from_seconds([start_s], inp.tz)[0]})"))
    if start_s < first_s:
        problems.append(Problem("start", None, start, f"is before the first glucose reading "
                                                      f"({from_seconds([first_s], inp.tz)[0]})"))
    if problems:
        raise InvalidInputError(problems)
    return start_s, end_s


def _run_steps(inp: LoopInput, times: np.ndarray) -> dict:
    model = model_for(inp.settings)
    n = times.size
    floats = {c: np.zeros(n) for c in ("glucose", "iob", "cob", "counteraction",
                                        "predicted_30", "predicted_60", "predicted_120")}
    objects = {c: np.full(n, None, dtype=object) for c in ("temp_basal_rate", "temp_basal_duration", "bolus")}
    for i, t in enumerate(times):
        _fill_step(known_at(inp, float(t), model), model, i, floats, objects)
    return {**floats, **objects}


def _fill_step(step: LoopInput, model, i: int, floats: dict, objects: dict) -> None:
    result = core(step, model, iob_timeline=False)
    effects, prediction = result.effects, result.prediction
    floats["glucose"][i] = step.glucose_mgdl[-1]
    floats["iob"][i] = effects.iob_now_u
    floats["cob"][i] = value_at(effects.cob, step.now_s)
    floats["counteraction"][i] = effects.counteraction[2][-1] if effects.counteraction[2].size else 0.0
    for h in HORIZONS_MIN:
        floats[f"predicted_{h}"][i] = np.interp(step.now_s + h * 60.0, *prediction)
    if glucose_is_stale(float(step.glucose_s[-1]), step.now_s):
        return
    rec = result.recommendations
    if rec["temp_basal"] is not None:
        objects["temp_basal_rate"][i], objects["temp_basal_duration"][i] = rec["temp_basal"][:2]
    objects["bolus"][i] = rec["bolus"][0] if rec["bolus"] is not None else None


def known_at(inp: LoopInput, t: float, model) -> LoopInput:
    """The part of ``inp`` known at time ``t`` (see module docstring), bounded to what the algorithm
    reads at ``t``: glucose, carbs and doses of the last 24 h plus two model spans (the last glucose
    always kept), the doses reconciliation needs for them, and no precomputed effects."""
    g_hi = int(np.searchsorted(inp.glucose_s, t, side="right"))
    horizon = t - HISTORY_S - 2 * model_span_s(inp)
    g_lo = min(int(np.searchsorted(inp.glucose_s, horizon, side="left")), g_hi - 1)
    d = inp.doses
    from_s = t - HISTORY_S - model.effect_duration_min * 60.0
    c_keep = (inp.carb_s <= t) & (inp.carb_s >= horizon)
    return replace(inp, now_s=t,
                   glucose_s=inp.glucose_s[g_lo:g_hi], glucose_mgdl=inp.glucose_mgdl[g_lo:g_hi],
                   glucose_dates=None if inp.glucose_dates is None else inp.glucose_dates[g_lo:g_hi],
                   doses=d.take(_dose_window(d, t, from_s)), carb_s=inp.carb_s[c_keep], carb_g=inp.carb_g[c_keep],
                   carb_absorption_min=inp.carb_absorption_min[c_keep],
                   last_temp_basal=_running_temp_basal(d, t), injected={})


def _dose_window(d, t: float, from_s: float) -> np.ndarray:
    """Mask of the doses started by ``t`` that reconciliation needs for the doses acting after
    ``from_s``: every dose from the earliest start among those acting then, and an earlier suspend
    still unresumed at that start (it moves a basal started during it to the resume)."""
    known = d.start_s <= t
    acting = known & (d.end_s >= from_s)
    if not acting.any():
        return acting
    first_s = float(np.min(d.start_s[acting]))
    earlier = known & (d.start_s < first_s)
    suspends = np.flatnonzero(earlier & (d.type == int(DoseType.SUSPEND)))
    if suspends.size:
        last = suspends[np.argmax(d.start_s[suspends])]
        resumed = np.any(earlier & (d.type == int(DoseType.RESUME)) & (d.start_s >= d.start_s[last]))
        if not resumed:
            first_s = float(d.start_s[last])
    return known & (d.start_s >= first_s)


def model_span_s(inp: LoopInput) -> float:
    """A bound on how far back data can still matter (s): the longest of insulin action and carb absorption."""
    m = inp.settings.model
    dia_min = m[0] * 60.0 if len(m) == 1 else m[0]
    longest_carb_min = max(inp.settings.default_absorption_times[2],
                           float(inp.carb_absorption_min.max()) if inp.carb_absorption_min.size else 0.0)
    return 60.0 * max(dia_min + inp.settings.insulin_delay, 2 * longest_carb_min)


def _running_temp_basal(d, t: float):
    """The last temp basal started at or before ``t`` and still running at ``t``, as Loop's last temp basal."""
    idx = np.flatnonzero((d.type == DoseType.TEMP_BASAL) & (d.start_s <= t))
    if idx.size == 0:
        return None
    j = idx[np.argmax(d.start_s[idx])]
    if d.end_s[j] <= t:
        return None
    return (DoseType.TEMP_BASAL, float(d.start_s[j]), float(d.end_s[j]), float(d.value[j]))


def _as_table(table: dict, as_dataframe: bool | None):
    ordered = {c: table[c] for c in COLUMNS}
    if as_dataframe is False:
        return ordered
    try:
        import pandas as pd
    except ImportError:
        if as_dataframe:
            raise ImportError("as_dataframe=True needs pandas: pip install pandas") from None
        return ordered
    return pd.DataFrame(ordered)

