"""Training with well-kept agents: sb3-contrib ``RecurrentPPO`` (the paper's PPO-RNN) and SB3 ``DQN`` (Aura's).

:func:`train` builds a :class:`~pyloopkit.rl.env.BasalVecEnv` under SB3's
``VecNormalize`` (observations and rewards), trains for a wall-clock budget,
and writes into ``out``: ``<name>.zip`` (SB3 weights), ``<name>.json`` (algorithm,
patients, env options, hyper-parameters, seed, command, training time,
observation-normalisation statistics, learning curve) and ``<name>.png`` (the
learning curve: mean raw reward per decision and fraction of minutes in
70-180 mg/dL against environment steps).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.rl import require_rl

require_rl()

import torch  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize  # noqa: E402

from pyloopkit.rl.env import PAPER_STEP_MIN, BasalVecEnv, RLOptions  # noqa: E402

ALGOS = ("ppo-lstm", "dqn")
#: Default environment options per algorithm (the DQN follows Aura: discrete doses, its features, tiered reward).
ALGO_OPTIONS = {
    "ppo-lstm": {"observation": "cgm", "action": "basal_multiple", "reward": "in_range"},
    "dqn": {"observation": "aura", "action": "discrete", "reward": "tiered"},
}
#: Decision interval (min) by age group, as in the paper (children 15, adolescents 30, adults 30; the
#: paper uses 45 for adults, 30 reached 93.6 % for adult#001 in the planning runs).
DECISION_INTERVAL_MIN = {"child": 15, "adolescent": 30, "adult": 30}
#: Hyper-parameters (SB3 keyword arguments) per algorithm.
HYPERPARAMETERS = {
    "ppo-lstm": {"n_steps": 128, "batch_size": 512, "n_epochs": 5, "learning_rate": 3e-4, "gamma": 0.99,
                 "gae_lambda": 0.95, "ent_coef": 0.0, "clip_range": 0.2,
                 "policy_kwargs": {"lstm_hidden_size": 64, "n_lstm_layers": 1, "net_arch": [64]}},
    "dqn": {"learning_rate": 5e-4, "buffer_size": 100_000, "learning_starts": 2_000, "batch_size": 128,
            "gamma": 0.99, "train_freq": 4, "gradient_steps": 1, "target_update_interval": 2_000,
            "exploration_final_eps": 0.02, "policy_kwargs": {"net_arch": [64, 64]}},
}
#: DQN's epsilon falls linearly from 1 to ``exploration_final_eps`` over this many environment steps. SB3
#: schedules it over a fraction of ``total_timesteps``, unknown when training for a wall-clock budget.
DQN_EXPLORATION_STEPS = 300_000
NUM_ENVS = {"ppo-lstm": 16, "dqn": 16}
#: Learning-curve points are means over this many environment steps.
CURVE_CHUNK_STEPS = 4096


def group_of(patient: str) -> str:
    """The age group of a patient name (``"child#003"`` -> ``"child"``) or of a group name."""
    return patient.split("#")[0]


class _Budget(BaseCallback):
    """Stops training after ``seconds`` of wall time, shows a tqdm bar and records the learning curve."""

    def __init__(self, seconds: float, steps_per_reward_unit: float, progress: bool):
        super().__init__()
        self.seconds = float(seconds)
        self.unit = steps_per_reward_unit
        self.progress = progress
        self.curve = []
        self._sum = self._count = 0.0
        self._terminations = 0

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()
        self.bar = None
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=int(self.seconds), unit="s", desc="training", file=sys.stderr)

    def _on_step(self) -> bool:
        raw = self.training_env.get_original_reward()
        self._sum += float(raw.sum())
        self._count += raw.size
        self._terminations += sum(info.get("terminated", False) for info in self.locals["infos"])
        if self._count >= CURVE_CHUNK_STEPS:
            mean = self._sum / self._count
            self.curve.append({"timesteps": int(self.num_timesteps), "seconds": time.perf_counter() - self.start,
                               "mean_reward": mean, "terminations": self._terminations})
            self._sum = self._count = 0.0
            self._terminations = 0
        elapsed = time.perf_counter() - self.start
        if self.bar is not None and int(elapsed) > self.bar.n:
            self.bar.set_postfix(steps=self.num_timesteps,
                                 reward=f"{self.curve[-1]['mean_reward']:.2f}" if self.curve else "-", refresh=False)
            self.bar.update(min(int(elapsed), self.bar.total) - self.bar.n)
        return elapsed < self.seconds

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


def hyperparameters(algo: str, overrides: dict | None = None) -> dict:
    """:data:`HYPERPARAMETERS` of ``algo`` with ``overrides`` (SB3 keyword arguments); unknown names raise."""
    values = dict(HYPERPARAMETERS[algo])
    unknown = sorted(set(overrides or {}) - set(values))
    if unknown:
        raise InvalidInputError([Problem("hyperparameters", None, name, f"must be one of {sorted(values)}")
                                 for name in unknown])
    return {**values, **(overrides or {})}


def make_model(algo: str, env, seed: int, overrides: dict | None = None):
    """The SB3 model of ``algo`` on ``env`` with :func:`hyperparameters` (CPU, one torch thread)."""
    kwargs = hyperparameters(algo, overrides)
    kwargs["policy_kwargs"] = dict(kwargs["policy_kwargs"])
    if algo == "ppo-lstm":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO("MlpLstmPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    final = kwargs["exploration_final_eps"]
    model.exploration_schedule = lambda _progress: max(final, 1.0 - (1.0 - final) * model.num_timesteps
                                                       / DQN_EXPLORATION_STEPS)
    return model


def model_class(algo: str):
    """The SB3 class that loads ``algo``'s weights."""
    if algo == "ppo-lstm":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    from stable_baselines3 import DQN

    return DQN


