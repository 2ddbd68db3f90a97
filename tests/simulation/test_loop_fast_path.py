"""The controller's fast path (arrays straight into the array core) equals ``update()`` on the
equivalent PyLoopKit dictionary at every decision of random closed loops (issue 9, item 3).

Each example runs a short closed loop with the fast engine; every time the controller asks the
algorithm for a recommendation, the test also runs ``update()`` on :meth:`LoopController.input_dict`
for the same member and minute and compares: prediction within 1e-9 mg/dL (same dates), temp
basal, bolus and automatic bolus identical.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from pyloopkit import core_kernel
from pyloopkit.control import LoopController
from pyloopkit.control.trial import run_trial
from pyloopkit.date import to_second
from pyloopkit.loop_data_manager import _application_factor, core, model_for, update
from pyloopkit.simulation import Simulator
from tests.conftest import assert_compiled_equals_numpy, per_member_path

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

PATIENTS = ["adult#001", "adult#004", "adolescent#002", "adolescent#007", "child#003"]
TOLERANCE_MG_DL = 1e-9


def _checked(controller: LoopController, calls: list) -> None:
    """Wrap the controller's decision so that each one is compared with ``update()``: the array core's
    and, where it covers the input, the compiled decision's (:mod:`pyloopkit.core_kernel`). The
    compiled step over all members is switched off so that every decision passes here; that it
    enacts the same as this path is tests/control/test_loop_batch.py's subject."""
    decide = controller._run
    per_member_path(controller)

    def run(i, now_min, glucose, bolus=True):
        inp = controller.loop_input(i, now_min, glucose)
        fast = core(inp, model_for(inp.settings), iob_timeline=False)
        plan = controller._plans[i]  # None without numba
        compiled = None if plan is None else core_kernel.recommend(inp, plan, _application_factor(inp))
        reference = update(controller.input_dict(i, now_min))
        dates_s = np.array([to_second(d) for d in reference["predicted_glucose_dates"]])
        for prediction in [fast.prediction] + ([] if compiled is None else [compiled[1]]):
            np.testing.assert_array_equal(prediction[0], dates_s)
            np.testing.assert_allclose(prediction[1], reference["predicted_glucose_values"],
                                       rtol=0, atol=TOLERANCE_MG_DL)
        rec = fast.recommendations
        assert rec["temp_basal"] == reference["recommended_temp_basal"]
        assert rec["bolus"] == reference["recommended_bolus"]
        assert rec["autobolus"] == reference["recommended_autobolus"]
        if compiled is not None:
            assert compiled[0]["temp_basal"] == reference["recommended_temp_basal"]
            assert compiled[0]["autobolus"] == reference["recommended_autobolus"]
        calls.append((i, now_min, rec["temp_basal"], rec["bolus"][0], rec["autobolus"], compiled is not None))
        return decide(i, now_min, glucose, bolus)

    controller._run = run


