"""Command line: ``python -m pyloopkit run|replay|scenario ...`` (console script ``pyloopkit``).

Exit codes: 0 success; 2 usage error; 3 invalid input or option value (every problem is printed)
or input lacking data the algorithm needs; 4 the file cannot be read or is not a Loop issue report /
input dictionary; 5 an output file (``--json``, ``--plot``, ``--csv``) cannot be written.
Warnings are printed once each, to stderr.
"""
from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import sys
import warnings
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_INVALID, EXIT_UNREADABLE, EXIT_UNWRITABLE = 0, 2, 3, 4, 5


class OutputError(Exception):
    """An output file named by an option cannot be written."""

# Each wing adds its subcommands through a module with ``register(subparsers)``; these modules
# import nothing heavy at module level (the command functions import their wing when run).
WING_COMMANDS: tuple[str, ...] = (
    "pyloopkit.meals.cli",
    "pyloopkit.service.cli",
    "pyloopkit.report.cli",
    "pyloopkit.tune.cli",
    "pyloopkit.io.cli",
    "pyloopkit.control.cli",
    "pyloopkit.forecast.cli",
    "pyloopkit.rl.cli",
)


def load_input(path: str, at: str | None = None, counteraction: str = "report",
               allow_missing_doses: bool = False) -> dict:
    """An ``update()`` input dictionary from a Loop issue report or a saved input dictionary
    (``counteraction`` and ``allow_missing_doses`` apply to issue reports: see ``parse_report``)."""
    from .pyloop_parser import parse_dictionary_from_previous_run, parse_report

    with open(path) as f:
        raw = json.load(f)
    if isinstance(raw, dict) and "glucose_dates" in raw:
        d = parse_dictionary_from_previous_run(path)
        if at is not None:
            d["time_to_calculate_at"] = at
        return d
    return parse_report(raw, at=at, counteraction=counteraction, allow_missing_doses=allow_missing_doses)


def _time_option(name: str, value: str | None):
    """The datetime of an ISO time option, or None; an unreadable one is invalid input naming the option."""
    from .date import parse_datetime
    from .errors import InvalidInputError, Problem

    if value is None:
        return None
    try:
        return parse_datetime(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError([Problem(f"--{name}", None, value, "not an ISO 8601 time")]) from None


def _write(option: str, path: str, write) -> None:
    """Call ``write(path)``; a failure names the option and the path, not the input."""
    try:
        write(path)
    except OSError as e:
        raise OutputError(f"cannot write --{option} {path}: {e.strerror or e}") from None


def _number(x: float) -> str:
    """A number without float noise: at most 3 decimals, trailing zeros dropped."""
    text = f"{float(x):.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _temp_basal_text(temp) -> str:
    if temp is None:
        return "none (no change, or no recommendation on stale glucose)"
    return f"{_number(temp[0])} U/h for {_number(temp[1])} min"


def _bolus_text(bolus) -> str:
    if bolus is None:
        return "none (no recommendation on stale glucose)"
    text = f"{_number(bolus[0])} U (pending insulin {_number(bolus[1])} U)"
    if bolus[2]:
        name, glucose = bolus[2]
        text += f", notice: {name} at {_number(glucose)} mg/dL"
    return text


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
             f"recommended temp basal: {_temp_basal_text(out['recommended_temp_basal'])}",
             f"recommended bolus: {_bolus_text(out['recommended_bolus'])}"]
    if out.get("recommended_autobolus") is not None:
        lines.append(f"recommended automatic bolus: {_number(out['recommended_autobolus'])} U")
    return "\n".join(lines)


def cmd_run(args) -> int:
    from .loop_data_manager import update

    _time_option("at", args.at)
    out = update(load_input(args.report, args.at, args.counteraction, args.allow_missing_doses))
    print(_summary(out))
    if args.json:
        text = json.dumps(_jsonable({k: v for k, v in out.items() if k != "input_data"}), indent=1)
        _write("json", args.json, lambda path: Path(path).write_text(text))
    if args.plot:
        from .plots import plot_update

        _write("plot", args.plot, lambda path: plot_update(out, path, title=Path(args.report).name))
    return EXIT_OK


