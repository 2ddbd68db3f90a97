"""Loop's DoseMath test suites on the DoseMath fixtures in ../shared/reference/loopkit/Loop/DoseMath.

The fixtures are glucose predictions; the settings and expected values come from
Loop's ``DoseMathTests/DoseMathTests.swift`` in two versions:

* Loop 2019 (tidepool-org/Loop 8c1dfdba, the version PyLoopKit ports): Walsh 4 h and
  exponential 360/75 min models without delay, ``RecommendTempBasalTests`` and
  ``RecommendBolusTests``.
* Loop 2023 (LoopKit/Loop 01c775c8): models with their default 10-min delay (Walsh), the
  automatic-bolus tests (``recommendedAutomaticDose``) and the IOB-limit tests
  (``automaticDosingIOBLimit = 2 * maxBolus``, ``maxBolus = 5``).

Shared settings: target 90-120 mg/dL, ISF 60 mg/dL/U, suspend threshold 55 mg/dL,
max basal 3 U/h, max bolus 10 U (bolus suites), the basal schedule fixture
``read_selected_basal_profile``; dates are naive local times. Tolerances are the
Swift ones: exact where Swift uses ``XCTAssertEqual`` without accuracy, else 1/40 U
(or U/h). Swift's ``fortyIncrementsPerUnitRounder`` is ``volume_rounder=0.025``.
The 2023 tests on ``far_future_high_bg_forecast_after_6_hours`` are not run: that
fixture is not in the reference set.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import load_reference

from pyloopkit.date import to_seconds
from pyloopkit.dose import DoseType
from pyloopkit.dose_math import recommended_automatic_bolus, recommended_bolus, recommended_temp_basal
from pyloopkit.insulin_models import ExponentialInsulinModel, WalshInsulinModel
from pyloopkit.schedule import DailySchedule

FOLDER = "loopkit/Loop/DoseMath/"
ACCURACY = 1.0 / 40.0
MMOL_TO_MGDL = 18.01559

TARGET = DailySchedule(np.zeros(1), np.array([[90.0, 120.0]]))
ISF = DailySchedule.constant(60.0)
SUSPEND = 55.0
MAX_BASAL = 3.0
MAX_BOLUS = 10.0

WALSH_2019 = WalshInsulinModel(action_duration_h=4.0, delay_min=0.0)
EXPONENTIAL_2019 = ExponentialInsulinModel(action_duration_min=360.0, peak_activity_min=75.0, delay_min=0.0)
WALSH_2023 = WalshInsulinModel(action_duration_h=4.0, delay_min=10.0)
WALSH_2023_NO_DELAY = WALSH_2019
EXPONENTIAL_2023 = EXPONENTIAL_2019

AUTO_MAX_BOLUS = 5.0
IOB_LIMIT = 2.0 * AUTO_MAX_BOLUS


def glucose(name):
    fixture = load_reference(FOLDER + name + ".json")
    return to_seconds([v["date"] for v in fixture]), np.array([v["amount"] for v in fixture], dtype=float)


def basal_schedule():
    fixture = load_reference(FOLDER + "read_selected_basal_profile.json")
    return DailySchedule(np.array([v["minutes"] * 60.0 for v in fixture]), np.array([v["rate"] for v in fixture]))


def temp_basal(name, model, last_temp=None, *, sensitivity=ISF, headroom=None, override=False, iob=None,
               rounder=None):
    dates, values = glucose(name)
    if iob is not None:
        headroom = IOB_LIMIT - iob
    return recommended_temp_basal(
        dates, values, at_s=dates[0], target=TARGET, suspend_threshold_mgdl=SUSPEND, sensitivity=sensitivity,
        model=model, basal=basal_schedule(), max_basal_rate_u_per_h=MAX_BASAL, last_temp_basal=last_temp,
        rate_rounder=rounder, max_iob_headroom_u=headroom, basal_schedule_override_active=override)


def bolus(name, model, *, pending=0.0, suspend=SUSPEND, sensitivity=ISF, rounder=None):
    dates, values = glucose(name)
    return recommended_bolus(dates, values, at_s=dates[0], target=TARGET, suspend_threshold_mgdl=suspend,
                             sensitivity=sensitivity, model=model, pending_insulin_u=pending,
                             max_bolus_u=MAX_BOLUS, volume_rounder=rounder)


def automatic(name, model, last_temp=None, *, factor=0.5, max_auto=5.0, iob=7.69, override=False):
    dates, values = glucose(name)
    return recommended_automatic_bolus(
        dates, values, at_s=dates[0], target=TARGET, suspend_threshold_mgdl=SUSPEND, sensitivity=ISF,
        model=model, basal=basal_schedule(), max_automatic_bolus_u=max_auto, partial_application_factor=factor,
        last_temp_basal=last_temp, max_iob_headroom_u=IOB_LIMIT - iob, basal_schedule_override_active=override)


def running_temp(name, rate, start_min=-11.0, end_min=19.0):
    at = glucose(name)[0][0]
    return (DoseType.TEMP_BASAL, at + start_min * 60.0, at + end_min * 60.0, rate)


CANCEL = {"rate": 0.0, "duration": 0.0}


def assert_temp(dose, rate, *, exact=False):
    assert dose is not None and dose["duration"] == 30.0
    if exact:
        assert dose["rate"] == rate
    else:
        assert dose["rate"] == pytest.approx(rate, abs=ACCURACY)


# ---------------------------------------------------------------- Loop 2019: RecommendTempBasalTests

@pytest.mark.parametrize("model", [WALSH_2019, EXPONENTIAL_2019], ids=["walsh", "exponential"])
def test_2019_no_change(model):
    assert temp_basal("recommend_temp_basal_no_change_glucose", model) is None


def test_2019_no_change_override_active():
    assert_temp(temp_basal("recommend_temp_basal_no_change_glucose", WALSH_2019, override=True), 0.8)


@pytest.mark.parametrize("name,rate", [("recommend_temp_basal_start_high_end_in_range", 0.125),
                                       ("recommend_temp_basal_start_low_end_in_range", 1.225),
                                       ("recommend_temp_basal_start_low_end_high", 1.225)])
def test_2019_cancel_running_temp(name, rate):
    assert temp_basal(name, WALSH_2019) is None
    assert temp_basal(name, WALSH_2019, running_temp(name, rate)) == CANCEL


def test_2019_correct_low_at_min():
    name = "recommend_temp_basal_correct_low_at_min"
    assert temp_basal(name, WALSH_2019, running_temp(name, 0.125, -21.0, 9.0)) == CANCEL
    assert temp_basal(name, WALSH_2019) is None


@pytest.mark.parametrize("name", ["recommend_temp_basal_start_high_end_low",
                                  "recommend_temp_basal_very_low_end_in_range"])
def test_2019_suspend(name):
    assert_temp(temp_basal(name, WALSH_2019), 0.0, exact=True)


def test_2019_flat_and_high():
    assert_temp(temp_basal("recommend_temp_basal_flat_and_high", WALSH_2019), 3.0, exact=True)


def test_2019_high_and_falling():
    assert_temp(temp_basal("recommend_temp_basal_high_and_falling", WALSH_2019), 1.425)


def test_2019_in_range_and_rising():
    assert_temp(temp_basal("recommend_temp_basal_in_range_and_rising", WALSH_2019), 1.475)


def test_2019_high_and_rising():
    name = "recommend_temp_basal_high_and_rising"
    assert_temp(temp_basal(name, WALSH_2019), 3.0, exact=True)
    mmol_isf = DailySchedule.constant(3.33 * MMOL_TO_MGDL)
    assert_temp(temp_basal(name, WALSH_2019, sensitivity=mmol_isf), 2.975)


def test_2019_rise_after_dia():
    assert temp_basal("far_future_high_bg_forecast", WALSH_2019) is None


def test_no_input_glucose():
    empty = np.empty(0)
    assert recommended_temp_basal(empty, empty, at_s=0.0, target=TARGET, suspend_threshold_mgdl=SUSPEND,
                                  sensitivity=ISF, model=WALSH_2019, basal=basal_schedule(),
                                  max_basal_rate_u_per_h=MAX_BASAL) is None
    out = recommended_bolus(empty, empty, at_s=0.0, target=TARGET, suspend_threshold_mgdl=SUSPEND,
                            sensitivity=ISF, model=WALSH_2019, pending_insulin_u=0.0, max_bolus_u=MAX_BOLUS)
    assert out == {"amount": 0.0, "pending_insulin": 0.0, "notice": None}


@pytest.mark.parametrize("name,rate", [("recommend_temp_basal_flat_and_high", 3.0),
                                       ("recommend_temp_basal_high_and_falling", 1.425),
                                       ("recommend_temp_basal_in_range_and_rising", 1.475),
                                       ("recommend_temp_basal_high_and_rising", 3.0),
                                       ("recommend_temp_basal_very_low_end_in_range", 0.0)])
def test_2019_with_rate_rounder_exact(name, rate):
    """Tidepool PyLoopKit's port of these tests passes ``rate_rounder=0.025`` and asserts exact rates."""
    assert_temp(temp_basal(name, WALSH_2019, rounder=0.025), rate, exact=True)


