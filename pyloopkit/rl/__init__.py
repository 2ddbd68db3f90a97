"""Reinforcement-learning insulin dosing (extra ``rl``: torch, stable-baselines3, sb3-contrib).

* :mod:`~pyloopkit.rl.env`: :class:`BasalVecEnv`, a Stable-Baselines3 ``VecEnv`` over
  one batched simulator (actions relative to each patient's basal rate, the paper's
  last-CGM observation or Aura's feature vector, in-range or tiered reward, multi-day
  episodes) and :class:`BasalEnv`, its single-patient ``gymnasium.Env`` face;
* :mod:`~pyloopkit.rl.train`: ``train()`` with sb3-contrib ``RecurrentPPO`` or SB3 ``DQN``;
* :mod:`~pyloopkit.rl.policy`: :func:`load_policy` and :class:`PolicyController` (``act(step)``
  for :func:`~pyloopkit.control.trial.run_trial`);
* :mod:`~pyloopkit.rl.shield`: Loop's guardrails on a proposed dose;
* :mod:`~pyloopkit.rl.guarded`: :func:`guarded_update`, ``update()`` with a policy's dose.

Submodules are imported on first use so that ``import pyloopkit.rl`` stays light.
"""
from __future__ import annotations

import importlib
import importlib.util

_EXPORTS = {
    "BasalVecEnv": "env", "BasalEnv": "env", "RLOptions": "env",
    "load_policy": "policy", "PolicyController": "policy",
    "Shield": "shield", "guarded_update": "guarded",
    "train": "train", "evaluate": "evaluate",
}


def require_rl():
    """Import check of the ``rl`` extra; raises ImportError naming it."""
    missing = [name for name in ("torch", "stable_baselines3", "sb3_contrib", "gymnasium")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"pyloopkit.rl needs {', '.join(missing)}: pip install 'pyloopkit[rl]'")


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"pyloopkit.rl.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'pyloopkit.rl' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
