"""Benchmark of ``pyloopkit.algorithm.run`` (the LoopAlgorithm-format entry point).

Run with ``python benchmarks/bench_algorithm.py [SCENARIO.json]``. The default input is
LoopAlgorithm's ``suspend_scenario.json`` from ``../shared/reference/loopalgorithm/`` (120
glucose readings, 105 doses, 2 carb entries, automatic bolus dosing); without it, a synthetic
scenario of the same size is used. Figures: median (and min/max) of 50 timed ``run()`` calls on
the already-loaded dict after 5 warm-up calls, plus the median of each stage (parsing and
checks, prediction, dose recommendation, JSON output) and the 1-min load average (other processes
competing for the CPUs lengthen the wall times). Target: median <= 3 ms.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

from pyloopkit import algorithm as A
from pyloopkit.algorithm_input import format_dates, parse_algorithm_input

RUNS = 50
WARMUP = 5
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "loopalgorithm" / "suspend_scenario.json"


def synthetic_scenario() -> dict:
    """An AlgorithmInput like the suspend scenario: 10 h of 5-min glucose, a bolus or a 5-20 min
    temp basal every 5-10 min, two meals, constant timelines."""
    start = 719_269_200.0  # 2023-10-17T21:00:00Z
    glucose_s = [start - 300.0 * k for k in range(119, -1, -1)]
    glucose = [{"date": d, "value": 150.0 + 60.0 * ((i % 48) / 48.0 - 0.5)}
               for i, d in enumerate(format_dates(glucose_s))]
    doses = []
    t = start - 16 * 3600.0
    for i in range(105):
        length = 8.0 if i % 3 else 900.0
        kind = "bolus" if i % 3 else "basal"
        a, b = format_dates([t, t + length])
        doses.append({"type": kind, "startDate": a, "endDate": b, "volume": 0.1 + 0.05 * (i % 5)})
        t += 540.0
    lo, hi = format_dates([start - 20 * 3600.0, start + 8 * 3600.0])
    return {
        "predictionStart": format_dates([start])[0], "glucoseHistory": glucose, "doses": doses,
        "carbEntries": [{"date": format_dates([start - 7200.0])[0], "grams": 15, "absorptionTime": 10800},
                        {"date": format_dates([start - 900.0])[0], "grams": 35, "absorptionTime": 10800}],
        "basal": [{"startDate": lo, "endDate": format_dates([start])[0], "value": 1.0}],
        "sensitivity": [{"startDate": lo, "endDate": hi, "value": 60.0}],
        "carbRatio": [{"startDate": lo, "endDate": hi, "value": 8.0}],
        "target": [{"startDate": lo, "endDate": hi, "lowerBound": 100.0, "upperBound": 115.0}],
        "suspendThreshold": 78.0, "maxBolus": 9.0, "maxBasalRate": 4.1,
        "recommendationType": "automaticBolus",
    }


def timings_ms(function, runs: int = RUNS) -> list[float]:
    """Wall times (ms) of ``runs`` calls after ``WARMUP`` warm-up calls."""
    for _ in range(WARMUP):
        function()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        function()
        out.append(1000.0 * (time.perf_counter() - t0))
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    if path.exists():
        data, name = json.loads(path.read_text()), path.name
    else:
        data, name = synthetic_scenario(), "synthetic scenario (reference fixture not found)"
    inp = parse_algorithm_input(data)
    prediction = A.predict(inp)
    total = timings_ms(lambda: A.run(data))
    stages = {
        "parse + refusal checks": lambda: A.refusals(parse_algorithm_input(data)),
        "prediction (effects, ICE, carbs, RC, momentum)": lambda: A.predict(inp),
        "dose recommendation": lambda: A.recommend(inp, prediction),
        "JSON output (effects, dates)": lambda: A._effects_json(prediction),
    }
    print(f"run() on {name}: {len(inp.glucose)} glucose, {len(inp.doses)} doses, {len(inp.carbs)} carb entries; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"  median {statistics.median(total):.3f} ms  (min {min(total):.3f}, max {max(total):.3f}; "
          f"{RUNS} runs, target <= 3 ms)")
    for label, function in stages.items():
        print(f"  {label:<48} median {statistics.median(timings_ms(function)):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
