"""``pyloopkit report HISTORY --days 14 --pdf report.pdf [--units mmol/L]`` (registered in pyloopkit.cli)."""
from __future__ import annotations

import sys


def register(subparsers) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser("report", help="write the clinical report (AGP, time in ranges, daily views) as PDF/PNG",
                              description="Write the glucose report of the last DAYS days of a history.")
    p.add_argument("history", nargs="?", help="a History CSV folder or any file pyloopkit.io.read can read")
    p.add_argument("--simulated", type=float, metavar="DAYS",
                   help="report on DAYS days simulated with the basal-bolus controller instead of HISTORY")
    p.add_argument("--seed", type=int, default=0, help="seed of --simulated (default 0)")
    p.add_argument("--days", type=float, default=14.0, help="length of the report window in days (default 14)")
    p.add_argument("--units", default="mg/dL", choices=("mg/dL", "mmol/L"), help="glucose unit shown (default mg/dL)")
    p.add_argument("--tz", help="IANA time zone of the clock (default: the history's)")
    p.add_argument("--pdf", help="write the PDF report to this file")
    p.add_argument("--png-dir", help="write one PNG per page into this folder")
    p.add_argument("--no-prediction", action="store_true", help="leave out the Loop replay prediction-error page")
    p.set_defaults(func=cmd_report)


def load_history(path: str):
    """A History from a History CSV folder (``History.from_csv``: it holds ``meta.json``) or anything
    ``pyloopkit.io.read`` reads (files, and folders such as a Nightscout export).

    Raises
    ------
    OSError
        The path does not exist, or the importers are not part of this installation.
    """
    from pathlib import Path

    from pyloopkit.io.history import History

    if not Path(path).exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if (Path(path) / "meta.json").is_file() and hasattr(History, "from_csv"):
        return History.from_csv(path)
    try:
        from pyloopkit.io import read
    except ImportError as e:
        raise OSError("pyloopkit.io.read is not available in this installation, so HISTORY cannot be read; "
                      "use --simulated DAYS for a simulated history") from e
    return read(path)


def cmd_report(args) -> int:
    """Run the ``report`` subcommand; returns the exit code."""
    from pyloopkit.cli import EXIT_USAGE

    if (args.history is None) == (args.simulated is None):
        print("error: give either HISTORY or --simulated DAYS", file=sys.stderr)
        return EXIT_USAGE
    if not (args.pdf or args.png_dir):
        print("error: give --pdf FILE and/or --png-dir FOLDER", file=sys.stderr)
        return EXIT_USAGE
    if args.simulated is not None:
        from pyloopkit.report.simulated import simulated_history

        history = simulated_history(args.simulated, seed=args.seed)
    else:
        try:
            history = load_history(args.history)
        except OSError as e:
            from pyloopkit.cli import EXIT_UNREADABLE

            print(f"error: cannot read {args.history}: {e}", file=sys.stderr)
            return EXIT_UNREADABLE
    from pyloopkit.errors import MissingDataError

    try:
        return _write(args, history)
    except MissingDataError as e:
        from pyloopkit.cli import EXIT_UNREADABLE

        print(f"error: {args.history or 'the simulated history'}: {e}", file=sys.stderr)
        return EXIT_UNREADABLE


def _write(args, history) -> int:
    from pyloopkit.cli import EXIT_OK
    from pyloopkit.report.pdf import write_pngs, write_report

    if args.pdf:
        result = write_report(history, args.pdf, days=args.days, units=args.units, tz=args.tz,
                              prediction=not args.no_prediction)
        s = result["summary"]
        from pyloopkit.report.units import glucose_units

        u = glucose_units(args.units)
        print(f"{result['path']}: {len(result['pages'])} pages ({', '.join(result['pages'])})")
        print(f"time in range {s['percent_70_180']:.1f} %, below 70: {s['percent_below_70']:.1f} %, "
              f"above 180: {s['percent_above_180']:.1f} %, mean {u.format(s['mean_mg_dl'], True)}, "
              f"GMI {s['gmi_percent']:.1f} %, CV {s['cv_percent']:.1f} %, CGM active {s['cgm_active_percent']:.1f} %")
        for note in result["notes"]:
            print(f"note: {note}")
    if args.png_dir:
        for path in write_pngs(history, args.png_dir, days=args.days, units=args.units, tz=args.tz,
                               prediction=not args.no_prediction):
            print(path)
    return EXIT_OK
