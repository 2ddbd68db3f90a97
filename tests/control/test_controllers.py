"""BB, BB-CD, PID and PID-IF on hand-computed cases (their equations, step by step)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from pyloopkit.control import (BasalBolusController, CooldownBasalBolusController, PIDController,
                               PIDIFController)
from pyloopkit.control.pid import load_gains
from pyloopkit.errors import InvalidInputError
from pyloopkit.simulation import load_patients

# Two members: steady basal 0.02 and 0.01 U/min (1.2 and 0.6 U/h), CR 10 and 20 g/U, CF 50 and 40 mg/dL/U.
PATIENTS = SimpleNamespace(n=2, names=["a", "b"], basal_u_per_min=np.array([0.02, 0.01]),
                           CR=np.array([10.0, 20.0]), CF=np.array([50.0, 40.0]))


def step(t, cgm, meal=(0.0, 0.0), insulin=(0.0, 0.0)):
    return SimpleNamespace(time_min=float(t), cgm=np.array(cgm, dtype=float),
                           meal_announcement_g=np.array(meal, dtype=float), insulin_u=np.array(insulin, dtype=float))


def test_bb_basal_is_u2ss_bw_over_6000_per_minute():
    patients = load_patients(["adult#001", "child#003"])
    basal, bolus = BasalBolusController(patients).act(step(0, [120, 120]))
    np.testing.assert_allclose(basal, patients.u2ss * patients.BW / 6000 * 60, rtol=1e-15)
    np.testing.assert_array_equal(bolus, [0, 0])


def test_bb_meal_bolus_with_correction_above_150():
    bb = BasalBolusController(PATIENTS)
    basal, bolus = bb.act(step(0, [200, 150], meal=[60, 30]))
    np.testing.assert_allclose(basal, [1.2, 0.6])
    # 60/10 + (200-140)/50 = 7.2; 30/20 with no correction at exactly 150 = 1.5
    np.testing.assert_allclose(bolus, [7.2, 1.5])
    _, bolus = bb.act(step(5, [300, 151], meal=[0, 20]))
    np.testing.assert_allclose(bolus, [0.0, 1.0 + 11 / 40])  # no meal: no correction


def test_bb_cd_skips_corrections_within_the_cooldown():
    cd = CooldownBasalBolusController(PATIENTS)
    _, bolus = cd.act(step(0, [200, 200], meal=[60, 0]))
    np.testing.assert_allclose(bolus, [7.2, 0.0])
    _, bolus = cd.act(step(100, [240, 240], meal=[30, 40]))
    # member 0 bolused 100 min ago: carbs only (3.0); member 1 never: 40/20 + 100/40 = 4.5
    np.testing.assert_allclose(bolus, [3.0, 4.5])
    _, bolus = cd.act(step(200, [240, 240], meal=[0, 20]))
    np.testing.assert_allclose(bolus, [0.0, 1.0])  # member 1: 100 min after its bolus, carbs only
    _, bolus = cd.act(step(280, [190, 190], meal=[30, 40]))
    # member 0: 180 min after its last bolus (t=100): 3 + 50/50 = 4.0; member 1: 80 min after (t=200): 2.0
    np.testing.assert_allclose(bolus, [4.0, 2.0])
    cd.reset()
    _, bolus = cd.act(step(300, [190, 190], meal=[30, 40]))
    np.testing.assert_allclose(bolus, [4.0, 2.0 + 50 / 40])
    with pytest.raises(InvalidInputError):
        CooldownBasalBolusController(PATIENTS, cooldown_min=-1)


def test_pid_equations_with_conditional_integration():
    pid = PIDController(PATIENTS, kp=0.01, ki=0.0001, kd=0.1)
    basal, bolus = pid.act(step(0, [162.5, 112.5]))
    np.testing.assert_allclose(basal, [1.2 + 0.5, 0.6])  # I_0 = D_0 = 0
    np.testing.assert_array_equal(bolus, [0, 0])
    basal, _ = pid.act(step(5, [172.5, 112.5]))
    # e=60, I=300, D=2: 1.2 + 0.6 + 0.03 + 0.2
    np.testing.assert_allclose(basal, [2.03, 0.6])
    basal, _ = pid.act(step(10, [12.5, 112.5]))
    # e=-100, candidate I=-200, D=-32: 1.2 - 1 - 0.02 - 3.2 < 0 -> 0, and the integral stays 300
    np.testing.assert_allclose(basal, [0.0, 0.6])
    np.testing.assert_allclose(pid.integral, [300.0, 0.0])
    basal, _ = pid.act(step(15, [112.5, 112.5]))
    np.testing.assert_allclose(basal, [1.2 + 0.03 + 2.0, 0.6])  # e=0, I=300, D=20


def test_pid_if_insulin_model_matches_the_ode():
    pid = PIDIFController(PATIENTS, kp=0.0, ki=0.0, kd=0.0)
    pid.subcutaneous_u_per_h = np.array([3.0, 0.0])
    pid.plasma_u_per_h = np.array([1.0, 2.0])
    rate = np.array([0.5, 4.0])
    pid.advance_insulin(rate, 17.0)

    def rhs(t, y):
        return np.concatenate([(rate - y[:2]) / 55.0, (y[:2] - y[2:]) / 70.0])

    ode = solve_ivp(rhs, (0, 17), [3.0, 0.0, 1.0, 2.0], rtol=1e-12, atol=1e-12).y[:, -1]
    np.testing.assert_allclose(pid.subcutaneous_u_per_h, ode[:2], rtol=1e-9)
    np.testing.assert_allclose(pid.plasma_u_per_h, ode[2:], rtol=1e-9)


def test_pid_if_command():
    pid = PIDIFController(PATIENTS, kp=0.01, ki=0.0, kd=0.0)
    basal, _ = pid.act(step(0, [162.5, 112.5]))
    # (1 + 0.5) * 1.7 - 0.5 * 1 * 1.2 = 1.95 (Ip starts at the basal); member 1 at steady state: 0.6
    np.testing.assert_allclose(basal, [1.95, 0.6])
    delivered = basal * 5 / 60
    basal, _ = pid.act(step(5, [162.5, 112.5], insulin=delivered))
    reference = PIDIFController(PATIENTS, kp=0.0, ki=0.0, kd=0.0)
    reference.advance_insulin(np.array([1.95, 0.6]), 5.0)
    ip = reference.plasma_u_per_h
    np.testing.assert_allclose(basal, [1.5 * 1.7 - 0.5 * ip[0], 0.6], rtol=1e-12)
    assert 1.2 < ip[0] < 1.95 and ip[1] == pytest.approx(0.6, rel=1e-14)


def test_shipped_gains_cover_every_patient_and_are_positive():
    patients = load_patients("all")
    for controller in ("pid", "pid-if"):
        kp, ki, kd = load_gains(patients.names, controller)
        assert kp.shape == (30,) and (kp > 0).all() and (ki >= 0).all() and (kd >= 0).all()
    with pytest.raises(InvalidInputError, match="no 'pid' gains"):
        load_gains(["nobody#001"])
    with pytest.raises(InvalidInputError):
        PIDController(PATIENTS, kp=-1.0, ki=0.0, kd=0.0)
