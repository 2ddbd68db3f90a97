"""``pyloopkit trial`` and ``pyloopkit trial-report`` (registered through ``pyloopkit.cli.WING_COMMANDS``).

Nothing heavy is imported here; the commands import the simulator when they run.
"""
from __future__ import annotations

ALL_CONTROLLERS = "bb,bb-cd,pid,pid-if,loop"


def register(subparsers) -> None:
    """Add the ``trial`` and ``trial-report`` subcommands."""
    t = subparsers.add_parser("trial", help="run the in-silico population protocol (controllers x patients x seeds)")
    t.add_argument("--controller", default=ALL_CONTROLLERS, help=f"comma-separated (default {ALL_CONTROLLERS})")
    t.add_argument("--patients", default="all", help="'all', a group or comma-separated patient names")
    t.add_argument("--seeds", type=int, default=20, help="episodes per patient: seeds 0..N-1 (default 20)")
    t.add_argument("--days", type=float, default=10.0, help="episode length in days (default 10)")
    t.add_argument("--seed", type=int, default=0, help="trial seed (default 0)")
    t.add_argument("--out", required=True, help="results folder (table, trial.json)")
    t.add_argument("--format", choices=("csv", "parquet"), default="csv")
    t.add_argument("--backend", choices=("local", "processes", "ray"), default="local")
    t.add_argument("--workers", type=int, help="local processes; implies --backend processes")
    t.add_argument("--address", help="Ray cluster address (--backend ray)")
    t.add_argument("--chunk-seeds", type=int, help="seeds per chunk (default: all locally, 1 otherwise)")
    t.add_argument("--bg-low", type=float, default=10.0, help="terminate below this BG (mg/dL, default 10)")
    t.add_argument("--bg-high", type=float, default=1000.0, help="terminate above this BG (mg/dL, default 1000)")
    c = t.add_argument_group("scenario conditions (pyloopkit.simulation.conditions)")
    c.add_argument("--unannounced", type=float, default=0.0, help="probability a meal is not announced")
    c.add_argument("--carb-fraction", type=float, nargs=2, default=(1.0, 1.0), metavar=("LOW", "HIGH"),
                   help="announced grams = true grams x U(LOW, HIGH)")
    c.add_argument("--missed-bolus", type=float, default=0.0, help="probability a meal bolus is not given")
    c.add_argument("--bolus-delay", type=int, default=0, help="announcements reach the controller N min late")
    c.add_argument("--dropouts-per-day", type=float, default=0.0, help="CGM dropouts per day")
    c.add_argument("--dropout-mean-min", type=float, default=30.0, help="mean dropout length (min)")
    c.add_argument("--isf-sd", type=float, default=0.0, help="SD of the daily log insulin sensitivity factor")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_trial)
    r = subparsers.add_parser("trial-report", help="figures and Markdown tables of a trial's results folder")
    r.add_argument("results", help="folder written by 'pyloopkit trial'")
    r.set_defaults(func=cmd_trial_report)


def _conditions(args):
    from pyloopkit.simulation.conditions import Conditions

    conditions = Conditions(unannounced_probability=args.unannounced, carb_fraction_range=tuple(args.carb_fraction),
                            missed_bolus_probability=args.missed_bolus, bolus_delay_min=args.bolus_delay,
                            dropouts_per_day=args.dropouts_per_day, dropout_mean_min=args.dropout_mean_min,
                            isf_daily_sd=args.isf_sd)
    return None if conditions == Conditions() else conditions


def cmd_trial(args) -> int:
    import time

    from pyloopkit.control.population import run_population_trial
    from pyloopkit.control.results import save_trial

    backend = "processes" if args.workers and args.backend == "local" else args.backend
    controllers = [c.strip() for c in args.controller.split(",") if c.strip()]
    conditions = _conditions(args)
    start = time.perf_counter()
    table = run_population_trial(controllers, args.patients, args.seeds, args.days, seed=args.seed,
                                 conditions=conditions, bounds_mg_dl=(args.bg_low, args.bg_high), backend=backend,
                                 workers=args.workers, address=args.address, chunk_seeds=args.chunk_seeds,
                                 progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    info = {"controllers": controllers, "patients": list(dict.fromkeys(table["patient"])),
            "seeds": list(range(args.seeds)), "days": args.days, "seed": args.seed,
            "bounds_mg_dl": [args.bg_low, args.bg_high], "sensor": "Dexcom", "pump": "Insulet",
            "scenario": "random", "step_minutes": 5,
            "conditions": None if conditions is None else conditions.to_dict(),
            "command": "pyloopkit trial " + " ".join(
                f"--{k} {v}" for k, v in (("controller", args.controller), ("patients", args.patients),
                                          ("seeds", args.seeds), ("days", args.days), ("seed", args.seed)))}
    path = save_trial(table, args.out, info, args.format)
    days = len(table) * args.days
    print(f"{len(table)} episodes ({days:g} patient-days) in {elapsed:.1f} s; wrote {path} and trial.json")
    return 0


def cmd_trial_report(args) -> int:
    from pyloopkit.control.trial_report import markdown, write_report
    from pyloopkit.control.results import load_trial

    paths = write_report(args.results)
    print(markdown(load_trial(args.results)))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
