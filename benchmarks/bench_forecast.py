"""Speed of the forecasters.

    python benchmarks/bench_forecast.py [--rows 1000]

Prints, for a batch of rows (simulated once, closed-loop Loop, 2 patients): the cost of building
the rows from input dictionaries (one ``update()`` each: Loop's effects), then the time to forecast
the whole batch with each model once the rows exist (the issue's target: 1,000 inputs < 1 s).
"""
import argparse
import time
import warnings

import numpy as np

from pyloopkit.forecast import (Autoregressive, ForecastRows, LinearTrend, LoopPrediction, Persistence,
                                load_forecaster, simulate_rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    base = simulate_rows(["adult#003", "adolescent#003"], seed=11, days=1.0, origin_every_min=30, warmup_min=600)
    build_s = time.perf_counter() - start
    print(f"simulated {len(base)} rows (closed loop + one update() per row) in {build_s:.1f} s")
    rows = ForecastRows.concat([base] * (args.rows // len(base) + 1)).take(slice(0, args.rows))
    ar = Autoregressive().fit(base)
    for model in (Persistence(), LinearTrend(), ar, LoopPrediction(), load_forecaster("default")):
        model.predict_rows(rows.take(slice(0, 10)))
        times = []
        for _ in range(5):
            t = time.perf_counter()
            model.predict_rows(rows)
            times.append(time.perf_counter() - t)
        print(f"{model.name:>16}: {len(rows)} forecasts in {1e3 * np.median(times):8.2f} ms (median of 5)")


if __name__ == "__main__":
    main()
