"""Own tests of ``pyloopkit.retrospective_correction`` with hand-computed expectations.

Constants (LoopAlgorithm ``IntegralRetrospectiveCorrection``): f = exp(-5/60) = 0.920044,
Ki = (1 - f)/f x (2 - 1) = e^(1/12) - 1 = 0.086904, Kp = 1 - Ki = 0.913096.

A useful invariant, used below: with the glucose on the 5-min grid, a decay over D minutes sums
steps v x 5 x (1 - j/(D/5 - 1)) for j = 0 .. D/5 - 2, i.e. v x D / 2. RC's velocity is
correction x 60 / D / 30 (discrepancy over 30 min, scaled to the duration), so the effect's net
change is exactly the total correction, whatever D.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyloopkit import retrospective_correction as rc
from pyloopkit.date import to_second
from pyloopkit.errors import InvalidInputError

T0 = to_second("2019-08-15T19:15:00")
"""Latest glucose date, on the 5-minute grid."""
F = math.exp(-1.0 / 12.0)
KI = math.exp(1.0 / 12.0) - 1.0
KP = 2.0 - math.exp(1.0 / 12.0)


def summed(values, end_offsets_min=None, span_min=30.0):
    """Summed discrepancies ending every 5 min up to T0 (or at the given offsets from T0)."""
    values = np.asarray(values, dtype=float)
    if end_offsets_min is None:
        end_offsets_min = -5.0 * np.arange(values.size)[::-1]
    end = T0 + 60.0 * np.asarray(end_offsets_min, dtype=float)
    return rc.Discrepancies(end - 60.0 * span_min, end, values)


def test_constants():
    assert rc.INTEGRAL_FORGET == pytest.approx(F, rel=1e-15)
    assert rc.INTEGRAL_GAIN == pytest.approx(KI, rel=1e-12)
    assert rc.PROPORTIONAL_GAIN == pytest.approx(KP, rel=1e-12)
    assert KI == pytest.approx(0.0869040, abs=1e-7)


def test_standard_single_discrepancy():
    """+10 mg/dL over 30 min -> 1/3 mg/dL/min decaying over 60 min: steps 5/3 x (1 - j/11),
    j = 0..10, from 100 mg/dL, summing to +10."""
    result = rc.standard_correction(T0, 100.0, summed([10.0]))
    assert result.total_mgdl == 10.0
    np.testing.assert_array_equal(result.dates_s - T0, 300.0 * np.arange(12))
    j = np.arange(11)
    expected = 100.0 + np.concatenate(([0.0], np.cumsum(5.0 / 3.0 * (1 - j / 11))))
    np.testing.assert_allclose(result.values_mgdl, expected, rtol=0, atol=1e-12)
    assert result.values_mgdl[-1] == pytest.approx(110.0, abs=1e-12)


def test_integral_single_discrepancy_equals_standard():
    """One +10 discrepancy: I = Ki x 10 = 0.869040, P = Kp x 10 = 9.130960, D = 0, total 10,
    duration 60 - 10 + 10 = 60 min: the same effect as the standard correction."""
    result = rc.integral_correction(T0, 100.0, summed([10.0]))
    assert result.integral_mgdl == pytest.approx(10 * KI, abs=1e-12)
    assert result.proportional_mgdl == pytest.approx(10 * KP, abs=1e-12)
    assert result.differential_mgdl == 0.0
    assert result.total_mgdl == pytest.approx(10.0, abs=1e-12)
    assert result.effect_duration_min == 60.0
    standard = rc.standard_correction(T0, 100.0, summed([10.0]))
    np.testing.assert_array_equal(result.dates_s, standard.dates_s)
    np.testing.assert_allclose(result.values_mgdl, standard.values_mgdl, rtol=0, atol=1e-12)


def test_integral_constant_series():
    """Six +10 discrepancies, 5 min apart: I = Ki x 10 x (1 + f + ... + f^5) = 10 (1 - e^(-1/2)) e^(1/12)
    = 4.276634, P = 9.130960, D = 0 (no change), total 13.407594, duration 50 + 60 = 110 min,
    velocity 13.407594 x 60/110 / 30 mg/dL/min; the effect's net change is the total."""
    result = rc.integral_correction(T0, 100.0, summed([10.0] * 6))
    integral = 10 * (1 - math.exp(-0.5)) * math.exp(1.0 / 12.0)
    assert result.integral_mgdl == pytest.approx(integral, abs=1e-12)
    assert result.total_mgdl == pytest.approx(integral + 10 * KP, abs=1e-12)
    assert result.effect_duration_min == 110.0
    np.testing.assert_array_equal(result.recent_discrepancies_mgdl, [10.0] * 6)
    first_step = result.total_mgdl * 60 / 110 / 30 * 5
    assert result.values_mgdl[1] - result.values_mgdl[0] == pytest.approx(first_step, abs=1e-12)
    assert result.values_mgdl[-1] - 100.0 == pytest.approx(result.total_mgdl, abs=1e-9)
    assert result.dates_s[-1] - T0 == 105 * 60.0


