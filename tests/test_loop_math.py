"""Own tests of ``pyloopkit.loop_math``: hand-computed cases, invariants and properties.

The Swift fixtures are exercised in ``tests/conformance/test_loopmath.py``.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyloopkit import loop_math
from pyloopkit.date import to_second
from pyloopkit.errors import InvalidInputError

T0 = to_second("2016-02-01T10:15:00")
"""A date on the 5-minute grid."""


# --- decay_effect --------------------------------------------------------------------------

@pytest.mark.parametrize("glucose_date, rate, expected", [
    # LoopMathTests.testDecayEffect: 2 mg/dL/min for 30 min from 10:13:20. Steps of 5 min add
    # 2 x 5 x (1 - j/5), j = 0..4: 10, 8, 6, 4, 2, then 0 for the grid point before ceil(10:43:20).
    ("2016-02-01T10:13:20", 2.0, [100, 110, 118, 124, 128, 130, 130]),
    ("2016-02-01T10:13:20", -0.5, [100, 97.5, 95.5, 94, 93, 92.5, 92.5]),
    # testDecayEffectWithEvenGlucose: on the grid, the dates stop before 10:45.
    ("2016-02-01T10:15:00", 2.0, [100, 110, 118, 124, 128, 130]),
    ("2016-02-01T10:15:00", -0.5, [100, 97.5, 95.5, 94, 93, 92.5]),
])
def test_decay_effect_swift_values(glucose_date, rate, expected):
    dates, values = loop_math.decay_effect(to_second(glucose_date), 100.0, rate, 30.0)
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_array_equal((dates - dates[0]) / 60.0, 5.0 * np.arange(len(expected)))
    assert dates[0] == to_second(glucose_date) // 300 * 300  # the floored glucose date


def test_decay_effect_total_is_half_velocity_times_duration():
    """On the grid, steps v*5*(1 - j/(D/5 - 1)) for j < D/5 - 1 sum to v*D/2: 60 min at 1/3 mg/dL/min
    gives exactly +10 mg/dL."""
    _, values = loop_math.decay_effect(T0, 100.0, 1.0 / 3.0, 60.0)
    assert values[-1] == pytest.approx(110.0, abs=1e-12)
    assert values.size == 12


def test_decay_effect_short_duration_gives_one_step():
    """Swift's repeat-while always appends one step: duration 6 min, delta 5 min on the grid gives
    dates 0 and 5 min (the loop would stop before ceil(start + 6 min) = start + 10 min anyway)."""
    dates, values = loop_math.decay_effect(T0, 100.0, 1.0, 6.0)
    np.testing.assert_array_equal(dates - T0, [0.0, 300.0])
    np.testing.assert_allclose(values, [100.0, 105.0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kwargs, field", [
    ({"duration_min": 5.0}, "duration_min"),
    ({"duration_min": float("nan")}, "duration_min"),
    ({"velocity_mgdl_per_min": float("inf")}, "velocity_mgdl_per_min"),
    ({"delta_min": 0.0}, "delta_min"),
])
def test_decay_effect_rejects_bad_input(kwargs, field):
    args = {"start_date_s": T0, "start_mgdl": 100.0, "velocity_mgdl_per_min": 1.0, "duration_min": 30.0}
    args.update(kwargs)
    with pytest.raises(InvalidInputError) as err:
        loop_math.decay_effect(**args)
    assert err.value.problems[0].field == field


def test_decay_effect_continuous_matches_stepwise_on_grid():
    stepwise = loop_math.decay_effect(T0, 100.0, 2.0, 30.0)
    continuous = loop_math.decay_effect_continuous(T0, 100.0, 2.0, 30.0)
    np.testing.assert_array_equal(continuous[0], stepwise[0])
    np.testing.assert_allclose(continuous[1], stepwise[1], rtol=0, atol=1e-12)


def test_decay_effect_continuous_off_grid_hand_values():
    """From 10:13:20 at 2 mg/dL/min over 30 min: g(t) = 100 + a t^2 + b t (t in min since 10:13:20),
    a = -2/(2 x 25) = -0.04, b = 2 x (1 + 5/50) = 2.2, t clamped at 30 (g = 130)."""
    start = to_second("2016-02-01T10:13:20")
    dates, values = loop_math.decay_effect_continuous(start, 100.0, 2.0, 30.0)
    t = np.minimum(30.0, (dates[1:] - start) / 60.0)
    np.testing.assert_array_equal(dates - dates[0], 300.0 * np.arange(7))
    assert dates[0] == start - 200.0
    np.testing.assert_allclose(values, np.concatenate(([100.0], 100.0 - 0.04 * t ** 2 + 2.2 * t)), atol=1e-12)
    assert values[1] == pytest.approx(100.0 - 0.04 * (5 / 3) ** 2 + 2.2 * 5 / 3)  # 103.5556 at 10:15
    # The last date, 10:40, is 26.67 min in: the quadratic peaks at 27.5 min (130.25), above the
    # 130 it settles at from 30 min, a property of the Swift formula.
    assert values[-1] == pytest.approx(100.0 - 0.04 * (80 / 3) ** 2 + 2.2 * 80 / 3)  # 130.2222


def test_decay_effect_continuous_is_continuous_across_grid_boundary():
    """LoopAlgorithm's testDecayEffectIsContinuousAcrossSimulationBoundary: a sample 1 us before the
    grid gets one extra leading point (its own value) and the same values at shared dates."""
    aligned = loop_math.decay_effect_continuous(T0, 100.0, -0.5, 30.0)
    shifted = loop_math.decay_effect_continuous(T0 - 1e-6, 100.0, -0.5, 30.0)
    assert shifted[0].size == aligned[0].size + 1
    assert shifted[1][0] == 100.0
    np.testing.assert_array_equal(shifted[0][1:], aligned[0])
    np.testing.assert_allclose(shifted[1][1:], aligned[1], rtol=0, atol=1e-6)


# --- predict_glucose ---------------------------------------------------------------------

def _grid(n, first=T0):
    return first + 300.0 * np.arange(n)


def test_predict_glucose_sums_effect_changes():
    """100 mg/dL at T0; insulin -1 per step, carbs +3 per step from the second date on."""
    insulin = (_grid(4), np.array([0.0, -1.0, -2.0, -3.0]))
    carbs = (_grid(3, T0 + 300), np.array([0.0, 3.0, 6.0]))
    dates, values = loop_math.predict_glucose(T0, 100.0, [insulin, carbs])
    np.testing.assert_array_equal(dates, _grid(4))
    np.testing.assert_allclose(values, [100.0, 99.0, 101.0, 103.0], rtol=0, atol=1e-12)


def test_predict_glucose_off_grid_start_skips_earlier_dates():
    """Changes dated at or before the start are dropped; the first point is the start itself."""
    start = T0 + 100.0
    effect = (_grid(3), np.array([5.0, 7.0, 8.0]))
    dates, values = loop_math.predict_glucose(start, 120.0, [effect])
    np.testing.assert_array_equal(dates, [start, T0 + 300.0, T0 + 600.0])
    np.testing.assert_allclose(values, [120.0, 122.0, 123.0], rtol=0, atol=1e-12)


def test_predict_glucose_without_effects_is_the_start():
    dates, values = loop_math.predict_glucose(T0, 90.0, [])
    np.testing.assert_array_equal(dates, [T0])
    np.testing.assert_array_equal(values, [90.0])


@pytest.mark.parametrize("start_offset_s, expected", [
    # 3 momentum points: blend count 1, slope 1, split_i = 3 - i - 1 + offset/300.
    # At the first momentum date: split 1 at i = 1 (momentum +5), split 0 at i = 2 (insulin -1).
    (0.0, [100.0, 105.0, 104.0, 103.0]),
    # Start 150 s later: offset 0.5, split at i = 2 is 0.5: 0.5 x 5 + 0.5 x (-1) = 2.
    (150.0, [100.0, 105.0, 107.0, 106.0]),
])
def test_predict_glucose_momentum_blend(start_offset_s, expected):
    momentum = (_grid(3), np.array([0.0, 5.0, 10.0]))
    insulin = (_grid(4), np.array([0.0, -1.0, -2.0, -3.0]))
    dates, values = loop_math.predict_glucose(T0 + start_offset_s, 100.0, [insulin], momentum=momentum)
    np.testing.assert_array_equal(dates[1:], _grid(3, T0 + 300))
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)


def test_predict_glucose_two_point_momentum_adds_nothing():
    """Swift's split is NaN for two points, which its max/min turn into 0."""
    momentum = (_grid(2, T0 + 300), np.array([0.0, 50.0]))
    insulin = (_grid(3), np.array([0.0, -1.0, -2.0]))
    plain = loop_math.predict_glucose(T0, 100.0, [insulin])
    blended = loop_math.predict_glucose(T0, 100.0, [insulin], momentum=momentum)
    np.testing.assert_array_equal(blended[0], plain[0])
    np.testing.assert_array_equal(blended[1], plain[1])


