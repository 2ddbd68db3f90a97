"""``update()`` with an RL dosing policy behind Loop's guardrails.

:func:`guarded_update` runs :func:`pyloopkit.loop_data_manager.update`, builds the
policy's observation from the same input (last CGM and its trend over the
policy's decision interval, IOB and COB from Loop's own math in ``update()``'s
output, local time of day, minutes since the last carb entry, the scheduled basal
rate that the policy's action multiplies; for the ``"context"`` features also the
carb ratio and correction factor at that time and the carbs entered within the
last decision interval, the "announced" meal), asks the policy for a basal rate
(and, for a meal-bolus policy, a bolus for those carbs) and passes them through
a :class:`~pyloopkit.rl.shield.Shield` built from the input's settings:
``max_basal_rate``, ``max_bolus``, ``suspend_threshold`` (Loop's lower target
bound at that time when absent) compared with the minimum of Loop's prediction,
and the pump's rate resolution ``rate_rounder`` (0.05 U/h when absent, an
Omnipod's). The output is ``update()``'s with ``recommended_temp_basal`` the
guarded rate for 30 minutes and ``recommended_autobolus`` None; ``recommended_bolus``
is the guarded policy bolus for a meal-bolus policy (Loop's pending insulin kept)
and Loop's own suggestion otherwise; plus ``policy_action`` (the proposed rate and
bolus and the observation) and ``guardrails_applied`` (the names of the rules that
changed them).

A recurrent policy keeps its LSTM state between calls: call once per decision.
The input must be in mg/dL (as :func:`update` reads it after conversion).
"""
from __future__ import annotations

import numpy as np

from pyloopkit.date import to_second, to_seconds, utc_offset_s
from pyloopkit.loop_data_manager import update
from pyloopkit.loop_input import LoopSettings
from pyloopkit.schedule import DailySchedule
from pyloopkit.rl.shield import Shield

TEMP_BASAL_DURATION_MIN = 30.0
DEFAULT_RATE_ROUNDER_U_PER_H = 0.05
MEAL_CLOCK_CAP_MIN = 1440.0


#: Glucose readings read from the end of the input for the trend (at 5-min sampling, 2 h).
TREND_TAIL = 24


def observation_from_input(input_dict: dict, output: dict, interval_min: float) -> dict:
    """The policy's observation features from an input dictionary and ``update()``'s output.

    Reads only the tail of the glucose and carb lists and the schedules, not the whole
    input again (``update()`` has validated it).
    """
    now_s, offset_s = _now(input_dict)
    glucose_s = to_seconds(list(input_dict["glucose_dates"][-TREND_TAIL:]))
    glucose = np.asarray(input_dict["glucose_values"][-TREND_TAIL:], dtype=np.float64)
    last = int(np.argmax(glucose_s))
    earlier = int(np.argmin(np.abs(glucose_s - (glucose_s[last] - 60.0 * interval_min))))
    span_min = (glucose_s[last] - glucose_s[earlier]) / 60.0
    trend = (glucose[last] - glucose[earlier]) / span_min if span_min > 0 else 0.0
    carb_dates = input_dict.get("carb_dates") or []
    carb_s = to_seconds(list(carb_dates)) if carb_dates else np.empty(0)
    past_carbs = carb_s[carb_s <= now_s]
    since_meal = (now_s - past_carbs.max()) / 60.0 if past_carbs.size else MEAL_CLOCK_CAP_MIN
    announced_g = float(np.sum(np.asarray(input_dict.get("carb_values") or [], dtype=np.float64)[
        (carb_s > now_s - 60.0 * interval_min) & (carb_s <= now_s)])) if carb_s.size else 0.0
    at_now = np.array([now_s])

    def schedule(prefix: str) -> float:
        return float(DailySchedule.from_lists(input_dict[f"{prefix}_start_times"], input_dict[f"{prefix}_values"],
                                              offset_s).at(at_now)[0])

    return {"cgm_mg_dl": float(glucose[last]), "trend_mg_dl_per_min": float(trend),
            "minute_of_day": float(((now_s + offset_s) % 86400.0) / 60.0),
            "iob_u": float(output["insulin_on_board"]), "cob_g": float(output["carbs_on_board"]),
            "minutes_since_meal": float(min(since_meal, MEAL_CLOCK_CAP_MIN)),
            "announced_g": announced_g, "carb_ratio_g_per_u": schedule("carb_ratio"),
            "cf_mg_dl_per_u": schedule("sensitivity_ratio"), "scheduled_basal_u_per_h": schedule("basal_rate")}


