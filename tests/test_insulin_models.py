"""Tests for pyloopkit.insulin_models: curve limits, activity, presets, validation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyloopkit.errors import InvalidInputError
from pyloopkit.insulin_models import (PRESETS, ExponentialInsulinModel, WalshInsulinModel,
                                      model_from_setting)

MODELS = [ExponentialInsulinModel(360.0, 75.0), ExponentialInsulinModel(300.0, 29.0, 0.0),
          WalshInsulinModel(4.0), WalshInsulinModel(6.0, 15.0), WalshInsulinModel(2.5)]


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_limits_and_effect_duration(model):
    d = model.delay_min
    assert model.effect_duration_min == pytest.approx(model.action_duration_min + d)
    t = np.array([-30.0, 0.0, d, model.effect_duration_min, model.effect_duration_min + 1.0])
    np.testing.assert_array_equal(model.percent_effect_remaining(t), [1.0, 1.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_remaining_in_unit_interval(model):
    t = np.linspace(-10.0, model.effect_duration_min + 10.0, 2001)
    r = model.percent_effect_remaining(t)
    # The 3 h Walsh fit peaks at 1.00075 (unclipped, as in Swift); the others stay within [0, 1].
    assert np.all((r >= 0.0) & (r <= (1.001 if isinstance(model, WalshInsulinModel) else 1.0)))
    if isinstance(model, ExponentialInsulinModel):
        assert np.all(np.diff(r) <= 1e-12)


def test_walsh_fits_are_not_monotone_at_the_start():
    """The 3, 5 and 6 h polynomials have a positive linear term: they rise for a few minutes after
    the delay (e.g. 6 h: 0.997 up to ~0.9995), as in LoopKit, which does not clip them."""
    six = WalshInsulinModel(6.0, 0.0)
    assert six.percent_effect_remaining(8.0) > six.percent_effect_remaining(0.5)
    assert six.percent_activity(1.0) < 0.0


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_activity_is_minus_derivative_and_integrates_to_one(model):
    d, end = model.delay_min, model.effect_duration_min
    t = np.linspace(d + 0.5, end - 0.5, 4001)
    h = 1e-4
    numeric = -(model.percent_effect_remaining(t + h) - model.percent_effect_remaining(t - h)) / (2 * h)
    np.testing.assert_allclose(model.percent_activity(t), numeric, atol=1e-7)
    fine = np.linspace(d + 1e-9, end - 1e-9, 200_001)
    activity = model.percent_activity(fine)
    total = np.sum((activity[1:] + activity[:-1]) / 2.0 * np.diff(fine))  # trapezoid rule
    # Walsh polynomials start at ~0.9995 and end at ~0, so their activity integrates to ~1 - 5e-4.
    expected = model.percent_effect_remaining(d + 1e-9) - model.percent_effect_remaining(end - 1e-9)
    assert total == pytest.approx(expected, abs=1e-6)
    assert np.all(model.percent_activity(np.array([d - 1.0, end + 1.0])) == 0.0)


def test_exponential_peak_activity_is_at_peak_time_after_delay():
    for name, model in PRESETS.items():
        t = np.linspace(0.0, model.effect_duration_min, 60_001)
        peak = t[np.argmax(model.percent_activity(t))]
        assert peak == pytest.approx(model.delay_min + model.peak_activity_min, abs=0.02), name


def test_presets_match_loopalgorithm():
    expected = {"adult": (360, 75), "child": (360, 65), "fiasp": (360, 55), "lyumjev": (360, 55), "afrezza": (300, 29)}
    assert set(PRESETS) == set(expected)
    for name, (duration, peak) in expected.items():
        m = PRESETS[name]
        assert (m.action_duration_min, m.peak_activity_min, m.delay_min) == (duration, peak, 10.0)
    assert PRESETS["adult"].effect_duration_min == 370.0


def test_walsh_other_durations_stretch_the_nearest_curve():
    """DIA outside 3-6 h (or between) uses the nearest modelled curve stretched in time."""
    t = np.linspace(1.0, 100.0, 50)
    two, three = WalshInsulinModel(2.0, 0.0), WalshInsulinModel(3.0, 0.0)
    np.testing.assert_allclose(two.percent_effect_remaining(t), three.percent_effect_remaining(1.5 * t), rtol=1e-12)
    seven, six = WalshInsulinModel(7.0, 0.0), WalshInsulinModel(6.0, 0.0)
    np.testing.assert_allclose(seven.percent_effect_remaining(t * 7), six.percent_effect_remaining(t * 6), rtol=1e-12)
    assert WalshInsulinModel(5.2).nearest_modeled_duration_h == 5
    assert WalshInsulinModel(4.5).nearest_modeled_duration_h == 5  # Swift rounds half away from zero


def test_vectorised_shape_is_kept():
    t = np.arange(12.0).reshape(3, 4) * 30.0
    for model in MODELS:
        assert model.percent_effect_remaining(t).shape == (3, 4)
        assert model.percent_activity(t).shape == (3, 4)
    assert np.ndim(PRESETS["adult"].percent_effect_remaining(50.0)) == 0


@pytest.mark.parametrize("args,field", [((360.0, 180.0), "peak_activity_min"), ((0.0, 75.0), "action_duration_min"),
                                        ((360.0, float("nan")), "peak_activity_min"),
                                        ((360.0, 75.0, -1.0), "delay_min")])
def test_exponential_validation_names_the_field(args, field):
    with pytest.raises(InvalidInputError) as error:
        ExponentialInsulinModel(*args)
    assert error.value.problems[0].field == field


def test_walsh_validation():
    with pytest.raises(InvalidInputError) as error:
        WalshInsulinModel(0.0)
    assert error.value.problems[0].field == "action_duration_h"


def test_model_from_setting():
    walsh = model_from_setting([4])
    assert isinstance(walsh, WalshInsulinModel) and walsh.action_duration_h == 4.0 and walsh.delay_min == 10.0
    exponential = model_from_setting([360, 65], delay_min=15.0)
    assert exponential == ExponentialInsulinModel(360.0, 65.0, 15.0)
    for bad in ([], [1, 2, 3], ["x"], [float("inf")], None):
        with pytest.raises(InvalidInputError):
            model_from_setting(bad)


@settings(max_examples=60, deadline=None)
@given(duration=st.floats(120.0, 600.0), peak_fraction=st.floats(0.05, 0.45), delay=st.floats(0.0, 30.0),
       times=st.lists(st.floats(-100.0, 800.0), min_size=1, max_size=50))
def test_exponential_property_bounded_and_monotone(duration, peak_fraction, delay, times):
    model = ExponentialInsulinModel(duration, duration * peak_fraction, delay)
    t = np.sort(np.array(times))
    r = model.percent_effect_remaining(t)
    assert np.all((r >= -1e-12) & (r <= 1.0 + 1e-12))
    assert np.all(np.diff(r) <= 1e-12)
    assert np.all(model.percent_activity(t) >= 0.0)
