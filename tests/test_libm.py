"""``pyloopkit.libm.exp`` gives the C library's ``exp`` bit for bit (the one compiled code calls),
whatever numpy's own ``exp`` does on this CPU, keeps shapes, and falls back to numpy without numba."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pyloopkit import libm
from pyloopkit.insulin_models import PRESETS
from pyloopkit.jit import HAVE_NUMBA

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (extra 'fast')")


def _c_library_exp(x: np.ndarray) -> np.ndarray:
    """Python's ``math.exp`` (the C library's) one value after the other; inf where it overflows."""
    return np.array([math.exp(v) if v < 709.8 else math.inf for v in x.ravel()]).reshape(x.shape)


@needs_numba
def test_exp_is_the_c_librarys_bit_for_bit():
    """200,000 values over the insulin curves' range (``-t/tau``: -30 to 0) and the whole float range,
    and the edges: 0, -0, +-inf, nan, overflow and underflow."""
    rng = np.random.default_rng(7)
    x = np.concatenate((-rng.uniform(0.0, 30.0, 150_000), rng.uniform(-745.0, 709.0, 50_000),
                        [0.0, -0.0, 1.0, -1.0, 709.78, 710.0, -745.2, -746.0, np.inf, -np.inf]))
    got, expected = libm.exp(x), _c_library_exp(x)
    assert got.dtype == np.float64 and got.tobytes() == expected.tobytes()
    assert np.isnan(libm.exp(np.nan))


@needs_numba
def test_insulin_curve_values_are_the_c_librarys():
    """The exponential model's remaining fraction uses it (the compiled passes' arithmetic, term for term)."""
    model = PRESETS["adult"]
    t = np.arange(0.0, model.action_duration_min, 0.5)
    td, tau, a, s = model.action_duration_min, model._tau, model._a, model._s
    expected = 1.0 - s * (1.0 - a) * ((t * t / (tau * td * (1.0 - a)) - t / tau - 1.0) * _c_library_exp(-t / tau) + 1.0)
    got = model.percent_effect_remaining(t + model.delay_min)
    assert got[1:].tobytes() == expected[1:].tobytes() and got[0] == 1.0


@pytest.mark.parametrize("x", [0.5, [[0.0, -1.0], [2.0, -3.0]], np.arange(6.0).reshape(2, 3)[:, ::2], []])
def test_exp_keeps_the_shape_and_equals_numpy_within_an_ulp(x):
    """Scalars give 0-d arrays, views and empty arrays work; numpy's ``exp`` is within an ulp."""
    got, numpy_exp = libm.exp(x), np.exp(np.asarray(x, dtype=float))
    assert got.shape == numpy_exp.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, numpy_exp, rtol=2 * np.finfo(float).eps, atol=0.0)


def test_without_numba_exp_is_numpys(monkeypatch):
    monkeypatch.setattr(libm, "HAVE_NUMBA", False)
    x = -np.random.default_rng(3).uniform(0.0, 30.0, 1000)
    assert libm.exp(x).tobytes() == np.exp(x).tobytes()