@pytest.mark.parametrize("effect, field, index", [
    ((_grid(3)[::-1], np.zeros(3)), "effects[0].dates_s", 1),
    ((_grid(3), np.array([0.0, np.nan, 1.0])), "effects[0].values", 1),
    ((_grid(3), np.zeros(2)), "effects[0].values", None),
])
def test_predict_glucose_rejects_bad_effects(effect, field, index):
    with pytest.raises(InvalidInputError) as err:
        loop_math.predict_glucose(T0, 100.0, [effect])
    problem = err.value.problems[0]
    assert (problem.field, problem.index) == (field, index)


effect_values = st.lists(st.floats(-300, 300, allow_nan=False), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20), effect_values), min_size=1, max_size=4),
       st.floats(40, 400))
def test_predict_glucose_net_change_and_order_independence(raw, start_mgdl):
    """With every date after the start, the last prediction is the start plus each effect's net
    change, whatever the order of the effects."""
    effects = [(_grid(len(v), T0 + 300.0 * lag), np.array(v)) for lag, v in raw]
    dates, values = loop_math.predict_glucose(T0, start_mgdl, effects)
    net = sum(v[-1] - v[0] for _, v in effects)
    assert values[-1] == pytest.approx(start_mgdl + net, abs=1e-9)
    assert np.all(np.diff(dates) > 0)
    reversed_values = loop_math.predict_glucose(T0, start_mgdl, effects[::-1])[1]
    np.testing.assert_allclose(reversed_values, values, rtol=0, atol=1e-9)


