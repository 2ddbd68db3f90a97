"""Meal scenarios: simglucose-style random days, custom meal lists, body-weight-scaled meals.

A scenario gives, for each batch member and each simulated minute, the CHO (g)
announced to the patient at that minute; the patient eats it at up to 5 g/min
(see :mod:`pyloopkit.simulation.model`). Random scenarios draw from one
:class:`numpy.random.Generator` per member, day by day, so a patient's meals do
not depend on the rest of the batch.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy.special import ndtr, ndtri

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.simulation.patients import PatientParams

MIN_PER_DAY = 1440


class MealPlan(ABC):
    """The meals of one episode of a batch, produced on demand, in time order."""

    @abstractmethod
    def events(self, start_min: int, end_min: int) -> tuple[np.ndarray, np.ndarray]:
        """Meals announced in ``[start_min, end_min)``: minutes (n, k) int64 and grams (n, k).

        Column ``j`` is one possible meal per member; a minute of -1 marks no meal.
        Successive calls must not move ``start_min`` backwards.
        """

    def grams(self, start_min: int, end_min: int) -> np.ndarray:
        """CHO announced at each minute of ``[start_min, end_min)`` (g), shape (n, end_min - start_min)."""
        minutes, grams = self.events(start_min, end_min)
        out = np.zeros((minutes.shape[0], end_min - start_min))
        member, column = np.nonzero(minutes >= 0)
        np.add.at(out, (member, minutes[member, column] - start_min), grams[member, column])
        return out


class Scenario(ABC):
    """Produces a :class:`MealPlan` per episode."""

    @abstractmethod
    def plan(self, patients: PatientParams, seeds, start_hour: float) -> MealPlan:
        """Meals for a batch; ``seeds``: one ``SeedSequence`` per member; minute 0 is ``start_hour`` o'clock."""


class CustomScenario(Scenario):
    """The same meals for every member: ``meals`` lists ``(minute since start, grams)``."""

    def __init__(self, meals):
        entries = [tuple(meal) for meal in meals]
        problems = [Problem("meals", k, entry, "must be (minute, grams) with a whole minute >= 0 and grams >= 0")
                    for k, entry in enumerate(entries)
                    if len(entry) != 2 or not (np.isfinite(entry[0]) and float(entry[0]).is_integer() and entry[0] >= 0
                                               and np.isfinite(entry[1]) and entry[1] >= 0)]
        if problems:
            raise InvalidInputError(problems)
        self.minutes = np.array([int(minute) for minute, _ in entries], dtype=np.int64)
        self.grams_ = np.array([float(grams) for _, grams in entries])

    def plan(self, patients, seeds, start_hour):
        return _FixedPlan(patients.n, self.minutes, self.grams_)


class _FixedPlan(MealPlan):
    def __init__(self, n, minutes, grams):
        self.n, self.minutes, self.grams_ = n, minutes, grams

    def events(self, start_min, end_min):
        inside = (self.minutes >= start_min) & (self.minutes < end_min)
        shape = (self.n, int(inside.sum()))
        return (np.broadcast_to(self.minutes[inside], shape).copy(),
                np.broadcast_to(self.grams_[inside], shape).copy())


class RandomScenario(Scenario):
    """simglucose's ``RandomScenario``: up to six meals a day at random times and sizes.

    For breakfast, morning snack, lunch, afternoon snack, dinner and evening snack:
    the meal happens with probability ``probability``; its time of day (min) is a
    normal ``(time_mean_min, time_sd_min)`` truncated to ``[time_low_min, time_high_min]``
    and rounded to the minute; its size is ``max(round(N(amount_mean_g, amount_sd_g)), 0)`` g.
    A new day is drawn at each midnight; meals before ``start_hour`` on the first day
    are in the past. The distributions are simglucose's; the draws (inverse-CDF
    transforms of uniforms from one ``numpy.random.Generator`` per member) are not
    its ``RandomState`` sequence, so a seed does not give simglucose's meals.
    """

    probability = np.array([0.95, 0.3, 0.95, 0.3, 0.95, 0.3])
    time_low_min = np.array([5, 9, 10, 14, 16, 20]) * 60.0
    time_high_min = np.array([9, 10, 14, 16, 20, 23]) * 60.0
    time_mean_min = np.array([7, 9.5, 12, 15, 18, 21.5]) * 60.0
    time_sd_min = np.array([60, 30, 60, 30, 60, 30], dtype=float)
    amount_mean_g = np.array([45, 10, 70, 10, 80, 10], dtype=float)
    amount_sd_g = np.array([10, 5, 10, 5, 10, 5], dtype=float)

    def amount_scale(self, patients: PatientParams) -> np.ndarray:
        """Factor applied to the meal-size mean and SD of each member (1 here)."""
        return np.ones(patients.n)

    def plan(self, patients, seeds, start_hour):
        return _RandomPlan(self, self.amount_scale(patients), seeds, int(round(start_hour * 60.0)))

    def draw_days(self, uniforms: np.ndarray, scale: np.ndarray):
        """Meal times of day (min) and sizes (g) from uniforms of shape (n, days, 6, 3).

        Returns arrays (n, days, 6); a meal that does not happen has size 0.
        """
        happens = uniforms[..., 0] < self.probability
        low = ndtr((self.time_low_min - self.time_mean_min) / self.time_sd_min)
        high = ndtr((self.time_high_min - self.time_mean_min) / self.time_sd_min)
        z = ndtri(low + uniforms[..., 1] * (high - low))
        time_of_day = np.round(self.time_mean_min + self.time_sd_min * z)
        size = scale[:, None, None] * (self.amount_mean_g + self.amount_sd_g * ndtri(uniforms[..., 2]))
        amount = np.maximum(np.round(size), 0.0)
        return time_of_day, np.where(happens, amount, 0.0)


