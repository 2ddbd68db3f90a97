"""Command line: ``python -m pyloopkit run|replay|scenario ...`` (console script ``pyloopkit``).

Exit codes: 0 success; 2 usage error; 3 invalid input (every problem is printed);
4 the file cannot be read or is not a Loop issue report / input dictionary.
"""
from __future__ import annotations

import argparse
import importlib
import csv
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_INVALID, EXIT_UNREADABLE = 0, 2, 3, 4

# Each wing adds its subcommands through a module with ``register(subparsers)``; these modules
# import nothing heavy at module level (the command functions import their wing when run).
WING_COMMANDS: tuple[str, ...] = (
    "pyloopkit.meals.cli",
    "pyloopkit.service.cli",
    "pyloopkit.rl.cli",
)


def load_input(path: str, at: str | None = None) -> dict:
    """An ``update()`` input dictionary from a Loop issue report or a saved input dictionary."""
    from .pyloop_parser import parse_dictionary_from_previous_run, parse_report

    with open(path) as f:
        raw = json.load(f)
    if isinstance(raw, dict) and "glucose_dates" in raw:
        d = parse_dictionary_from_previous_run(path)
        if at is not None:
            d["time_to_calculate_at"] = at
        return d
    return parse_report(raw, at=at)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "name") and not isinstance(value, str):
        return value.name
    return value


def _summary(out: dict) -> str:
    lines = [f"predicted glucose: {out['predicted_glucose_values'][0]:.1f} mg/dL now, "
             f"{out['predicted_glucose_values'][-1]:.1f} mg/dL eventually",
             f"insulin on board: {out['insulin_on_board']:.3f} U, carbs on board: {out['carbs_on_board']:.1f} g",
             f"recommended temp basal: {out['recommended_temp_basal']}",
             f"recommended bolus: {out['recommended_bolus']}"]
    if out.get("recommended_autobolus") is not None:
        lines.append(f"recommended automatic bolus: {out['recommended_autobolus']}")
    lines.extend(f"warning: {w}" for w in out.get("warnings", []))
    return "\n".join(lines)


def cmd_run(args) -> int:
    from .loop_data_manager import update

    out = update(load_input(args.report, args.at))
    print(_summary(out))
    if args.json:
        Path(args.json).write_text(json.dumps(_jsonable({k: v for k, v in out.items() if k != "input_data"}),
                                              indent=1))
    if args.plot:
        from .plots import plot_update

        plot_update(out, args.plot, title=Path(args.report).name)
    return EXIT_OK


def cmd_replay(args) -> int:
    from .date import parse_datetime
    from .loop_replay import replay

    d = load_input(args.report)
    start = parse_datetime(args.start) if args.start else None
    end = parse_datetime(args.end) if args.end else None
    table = replay(d, start, end, step_minutes=args.every, as_dataframe=False)
    names = list(table)
    with open(args.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for row in zip(*(table[n] for n in names)):
            w.writerow(["" if v is None else _jsonable(v) for v in row])
    print(f"{len(table['time'])} steps written to {args.csv}")
    return EXIT_OK


def cmd_scenario(args) -> int:
    from .algorithm import scenario_main

    return scenario_main([args.file] + (["--prediction-only"] if args.prediction_only else []))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyloopkit", description="Run the Loop algorithm on Loop issue reports.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run update() once on an issue report or saved input dictionary")
    r.add_argument("report")
    r.add_argument("--at", help="ISO time to run at (default: the report's time)")
    r.add_argument("--json", help="write the output as JSON to this file")
    r.add_argument("--plot", help="save a figure (PNG) to this file")
    r.set_defaults(func=cmd_run)
    rp = sub.add_parser("replay", help="run the algorithm at every step over the report's history")
    rp.add_argument("report")
    rp.add_argument("--every", type=float, default=5.0, help="step in minutes (default 5)")
    rp.add_argument("--start", help="ISO start time (default: 1 h after the first glucose)")
    rp.add_argument("--end", help="ISO end time (default: the report's time)")
    rp.add_argument("--csv", required=True, help="write the per-step table to this CSV file")
    rp.set_defaults(func=cmd_replay)
    s = sub.add_parser("scenario", help="run a LoopAlgorithm AlgorithmInput JSON through run()")
    s.add_argument("file")
    s.add_argument("--prediction-only", action="store_true", help="treat FILE as a LoopPredictionInput")
    s.set_defaults(func=cmd_scenario)
    for module in WING_COMMANDS:
        importlib.import_module(module).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    from .errors import InvalidInputError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InvalidInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    except (OSError, json.JSONDecodeError, KeyError, ValueError, TypeError) as e:
        print(f"error: cannot use {getattr(args, 'report', getattr(args, 'file', ''))}: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
