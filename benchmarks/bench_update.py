"""Speed and memory of update() and replay(), cold and warm.

    python benchmarks/bench_update.py [--days 90] [--cold-only]

Prints first the cold-process figures: a new Python process timing ``import pyloopkit`` and its
first ``update()`` on the dense synthetic day, with ``PYLOOPKIT_JIT=auto`` (numba, compiled code
loaded from the on-disk cache; the first run after an install also compiles) and ``never`` (no
numba). Then medians of repeated (warm) runs for: update() on the four reference issue reports (when
../shared/reference is present); update() on a dense synthetic day (288 five-minute temp
basals, 4 boluses, 4 meals, 289 CGM values); a 24 h replay at 5-min steps; and a long replay
(default 90 days) with its peak resident memory next to a 10-day replay's, to show that memory
follows the input size, not the number of steps.
"""
import argparse
import datetime as dt
import gc
import resource
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from pyloopkit import replay, update
from pyloopkit.input_validation import convert_glucose_units, validate_input
from pyloopkit.loop_data_manager import core
from pyloopkit.loop_input import parse_input
from pyloopkit.pyloop_parser import parse_report
from pyloopkit.synthetic import dense_history

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "issue_reports"


def median_ms(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def validate_and_parse(d: dict):
    """``update()``'s boundary: validation (which converts the dates once) and parsing."""
    seconds: dict = {}
    validate_input(d, seconds)
    return parse_input(convert_glucose_units(d), seconds)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def replay_seconds(days: float) -> tuple[float, int]:
    history = dense_history(days=days + 1.0, seed=1)
    end = history["time_to_calculate_at"]
    gc.collect()
    start = time.perf_counter()
    table = replay(history, start=end - dt.timedelta(days=days), end=end, step_minutes=5, as_dataframe=False)
    return time.perf_counter() - start, len(table["time"])


COLD_PROCESS = """
import time
t0 = time.perf_counter()
import warnings
import pyloopkit
from pyloopkit import update
t1 = time.perf_counter()
from pyloopkit.synthetic import dense_history
d = dense_history(days=1.0, seed=0)
warnings.simplefilter("ignore")
t2 = time.perf_counter()
update(d)
t3 = time.perf_counter()
print(t1 - t0, t3 - t2)
"""


def cold_process_s(mode: str) -> tuple[float, float]:
    """(import s, first update() s) in a fresh interpreter with ``PYLOOPKIT_JIT=mode``."""
    env = {**os.environ, "PYLOOPKIT_JIT": mode}
    out = subprocess.run([sys.executable, "-c", COLD_PROCESS], env=env, capture_output=True, text=True, check=True)
    import_s, first_s = (float(x) for x in out.stdout.split())
    return import_s, first_s


def print_cold(runs: int = 3) -> None:
    for mode in ("auto", "never"):
        cold_process_s(mode)  # fills the compiled-code cache when it is empty (first run after an install)
        figures = [cold_process_s(mode) for _ in range(runs)]
        imp = statistics.median(f[0] for f in figures)
        first = statistics.median(f[1] for f in figures)
        print(f"cold process, PYLOOPKIT_JIT={mode}: import pyloopkit {imp:.3f} s + first update() {first:.3f} s "
              f"= {imp + first:.3f} s (median of {runs} processes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=90.0, help="length of the long replay (days)")
    parser.add_argument("--runs", type=int, default=50, help="runs per update() median")
    parser.add_argument("--cold-only", action="store_true", help="print only the cold-process figures")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print_cold()
    if args.cold_only:
        return

    for n in range(1, 5):
        path = REFERENCE / f"example_issue_report_{n}.json"
        if path.exists():
            d = parse_report(path)
            print(f"update() issue report {n}: median {median_ms(lambda: update(d), args.runs):.2f} ms")
        else:
            print(f"update() issue report {n}: skipped ({path} not found)")

    day = dense_history(days=1.0, seed=0)
    print(f"update() dense synthetic day ({len(day['dose_types'])} doses, {len(day['glucose_values'])} CGM, "
          f"{len(day['carb_values'])} meals): median {median_ms(lambda: update(day), args.runs):.2f} ms")
    parsed = validate_and_parse(day)
    print(f"  of which validate + parse: median {median_ms(lambda: validate_and_parse(day), args.runs):.2f} ms; "
          f"the array core on the parsed input (core()): median {median_ms(lambda: core(parsed), args.runs):.2f} ms")

    one_day = [replay_seconds(1.0)[0] for _ in range(5)]
    print(f"replay 24 h at 5-min steps (289 steps): median {statistics.median(one_day):.3f} s")

    seconds, steps = replay_seconds(10.0)
    rss_10 = peak_rss_mb()
    print(f"replay 10 days ({steps} steps): {seconds:.1f} s, peak RSS {rss_10:.0f} MB")
    seconds, steps = replay_seconds(args.days)
    print(f"replay {args.days:g} days ({steps} steps): {seconds:.1f} s "
          f"({1e3 * seconds / steps:.2f} ms/step), peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