class _RandomPlan(MealPlan):
    def __init__(self, scenario, scale, seeds, offset_min):
        self.scenario, self.scale, self.offset_min = scenario, scale, offset_min
        self.generators = [np.random.default_rng(seed) for seed in seeds]
        self.first_day = 0
        self.times = np.empty((len(seeds), 0, 6))
        self.amounts = np.empty((len(seeds), 0, 6))

    def _ensure_days(self, last_day):
        missing = last_day + 1 - (self.first_day + self.times.shape[1])
        if missing > 0:
            uniforms = np.stack([g.random((missing, 6, 3)) for g in self.generators]).reshape(-1, missing, 6, 3)
            times, amounts = self.scenario.draw_days(uniforms, self.scale)
            self.times = np.concatenate([self.times, times], axis=1)
            self.amounts = np.concatenate([self.amounts, amounts], axis=1)

    def events(self, start_min, end_min):
        first = (start_min + self.offset_min) // MIN_PER_DAY
        last = (end_min - 1 + self.offset_min) // MIN_PER_DAY
        self._ensure_days(last)
        drop = first - self.first_day
        if drop > 0:
            self.times, self.amounts, self.first_day = self.times[:, drop:], self.amounts[:, drop:], first
        days = self.first_day + np.arange(last + 1 - self.first_day)
        minutes = (days[None, :, None] * MIN_PER_DAY + self.times[:, : days.size] - self.offset_min).astype(np.int64)
        amounts = self.amounts[:, : days.size]
        inside = (minutes >= start_min) & (minutes < end_min) & (amounts > 0)
        n = len(self.generators)
        return np.where(inside, minutes, -1).reshape(n, -1), np.where(inside, amounts, 0.0).reshape(n, -1)


class HarrisBenedictScenario(RandomScenario):
    """Random meals whose sizes scale with each patient's estimated daily carbohydrate need.

    Daily energy = ``activity_factor`` x basal metabolic rate from the Harris-Benedict
    equations (1918; mean of the male and female equations, as the patients have no
    sex), with height estimated from body weight at ``bmi_kg_m2``; carbohydrates
    supply ``carb_fraction`` of it at 4 kcal/g. Meal sizes (mean and SD) are
    simglucose's multiplied by ``daily carbs / 225 g`` (the sum of simglucose's
    mean meal sizes). These constants are modelling assumptions, not simglucose's.
    """

    def __init__(self, activity_factor: float = 1.4, carb_fraction: float = 0.45, bmi_kg_m2: float = 22.0):
        self.activity_factor, self.carb_fraction, self.bmi_kg_m2 = activity_factor, carb_fraction, bmi_kg_m2

    def daily_carbs_g(self, patients: PatientParams) -> np.ndarray:
        """Estimated daily CHO need (g/day) of each patient."""
        weight, age = patients.BW, patients.age
        height_cm = 100.0 * np.sqrt(weight / self.bmi_kg_m2)
        male = 66.473 + 13.7516 * weight + 5.0033 * height_cm - 6.755 * age
        female = 655.0955 + 9.5634 * weight + 1.8496 * height_cm - 4.6756 * age
        return self.activity_factor * 0.5 * (male + female) * self.carb_fraction / 4.0

    def amount_scale(self, patients):
        return self.daily_carbs_g(patients) / self.amount_mean_g.sum()