def policy_name(algo: str, patients: str) -> str:
    """File stem of a policy: ``ppo-lstm_adult001`` (``#`` dropped), ``dqn_child``."""
    return f"{algo}_{patients.replace('#', '')}"


def fit(algo: str, patients: str, options: RLOptions, seed: int, seconds: float, num_envs: int,
        progress: bool = False, total_timesteps: int | None = None, overrides: dict | None = None):
    """Train ``algo`` on a :class:`BasalVecEnv` under ``VecNormalize`` for ``seconds`` of wall time (or
    ``total_timesteps`` steps); returns ``(model, env, callback, training seconds)``."""
    torch.set_num_threads(1)
    env = VecNormalize(BasalVecEnv(patients, num_envs, seed=seed, options=options), gamma=0.99)
    model = make_model(algo, env, seed, overrides)
    budget = _Budget(seconds, options.decision_interval_min / PAPER_STEP_MIN, progress)
    started = time.perf_counter()
    model.learn(total_timesteps=total_timesteps or 10**9, callback=budget)
    return model, env, budget, time.perf_counter() - started


def mean_policy_reward(model, env: VecNormalize, steps: int, seed: int) -> float:
    """Mean raw reward per decision of ``model``'s deterministic actions over ``steps`` decisions of
    ``env``'s members, from a reset with ``seed`` (normalisation statistics frozen)."""
    env.training = False
    env.seed(seed)
    observation = env.reset()
    state, starts, total = None, np.ones(env.num_envs, dtype=bool), 0.0
    for _ in range(steps):
        if isinstance(model, model_class("ppo-lstm")):
            action, state = model.predict(observation, state=state, episode_start=starts, deterministic=True)
        else:
            action, _ = model.predict(observation, deterministic=True)
        observation, _, starts, _ = env.step(action)
        total += float(env.get_original_reward().mean())
    return total / steps


