"""UVA/Padova model: steady state, meal bookkeeping (against simglucose itself), integrator order, errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from pyloopkit.errors import InvalidInputError
from pyloopkit.simulation import load_patients, simulate_open_loop
from pyloopkit.simulation.model import EAT_RATE_G_PER_MIN, numpy_model, param_matrix


def _basal_inputs(patients, minutes):
    return np.zeros((patients.n, minutes)), np.repeat(patients.basal_u_per_min[:, None], minutes, axis=1)


def test_steady_basal_keeps_every_patient_at_its_initial_bg():
    patients = load_patients("all")
    carbs, insulin = _basal_inputs(patients, 600)
    result = simulate_open_loop(patients, carbs, insulin)
    bg0 = patients.x0[:, 12] / patients.Vg
    assert np.abs(result.bg - bg0[:, None]).max() < 0.5
    np.testing.assert_allclose(result.bg[:, 0], bg0, rtol=0, atol=0)


def test_rhs_vanishes_at_the_initial_state_under_basal_insulin():
    patients = load_patients("all")
    x = patients.x0.T.copy()
    out = np.empty_like(x)
    insulin_pmol = patients.basal_u_per_min * 6000.0 / patients.BW
    numpy_model._rhs(x, param_matrix(patients).T, np.zeros(30), insulin_pmol, np.zeros(30), out)
    scale = np.maximum(np.abs(x), 1.0)
    assert np.abs(out / scale).max() < 1e-3


def test_announced_meal_is_eaten_at_five_grams_per_minute():
    """simglucose's EAT_RATE: 12 g announced in one minute is the same as 5, 5 and 2 g/min."""
    patients = load_patients(["adult#001", "child#002"])
    carbs, insulin = _basal_inputs(patients, 120)
    announced = carbs.copy()
    announced[:, 10] = 12.0
    spread = carbs.copy()
    spread[:, 10:13] = [EAT_RATE_G_PER_MIN, EAT_RATE_G_PER_MIN, 2.0]
    a = simulate_open_loop(patients, announced, insulin)
    b = simulate_open_loop(patients, spread, insulin)
    np.testing.assert_array_equal(a.states, b.states)
    # the eaten carbohydrate (mg) has entered the stomach: x0 + x1 + x2 rises by ~12000 mg minus absorption
    gut = a.states[:, 13, :3].sum(axis=1)
    assert np.all((gut > 11000.0) & (gut <= 12000.0))


