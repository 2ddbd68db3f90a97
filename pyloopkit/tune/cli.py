"""``python -m pyloopkit tune REQUEST.json [--model model|autotune] [--output FILE]``.

Prints (or writes) Tune's version 1 response. Exit codes follow :mod:`pyloopkit.cli`: 3 for a
malformed request (every problem printed), 4 for an unreadable file or too little data.
"""
from __future__ import annotations

import json
import sys


def cmd_tune(args) -> int:
    from ..errors import MissingDataError
    from . import answer

    with open(args.request) as f:
        request = json.load(f)
    try:
        response = answer(request, args.model)
    except MissingDataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    text = json.dumps(response, indent=1)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


def register(subparsers) -> None:
    """Add the ``tune`` subcommand."""
    p = subparsers.add_parser("tune", help="estimate basal, CR and ISF schedules from a Tune v1 request (JSON)")
    p.add_argument("request", help="Tune version 1 request (JSON file)")
    p.add_argument("--model", default="model", choices=("model", "autotune", "standard"),
                   help="estimator: model (least squares on the Loop curves; 'standard' is an alias) or autotune")
    p.add_argument("--output", help="write the response to this file instead of printing it")
    p.set_defaults(func=cmd_tune)