def test_integral_duration_capped_at_180_min():
    """36 discrepancies over 3 h: 50 + 10 x 36 = 410 min, capped at 180 min."""
    result = rc.integral_correction(T0, 100.0, summed([4.0] * 36))
    assert result.effect_duration_min == 180.0
    assert result.recent_discrepancies_mgdl.size == 36


def test_integral_negative_differential():
    """Run [10, 6]: D = 2 x (6 - 10) = -8; I = Ki (10 f + 6); P = 6 Kp; duration 70 min."""
    result = rc.integral_correction(T0, 100.0, summed([10.0, 6.0]))
    assert result.differential_mgdl == pytest.approx(-8.0, abs=1e-12)
    assert result.integral_mgdl == pytest.approx(KI * (10 * F + 6), abs=1e-12)
    assert result.total_mgdl == pytest.approx(6 * KP + KI * (10 * F + 6) - 8, abs=1e-12)
    assert result.effect_duration_min == 70.0


def test_integral_positive_differential_ignored():
    result = rc.integral_correction(T0, 100.0, summed([6.0, 10.0]))
    assert result.differential_mgdl == 0.0
    assert result.total_mgdl == pytest.approx(10 * KP + KI * (6 * F + 10), abs=1e-12)


@pytest.mark.parametrize("values, offsets, run", [
    ([-5.0, 10.0], None, [10.0]),                 # sign change ends the run
    ([8.0, 0.05, 10.0], None, [10.0]),            # |d| < 0.1 ends the run
    ([8.0, 9.0, 10.0], [-40.0, -15.0, 0.0], [9.0, 10.0]),  # a 15-min gap is fine, 25 min ends it
    ([9.0, 10.0], [-185.0, 0.0], [10.0]),         # older than the 180-min retrospection window
])
def test_integral_recent_run(values, offsets, run):
    result = rc.integral_correction(T0, 100.0, summed(values, offsets))
    np.testing.assert_array_equal(result.recent_discrepancies_mgdl, run)


def test_integral_tiny_current_discrepancy():
    """|current| < 0.1: empty run, I = D = 0, duration 60 - 10 = 50 min, total Kp x 0.05."""
    result = rc.integral_correction(T0, 100.0, summed([3.0, 0.05]))
    assert result.recent_discrepancies_mgdl.size == 0
    assert result.integral_mgdl == 0.0 and result.differential_mgdl == 0.0
    assert result.effect_duration_min == 50.0
    assert result.total_mgdl == pytest.approx(0.05 * KP, abs=1e-15)
    assert result.values_mgdl[-1] - 100.0 == pytest.approx(result.total_mgdl, abs=1e-12)


@pytest.mark.parametrize("correction", [rc.standard_correction, rc.integral_correction])
def test_recency(correction):
    """The last discrepancy must end at most 15 min before the latest glucose."""
    assert correction(T0, 100.0, summed([10.0], [-15.0])).total_mgdl is not None
    stale = correction(T0, 100.0, summed([10.0], [-15.0 - 1.0 / 60.0]))
    assert stale.total_mgdl is None and stale.dates_s.size == 0 and stale.values_mgdl.size == 0


def test_span_longer_than_grouping_interval():
    """A discrepancy summed over 40 min is spread over 40 min: 12/40 mg/dL/min, first step 1.5."""
    result = rc.standard_correction(T0, 100.0, summed([12.0], span_min=40.0))
    assert result.values_mgdl[1] - result.values_mgdl[0] == pytest.approx(1.5, abs=1e-12)


def test_continuous_decay_on_grid_matches_stepwise():
    stepwise = rc.integral_correction(T0, 100.0, summed([10.0, 6.0]))
    continuous = rc.integral_correction(T0, 100.0, summed([10.0, 6.0]), continuous_decay=True)
    np.testing.assert_allclose(continuous.values_mgdl, stepwise.values_mgdl, rtol=0, atol=1e-12)