def test_back_to_back_meals_follow_simglucose_dbar_bookkeeping():
    """Second meal starts while the stomach is full: Dbar = stomach content + grams eaten, as in simglucose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # simglucose's __init__ imports the old gym
        from simglucose.patient.t1dpatient import Action, T1DPatient

    name = "adolescent#003"
    patients = load_patients(name)
    minutes = 90
    carbs, insulin = _basal_inputs(patients, minutes)
    carbs[0, 0] = 20.0
    carbs[0, 8] = 30.0
    carbs[0, 9] = 3.0
    insulin[0, 0] += 4.0
    reference = T1DPatient.withName(name)
    states = [reference.state.copy()]
    for cho, rate in zip(carbs[0], insulin[0]):
        reference.step(Action(CHO=float(cho), insulin=float(rate)))
        states.append(reference.state.copy())
    states = np.array(states)
    ours = simulate_open_loop(patients, carbs, insulin, method="solve_ivp")
    np.testing.assert_allclose(ours.states[0], states, rtol=1e-5, atol=1e-3)
    assert np.abs(ours.bg[0] - states[:, 12] / patients.Vg[0]).max() < 1e-3


def test_rk4_is_fourth_order_on_smooth_dynamics():
    """A 1 U insulin bolus without meals (no switching terms active): halving the step divides the error by ~16."""
    patients = load_patients("adult#001")
    carbs, insulin = _basal_inputs(patients, 240)
    insulin[0, 30] += 1.0
    exact = simulate_open_loop(patients, carbs, insulin, method="solve_ivp").bg
    errors = [np.abs(simulate_open_loop(patients, carbs, insulin, dt_min=dt).bg - exact).max()
              for dt in (1.0, 0.5, 0.25)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 14.0) & (ratios < 18.0))


def test_numpy_path_matches_compiled_path_on_a_random_input():
    rng = np.random.default_rng(3)
    patients = load_patients("all")
    carbs = np.where(rng.random((30, 300)) < 0.01, rng.uniform(0, 80, (30, 300)), 0.0)
    insulin = patients.basal_u_per_min[:, None] * rng.uniform(0, 3, (30, 300)) + np.where(carbs > 0, 2.0, 0.0)
    a = simulate_open_loop(patients, carbs, insulin, method="rk4", dt_min=0.5)
    b = simulate_open_loop(patients, carbs, insulin, method="numpy", dt_min=0.5)
    np.testing.assert_allclose(a.states, b.states, rtol=1e-9, atol=1e-12)


def test_result_layout_and_dataframe():
    patients = load_patients(["adult#001", "adult#002"])
    carbs, insulin = _basal_inputs(patients, 30)
    result = simulate_open_loop(patients, carbs, insulin)
    assert result.bg.shape == result.plasma_glucose.shape == (2, 31)
    assert result.states.shape == (2, 31, 13)
    np.testing.assert_array_equal(result.time_min, np.arange(31.0))
    np.testing.assert_allclose(result.plasma_glucose, result.states[:, :, 3] / patients.Vg[:, None])
    frame = result.to_dataframe()
    assert list(frame.columns) == ["patient", "time_min", "bg", "plasma_glucose"]
    assert len(frame) == 62 and frame.patient.iloc[31] == "adult#002"
    assert not frame.isna().any().any()
    by_name = simulate_open_loop("adult#001", carbs[:1], insulin[:1])
    np.testing.assert_array_equal(by_name.bg, result.bg[:1])
    for method in ("rk4", "numpy"):
        light = simulate_open_loop(patients, carbs, insulin, method=method, record_states=False)
        assert light.states.shape == (2, 1, 13)
        np.testing.assert_allclose(light.states[:, 0], result.states[:, -1], rtol=1e-9)
        np.testing.assert_allclose(light.bg, result.bg, rtol=1e-9)


@pytest.mark.parametrize("field, value", [("carbs_g_per_min", -1.0), ("carbs_g_per_min", np.nan),
                                          ("insulin_u_per_min", np.inf), ("insulin_u_per_min", -0.1)])
def test_invalid_inputs_name_field_index_and_value(field, value):
    patients = load_patients(["adult#001", "adult#002"])
    inputs = dict(zip(("carbs_g_per_min", "insulin_u_per_min"), _basal_inputs(patients, 10)))
    inputs[field][1, 4] = value
    with pytest.raises(InvalidInputError) as error:
        simulate_open_loop(patients, **inputs)
    (problem,) = error.value.problems
    assert problem.field == field and problem.index == 14
    assert problem.value == value or (np.isnan(value) and np.isnan(problem.value))


def test_invalid_shapes_step_and_method():
    patients = load_patients(["adult#001", "adult#002"])
    carbs, insulin = _basal_inputs(patients, 10)
    with pytest.raises(InvalidInputError, match="carbs_g_per_min"):
        simulate_open_loop(patients, carbs[:1], insulin)
    with pytest.raises(InvalidInputError, match="insulin_u_per_min"):
        simulate_open_loop(patients, carbs, insulin[:, :5])
    with pytest.raises(InvalidInputError, match="dt_min"):
        simulate_open_loop(patients, carbs, insulin, dt_min=0.3)
    with pytest.raises(InvalidInputError, match="method"):
        simulate_open_loop(patients, carbs, insulin, method="euler")


def test_overdose_keeps_states_finite():
    patients = load_patients("child#001")
    carbs, insulin = _basal_inputs(patients, 24 * 60)
    insulin[0, 0] += 100.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = simulate_open_loop(patients, carbs, insulin)
    assert np.isfinite(result.states).all()
    assert result.bg.min() < 10.0
