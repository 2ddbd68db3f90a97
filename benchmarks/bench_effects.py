"""Benchmarks of the effect timelines Loop recomputes at every ``update()``.

Run with ``python benchmarks/bench_effects.py``. Each figure is the median of repeated runs
(``time.perf_counter``) after one warm-up call.

* insulin: the insulin effect timeline (mg/dL, 5-minute grid) of a 24 h history of 288 five-minute
  temp basals plus 4 boluses, exponential adult model: the effect math alone on prepared doses, and
  raw history through :func:`pyloopkit.dose_store.prepare_doses` (reconcile, annotate) plus the
  effect math, which is what PyLoopKit's ``get_glucose_effects`` does; the IOB timeline of the same
  doses; then 72 to 576 temp basals over the same day (shorter and denser as their number grows)
  with a least-squares line to show the linear scaling.
* carbs: :func:`bench_carbs`, the carb effects and COB of 4 meals (45, 60, 20, 70 g) with dynamic
  absorption over a synthetic day of 288 CGM readings (the counteraction effects of a 24 h insulin
  effect timeline), for each absorption model: counteraction, mapping, effects, COB and the whole.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from pyloopkit import carb_math, glucose_math
from pyloopkit.date import GRID_S, grid
from pyloopkit.dose import DoseArrays, DoseType
from pyloopkit.dose_store import prepare_doses
from pyloopkit.glucose_store import GlucoseArrays
from pyloopkit.insulin_math import effect_dates, glucose_effects, insulin_on_board
from pyloopkit.insulin_models import PRESETS
from pyloopkit.schedule import DailySchedule

RUNS = 50
DAY_S = 86400.0
START_S = 700_000_000.0  # 2023-03-08, a multiple of 300 s: doses start on the grid plus 17 s below
CARB_START_S = 700_000_200.0  # on the 5-minute grid


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


CARB_RATIO = DailySchedule.from_lists(["00:00", "11:00", "17:00"], [10.0, 12.0, 9.0])
SENSITIVITY = DailySchedule.from_lists(["00:00", "08:00", "20:00"], [45.0, 40.0, 50.0])
MEAL_HOURS = np.array([7.5, 12.25, 15.75, 19.0])
MEAL_GRAMS = np.array([45.0, 60.0, 20.0, 70.0])
MEAL_ABSORPTION_S = np.array([120.0, 180.0, 120.0, 240.0]) * 60.0


def cgm_day(seed: int = 0):
    """288 CGM readings whose rises follow the meals and a falling insulin effect timeline."""
    rng = np.random.default_rng(seed)
    dates = CARB_START_S + 37.0 + 300.0 * np.arange(288)
    meal_dates = CARB_START_S + MEAL_HOURS * 3600.0
    carbs = carb_math.carb_effects(meal_dates, MEAL_GRAMS, MEAL_ABSORPTION_S, CARB_RATIO, SENSITIVITY, dates)
    effect_dates = CARB_START_S + 300.0 * np.arange(290)
    # meal boluses: an effect shaped like the meals' but slower, 90 % of their size
    insulin = -0.9 * carb_math.carb_effects(meal_dates - 600.0, MEAL_GRAMS, MEAL_ABSORPTION_S * 1.2, CARB_RATIO,
                                            SENSITIVITY, effect_dates)
    noise = rng.normal(0.0, 0.6, dates.size).cumsum()
    glucose = 110.0 + carbs + np.interp(dates, effect_dates, insulin) + noise
    return GlucoseArrays.from_arrays(dates, glucose), effect_dates, insulin, meal_dates


def carb_timings(model: str) -> dict:
    """Median times (ms) of each step and of the whole carb pipeline for one model."""
    glucose, effect_dates, insulin, meal_dates = cgm_day()
    ice = glucose_math.counteraction_effects(glucose, effect_dates, insulin)
    options = dict(model="piecewise_linear", adaptive_rate=True) if model == "adaptive" else dict(model=model)

    def status():
        return carb_math.map_absorption(meal_dates, MEAL_GRAMS, MEAL_ABSORPTION_S, ice, CARB_RATIO, SENSITIVITY,
                                        **options)

    s = status()
    grid = carb_math.simulation_dates(s.start_s, s.estimated_absorption_time_s, start_s=CARB_START_S)

    def pipeline():
        st = status()
        dates = carb_math.simulation_dates(st.start_s, st.estimated_absorption_time_s, start_s=CARB_START_S)
        return carb_math.dynamic_carb_effects(st, dates), carb_math.dynamic_carbs_on_board(st, dates)

    return {
        "ice_intervals": int(ice[0].size),
        "grid_points": int(grid.size),
        "counteraction_ms": median_ms(lambda: glucose_math.counteraction_effects(glucose, effect_dates, insulin)),
        "map_absorption_ms": median_ms(status),
        "effects_ms": median_ms(lambda: carb_math.dynamic_carb_effects(s, grid)),
        "cob_ms": median_ms(lambda: carb_math.dynamic_carbs_on_board(s, grid)),
        "carb_pipeline_ms": median_ms(pipeline),
    }


def bench_carbs() -> None:
    """Carb effects and COB of 4 meals with dynamic absorption over a 24 h CGM day, per model."""
    print(f"carb effects + COB, 4 meals, dynamic absorption, 24 h CGM day; median of {RUNS} runs")
    for model in ("parabolic", "linear", "piecewise_linear", "adaptive"):
        r = carb_timings(model)
        print(f"  {model:17s} ICE {r['ice_intervals']:3d}, grid {r['grid_points']:3d} | "
              f"counteraction {r['counteraction_ms']:.3f} ms, map_absorption {r['map_absorption_ms']:.3f} ms, "
              f"effects {r['effects_ms']:.3f} ms, COB {r['cob_ms']:.3f} ms | "
              f"map+effects+COB {r['carb_pipeline_ms']:.3f} ms")


if __name__ == "__main__":
    bench_insulin()
    bench_carbs()
