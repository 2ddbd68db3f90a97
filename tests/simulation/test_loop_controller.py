"""Loop (``update()``) as a closed-loop controller on the batched simulator, and the trial runner.

Outcome bands come from the International Consensus on Time in Range (Battelino et al.,
Diabetes Care 2019): time in 70-180 mg/dL above 70 %, below 70 under 4 %, below 54 under
1 %. The scenario is simglucose's random day (seed 1, Dexcom noise, Insulet pump), with
meals announced to the controller. Adults #001 (the most hypoglycaemia-prone adult under
Loop), #004 and #010 (the two lowest times in range) and adolescents #001, #002 and #007
(the two hardest adolescents for both controllers) keep the file within its time budget;
``docs/simulation.md`` gives the numbers for the whole groups.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from pyloopkit import metrics
from pyloopkit.control import BasalBolusController, LoopController
from pyloopkit.control.trial import run_trial
from pyloopkit.errors import InvalidInputError
from pyloopkit.simulation import Simulator, StepResult

ADULTS = ["adult#001", "adult#004", "adult#010"]
ADOLESCENTS = ["adolescent#001", "adolescent#002", "adolescent#007"]
SEED = 1
INCREMENT = 0.05  # Insulet basal (U/h) and bolus (U) increment
EPS = 1e-9


@pytest.fixture(scope="module")
def day():
    """One day of Loop and of the basal-bolus controller on the same members, meals and noise."""
    sim = Simulator(ADULTS + ADOLESCENTS, sensor="Dexcom", pump="Insulet", scenario="random", seed=SEED)
    loop = LoopController.for_simulator(sim)
    return {"loop": run_trial(sim, loop, days=1, seed=SEED), "controller": loop,
            "bb": run_trial(sim, BasalBolusController(sim.patients), days=1, seed=SEED)}


def test_loop_keeps_adults_in_consensus_range(day):
    adults = slice(0, len(ADULTS))
    bg = day["loop"]["bg"][adults]
    outcome = {k: v[adults] for k, v in day["loop"]["metrics"].items()}
    assert bg.min() >= 54.0                                   # no severe hypoglycaemia at all
    assert np.all(outcome["time_in_70_180"] > 0.70)
    assert np.all(outcome["time_below_54"] < 0.01)
    assert outcome["time_below_70"].mean() < 0.04


def test_loop_keeps_adolescents_in_a_plausible_band(day):
    """Adolescents #002 and #007 (Quest CR 5 and 8 g/U) go low after large meal boluses with
    either controller; Loop's suspension and max basal still keep BG off the model's extremes."""
    bg = day["loop"]["bg"][len(ADULTS):]
    assert bg.min() > 20.0 and bg.max() < 400.0
    assert day["loop"]["metrics"]["time_in_70_180"][len(ADULTS):].mean() > 0.5


def test_loop_compared_with_basal_bolus_on_the_same_scenario(day):
    """Loop corrects towards 100-110 mg/dL, the basal-bolus rule only above 150 mg/dL (to 140):
    on adults Loop's mean BG is lower and its time in range at least as high."""
    loop, bb = day["loop"]["metrics"], day["bb"]["metrics"]
    adults = slice(0, len(ADULTS))
    np.testing.assert_array_equal(day["loop"]["carbs_g"], day["bb"]["carbs_g"])  # the same meals
    assert np.all(loop["mean_mg_dl"][adults] < bb["mean_mg_dl"][adults])
    assert loop["time_in_70_180"][adults].mean() >= bb["time_in_70_180"][adults].mean()


def test_commands_respect_max_basal_max_bolus_and_pump_increments(day):
    loop, controller = day["loop"], day["controller"]
    basal, bolus = loop["basal_u_per_h"], loop["bolus_u"]
    assert np.all(basal >= 0) and np.all(bolus >= 0)
    assert np.all(basal <= controller.max_basal_u_per_h[:, None] + EPS)
    assert np.all(bolus <= controller.max_bolus_u[:, None] + EPS)
    for command in (basal, bolus):
        np.testing.assert_allclose(command / INCREMENT, np.round(command / INCREMENT), atol=1e-6)
    assert basal.max() > 0 and bolus.max() > 0