# --- subtracting ---------------------------------------------------------------------------

def test_subtracting_matches_steps():
    """CGM-like ICE ending 44 s after the grid, 1 mg/dL/min over 5 min (+5 mg/dL), minus carb steps
    of +2: carbs are kept from the first date after the first ICE end (T0+600), so the first ICE
    (ending T0+344) is dropped and each other one takes the carb step containing its end: 5 - 2 = 3."""
    ends = T0 + np.array([344.0, 644.0, 944.0])
    calc_d, calc_v = loop_math.subtracting(ends - 300, ends, np.ones(3), _grid(5), 2.0 * np.arange(5))
    np.testing.assert_array_equal(calc_d, ends[1:])
    np.testing.assert_allclose(calc_v, [3.0, 3.0], rtol=0, atol=1e-12)


def test_subtracting_on_grid_pairs_with_next_step():
    """Swift edge case: ICE ending exactly on the grid. The carb effect is trimmed to dates at or after
    the first ICE end (T0+300), so its first step is T0+300 -> T0+600, and each ICE takes the first
    unused step whose date is at or after its end: one step later than the interval it covers."""
    ends = _grid(3, T0 + 300)
    calc_d, calc_v = loop_math.subtracting(ends - 300, ends, np.ones(3), _grid(4), np.array([0.0, 1.0, 3.0, 6.0]))
    np.testing.assert_array_equal(calc_d, ends)
    np.testing.assert_allclose(calc_v, [5.0 - 2.0, 5.0 - 3.0, 5.0], rtol=0, atol=1e-12)


