"""Parity of simulate_open_loop with simglucose 0.2.11's T1DPatient on all 30 patients.

The reference traces were produced by scripts/make_parity_fixtures.py (simglucose's
own dopri5 integration, one ``step`` per minute; protocol in that script: 8 h with a
50 g and a 70 g meal, each with its CR bolus, on the steady basal).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyloopkit.simulation import load_patients, simulate_open_loop

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "simglucose_parity" / "simglucose_0.2.11.npz"


@pytest.fixture(scope="module")
def reference():
    data = np.load(FIXTURE)
    return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def patients(reference):
    return load_patients(list(reference["names"]))


def _report(label, errors, names):
    order = np.argsort(errors)
    worst = order[-1]
    print(f"\n{label}: median patient {np.median(errors):.3g} mg/dL, worst {names[worst]} {errors[worst]:.3g} mg/dL")


@pytest.mark.parametrize("dt_min", [1.0, 0.5])
def test_rk4_matches_simglucose_on_every_patient(reference, patients, dt_min):
    result = simulate_open_loop(patients, reference["carbs_g_per_min"], reference["insulin_u_per_min"], dt_min=dt_min)
    bg_error = np.abs(result.bg - reference["bg"]).max(axis=1)
    plasma_error = np.abs(result.plasma_glucose - reference["plasma_glucose"]).max(axis=1)
    _report(f"RK4 dt={dt_min} min, BG", bg_error, reference["names"])
    _report(f"RK4 dt={dt_min} min, plasma glucose", plasma_error, reference["names"])
    assert result.bg.shape == reference["bg"].shape
    assert bg_error.max() <= 0.2
    if dt_min == 0.5:  # the 0.2 mg/dL goal is set for BG at 1 min; plasma glucose is held to it at 0.5 min
        assert plasma_error.max() <= 0.2


def test_fixture_exercises_meals_and_boluses(reference):
    """Every patient's BG leaves its steady state by more than 15 mg/dL (meal and bolus responses)."""
    bg = reference["bg"]
    assert np.all(np.abs(bg - bg[:, :1]).max(axis=1) > 15.0)


def test_numba_and_numpy_paths_agree(reference, patients):
    args = (patients, reference["carbs_g_per_min"], reference["insulin_u_per_min"])
    compiled = simulate_open_loop(*args, method="rk4")
    vectorised = simulate_open_loop(*args, method="numpy")
    np.testing.assert_allclose(compiled.states, vectorised.states, rtol=1e-9, atol=1e-12)


def test_solve_ivp_reference_matches_simglucose(reference, patients):
    subset = [0, 10, 20]
    result = simulate_open_loop(patients.take(subset), reference["carbs_g_per_min"][subset],
                                reference["insulin_u_per_min"][subset], method="solve_ivp")
    # simglucose's dopri5 runs at rtol 1e-6; the DOP853 reference at 1e-10.
    assert np.abs(result.bg - reference["bg"][subset]).max() <= 0.01
