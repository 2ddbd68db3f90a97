"""``pyloopkit forecast train|evaluate|predict``."""
from __future__ import annotations

import json
import os


def register(subparsers) -> None:
    """Add the ``forecast`` command and its subcommands."""
    p = subparsers.add_parser("forecast", help="glucose forecasts to 4 hours: train, evaluate, predict")
    sub = p.add_subparsers(dest="forecast_command", required=True)
    t = sub.add_parser("train", help="simulate the training data and train the shipped LSTM")
    t.add_argument("--out", help="folder for default.pt/default.json (default: the package's weights/)")
    t.add_argument("--cache", help="folder caching the simulated splits (.npz)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--hidden", type=int, default=32)
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="score every model on the held-out test split")
    e.add_argument("--model", default="default", help="LSTM to score (default: the shipped one)")
    e.add_argument("--cache", help="folder caching the simulated splits (.npz)")
    e.add_argument("--out", help="folder for evaluation.csv and the figures")
    e.set_defaults(func=cmd_evaluate)
    r = sub.add_parser("predict", help="forecast from an issue report or a saved input dictionary")
    r.add_argument("file")
    r.add_argument("--model", default="default")
    r.add_argument("--at", help="ISO time of the forecast (default: the report's time)")
    r.set_defaults(func=cmd_predict)


def cmd_train(args) -> int:
    from .training import WEIGHTS_DIR, train

    model = train(args.out or WEIGHTS_DIR, cache=args.cache, seed=args.seed, epochs=args.epochs, hidden=args.hidden)
    print(f"kept {model.name}: validation RMSE at 60 min {model.metadata['validation_rmse_60_min']}")
    return 0


def cmd_evaluate(args) -> int:
    from .baselines import Autoregressive, LinearTrend, LoopPrediction, Persistence
    from .data import DEFAULT_RECIPE
    from .evaluation import evaluate, plot_errors, plot_examples
    from .training import load_forecaster, split_rows

    test = split_rows(DEFAULT_RECIPE, "test", args.cache, progress=True)
    ar = Autoregressive().fit(split_rows(DEFAULT_RECIPE, "train", args.cache, progress=True))
    models = [Persistence(), LinearTrend(), ar, LoopPrediction(), load_forecaster(args.model)]
    table = evaluate(models, test)
    columns = ["model", "horizon_min", "rmse", "mae", "bias", "mard_percent", "clarke_A_percent",
               "parkes_A_percent", "hypo_sensitivity", "hypo_precision"]
    print(f"{len(test)} held-out rows")
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        table.to_csv(os.path.join(args.out, "evaluation.csv"), index=False)
        plot_errors(table, os.path.join(args.out, "forecast_rmse.png"))
        plot_examples(models[-2:] + models[:1], test, range(0, len(test), max(1, len(test) // 4))[:4],
                      os.path.join(args.out, "forecast_examples.png"))
    return 0


def cmd_predict(args) -> int:
    from ..cli import load_input
    from .training import load_forecaster

    forecast = load_forecaster(args.model).predict(load_input(args.file, args.at))
    print(json.dumps({"dates": [d.isoformat() for d in forecast["dates"]],
                      "values": [round(v, 2) for v in forecast["values"]]}, indent=1))
    return 0