def test_subtracting_gap_skips_steps():
    """A 10-min ICE (T0+344 -> T0+944) still counts 5 min of velocity (Loop's uniform interval) and
    takes only the change of the carb step containing its end (900 -> 1200: +3), skipping the step
    it passed over (600 -> 900: +2): 5 - 3 = 2. The next ICE takes 1200 -> 1500 (+4): 5 - 4 = 1."""
    starts = T0 + np.array([44.0, 344.0, 944.0])
    ends = T0 + np.array([344.0, 944.0, 1244.0])
    carb = (_grid(6), np.array([0.0, 1.0, 2.0, 4.0, 7.0, 11.0]))
    calc_d, calc_v = loop_math.subtracting(starts, ends, np.ones(3), *carb)
    np.testing.assert_array_equal(calc_d, ends[1:])
    np.testing.assert_allclose(calc_v, [2.0, 1.0], rtol=0, atol=1e-12)


def test_subtracting_trims_and_keeps_leftover_ice():
    """Carb dates before the first ICE end and ICE ending before the first kept carb date are
    dropped; ICE after the last carb step keep velocity x 5 min."""
    ends = _grid(5, T0 + 300)
    carb = (_grid(3, T0 + 600), np.array([10.0, 11.0, 13.0]))
    calc_d, calc_v = loop_math.subtracting(ends - 300, ends, np.full(5, 2.0), *carb)
    np.testing.assert_array_equal(calc_d, ends[1:])
    np.testing.assert_allclose(calc_v, [10.0 - 1.0, 10.0 - 2.0, 10.0, 10.0], rtol=0, atol=1e-12)


def test_subtracting_nothing_is_ice_times_interval():
    ends = _grid(3, T0 + 300)
    calc_d, calc_v = loop_math.subtracting(ends - 300, ends, np.array([0.5, -1.0, 2.0]), [], [])
    np.testing.assert_array_equal(calc_d, ends)
    np.testing.assert_allclose(calc_v, [2.5, -5.0, 10.0], rtol=0, atol=1e-12)


def test_subtracting_empty_ice():
    calc_d, calc_v = loop_math.subtracting([], [], [], _grid(3), np.arange(3.0))
    assert calc_d.size == calc_v.size == 0


def _subtracting_oracle(ends, velocity, o_d, o_v, interval_s=300.0):
    """Sequential walk written from the definition in ``subtracting``'s docstring."""
    if len(ends):
        keep = o_d >= ends[0]
        o_d, o_v = o_d[keep], o_v[keep]
    if len(o_d):
        keep = ends >= o_d[0]
        ends, velocity = ends[keep], velocity[keep]
    out, i = [], 0
    for k in range(1, len(o_d)):
        if i >= len(ends):
            break
        if ends[i] <= o_d[k]:
            out.append(velocity[i] * interval_s / 60 - (o_v[k] - o_v[k - 1]))
            i += 1
    out += [v * interval_s / 60 for v in velocity[i:]]
    return ends, np.array(out)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=0, max_size=25), st.integers(0, 30), st.integers(-10, 10),
       st.integers(0, 40), st.randoms(use_true_random=False))
