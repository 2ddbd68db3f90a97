"""Write ``example_files/algorithm_input.json``: a LoopAlgorithm ``AlgorithmInput`` example.

Source: the synthetic issue report ``example_files/synthetic_issue_report.json`` (made by
``scripts/make_synthetic_report.py``, seed recorded there; no patient data), read with
``pyloopkit.pyloop_parser.parse_report`` at 12:00 local time (the last 6 h of history kept) and
converted with ``pyloopkit.algorithm_input.to_algorithm_input`` for an automatic-bolus
recommendation. Deterministic: running it again rewrites the same bytes.

Run ``python scripts/make_algorithm_example.py [--out PATH]``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import warnings
from pathlib import Path

from pyloopkit.algorithm_input import to_algorithm_input
from pyloopkit.pyloop_parser import parse_report

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "example_files" / "synthetic_issue_report.json"
OUT = ROOT / "example_files" / "algorithm_input.json"
AT = "2026-03-02T12:00:00-05:00"
HISTORY = dt.timedelta(hours=6)
"""History kept before ``AT``: more than one insulin action and the counteraction window Loop uses."""


def build() -> dict:
    """The AlgorithmInput JSON of the synthetic report at ``AT`` over the last ``HISTORY``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = parse_report(SOURCE, at=AT, counteraction="computed")
    since = d["time_to_calculate_at"] - HISTORY
    keep = [i for i, t in enumerate(d["glucose_dates"]) if t >= since]
    d["glucose_dates"] = [d["glucose_dates"][i] for i in keep]
    d["glucose_values"] = [d["glucose_values"][i] for i in keep]
    doses = [i for i, t in enumerate(d["dose_end_times"]) if t >= since]
    for key in ("dose_types", "dose_start_times", "dose_end_times", "dose_values", "dose_delivered_units"):
        d[key] = [d[key][i] for i in doses]
    carbs = [i for i, t in enumerate(d["carb_dates"]) if t >= since]
    for key in ("carb_dates", "carb_values", "carb_absorption_times"):
        d[key] = [d[key][i] for i in carbs]
    with warnings.catch_warnings():  # rounding and the running temp basal have no AlgorithmInput field
        warnings.simplefilter("ignore")
        return to_algorithm_input(d, recommendation_type="automaticBolus")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    Path(args.out).write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