def test_loop_suspends_below_the_suspend_threshold(day):
    """A CGM reading below the suspend threshold (75 mg/dL) makes Loop's prediction start below
    it: zero temp basal, no bolus (``glucoseBelowSuspendThreshold``)."""
    loop = day["loop"]
    low = loop["cgm"][:, :-1] < 75.0
    assert low.any()
    assert np.all(loop["basal_u_per_h"][low] == 0.0) and np.all(loop["bolus_u"][low] == 0.0)


def test_boluses_only_for_announced_meals(day):
    """Temp-basal dosing: a bolus is given only in a step where an announced meal is eaten."""
    loop = day["loop"]
    assert np.all(loop["carbs_g"][loop["bolus_u"] > 0] > 0)


def test_temp_basal_history_matches_the_commands(day):
    """Temp basals in Loop's history never overlap, last at most 30 min, and the rate commanded
    in each step is the temp basal running then (the scheduled rate when none runs)."""
    loop, controller = day["loop"], day["controller"]
    start = controller.start
    for i in range(controller.n):
        d = controller.input_dict(i, controller.time_min)
        temps = [(s, e, v) for t, s, e, v in zip(d["dose_types"], d["dose_start_times"], d["dose_end_times"],
                                                 d["dose_values"]) if t == "TempBasal"]
        starts = np.array([(s - start) / dt.timedelta(minutes=1) for s, _, _ in temps])
        ends = np.array([(e - start) / dt.timedelta(minutes=1) for _, e, _ in temps])
        assert np.all(ends - starts <= 30.0) and np.all(ends[:-1] <= starts[1:])
        for k, t in enumerate(loop["time_min"][:-1]):
            running = np.flatnonzero((starts <= t) & (ends > t))
            expected = temps[running[0]][2] if running.size else controller.scheduled_basal_u_per_h[i]
            assert loop["basal_u_per_h"][i, k] == pytest.approx(expected)


def test_same_seed_reproduces_and_another_seed_differs():
    sim = Simulator(["adult#002", "adolescent#003"], seed=0)
    controller = LoopController.for_simulator(sim)
    first = run_trial(sim, controller, days=0.25, seed=7)
    again = run_trial(sim, controller, days=0.25, seed=7)
    other = run_trial(sim, controller, days=0.25, seed=8)
    for key in ("bg", "cgm", "basal_u_per_h", "bolus_u"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["cgm"], other["cgm"])


def test_carb_ratio_meal_bolus_is_grams_over_cr():
    """``meal_bolus="carb_ratio"``: 50 g for adult#001 (CR 10 g/U) is 5 U, given at the decision
    whose next step contains the meal's start (minute 60, step 12, for a meal at minute 60)."""
    sim = Simulator(["adult#001"], sensor=None, pump="Insulet", scenario=[(60, 50.0)], seed=0)
    result = run_trial(sim, LoopController.for_simulator(sim, meal_bolus="carb_ratio"), days=1 / 12, seed=0)
    expected = np.zeros(24)
    expected[12] = 5.0
    np.testing.assert_allclose(result["bolus_u"][0], expected)


def test_automatic_bolus_strategy_gives_partial_doses():
    """``dosing_strategy="automatic_bolus"`` with no meal bolus: Loop covers a 60 g meal entered
    without a bolus by repeated partial automatic boluses (factor 0.4), none as large as the
    meal's carb-ratio bolus (60 g / CR 9 g/U = 6.7 U) and each within the maximum bolus."""
    sim = Simulator(["adult#003"], sensor=None, pump="Insulet", scenario=[(30, 60.0)], seed=0)
    controller = LoopController.for_simulator(sim, dosing_strategy="automatic_bolus", meal_bolus=None)
    bolus = run_trial(sim, controller, days=0.125, seed=0)["bolus_u"][0]
    assert np.count_nonzero(bolus[6:]) >= 3                   # from the meal's step (minute 30) on
    assert bolus.max() < 60.0 / 9.0 and bolus.max() <= controller.max_bolus_u[0]


def _steps(minutes: np.ndarray, cgm_mg_dl: float, n: int = 1):
    for t in minutes:
        yield StepResult(float(t), np.full(n, cgm_mg_dl), np.full(n, cgm_mg_dl), np.empty((n, 0)), np.zeros(n),
                         np.full(n, 40.0 if t % 1440 == 720 else 0.0), np.zeros(n))


