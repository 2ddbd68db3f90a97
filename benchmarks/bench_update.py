"""Speed and memory of update() and replay(), cold and warm.

    python benchmarks/bench_update.py [--days 90] [--cold-only] [--pyloopkit PATH [--pyloopkit-runs 5]]

Prints (after the PyLoopKit comparison below, when asked for) the cold-process figures: a new
Python process timing ``import pyloopkit`` and its first ``update()`` on the dense synthetic day,
with ``PYLOOPKIT_JIT=auto`` (numba, compiled code loaded from the on-disk cache; the first run after
an install also compiles) and ``never`` (no numba). Then medians of repeated (warm) runs for:
update() on the four reference issue reports (when ../shared/reference is present); update() on a
dense synthetic day (288 five-minute temp basals, 4 boluses, 4 meals, 289 CGM values); a 24 h
replay at 5-min steps; and a long replay (default 90 days) with its peak resident memory next to a
10-day replay's, to show that memory follows the input size, not the number of steps.

With ``--pyloopkit PATH`` (a checkout of Tidepool's PyLoopKit, whose package has the same import name
as ours), the dense synthetic day is first pickled to a subprocess that imports Tidepool's
``update()`` from PATH and times it (its first call, then the median of ``--pyloopkit-runs`` warm
calls); ours is timed the same way in this process (its first call is this process's first
``update()``, numba loading its compiled code included; then the median of ``--runs`` warm calls, as
cheap as a few of PyLoopKit's and steadier on a shared machine), and the ratio is printed. As a cross-check the
two predictions and recommendations on that input are compared, and again with every dose cut at
``time_to_calculate_at``, since the deviations in ``docs/update.md`` begin with that step: the
prediction ends the running temp basal at now. Tidepool's PyLoopKit imports
``backports.datetime_fromisoformat`` (not needed on Python >= 3.11); the subprocess provides a
no-op stand-in for it.
"""
import argparse
import datetime as dt
import gc
import resource
import os
import pickle
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from pyloopkit import replay, update
from pyloopkit.date import to_seconds
from pyloopkit.input_validation import convert_glucose_units, validate_input
from pyloopkit.loop_data_manager import core
from pyloopkit.loop_input import parse_input
from pyloopkit.pyloop_parser import parse_report
from pyloopkit.synthetic import dense_history

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "issue_reports"


def median_ms(fn, runs: int) -> float:
    """Median wall-clock ms of ``runs`` calls after a first one (:func:`warm_times`)."""
    return 1e3 * warm_times(fn, runs)[1]


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


WARM_TIMES = '''
def warm_times(fn, runs):
    """(first call s, median wall-clock s and median process CPU s of ``runs`` further calls, first result)."""
    start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - start
    wall, cpu = [], []
    for _ in range(runs):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return first, statistics.median(wall) if wall else None, statistics.median(cpu) if cpu else None, result
'''
exec(WARM_TIMES)  # defines warm_times() here; the PyLoopKit subprocess runs the same source

PYLOOPKIT_PROCESS = """
import pickle, statistics, sys, time, types
stub = types.ModuleType("backports.datetime_fromisoformat")
stub.MonkeyPatch = type("MonkeyPatch", (), {"patch_fromisoformat": staticmethod(lambda: None)})
sys.modules.setdefault("backports", types.ModuleType("backports"))
sys.modules["backports.datetime_fromisoformat"] = stub
import os
import pyloopkit
root = os.path.realpath(sys.argv[1])
if not os.path.realpath(pyloopkit.__file__).startswith(root + os.sep):
    sys.exit(f"no PyLoopKit package under {root}: pyloopkit was imported from {pyloopkit.__file__}")
from pyloopkit.dose import DoseType
from pyloopkit.loop_data_manager import update
""" + WARM_TIMES + """
job = pickle.load(sys.stdin.buffer)
KEYS = ("predicted_glucose_dates", "predicted_glucose_values", "recommended_temp_basal", "recommended_bolus")
results = []
for d, runs in job:
    d["dose_types"] = [DoseType(code) for code in d["dose_types"]]
    d["last_temporary_basal"] = [DoseType(d["last_temporary_basal"][0])] + d["last_temporary_basal"][1:]
    first, wall, cpu, out = warm_times(lambda: update(d), runs)
    results.append((first, wall, cpu, {k: out[k] for k in KEYS}))
pickle.dump(results, sys.stdout.buffer)
"""


def plain(d: dict) -> dict:
    """The input dictionary with dose types as PyLoopKit's integer codes (ours are an IntEnum of the
    same numbers, which the other package cannot unpickle)."""
    out = dict(d)
    out["dose_types"] = [int(t) for t in d["dose_types"]]
    out["last_temporary_basal"] = [int(d["last_temporary_basal"][0])] + list(d["last_temporary_basal"][1:])
    return out