def _ice(velocities, first_end=T0 - 30 * 60.0):
    ends = first_end + 300.0 * np.arange(len(velocities))
    return ends - 300.0, ends, np.asarray(velocities, dtype=float)


def test_discrepancies_without_carbs():
    """No carb effect: discrepancies are ICE x 5 min (1 mg/dL/min -> 5 mg/dL), summed over 30.3 min:
    seven 5-min ICE ending T0-30 .. T0 sum to 35 mg/dL."""
    d = rc.discrepancies(*_ice([1.0] * 7))
    np.testing.assert_allclose(d.values_mgdl, 5.0 * np.arange(1, 8), rtol=0, atol=1e-12)
    assert d.start_s[-1] == T0 - 1800.0 and d.end_s[-1] == T0


def test_correction_from_effects_without_carbs():
    """Issue 3: RC works with no carbs (PyLoopKit returned nothing). Seven ICE of 1 mg/dL/min ending
    at T0: discrepancy 35 over exactly 30 min, so the effect rises by 35 mg/dL over the hour."""
    empty = (np.empty(0), np.empty(0))
    effect = rc.correction_from_effects([T0], [100.0], _ice([1.0] * 7), empty).effect
    assert effect[1][-1] == pytest.approx(135.0, abs=1e-9)
    integral = rc.correction_from_effects([T0], [100.0], _ice([1.0] * 7), empty, method="integral")
    assert integral.recent_discrepancies_mgdl.size == 7


def test_correction_from_effects_with_carbs():
    """Carbs explaining +3 of each +5 step leave 2 per ICE; the seven ICE (T0-30 .. T0) sum to 14 mg/dL."""
    ice = _ice([1.0] * 7)
    carb = (T0 - 1800.0 + 300.0 * np.arange(9), 3.0 * np.arange(9))
    result = rc.correction_from_effects([T0 - 300, T0], [90.0, 100.0], ice, carb)
    assert result.total_mgdl == pytest.approx(14.0, abs=1e-12)


@pytest.mark.parametrize("method", ["standard", "integral"])
def test_correction_from_effects_empty_inputs(method):
    empty2, empty3 = (np.empty(0),) * 2, (np.empty(0),) * 3
    for glucose in ([], [T0]):
        values = [100.0] * len(glucose)
        result = rc.correction_from_effects(glucose, values, empty3, empty2, method=method)
        assert result.total_mgdl is None and result.dates_s.size == 0


def test_correction_from_effects_ignores_ice_after_now():
    """ICE ending after ``now_s`` is not known yet: with now = T0 - 20 min the last discrepancy ends
    20 min before the latest glucose, beyond the 15-min recency."""
    empty = (np.empty(0), np.empty(0))
    result = rc.correction_from_effects([T0], [100.0], _ice([1.0] * 7), empty, now_s=T0 - 1200.0)
    assert result.total_mgdl is None


def test_rejects_bad_input():
    with pytest.raises(InvalidInputError) as err:
        rc.standard_correction(T0, float("nan"), summed([10.0]))
    assert err.value.problems[0].field == "glucose_mgdl"
    with pytest.raises(InvalidInputError) as err:
        rc.correction_from_effects([T0], [100.0], _ice([1.0]), (np.empty(0),) * 2, method="pid")
    assert err.value.problems[0].field == "method"
    with pytest.raises(InvalidInputError) as err:
        rc.discrepancies(*_ice([1.0, np.inf]))
    assert (err.value.problems[0].field, err.value.problems[0].index) == ("ice.velocity_mgdl_per_min", 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-40, 40, allow_nan=False), min_size=1, max_size=40),
       st.sampled_from([rc.standard_correction, rc.integral_correction]))
def test_effect_net_change_is_total_correction(values, correction):
    """On the grid, with 30-min discrepancies, the effect's net change is the total correction."""
    result = correction(T0, 120.0, summed(values))
    assert result.values_mgdl[-1] - 120.0 == pytest.approx(result.total_mgdl, abs=1e-9)
    assert np.all(np.isfinite(result.values_mgdl))


def test_rejects_bad_discrepancies():
    bad = rc.Discrepancies(np.array([T0 - 1800.0, T0 - 1500.0]), np.array([T0 - 300.0, T0]), np.array([1.0, np.nan]))
    with pytest.raises(InvalidInputError) as err:
        rc.integral_correction(T0, 100.0, bad)
    assert (err.value.problems[0].field, err.value.problems[0].index) == ("summed.values_mgdl", 1)
