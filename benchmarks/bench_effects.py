"""Benchmarks of the effect timelines Loop recomputes at every ``update()``.

Run with ``python benchmarks/bench_effects.py``. Each figure is the median of repeated runs
(``time.perf_counter``) after one warm-up call.

* insulin: the insulin effect timeline (mg/dL, 5-minute grid) of a 24 h history of 288 five-minute
  temp basals plus 4 boluses, exponential adult model: the effect math alone on prepared doses, and
  raw history through :func:`pyloopkit.dose_store.prepare_doses` (reconcile, annotate) plus the
  effect math, which is what PyLoopKit's ``get_glucose_effects`` does; the IOB timeline of the same
  doses; then 72 to 576 temp basals over the same day (shorter and denser as their number grows)
  with a least-squares line to show the linear scaling.
* carbs: :func:`bench_carbs`, the carb effects and COB of 4 meals with dynamic absorption.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from pyloopkit.date import GRID_S, grid
from pyloopkit.dose import DoseArrays, DoseType
from pyloopkit.dose_store import prepare_doses
from pyloopkit.insulin_math import effect_dates, glucose_effects, insulin_on_board
from pyloopkit.insulin_models import PRESETS
from pyloopkit.schedule import DailySchedule

RUNS = 50
DAY_S = 86400.0
START_S = 700_000_000.0  # 2023-03-08, a multiple of 300 s: doses start on the grid plus 17 s below


def median_ms(function, runs: int = RUNS) -> float:
    """Median wall time of ``function()`` in milliseconds over ``runs`` calls (after one warm-up)."""
    function()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


BASAL = DailySchedule.from_lists(["00:00", "06:00", "12:00", "20:00"], [0.8, 1.1, 0.9, 1.0])
SENSITIVITY = DailySchedule.from_lists(["00:00", "08:00", "20:00"], [45.0, 40.0, 50.0])


def raw_history(n_temp_basals: int, n_boluses: int = 4, seed: int = 0) -> DoseArrays:
    """``n_temp_basals`` temp basals evenly spread over 24 h, each lasting ``min(5 min, 24 h / n)``
    (so all are momentary doses, one slice each), plus ``n_boluses`` boluses; unreconciled."""
    rng = np.random.default_rng(seed)
    step_s = DAY_S / n_temp_basals
    starts = START_S + 17.0 + step_s * np.arange(n_temp_basals)
    rates = np.round(rng.uniform(0.0, 3.0, n_temp_basals) * 20.0) / 20.0
    bolus_s = START_S + DAY_S * (np.arange(n_boluses) + 0.5) / n_boluses
    types = [DoseType.TEMP_BASAL] * n_temp_basals + [DoseType.BOLUS] * n_boluses
    return DoseArrays.from_lists(types, np.concatenate((starts, bolus_s)),
                                 np.concatenate((starts + min(GRID_S, step_s), bolus_s)),
                                 np.concatenate((rates, rng.uniform(1.0, 6.0, n_boluses))))


def bench_insulin() -> None:
    model = PRESETS["adult"]
    raw = raw_history(288)
    doses = prepare_doses(raw, BASAL, start_s=None, end_s=None)
    dates = effect_dates(doses, model)
    effect_ms = median_ms(lambda: glucose_effects(doses, model, SENSITIVITY, dates))

    def prepared_and_effect():
        prepared = prepare_doses(raw, BASAL, start_s=None, end_s=None)
        return glucose_effects(prepared, model, SENSITIVITY, effect_dates(prepared, model))

    full_ms = median_ms(prepared_and_effect)
    iob_dates_s = grid(START_S, START_S + DAY_S + model.effect_duration_min * 60.0)
    iob_ms = median_ms(lambda: insulin_on_board(doses, model, iob_dates_s))
    print(f"insulin effect timeline, 24 h of 288 five-minute temp basals + 4 boluses, {dates.size} dates, "
          f"median of {RUNS} runs:")
    print(f"  effect math on prepared doses:             {effect_ms:7.3f} ms")
    print(f"  prepare_doses (reconcile+annotate) + math: {full_ms:7.3f} ms")
    print(f"  IOB timeline, same doses, {iob_dates_s.size} dates:      {iob_ms:7.3f} ms")
    print("scaling in the number of doses (effect math, same day and grid):")
    timings = []
    for n in (72, 144, 288, 576):
        doses = prepare_doses(raw_history(n), BASAL, start_s=None, end_s=None)
        dates = effect_dates(doses, model)
        ms = median_ms(lambda: glucose_effects(doses, model, SENSITIVITY, dates))
        timings.append((n + 4, ms))
        print(f"  {n:4d} temp basals + 4 boluses: median {ms:7.3f} ms ({1000.0 * ms / (n + 4):5.2f} us per dose)")
    slope, intercept = np.polyfit(*np.array(timings).T, 1)
    print(f"  least-squares line: {intercept:.3f} ms + {1000.0 * slope:.2f} us per dose")


def bench_carbs() -> None:
    """Carb effects and COB of 4 meals with dynamic absorption: written by the carb-math owner."""
    raise NotImplementedError("carb benchmark not written yet (carb_math owner)")


if __name__ == "__main__":
    bench_insulin()
    try:
        bench_carbs()
    except NotImplementedError as missing:
        print(f"carbs: {missing}")