# ---------------------------------------------------------------- Loop 2019: RecommendBolusTests

@pytest.mark.parametrize("name", ["recommend_temp_basal_no_change_glucose",
                                  "recommend_temp_basal_start_high_end_in_range",
                                  "recommend_temp_basal_start_low_end_in_range",
                                  "recommend_temp_basal_start_high_end_low",
                                  "recommend_temp_basal_start_very_low_end_high",
                                  "far_future_high_bg_forecast"])
def test_2019_bolus_zero(name):
    assert bolus(name, WALSH_2019)["amount"] == 0.0


def test_2019_bolus_start_low_end_high():
    out = bolus("recommend_temp_basal_start_low_end_high", WALSH_2019, rounder=0.025)
    assert out["amount"] == 1.575
    assert out["notice"] == ("currentGlucoseBelowTarget", 60.0)


@pytest.mark.parametrize("suspend", [70.0, None], ids=["threshold_70", "threshold_defaults_to_target_min"])
def test_2019_bolus_start_below_suspend_threshold(suspend):
    out = bolus("recommend_temp_basal_start_low_end_high", WALSH_2019, suspend=suspend)
    assert out["amount"] == 0.0
    assert out["notice"] == ("glucoseBelowSuspendThreshold", 60.0)


def test_2019_bolus_dropping_below_range_then_rising():
    out = bolus("recommend_temp_basal_dropping_then_rising", WALSH_2019, rounder=0.025)
    assert out["amount"] == 1.4
    assert out["notice"] == ("predictedGlucoseBelowTarget", 80.0)


