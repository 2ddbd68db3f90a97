"""Replay: run the Loop algorithm at every step over a history, as Loop would have run.

At each step time ``t`` only data known at ``t`` is used: glucose dated at or
before ``t``, doses started at or before ``t`` (as recorded; a dose still running
at ``t`` counts only up to ``t``, as in ``update()``, and the temp basal running at
``t`` becomes ``last_temporary_basal``), carb entries dated at or before ``t``. Each
step gives what ``update()`` gives on that data. The input is validated and converted
to arrays once; each step slices those arrays, and the counteraction effects are
computed once and reused while no dose acting on them is still running.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import glucose_math, insulin_math
from .date import ceil_to_grid, from_seconds, grid, to_second
from .dose import DoseType
from .input_validation import convert_glucose_units, glucose_is_stale, validate_input
from .insulin_models import model_from_setting
from .loop_data_manager import HISTORY_S, compute_effects, predict, recommend, value_at
from .dose_store import prepare_doses
from .loop_input import LoopInput, parse_input

HORIZONS_MIN = (30, 60, 120)
"""Prediction horizons reported per step (minutes after the step time)."""

COLUMNS = ("time", "glucose", "iob", "cob", "counteraction", "predicted_30", "predicted_60", "predicted_120",
           "temp_basal_rate", "temp_basal_duration", "bolus")
"""Per-step columns: time (datetime), latest glucose (mg/dL), IOB (U), COB (g), latest counteraction
(mg/dL/min), predictions at +30/60/120 min (mg/dL), recommended temp basal rate (U/h) and duration (min)
(None when Loop would not issue one), recommended bolus (U; None when no recommendation is possible)."""


def replay(input_dict: dict, start=None, end=None, step_minutes: float = 5.0, as_dataframe: bool | None = None):
    """Run the algorithm every ``step_minutes`` from ``start`` to ``end`` (inclusive).

    Parameters
    ----------
    input_dict : dict
        PyLoopKit input dictionary holding the whole history.
    start, end : datetime or ISO string, optional
        Defaults: one hour after the first glucose; ``time_to_calculate_at`` (or the last glucose).
    step_minutes : float
        Step between runs (minutes), > 0.
    as_dataframe : bool, optional
        Return a pandas DataFrame (default: when pandas is importable); else a dict of arrays.

    Returns
    -------
    dict of numpy arrays (or DataFrame) with :data:`COLUMNS`.
    """
    if not step_minutes > 0:
        raise ValueError(f"step_minutes must be > 0, got {step_minutes!r}")
    seconds: dict = {}
    validate_input(input_dict, seconds)
    inp = parse_input(convert_glucose_units(input_dict), seconds)
    if inp.glucose_s.size == 0:
        raise ValueError("replay needs glucose_dates/glucose_values")
    start_s = float(inp.glucose_s[0]) + 3600.0 if start is None else to_second(start)
    end_s = inp.now_s if end is None else to_second(end)
    times = np.arange(start_s, end_s + 1e-6, step_minutes * 60.0)
    table = _run_steps(inp, times)
    table["time"] = np.array(from_seconds(times, inp.tz), dtype=object)
    return _as_table(table, as_dataframe)


def _run_steps(inp: LoopInput, times: np.ndarray) -> dict:
    model = model_from_setting(list(inp.settings.model), inp.settings.insulin_delay)
    cache = history_counteraction(inp, model, float(times[0]) - HISTORY_S, float(times[-1]))
    n = times.size
    floats = {c: np.zeros(n) for c in ("glucose", "iob", "cob", "counteraction",
                                        "predicted_30", "predicted_60", "predicted_120")}
    objects = {c: np.full(n, None, dtype=object) for c in ("temp_basal_rate", "temp_basal_duration", "bolus")}
    for i, t in enumerate(times):
        step = known_at(inp, float(t), model, cache)
        if step is None:
            raise ValueError(f"no glucose at or before step {i} ({from_seconds([t])[0]})")
        _fill_step(step, model, i, floats, objects)
    return {**floats, **objects}


@dataclass(frozen=True)
class CounteractionCache:
    """Counteraction effects over the whole replay, computed once, with the reconciled doses' starts
    and running maximum of their ends (to know how far ``update()``'s insulin effect reaches)."""

    start_s: np.ndarray
    end_s: np.ndarray
    velocity: np.ndarray
    dose_start_s: np.ndarray
    dose_end_max_s: np.ndarray


def history_counteraction(inp: LoopInput, model, start_s: float, end_s: float) -> CounteractionCache:
    """Counteraction effects (mg/dL/min) over the whole replay, computed once (the cache).

    An interval between two glucose samples depends on the glucose and on the insulin delivered
    before its end; once every dose acting on it has ended, it is the same at every later step
    (LoopKit caches them the same way). :func:`step_counteraction` recomputes the recent ones.
    """
    doses = prepare_doses(inp.doses, inp.basal, start_s=start_s - model.effect_duration_min * 60.0, end_s=end_s)
    keep = (inp.glucose_s >= start_s) & (inp.glucose_s <= end_s)
    empty = np.empty(0)
    if len(doses) == 0 or np.count_nonzero(keep) < 2:
        return CounteractionCache(empty, empty, empty, doses.start_s, np.maximum.accumulate(doses.end_s))
    effect_dates = grid(start_s, float(np.max(doses.end_s)) + model.effect_duration_min * 60.0)
    effect = insulin_math.glucose_effects(doses, model, inp.sensitivity, effect_dates)
    ice = glucose_math.counteraction_effects((inp.glucose_s[keep], inp.glucose_mgdl[keep]), effect_dates, effect)
    return CounteractionCache(*ice, doses.start_s, np.maximum.accumulate(doses.end_s))


def step_counteraction(inp: LoopInput, model, t: float, cache: CounteractionCache):
    """What ``update()`` computes at ``t`` from the doses started by ``t``: the counteraction
    effects, and the doses it needs (reconciled, annotated, cut at ``t``) from one insulin action
    before the earliest date they are needed for.

    Without a dose running at ``t``, the effects are the cached intervals of the last 24 h that the
    insulin effect at ``t`` reaches (it ends one action after the last dose). Otherwise the cached
    intervals are reused up to the start of the earliest running dose and the later ones recomputed
    from the doses known at ``t``, from the sample that ended the last reused interval, so the
    sample pairing is the cache's.
    """
    duration_s = model.effect_duration_min * 60.0
    window_s = t - HISTORY_S
    d = inp.doses
    known = d.start_s <= t
    running = known & (d.end_s > t)
    if not np.any(known & (d.end_s >= window_s - duration_s)):
        kept, first_s = (np.empty(0), np.empty(0), np.empty(0)), t
    else:
        if running.any():
            reach_s, pending_s = t, float(np.min(d.start_s[running]))
        else:
            last = int(np.searchsorted(cache.dose_start_s, t, side="right")) - 1
            reach_s = float(ceil_to_grid(cache.dose_end_max_s[last] + duration_s)) if last >= 0 else -np.inf
            pending_s = t
        keep = (cache.end_s <= min(pending_s, reach_s)) & (cache.start_s >= window_s)
        kept = (cache.start_s[keep], cache.end_s[keep], cache.velocity[keep])
        first_s = float(kept[1][-1]) if keep.any() and running.any() else t
    from_s = min(first_s, t) - duration_s
    doses = d.take(_dose_window(d, t, from_s))
    prepared = prepare_doses(doses, inp.basal, start_s=from_s, end_s=t)
    lo = int(np.searchsorted(inp.glucose_s, first_s, side="left"))
    hi = int(np.searchsorted(inp.glucose_s, t, side="right"))
    if first_s >= t or hi - lo < 2:
        return kept, doses, prepared
    dates = grid(first_s, t)
    effect = insulin_math.glucose_effects(prepared, model, inp.sensitivity, dates)
    recent = glucose_math.counteraction_effects((inp.glucose_s[lo:hi], inp.glucose_mgdl[lo:hi]), dates, effect)
    return tuple(np.concatenate((a, b)) for a, b in zip(kept, recent)), doses, prepared


def _fill_step(step: LoopInput, model, i: int, floats: dict, objects: dict) -> None:
    effects = compute_effects(step, model, iob_timeline=False)
    prediction = predict(step, effects, model, for_bolus=False)
    floats["glucose"][i] = step.glucose_mgdl[-1]
    floats["iob"][i] = effects.iob_now_u
    floats["cob"][i] = value_at(effects.cob, step.now_s)
    floats["counteraction"][i] = effects.counteraction[2][-1] if effects.counteraction[2].size else 0.0
    for h in HORIZONS_MIN:
        floats[f"predicted_{h}"][i] = np.interp(step.now_s + h * 60.0, *prediction)
    if glucose_is_stale(float(step.glucose_s[-1]), step.now_s):
        return
    rec = recommend(step, effects, model, prediction)
    if rec["temp_basal"] is not None:
        objects["temp_basal_rate"][i], objects["temp_basal_duration"][i] = rec["temp_basal"][:2]
    objects["bolus"][i] = rec["bolus"][0] if rec["bolus"] is not None else None


def known_at(inp: LoopInput, t: float, model, cache) -> LoopInput | None:
    """The part of ``inp`` known at time ``t`` (see module docstring); None before the first glucose.

    Doses started by ``t`` are kept as recorded (``update()`` cuts basal-like ones at ``t``); the
    counteraction effects come from the replay's ``cache`` (:func:`step_counteraction`).
    """
    g_hi = int(np.searchsorted(inp.glucose_s, t, side="right"))
    if g_hi == 0:
        return None
    horizon = t - HISTORY_S - 2 * model_span_s(inp)
    g_lo = int(np.searchsorted(inp.glucose_s, horizon, side="left"))
    d = inp.doses
    counteraction, doses, prepared = step_counteraction(inp, model, t, cache)
    c_keep = (inp.carb_s <= t) & (inp.carb_s >= horizon)
    return replace(inp, now_s=t,
                   glucose_s=inp.glucose_s[g_lo:g_hi], glucose_mgdl=inp.glucose_mgdl[g_lo:g_hi],
                   glucose_dates=None if inp.glucose_dates is None else inp.glucose_dates[g_lo:g_hi],
                   doses=doses, carb_s=inp.carb_s[c_keep], carb_g=inp.carb_g[c_keep],
                   carb_absorption_min=inp.carb_absorption_min[c_keep],
                   last_temp_basal=_running_temp_basal(d, t),
                   injected={"counteraction": counteraction, "prepared_doses": prepared})


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