def test_history_passed_to_update_stays_bounded():
    """Over three days (hourly decisions, a meal a day) only the last 24 h of glucose and the last
    24 h + one insulin action (6 h 10 min for the adult model) of doses and carbs are kept."""
    from pyloopkit.simulation import load_patients
    controller = LoopController(load_patients(["adult#003"]))
    for step in _steps(np.arange(0, 3 * 1440 + 1, 60), 180.0):
        controller.act(step)
    d = controller.input_dict(0, controller.time_min)
    now = d["time_to_calculate_at"]
    assert now - d["glucose_dates"][0] <= dt.timedelta(hours=24, minutes=10)
    assert len(d["glucose_dates"]) == 25
    window = dt.timedelta(hours=24, minutes=10 + 370)
    assert all(now - end <= window for end in d["dose_end_times"]) and len(d["dose_types"]) > 0
    assert all(now - date <= window for date in d["carb_dates"]) and len(d["carb_dates"]) == 1
    assert controller.history_lengths() == {"glucose": 25, "doses": len(d["dose_types"]), "carbs": 1}


def test_invalid_settings_and_steps_raise():
    from pyloopkit.simulation import load_patients
    patients = load_patients(["adult#001", "child#001"])
    with pytest.raises(InvalidInputError, match="insulin_model"):
        LoopController(patients, insulin_model="novolog")
    with pytest.raises(InvalidInputError, match=r"max_basal_u_per_h\[1\]"):
        LoopController(patients, max_basal_u_per_h=[2.0, -1.0])
    with pytest.raises(InvalidInputError, match="meal_bolus"):
        LoopController(patients, meal_bolus="always")
    with pytest.raises(InvalidInputError, match="max_bolus"):
        LoopController(patients, settings={"max_bolus": 50.0, "max_active_insulin": 10.0})
    controller = LoopController(patients, settings={"max_active_insulin": 10.0})
    steps = list(_steps(np.array([0.0, 5.0]), 120.0, n=2))
    controller.act(steps[1])
    with pytest.raises(InvalidInputError, match="time_min"):
        controller.act(steps[0])
    controller.reset()
    controller.act(steps[0])
    for grams in (np.nan, -10.0, np.inf):
        meal = dataclasses.replace(steps[1], meal_announcement_g=np.array([0.0, grams]))
        with pytest.raises(InvalidInputError, match=r"meal_announcement_g.*1"):
            controller.act(meal)
    controller.act(steps[1])  # the refused step left nothing behind


def test_run_trial_records_and_summarises():
    sim = Simulator(["child#001", "adult#005"], seed=3)
    result = run_trial(sim, BasalBolusController(sim.patients), days=0.5, seed=3)
    assert result["bg"].shape == result["cgm"].shape == (2, 145)
    assert result["basal_u_per_h"].shape == result["insulin_u"].shape == (2, 144)
    np.testing.assert_array_equal(result["time_min"], 5.0 * np.arange(145))
    np.testing.assert_allclose(result["metrics"]["gri"], metrics.gri(result["bg"]))
    np.testing.assert_allclose(result["cgm_metrics"]["mean_mg_dl"], result["cgm"].mean(axis=1))
    with pytest.raises(InvalidInputError, match="days"):
        run_trial(sim, BasalBolusController(sim.patients), days=0.001, seed=3)


class _Overdose:
    """Scheduled basal for everyone and 25 U at minute 0 for the first member only."""

    def __init__(self, patients):
        self.basal_u_per_h = patients.basal_u_per_min * 60.0

    def act(self, step):
        return self.basal_u_per_h, np.where(np.arange(len(step.cgm)) == 0, 25.0 * (step.time_min == 0), 0.0)