meals = st.lists(st.tuples(st.integers(10, 100).map(lambda m: 5 * (m // 5)), st.integers(15, 90)),
                 min_size=1, max_size=2)


@settings(max_examples=8)
@given(names=st.lists(st.sampled_from(PATIENTS), min_size=2, max_size=2, unique=True),
       seed=st.integers(0, 10_000), meal_plan=meals,
       strategy=st.sampled_from(["temp_basal", "automatic_bolus"]),
       meal_bolus=st.sampled_from(["recommended", "carb_ratio", None]),
       retrospective=st.booleans(), max_iob=st.sampled_from([None, 6.0]))
def test_fast_path_equals_update_at_every_decision(names, seed, meal_plan, strategy, meal_bolus, retrospective,
                                                   max_iob):
    sim = Simulator(names, sensor="Dexcom", pump="Insulet", scenario=meal_plan, seed=seed, start_hour=7.0)
    controller = LoopController.for_simulator(
        sim, dosing_strategy=strategy, meal_bolus=meal_bolus, retrospective_correction=retrospective,
        settings=None if max_iob is None else {"max_active_insulin": max_iob})
    calls = []
    _checked(controller, calls)
    run_trial(sim, controller, days=2 / 24, seed=seed)
    decisions = {(i, t) for i, t, *_ in calls}
    assert len(decisions) == 2 * 24  # every member at every decision was compared
    if core_kernel.HAVE_NUMBA:  # and the compiled decision at most of them
        assert sum(c[5] for c in calls) >= 0.8 * len(calls)
    temp_basals = [c for c in calls if c[2] is not None and c[2][1] > 0]
    assert temp_basals or strategy == "automatic_bolus"  # the loop did adjust the basal


def test_engines_give_the_same_closed_loop():
    """Two hours of closed loop with each engine: identical commands and glucose traces."""
    runs = {}
    for engine in ("fast", "update"):
        sim = Simulator(["adult#001", "adolescent#002"], sensor="Dexcom", pump="Insulet",
                        scenario=[(10, 60)], seed=4, start_hour=7.0)
        runs[engine] = run_trial(sim, LoopController.for_simulator(sim, engine=engine), days=2 / 24, seed=4)
    for key in ("basal_u_per_h", "bolus_u", "bg", "cgm"):
        np.testing.assert_array_equal(runs["fast"][key], runs["update"][key])
    assert runs["fast"]["bolus_u"][:, 2].min() > 0  # the meal at minute 10 was bolused by Loop


def test_unknown_engine_is_refused():
    sim = Simulator(["adult#001"], seed=0)
    with pytest.raises(Exception, match="engine"):
        LoopController.for_simulator(sim, engine="turbo")


def _hourly(rng: np.random.Generator, isf: float, cr: float, basal: float) -> dict:
    """Hourly ISF, CR and basal schedules varying +-30% around the given values (basal on 0.05 U/h)."""
    times = [f"{h:02d}:00" for h in range(24)]
    factor = rng.uniform(0.7, 1.3, size=(3, 24))
    return {"sensitivity_ratio_start_times": times, "sensitivity_ratio_values": list(isf * factor[0]),
            "carb_ratio_start_times": times, "carb_ratio_values": list(cr * factor[1]),
            "basal_rate_start_times": times, "basal_rate_values": list(np.round(basal * factor[2] / 0.05) * 0.05)}


@settings(max_examples=4)
@given(seed=st.integers(0, 10_000), meal_plan=meals, strategy=st.sampled_from(["temp_basal", "automatic_bolus"]),
       meal_bolus=st.sampled_from(["recommended", "carb_ratio"]))
def test_fast_path_equals_update_with_hourly_schedules_changing_during_the_episode(seed, meal_plan, strategy,
                                                                                    meal_bolus):
    """Three hours from 06:30 under hourly schedules (four schedule items cross the episode), new
    hourly schedules set at minute 90 (a user changing settings): fast == update at every decision,
    and the pump runs the scheduled basal of the hour whenever no temp basal is running (an example
    counts only where that happens at least once)."""
    rng = np.random.default_rng(seed)
    names = ["adult#004", "child#003"]
    sim = Simulator(names, sensor="Dexcom", pump="Insulet", scenario=meal_plan, seed=seed, start_hour=6.5)
    p = sim.patients
    flat = [(p.CF[i], p.CR[i], p.basal_u_per_min[i] * 60.0) for i in range(2)]
    first, later = [_hourly(rng, *f) for f in flat], [_hourly(rng, *f) for f in flat]
    controller = LoopController.for_simulator(sim, dosing_strategy=strategy, meal_bolus=meal_bolus,
                                              schedules=first)
    calls, basal = [], []
    _checked(controller, calls)
    act = controller.act

    def act_and_switch(step):
        if step.time_min == 90.0:
            controller.set_schedules(later)
        command = act(step)
        basal.append((step.time_min, command[0], [controller._running_temp(i, step.time_min) is not None
                                                 for i in range(controller.n)]))
        return command

    controller.act = act_and_switch
    run_trial(sim, controller, days=3 / 24, seed=seed)
    assert len({(i, t) for i, t, *_ in calls}) == 2 * 36
    scheduled = 0
    for minute, rates, temp_running in basal:
        hour = int(6.5 + minute / 60.0) % 24
        schedule = later if minute >= 90.0 else first
        for i in np.flatnonzero(~np.array(temp_running)):
            assert rates[i] == schedule[i]["basal_rate_values"][hour]
            scheduled += 1
    # an episode where a temp basal runs at every step (e.g. seed 1193, meals [(10, 19), (40, 15)], temp
    # basals, recommended meal boluses: Loop high-temps throughout) checks no scheduled rate: not counted
    assume(scheduled > 0)


_COMPILED_MODULES = ("insulin_math", "dose_store", "carb_math", "loop_math", "glucose_math",
                     "retrospective_correction", "dose_math")


def _effects_and_prediction(result) -> list[np.ndarray]:
    e = result.effects
    arrays = [*e.momentum, *e.insulin, *e.counteraction, *e.carb, *e.retrospective, *e.cob, *e.iob,
              np.array([e.iob_now_u]), *result.prediction]
    return [np.asarray(a, dtype=float) for a in arrays]


@settings(max_examples=4)
@given(seed=st.integers(0, 10_000), meal_plan=meals, strategy=st.sampled_from(["temp_basal", "automatic_bolus"]),
       hourly=st.booleans())
def test_compiled_kernels_equal_the_array_paths_at_every_decision(seed, meal_plan, strategy, hourly):
    """A random closed loop (Dexcom noise, announced meals, either dosing strategy, flat or hourly
    schedules): at every decision the core with the compiled kernels (dose preparation, insulin
    slices and sums, dynamic carbs, prediction, counteraction, momentum, retrospective
    correction) and with the numpy array paths
    (``PYLOOPKIT_JIT=never``'s) gives bit-identical effects, prediction and recommendations."""
    import importlib
    modules = [importlib.import_module(f"pyloopkit.{name}") for name in _COMPILED_MODULES]
    if not all(m.HAVE_NUMBA for m in modules):
        pytest.skip("needs numba (extra 'fast')")
    rng = np.random.default_rng(seed)
    sim = Simulator(["adult#004", "child#003"], sensor="Dexcom", pump="Insulet", scenario=meal_plan, seed=seed,
                    start_hour=6.5)
    p = sim.patients
    schedules = [_hourly(rng, p.CF[i], p.CR[i], p.basal_u_per_min[i] * 60.0) for i in range(2)] if hourly else None
    controller = LoopController.for_simulator(sim, dosing_strategy=strategy, schedules=schedules)
    decide, compared = controller._run, []
    per_member_path(controller)

    def run(i, now_min, glucose, bolus=True):
        inp = controller.loop_input(i, now_min, glucose)
        fast = core(inp, model_for(inp.settings), iob_timeline=True)
        try:
            for module in modules:
                module.HAVE_NUMBA = False
            plain = core(inp, model_for(inp.settings), iob_timeline=True)
        finally:
            for module in modules:
                module.HAVE_NUMBA = True
        for x, y in zip(_effects_and_prediction(fast), _effects_and_prediction(plain), strict=True):
            assert_compiled_equals_numpy(x, y)  # bit for bit
        assert fast.recommendations == plain.recommendations
        compared.append(fast.effects.carb[0].size > 0)
        return decide(i, now_min, glucose, bolus)

    controller._run = run
    run_trial(sim, controller, days=2 / 24, seed=seed)
    assert len(compared) >= 2 * 24 and any(compared)  # every decision compared, carbs among them