def test_2019_bolus_pending_insulin():
    assert bolus("recommend_temp_basal_start_low_end_high", WALSH_2019, pending=1.0, rounder=0.025)["amount"] == 0.575


@pytest.mark.parametrize("name,amount", [("recommend_temp_basal_flat_and_high", 1.575),
                                         ("recommend_temp_basal_high_and_falling", 0.325),
                                         ("recommend_temp_basal_in_range_and_rising", 0.325)])
def test_2019_bolus_amounts(name, amount):
    assert bolus(name, WALSH_2019)["amount"] == pytest.approx(amount, abs=ACCURACY)


@pytest.mark.parametrize("name,amount", [("recommend_temp_basal_flat_and_high", 1.575),
                                         ("recommend_temp_basal_high_and_falling", 0.325),
                                         ("recommend_temp_basal_in_range_and_rising", 0.325),
                                         ("recommend_temp_basal_high_and_rising", 1.25)])
def test_2019_bolus_with_volume_rounder_exact(name, amount):
    """PyLoopKit's port rounds every bolus to 0.025 U and asserts exact amounts."""
    assert bolus(name, WALSH_2019, rounder=0.025)["amount"] == amount


def test_2019_bolus_in_range_and_rising_less_pending():
    out = bolus("recommend_temp_basal_in_range_and_rising", WALSH_2019, pending=0.8)
    assert out["amount"] == pytest.approx(0.0, abs=np.finfo(float).eps)


