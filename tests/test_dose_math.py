"""Tests of pyloopkit.dose_math: hand-computed cases and property tests of the safety invariants.

The Swift DoseMath suites on the reference fixtures are in tests/conformance/test_dosemath.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyloopkit.dose import DoseType
from pyloopkit.dose_math import (
    if_necessary,
    insulin_correction,
    recommended_automatic_bolus,
    recommended_bolus,
    recommended_temp_basal,
    round_to_increment,
    target_glucose_mgdl,
)
from pyloopkit.errors import InvalidInputError
from pyloopkit.insulin_models import ExponentialInsulinModel, WalshInsulinModel
from pyloopkit.schedule import DailySchedule


class LinearModel:
    """Test model: the effect remaining falls linearly from 1 to 0 over 100 minutes."""

    effect_duration_min = 100.0

    @staticmethod
    def percent_effect_remaining(t_min):
        return np.clip(1.0 - np.asarray(t_min, dtype=float) / 100.0, 0.0, 1.0)


AT = 1000.0 * 86400.0  # midnight, day 1000 after the reference date
TARGET = DailySchedule(np.zeros(1), np.array([[100.0, 120.0]]))
ISF = DailySchedule.constant(50.0)
BASAL = DailySchedule.constant(1.0)
MINUTES = np.array([0.0, 50.0, 100.0])


def settings_for(glucose, **overrides):
    kwargs = dict(at_s=AT, target=TARGET, suspend_threshold_mgdl=70.0, sensitivity=ISF, model=LinearModel())
    kwargs.update(overrides)
    return (AT + MINUTES * 60.0, np.asarray(glucose, dtype=float)), kwargs


def temp(glucose, **overrides):
    (dates, values), kwargs = settings_for(glucose, **overrides)
    kwargs.setdefault("basal", BASAL)
    kwargs.setdefault("max_basal_rate_u_per_h", 5.0)
    return recommended_temp_basal(dates, values, **kwargs)


def bolus(glucose, **overrides):
    (dates, values), kwargs = settings_for(glucose, **overrides)
    kwargs.setdefault("pending_insulin_u", 0.0)
    kwargs.setdefault("max_bolus_u", 10.0)
    return recommended_bolus(dates, values, **kwargs)


# ---------------------------------------------------------------- building blocks

def test_round_half_away_from_zero():
    assert round_to_increment(0.0125, 0.025) == 0.025  # x * 40 = 0.5 -> 1 (Python's round gives 0)
    assert round_to_increment(0.0375, 0.025) == 0.05  # 1.5 -> 2
    assert round_to_increment(0.0625, 0.025) == 0.075  # 2.5 -> 3 (half-to-even gives 2)
    assert round_to_increment(-0.0625, 0.025) == -0.075
    assert round_to_increment(1.2345, None) == 1.2345
    assert round_to_increment(1.574, 0.025) == 1.575


def test_target_blends_from_suspend_threshold_after_half_the_duration():
    f = np.array([0.0, 0.5, 0.75, 1.0, 1.5])
    np.testing.assert_array_equal(target_glucose_mgdl(f, 70.0, 110.0), [70.0, 70.0, 90.0, 110.0, 110.0])


def test_correction_above_range_hand_computed():
    # t=0: nothing effected, skipped. t=50: target 70, effected 0.5*50: (200-70)/25 = 5.2 U.
    # t=100: target 110, effected 50: (200-110)/50 = 1.8 U -> the least correction.
    (dates, values), kwargs = settings_for([200.0, 200.0, 200.0])
    c = insulin_correction(dates, values, **kwargs)
    assert c.kind == "above_range" and c.units == pytest.approx(1.8, abs=1e-12)
    assert temp([200.0, 200.0, 200.0]) == {"rate": pytest.approx(1.0 + 1.8 / 0.5, abs=1e-12), "duration": 30.0}
    out = bolus([200.0, 200.0, 200.0], pending_insulin_u=0.3)
    assert out["amount"] == pytest.approx(1.5, abs=1e-12) and out["notice"] is None


def test_correction_entirely_below_range_hand_computed():
    # Minimum 75 at t=50 min: (75 - 110) / (0.5 * 50) = -1.4 U -> 1 - 2.8 U/h < 0 -> 0 U/h.
    (dates, values), kwargs = settings_for([80.0, 75.0, 85.0])
    c = insulin_correction(dates, values, **kwargs)
    assert c.kind == "entirely_below_range" and c.units == pytest.approx(-1.4, abs=1e-12)
    assert temp([80.0, 75.0, 85.0]) == {"rate": 0.0, "duration": 30.0}
    assert bolus([80.0, 75.0, 85.0])["amount"] == 0.0


def test_below_range_rate_hand_computed():
    # Minimum 98 below range but eventual 105 in range -> in range: scheduled rate, no change.
    assert temp([110.0, 98.0, 105.0]) is None
    # Both below: minimum 95 at t=100: (95-110)/50 = -0.3 U -> 1 - 0.6 = 0.4 U/h.
    assert temp([101.0, 99.0, 95.0]) == {"rate": pytest.approx(0.4, abs=1e-12), "duration": 30.0}


def test_suspend_when_any_prediction_below_threshold():
    assert temp([200.0, 69.0, 300.0]) == {"rate": 0.0, "duration": 30.0}
    out = bolus([200.0, 69.0, 300.0])
    assert out["amount"] == 0.0 and out["notice"] == ("glucoseBelowSuspendThreshold", 69.0)


def test_minimum_below_target_limits_rate_to_scheduled_and_sets_notice():
    # Eventual 250 is high but the minimum 95 < 100: the rate is capped at the scheduled 1 U/h.
    assert temp([120.0, 95.0, 250.0]) is None  # capped rate == scheduled -> no change
    out = bolus([120.0, 95.0, 250.0])
    assert out["amount"] > 0 and out["notice"] == ("predictedGlucoseBelowTarget", 95.0)
    assert bolus([90.0, 95.0, 250.0])["notice"] == ("currentGlucoseBelowTarget", 90.0)


def test_predictions_outside_effect_duration_are_ignored():
    dates = AT + np.array([-10.0, 101.0]) * 60.0
    _, kwargs = settings_for([0.0, 0.0, 0.0])
    assert insulin_correction(dates, [50.0, 400.0], **kwargs) is None
    assert recommended_temp_basal(dates, [50.0, 400.0], basal=BASAL, max_basal_rate_u_per_h=5.0, **kwargs) is None


def test_suspend_threshold_none_uses_target_minimum():
    assert bolus([99.0, 150.0, 250.0], suspend_threshold_mgdl=None)["notice"] == (
        "glucoseBelowSuspendThreshold", 99.0)


def test_if_necessary_rules():
    running = (DoseType.TEMP_BASAL, AT - 600.0, AT + 1200.0, 2.0)
    common = dict(at_s=AT, scheduled_u_per_h=1.0)
    # Same rate, 20 min left (> 11): keep it.
    assert if_necessary(2.0, 30.0, last_temp_basal=running, **common) is None
    # Same rate, 10 min left: re-issue.
    ending = (DoseType.TEMP_BASAL, AT - 1200.0, AT + 600.0, 2.0)
    assert if_necessary(2.0, 30.0, last_temp_basal=ending, **common) == {"rate": 2.0, "duration": 30.0}
    # Scheduled rate while a temp runs: cancel; with no temp: nothing.
    assert if_necessary(1.0, 30.0, last_temp_basal=running, **common) == {"rate": 0.0, "duration": 0.0}
    assert if_necessary(1.0, 30.0, last_temp_basal=None, **common) is None
    # An override makes the scheduled rate a real temp basal.
    assert if_necessary(1.0, 30.0, last_temp_basal=None, scheduled_basal_matches_pump=False, **common) == {
        "rate": 1.0, "duration": 30.0}
    # A finished temp basal or a non-temp dose is ignored; type names are accepted.
    finished = ("TempBasal", AT - 3600.0, AT - 1.0, 1.0)
    assert if_necessary(1.0, 30.0, last_temp_basal=finished, **common) is None
    assert if_necessary(1.0, 30.0, last_temp_basal=("basal", AT - 60.0, AT + 1800.0, 1.0), **common) is None


def test_max_basal_and_rounding_never_exceed_limit():
    # Wants 4.6 U/h; max 2.99 with 0.05 steps: rounding 2.99 would give 3.00 > max, so 2.95.
    out = temp([200.0, 200.0, 200.0], max_basal_rate_u_per_h=2.99, rate_rounder=0.05)
    assert out == {"rate": 2.95, "duration": 30.0}
    out = bolus([400.0, 400.0, 400.0], max_bolus_u=1.01, volume_rounder=0.05)
    assert out["amount"] == 1.0


def test_iob_headroom_limits_temp_basal_and_automatic_bolus():
    # Headroom 0.5 U over 30 min: at most 1 + 1 = 2 U/h.
    assert temp([200.0, 200.0, 200.0], max_iob_headroom_u=0.5)["rate"] == pytest.approx(2.0, abs=1e-12)
    # At or above the limit the scheduled rate continues (no change), never less.
    assert temp([200.0, 200.0, 200.0], max_iob_headroom_u=-1.0) is None
    (dates, values), kwargs = settings_for([200.0, 200.0, 200.0])
    out = recommended_automatic_bolus(dates, values, basal=BASAL, max_automatic_bolus_u=5.0,
                                      partial_application_factor=0.4, max_iob_headroom_u=0.5, **kwargs)
    assert out == {"basal_adjustment": None, "bolus_units": pytest.approx(0.4 * 0.5, abs=1e-12)}


def test_automatic_bolus_partial_application():
    (dates, values), kwargs = settings_for([200.0, 200.0, 200.0])
    out = recommended_automatic_bolus(dates, values, basal=BASAL, max_automatic_bolus_u=5.0,
                                      partial_application_factor=0.4, **kwargs)
    assert out == {"basal_adjustment": None, "bolus_units": pytest.approx(0.4 * 1.8, abs=1e-12)}
    out = recommended_automatic_bolus(dates, values, basal=BASAL, max_automatic_bolus_u=0.5,
                                      partial_application_factor=0.4, volume_rounder=0.05, **kwargs)
    assert out["bolus_units"] == 0.5
    # Low: a low temp basal, no bolus.
    (dates, values), kwargs = settings_for([80.0, 75.0, 85.0])
    out = recommended_automatic_bolus(dates, values, basal=BASAL, max_automatic_bolus_u=5.0,
                                      partial_application_factor=0.4, **kwargs)
    assert out == {"basal_adjustment": {"rate": 0.0, "duration": 30.0}, "bolus_units": 0.0}


@pytest.mark.parametrize("field,index,value,call", [
    ("pred_mgdl", 1, np.nan, lambda: temp([200.0, np.nan, 200.0])),
    ("pred_mgdl", 2, np.inf, lambda: bolus([200.0, 200.0, np.inf])),
    ("max_basal_rate_u_per_h", None, -1.0, lambda: temp([200.0] * 3, max_basal_rate_u_per_h=-1.0)),
    ("max_basal_rate_u_per_h", None, None, lambda: temp([200.0] * 3, max_basal_rate_u_per_h=None)),
    ("max_bolus_u", None, np.nan, lambda: bolus([200.0] * 3, max_bolus_u=np.nan)),
    ("pending_insulin_u", None, -0.5, lambda: bolus([200.0] * 3, pending_insulin_u=-0.5)),
])
def test_invalid_input_names_field_index_and_value(field, index, value, call):
    with pytest.raises(InvalidInputError) as err:
        call()
    p = err.value.problems[0]
    assert (p.field, p.index) == (field, index)
    assert (p.value is None and value is None) or p.value == value or (np.isnan(p.value) and np.isnan(value))


def test_decreasing_prediction_dates_are_rejected():
    with pytest.raises(InvalidInputError) as err:
        recommended_bolus(AT + np.array([0.0, 600.0, 300.0]), [100.0, 100.0, 100.0], at_s=AT, target=TARGET,
                          suspend_threshold_mgdl=70.0, sensitivity=ISF, model=LinearModel(),
                          pending_insulin_u=0.0, max_bolus_u=1.0)
    assert [(p.field, p.index, p.value) for p in err.value.problems] == [("pred_dates_s", 2, AT + 300.0)]


# ---------------------------------------------------------------- property tests of the safety invariants

MODELS = st.sampled_from([WalshInsulinModel(4.0, 0.0), WalshInsulinModel(6.0, 10.0),
                          ExponentialInsulinModel(360.0, 75.0, 10.0), ExponentialInsulinModel(300.0, 29.0, 0.0),
                          LinearModel()])
ROUNDERS = st.sampled_from([None, 0.025, 0.05, 0.1, 0.3])
finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 90))
    glucose = draw(st.lists(st.floats(1.0, 700.0, **finite), min_size=n, max_size=n))
    start_offset_min = draw(st.sampled_from([-30.0, -4.0, 0.0, 2.5]))
    dates = AT + (start_offset_min + 5.0 * np.arange(n)) * 60.0
    low = draw(st.floats(60.0, 200.0, **finite))
    high = low + draw(st.floats(0.0, 80.0, **finite))
    running = draw(st.one_of(st.none(), st.tuples(
        st.sampled_from([DoseType.TEMP_BASAL, DoseType.BASAL]), st.just(AT - 600.0),
        st.floats(AT - 600.0, AT + 1800.0, **finite), st.floats(0.0, 10.0, **finite))))
    return dict(
        dates=dates, glucose=np.array(glucose),
        target=DailySchedule(np.zeros(1), np.array([[low, high]])),
        suspend=draw(st.one_of(st.none(), st.floats(0.0, 150.0, **finite))),
        isf=DailySchedule.constant(draw(st.floats(5.0, 500.0, **finite))),
        basal=DailySchedule.constant(draw(st.floats(0.0, 5.0, **finite))),
        model=draw(MODELS), rounder=draw(ROUNDERS),
        max_basal=draw(st.floats(0.0, 10.0, **finite)), max_bolus=draw(st.floats(0.0, 30.0, **finite)),
        pending=draw(st.floats(0.0, 5.0, **finite)),
        headroom=draw(st.one_of(st.none(), st.floats(-5.0, 10.0, **finite))),
        factor=draw(st.floats(0.0, 1.0, **finite)),
        running=running, override=draw(st.booleans()),
    )


def _common(s):
    return dict(at_s=AT, target=s["target"], suspend_threshold_mgdl=s["suspend"], sensitivity=s["isf"],
                model=s["model"])


def _below_suspend(s) -> bool:
    t_min = (s["dates"] - AT) / 60.0
    inside = (t_min >= 0) & (t_min <= s["model"].effect_duration_min)
    threshold = s["target"].values[0, 0] if s["suspend"] is None else s["suspend"]
    return bool(np.any(s["glucose"][inside] < threshold))


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(scenarios())
def test_temp_basal_never_exceeds_max_and_suspends_below_threshold(s):
    out = recommended_temp_basal(s["dates"], s["glucose"], basal=s["basal"], max_basal_rate_u_per_h=s["max_basal"],
                                 last_temp_basal=s["running"], rate_rounder=s["rounder"],
                                 max_iob_headroom_u=s["headroom"], basal_schedule_override_active=s["override"],
                                 **_common(s))
    if out is None:
        return
    assert np.isfinite(out["rate"]) and 0.0 <= out["rate"] <= s["max_basal"]
    assert out["duration"] in (0.0, 30.0)
    if s["headroom"] is not None:
        assert out["rate"] <= max(s["basal"].values[0], 0.0) + 2.0 * max(s["headroom"], 0.0) + 1e-12
    if _below_suspend(s):
        assert out["rate"] == 0.0


@PROPERTY_SETTINGS
@given(scenarios())
def test_bolus_never_exceeds_max_and_is_zero_below_threshold(s):
    out = recommended_bolus(s["dates"], s["glucose"], pending_insulin_u=s["pending"], max_bolus_u=s["max_bolus"],
                            volume_rounder=s["rounder"], **_common(s))
    assert np.isfinite(out["amount"]) and 0.0 <= out["amount"] <= s["max_bolus"]
    if _below_suspend(s):
        assert out["amount"] == 0.0 and out["notice"][0] == "glucoseBelowSuspendThreshold"


@PROPERTY_SETTINGS
@given(scenarios())
def test_automatic_bolus_never_exceeds_limits_and_is_zero_below_threshold(s):
    out = recommended_automatic_bolus(s["dates"], s["glucose"], basal=s["basal"], max_automatic_bolus_u=s["max_bolus"],
                                      partial_application_factor=s["factor"], last_temp_basal=s["running"],
                                      volume_rounder=s["rounder"], rate_rounder=s["rounder"],
                                      max_basal_rate_u_per_h=s["max_basal"], max_iob_headroom_u=s["headroom"],
                                      basal_schedule_override_active=s["override"], **_common(s))
    if out is None:
        return
    assert np.isfinite(out["bolus_units"]) and 0.0 <= out["bolus_units"] <= s["max_bolus"]
    if s["headroom"] is not None:
        assert out["bolus_units"] <= s["factor"] * max(s["headroom"], 0.0) + 1e-12
    temp_basal = out["basal_adjustment"]
    if temp_basal is not None:
        assert 0.0 <= temp_basal["rate"] <= min(s["max_basal"], s["basal"].values[0])
    if _below_suspend(s):
        assert out["bolus_units"] == 0.0
        assert temp_basal is None or temp_basal["rate"] == 0.0


@pytest.mark.parametrize("field,value,overrides", [
    ("sensitivity", 0.0, dict(sensitivity=DailySchedule.constant(0.0))),
    ("basal", -1.0, dict(basal=DailySchedule.constant(-1.0))),
    ("duration_min", 0.0, dict(duration_min=0.0)),
])
def test_invalid_schedule_values_at_delivery_time(field, value, overrides):
    with pytest.raises(InvalidInputError) as err:
        temp([200.0, 200.0, 200.0], **overrides)
    assert [(p.field, p.index, p.value) for p in err.value.problems] == [(field, None, value)]


def test_invalid_target_range_names_prediction_index():
    bad = DailySchedule(np.array([0.0, 600.0]), np.array([[100.0, 120.0], [130.0, np.nan]]))
    with pytest.raises(InvalidInputError) as err:
        bolus([200.0, 200.0, 200.0], target=bad)
    assert [(p.field, p.index) for p in err.value.problems] == [("target", 1), ("target", 2)]
