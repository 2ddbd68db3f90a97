"""Conformance of ``loop_math`` and ``retrospective_correction`` with LoopKit's Swift numbers.

Fixtures: ``../shared/reference/loopkit/LoopKit/LoopMath/`` (LoopKit's
``LoopMathTests.swift`` inputs and outputs, as republished by Tidepool's
PyLoopKit), and the Loop app's own intermediate values inside the issue reports
(``../shared/reference/issue_reports/``): ICE, carb effect, retrospective
discrepancies (raw and summed), retrospective effect, momentum, insulin effect
and the prediction. Tolerances are the Swift suite's: ``Float.ulpOfOne``
(1.19e-7 mg/dL) for predictions, 1e-10 for sums and differences; looser bounds
are derived from the precision the fixture itself was printed with.
Worst errors are listed in ``docs/conformance.md``.
"""
from __future__ import annotations

import numpy as np
import pytest

from pyloopkit import loop_math
from pyloopkit import retrospective_correction as rc
from pyloopkit.date import to_second, to_seconds
from conftest import load_reference

LOOPMATH = "loopkit/LoopKit/LoopMath/"
SWIFT_PREDICTION_TOL = float(np.finfo(np.float32).eps)
"""``Double(Float.ulpOfOne)``, the accuracy of LoopMathTests' prediction checks (mg/dL)."""
SWIFT_SAMPLE_TOL = 1e-10
"""``XCTAssertSampleValueEqual``'s accuracy (mg/dL)."""
PYLOOPKIT_SHIFT_S = 7200.0
"""PyLoopKit republished two inputs of the 'with gaps' tests with naive dates 2 h later than the
Swift test's UTC dates (``03:03:43`` for ``01:03:43 +0000``)."""


def _effect(name, value_key="amount", date_key="date"):
    rows = load_reference(LOOPMATH + name + ".json")
    return to_seconds([r[date_key] for r in rows]), np.array([r[value_key] for r in rows], dtype=float)


def _history_glucose(name):
    """LoopMathTests' ``loadGlucoseHistoryFixture``: the first entry's display time and glucose."""
    first = load_reference(LOOPMATH + name + ".json")[0]
    return to_second(first["display_time"]), float(first["glucose"])


def _check_prediction(calc, expected, tol=SWIFT_PREDICTION_TOL):
    np.testing.assert_array_equal(calc[0], expected[0])
    err = np.max(np.abs(calc[1] - expected[1]))
    assert err <= tol, f"worst error {err:.3g} mg/dL"


def _printed_precision(values, significant=6):
    """Half a unit in the last place of a value printed with ``significant`` digits."""
    v = np.abs(np.asarray(values, dtype=float))
    exponent = np.floor(np.log10(np.where(v > 0, v, 1.0)))
    return 0.5 * 10.0 ** (exponent - (significant - 1))


@pytest.fixture(scope="module")
def carb_and_insulin():
    return [_effect("glucose_from_effects_carb_effect_input"), _effect("glucose_from_effects_insulin_effect_input")]


# --- predict_glucose (LoopMathTests.testPredictGlucose*) ---------------------------------

def test_predict_glucose_no_momentum(carb_and_insulin):
    start = _history_glucose("glucose_from_effects_glucose_input")
    calc = loop_math.predict_glucose(*start, carb_and_insulin)
    _check_prediction(calc, _effect("glucose_from_effects_no_momentum_output"))


@pytest.mark.parametrize("glucose, direction", [
    ("glucose_from_effects_momentum_flat_glucose_input", "flat"),
    ("glucose_from_effects_glucose_input", "up"),
    ("glucose_from_effects_glucose_input", "down"),
])
def test_predict_glucose_momentum(carb_and_insulin, glucose, direction):
    start = _history_glucose(glucose)
    momentum = _effect(f"glucose_from_effects_momentum_{direction}_input")
    calc = loop_math.predict_glucose(*start, carb_and_insulin, momentum=momentum)
    _check_prediction(calc, _effect(f"glucose_from_effects_momentum_{direction}_output"))