def test_2019_bolus_start_low_end_just_above_range():
    out = bolus("recommended_temp_start_low_end_just_above_range", EXPONENTIAL_2019, suspend=0.0, rounder=0.025)
    assert out["amount"] == 0.275


def test_2019_bolus_high_and_rising():
    name = "recommend_temp_basal_high_and_rising"
    assert bolus(name, WALSH_2019)["amount"] == 1.25
    mmol_isf = DailySchedule.constant(10.0 / 3.0 * MMOL_TO_MGDL)
    assert bolus(name, WALSH_2019, sensitivity=mmol_isf)["amount"] == pytest.approx(1.25, abs=ACCURACY)


# ---------------------------------------------------------------- Loop 2023: temp basal, automatic bolus, IOB limit

def test_2023_no_change():
    assert temp_basal("recommend_temp_basal_no_change_glucose", WALSH_2023, iob=0.0) is None
    assert temp_basal("recommend_temp_basal_no_change_glucose", EXPONENTIAL_2023, iob=0.0) is None
    assert automatic("recommend_temp_basal_no_change_glucose", WALSH_2023, iob=0.0) is None


def test_2023_no_change_override_active():
    name = "recommend_temp_basal_no_change_glucose"
    assert_temp(temp_basal(name, WALSH_2023, override=True, iob=7.69), 0.8)
    dose = automatic(name, WALSH_2023, override=True)
    assert_temp(dose["basal_adjustment"], 0.8)
    assert dose["bolus_units"] == 0.0


@pytest.mark.parametrize("name,rate", [("recommend_temp_basal_start_high_end_in_range", 0.125),
                                       ("recommend_temp_basal_start_low_end_in_range", 1.225),
                                       ("recommend_temp_basal_start_low_end_high", 1.225)])
def test_2023_cancel_running_temp(name, rate):
    assert temp_basal(name, WALSH_2023, iob=7.69) is None
    assert temp_basal(name, WALSH_2023, running_temp(name, rate), iob=7.69) == CANCEL
    assert automatic(name, WALSH_2023) is None
    assert automatic(name, WALSH_2023, running_temp(name, rate)) == {"basal_adjustment": CANCEL, "bolus_units": 0.0}


def test_2023_start_low_end_in_range_exponential():
    name = "recommend_temp_basal_start_low_end_in_range"
    assert temp_basal(name, EXPONENTIAL_2023, iob=7.69) is None


def test_2023_automatic_with_override_continues_running_temp():
    name = "recommend_temp_basal_start_high_end_in_range"
    dose = automatic(name, WALSH_2023, override=True)
    assert_temp(dose["basal_adjustment"], 0.8)
    assert automatic(name, WALSH_2023, running_temp(name, 0.8), override=True) is None


def test_2023_correct_low_at_min():
    name = "recommend_temp_basal_correct_low_at_min"
    last = running_temp(name, 0.125, -21.0, 9.0)
    assert temp_basal(name, WALSH_2023, last, iob=7.69) == CANCEL
    assert temp_basal(name, WALSH_2023, iob=7.69) is None
    assert automatic(name, WALSH_2023, last) == {"basal_adjustment": CANCEL, "bolus_units": 0.0}
    assert automatic(name, WALSH_2023) is None


@pytest.mark.parametrize("model", [WALSH_2023, EXPONENTIAL_2023], ids=["walsh", "exponential"])
def test_2023_start_high_end_low_suspends(model):
    assert_temp(temp_basal("recommend_temp_basal_start_high_end_low", model, iob=7.69), 0.0, exact=True)


def test_2023_start_high_end_low_automatic():
    dose = automatic("recommend_temp_basal_start_high_end_low", WALSH_2023)
    assert_temp(dose["basal_adjustment"], 0.0, exact=True)
    assert dose["bolus_units"] == 0.0


def test_2023_flat_and_high():
    name = "recommend_temp_basal_flat_and_high"
    assert_temp(temp_basal(name, WALSH_2023, iob=7.69), 3.0, exact=True)
    dose = automatic(name, WALSH_2023)
    assert dose["basal_adjustment"] is None
    assert dose["bolus_units"] == pytest.approx(0.85, abs=ACCURACY)


