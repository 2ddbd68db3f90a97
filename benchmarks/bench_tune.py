"""Speed of settings estimation on long histories.

    python benchmarks/bench_tune.py [--days 90] [--runs 3]

Generates ``--days`` of 5-minute data (:func:`pyloopkit.tune.simulate.simulate_history`: CGM
every 5 min, a temp basal every 5 min, meal boluses and carbs; 90 days = 25,920 readings and
about 26,200 dose rows) and prints the median wall time of ``estimate(method="model")`` and
``estimate(method="autotune")``, each from the History (grid building included), and of
``answer()`` on the same data as a Tune v1 request (decoding included).
"""
import argparse
import statistics
import time

import numpy as np

from pyloopkit.tune import answer, estimate
from pyloopkit.tune.codec import Schedule, Timeline, TuneRequest, encode
from pyloopkit.tune.estimate import hourly_settings
from pyloopkit.tune.simulate import TRUE_SETTINGS, simulate_history


def unix(column) -> np.ndarray:
    import pandas as pd

    return ((column - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy().astype(np.int64)


def request(history, current) -> dict:
    d = history.doses
    basal, bolus = d[d["type"] == "TEMP_BASAL"], d[d["type"] == "BOLUS"]
    params = {"delay": 10.0, "peak": 75.0, "duration": 360.0}
    start = unix(basal["start"])
    timelines = [Timeline("basal", start, np.rint(basal["value"].to_numpy() * 1000).astype(np.int64),
                          unix(basal["end"]) - start, params),
                 Timeline("insulin", unix(bolus["start"]), np.rint(bolus["value"].to_numpy() * 1000).astype(np.int64),
                          None, params),
                 Timeline("carb", unix(history.carbs["time"]), np.rint(history.carbs["grams"].to_numpy()).astype(
                     np.int64), None, {"delay": 10.0, "duration": 180.0}),
                 Timeline("glucose", unix(history.glucose["time"]),
                          np.rint(history.glucose["glucose_mg_dl"].to_numpy()).astype(np.int64))]
    hours = list(range(0, 1440, 60))
    req = TuneRequest("Etc/UTC", timelines, *(Schedule(hours, [float(v) for v in current[p]]) for p in range(3)))
    return encode(req)


def median_s(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=90.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    current = TRUE_SETTINGS * np.array([[1.2], [0.85], [0.8]])
    t = time.perf_counter()
    history = simulate_history(args.days, TRUE_SETTINGS, current, seed=0)
    print(f"generated {args.days:g} days: {len(history.glucose)} readings, {len(history.doses)} dose rows, "
          f"{len(history.carbs)} carb entries in {time.perf_counter() - t:.1f} s")
    settings = hourly_settings(current)
    for method in ("model", "autotune"):
        s = median_s(lambda: estimate(history, settings, method=method), args.runs)
        print(f"estimate(method={method!r}) on {args.days:g} days: {s:.2f} s (median of {args.runs})")
    payload = request(history, current)
    s = median_s(lambda: answer(payload, "model"), args.runs)
    print(f"answer(request, 'model') on {args.days:g} days (decode + estimate + encode): {s:.2f} s "
          f"(median of {args.runs})")


if __name__ == "__main__":
    main()
