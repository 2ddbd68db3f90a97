"""The compiled closed-loop decision (:mod:`pyloopkit.core_kernel`) against the array core.

At every decision of short random closed loops (several patients, random announced meals, Dexcom
noise, both dosing strategies, a range of settings), ``core_kernel.recommend`` on the
:class:`~pyloopkit.loop_input.LoopInput` the controller hands to
``loop_data_manager.closed_loop_recommendations`` gives ``core(inp, model, iob_timeline=False,
bolus=False)``'s recommendations and prediction bit for bit (``assert_compiled_equals_numpy``), or
None where it does not cover the input; most decisions must be covered. Its manual bolus
(``manual=True``, which the controller's compiled step gives at a meal) equals ``core(...,
bolus=True)``'s recommended amount at those decisions and at every meal the controller announces with
a recommended bolus. Hand-built inputs then check the branches: stale glucose, suspends, dense CGM,
no effect or momentum alone, running and ended temp basals, and the configurations
:func:`~pyloopkit.core_kernel.plan` refuses.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyloopkit.control.loop_controller as loop_controller
from pyloopkit import core_kernel
from pyloopkit import loop_data_manager as ldm
from pyloopkit.control import LoopController
from pyloopkit.control.trial import run_trial
from pyloopkit.dose import DoseArrays, DoseType
from pyloopkit.loop_data_manager import HISTORY_S, core, model_for
from pyloopkit.loop_input import LoopSettings
from pyloopkit.schedule import DailySchedule
from pyloopkit.simulation import Simulator
from tests.conftest import assert_compiled_equals_numpy, per_member_path

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

COMPILED = core_kernel.HAVE_NUMBA
SKIP_REASON = "the compiled decision needs numba (extra 'fast'): plan() gives None without it"
needs_compiled = pytest.mark.skipif(not COMPILED, reason=SKIP_REASON)

MIN_COVERED_SHARE = 0.9
"""Share of a closed loop's decisions the compiled pass must decide itself (not hand back to core())."""


def _plan(inp, model):
    return core_kernel.plan(inp.settings, model, inp.sensitivity, inp.carb_ratio, inp.basal, inp.target, HISTORY_S)


def _same_decision(inp, model, constants) -> bool:
    """Assert ``recommend`` equals ``core()`` on ``inp`` (bit for bit) when it decides; True when it did."""
    decided = core_kernel.recommend(inp, constants, ldm._application_factor(inp))
    if decided is None:
        return False
    reference = core(inp, model, iob_timeline=False, bolus=False)
    recommendations, (dates, values) = decided
    assert recommendations == reference.recommendations
    assert [type(v) for v in recommendations.values()] == [type(v) for v in reference.recommendations.values()]
    assert_compiled_equals_numpy(dates, reference.prediction[0])
    assert_compiled_equals_numpy(values, reference.prediction[1])
    _same_manual_bolus(inp, model, constants)
    return True


def _same_manual_bolus(inp, model, constants) -> bool:
    """Assert the compiled decision's manual bolus (``manual=True``) is ``core(inp, model,
    bolus=True)``'s recommended amount, bit for bit, when it decides; True when it did."""
    arguments = core_kernel.decide_arguments(inp, constants, ldm._application_factor(inp), True)
    status, *_, manual_u, _, _ = core_kernel._decide(*arguments)
    if status == core_kernel.NOT_COVERED:
        return False
    reference = core(inp, model, iob_timeline=False, bolus=True).recommendations["bolus"]
    if status == core_kernel.STALE:
        assert reference is None and np.isnan(manual_u)
    else:
        assert type(reference[0]) is float and manual_u == reference[0]
    return True