def test_2023_flat_and_high_automatic_with_override():
    name = "recommend_temp_basal_flat_and_high"
    dose = automatic(name, WALSH_2023, override=True)
    assert_temp(dose["basal_adjustment"], 0.8)
    assert dose["bolus_units"] == pytest.approx(0.85, abs=ACCURACY)
    dose = automatic(name, WALSH_2023, running_temp(name, 0.8), override=True)
    assert dose["basal_adjustment"] is None
    assert dose["bolus_units"] == pytest.approx(0.85, abs=ACCURACY)


def test_2023_high_and_falling():
    name = "recommend_temp_basal_high_and_falling"
    assert_temp(temp_basal(name, WALSH_2023_NO_DELAY, iob=7.69), 1.425)
    assert_temp(temp_basal(name, EXPONENTIAL_2023, iob=7.69), 2.68)
    dose = automatic(name, WALSH_2023)
    assert dose["basal_adjustment"] is None
    assert dose["bolus_units"] == pytest.approx(0.2, abs=ACCURACY)


def test_2023_in_range_and_rising():
    name = "recommend_temp_basal_in_range_and_rising"
    assert_temp(temp_basal(name, WALSH_2023, iob=7.69), 1.60)
    dose = automatic(name, WALSH_2023)
    assert dose["basal_adjustment"] is None
    assert dose["bolus_units"] == pytest.approx(0.2, abs=ACCURACY)


def test_2023_high_and_rising():
    name = "recommend_temp_basal_high_and_rising"
    assert_temp(temp_basal(name, WALSH_2023, iob=7.69), 3.0, exact=True)
    mmol_isf = DailySchedule.constant(3.33 * MMOL_TO_MGDL)
    assert_temp(temp_basal(name, WALSH_2023, sensitivity=mmol_isf, iob=7.69), 2.975)


def test_2023_very_low_and_rising():
    assert_temp(temp_basal("recommend_temp_basal_very_low_end_in_range", WALSH_2023, iob=7.69), 0.0, exact=True)


def test_2023_rise_after_dia():
    assert temp_basal("far_future_high_bg_forecast", WALSH_2023, iob=7.69) is None


def test_2023_automatic_bolus_iob_limit():
    name = "recommend_temp_basal_flat_and_high"
    kwargs = dict(factor=1.0, max_auto=AUTO_MAX_BOLUS)
    dose = automatic(name, EXPONENTIAL_2023, iob=7.69, **kwargs)
    assert dose["basal_adjustment"] is None
    assert dose["bolus_units"] == pytest.approx(2.30, abs=ACCURACY)
    dose = automatic(name, EXPONENTIAL_2023, iob=IOB_LIMIT - 0.5, **kwargs)
    assert dose["basal_adjustment"] is None
    assert dose["bolus_units"] == pytest.approx(0.5, abs=ACCURACY)
    dose = automatic(name, EXPONENTIAL_2023, iob=IOB_LIMIT - 0.5, factor=0.5, max_auto=AUTO_MAX_BOLUS)
    assert dose["basal_adjustment"] is None
    assert dose["bolus_units"] == pytest.approx(0.5 * 0.5, abs=ACCURACY)
    assert automatic(name, EXPONENTIAL_2023, iob=IOB_LIMIT + 0.1, **kwargs) is None


def test_2023_temp_basal_iob_limit():
    name = "recommend_temp_basal_high_and_rising"
    assert_temp(temp_basal(name, EXPONENTIAL_2023, iob=0.0), 3.0, exact=True)
    assert_temp(temp_basal(name, EXPONENTIAL_2023, iob=IOB_LIMIT - 0.5), 0.8 + 2.0 * 0.5, exact=True)
    assert temp_basal(name, EXPONENTIAL_2023, iob=IOB_LIMIT + 0.1) is None


# ---------------------------------------------------------------- Loop 2023: RecommendBolusTests