def train(algo: str, patients: str, minutes: float, seed: int, out: str | Path, num_envs: int | None = None,
          options: dict | None = None, progress: bool = True, command: str | None = None,
          total_timesteps: int | None = None, overrides: dict | None = None) -> dict:
    """Train a policy and write its weights, metadata and learning curve into ``out``.

    Parameters
    ----------
    algo : "ppo-lstm" or "dqn"
    patients : str
        One patient (``"adult#001"``) or a group (``"child"``: a population policy).
    minutes : float
        Wall-clock training budget (min).
    seed : int
        Seed of the agent (torch, numpy) and of the environments' first reset.
    out : path
        Output folder (created).
    num_envs : int or None
        Simulator members trained together; ``None``: :data:`NUM_ENVS`.
    options : dict or None
        :class:`~pyloopkit.rl.env.RLOptions` fields overriding the algorithm's defaults.
    progress : bool
        Show a tqdm progress bar (stderr).
    command : str or None
        The command line to record; ``None``: ``sys.argv``.
    total_timesteps : int or None
        Stop after this many environment steps too (a test's budget).
    overrides : dict or None
        Hyper-parameters replacing :data:`HYPERPARAMETERS`' (e.g. ``{"gradient_steps": 4}``).

    Returns
    -------
    dict
        The metadata written to ``<name>.json``.
    """
    problems = []
    if algo not in ALGOS:
        problems.append(Problem("algo", None, algo, f"must be one of {ALGOS}"))
    if not (np.isfinite(minutes) and minutes > 0):
        problems.append(Problem("minutes", None, minutes, "must be > 0"))
    if problems:
        raise InvalidInputError(problems)
    values = {**ALGO_OPTIONS[algo], "decision_interval_min": DECISION_INTERVAL_MIN.get(group_of(patients), 30),
              **(options or {})}
    env_options = RLOptions(**values)
    used = hyperparameters(algo, overrides)
    num_envs = NUM_ENVS[algo] if num_envs is None else num_envs
    model, env, budget, seconds = fit(algo, patients, env_options, seed, minutes * 60.0, num_envs, progress,
                                      total_timesteps, overrides)
    per_unit = budget.unit
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = policy_name(algo, patients)
    # the DQN epsilon schedule is a closure over the model: saved, it would drag the replay buffer along
    model.save(out / f"{name}.zip", exclude=["exploration_schedule"])
    meta = {
        "algo": algo, "patients": patients, "options": env_options.to_dict(), "seed": int(seed),
        "num_envs": int(num_envs), "hyperparameters": {**used, **(
            {"exploration_steps": DQN_EXPLORATION_STEPS} if algo == "dqn" else {})},
        "command": command if command is not None else " ".join(sys.argv),
        "training_seconds": round(seconds, 1), "timesteps": int(model.num_timesteps),
        "torch_threads": 1, "versions": _versions(),
        "obs_mean": env.obs_rms.mean.tolist(), "obs_var": env.obs_rms.var.tolist(),
        "clip_obs": float(env.clip_obs), "epsilon": float(env.epsilon),
        "max_reward_per_decision": per_unit, "learning_curve": budget.curve,
    }
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))
    plot_learning_curve(meta, out / f"{name}.png")
    return meta


def _versions() -> dict:
    import sb3_contrib
    import stable_baselines3

    return {"torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__,
            "sb3_contrib": sb3_contrib.__version__}


def plot_learning_curve(meta: dict, path: str | Path) -> None:
    """Mean raw reward per decision (as a fraction of the in-range maximum) against environment steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = meta["learning_curve"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [point["timesteps"] for point in curve]
    ax.plot(steps, [point["mean_reward"] / meta["max_reward_per_decision"] for point in curve], marker=".")
    label = "in 70-180 mg/dL" if meta["options"]["reward"] == "in_range" else "tiered reward"
    ax.set_xlabel("environment steps (decisions)")
    ax.set_ylabel(f"mean reward / max ({label})")
    ax.set_title(f"{meta['algo']} {meta['patients']}: seed {meta['seed']}, {meta['training_seconds']:.0f} s")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def random_policy_reward(patients: str, options: RLOptions, steps: int, seed: int, num_envs: int = 16) -> float:
    """Mean raw reward per decision of uniformly random actions (the baseline of the smoke test)."""
    env = BasalVecEnv(patients, num_envs, seed=seed, options=options)
    env.action_space.seed(seed)
    env.reset()
    total = 0.0
    for _ in range(steps):
        actions = np.stack([env.action_space.sample() for _ in range(num_envs)])
        _, reward, _, _ = env.step(actions)
        total += float(reward.mean())
    return total / steps


__all__ = ["ALGOS", "fit", "mean_policy_reward", "plot_learning_curve", "policy_name", "random_policy_reward", "train"]
