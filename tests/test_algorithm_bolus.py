"""LoopAlgorithm's manual bolus against its own forecast (issue 8, item 4).

LoopAlgorithm's correction is the *least* insulin that brings some prediction point of the insulin
effect window to its goal (the target middle at the end; lower goals earlier). So after the
recommended manual bolus is added to the doses at the prediction start:

* no more insulin is recommended (within 0.01 U), and the forecast never ends below the target
  middle by more than 0.1 mg/dL (property test over random meal scenarios, with and without
  mid-absorption ISF, with an ISF change during the absorption);
* when the forecast's end is the point that decides, it ends at the target middle within 0.1 mg/dL
  (LoopAlgorithm's own check), shown on a hand-picked meal.

When an earlier point decides, the end stays above the middle (0.138 mg/dL in one drawn scenario),
by Loop's least-insulin rule. Momentum is left out (``algorithmEffectsOptions``): Loop blends
momentum into the first 15 minutes of the summed effects, so the part of the new bolus's effect
that falls there is partly replaced by momentum (0.1005 mg/dL in one drawn scenario), which the
correction does not model. Built on the shipped ``example_files/algorithm_input.json``.

The last two tests state the two rules where LoopAlgorithm's ``insulinCorrection`` differs from Loop
2019's ``DoseMath`` (``dose_math.insulin_correction(loop_algorithm=True)``, used by ``algorithm.run``).
"""
import copy
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pyloopkit import dose_math
from pyloopkit.algorithm import run
from pyloopkit.schedule import DailySchedule
from tests.conftest import PROJECT_ROOT

BASE = json.loads((PROJECT_ROOT / "example_files" / "algorithm_input.json").read_text())


def meal_scenario(grams: float, glucose_shift: float, isf: float, late_isf: float, mid_absorption: bool) -> dict:
    d = copy.deepcopy(BASE)
    d.pop("unconvertedSettings", None)
    d.update(recommendationType="manualBolus", includePositiveVelocityAndRC=False, maxBolus=30.0,
             useMidAbsorptionISF=mid_absorption, algorithmEffectsOptions=["carbs", "insulin", "retrospection"])
    for sample in d["glucoseHistory"]:
        sample["value"] += glucose_shift
    d["carbEntries"].append({"date": d["predictionStart"], "grams": grams, "absorptionTime": 10800.0})
    first, last = d["sensitivity"][0], d["sensitivity"][-1]
    d["sensitivity"] = [{"startDate": first["startDate"], "endDate": "2026-03-02T19:00:00Z", "value": isf},
                        {"startDate": "2026-03-02T19:00:00Z", "endDate": last["endDate"], "value": late_isf}]
    return d


def with_bolus(d: dict, units: float) -> dict:
    d = copy.deepcopy(d)
    start = d["predictionStart"]
    d["doses"].append({"type": "bolus", "startDate": start, "endDate": start, "volume": units,
                       "insulinType": d["recommendationInsulinType"]})
    return d


def _middle(d: dict) -> float:
    target = d["target"][-1]
    return (target["lowerBound"] + target["upperBound"]) / 2.0


@settings(max_examples=25, deadline=None)
@example(grams=36.0, glucose_shift=0.0, isf=79.0, late_isf=25.0, mid_absorption=False)
@example(grams=48.0, glucose_shift=-16.0, isf=65.0, late_isf=25.0, mid_absorption=False)  # an earlier point decides
@example(grams=60.0, glucose_shift=40.0, isf=30.0, late_isf=80.0, mid_absorption=True)
@given(grams=st.floats(20.0, 100.0), glucose_shift=st.floats(-20.0, 80.0), isf=st.floats(25.0, 80.0),
       late_isf=st.floats(25.0, 80.0), mid_absorption=st.booleans())
