"""Report speed on a 90-day history (simulated: adult#001, basal-bolus controller, seed 0).

Prints the wall-clock and CPU seconds of (each measured once; on a shared machine the wall
clock includes waiting for a core, the CPU time does not):

1. importing ``pyloopkit.report`` and matplotlib's PDF backend (a fresh interpreter);
2. the consensus metrics of all 90 days (:func:`pyloopkit.metrics.cgm_summary`), the daily
   insulin table and the meal patterns;
3. the AGP percentiles of the last 14 days;
4. the 14-day PDF (:func:`pyloopkit.report.write_report`, four pages) and the PNGs;
5. a History CSV round trip plus the report, when this installation's History has
   ``to_csv``/``from_csv`` (pyloopkit.io), the import half of "import + report < 10 s".

Usage: ``python benchmarks/bench_report.py [--days 90] [--out /tmp/bench_report]``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the fresh-import run)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(label: str, function):
    """Run ``function()`` once; print its wall-clock and CPU seconds (CPU: this process only)."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    value = function()
    print(f"{label:<44} {time.perf_counter() - wall:7.2f} s wall {_cpu_seconds() - cpu:7.2f} s CPU")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=90.0)
    parser.add_argument("--out", default=None, help="folder for the PDF/PNGs (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_report_"))
    out.mkdir(parents=True, exist_ok=True)

    code = "import pyloopkit.report.pdf, pyloopkit.report.figures, matplotlib.backends.backend_pdf"
    timed("import pyloopkit.report + matplotlib (fresh)", lambda: subprocess.run([sys.executable, "-c", code], check=True))

    from pyloopkit import metrics
    from pyloopkit.metrics.insulin import daily_insulin, meal_patterns
    from pyloopkit.report import agp_percentiles, prepare, simulated_history, write_pngs, write_report

    history = timed(f"simulate {args.days:g} days (incl. compiling)", lambda: simulated_history(args.days, seed=0))
    print(f"  {len(history.glucose)} CGM readings, {len(history.doses)} doses, {len(history.carbs)} carb entries")
    g = history.glucose
    timed(f"cgm_summary, {args.days:g} days", lambda: metrics.cgm_summary(metrics.local_minutes(g["time"]),
                                                                      g["glucose_mg_dl"].to_numpy()))
    timed(f"daily_insulin, {args.days:g} days", lambda: daily_insulin(history))
    timed(f"meal_patterns, {args.days:g} days", lambda: meal_patterns(history))
    data = timed("prepare (14-day window, all its metrics)", lambda: prepare(history, days=14))
    timed("AGP percentiles, 14 days", lambda: agp_percentiles(data.glucose["minute_of_day"].to_numpy(),
                                                              data.glucose["glucose_mg_dl"].to_numpy()))
    timed("write_report: 14-day PDF", lambda: write_report(history, out / "report.pdf"))
    timed("write_report: 14-day PDF, mmol/L", lambda: write_report(history, out / "report_mmol.pdf", units="mmol/L"))
    timed("write_pngs: 14 days, 110 dpi", lambda: write_pngs(history, out / "png"))
    print(f"PDF size {(out / 'report.pdf').stat().st_size / 1e3:.0f} kB; files in {out}")
    if hasattr(type(history), "to_csv") and hasattr(type(history), "from_csv"):
        def round_trip():
            history.to_csv(out / "history")
            return write_report(type(history).from_csv(out / "history"), out / "round_trip.pdf")

        timed("History to_csv + from_csv + 14-day PDF", round_trip)
    else:
        print("History CSV round trip: skipped (this History has no to_csv/from_csv; pyloopkit.io adds them)")


if __name__ == "__main__":
    main()
