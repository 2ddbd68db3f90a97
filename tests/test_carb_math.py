"""Own tests of carb_math: curve identities, analytic totals, hand-computed splits,
invariants (COB bounds, conservation, order independence) and edge cases."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyloopkit.carb_math import (LINEAR, PARABOLIC, PIECEWISE_LINEAR, carb_effects, carbs_on_board,
                                 dynamic_absorbed_carbs, dynamic_carb_effects, dynamic_carbs_on_board,
                                 group_by_overlapping_absorption_windows, map_absorption, simulation_dates)
from pyloopkit.errors import InvalidInputError
from pyloopkit.schedule import DailySchedule

T0 = 467_000_100.0  # on the 5-minute grid
HOUR = 3600.0
MODELS = ["parabolic", "linear", "piecewise_linear"]
CURVES = [PARABOLIC, LINEAR, PIECEWISE_LINEAR]


# --- absorption curves ---

@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_curve_end_points_and_monotonicity(curve):
    p = np.linspace(-0.5, 1.5, 2001)
    f = curve.percent_absorption(p)
    assert np.all(f[p <= 0] == 0) and np.all(f[p >= 1] == 1)
    assert np.all(np.diff(f) >= 0)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_rate_integrates_to_the_curve(curve):
    p = np.linspace(0.0, 1.0, 20001)
    midpoint_rate = curve.percent_rate((p[1:] + p[:-1]) / 2)
    integral = np.concatenate([[0.0], np.cumsum(midpoint_rate * np.diff(p))])
    np.testing.assert_allclose(integral, curve.percent_absorption(p), atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CURVES), st.floats(1e-6, 1.0 - 1e-6))
def test_percent_time_inverts_the_curve(curve, a):
    assert curve.percent_absorption(curve.percent_time(a)) == pytest.approx(a, rel=1e-9, abs=1e-12)


def test_hand_computed_curve_values():
    assert PARABOLIC.percent_absorption(0.25) == pytest.approx(0.125)  # 2 p^2
    assert PARABOLIC.percent_absorption(0.75) == pytest.approx(0.875)  # -1 + 4 (p - p^2/2)
    scale = 2.0 / 1.35
    assert PIECEWISE_LINEAR.percent_absorption(0.1) == pytest.approx(0.5 * scale * 0.01 / 0.15)
    assert PIECEWISE_LINEAR.percent_absorption(0.3) == pytest.approx(scale * (0.3 - 0.075))
    assert PIECEWISE_LINEAR.percent_rate(0.3) == pytest.approx(scale)
    assert LINEAR.absorbed(30.0, 1800.0, 7200.0) == pytest.approx(7.5)


# --- static effects and COB ---

@pytest.mark.parametrize("model", MODELS)
def test_total_static_effect_is_isf_over_cr_times_grams(model):
    dates = [T0, T0 + 5 * HOUR]
    grams = [40.0, 25.0]
    times = [3 * HOUR, 2 * HOUR]
    grid = simulation_dates(dates, times)
    effect = carb_effects(dates, grams, times, 10.0, 45.0, grid, model=model)
    assert effect[-1] == pytest.approx(4.5 * 65.0, rel=1e-12)
    assert np.all(np.diff(effect) >= -1e-12) and effect[0] == 0.0


def test_schedules_are_read_at_each_entry_start_across_midnight():
    """A meal at 23:50 local keeps the ratio in force at its start after midnight."""
    offset = -7 * HOUR
    midnight = np.ceil((T0 + offset) / 86400.0) * 86400.0 - offset
    cr = DailySchedule.from_lists(["00:00", "23:00"], [5.0, 10.0], offset_s=offset)
    isf = DailySchedule.from_lists(["00:00", "12:00"], [60.0, 40.0], offset_s=offset)
    start = midnight - 600.0
    grid = simulation_dates([start], [2 * HOUR])
    effect = carb_effects([start], [30.0], [2 * HOUR], cr, isf, grid)
    assert effect[-1] == pytest.approx(40.0 / 10.0 * 30.0)


@pytest.mark.parametrize("model", MODELS)
def test_static_cob_bounds_and_delay(model):
    grid = T0 + 300.0 * np.arange(-2, 60)
    cob = carbs_on_board([T0], [50.0], [3 * HOUR], grid, delay_s=600, model=model)
    assert np.all(cob[grid < T0] == 0) and np.all(cob[(grid >= T0) & (grid <= T0 + 600)] == 50.0)
    assert np.all((cob >= 0) & (cob <= 50.0)) and cob[-1] == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-2.0, 30.0), st.floats(0.0, 150.0), st.floats(0.25, 8.0)), min_size=1,
                max_size=6), st.sampled_from(MODELS), st.randoms())
def test_static_invariants(rows, model, rnd):
    """COB stays within [0, grams eaten], effects never fall, end at ISF/CR x grams, and do
    not depend on the entry order; ratios change at 06:00 and 18:00 (read at each start)."""
    dates = T0 + np.array([r[0] for r in rows]) * HOUR
    grams = np.array([r[1] for r in rows])
    times = np.array([r[2] for r in rows]) * HOUR
    cr = DailySchedule.from_lists(["00:00", "06:00", "18:00"], [8.0, 12.0, 10.0])
    grid = simulation_dates(dates, times)
    cob = carbs_on_board(dates, grams, times, grid, model=model)
    effect = carb_effects(dates, grams, times, cr, 40.0, grid, model=model)
    assert np.all((cob >= 0) & (cob <= grams.sum() + 1e-9))
    assert np.all(np.diff(effect) >= -1e-9)
    assert effect[-1] == pytest.approx(np.sum(40.0 / cr.at(dates) * grams), rel=1e-12, abs=1e-9)
    order = list(range(len(rows)))
    rnd.shuffle(order)
    np.testing.assert_allclose(carbs_on_board(dates[order], grams[order], times[order], grid, model=model), cob,
                               rtol=1e-12, atol=1e-9)


def test_empty_entries_give_zero_timelines():
    grid = T0 + 300.0 * np.arange(4)
    np.testing.assert_array_equal(carbs_on_board([], [], [], grid), 0.0)
    np.testing.assert_array_equal(carb_effects([], [], [], 10.0, 40.0, grid), 0.0)
    status = map_absorption([], [], [], (np.empty(0),) * 3, 10.0, 40.0)
    assert len(status) == 0
    np.testing.assert_array_equal(dynamic_carb_effects(status, grid), 0.0)
    np.testing.assert_array_equal(dynamic_carbs_on_board(status, grid), 0.0)
    assert simulation_dates([], []).size == 0


def test_garbage_entries_are_rejected_with_field_and_index():
    with pytest.raises(InvalidInputError) as err:
        carb_effects([T0, np.nan], [-1.0, 20.0], [HOUR, 0.0], 10.0, 40.0, [T0])
    text = str(err.value)
    assert "carb_dates_s[1]" in text and "grams[0]" in text and "absorption_time_s[1]" in text
    with pytest.raises(InvalidInputError, match=r"carb_ratio\[0\]"):
        carb_effects([T0], [20.0], [HOUR], 0.0, 40.0, [T0])
    with pytest.raises(InvalidInputError, match="model"):
        carbs_on_board([T0], [20.0], [HOUR], [T0], model="exponential")
    with pytest.raises(InvalidInputError, match=r"counteraction.end_s\[0\]"):
        map_absorption([T0], [20.0], [HOUR], ([T0], [T0 - 1.0], [1.0]), 10.0, 40.0)


# --- grouping ---

def test_grouping_by_overlapping_windows():
    dates = [T0 + 3 * HOUR, T0, T0 + HOUR, T0 + 6 * HOUR]
    groups = group_by_overlapping_absorption_windows(dates, [3 * HOUR, 2 * HOUR, 2 * HOUR, HOUR])
    # an entry starting exactly when the previous window ends starts a new group (LoopKit's border case)
    assert [list(g) for g in groups] == [[1, 2], [0], [3]]


# --- dynamic absorption ---

def single_ice(start_s, minutes, velocity):
    return np.array([start_s]), np.array([start_s + minutes * 60.0]), np.array([float(velocity)])


def test_leftover_goes_to_the_last_active_entry():
    """Two 10 g entries (CSF 5 mg/dL/g) and one 5-min ICE of 40 mg/dL/min = 200 mg/dL:
    equal minimum rates give each min(50, share); the 100 mg/dL left over is credited to
    the last active entry, as in Swift."""
    status = map_absorption([T0, T0], [10.0, 10.0], [2 * HOUR, 2 * HOUR], single_ice(T0, 5, 40.0), 10.0, 50.0,
                            delay_s=0.0)
    np.testing.assert_allclose(status.observed_grams, [10.0, 30.0])
    np.testing.assert_allclose(status.clamped_grams, [10.0, 10.0])
    np.testing.assert_allclose(status.estimated_time_remaining_s, 0.0)


def test_split_by_minimum_rate_hand_computed():
    """Loop 2019: 30 mg/dL split by minimum rates 20 g/3h : 40 g/1.5h = 1 : 4."""
    status = map_absorption([T0, T0 + 60.0], [20.0, 40.0], [2 * HOUR, HOUR], single_ice(T0 + 60.0, 5, 6.0),
                            10.0, 50.0, delay_s=0.0)
    np.testing.assert_allclose(status.observed_grams, [30.0 / 5 / 5, 30.0 * 4 / 5 / 5])


def test_negative_velocities_count_as_zero_and_minimum_absorption_clamps():
    status = map_absorption([T0], [30.0], [2 * HOUR], single_ice(T0, 60, -3.0), 10.0, 50.0, delay_s=0.0)
    assert status.observed_grams[0] == 0.0
    # minimum absorption: linear over 1.5 x 2 h, 60 min observed
    assert status.clamped_grams[0] == pytest.approx(30.0 * 60 / 180)
    assert not status.has_timeline[0]
    assert status.estimated_time_remaining_s[0] == pytest.approx(2 * HOUR)


@pytest.mark.parametrize("model", MODELS)
def test_zero_gram_entry_is_absorbed(model):
    status = map_absorption([T0], [0.0], [2 * HOUR], single_ice(T0, 30, 2.0), 10.0, 40.0, model=model)
    assert status.estimated_time_remaining_s[0] == 0.0
    grid = T0 + 300.0 * np.arange(40)
    np.testing.assert_array_equal(dynamic_carbs_on_board(status, grid), 0.0)
    np.testing.assert_array_equal(dynamic_carb_effects(status, grid), 0.0)


@pytest.mark.parametrize("model", MODELS)
def test_dynamic_without_counteraction_converges_to_isf_over_cr(model):
    dates, grams, times = [T0, T0 + 30 * 60.0], [45.0, 15.0], [3 * HOUR, HOUR]
    status = map_absorption(dates, grams, times, (np.empty(0),) * 3, 12.0, 48.0, model=model)
    grid = simulation_dates(status.start_s, status.estimated_absorption_time_s)
    effect = dynamic_carb_effects(status, grid)
    assert effect[-1] == pytest.approx(4.0 * 60.0)
    assert dynamic_carbs_on_board(status, grid)[-1] == pytest.approx(0.0, abs=1e-9)


ice_strategy = st.lists(st.tuples(st.floats(-4.0, 8.0), st.sampled_from([240.0, 300.0, 420.0])),
                        min_size=0, max_size=50)
entry_strategy = st.lists(st.tuples(st.floats(-1.0, 6.0), st.floats(0.0, 120.0), st.sampled_from([1.0, 2.0, 3.0, 4.0])),
                          min_size=1, max_size=5)


def _random_case(ice_rows, entry_rows):
    durations = np.array([d for _, d in ice_rows])
    ice_start = T0 + np.concatenate([[0.0], np.cumsum(durations)[:-1]]) if ice_rows else np.empty(0)
    ice = (ice_start, ice_start + durations, np.array([v for v, _ in ice_rows]))
    dates = T0 + np.array([h for h, _, _ in entry_rows]) * HOUR
    grams = np.array([g for _, g, _ in entry_rows])
    times = np.array([t for _, _, t in entry_rows]) * HOUR
    return ice, dates, grams, times


@settings(max_examples=50, deadline=None)
@given(ice_strategy, entry_strategy, st.sampled_from(MODELS + ["adaptive"]), st.randoms())
def test_dynamic_invariants(ice_rows, entry_rows, model, rnd):
    ice, dates, grams, times = _random_case(ice_rows, entry_rows)
    kwargs = dict(model="piecewise_linear", adaptive_rate=True) if model == "adaptive" else dict(model=model)
    status = map_absorption(dates, grams, times, ice, 10.0, 40.0, **kwargs)
    grid = simulation_dates(status.start_s, status.estimated_absorption_time_s, start_s=T0 - HOUR)
    cob = dynamic_carbs_on_board(status, grid)
    absorbed = dynamic_absorbed_carbs(status, grid)
    assert np.all(np.isfinite(cob)) and np.all(cob >= 0) and np.all(cob <= grams.sum() + 1e-9)
    assert np.all(absorbed >= -1e-12) and np.all(absorbed <= status.grams[:, None] + 1e-9)
    assert np.all(status.clamped_grams <= status.grams) and np.all(status.estimated_time_remaining_s >= 0)
    # conservation: every positive ICE effect starting inside some entry's window is credited,
    # except leftovers of at most Float.ulpOfOne mg/dL per interval, which Swift drops
    starts, ends, velocity = ice
    max_end = dates + times * 1.5 + 600.0
    covered = np.array([np.any((dates <= s) & (s < max_end)) for s in starts], dtype=bool)
    credited = np.sum(np.maximum(velocity, 0.0) / 60.0 * (ends - starts) * covered)
    assert np.sum(status.observed_grams * status.csf_mgdl_per_g) == pytest.approx(
        credited, rel=1e-9, abs=1.2e-7 * max(len(starts), 1))
    # independent of input order
    order = list(range(len(dates)))
    rnd.shuffle(order)
    shuffled = map_absorption(dates[order], grams[order], times[order], ice, 10.0, 40.0, **kwargs)
    np.testing.assert_allclose(dynamic_carbs_on_board(shuffled, grid), cob, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dynamic_carb_effects(shuffled, grid), dynamic_carb_effects(status, grid),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.sort(shuffled.order), np.arange(len(dates)))
