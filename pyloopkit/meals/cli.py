"""``pyloopkit meal "had a sandwich" [--report R | --input I | --history H]``: log a meal in plain words.

Without a data source it prints what it understood; with one it adds the carb entries, runs
``update()`` and prints the predicted peak and the recommended bolus.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def _input_from_history(path: str, at: str | None) -> dict:
    try:
        from ..io import read
    except ImportError as e:
        raise RuntimeError("--history needs pyloopkit.io.read, which this installation lacks "
                           "(the io wing: pip install 'pyloopkit[io]' with a version that has it)") from e
    history = read(path)
    if at is None:
        return history.to_input_dict()
    from ..date import parse_datetime

    return history.to_input_dict(at=parse_datetime(at))


def _print_parse(meal: dict) -> None:
    for item in meal["items"]:
        grams = "" if item["portion_g"] is None else f" ({item['portion_g']:.0f} g)"
        print(f"  {item['quantity']:g} {item['unit'] or ''} {item['name']}{grams}: {item['carbs_g']:.1f} g carbs, "
              f"{item['absorption']} ({item['absorption_minutes']:.0f} min), confidence {item['confidence']:.2f}")
    print(f"  total: {meal['total_carbs_g']:.1f} g carbs")
    for m in meal["mentions"]:
        value = "" if m["value"] is None else f" {m['value']:g} {m['unit']}"
        print(f"  {m['kind']}:{value} ({m['text'].strip()})")
    for text in meal["not_understood"]:
        print(f"  not understood: {text!r}")


def cmd_meal(args) -> int:
    from ..cli import EXIT_OK, EXIT_UNREADABLE, _jsonable, load_input
    from .loop import log
    from .parser import parse

    sources = [s for s in (args.report, args.input, args.history) if s]
    if len(sources) > 1:
        print("error: give at most one of --report, --input and --history", file=sys.stderr)
        return 2
    if not sources:
        meal = parse(args.text).to_dict()
        print("understood:")
        _print_parse(meal)
        result = {"parse": meal}
    else:
        try:
            input_dict = (_input_from_history(args.history, args.at) if args.history
                          else load_input(args.report or args.input, args.at))
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_UNREADABLE
        result = log(args.text, input_dict)
        print("logged:")
        _print_parse(result["parse"])
        if result["predicted_peak_mg_dl"] is None:
            print("predicted peak: none (update() gave no prediction)")
        else:
            print(f"predicted peak: {result['predicted_peak_mg_dl']:.1f} mg/dL at {result['predicted_peak_at']}")
        bolus = result["recommended_bolus_u"]
        print("recommended bolus: none" if bolus is None else f"recommended bolus: {bolus:.2f} U")
        for warning in result["update"]["warnings"]:
            print(f"warning: {warning}")
    if args.json:
        Path(args.json).write_text(json.dumps(_jsonable(result), indent=1))
    return EXIT_OK


def register(subparsers) -> None:
    """Add the ``meal`` subcommand."""
    p = subparsers.add_parser("meal", help="log a meal in plain words: carbs, prediction and bolus")
    p.add_argument("text", help='what was eaten, e.g. "2 slices of pizza and a coke"')
    p.add_argument("--report", help="Loop issue report or saved input dictionary (JSON) to run update() on")
    p.add_argument("--input", help="saved PyLoopKit input dictionary (JSON)")
    p.add_argument("--history", help="any file pyloopkit.io.read reads")
    p.add_argument("--at", help="ISO time of the meal and of the run (default: the data's time)")
    p.add_argument("--json", help="write the result as JSON to this file")
    p.set_defaults(func=cmd_meal)