def test_run_trial_flags_bg_that_leaves_the_model_range():
    """25 U for child#001 (CF 43 mg/dL/U, about 1,000 mg/dL of drop) drives the model's BG below
    1 mg/dL, where the risk scale is undefined: the member is flagged and its metrics cover the
    readings before; the other member's trace is summarised whole."""
    sim = Simulator(["child#001", "adult#001"], sensor=None, scenario=None, seed=0)
    result = run_trial(sim, _Overdose(sim.patients), days=0.5, seed=0)
    bg = result["bg"]
    np.testing.assert_array_equal(result["bg_valid"], [False, True])
    first_invalid = int(np.argmax(bg[0] < 1.0))
    assert 2 <= first_invalid < bg.shape[1]
    assert result["metrics"]["mean_mg_dl"][0] == pytest.approx(bg[0, :first_invalid].mean())
    assert result["metrics"]["time_in_70_180"][1] == pytest.approx(metrics.time_in_ranges(bg[1])["in_70_180"])


def test_schedules_set_the_default_limits_and_flat_schedules_change_nothing():
    """Max basal 4 x the highest scheduled rate (2.0 U/h -> 8.0), capped by 70 / lowest CR
    (CR 10 -> 7.0 U/h); max bolus ceil(100 / lowest CR) = 10 U, raised to 10-30 U. A schedule
    equal to the flat patient settings gives the same closed loop as no schedule."""
    from pyloopkit.simulation import load_patients
    patients = load_patients(["adult#001", "adult#002"])
    schedules = [{"basal_rate_start_times": ["00:00", "06:00"], "basal_rate_values": [1.0, 2.0]},
                 {"carb_ratio_start_times": [0, 43200], "carb_ratio_values": [10.0, 20.0],
                  "basal_rate_start_times": ["00:00"], "basal_rate_values": [2.0]}]
    controller = LoopController(patients, schedules=schedules)
    np.testing.assert_allclose(controller.max_basal_u_per_h, [min(8.0, 70.0 / patients.CR[0]), 7.0])
    np.testing.assert_allclose(controller.max_bolus_u, [np.clip(np.ceil(100.0 / patients.CR[0]), 10, 30), 10.0])
    np.testing.assert_allclose(controller.schedule_at("basal", 5 * 60.0 + 59), [1.0, 2.0])
    np.testing.assert_allclose(controller.schedule_at("basal", 6 * 60.0), [2.0, 2.0])
    np.testing.assert_allclose(controller.schedule_at("carb_ratio", 24 * 60.0 + 12 * 60.0),
                               [patients.CR[0], 20.0])
    sim = Simulator(["adult#001", "adult#002"], sensor="Dexcom", pump="Insulet", scenario=[(20, 50)], seed=2)
    plain = LoopController.for_simulator(sim)
    flat = [{"sensitivity_ratio_start_times": ["00:00"], "sensitivity_ratio_values": [plain.sensitivity_mg_dl_per_u[i]],
             "carb_ratio_start_times": ["00:00"], "carb_ratio_values": [plain.carb_ratio_g_per_u[i]],
             "basal_rate_start_times": ["00:00"], "basal_rate_values": [plain.scheduled_basal_u_per_h[i]]}
            for i in range(2)]
    runs = [run_trial(sim, c, days=1 / 12, seed=2)
            for c in (plain, LoopController.for_simulator(sim, schedules=flat))]
    for key in ("basal_u_per_h", "bolus_u", "bg"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


def test_invalid_schedules_are_refused_with_the_member_and_key():
    from pyloopkit.simulation import load_patients
    patients = load_patients(["adult#001", "child#001"])
    cases = [
        ([None], r"schedules.*one entry per member"),
        ([None, {"basal_rate_start_times": ["00:00", "06:00"], "basal_rate_values": [1.0]}],
         r"schedules\[1\]\.basal_rate_values"),
        ([{"carb_ratio_start_times": ["01:00"], "carb_ratio_values": [10.0]}, None],
         r"schedules\[0\]\.carb_ratio_start_times.*midnight"),
        ([{"sensitivity_ratio_start_times": ["00:00", "03:00"], "sensitivity_ratio_values": [50.0, float("nan")]},
          None], r"schedules\[0\]\.sensitivity_ratio_values"),
        ([{"carb_ratio_value_units": "exchanges/U"}, None], r"carb_ratio_value_units"),
        ([{"target_range_minimum_values": [90]}, None], r"not a schedule key"),
        ([{"basal_rate_start_times": ["00:00", "noon"], "basal_rate_values": [1.0, 1.0]}, None],
         r"schedules\[0\]\.basal_rate_start_times"),
    ]
    for schedules, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            LoopController(patients, schedules=schedules)