def test_the_recommended_bolus_corrects_the_forecast(grams, glucose_shift, isf, late_isf, mid_absorption):
    d = meal_scenario(grams, glucose_shift, isf, late_isf, mid_absorption)
    units = run(d)["recommendation"]["manual"]["amount"]
    assert units > 0.0  # a meal eaten now with no bolus yet: every scenario needs insulin
    after = run(with_bolus(d, units))
    assert after["recommendation"]["manual"]["amount"] <= 0.01
    assert after["predictedGlucose"][-1]["value"] >= _middle(d) - 0.1


@pytest.mark.parametrize("isf,late_isf,mid_absorption", [(79.0, 25.0, False), (50.0, 50.0, True), (40.0, 60.0, True)])
def test_when_the_end_decides_the_forecast_ends_at_the_target_middle(isf, late_isf, mid_absorption):
    """(With mid-absorption ISF and a steep ISF fall at 19:00, 79 -> 25 mg/dL/U, the point at 19:00 decides
    instead: it reaches the suspend threshold exactly, and the end stays at 170 mg/dL, by Loop's rule.)"""
    d = meal_scenario(36.0, 0.0, isf, late_isf, mid_absorption)
    units = run(d)["recommendation"]["manual"]["amount"]
    after = run(with_bolus(d, units))
    assert after["predictedGlucose"][-1]["value"] == pytest.approx(_middle(d), abs=0.1)


# ---------------------------------------------------------------- LoopAlgorithm's correction rules
# (hand-computed; a linear model: remaining = 1 - t / 100 min, ISF 50 mg/dL/U, suspend threshold 80 mg/dL)

class _LinearModel:
    effect_duration_min = 100.0

    @staticmethod
    def percent_effect_remaining(t_min):
        return np.clip(1.0 - np.asarray(t_min, dtype=float) / 100.0, 0.0, 1.0)


def _correct(dates_min, target, loop_algorithm):
    dates_s = np.asarray(dates_min, dtype=float) * 60.0
    return dose_math.insulin_correction(dates_s, np.full(dates_s.size, 200.0), at_s=0.0, target=target,
                                        suspend_threshold_mgdl=80.0, sensitivity=DailySchedule.constant(50.0),
                                        model=_LinearModel(), loop_algorithm=loop_algorithm)


def test_loop_algorithm_corrects_through_the_first_prediction_after_the_effect_end():
    """Predictions at 2.5, 7.5, ..., 102.5 min (none at the 100-min end). Swift LoopAlgorithm's loop
    uses the first prediction at or after the end and then breaks: at 102.5 min all insulin has acted and
    the goal is the target middle, 110: (200 - 110) / 50 = 1.8 U. Loop 2019 stops at 97.5 min: goal
    80 + 30 x 0.95 = 108.5, effect 0.975 x 50: 91.5 / 48.75 = 1.8769 U (4% more)."""
    target = DailySchedule.constant([100.0, 120.0])
    dates = 2.5 + 5.0 * np.arange(21)
    assert _correct(dates, target, loop_algorithm=True).units == pytest.approx(1.8, abs=1e-12)
    assert _correct(dates, target, loop_algorithm=False).units == pytest.approx(91.5 / 48.75, abs=1e-12)


def test_loop_algorithm_goals_use_the_target_at_delivery():
    """Target 100-120 until 01:00, 140-160 after; predictions every 5 min to the 100-min end. Swift
    LoopAlgorithm blends every goal towards the middle at delivery (``closestPrior(to: date)``): 110 at
    100 min: 90 / 50 = 1.8 U. Loop 2019 reads the range at each prediction: 150 at 100 min: 50 / 50 = 1 U."""
    target = DailySchedule(np.array([0.0, 3600.0]), np.array([[100.0, 120.0], [140.0, 160.0]]))
    dates = 5.0 * np.arange(21)
    la = _correct(dates, target, loop_algorithm=True)
    assert la.kind == "above_range" and la.units == pytest.approx(1.8, abs=1e-12)
    assert la.min_target_mgdl == 140.0  # the classification still reads the range at the eventual prediction
    assert _correct(dates, target, loop_algorithm=False).units == pytest.approx(1.0, abs=1e-12)
