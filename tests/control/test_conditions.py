"""Scenario conditions: unannounced meals, mis-estimated carbs, missed and delayed boluses, dropouts, ISF."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pyloopkit.errors import InvalidInputError
from pyloopkit.simulation import Simulator
from pyloopkit.simulation.conditions import Conditions

NAMES = ["child#001", "adult#002", "adult#002"]
EPISODES = np.array([0, 0, 1])
STEPS = 2000


def step(k, cgm, meal):
    return SimpleNamespace(time_min=5.0 * k, cgm=np.asarray(cgm, dtype=float),
                           meal_announcement_g=np.asarray(meal, dtype=float))


def replace_view(state, cgm_seq, meal_seq):
    import dataclasses

    @dataclasses.dataclass
    class Step:
        time_min: float
        cgm: np.ndarray
        meal_announcement_g: np.ndarray

    seen = []
    for k in range(len(cgm_seq)):
        seen.append(state.view(Step(5.0 * k, np.asarray(cgm_seq[k], float), np.asarray(meal_seq[k], float)), k))
    return seen


def test_draws_are_seeded_and_per_member():
    c = Conditions(unannounced_probability=0.3, carb_fraction_range=(0.5, 1.5), dropouts_per_day=4)
    a = c.start(NAMES, EPISODES, 7, STEPS, 5)
    b = c.start(NAMES, EPISODES, 7, STEPS, 5)
    alone = c.start(NAMES[2:], EPISODES[2:], 7, STEPS, 5)
    other = c.start(NAMES, EPISODES, 8, STEPS, 5)
    np.testing.assert_array_equal(a.carb_fraction, b.carb_fraction)
    np.testing.assert_array_equal(a.carb_fraction[2:], alone.carb_fraction)
    np.testing.assert_array_equal(a.dropout[2:], alone.dropout)
    assert not np.array_equal(a.carb_fraction, other.carb_fraction)
    assert not np.array_equal(a.carb_fraction[1], a.carb_fraction[2])  # another episode of the same patient
    # rates: 30 % unannounced, fractions uniform in [0.5, 1.5] (mean 1)
    assert abs((~a.announced).mean() - 0.3) < 0.02
    assert a.carb_fraction.min() >= 0.5 and a.carb_fraction.max() <= 1.5
    assert abs(a.carb_fraction.mean() - 1.0) < 0.02


def test_unannounced_and_misestimated_meals():
    state = Conditions(carb_fraction_range=(0.5, 0.5)).start(NAMES, EPISODES, 1, 3, 5)
    seen = replace_view(state, [[100] * 3] * 3, [[60, 0, 10], [0, 0, 0], [20, 40, 0]])
    np.testing.assert_array_equal(seen[0].meal_announcement_g, [30, 0, 5])
    np.testing.assert_array_equal(seen[2].meal_announcement_g, [10, 20, 0])
    state = Conditions(unannounced_probability=1.0).start(NAMES, EPISODES, 1, 3, 5)
    seen = replace_view(state, [[100] * 3] * 3, [[60, 0, 10], [0, 0, 0], [20, 40, 0]])
    assert all((s.meal_announcement_g == 0).all() for s in seen)


def test_delayed_announcements():
    state = Conditions(bolus_delay_min=10).start(NAMES, EPISODES, 1, 5, 5)
    meals = [[60, 0, 10], [0, 5, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    seen = replace_view(state, [[100] * 3] * 5, meals)
    np.testing.assert_array_equal(seen[0].meal_announcement_g, [0, 0, 0])
    np.testing.assert_array_equal(seen[2].meal_announcement_g, [60, 0, 10])
    np.testing.assert_array_equal(seen[3].meal_announcement_g, [0, 5, 0])
    with pytest.raises(InvalidInputError, match="multiple"):
        Conditions(bolus_delay_min=7).start(NAMES, EPISODES, 1, 5, 5)


def test_missed_boluses_only_at_announced_meals():
    state = Conditions(missed_bolus_probability=1.0).start(NAMES, EPISODES, 1, 3, 5)
    seen = step(0, [100] * 3, [50, 0, 0])
    np.testing.assert_array_equal(state.bolus(np.array([5.0, 1.0, 0.0]), seen, 0), [0.0, 1.0, 0.0])
    state = Conditions(missed_bolus_probability=0.0).start(NAMES, EPISODES, 1, 3, 5)
    np.testing.assert_array_equal(state.bolus(np.array([5.0, 1.0, 0.0]), seen, 0), [5.0, 1.0, 0.0])


def test_dropouts_hold_the_last_reading_with_the_given_rate_and_length():
    state = Conditions(dropouts_per_day=6, dropout_mean_min=30).start(NAMES * 20, np.arange(60), 3, STEPS, 5)
    mask = state.dropout
    assert not mask[:, 0].any()
    starts = (mask[:, 1:] & ~mask[:, :-1]).sum()
    days = mask.shape[0] * STEPS * 5 / 1440
    # a start is tried only outside a dropout: rate 6/day x (1 - time in dropout)
    assert abs(starts / days - 6 * (1 - mask.mean())) < 0.5
    assert abs(mask.sum() / starts * 5 - 30) < 3  # mean length 30 min
    small = Conditions(dropouts_per_day=6).start(NAMES, EPISODES, 3, 200, 5)
    cgm = 100 + np.arange(200)[:, None] * np.ones(3)
    seen = replace_view(small, cgm, np.zeros((200, 3)))
    for k in range(1, 200):
        expected = np.where(small.dropout[:, k], seen[k - 1].cgm, cgm[k])
        np.testing.assert_array_equal(seen[k].cgm, expected)


def test_insulin_sensitivity_changes_daily_and_changes_glucose():
    state = Conditions(isf_daily_sd=0.2).start(NAMES, EPISODES, 1, 3 * 288, 5)
    assert state.insulin_sensitivity(0) is not None and state.insulin_sensitivity(1) is None
    np.testing.assert_array_equal(state.insulin_sensitivity(288), state.isf_scale[:, 1])
    assert state.isf_scale.std() > 0.05
    assert Conditions().start(NAMES, EPISODES, 1, 10, 5).insulin_sensitivity(0) is None

    def day_mean(scale):
        sim = Simulator(["adult#001"], sensor=None, pump=None, scenario=None, seed=0)
        sim.set_insulin_sensitivity(scale)
        return np.mean([sim.step(sim.patients.basal_u_per_min * 60, 0.0, 5).bg for _ in range(288)])

    base = Simulator(["adult#001"], sensor=None, pump=None, scenario=None, seed=0)
    baseline = np.mean([base.step(base.patients.basal_u_per_min * 60, 0.0, 5).bg for _ in range(288)])
    assert day_mean(1.0) == baseline  # the patient's own sensitivity: the same numbers
    assert day_mean(1.5) < baseline - 10 < baseline + 10 < day_mean(0.7)
    with pytest.raises(InvalidInputError):
        base.set_insulin_sensitivity(0.0)


def test_invalid_conditions_are_named():
    with pytest.raises(InvalidInputError) as info:
        Conditions(unannounced_probability=1.5, carb_fraction_range=(1.2, 0.8), dropout_mean_min=0)
    fields = {p.field for p in info.value.problems}
    assert fields == {"unannounced_probability", "carb_fraction_range", "dropout_mean_min"}
