"""Tests of the guardrail shield and of guarded_update()."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyloopkit.errors import InvalidInputError
from pyloopkit.rl.shield import Shield

limits = st.floats(0.0, 50.0)
increments = st.sampled_from([0.0, 0.01, 0.025, 0.05, 0.1])
doses = st.floats(0.0, 1e4)
glucose = st.floats(1.0, 600.0)


def test_hand_computed_cases():
    shield = Shield(max_basal_u_per_h=2.0, max_bolus_u=5.0, suspend_threshold_mg_dl=70.0)
    basal, bolus, applied = shield.apply([3.0, 1.234, 1.234, 0.3], [6.0, 0.0, 2.0, 0.0], [100.0, 100.0, 69.9, 70.0])
    np.testing.assert_allclose(basal, [2.0, 1.2, 0.0, 0.3])
    np.testing.assert_allclose(bolus, [5.0, 0.0, 0.0, 0.0])
    assert applied["max_basal"].tolist() == [True, False, False, False]
    assert applied["max_bolus"].tolist() == [True, False, False, False]
    assert applied["suspend"].tolist() == [False, False, True, False]
    assert applied["rounding"].tolist() == [False, True, False, False]


def test_rejects_bad_limits_and_proposals():
    with pytest.raises(InvalidInputError, match="max_basal_u_per_h"):
        Shield(max_basal_u_per_h=-1.0)
    with pytest.raises(InvalidInputError, match="basal_u_per_h"):
        Shield(max_basal_u_per_h=1.0).apply([np.nan], [0.0], [100.0])


@given(max_basal=limits, max_bolus=limits, threshold=st.floats(40.0, 120.0), basal_step=increments,
       bolus_step=increments, basal=doses, bolus=doses, predicted=glucose)
def test_a_maximal_policy_never_exceeds_a_limit_nor_doses_below_suspend(max_basal, max_bolus, threshold, basal_step,
                                                                        bolus_step, basal, bolus, predicted):
    shield = Shield(max_basal, max_bolus, threshold, basal_step, bolus_step)
    rate, amount, applied = shield.apply([basal], [bolus], [predicted])
    assert 0.0 <= rate[0] <= max_basal and 0.0 <= amount[0] <= max_bolus
    if predicted < threshold:
        assert rate[0] == 0.0 and amount[0] == 0.0
    if basal_step > 0:
        assert rate[0] == pytest.approx(basal_step * round(rate[0] / basal_step), abs=1e-9) or rate[0] == max_basal
    assert rate[0] <= basal and amount[0] <= bolus  # the shield never adds insulin


class AlwaysMax:
    """A policy that always asks for an absurd rate."""

    class options:
        decision_interval_min = 30

    def recommend(self, features):
        self.features = features
        return 1e3


def test_guarded_update_caps_at_max_basal():
    from pyloopkit.rl.guarded import guarded_update
    from pyloopkit.synthetic import dense_history

    d = dense_history(1.0, seed=0)
    d["settings_dictionary"]["suspend_threshold"] = 74.0  # the lowest Loop recommends
    out = guarded_update(d, policy := AlwaysMax())
    max_basal = d["settings_dictionary"]["max_basal_rate"]
    assert out["recommended_temp_basal"] == (pytest.approx(max_basal), 30.0)
    assert out["policy_action"]["basal_u_per_h"] == 1e3
    assert out["guardrails_applied"] == ["max_basal"]
    assert out["recommended_autobolus"] is None
    assert policy.features["cgm_mg_dl"] == d["glucose_values"][-1]
    assert policy.features["scheduled_basal_u_per_h"] == 0.8  # 00:00-06:00 item of the schedule at 00:02:57
    assert policy.features["iob_u"] == out["insulin_on_board"]
    assert 0.0 < policy.features["minute_of_day"] < 4.0
    for key in ("predicted_glucose_values", "recommended_bolus", "insulin_on_board", "carbs_on_board"):
        assert key in out


def test_guarded_update_suspends_below_threshold():
    """A suspend threshold above every predicted value zeroes the maximal request."""
    from pyloopkit.rl.guarded import guarded_update
    from pyloopkit.synthetic import dense_history

    d = dense_history(1.0, seed=0)
    d["settings_dictionary"]["suspend_threshold"] = 300.0  # the highest plausible value (docs/update.md)
    with pytest.warns(UserWarning, match="suspend_threshold"):  # Loop warns about the setting, and runs
        out = guarded_update(d, AlwaysMax())
    assert max(out["predicted_glucose_values"]) < 300.0
    assert out["recommended_temp_basal"] == (0.0, 30.0)
    assert "suspend" in out["guardrails_applied"] and "max_basal" in out["guardrails_applied"]


def test_update_takes_the_dosing_policy_directly():
    """``update(input_dict, dosing_policy=p)`` is the seam; guarded_update is the same call."""
    from pyloopkit.loop_data_manager import update
    from pyloopkit.synthetic import dense_history

    d = dense_history(1.0, seed=0)
    d["settings_dictionary"]["suspend_threshold"] = 74.0
    plain = update(d)
    from pyloopkit.errors import InvalidInputError
    from pyloopkit.rl.guarded import GuardedPolicy

    with pytest.raises(InvalidInputError, match="dosing_policy"):
        update(d, dosing_policy=AlwaysMax())  # no guard(): the core does not import the learner to add one
    out = update(d, dosing_policy=GuardedPolicy(AlwaysMax()))
    assert out["recommended_temp_basal"] == (pytest.approx(d["settings_dictionary"]["max_basal_rate"]), 30.0)
    assert out["guardrails_applied"] == ["max_basal"]
    assert out["predicted_glucose_values"] == plain["predicted_glucose_values"]
    assert out["recommended_bolus"] == plain["recommended_bolus"]


class AlwaysMaxMeal:
    """A meal-bolus policy that always asks for an absurd rate and bolus."""

    class options:
        decision_interval_min = 30
        meal_bolus = True

    def recommend_doses(self, features):
        self.features = features
        return 1e3, 1e3


def test_guarded_update_caps_a_meal_bolus_policy_and_reads_the_announced_carbs():
    """The bolus of a meal-bolus policy replaces Loop's recommended bolus, capped at max_bolus (and zero
    below the suspend threshold); the features carry the carbs entered in the last decision interval and
    the carb ratio and ISF at that time."""
    from datetime import timedelta

    from pyloopkit.rl.guarded import guarded_update
    from pyloopkit.synthetic import dense_history

    d = dense_history(1.0, seed=0)
    d["settings_dictionary"]["suspend_threshold"] = 74.0
    now = d["time_to_calculate_at"]
    d["carb_dates"].append(now - timedelta(minutes=10))  # a 35 g meal entered 10 minutes ago
    d["carb_values"].append(35.0)
    d["carb_absorption_times"].append(180.0)
    out = guarded_update(d, policy := AlwaysMaxMeal())
    max_bolus = d["settings_dictionary"]["max_bolus"]
    assert out["recommended_bolus"][0] == pytest.approx(max_bolus)
    assert out["policy_action"]["bolus_u"] == 1e3 and "max_bolus" in out["guardrails_applied"]
    assert policy.features["announced_g"] == 35.0  # the earlier entries are hours old
    assert policy.features["carb_ratio_g_per_u"] == d["carb_ratio_values"][0]
    assert policy.features["cf_mg_dl_per_u"] == d["sensitivity_ratio_values"][0]
    d["settings_dictionary"]["suspend_threshold"] = 300.0
    with pytest.warns(UserWarning, match="suspend_threshold"):
        out = guarded_update(d, AlwaysMaxMeal())
    assert out["recommended_bolus"][0] == 0.0 and out["recommended_temp_basal"] == (0.0, 30.0)
