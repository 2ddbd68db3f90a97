"""Loop's LoopDataManager "Effect Tests": effects in, prediction and recommendations out.

Fixtures: ``../shared/reference/loopkit/Loop/LoopDataManager/Effect Tests/`` (Loop's
``LoopDataManagerDosingTests``, 2020, as republished by PyLoopKit). The effects are
injected through PyLoopKit's hooks (momentum, insulin, counteraction, carb); ``update()``
computes the retrospective correction, the prediction and the recommendations.

Settings are those of the Swift test class (ISF 45/55, targets 100-110/90-100/100-110,
basal 1.0/0.85, suspend threshold 75, max basal 5, max bolus 10, adult exponential model,
rate rounding 0.05). Fixture dates are naive local times; like PyLoopKit's port of the
test we shift them by -25200 s so that the UTC schedules apply.

Tolerances are the Swift suite's: prediction 1/40 mg/dL, dates exact, recommendations
within 1/40. These fixtures predate current Loop's rule that the manual-bolus prediction
drops positive momentum and retrospective correction, so the bolus case runs with
``include_positive_velocity_and_rc_in_bolus=True`` and a second test shows the default.
"""
import datetime as dt

import pytest

from pyloopkit.loop_data_manager import update
from tests.conftest import load_reference

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

FOLDER = "loopkit/Loop/LoopDataManager/Effect Tests"
OFFSET = dt.timedelta(seconds=-25200)
SWIFT_ACCURACY = 1.0 / 40.0

SETTINGS = {
    "model": [360, 75], "suspend_threshold": 75, "max_basal_rate": 5, "max_bolus": 10,
    "retrospective_correction_enabled": True, "momentum_data_interval": 15,
    "default_absorption_times": [120, 180, 240], "dynamic_carb_absorption_enabled": True,
    "retrospective_correction_integration_interval": 30, "recency_interval": 15,
    "retrospective_correction_grouping_interval": 30, "rate_rounder": 0.05,
    "insulin_delay": 10, "carb_delay": 10,
}

BASE = {
    "dose_types": [], "dose_start_times": [], "dose_end_times": [], "dose_values": [],
    "dose_delivered_units": [], "carb_dates": [], "carb_values": [], "carb_absorption_times": [],
    "sensitivity_ratio_start_times": [dt.time(0), dt.time(9)],
    "sensitivity_ratio_end_times": [dt.time(9), dt.time(23, 59)],
    "sensitivity_ratio_values": [45, 55],
    "carb_ratio_start_times": [dt.time(0)], "carb_ratio_values": [10],
    "basal_rate_start_times": [dt.time(0), dt.time(15)], "basal_rate_minutes": [900, 540],
    "basal_rate_values": [1, 0.85],
    "target_range_start_times": [dt.time(0), dt.time(8), dt.time(21)],
    "target_range_end_times": [dt.time(8), dt.time(21), dt.time(23, 59)],
    "target_range_minimum_values": [100, 90, 100], "target_range_maximum_values": [110, 100, 110],
}

# name: (now, latest glucose mg/dL, expected recommendation kind, expected value) from the Swift tests
CASES = {
    "flat_and_stable": ("2020-08-11T20:45:02", 123.42849966275706, "temp_basal", 1.4),
    "high_and_stable": ("2020-08-12T12:39:22", 200.0, "temp_basal", 4.65),
    "high_and_falling": ("2020-08-11T22:59:45", 200.0, "temp_basal", 0.0),
    "high_and_rising_with_cob": ("2020-08-11T21:48:17", 129.93174411197853, "bolus", 1.6),
    "low_and_falling": ("2020-08-11T22:06:06", 75.10768374646841, "temp_basal", 0.0),
    "low_with_low_treatment": ("2020-08-11T22:23:55", 81.22399763523448, "temp_basal", 0.0),
}


def _load(case: str, kind: str):
    rows = load_reference(f"{FOLDER}/{case}/{case}_{kind}.json")
    return [dt.datetime.fromisoformat(r["date"]) + OFFSET for r in rows], [r["amount"] for r in rows]


def _input(case: str, **settings) -> dict:
    now_text, glucose, _, _ = CASES[case]
    now = dt.datetime.fromisoformat(now_text) + OFFSET
    ice = load_reference(f"{FOLDER}/{case}/{case}_counteraction_effect.json")
    momentum, insulin, carb = (_load(case, k) for k in ("momentum_effect", "insulin_effect", "carb_effect"))
    return {**BASE, "settings_dictionary": {**SETTINGS, **settings},
            "time_to_calculate_at": now, "glucose_dates": [now], "glucose_values": [glucose],
            "momentum_effect_dates": momentum[0], "momentum_effect_values": momentum[1],
            "now_to_dia_insulin_effect_dates": insulin[0], "now_to_dia_insulin_effect_values": insulin[1],
            "carb_effect_dates": carb[0], "carb_effect_values": carb[1],
            "counteraction_starts": [dt.datetime.fromisoformat(r["startDate"]) + OFFSET for r in ice],
            "counteraction_ends": [dt.datetime.fromisoformat(r["endDate"]) + OFFSET for r in ice],
            "counteraction_values": [r["value"] for r in ice]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_prediction_matches_swift(case):
    out = update(_input(case, include_positive_velocity_and_rc_in_bolus=True))
    dates, values = _load(case, "predicted_glucose")
    assert out["predicted_glucose_dates"] == dates
    worst = max(abs(a - b) for a, b in zip(out["predicted_glucose_values"], values))
    assert worst <= SWIFT_ACCURACY, f"{case}: worst prediction error {worst:.4g} mg/dL"


@pytest.mark.parametrize("case", sorted(CASES))
def test_recommendation_matches_swift(case):
    out = update(_input(case, include_positive_velocity_and_rc_in_bolus=True))
    _, _, kind, expected = CASES[case]
    if kind == "temp_basal":
        rate, duration = out["recommended_temp_basal"]
        assert rate == pytest.approx(expected, abs=SWIFT_ACCURACY) and duration == 30
    else:
        assert out["recommended_bolus"][0] == pytest.approx(expected, abs=SWIFT_ACCURACY)


def test_current_loop_bolus_drops_positive_momentum_and_rc():
    """Default (current Loop): the manual-bolus prediction ignores positive momentum and RC,
    so the rising-with-COB case recommends less than the 2020 fixture's 1.6 U."""
    legacy = update(_input("high_and_rising_with_cob", include_positive_velocity_and_rc_in_bolus=True))
    current = update(_input("high_and_rising_with_cob"))
    assert current["predicted_glucose_values"] == legacy["predicted_glucose_values"]
    assert 0 <= current["recommended_bolus"][0] < legacy["recommended_bolus"][0]