def test_predict_glucose_blend_momentum():
    start = _history_glucose("glucose_from_effects_momentum_blend_glucose_input")
    momentum = _effect("glucose_from_effects_momentum_blend_momentum_input")
    insulin = _effect("glucose_from_effects_momentum_blend_insulin_effect_input")
    calc = loop_math.predict_glucose(*start, [insulin], momentum=momentum)
    _check_prediction(calc, _effect("glucose_from_effects_momentum_blend_output"))


def test_predict_glucose_starting_effects_non_zero():
    start_d, start_v = _effect("glucose_from_effects_non_zero_glucose_input", "value", "startDate")
    insulin = _effect("glucose_from_effects_non_zero_insulin_input", "value", "startDate")
    carb = _effect("glucose_from_effects_non_zero_carb_input", "value", "startDate")
    calc = loop_math.predict_glucose(start_d[0], start_v[0], [insulin, carb])
    _check_prediction(calc, _effect("glucose_from_effects_non_zero_output", "value", "startDate"))


# --- subtracting (LoopMathTests.testSubtracting*) ----------------------------------------

def _ice(name):
    rows = load_reference(LOOPMATH + name + ".json")
    return (to_seconds([r["startDate"] for r in rows]), to_seconds([r["endDate"] for r in rows]),
            np.array([r["value"] for r in rows], dtype=float))


def test_subtracting_carb_effect_from_ice_with_gaps():
    """The republished ICE velocities are rounded to 6 significant digits (the Swift test has them
    to 16), so each result may differ by 5 min x half a unit in the 6th digit of its velocity."""
    starts, ends, velocity = _ice("subtracting_carb_effect_counteration_input")
    carb = _effect("subtracting_carb_effect_carb_input")
    expected_d, expected_v = _effect("ice_minus_carb_effect_with_gaps_output", "value")
    calc_d, calc_v = loop_math.subtracting(starts, ends, velocity, *carb)
    np.testing.assert_array_equal(calc_d - PYLOOPKIT_SHIFT_S, expected_d)
    matched_velocity = velocity[np.searchsorted(ends, calc_d)]
    bound = 5.0 * _printed_precision(matched_velocity) + SWIFT_SAMPLE_TOL
    assert np.all(np.abs(calc_v - expected_v) <= bound)


def test_subtracting_flat_carb_effect_from_ice():
    """The carb effect is LoopMathTests' inline single value at 00:45:00 (385.8235294117647 mg/dL).

    Known fixture defect: PyLoopKit's republished ICE has ``01:13:27 -> 01:18:28`` where the Swift
    test has ``01:13:28 -> 01:18:27``, so that one result is dated at the input's end, 1 s after the
    Swift output; every other date is exact and every value within the Swift tolerance."""
    starts, ends, velocity = _ice("subtracting_flat_carb_from_ice_counteraction_input")
    carb = (np.array([to_second("2018-08-26 00:45:00 +0000")]), np.array([385.8235294117647]))
    expected = _effect("ice_minus_flat_carb_effect_output", "value")
    calc = loop_math.subtracting(starts, ends, velocity, *carb)
    shift = calc[0] - expected[0]
    assert np.flatnonzero(shift).tolist() == [6] and shift[6] == 1.0
    assert calc[0][6] == to_second("2018-08-26 01:18:28 +0000")
    np.testing.assert_allclose(calc[1], expected[1], rtol=0, atol=SWIFT_SAMPLE_TOL)


# --- combined_sums (LoopMathTests.testCombinedSumsWithGaps) -------------------------------

