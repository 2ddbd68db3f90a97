"""The 30 virtual patients read from simglucose's parameter files."""
from __future__ import annotations

import numpy as np
import pytest

from pyloopkit.errors import InvalidInputError
from pyloopkit.simulation.patients import load_patients, patient_names


def test_all_thirty_patients_in_three_groups():
    patients = load_patients("all")
    assert patients.n == 30
    for group in ("child", "adolescent", "adult"):
        names = patient_names(group)
        assert names == [f"{group}#{k:03d}" for k in range(1, 11)]
        assert load_patients(group).names == names
    assert sorted(patients.groups) == sorted(["child"] * 10 + ["adolescent"] * 10 + ["adult"] * 10)


def test_struct_of_arrays_shapes_and_dtypes():
    patients = load_patients("all")
    assert patients.x0.shape == (30, 13)
    for key in ("BW", "u2ss", "kp1", "Vg", "CR", "CF", "TDI", "age", "patient_history"):
        value = getattr(patients, key)
        assert value.shape == (30,) and value.dtype == np.float64


def test_quest_values_of_adolescent_001():
    # Quest.csv row: adolescent#001,12,15.0360283441,18,36.7339146827
    patient = load_patients("adolescent#001")
    assert patient.CR[0] == 12.0
    assert patient.CF[0] == pytest.approx(15.0360283441, rel=1e-12)
    assert patient.age[0] == 18.0
    assert patient.TDI[0] == pytest.approx(36.7339146827, rel=1e-12)
    assert patient.BW[0] == pytest.approx(68.706, rel=1e-12)


def test_initial_state_is_the_basal_steady_state_of_the_model_parameters():
    """x0 holds the basal values: Gp = Gpb, Gt = Gtb, Ip = Ipb, Il = Ilb, Isc = isc1ss/isc2ss, Gs = Gpb."""
    p = load_patients("all")
    np.testing.assert_array_equal(p.x0[:, :3], 0.0)
    np.testing.assert_allclose(p.x0[:, 3], p.Gpb, rtol=1e-12)
    np.testing.assert_allclose(p.x0[:, 4], p.Gtb, rtol=1e-12)
    np.testing.assert_allclose(p.x0[:, 5], p.Ipb, rtol=1e-12)
    np.testing.assert_allclose(p.x0[:, 9], p.Ilb, rtol=1e-12)
    np.testing.assert_allclose(p.x0[:, 10], p.isc1ss, rtol=1e-12)
    np.testing.assert_allclose(p.x0[:, 11], p.isc2ss, rtol=1e-12)
    np.testing.assert_allclose(p.x0[:, 12], p.Gpb, rtol=1e-12)
    # basal BG Gb = Gpb / Vg
    np.testing.assert_allclose(p.Gpb / p.Vg, p.Gb, rtol=1e-4)


def test_order_and_mixed_specs():
    patients = load_patients(["child#003", "adult", "adolescent#010"])
    assert patients.names[0] == "child#003" and patients.names[-1] == "adolescent#010"
    assert patients.n == 12
    taken = patients.take([2, 2, 0])
    assert taken.names == ["adult#002", "adult#002", "child#003"]
    assert taken.BW[0] == patients.BW[2]


def test_unknown_names_are_reported_with_index_and_value():
    with pytest.raises(InvalidInputError) as error:
        load_patients(["adult#001", "adult#011", "teen"])
    problems = error.value.problems
    assert [(p.field, p.index, p.value) for p in problems] == [("patients", 1, "adult#011"), ("patients", 2, "teen")]
    with pytest.raises(InvalidInputError):
        load_patients([])
    with pytest.raises(InvalidInputError):
        patient_names("elderly")


def test_basal_rate_formula():
    p = load_patients("adult#001")
    assert p.basal_u_per_min[0] == pytest.approx(p.u2ss[0] * p.BW[0] / 6000.0, rel=1e-15)
