"""``pyloopkit import FILE [--format F] [--out DIR]``: read a file, folder or Nightscout site, print a summary.

Imports nothing heavy at module level (the command imports pandas when it runs).
"""
from __future__ import annotations


def register(subparsers) -> None:
    """Add the ``import`` subcommand."""
    p = subparsers.add_parser("import", help="read a data export (Loop report, Nightscout, Tidepool, Clarity, "
                                             "LibreView, OhioT1DM, CSV) and print what was read and skipped")
    p.add_argument("file", nargs="?", help="file, export folder or Nightscout URL")
    p.add_argument("--nightscout", metavar="URL", help="a Nightscout site (same as giving its URL as FILE)")
    p.add_argument("--format", help="format name (default: detected); one of loop_report, nightscout, tidepool, "
                                    "clarity, libreview, ohio, csv, history")
    p.add_argument("--tz", help="IANA zone of local times without offset (Clarity, LibreView, OhioT1DM, ...)")
    p.add_argument("--token", help="Nightscout access token")
    p.add_argument("--days", type=float, help="Nightscout site: days to fetch (default 14)")
    p.add_argument("--low-high", choices=("skip", "limit"), default="skip",
                   help="CGM Low/High markers: skip them (default) or import them at the sensor's limits")
    p.add_argument("--out", metavar="DIR", help="write the History as CSV tables into this folder")
    p.add_argument("--show-skipped", type=int, default=10, metavar="N",
                   help="print up to N reasons for skipped records (default 10)")
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    """Run ``import``; returns the exit code."""
    import sys

    from . import detect, read

    args.file = args.file or args.nightscout  # main() names args.file in its error messages
    if not args.file:
        print("error: give a FILE or --nightscout URL", file=sys.stderr)
        return 2
    kw = {k: v for k, v in (("tz", args.tz), ("token", args.token), ("days", args.days)) if v is not None}
    if args.low_high != "skip":
        kw["low_high"] = args.low_high
    fmt = args.format or detect(args.file)
    history = read(args.file, format=fmt, **kw)
    print(summary(history, fmt, args.show_skipped))
    if args.out:
        print(f"written to {history.to_csv(args.out)}")
    return 0


def summary(history, fmt: str, show_skipped: int = 10) -> str:
    """A few lines on what a History holds and what was skipped (counts by reason)."""
    g, d, c = history.glucose, history.doses, history.carbs
    lines = [f"{history.source} ({fmt}), zone {history.tz}"]
    if not g.empty:
        lines.append(f"glucose: {len(g)} readings ({', '.join(f'{n} {k}' for k, n in g['kind'].value_counts().items())})"
                     f" from {g['time'].iloc[0].isoformat()} to {g['time'].iloc[-1].isoformat()}, "
                     f"mean {g['glucose_mg_dl'].mean():.1f} mg/dL")
    else:
        lines.append("glucose: none")
    by_type = ", ".join(f"{n} {t}" for t, n in d["type"].value_counts().items()) or "none"
    bolus_u = d.loc[d["type"] == "BOLUS", "value"].sum()
    lines.append(f"doses: {len(d)} ({by_type}); boluses {bolus_u:.2f} U")
    lines.append(f"carbs: {len(c)} entries, {c['grams'].sum():.0f} g")
    schedules = [k.removesuffix("_start_times") for k in history.settings if k.endswith("_start_times")]
    lines.append(f"settings: {', '.join(schedules) or 'no schedules'}"
                 + (f"; {', '.join(history.settings.get('settings_dictionary', {}))}"
                    if history.settings.get("settings_dictionary") else ""))
    if history.settings.get("timeline"):
        lines.append(f"  {len(history.settings['timeline'])} settings in the timeline (profile or pump-settings changes)")
    if history.app_output:
        lines.append(f"app output: {', '.join(history.app_output)}")
    s = history.skipped
    lines.append(f"skipped: {len(s)}")
    if len(s) and show_skipped > 0:
        counts = s["reason"].value_counts()
        for reason, n in counts.head(show_skipped).items():
            lines.append(f"  {n:6d}  {reason}")
    return "\n".join(lines)