def test_subtracting_matches_sequential_walk(gaps, n_carb, carb_lag, jitter_s, rnd):
    """Random ICE intervals (5-20 min, CGM jitter) against a random carb grid."""
    ends = T0 + jitter_s + 300.0 * np.cumsum(gaps) if gaps else np.empty(0)
    starts = ends - 300.0 * np.array(gaps)
    velocity = np.array([rnd.uniform(-3, 3) for _ in gaps])
    o_d = _grid(n_carb, T0 + 300.0 * carb_lag)
    o_v = np.cumsum([rnd.uniform(0, 10) for _ in range(n_carb)])
    calc_d, calc_v = loop_math.subtracting(starts, ends, velocity, o_d, o_v)
    exp_d, exp_v = _subtracting_oracle(ends, velocity, o_d, o_v)
    np.testing.assert_array_equal(calc_d, exp_d)
    np.testing.assert_allclose(calc_v, exp_v, rtol=0, atol=1e-9)


def test_subtracting_rejects_unsorted_ice():
    ends = np.array([T0 + 600, T0 + 300])
    with pytest.raises(InvalidInputError) as err:
        loop_math.subtracting(ends - 300, ends, [1.0, 1.0], [], [])
    assert (err.value.problems[0].field, err.value.problems[0].index) == ("ice.end_s", 1)


# --- combined_sums and sum_effects ---------------------------------------------------------

def test_combined_sums_trailing_window():
    """Ones every 5 min, 30-min window (inclusive): 1, 2, ..., 7, then 7 each."""
    dates = _grid(10)
    start, end, total = loop_math.combined_sums(dates, np.ones(10), 1800.0)
    np.testing.assert_array_equal(total, [1, 2, 3, 4, 5, 6, 7, 7, 7, 7])
    np.testing.assert_array_equal(end, dates)
    np.testing.assert_array_equal(start, dates[np.maximum(0, np.arange(10) - 6)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 900), st.floats(-50, 50, allow_nan=False)), max_size=40),
       st.floats(0, 3600))
def test_combined_sums_definition(rows, duration_s):
    dates = T0 + np.cumsum([r[0] for r in rows]) if rows else np.empty(0)
    values = np.array([r[1] for r in rows])
    start, end, total = loop_math.combined_sums(dates, values, duration_s)
    for i in range(len(rows)):
        inside = (dates <= dates[i]) & (dates >= dates[i] - duration_s)
        assert total[i] == pytest.approx(values[inside].sum(), abs=1e-9)
        assert start[i] == dates[inside].min()


def test_sum_effects_union_of_dates():
    a = (_grid(3), np.array([1.0, 2.0, 4.0]))
    b = (_grid(2, T0 + 300), np.array([10.0, 5.0]))
    dates, total = loop_math.sum_effects([a, b])
    np.testing.assert_array_equal(dates, _grid(3))
    np.testing.assert_allclose(total, [0.0, 1.0, -2.0], rtol=0, atol=1e-12)
    assert loop_math.sum_effects([])[0].size == 0


@settings(max_examples=60, deadline=None)
@given(runs=st.lists(st.lists(st.integers(0, 40), max_size=12), min_size=1, max_size=5),
       sort_runs=st.booleans(), nan_at=st.one_of(st.none(), st.integers(0, 80)))
def test_unique_of_runs_is_numpy_unique_and_searchsorted(runs, sort_runs, nan_at):
    """The prediction's merge of sorted timelines (shared and repeated dates) gives ``np.unique`` and
    each date's index in it; runs out of order and NaN dates take numpy's path, with the same result."""
    pieces = [np.array(sorted(r) if sort_runs else r, dtype=float) * 300.0 for r in runs]
    dates = np.concatenate(pieces)
    if nan_at is not None and dates.size:
        dates[nan_at % dates.size] = np.nan
    bounds = np.cumsum([0] + [p.size for p in pieces])
    unique, position = loop_math._unique_of_sorted_runs(dates, bounds)
    expected = np.unique(dates)
    np.testing.assert_array_equal(unique, expected)
    np.testing.assert_array_equal(position, np.searchsorted(expected, dates))
