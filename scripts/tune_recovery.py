"""Recovery proof: can ``pyloopkit.tune.estimate`` find the settings that generated a history?

For each seed, a 14-day history is generated (:func:`pyloopkit.tune.simulate.simulate_history`)
from the time-varying reference settings (ISF, CR and basal change over the day), with CGM noise
(5 mg/dL), carb counts and boluses off by up to +-20%, and a person whose loop runs on settings
mis-set by a random factor in [0.7, 0.85] or [1.15, 1.3] per schedule. Both methods estimate from
those mis-set settings; the table gives the error of each hourly value against the truth: the raw
per-hour estimates (``EstimatedSettings.hourly``) and the schedules (``EstimatedSettings.schedules``,
compacted under ``--interval`` and ``--max-items``, read at each hour).

Seeds ``--first-seed`` to ``--first-seed + --seeds - 1``: the method was developed on seeds 100-104;
report on others (``docs/tune.md`` uses 0-9).

Usage: ``python scripts/tune_recovery.py [--seeds 5] [--first-seed 100] [--days 14] [--interval 1800]
[--max-items 8]``
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from pyloopkit.tune import estimate
from pyloopkit.tune.estimate import NAMES, hourly, hourly_settings
from pyloopkit.tune.simulate import TRUE_SETTINGS, simulate_history


def misset(rng: np.random.Generator) -> np.ndarray:
    """Per-schedule factors of 0.70-0.85 or 1.15-1.30 (random sign), shape (3, 1)."""
    return (1.0 + rng.choice([-1.0, 1.0], 3) * rng.uniform(0.15, 0.30, 3))[:, None]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--interval", type=int, default=1800, help="minimum_time_interval of the schedules (s)")
    ap.add_argument("--max-items", type=int, default=8, help="maximum_schedule_item_count of the schedules")
    args = ap.parse_args(argv)
    limits = {"minimum_time_interval_s": args.interval, "maximum_schedule_item_count": args.max_items}
    rows = {m: [] for m in ("current", "model", "model (estimable)", "model schedule", "autotune",
                            "autotune schedule")}
    fit_s = {"model": [], "autotune": []}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        current = TRUE_SETTINGS * misset(np.random.default_rng(seed))
        history = simulate_history(args.days, TRUE_SETTINGS, current, seed=seed)
        rows["current"].append(np.abs(current / TRUE_SETTINGS - 1.0))
        for method in ("model", "autotune"):
            t = time.perf_counter()
            e = estimate(history, hourly_settings(current), limits=limits, method=method)
            fit_s[method].append(time.perf_counter() - t)
            err = np.abs(np.array([e.hourly[k] for k in NAMES]) / TRUE_SETTINGS - 1.0)
            rows[method].append(err)
            schedules = np.array([hourly(e.schedules[k].index_min, e.schedules[k].values) for k in NAMES])
            rows[f"{method} schedule"].append(np.abs(schedules / TRUE_SETTINGS - 1.0))
            if method == "model":
                flagged = {(p["parameter"], p["hour"]) for p in e.not_estimable}
                mask = np.array([[(k, h) not in flagged for h in range(24)] for k in NAMES])
                rows["model (estimable)"].append(np.where(mask, err, np.nan))
    print(f"seeds {seeds.start}-{seeds.stop - 1} x {args.days:g} days; |estimate / truth - 1| over the 24 hourly "
          f"values, in %; schedules: {limits}")
    print(f"{'method':<20}{'schedule':<8}{'mean':>7}{'median':>8}{'p90':>7}{'max':>7}{'<=10%':>7}{'n':>6}")
    for method, errs in rows.items():
        e = np.array(errs)
        for p, name in enumerate(NAMES):
            v = e[:, p, :].ravel()
            v = v[np.isfinite(v)]
            print(f"{method:<20}{name:<8}{100 * v.mean():7.1f}{100 * np.median(v):8.1f}"
                  f"{100 * np.percentile(v, 90):7.1f}{100 * v.max():7.1f}{100 * np.mean(v <= 0.10):7.0f}{v.size:6d}")
    for method, times in fit_s.items():
        print(f"{method}: {np.mean(times):.2f} s per 14-day estimate (mean of {len(times)})")


if __name__ == "__main__":
    main()