def cmd_replay(args) -> int:
    from .errors import InvalidInputError, Problem
    from .loop_replay import replay

    start, end = _time_option("start", args.start), _time_option("end", args.end)
    if not (math.isfinite(args.every) and args.every > 0):
        raise InvalidInputError([Problem("--every", None, args.every, "must be a finite number of minutes > 0")])
    d = load_input(args.report, counteraction=args.counteraction, allow_missing_doses=args.allow_missing_doses)
    table = replay(d, start, end, step_minutes=args.every, as_dataframe=False)
    names = list(table)

    def write(path):
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(names)
            for row in zip(*(table[n] for n in names)):
                w.writerow(["" if v is None else _jsonable(v) for v in row])

    _write("csv", args.csv, write)
    print(f"{len(table['time'])} steps written to {args.csv}")
    return EXIT_OK


def cmd_scenario(args) -> int:
    from .algorithm import scenario_main

    return scenario_main([args.file] + (["--prediction-only"] if args.prediction_only else []))


def _report_options(parser) -> None:
    parser.add_argument("--counteraction", choices=("report", "computed"), default="report",
                        help="issue reports: use the counteraction effects Loop cached (report, default) or "
                             "recompute them from the report's glucose and doses (computed)")
    parser.add_argument("--allow-missing-doses", action="store_true",
                        help="issue reports: run a report without any dose section as if no insulin was given "
                             "(default: an error, since IOB would read 0)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyloopkit", description="Run the Loop algorithm on Loop issue reports.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run update() once on an issue report or saved input dictionary")
    r.add_argument("report")
    r.add_argument("--at", help="ISO time to run at (default: the report's time)")
    r.add_argument("--json", help="write the output as JSON to this file")
    r.add_argument("--plot", help="save a figure (PNG) to this file")
    _report_options(r)
    r.set_defaults(func=cmd_run)
    rp = sub.add_parser("replay", help="run the algorithm at every step over the report's history")
    rp.add_argument("report")
    rp.add_argument("--every", type=float, default=5.0, help="step in minutes (default 5)")
    rp.add_argument("--start", help="ISO start time (default: 1 h after the first glucose)")
    rp.add_argument("--end", help="ISO end time (default: the report's time)")
    rp.add_argument("--csv", required=True, help="write the per-step table to this CSV file")
    _report_options(rp)
    rp.set_defaults(func=cmd_replay)
    s = sub.add_parser("scenario", help="run a LoopAlgorithm AlgorithmInput JSON through run()")
    s.add_argument("file")
    s.add_argument("--prediction-only", action="store_true", help="treat FILE as a LoopPredictionInput")
    s.set_defaults(func=cmd_scenario)
    for module in WING_COMMANDS:
        importlib.import_module(module).register(sub)
    return p


def _subject(args) -> str:
    """What a command was run on (its file, report or history argument), for error messages."""
    for name in ("report", "file", "history", "request", "input", "path"):
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            return value
    return f"the {args.command} command's input"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    from .errors import InvalidInputError, MissingDataError

    args = build_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return args.func(args)
        except (InvalidInputError, MissingDataError) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_INVALID
        except OutputError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_UNWRITABLE
        except (OSError, json.JSONDecodeError, KeyError, ValueError, TypeError, IndexError) as e:
            print(f"error: cannot use {_subject(args)}: {e}", file=sys.stderr)
            return EXIT_UNREADABLE
        finally:
            _print_warnings_once(caught)


def _print_warnings_once(caught) -> None:
    """Each distinct warning message once, to stderr (update() both issues and returns its warnings)."""
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"warning: {message}", file=sys.stderr)