def cut_at_now(d: dict) -> dict:
    """``d`` with every dose ending at ``time_to_calculate_at`` at the latest."""
    now = d["time_to_calculate_at"]
    return {**d, "dose_end_times": [min(end, now) for end in d["dose_end_times"]]}


def pyloopkit_update(path: str, job: list) -> list | str:
    """Tidepool's ``update()`` from the checkout ``path`` in a subprocess: for each ``(input, warm runs)``
    of ``job``, (first call s, median warm wall-clock s, median warm CPU s, outputs); a string saying why
    when it cannot run, also when the ``pyloopkit`` imported is not the one under ``path`` (ours, when
    installed, would be found instead)."""
    root = str(Path(path).resolve())
    env = {**os.environ, "PYTHONPATH": root}
    try:
        out = subprocess.run([sys.executable, "-c", PYLOOPKIT_PROCESS, root], input=pickle.dumps(job), env=env,
                             capture_output=True, cwd=root, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if out.returncode != 0:
        lines = out.stderr.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {out.returncode}"
    return pickle.loads(out.stdout)


def prediction_difference(ours: dict, theirs: dict) -> tuple[float, int, int, int]:
    """(max |difference| mg/dL on the dates both predictions have, common dates, our points, theirs)."""
    ours_s, theirs_s = to_seconds(ours["predicted_glucose_dates"]), to_seconds(theirs["predicted_glucose_dates"])
    common, i, j = np.intersect1d(ours_s, theirs_s, return_indices=True)
    a = [float(ours["predicted_glucose_values"][k]) for k in i]
    b = [float(theirs["predicted_glucose_values"][k]) for k in j]
    return max((abs(x - y) for x, y in zip(a, b)), default=float("nan")), len(common), len(ours_s), len(theirs_s)


def print_pyloopkit_comparison(path: str | None, runs: int, our_runs: int) -> None:
    """Tidepool's PyLoopKit (median of ``runs`` warm calls) and ours (median of ``our_runs``) on the dense
    synthetic day, timed in the same run, and their outputs."""
    if path is None:
        print("PyLoopKit comparison skipped: pass --pyloopkit PATH (a checkout of Tidepool's PyLoopKit)")
        return
    day = dense_history(days=1.0, seed=0)
    theirs = pyloopkit_update(path, [(plain(day), runs), (plain(cut_at_now(day)), 0)])
    if isinstance(theirs, str):
        print(f"PyLoopKit comparison skipped: Tidepool's update() from {path} did not run ({theirs})")
        return
    first_s, wall_s, cpu_s, ours = warm_times(lambda: update(day), our_runs)
    (their_first_s, their_wall_s, their_cpu_s, their_out), (*_, their_cut) = theirs
    print(f"dense synthetic day, same run: PyLoopKit ({path}) first update() {their_first_s:.3f} s, median of "
          f"{runs} warm {1e3 * their_wall_s:.1f} ms (CPU {1e3 * their_cpu_s:.1f} ms); ours first {1e3 * first_s:.1f} "
          f"ms, median of {our_runs} warm {1e3 * wall_s:.2f} ms (CPU {1e3 * cpu_s:.2f} ms); ratio "
          f"{their_wall_s / wall_s:.0f}x (CPU {their_cpu_s / cpu_s:.0f}x)")
    for label, other, mine in (("as given", their_out, ours), ("doses cut at now", their_cut, update(cut_at_now(day)))):
        diff, common, n_ours, n_theirs = prediction_difference(mine, other)
        print(f"  cross-check ({label}): prediction max |ours - PyLoopKit| {diff:.3f} mg/dL over {common} common "
              f"dates ({n_ours} vs {n_theirs} points); temp basal {_rounded(mine['recommended_temp_basal'])} vs "
              f"{_rounded(other['recommended_temp_basal'])}, bolus {_rounded(mine['recommended_bolus'])} vs "
              f"{_rounded(other['recommended_bolus'])}")


def _rounded(recommendation) -> list | None:
    return None if recommendation is None else [round(float(x), 3) if x is not None else None for x in recommendation]


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
    parser.add_argument("--pyloopkit", metavar="PATH", help="a checkout of Tidepool's PyLoopKit to time against")
    parser.add_argument("--pyloopkit-runs", type=int, default=5, help="warm runs of each update() in that comparison")
    args = parser.parse_args()
    for name in ("runs", "pyloopkit_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    warnings.simplefilter("ignore")
    print_pyloopkit_comparison(args.pyloopkit, args.pyloopkit_runs, args.runs)
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
