"""CGM noise, pump increments and limits, meal scenarios."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from pyloopkit.errors import InvalidInputError
from pyloopkit.simulation import CGMSensor, CustomScenario, HarrisBenedictScenario, Pump, RandomScenario, load_patients
from pyloopkit.simulation.sensor import NoiseStream


class _RandomStateNormals:
    """The normal draws simglucose's noise generator makes (``RandomState(seed).randn``)."""

    def __init__(self, seed):
        self.state = np.random.RandomState(seed)

    def standard_normal(self, size):
        return self.state.randn(size)


# --- sensor -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Dexcom", "GuardianRT", "Navigator"])
def test_noise_sequence_equals_simglucose_given_the_same_normals(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from simglucose.sensor.cgm import CGMSensor as SimglucoseSensor
        from simglucose.sensor.noise_gen import CGMNoise
    sensor = CGMSensor.from_name(name)
    stream = NoiseStream(sensor, [_RandomStateNormals(7)])
    ours = np.concatenate([stream.next(13), stream.next(1), stream.next(400)], axis=1)[0]
    generator = CGMNoise(SimglucoseSensor.withName(name)._params, seed=7)
    theirs = np.array([next(generator) for _ in range(414)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-10)


def test_sensor_parameters():
    dexcom = CGMSensor.from_name("Dexcom")
    assert (dexcom.sample_time_min, dexcom.min_mg_dl, dexcom.max_mg_dl) == (3, 39.0, 600.0)
    assert CGMSensor.from_name("GuardianRT").sample_time_min == 5
    assert CGMSensor.from_name("Navigator").min_mg_dl == 32.0
    with pytest.raises(InvalidInputError, match="sensor"):
        CGMSensor.from_name("Libre")


def test_noise_is_reproducible_per_member_and_differs_between_seeds():
    sensor = CGMSensor.from_name("Dexcom")
    seeds = [np.random.SeedSequence(1, spawn_key=(k,)) for k in range(3)]
    a = sensor.noise(seeds, 200)
    b = sensor.noise(seeds, 200)
    np.testing.assert_array_equal(a, b)
    alone = sensor.noise(seeds[1:2], 200)
    np.testing.assert_array_equal(alone[0], a[1])
    assert not np.allclose(a[0], a[1])
    other = sensor.noise([np.random.SeedSequence(2, spawn_key=(0,))], 200)
    assert not np.allclose(other[0], a[0])


def test_noise_statistics_match_the_johnson_transformed_ar1_process():
    """At the 15-minute knots the noise is xi + lambda sinh((e - gamma)/delta) of an AR(1) e.

    e_0 ~ N(0, 1) and e_k = PACF (e_{k-1} + w_k), so Var(e_k) = PACF^2 (Var(e_{k-1}) + 1), and
    E[sinh((e - gamma)/delta)] = sinh(-gamma/delta) exp(Var(e) / (2 delta^2)).
    """
    sensor = CGMSensor.from_name("Dexcom")
    n_members, n_knots = 4000, 20
    noise = sensor.noise([np.random.SeedSequence(11, spawn_key=(k,)) for k in range(n_members)], 5 * n_knots)
    knots = noise[:, 4::5]  # sample j sits at (j + 1) * 3 min, so j = 4, 9, ... are the knots 15, 30, ... min
    variance = np.empty(n_knots + 1)
    variance[0] = 1.0
    for k in range(1, n_knots + 1):
        variance[k] = sensor.pacf ** 2 * (variance[k - 1] + 1.0)
    expected_mean = sensor.xi + sensor.lam * np.sinh(-sensor.gamma / sensor.delta) * np.exp(
        variance[1:] / (2 * sensor.delta ** 2))
    standard_error = knots.std(axis=0) / np.sqrt(n_members)
    assert np.all(np.abs(knots.mean(axis=0) - expected_mean) < 4.5 * standard_error)
    e = sensor.gamma + sensor.delta * np.arcsinh((knots - sensor.xi) / sensor.lam)
    np.testing.assert_allclose(e.var(axis=0), variance[1:], rtol=0.1)
    slope = np.sum(e[:, :-1] * e[:, 1:]) / np.sum(e[:, :-1] ** 2)
    assert slope == pytest.approx(sensor.pacf, abs=0.02)


# --- pump ---------------------------------------------------------------------------------------

def test_insulet_rounds_to_increments_and_limits():
    pump = Pump.from_name("Insulet")
    np.testing.assert_allclose(pump.basal([0.0, 0.123, 0.126, 1.0, 45.0]), [0.0, 0.1, 0.15, 1.0, 30.0])
    np.testing.assert_allclose(pump.bolus([3.14159, 0.02, 31.0]), [3.15, 0.0, 30.0])
    assert Pump.from_name("Cozmo").bolus(80.0) == pytest.approx(75.0)
    assert Pump.from_name("Cozmo").basal(40.0) == pytest.approx(35.0)


def test_ideal_pump_delivers_exactly_and_bad_requests_raise():
    ideal = Pump.ideal()
    np.testing.assert_array_equal(ideal.basal([0.0, 0.123456, 100.0]), [0.0, 0.123456, 100.0])
    with pytest.raises(InvalidInputError) as error:
        Pump.from_name("Insulet").basal([1.0, -0.5, np.nan])
    assert [(p.field, p.index) for p in error.value.problems] == [("basal_u_per_h", 1), ("basal_u_per_h", 2)]
    with pytest.raises(InvalidInputError, match="pump"):
        Pump.from_name("Medtronic")
    with pytest.raises(InvalidInputError):
        Pump("bad", 0.05, 1.0, 0.5, 0.05, 0.0, 30.0)


# --- scenarios ----------------------------------------------------------------------------------

def _seeds(seed, n):
    return [np.random.SeedSequence(seed, spawn_key=(k,)) for k in range(n)]


def test_custom_scenario_lays_meals_on_minutes():
    patients = load_patients(["adult#001", "child#001"])
    plan = CustomScenario([(60, 50), (61, 10), (300, 70.5)]).plan(patients, _seeds(0, 2), 0.0)
    grams = plan.grams(0, 200)
    assert grams.shape == (2, 200)
    assert grams[0, 60] == 50 and grams[1, 61] == 10 and grams.sum() == 120
    assert plan.grams(250, 400)[:, 50].tolist() == [70.5, 70.5]
    for bad in ([(1.5, 10)], [(-1, 10)], [(10, -5)], [(10,)]):
        with pytest.raises(InvalidInputError):
            CustomScenario(bad)


def test_random_scenario_is_reproducible_and_seed_dependent():
    patients = load_patients("adult").take(np.zeros(50, dtype=int))
    scenario = RandomScenario()
    a = scenario.plan(patients, _seeds(1, 50), 0.0).grams(0, 3 * 1440)
    b_plan = scenario.plan(patients, _seeds(1, 50), 0.0)
    b = np.concatenate([b_plan.grams(0, 1000), b_plan.grams(1000, 3 * 1440)], axis=1)
    np.testing.assert_array_equal(a, b)
    c = scenario.plan(patients, _seeds(2, 50), 0.0).grams(0, 3 * 1440)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[:, :1440], a[:, 1440:2880])


def test_random_scenario_statistics_follow_simglucose_meal_model():
    scenario = RandomScenario()
    n_members, n_days = 400, 10
    uniforms = np.random.default_rng(5).random((n_members, n_days, 6, 3))
    times, amounts = scenario.draw_days(uniforms, np.ones(n_members))
    assert np.all((times >= scenario.time_low_min) & (times <= scenario.time_high_min))
    happened = amounts > 0
    np.testing.assert_allclose(happened.mean(axis=(0, 1)), scenario.probability, atol=0.02)
    # the truncation windows are symmetric around the means: the truncated means equal them
    np.testing.assert_allclose(times.mean(axis=(0, 1)), scenario.time_mean_min, atol=3.0)
    main = amounts[..., [0, 2, 4]]
    np.testing.assert_allclose(main[main > 0].mean(), np.mean([45, 70, 80]), rtol=0.05)
    np.testing.assert_array_equal(amounts, np.round(amounts))


def test_random_scenario_starts_at_start_hour_and_redraws_each_day():
    patients = load_patients("adult#001").take(np.zeros(200, dtype=int))
    plan = RandomScenario().plan(patients, _seeds(3, 200), start_hour=13.0)
    grams = plan.grams(0, 24 * 60)
    # minute m is the time of day 13:00 + m; dinner (16-20 h) falls in minutes 180..420
    dinner = grams[:, 180:421]
    assert (dinner > 0).any(axis=1).mean() > 0.9
    night = grams[:, (23 * 60 - 13 * 60) + 1:(29 * 60 - 13 * 60)]  # 23:01 to 05:00: nothing
    assert not night.any()


def test_harris_benedict_scales_meals_with_body_weight():
    base = load_patients("adult#001")
    from dataclasses import replace
    person = replace(base, BW=np.array([70.0]), age=np.array([30.0]))
    # hand computation: height 100 sqrt(70/22) = 178.377 cm; male BMR 66.473 + 962.612 + 892.474 - 202.65
    # = 1718.909; female 655.0955 + 669.438 + 329.926 - 140.268 = 1514.192; mean 1616.550 kcal;
    # x 1.4 x 0.45 / 4 kcal/g = 254.607 g/day
    scenario = HarrisBenedictScenario()
    assert scenario.daily_carbs_g(person)[0] == pytest.approx(254.607, abs=0.01)
    assert scenario.amount_scale(person)[0] == pytest.approx(254.607 / 225.0, abs=1e-4)
    children = scenario.amount_scale(load_patients("child"))
    adults = scenario.amount_scale(load_patients("adult"))
    assert children.mean() < adults.mean()