def _now(input_dict: dict) -> tuple[float, float]:
    """``time_to_calculate_at`` (or the last glucose date) as seconds and its UTC offset (s)."""
    at = input_dict.get("time_to_calculate_at") or input_dict["glucose_dates"][-1]
    return float(to_second(at)), float(utc_offset_s(at))


def shield_from_input(input_dict: dict) -> Shield:
    """The guardrails of an input's settings (see the module docstring)."""
    s = LoopSettings.from_dict(input_dict.get("settings_dictionary"))
    suspend = s.suspend_threshold
    if suspend is None:
        now_s, offset_s = _now(input_dict)
        target = DailySchedule.from_lists(input_dict["target_range_start_times"],
                                          input_dict["target_range_minimum_values"], offset_s)
        suspend = float(target.at(np.array([now_s]))[0])
    return Shield(max_basal_u_per_h=float(s.max_basal_rate if s.max_basal_rate is not None else np.inf),
                  max_bolus_u=float(s.max_bolus if s.max_bolus is not None else np.inf),
                  suspend_threshold_mg_dl=float(suspend),
                  basal_increment_u_per_h=float(s.rate_rounder or DEFAULT_RATE_ROUNDER_U_PER_H),
                  bolus_increment_u=float(s.bolus_rounder or 0.0))


class GuardedPolicy:
    """Any policy with ``recommend(features) -> U/h`` and ``options.decision_interval_min``, behind
    Loop's guardrails: the object ``update(input_dict, dosing_policy=...)`` calls (its ``guard``)."""

    def __init__(self, policy):
        self.policy = policy

    def guard(self, input_dict: dict, output: dict) -> dict:
        """:func:`guard_output` with the wrapped policy."""
        return guard_output(input_dict, output, self.policy)


def guarded_update(input_dict: dict, policy) -> dict:
    """``update(input_dict, dosing_policy=policy)``: Loop's output with ``policy``'s basal rate,
    guarded (see the module docstring and :func:`guard_output`); ``policy`` needs no ``guard``."""
    return update(input_dict, dosing_policy=policy if hasattr(policy, "guard") else GuardedPolicy(policy))


def guard_output(input_dict: dict, output: dict, policy) -> dict:
    """Replace the temp basal of ``update()``'s ``output`` by ``policy``'s rate behind the shield.

    Parameters
    ----------
    input_dict : dict
        PyLoopKit's input dictionary (mg/dL) that produced ``output``.
    output : dict
        ``update()``'s output (its IOB, COB and prediction feed the observation and the shield).
    policy : object
        ``recommend(features: dict) -> basal_u_per_h`` (or ``recommend_doses(features) -> (basal_u_per_h,
        bolus_u)``) and ``options.decision_interval_min``, e.g. a
        :class:`~pyloopkit.rl.policy.PolicyController`.

    Returns
    -------
    dict
        ``output`` with ``recommended_temp_basal`` ``(rate U/h, 30 min)``,
        ``recommended_autobolus`` None, ``policy_action`` (``basal_u_per_h`` proposed,
        ``observation``) and ``guardrails_applied`` (list of rule names).
    """
    features = observation_from_input(input_dict, output, policy.options.decision_interval_min)
    doses = getattr(policy, "recommend_doses", None)
    proposed, proposed_bolus = doses(features) if doses is not None else (float(policy.recommend(features)), 0.0)
    shield = shield_from_input(input_dict)
    predicted_min = min(output["predicted_glucose_values"])
    rate, bolus, applied = shield.apply(np.array([proposed]), np.array([proposed_bolus]), np.array([predicted_min]))
    output["recommended_temp_basal"] = (float(rate[0]), TEMP_BASAL_DURATION_MIN)
    output["recommended_autobolus"] = None
    if getattr(policy.options, "meal_bolus", False):
        pending = output["recommended_bolus"][1] if output.get("recommended_bolus") else 0.0
        output["recommended_bolus"] = (float(bolus[0]), pending, None)
    output["policy_action"] = {"basal_u_per_h": proposed, "bolus_u": proposed_bolus, "observation": features}
    output["guardrails_applied"] = [name for name, flag in applied.items() if flag[0]]
    return output
