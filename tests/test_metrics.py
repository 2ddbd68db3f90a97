"""Tests of pyloopkit.metrics against hand-computed values, published design
properties and simglucose's own risk function as an independent oracle."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pyloopkit import metrics
from pyloopkit.errors import InvalidInputError


def test_kovatchev_scale_design_points():
    """Kovatchev 1997 chose the constants so that f(112.5) = 0 and f(20) = -sqrt(10),
    f(600) = +sqrt(10), i.e. r = 10 f^2 is 0 at 112.5 and 100 at both ends.

    By hand for 20 mg/dL: ln 20 = 2.995732, ln(2.995732) = 1.097190, x 1.084 = 1.189354,
    exp = 3.284850, - 5.381 = -2.096150, x 1.509 = -3.16309, 10 f^2 = 100.05.
    The published constants are rounded, so the design points hold to about 0.1 %.
    """
    f = metrics.kovatchev_scale([112.5, 20.0, 600.0])
    assert abs(f[0]) < 1e-3
    assert f[1] == pytest.approx(-3.16309, abs=2e-4)
    assert f[2] == pytest.approx(math.sqrt(10.0), rel=1e-3)
    r = metrics.kovatchev_risk([112.5, 20.0, 600.0])
    assert r[0] < 1e-5
    assert r[1] == pytest.approx(100.0, rel=1e-3)
    assert r[2] == pytest.approx(100.0, rel=1e-3)


def test_lbgi_hbgi_average_over_all_readings():
    """Trace [20, 600, 112.5, 112.5]: rl = [100, 0, 0, 0], rh = [0, 100, 0, 0] (to 0.1 %),
    so LBGI = HBGI = 100 / 4 = 25 and BGRI = 50."""
    trace = [20.0, 600.0, 112.5, 112.5]
    assert metrics.lbgi(trace) == pytest.approx(25.0, rel=2e-3)
    assert metrics.hbgi(trace) == pytest.approx(25.0, rel=2e-3)
    assert metrics.risk_index(trace) == pytest.approx(50.0, rel=2e-3)


def test_magni_risk_hand_values():
    """Magni 2007: r = 10 (3.35506 (ln(G)^0.8353 - 3.7932))^2.

    Zero at G* = exp(3.7932^(1/0.8353)): ln 3.7932 = 1.333210, / 0.8353 = 1.596085,
    exp = 4.933673, exp = 138.88 mg/dL.
    At 70 mg/dL: ln 70 = 4.248495, ln(4.248495) = 1.446565, x 0.8353 = 1.208316,
    exp = 3.347887, - 3.7932 = -0.445313, x 3.35506 = -1.494049, squared x 10 = 22.32.
    """
    zero = math.exp(3.7932 ** (1 / 0.8353))
    assert zero == pytest.approx(138.88, abs=0.05)
    assert metrics.magni_risk([zero])[0] < 1e-12
    assert metrics.magni_risk([70.0])[0] == pytest.approx(22.32, abs=0.01)
    # Monotone away from the zero on both sides.
    below = metrics.magni_risk([40.0, 70.0, 100.0, 130.0])
    above = metrics.magni_risk([150.0, 200.0, 300.0, 500.0])
    assert np.all(np.diff(below) < 0) and np.all(np.diff(above) > 0)


def test_time_in_ranges_boundaries():
    """Consensus ranges: <54, <70, 70-180 inclusive, >180, >250 (Battelino 2019).
    [40, 54, 60, 70, 100, 180, 181, 250, 251, 400] has 1 reading <54, 3 <70,
    3 in [70, 180], 4 >180, 2 >250."""
    glucose = [40, 54, 60, 70, 100, 180, 181, 250, 251, 400]
    tir = metrics.time_in_ranges(glucose)
    assert tir == {"below_54": 0.1, "below_70": 0.3, "in_70_180": 0.3, "above_180": 0.4, "above_250": 0.2}
    percent = metrics.time_in_ranges(glucose, percent=True)
    assert percent["in_70_180"] == pytest.approx(30.0)


def test_gri_weights_and_cap():
    """GRI = 3.0 VLow + 2.4 Low + 1.6 VHigh + 0.8 High (percent), capped at 100.
    9 x 100 + one 60 -> Low = 10 % -> 24. 8 x 100 + 200 + 300 -> High = VHigh = 10 % -> 8 + 16 = 24.
    one 50 in ten -> VLow = 10 % -> 30. The boundary trace above gives 30 + 48 + 32 + 16 = 126 -> 100."""
    assert metrics.gri([100] * 9 + [60]) == pytest.approx(24.0)
    assert metrics.gri([100] * 8 + [200, 300]) == pytest.approx(24.0)
    assert metrics.gri([100] * 9 + [50]) == pytest.approx(30.0)
    assert metrics.gri([40, 54, 60, 70, 100, 180, 181, 250, 251, 400]) == 100.0


def test_mean_sd_cv_gmi():
    """[100, 200]: mean 150, sample SD = 50 sqrt(2) = 70.711, CV = 0.47140,
    GMI = 3.31 + 0.02392 x 150 = 6.898 %."""
    glucose = [100.0, 200.0]
    assert metrics.mean_glucose(glucose) == 150.0
    assert metrics.glucose_sd(glucose) == pytest.approx(70.7107, abs=1e-4)
    assert metrics.glucose_cv(glucose) == pytest.approx(0.47140, abs=1e-5)
    assert metrics.gmi(glucose) == pytest.approx(6.898)


def test_batched_input_reduces_last_axis():
    batch = np.array([[100.0, 200.0, 60.0], [300.0, 120.0, 80.0]])
    for name in ("lbgi", "hbgi", "risk_index", "mean_glucose", "glucose_sd", "glucose_cv", "gmi", "gri"):
        fn = getattr(metrics, name)
        values = fn(batch)
        assert values.shape == (2,)
        assert values[1] == pytest.approx(fn(batch[1]))
    summary = metrics.summary(batch)
    assert summary["time_below_70"].tolist() == pytest.approx([1 / 3, 0.0])
    assert metrics.kovatchev_risk(batch).shape == (2, 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0, -5.0])
@pytest.mark.parametrize("name", ["lbgi", "hbgi", "risk_index", "magni_risk", "time_in_ranges", "gri", "gmi", "summary"])
def test_invalid_glucose_names_the_metric_index_and_value(name, bad):
    with pytest.raises(InvalidInputError) as excinfo:
        getattr(metrics, name)([100.0, 120.0, bad])
    problem = excinfo.value.problems[0]
    assert name in problem.field
    assert problem.index == 2
    assert problem.value == bad or (np.isnan(bad) and np.isnan(problem.value))


def test_empty_and_too_few_readings_raise():
    with pytest.raises(InvalidInputError):
        metrics.risk_index([])
    with pytest.raises(InvalidInputError, match="at least two"):
        metrics.glucose_sd([100.0])


simglucose_risk = pytest.importorskip("simglucose.analysis.risk")


@pytest.mark.parametrize("bg", [25.0, 39.0, 54.0, 70.0, 90.0, 112.5, 140.0, 180.0, 250.0, 400.0, 600.0])
def test_single_reading_agrees_with_simglucose(bg):
    """simglucose's environment calls risk_index on one reading; LBGI, HBGI and BGRI agree."""
    low, high, total = simglucose_risk.risk_index([bg], 1)
    assert metrics.lbgi([bg]) == pytest.approx(low, rel=1e-12, abs=1e-12)
    assert metrics.hbgi([bg]) == pytest.approx(high, rel=1e-12, abs=1e-12)
    assert metrics.risk_index([bg]) == pytest.approx(total, rel=1e-12, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(arrays(float, st.integers(1, 30), elements=st.floats(20.0, 112.0)))
def test_one_sided_traces_agree_with_simglucose(trace):
    """On an all-low trace simglucose's mean over low readings equals Kovatchev's mean over all."""
    low, high, total = simglucose_risk.risk_index(trace, len(trace))
    assert metrics.lbgi(trace) == pytest.approx(low, rel=1e-12)
    assert high == 0.0 and metrics.hbgi(trace) == 0.0
    high_trace = trace * 5.0 + 60.0  # all above 112.5 mg/dL
    _, high, total = simglucose_risk.risk_index(high_trace, len(high_trace))
    assert metrics.hbgi(high_trace) == pytest.approx(high, rel=1e-12)
    assert metrics.risk_index(high_trace) == pytest.approx(total, rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(arrays(float, st.tuples(st.integers(1, 4), st.integers(2, 20)), elements=st.floats(10.0, 1000.0)))
def test_properties(batch):
    low = metrics.lbgi(batch)
    high = metrics.hbgi(batch)
    np.testing.assert_allclose(low + high, metrics.risk_index(batch), rtol=1e-12, atol=1e-12)
    assert np.all(low >= 0) and np.all(high >= 0)
    tir = metrics.time_in_ranges(batch)
    np.testing.assert_allclose(tir["below_70"] + tir["in_70_180"] + tir["above_180"], 1.0)
    assert np.all(tir["below_54"] <= tir["below_70"]) and np.all(tir["above_250"] <= tir["above_180"])
    gri = metrics.gri(batch)
    assert np.all((gri >= 0) & (gri <= 100))
    assert np.all(metrics.magni_risk(batch) >= 0)


@pytest.mark.parametrize("name", ["kovatchev_scale", "kovatchev_risk", "lbgi", "hbgi", "risk_index", "magni_risk", "summary"])
def test_risk_scales_need_glucose_of_at_least_one(name):
    """ln(G) < 0 below 1 mg/dL, and a negative number to the power 1.084 or 0.8353 is undefined."""
    with pytest.raises(InvalidInputError, match=">= 1 mg/dL") as excinfo:
        getattr(metrics, name)([100.0, 0.5])
    assert excinfo.value.problems[0].index == 1
    assert np.isfinite(metrics.kovatchev_risk([1.0])[0])
    assert metrics.time_in_ranges([0.5, 100.0])["below_54"] == 0.5
