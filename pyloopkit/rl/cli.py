"""``pyloopkit rl train|evaluate``: train a dosing policy, evaluate it against basal-bolus."""
from __future__ import annotations

import argparse
import json
import shlex


def _floats(text: str) -> list[float]:
    """A comma-separated list of numbers (argparse type)."""
    try:
        return [float(word) for word in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _setting(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` with a JSON value (``gradient_steps=4``, ``learning_rate=1e-4``) (argparse type)."""
    name, sep, value = text.partition("=")
    try:
        if sep and name:
            return name, json.loads(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected NAME=VALUE with a JSON value, got {text!r}")


def train_command(args) -> str:
    """The ``pyloopkit rl train`` command line that reproduces ``args`` (recorded beside the weights)."""
    words = ["pyloopkit", "rl", "train", "--algo", args.algo]
    words += ["--patient", args.patient] if args.patient else ["--group", args.group]
    words += ["--minutes", f"{args.minutes:g}", "--seed", str(args.seed)]
    for flag, value in (("--num-envs", args.num_envs), ("--observation", args.observation),
                        ("--reward", args.reward), ("--decision-interval", args.decision_interval),
                        ("--termination-penalty", args.termination_penalty)):
        if value is not None:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if args.discrete_basal_multiples is not None:
        words += ["--discrete-basal-multiples", ",".join(f"{m:g}" for m in args.discrete_basal_multiples)]
    words += [flag for flag, on in (("--meal-bolus", args.meal_bolus), ("--shield", args.shield)) if on]
    for name, value in (args.hyperparameter or []):
        words += ["--hyperparameter", f"{name}={json.dumps(value)}"]
    return " ".join(shlex.quote(word) for word in words + ["--out", args.out])


def cmd_train(args) -> int:
    from pyloopkit.rl.train import train

    patients = args.patient or args.group
    command = train_command(args)
    options = {name: value for name, value in (("observation", args.observation), ("reward", args.reward),
                                               ("decision_interval_min", args.decision_interval),
                                               ("termination_penalty", args.termination_penalty))
               if value is not None}
    options.update({name: True for name in ("meal_bolus", "shield") if getattr(args, name)})
    if args.discrete_basal_multiples is not None:
        options["discrete_basal_multiples"] = tuple(args.discrete_basal_multiples)
    meta = train(args.algo, patients, args.minutes, args.seed, args.out, num_envs=args.num_envs,
                 options=options, command=command, overrides=dict(args.hyperparameter or []))
    last = meta["learning_curve"][-1] if meta["learning_curve"] else {}
    print(f"{meta['algo']} {patients}: {meta['timesteps']} steps in {meta['training_seconds']:.0f} s; "
          f"last mean reward per decision {last.get('mean_reward', float('nan')):.3f} "
          f"(max {meta['max_reward_per_decision']:.2f}); written to {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from pyloopkit.rl.evaluate import evaluate, evaluate_groups, format_table

    baselines = [name for name in args.baselines.split(",") if name]
    algo, _, who = args.policy.partition(":")
    if who == "groups":
        table = evaluate_groups(algo, seeds=args.seeds, days=args.days, first_seed=args.first_seed,
                                shield=args.shield, baselines=baselines)
    else:
        table = evaluate(args.policy, seeds=args.seeds, days=args.days, patients=args.patients,
                         first_seed=args.first_seed, shield=args.shield, baselines=baselines)
    print(format_table(table))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)
    return 0


def register(subparsers) -> None:
    """Add ``rl train`` and ``rl evaluate`` to the ``pyloopkit`` command line."""
    rl = subparsers.add_parser("rl", help="reinforcement-learning dosing policies (extra `rl`)")
    sub = rl.add_subparsers(dest="rl_command", required=True)
    t = sub.add_parser("train", help="train a policy (RecurrentPPO with an LSTM, or DQN)")
    t.add_argument("--algo", choices=("ppo-lstm", "dqn"), required=True)
    who = t.add_mutually_exclusive_group(required=True)
    who.add_argument("--patient", help="one patient, e.g. adult#001")
    who.add_argument("--group", choices=("child", "adolescent", "adult"), help="a population policy")
    t.add_argument("--minutes", type=float, default=60.0, help="wall-clock training budget (default 60)")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--num-envs", type=int, default=None, help="simulator members trained together")
    t.add_argument("--observation", choices=("cgm", "aura", "context"),
                   help="default: cgm for ppo-lstm, aura for dqn; context: features relative to the patient")
    t.add_argument("--reward", choices=("in_range", "tiered"), help="default: in_range for ppo-lstm, tiered for dqn")
    t.add_argument("--decision-interval", type=int, help="minutes (default: 15 children, 30 otherwise)")
    t.add_argument("--meal-bolus", action="store_true",
                   help="the policy also doses announced meals (a fraction of carbs / carb ratio)")
    t.add_argument("--discrete-basal-multiples", type=_floats, default=None, metavar="M,M,...",
                   help="basal multiples of the discrete actions (DQN), e.g. 0,0.5,1,1.5,2,3")
    t.add_argument("--hyperparameter", type=_setting, action="append", metavar="NAME=VALUE",
                   help="override an SB3 hyper-parameter (repeatable), e.g. gradient_steps=4")
    t.add_argument("--shield", action="store_true",
                   help="train behind the simulation shield (suspend below 70 mg/dL, max bolus, pump increments)")
    t.add_argument("--termination-penalty", type=float, default=None,
                   help="reward added at a termination (negative), default 0")
    t.add_argument("--out", required=True, help="output folder (weights, JSON, learning curve PNG)")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="evaluate a policy against basal-bolus with run_trial")
    e.add_argument("--policy", required=True,
                   help="a policy's .zip/.json path, ALGO:NAME of a shipped one (ppo-lstm:adult#001), or "
                        "ALGO:groups (each group's shipped policy on its group, all 30 patients)")
    e.add_argument("--seeds", type=int, default=20, help="episodes per patient (default 20)")
    e.add_argument("--days", type=float, default=10.0, help="days per episode (default 10)")
    e.add_argument("--patients", default=None, help="patients or group to run (default: the policy's)")
    e.add_argument("--first-seed", type=int, default=1000, help="seed of the trial (default 1000, unseen)")
    e.add_argument("--shield", action="store_true", help="pass the policy's doses through the guardrail shield")
    e.add_argument("--baselines", default="bb",
                   help="comma-separated controllers of the trials protocol run on the same episodes "
                        "(bb, bb-cd, pid, pid-if, loop, loop-ab; default bb; '' for none)")
    e.add_argument("--json", help="write the table as JSON to this file")
    e.set_defaults(func=cmd_evaluate)