@pytest.mark.parametrize("name,model", [("recommend_temp_basal_no_change_glucose", WALSH_2023),
                                        ("recommend_temp_basal_start_high_end_in_range", WALSH_2023),
                                        ("recommend_temp_basal_start_high_end_in_range", EXPONENTIAL_2023),
                                        ("recommend_temp_basal_start_low_end_in_range", WALSH_2023),
                                        ("recommend_temp_basal_start_high_end_low", WALSH_2023),
                                        ("recommend_temp_basal_start_very_low_end_high", WALSH_2023),
                                        ("far_future_high_bg_forecast", WALSH_2023)])
def test_2023_bolus_zero(name, model):
    assert bolus(name, model)["amount"] == 0.0


@pytest.mark.parametrize("model,amount,pending_amount", [(WALSH_2023, 1.7, 0.7), (EXPONENTIAL_2023, 1.9, 0.9)],
                         ids=["walsh", "exponential"])
def test_2023_bolus_start_low_end_high(model, amount, pending_amount):
    name = "recommend_temp_basal_start_low_end_high"
    out = bolus(name, model, rounder=0.025)
    assert out["amount"] == amount
    assert out["notice"] == ("currentGlucoseBelowTarget", 60.0)
    assert bolus(name, model, pending=1.0, rounder=0.025)["amount"] == pending_amount


@pytest.mark.parametrize("model", [WALSH_2023, EXPONENTIAL_2023], ids=["walsh", "exponential"])
def test_2023_bolus_start_below_suspend_threshold(model):
    out = bolus("recommend_temp_basal_start_low_end_high", model, suspend=70.0)
    assert out["amount"] == 0.0 and out["notice"] == ("glucoseBelowSuspendThreshold", 60.0)
    out = bolus("recommend_temp_basal_start_low_end_high", model, suspend=None)
    assert out["amount"] == 0.0 and out["notice"] == ("glucoseBelowSuspendThreshold", 60.0)


def test_2023_bolus_dropping_below_range_then_rising():
    out = bolus("recommend_temp_basal_dropping_then_rising", WALSH_2023, rounder=0.025)
    assert out["amount"] == 1.575
    assert out["notice"] == ("predictedGlucoseBelowTarget", 80.0)


@pytest.mark.parametrize("name,model,amount", [
    ("recommend_temp_basal_flat_and_high", WALSH_2023, 1.7),
    ("recommend_temp_basal_high_and_falling", WALSH_2023, 0.4),
    ("recommend_temp_basal_high_and_falling", EXPONENTIAL_2023, 0.94),
    ("recommend_temp_basal_in_range_and_rising", WALSH_2023, 0.4),
    ("recommend_temp_basal_high_and_rising", WALSH_2023, 1.35),
    ("recommend_temp_basal_high_and_rising", EXPONENTIAL_2023, 1.95),
    ("recommend_temp_basal_high_and_rising", ExponentialInsulinModel(360.0, 65.0, 10.0), 1.96),
])
def test_2023_bolus_amounts(name, model, amount):
    assert bolus(name, model)["amount"] == pytest.approx(amount, abs=ACCURACY)


def test_2023_bolus_in_range_and_rising_less_pending():
    out = bolus("recommend_temp_basal_in_range_and_rising", WALSH_2023, pending=0.8)
    assert out["amount"] == pytest.approx(0.0, abs=np.finfo(float).eps)


def test_2023_bolus_high_and_rising_mmol_sensitivity():
    mmol_isf = DailySchedule.constant(10.0 / 3.0 * MMOL_TO_MGDL)
    for model, amount in ((WALSH_2023, 1.35), (EXPONENTIAL_2023, 1.95)):
        out = bolus("recommend_temp_basal_high_and_rising", model, sensitivity=mmol_isf)
        assert out["amount"] == pytest.approx(amount, abs=ACCURACY)


@pytest.mark.parametrize("model,amount", [(EXPONENTIAL_2023, 0.275),
                                          (ExponentialInsulinModel(360.0, 55.0, 10.0), 0.375)],
                         ids=["adult", "fiasp"])
def test_2023_bolus_start_low_end_just_above_range(model, amount):
    out = bolus("recommended_temp_start_low_end_just_above_range", model, suspend=0.0, rounder=0.025)
    assert out["amount"] == amount
