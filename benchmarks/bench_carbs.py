"""Benchmark: carb effects and COB of 4 meals with dynamic absorption over a 24 h CGM day.

Run with ``python benchmarks/bench_carbs.py``. A synthetic day of 288 CGM readings (every
5 min, seeded noise) and a 24 h insulin effect timeline give the insulin counteraction
effects; 4 meals (45, 60, 20, 70 g) are mapped to them and their carb effect and COB
timelines computed on the 5-minute grid over the day plus the absorption tail. Each figure
is the median of ``RUNS`` calls (``time.perf_counter``) after one warm-up call (which also
loads numba's cached kernels).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from pyloopkit import carb_math, glucose_math
from pyloopkit.glucose_store import GlucoseArrays
from pyloopkit.schedule import DailySchedule

RUNS = 50
DAY_S = 86400.0
START_S = 700_000_200.0  # on the 5-minute grid
CARB_RATIO = DailySchedule.from_lists(["00:00", "11:00", "17:00"], [10.0, 12.0, 9.0])
SENSITIVITY = DailySchedule.from_lists(["00:00", "08:00", "20:00"], [45.0, 40.0, 50.0])
MEAL_HOURS = np.array([7.5, 12.25, 15.75, 19.0])
MEAL_GRAMS = np.array([45.0, 60.0, 20.0, 70.0])
MEAL_ABSORPTION_S = np.array([120.0, 180.0, 120.0, 240.0]) * 60.0


def median_ms(function, runs: int = RUNS) -> float:
    """Median wall time of ``function()`` in milliseconds over ``runs`` calls (after one warm-up)."""
    function()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def cgm_day(seed: int = 0):
    """288 CGM readings whose rises follow the meals and a falling insulin effect timeline."""
    rng = np.random.default_rng(seed)
    dates = START_S + 37.0 + 300.0 * np.arange(288)
    meal_dates = START_S + MEAL_HOURS * 3600.0
    carbs = carb_math.carb_effects(meal_dates, MEAL_GRAMS, MEAL_ABSORPTION_S, CARB_RATIO, SENSITIVITY, dates)
    effect_dates = START_S + 300.0 * np.arange(290)
    # meal boluses: an effect shaped like the meals' but slower, 90 % of their size
    insulin = -0.9 * carb_math.carb_effects(meal_dates - 600.0, MEAL_GRAMS, MEAL_ABSORPTION_S * 1.2, CARB_RATIO,
                                            SENSITIVITY, effect_dates)
    noise = rng.normal(0.0, 0.6, dates.size).cumsum()
    glucose = 110.0 + carbs + np.interp(dates, effect_dates, insulin) + noise
    return GlucoseArrays.from_arrays(dates, glucose), effect_dates, insulin, meal_dates


def run(model: str) -> dict:
    """Median times (ms) of each step and of the whole carb pipeline for one model."""
    glucose, effect_dates, insulin, meal_dates = cgm_day()
    ice = glucose_math.counteraction_effects(glucose, effect_dates, insulin)
    options = dict(model="piecewise_linear", adaptive_rate=True) if model == "adaptive" else dict(model=model)

    def status():
        return carb_math.map_absorption(meal_dates, MEAL_GRAMS, MEAL_ABSORPTION_S, ice, CARB_RATIO, SENSITIVITY,
                                        **options)

    s = status()
    grid = carb_math.simulation_dates(s.start_s, s.estimated_absorption_time_s, start_s=START_S)

    def pipeline():
        st = status()
        dates = carb_math.simulation_dates(st.start_s, st.estimated_absorption_time_s, start_s=START_S)
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


def main() -> None:
    print(f"carb effects + COB, 4 meals, dynamic absorption, 24 h CGM day; median of {RUNS} runs")
    for model in ("parabolic", "linear", "piecewise_linear", "adaptive"):
        r = run(model)
        print(f"  {model:17s} ICE {r['ice_intervals']:3d}, grid {r['grid_points']:3d} | "
              f"counteraction {r['counteraction_ms']:.3f} ms, map_absorption {r['map_absorption_ms']:.3f} ms, "
              f"effects {r['effects_ms']:.3f} ms, COB {r['cob_ms']:.3f} ms | "
              f"map+effects+COB {r['carb_pipeline_ms']:.3f} ms")


if __name__ == "__main__":
    main()