def test_combined_sums_with_gaps():
    dates, values = _effect("ice_minus_carb_effect_with_gaps_output", "value")
    rows = load_reference(LOOPMATH + "combined_sums_with_gaps_output.json")
    start, end, total = loop_math.combined_sums(dates, values, 30 * 60.0)
    np.testing.assert_array_equal(start, to_seconds([r["startDate"] for r in rows]))
    np.testing.assert_array_equal(end, to_seconds([r["endDate"] for r in rows]))
    np.testing.assert_allclose(total, [r["value"] for r in rows], rtol=0, atol=SWIFT_SAMPLE_TOL)


def test_combined_sums_pyloopkit_form():
    """PyLoopKit's older form of the same expectation: start dates (shifted +2 h) and sums."""
    dates, values = _effect("ice_minus_carb_effect_with_gaps_output", "value")
    expected_start, expected_total = _effect("sums_with_gaps_output")
    start, _, total = loop_math.combined_sums(dates, values, 30 * 60.0)
    np.testing.assert_array_equal(start + PYLOOPKIT_SHIFT_S, expected_start)
    np.testing.assert_allclose(total, expected_total, rtol=0, atol=SWIFT_SAMPLE_TOL)


# --- The Loop app's own numbers in the issue reports -------------------------------------

REPORTS = [f"issue_reports/example_issue_report_{i}.json" for i in (1, 2, 3, 4)]


def _report_effect(rows, value_key="value", date_key="start_time"):
    return (to_seconds([r[date_key] for r in rows]), np.array([float(r[value_key]) for r in rows]))


def _report_parts(report):
    ice_rows = report["insulin_counteraction_effects"]
    ice = (to_seconds([r["start_time"] for r in ice_rows]), to_seconds([r["end_time"] for r in ice_rows]),
           np.array([r["value"] for r in ice_rows], dtype=float))
    # The prediction's first point is the latest glucose at full precision (the sample list prints 6 digits).
    first = report["predicted_glucose"][0]
    return ice, _report_effect(report["carb_effect"]), (to_second(first["start_time"]), float(first["value"]))


@pytest.mark.parametrize("path", REPORTS)
def test_report_discrepancies(path):
    """ICE minus carb effect, and their 30.3-min trailing sums, as the app logged them."""
    report = load_reference(path)
    ice, carb, _ = _report_parts(report)
    calc_d, calc_v = loop_math.subtracting(*ice, *carb)
    exp_d, exp_v = _report_effect(report["retrospective_glucose_discrepancies"])
    np.testing.assert_array_equal(calc_d, exp_d)
    np.testing.assert_allclose(calc_v, exp_v, rtol=0, atol=SWIFT_SAMPLE_TOL)
    start, end, total = loop_math.combined_sums(calc_d, calc_v, rc.GROUPING_MULTIPLIER * rc.GROUPING_INTERVAL_MIN * 60)
    summed = report["retrospective_glucose_discrepancies_summed"]
    np.testing.assert_array_equal(start, to_seconds([r["start_time"] for r in summed]))
    np.testing.assert_array_equal(end, to_seconds([r["end_time"] for r in summed]))
    np.testing.assert_allclose(total, [r["value"] for r in summed], rtol=0, atol=SWIFT_SAMPLE_TOL)


@pytest.mark.parametrize("path", REPORTS)
def test_report_standard_retrospective_effect(path):
    """Standard RC from the app's ICE and carb effect; the app printed the effect with 6 significant
    digits, so each value may differ by half a unit in that digit."""
    report = load_reference(path)
    ice, carb, (glucose_s, glucose_mgdl) = _report_parts(report)
    calc = rc.standard_correction(glucose_s, glucose_mgdl, rc.discrepancies(*ice, *carb))
    exp_d, exp_v = _report_effect(report["retrospective_glucose_effect"], "quantity", "startDate")
    np.testing.assert_array_equal(calc.dates_s, exp_d)
    assert np.all(np.abs(calc.values_mgdl - exp_v) <= _printed_precision(exp_v))