def _closed_loop(monkeypatch, names, *, seed, hours, start_hour=7.0, sensor="Dexcom", schedules=None,
                 switch_at_min=None, later_schedules=None, **controller_keywords):
    """Run a closed loop with random announced meals; compare every decision the controller hands to
    ``closed_loop_recommendations``. Returns ``(decisions, covered, inputs)``."""
    rng = np.random.default_rng(seed)
    n_meals = max(2, int(hours // 4))
    meals = [(int(5 * rng.integers(2, int(hours * 12) - 2)), int(rng.integers(15, 90))) for _ in range(n_meals)]
    sim = Simulator(names, sensor=sensor, pump="Insulet", scenario=sorted(meals), seed=seed, start_hour=start_hour)
    controller = LoopController.for_simulator(sim, schedules=schedules, **controller_keywords)
    per_member_path(controller)  # every decision through the path this test spies on
    original = loop_controller.closed_loop_recommendations
    outcomes, inputs = [], []

    def spy(inp, model, constants):
        assert constants is not None  # plan() covers every configuration of these loops
        outcomes.append(_same_decision(inp, model, constants))
        inputs.append(inp)
        return original(inp, model, constants)

    monkeypatch.setattr(loop_controller, "closed_loop_recommendations", spy)
    original_core = loop_controller.core
    manual_outcomes = []

    def core_spy(inp, model, iob_timeline, bolus):  # a meal announced now with a recommended bolus
        manual_outcomes.append(_same_manual_bolus(inp, model, _plan(inp, model)))
        return original_core(inp, model, iob_timeline=iob_timeline, bolus=bolus)

    monkeypatch.setattr(loop_controller, "core", core_spy)
    if switch_at_min is not None:
        act = controller.act

        def act_and_switch(step):
            if step.time_min == switch_at_min:
                controller.set_schedules(later_schedules)
            return act(step)

        controller.act = act_and_switch
    run_trial(sim, controller, days=hours / 24, seed=seed)
    assert sum(manual_outcomes) >= MIN_COVERED_SHARE * len(manual_outcomes)
    return len(outcomes), sum(outcomes), inputs


def _hourly(rng, patients, i: int) -> dict:
    """Member ``i``'s hourly ISF, CR and basal schedules, +-30% around the patient's values."""
    times = [f"{h:02d}:00" for h in range(24)]
    factor = rng.uniform(0.7, 1.3, size=(3, 24))
    basal = patients.basal_u_per_min[i] * 60.0
    return {"sensitivity_ratio_start_times": times, "sensitivity_ratio_values": list(patients.CF[i] * factor[0]),
            "carb_ratio_start_times": times, "carb_ratio_values": list(patients.CR[i] * factor[1]),
            "basal_rate_start_times": times, "basal_rate_values": list(np.round(basal * factor[2] / 0.05) * 0.05)}


CASES = {
    "temp_basal": dict(dosing_strategy="temp_basal"),
    "automatic_bolus": dict(dosing_strategy="automatic_bolus"),
    "max_iob_binding": dict(dosing_strategy="automatic_bolus", settings={"max_active_insulin": 1.0}),
    "max_iob_loose_carb_ratio_bolus": dict(meal_bolus="carb_ratio", settings={"max_active_insulin": 12.0}),
    "integral_rc_gradual": dict(settings={"retrospective_correction": "integral",
                                          "gradual_transitions_threshold": 8.0}),
    "static_carbs_linear": dict(dynamic_carb_absorption=False, meal_bolus=None,
                                settings={"carb_absorption_model": "linear"}),
    "piecewise_linear_no_rc": dict(retrospective_correction=False, settings={"carb_absorption_model":
                                                                             "piecewise_linear"}),
    "adaptive_partial_factor": dict(dosing_strategy="automatic_bolus", meal_bolus="carb_ratio",
                                    settings={"carb_absorption_model": "adaptive",
                                              "partial_application_factor": 0.7}),
    "glucose_based_factor_slope": dict(dosing_strategy="automatic_bolus",
                                       settings={"use_glucose_based_application_factor": True,
                                                 "max_physiologic_slope": 2.0}),
    "partial_factor_with_temp_basal": dict(settings={"partial_application_factor": 0.5}),
    "unrounded_pump_table": dict(rate_increment_u_per_h=0.0, bolus_increment_u=0.0,
                                 settings={"pump_rounding": "minimed_x22"}),
    "coarse_increments_rounding_down": dict(rate_increment_u_per_h=0.1, bolus_increment_u=0.5,
                                            dosing_strategy="automatic_bolus", settings={"rounding": "down"}),
    "child_model": dict(insulin_model="child", meal_bolus=None),
    "fiasp_model": dict(insulin_model="fiasp", dosing_strategy="automatic_bolus"),
    "lyumjev_model": dict(insulin_model="lyumjev", settings={"max_active_insulin": 4.0}),
    "bolus_with_rising_momentum_and_rc": dict(settings={"include_positive_velocity_and_rc_in_bolus": True}),
}
PATIENTS = ["adult#001", "adult#004", "adolescent#002", "adolescent#007", "child#003", "child#008"]


@needs_compiled
@pytest.mark.parametrize("case", list(CASES))
def test_compiled_decision_equals_core_at_every_step(monkeypatch, case):
    """Two members (drawn from the case's name), 6 hours, two random announced meals."""
    seed = sum(map(ord, case))
    names = list(np.random.default_rng(seed).choice(PATIENTS, size=2, replace=False))
    decisions, covered, _ = _closed_loop(monkeypatch, names, seed=seed, hours=6.0, **CASES[case])
    assert decisions >= 2 * 72 - 2 * 2  # every decision without a meal bolus was compared
    assert covered >= MIN_COVERED_SHARE * decisions


@needs_compiled
def test_compiled_decision_equals_core_beyond_a_day_of_history(monkeypatch):
    """27 hours: the histories reach the 24-hour counteraction window and the dose window before it."""
    decisions, covered, inputs = _closed_loop(monkeypatch, ["adult#002", "child#005"], seed=27, hours=27.0,
                                              start_hour=18.0, meal_bolus="carb_ratio",
                                              settings={"max_active_insulin": 6.0})
    assert decisions >= 2 * 324
    assert covered >= MIN_COVERED_SHARE * decisions
    last = inputs[-1]
    assert last.now_s - last.glucose_s[0] >= HISTORY_S - 300.0 and last.now_s - last.doses.start_s[0] > HISTORY_S


@needs_compiled
@settings(max_examples=12)
@given(seed=st.integers(0, 10_000), names=st.lists(st.sampled_from(PATIENTS), min_size=2, max_size=3, unique=True),
       strategy=st.sampled_from(["temp_basal", "automatic_bolus"]),
       meal_bolus=st.sampled_from(["recommended", "carb_ratio", None]),
       insulin_model=st.sampled_from(["adult", "child", "fiasp", "lyumjev", "afrezza"]),
       carb_model=st.sampled_from(["parabolic", "linear", "piecewise_linear", "adaptive"]),
       dynamic=st.booleans(), retrospective=st.sampled_from([None, "standard", "integral"]),
       max_iob=st.sampled_from([None, 1.5, 8.0]), threshold=st.sampled_from([None, 5.0, 20.0]),
       factor=st.sampled_from([None, 0.25, 1.0]), glucose_based=st.booleans(),
       increments=st.sampled_from([(0.05, 0.05), (0.0, 0.0), (0.025, 0.1)]))
def test_random_configurations(seed, names, strategy, meal_bolus, insulin_model, carb_model, dynamic, retrospective,
                               max_iob, threshold, factor, glucose_based, increments):
    """Random combinations of the settings above, 3 hours each."""
    extra = {"carb_absorption_model": carb_model, "max_active_insulin": max_iob,
             "gradual_transitions_threshold": threshold, "partial_application_factor": factor,
             "use_glucose_based_application_factor": glucose_based}
    if retrospective is not None:
        extra["retrospective_correction"] = retrospective
    with pytest.MonkeyPatch.context() as monkeypatch:
        decisions, covered, _ = _closed_loop(
            monkeypatch, names, seed=seed, hours=3.0, dosing_strategy=strategy, meal_bolus=meal_bolus,
            insulin_model=insulin_model, dynamic_carb_absorption=dynamic, retrospective_correction=retrospective
            is not None, rate_increment_u_per_h=increments[0], bolus_increment_u=increments[1],
            settings={k: v for k, v in extra.items() if v is not None})
    assert decisions >= len(names) * (36 - 2)  # all but the meal decisions with a recommended bolus
    assert covered >= MIN_COVERED_SHARE * decisions


@needs_compiled
@pytest.mark.parametrize("strategy", ["temp_basal", "automatic_bolus"])
def test_compiled_decision_with_daily_schedules_changed_during_the_run(monkeypatch, strategy):
    """Hourly schedules from 06:30 (items change during the run), replaced by new ones at minute 90."""
    rng = np.random.default_rng(11)
    names = ["adult#004", "child#003"]
    patients = Simulator(names, seed=0).patients
    first = [_hourly(rng, patients, i) for i in range(2)]
    later = [_hourly(rng, patients, i) for i in range(2)]
    decisions, covered, _ = _closed_loop(monkeypatch, names, seed=5, hours=3.0, start_hour=6.5,
                                         schedules=first, switch_at_min=90.0, later_schedules=later,
                                         dosing_strategy=strategy, meal_bolus="carb_ratio")
    assert decisions >= 2 * 36  # every decision, and again after each carb-ratio meal bolus
    assert covered >= MIN_COVERED_SHARE * decisions


@pytest.fixture(scope="module")
def captured():
    """The inputs of a 4-hour closed loop (two members, temp basals and automatic boluses, meals)."""
    if not COMPILED:
        pytest.skip(SKIP_REASON)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, covered, inputs = _closed_loop(monkeypatch, ["adult#001", "adolescent#002"], seed=21, hours=4.0,
                                          dosing_strategy="automatic_bolus", meal_bolus="carb_ratio")
    assert covered >= MIN_COVERED_SHARE * len(inputs)
    return inputs


def _with_carbs(inp) -> bool:
    return inp.carb_s.size > 0 and inp.doses.type.size > 3


@pytest.fixture(scope="module")
def late(captured):
    """A late input of that loop with carbs, doses and a running temp basal."""
    return next(inp for inp in reversed(captured) if _with_carbs(inp) and inp.last_temp_basal is not None)


def _check(inp, model=None) -> bool:
    """``_same_decision`` under the input's own plan (which must exist)."""
    model = model_for(inp.settings) if model is None else model
    constants = _plan(inp, model)
    assert constants is not None
    return _same_decision(inp, model, constants)


@pytest.mark.parametrize("minutes_old, stale", [(15.0, True), (20.0, True), (14.999, False), (10.0, False)])
def test_stale_glucose_gives_no_dose_and_the_same_prediction(late, minutes_old, stale):
    inp = dataclasses.replace(late, now_s=float(late.glucose_s[-1]) + minutes_old * 60.0)
    assert _check(inp)
    recommendations = core_kernel.recommend(inp, _plan(inp, model_for(inp.settings)), 0.4)[0]
    assert (recommendations == {"temp_basal": None, "bolus": None, "autobolus": None}) == stale


@pytest.mark.parametrize("kind", [DoseType.SUSPEND, DoseType.RESUME])
def test_a_suspend_or_resume_in_the_history_is_handed_back(late, kind):
    doses = late.doses
    t = float(late.now_s) - 3600.0
    extra = DoseArrays.from_lists(np.array([int(kind)], dtype=np.int8), [t], [t + 600.0], [0.0])
    merged = DoseArrays(*(np.concatenate((getattr(doses, f.name), getattr(extra, f.name)))
                          for f in dataclasses.fields(DoseArrays)))
    order = np.argsort(merged.start_s, kind="stable")
    inp = dataclasses.replace(late, doses=merged.take(order))
    assert not _check(inp)
    assert core(inp, model_for(inp.settings), iob_timeline=False, bolus=False).recommendations  # core() decides


def test_more_than_seven_readings_in_the_momentum_window_are_handed_back(late):
    """One-minute CGM: 16 readings in the last 15 minutes (the compiled momentum takes at most 7)."""
    minutes = np.arange(-180.0, 0.5, 1.0)
    glucose_s = float(late.glucose_s[-1]) + minutes * 60.0
    inp = dataclasses.replace(late, glucose_s=glucose_s,
                              glucose_mgdl=np.interp(glucose_s, late.glucose_s, late.glucose_mgdl))
    assert not _check(inp)
    sparse = dataclasses.replace(inp, glucose_s=glucose_s[::5], glucose_mgdl=inp.glucose_mgdl[::5])
    assert _check(sparse)  # the same readings every 5 minutes are covered


def _without_doses_and_carbs(inp, minutes_after_glucose: float, readings: int | None = None):
    """``inp`` without doses and carb entries, decided ``minutes_after_glucose`` after its last reading,
    with only its last ``readings`` readings (None: all)."""
    first = 0 if readings is None else inp.glucose_s.size - readings
    return dataclasses.replace(inp, doses=DoseArrays(), carb_s=np.empty(0), carb_g=np.empty(0),
                               carb_absorption_min=np.empty(0), last_temp_basal=None,
                               glucose_s=inp.glucose_s[first:], glucose_mgdl=inp.glucose_mgdl[first:],
                               now_s=float(inp.glucose_s[-1]) + minutes_after_glucose * 60.0)


def test_a_momentum_without_dose_or_carb_is_handed_back(late):
    """Momentum but no other effect: core()'s prediction path for it (a blend into nothing) applies."""
    inp = _without_doses_and_carbs(late, 0.0)
    assert not _check(inp)
    effects = core(inp, model_for(inp.settings), iob_timeline=False, bolus=False).effects
    assert effects.momentum[0].size > 0 and effects.insulin[0].size == 0


@pytest.mark.parametrize("minutes_after_glucose, readings", [(0.0, 1), (20.0, 1), (20.0, None)])
def test_no_effect_at_all_is_decided(late, minutes_after_glucose, readings):
    """No effect at all: a first decision (one reading, no dose, no carb; fresh or stale glucose), or a
    history whose last reading is too old for momentum: the start alone, held to the action's end."""
    inp = _without_doses_and_carbs(late, minutes_after_glucose, readings)
    assert _check(inp)
    reference = core(inp, model_for(inp.settings), iob_timeline=False, bolus=False)
    assert reference.effects.momentum[0].size == 0 and reference.prediction[0].size == 2


def test_gradual_transitions_threshold_at_a_step_of_the_readings(late):
    """Retrospective correction stays on when the largest step between consecutive readings of its
    window equals the threshold (``<=``), and goes off just below it."""
    window = late.glucose_s >= late.now_s - late.settings.retrospective_correction_grouping_interval * 60.0
    step = float(np.max(np.abs(np.diff(late.glucose_mgdl[window]))))
    for threshold in (step, np.nextafter(step, 0.0)):
        inp = dataclasses.replace(late, settings=dataclasses.replace(late.settings,
                                                                     gradual_transitions_threshold=threshold))
        assert _check(inp)
        effects = core(inp, model_for(inp.settings), iob_timeline=False, bolus=False).effects
        assert (effects.retrospective[0].size > 0) == (threshold == step)


def test_injected_effects_are_handed_back(late):
    """An input carrying a caller's precomputed effect (PyLoopKit's test hook): core() reads it."""
    start = float(late.glucose_s[-1])
    momentum = (start + np.array([0.0, 300.0, 600.0]), np.array([0.0, 4.0, 8.0]))
    inp = dataclasses.replace(late, injected={"momentum": momentum})
    assert not _check(inp)


@pytest.mark.parametrize("name", ["gradual_transitions_threshold", "max_physiologic_slope"])
def test_non_finite_momentum_limits_are_refused_or_equal(late, name):
    """A NaN limit reaches core() as a limit (no momentum or RC can pass it), not as "unset"."""
    inp = dataclasses.replace(late, settings=dataclasses.replace(late.settings, **{name: np.nan}))
    model = model_for(inp.settings)
    constants = _plan(inp, model)
    assert constants is None or _same_decision(inp, model, constants)


def test_empty_carb_history_is_covered(late):
    inp = dataclasses.replace(late, carb_s=np.empty(0), carb_g=np.empty(0), carb_absorption_min=np.empty(0))
    assert _check(inp)


@pytest.mark.parametrize("rate_u_per_h", [0.0, 0.35, 2.5, 6.0])
def test_running_temp_basal_pending_insulin(late, rate_u_per_h):
    """A temp basal running 20 more minutes at various rates (above the scheduled one: pending
    insulin, which the max IOB headroom subtracts), without and with a max IOB."""
    now = float(late.now_s)
    scheduled = float(late.basal.at(np.array([now]))[0])
    for max_iob in (None, 2.0):
        inp = dataclasses.replace(late, settings=dataclasses.replace(late.settings, max_active_insulin=max_iob),
                                  last_temp_basal=(DoseType.TEMP_BASAL, now - 600.0, now + 1200.0, rate_u_per_h))
        assert _check(inp)
        assert (ldm.pending_insulin_u(inp) > 0) == (rate_u_per_h > scheduled)


@pytest.mark.parametrize("last", ["ended", "ends_now", "bolus", "reversed", "basal"])
def test_last_temp_basal_variants(late, last):
    now = float(late.now_s)
    last_temp_basal = {"ended": (DoseType.TEMP_BASAL, now - 2400.0, now - 600.0, 3.0),
                       "ends_now": (DoseType.TEMP_BASAL, now - 1800.0, now, 3.0),
                       "bolus": (DoseType.BOLUS, now - 60.0, now + 1200.0, 3.0),
                       "reversed": (DoseType.TEMP_BASAL, now + 1200.0, now + 600.0, 3.0),
                       "basal": (DoseType.BASAL, now - 600.0, now + 1200.0, 3.0)}[last]
    assert _check(dataclasses.replace(late, last_temp_basal=last_temp_basal))


def test_walsh_curve_and_other_settings_on_the_captured_inputs(captured):
    """Every captured decision again under a Walsh curve, mid-range settings the loops above do not use."""
    variants = [dict(model=(4.0,)), dict(model=(5.0,), suspend_threshold=None, max_basal_rate=None),
                dict(momentum_data_interval=20.0, recency_interval=10.0,
                     retrospective_correction_grouping_interval=45.0, carb_delay=15.0, insulin_delay=5.0),
                dict(default_absorption_times=(90.0, 150.0, 300.0), retrospective_correction_integration_interval=60.0)]
    for changes in variants:
        covered = [_check(dataclasses.replace(inp, settings=dataclasses.replace(inp.settings, **changes)))
                   for inp in captured[::3]]
        assert sum(covered) >= MIN_COVERED_SHARE * len(covered), changes


def _schedules(inp):
    return inp.sensitivity, inp.carb_ratio, inp.basal, inp.target


@pytest.mark.parametrize("refused", ["mid_absorption_isf", "custom_model", "int_schedule", "max_basal_inf",
                                     "max_bolus_nan", "grouping_zero", "one_value_target"])
def test_plan_refuses_what_the_compiled_decision_does_not_cover(late, refused):
    s, model = late.settings, model_for(late.settings)
    isf, cr, basal, target = _schedules(late)
    if refused == "mid_absorption_isf":
        s = dataclasses.replace(s, use_mid_absorption_isf=True)
    elif refused == "custom_model":
        model = _CustomModel()
    elif refused == "int_schedule":
        isf = DailySchedule(np.array([0.0, 43200.0]), np.array([40, 50]))
    elif refused == "max_basal_inf":
        s = dataclasses.replace(s, max_basal_rate=np.inf)
    elif refused == "max_bolus_nan":
        s = dataclasses.replace(s, max_bolus=np.nan)
    elif refused == "grouping_zero":
        s = dataclasses.replace(s, retrospective_correction_grouping_interval=0.0)
    else:
        assert refused == "one_value_target"
        target = DailySchedule.constant(100.0)
    assert core_kernel.plan(s, model, isf, cr, basal, target, HISTORY_S) is None


class _CustomModel:
    """An insulin model the compiled curves do not know (a user's own curve object)."""

    effect_duration_min = 370.0
    delay_min = 10.0

    def percent_effect_remaining(self, minutes):
        return np.clip(1.0 - np.asarray(minutes, dtype=float) / self.effect_duration_min, 0.0, 1.0)


def test_plan_is_none_without_numba(monkeypatch):
    """With numba off (``PYLOOPKIT_JIT=never``) ``plan()`` gives None and the controller runs core()."""
    monkeypatch.setattr(core_kernel, "HAVE_NUMBA", False)
    loop_settings = LoopSettings(model=(360.0, 75.0))
    flat = DailySchedule.constant(50.0)
    target = DailySchedule(np.zeros(1), np.array([[100.0, 110.0]]))
    assert core_kernel.plan(loop_settings, model_for(loop_settings), flat, flat, flat, target, HISTORY_S) is None
