"""Trial conditions beyond announced meals: what the controller is told, and how the patient varies.

A :class:`Conditions` describes, for a batch of episodes:

- ``unannounced_probability``: each meal is, with this probability, not announced (the
  controller sees 0 g: no carb entry, no meal bolus);
- ``carb_fraction_range`` ``(low, high)``: an announced meal is announced as ``f x`` its true
  grams, ``f`` uniform in ``[low, high]`` per meal (mis-estimated carbs);
- ``missed_bolus_probability``: the bolus commanded at an announced meal is, with this
  probability, not delivered (a forgotten bolus; a controller that keeps its own dose
  history, as :class:`~pyloopkit.control.LoopController` does, is not told);
- ``bolus_delay_min``: announcements reach the controller this many minutes late (a
  whole number of decision steps), so the meal bolus is late;
- ``dropouts_per_day`` and ``dropout_mean_min``: sensor dropouts start at this rate
  (a Bernoulli trial at every decision) and last a geometric number of decisions with
  this mean; during a dropout the controller sees the last reading before it;
- ``isf_daily_sd``: at the start of each simulated day every patient's insulin
  sensitivity is multiplied by ``exp(sd z)``, ``z`` standard normal
  (:meth:`Simulator.set_insulin_sensitivity`).

:meth:`Conditions.start` draws everything for an episode from one random stream per
(patient name, episode, seed), independent of the rest of the batch, and returns the
:class:`ConditionState` the trial runner applies at each decision.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem

_STREAM_KEY = 0xC0D1  # separates these streams from the simulator's meal and noise streams


@dataclass(frozen=True)
class Conditions:
    """Scenario conditions of a trial (all off by default); see the module for each field."""

    unannounced_probability: float = 0.0
    carb_fraction_range: tuple[float, float] = (1.0, 1.0)
    missed_bolus_probability: float = 0.0
    bolus_delay_min: int = 0
    dropouts_per_day: float = 0.0
    dropout_mean_min: float = 30.0
    isf_daily_sd: float = 0.0

    def __post_init__(self):
        problems = []
        for name in ("unannounced_probability", "missed_bolus_probability"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 <= value <= 1):
                problems.append(Problem(name, None, value, "must be in [0, 1]"))
        low, high = self.carb_fraction_range
        if not (np.isfinite(low) and np.isfinite(high) and 0 <= low <= high):
            problems.append(Problem("carb_fraction_range", None, self.carb_fraction_range,
                                    "must be (low, high) with 0 <= low <= high"))
        if not (float(self.bolus_delay_min).is_integer() and self.bolus_delay_min >= 0):
            problems.append(Problem("bolus_delay_min", None, self.bolus_delay_min, "must be a whole number >= 0"))
        for name in ("dropouts_per_day", "isf_daily_sd"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                problems.append(Problem(name, None, value, "must be finite and >= 0"))
        if not (np.isfinite(self.dropout_mean_min) and self.dropout_mean_min > 0):
            problems.append(Problem("dropout_mean_min", None, self.dropout_mean_min, "must be finite and > 0"))
        if problems:
            raise InvalidInputError(problems)

    def to_dict(self) -> dict:
        """The fields as a JSON-able dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def start(self, names: list[str], episodes, seed: int, steps: int, step_minutes: int) -> "ConditionState":
        """Draw an episode's conditions for members ``names`` / ``episodes`` (n,) over ``steps`` decisions."""
        if self.bolus_delay_min % step_minutes:
            raise InvalidInputError([Problem("bolus_delay_min", None, self.bolus_delay_min,
                                             f"must be a multiple of the {step_minutes}-minute step")])
        entropy = np.random.SeedSequence(seed).entropy
        days = int(np.ceil(steps * step_minutes / 1440.0)) + 1
        draws = []
        for name, episode in zip(names, episodes):
            key = (zlib.crc32(name.encode("utf-8")), int(episode), _STREAM_KEY)
            rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key))
            draws.append((rng.random((4, steps + 1)), rng.standard_normal(days)))
        uniforms = np.stack([u for u, _ in draws], axis=1)  # (4, n, steps + 1)
        normals = np.stack([z for _, z in draws])  # (n, days)
        low, high = self.carb_fraction_range
        start_p = self.dropouts_per_day * step_minutes / 1440.0
        continue_p = 1.0 - step_minutes / max(self.dropout_mean_min, step_minutes)
        return ConditionState(
            announced=uniforms[0] >= self.unannounced_probability,
            carb_fraction=low + (high - low) * uniforms[1],
            bolus_missed=uniforms[2] < self.missed_bolus_probability,
            dropout=_dropout_mask(uniforms[3], start_p, continue_p),
            isf_scale=np.exp(self.isf_daily_sd * normals) if self.isf_daily_sd > 0 else None,
            delay_steps=int(self.bolus_delay_min) // step_minutes, step_minutes=step_minutes)


def _dropout_mask(uniforms: np.ndarray, start_p: float, continue_p: float) -> np.ndarray:
    """(n, steps + 1) bool: a dropout starts where ``u < start_p`` and continues while ``u < continue_p``.

    Decision 0 (the reset) never drops out.
    """
    mask = np.zeros(uniforms.shape, dtype=bool)
    for k in range(1, uniforms.shape[1]):
        mask[:, k] = np.where(mask[:, k - 1], uniforms[:, k] < continue_p, uniforms[:, k] < start_p)
    return mask


@dataclass
class ConditionState:
    """One episode's drawn conditions, applied decision by decision (``k`` = 0 at the reset).

    Attributes
    ----------
    announced, bolus_missed, dropout : ndarray bool (n, steps + 1)
    carb_fraction : ndarray (n, steps + 1)
    isf_scale : ndarray (n, days) or None
    delay_steps, step_minutes : int
    """

    announced: np.ndarray
    carb_fraction: np.ndarray
    bolus_missed: np.ndarray
    dropout: np.ndarray
    isf_scale: np.ndarray | None
    delay_steps: int
    step_minutes: int

    def __post_init__(self):
        self._told = np.zeros(self.announced.shape)
        self._held_cgm = None

    def insulin_sensitivity(self, k: int) -> np.ndarray | None:
        """The (n,) sensitivity scale to set at decision ``k``, or ``None`` (unchanged)."""
        minute = k * self.step_minutes
        if self.isf_scale is None or minute % 1440 >= self.step_minutes:
            return None
        return self.isf_scale[:, minute // 1440]

    def view(self, step, k: int):
        """The :class:`StepResult` the controller sees at decision ``k``."""
        self._told[:, k] = step.meal_announcement_g * self.announced[:, k] * self.carb_fraction[:, k]
        told = self._told[:, k - self.delay_steps] if k >= self.delay_steps else np.zeros(step.cgm.shape)
        cgm = step.cgm if self._held_cgm is None else np.where(self.dropout[:, k], self._held_cgm, step.cgm)
        self._held_cgm = cgm
        return dataclasses.replace(step, cgm=cgm, meal_announcement_g=told)

    def bolus(self, bolus_u: np.ndarray, seen_step, k: int) -> np.ndarray:
        """The bolus delivered: the command, dropped where a meal bolus is missed at decision ``k``."""
        return np.where(self.bolus_missed[:, k] & (seen_step.meal_announcement_g > 0), 0.0, bolus_u)