def _report_momentum_bound(effects, momentum):
    """Error bound from the report's printing: momentum values have 6 significant digits (each
    change off by up to twice half a unit in the last digit), and dates are truncated to whole
    seconds, so the true glucose date may be up to 1 s later, moving every blend split by up to
    1 s / (momentum step x (n - 2)) and each blended change by that times |momentum change -
    other effects' change|."""
    m_d, m_v = momentum
    dates, total = loop_math.sum_effects(effects)
    change = np.diff(total, prepend=total[:1])
    at = np.searchsorted(dates, m_d)
    other = np.where((at < dates.size) & (dates[np.minimum(at, dates.size - 1)] == m_d),
                     change[np.minimum(at, dates.size - 1)], 0.0)
    split_error = 1.0 / ((m_d[1] - m_d[0]) * (m_d.size - 2))
    return 2 * np.sum(_printed_precision(m_v)) + split_error * np.sum(np.abs(np.diff(m_v) - other[1:]))


@pytest.mark.parametrize("path", REPORTS)
def test_report_prediction(path):
    """The app's prediction from its own effects: momentum, carb and insulin effects, and our
    retrospective effect when RC was enabled, within the Swift tolerance plus the error the
    report's printing allows (:func:`_report_momentum_bound`)."""
    report = load_reference(path)
    ice, carb, (glucose_s, glucose_mgdl) = _report_parts(report)
    effects = [carb, _report_effect(report["insulin_effect"])]
    if str(report["retrospective_correction_enabled"]).lower() == "true":
        effects.append(rc.standard_correction(glucose_s, glucose_mgdl, rc.discrepancies(*ice, *carb)).effect)
    mom_rows = report["glucose_momentum_effect"]
    momentum = _report_effect(mom_rows, "quantity", "startDate") if mom_rows else None
    calc = loop_math.predict_glucose(glucose_s, glucose_mgdl, effects, momentum=momentum)
    expected = _report_effect(report["predicted_glucose"])
    tol = SWIFT_PREDICTION_TOL + (_report_momentum_bound(effects, momentum) if momentum else 0.0)
    _check_prediction(calc, expected, tol)


# --- Loop's LoopDataManager "Effect Tests": retrospective correction and prediction -------

EFFECT_TESTS = "loopkit/Loop/LoopDataManager/Effect Tests/"
SWIFT_FORECAST_TOL = 1.0 / 40.0
"""LoopDataManagerDosingTests' accuracy for whole predictions (mg/dL)."""


@pytest.mark.parametrize("scenario", ["flat_and_stable", "high_and_falling", "high_and_rising_with_cob",
                                      "high_and_stable", "low_and_falling", "low_with_low_treatment"])
def test_effect_tests_prediction(scenario):
    """Loop's prediction from the scenario's effects: standard RC computed here from its ICE and carb
    effect, plus carb, insulin and momentum effects, from the prediction's first point (the latest
    glucose). The scenario's glucose history is not among the fixtures, so this checks RC and the
    prediction, not momentum or ICE."""
    prefix = f"{EFFECT_TESTS}{scenario}/{scenario}_"
    def effect(name):
        rows = load_reference(prefix + name + ".json")
        return to_seconds([r["date"] for r in rows]), np.array([r["amount"] for r in rows], dtype=float)
    ice_rows = load_reference(prefix + "counteraction_effect.json")
    ice = (to_seconds([r["startDate"] for r in ice_rows]), to_seconds([r["endDate"] for r in ice_rows]),
           np.array([r["value"] for r in ice_rows], dtype=float))
    carb, expected = effect("carb_effect"), effect("predicted_glucose")
    glucose_s, glucose_mgdl = expected[0][0], expected[1][0]
    retrospective = rc.standard_correction(glucose_s, glucose_mgdl, rc.discrepancies(*ice, *carb))
    calc = loop_math.predict_glucose(glucose_s, glucose_mgdl, [carb, effect("insulin_effect"), retrospective.effect],
                                     momentum=effect("momentum_effect"))
    _check_prediction(calc, expected, SWIFT_FORECAST_TOL)
