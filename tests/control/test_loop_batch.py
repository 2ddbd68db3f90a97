"""The compiled closed-loop step over all members (``pyloopkit.control.loop_batch``) enacts exactly
what the controller's Python path (``LoopController._run`` on each member, then the enactment in
``act``) enacts: the same dose and carb tables, running temp basals and commands after every step."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pyloopkit import core_kernel
from pyloopkit.control import LoopController, loop_batch
from pyloopkit.control.trial import run_trial
from pyloopkit.simulation import Simulator
from tests.conftest import per_member_path

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

PATIENTS = ["adult#001", "adult#004", "adolescent#002", "child#003", "child#007"]


def _closed_loop(names, seed, meals, compiled: bool, **options):
    """Run 4 hours; return the commands and, after every step, each member's tables and temp basal."""
    sim = Simulator(names, sensor="Dexcom", pump="Insulet", scenario=meals, seed=seed, start_hour=5.5)
    controller = LoopController.for_simulator(sim, **options)
    if not compiled:
        per_member_path(controller)
    states, act = [], controller.act

    def recorded(step):
        command = act(step)
        states.append(([controller._doses.rows(i).copy() for i in range(controller.n)],
                       [controller._carbs.rows(i).copy() for i in range(controller.n)], controller._temp.copy()))
        return command

    controller.act = recorded
    result = run_trial(sim, controller, days=4 / 24, seed=seed)
    return result, states


def _counting(monkeypatch, meals: list | None = None) -> list:
    """Record the status of every member decided by the compiled step (and in ``meals`` that of every
    member with a meal bolus to give now)."""
    statuses, decide = [], loop_batch.decide_and_enact

    def counted(*args):
        members, meal_u = args[13], args[14]
        status, bolus = decide(*args)
        statuses.extend(status.tolist())
        if meals is not None:
            meals.extend(status[meal_u[members] != 0].tolist())
        return status, bolus

    monkeypatch.setattr(loop_batch, "decide_and_enact", counted)
    return statuses


meals = st.lists(st.tuples(st.integers(10, 200).map(lambda m: 5 * (m // 5)), st.integers(15, 90)),
                 min_size=1, max_size=3)


@settings(max_examples=6, deadline=None)
@given(names=st.lists(st.sampled_from(PATIENTS), min_size=3, max_size=3, unique=True), seed=st.integers(0, 10_000),
       meal_plan=meals, strategy=st.sampled_from(["temp_basal", "automatic_bolus"]),
       meal_bolus=st.sampled_from(["recommended", "carb_ratio", None]), max_iob=st.sampled_from([None, 3.0]),
       hourly_basal=st.booleans())
def test_compiled_step_enacts_what_the_python_path_enacts(names, seed, meal_plan, strategy, meal_bolus, max_iob,
                                                          hourly_basal):
    if not core_kernel.HAVE_NUMBA:
        pytest.skip("needs numba (extra 'fast')")
    schedules = None
    if hourly_basal:  # items change every hour during the run (05:30 to 09:30)
        times = [f"{h:02d}:00" for h in range(24)]
        schedules = [{"basal_rate_start_times": times, "basal_rate_values": [0.5 + 0.05 * (h % 7) for h in range(24)]}
                     for _ in names]
    options = dict(dosing_strategy=strategy, meal_bolus=meal_bolus, schedules=schedules,
                   settings=None if max_iob is None else {"max_active_insulin": max_iob})
    meal_statuses = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        statuses = _counting(monkeypatch, meal_statuses)
        compiled, compiled_states = _closed_loop(names, seed, meal_plan, True, **options)
    python, python_states = _closed_loop(names, seed, meal_plan, False, **options)
    assert len(compiled_states) == len(python_states) == 48
    _assert_same_runs((compiled, compiled_states), (python, python_states))
    decided = sum(s != core_kernel.NOT_COVERED for s in statuses)
    assert decided >= 0.8 * 3 * 47  # the compiled step decided most member-decisions after the first
    # every announced meal with a bolus reached the compiled step, which gave most of them
    assert len(meal_statuses) == (0 if meal_bolus is None else 3 * len({minute for minute, _ in meal_plan}))
    assert sum(s != core_kernel.NOT_COVERED for s in meal_statuses) >= 0.8 * len(meal_statuses)


def _assert_same_runs(first, second) -> None:
    (result, states), (reference, reference_states) = first, second
    for key in ("basal_u_per_h", "bolus_u", "bg", "cgm"):
        np.testing.assert_array_equal(result[key], reference[key])
    for (doses, carbs, temp), (doses_ref, carbs_ref, temp_ref) in zip(states, reference_states, strict=True):
        for mine, ref in zip(doses + carbs, doses_ref + carbs_ref, strict=True):
            np.testing.assert_array_equal(mine, ref)
        np.testing.assert_array_equal(temp, temp_ref)


@pytest.mark.parametrize("meal_bolus", ["carb_ratio", "recommended"])
def test_no_automatic_bolus_right_after_a_meal_bolus(monkeypatch, meal_bolus):
    """Automatic bolus strategy, 80 g meals with the bolus capped at 1 U: Loop decides again with the
    meal bolus in the history and still wants insulin, but only its temp basal is enacted at that step
    (the automatic bolus comes at the next decisions)."""
    if not core_kernel.HAVE_NUMBA:
        pytest.skip("needs numba (extra 'fast')")
    names, meal_plan = PATIENTS[:3], [(30, 80), (150, 80)]
    options = dict(dosing_strategy="automatic_bolus", meal_bolus=meal_bolus, max_bolus_u=1.0)
    meal_statuses = []
    with pytest.MonkeyPatch.context() as patch:
        _counting(patch, meal_statuses)
        compiled = _closed_loop(names, 4, meal_plan, True, **options)
    assert meal_statuses.count(core_kernel.DECIDED) == 6
    _assert_same_runs(compiled, _closed_loop(names, 4, meal_plan, False, **options))
    bolus = compiled[0]["bolus_u"]
    assert np.all(bolus[:, [6, 30]] == 1.0) and np.all(bolus[:, [7, 31]] > 0)  # meal bolus, then automatic


def test_the_update_engine_and_glucose_based_factor_take_the_python_path(monkeypatch):
    statuses = _counting(monkeypatch)
    sim = Simulator(["adult#001"], sensor="Dexcom", pump="Insulet", scenario=[(10, 40)], seed=1)
    for options in (dict(engine="update"), dict(dosing_strategy="automatic_bolus",
                                                settings={"use_glucose_based_application_factor": True})):
        controller = LoopController.for_simulator(sim, **options)
        run_trial(sim, controller, days=1 / 24, seed=1)
    assert statuses == []


def test_dates_convert_as_the_controller_converts_them():
    sim = Simulator(["adult#001"], seed=0)
    controller = LoopController.for_simulator(sim)
    minutes = np.array([0.0, 1e-7, 2.5, 1439.999999, 52_560_000.0 / 3.0, -17.25])
    np.testing.assert_array_equal(loop_batch._seconds(minutes, controller._start_us), controller._seconds(minutes))


def test_the_members_split_between_threads_give_the_same_closed_loop():
    runs = []
    for threads in (1, 3):
        sim = Simulator(PATIENTS, sensor="Dexcom", pump="Insulet", scenario=[(20, 50), (95, 30)], seed=8)
        controller = LoopController.for_simulator(sim, threads=threads, dosing_strategy="automatic_bolus")
        runs.append(run_trial(sim, controller, days=3 / 24, seed=8))
    for key in ("basal_u_per_h", "bolus_u", "bg"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


@pytest.mark.parametrize("threads", [0, 1.5, "2", True])
def test_threads_must_be_a_positive_integer(threads):
    with pytest.raises(Exception, match="threads"):
        LoopController.for_simulator(Simulator(["adult#001"], seed=0), threads=threads)


def test_default_threads_follow_the_cpus_and_omp_num_threads(monkeypatch):
    from pyloopkit.control import loop_controller

    sim = Simulator(["adult#001"], seed=0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpus = LoopController.for_simulator(sim).threads
    assert cpus >= 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert LoopController.for_simulator(sim).threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert LoopController.for_simulator(sim).threads == cpus
    monkeypatch.setattr(loop_controller.multiprocessing, "parent_process", lambda: object())
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert LoopController.for_simulator(sim).threads == 1


@pytest.mark.parametrize("case", ["one-minute decisions", "schedules changed"])
def test_members_the_compiled_step_leaves_and_new_schedules_give_the_python_path_result(case, monkeypatch):
    """Decisions every minute (more than seven readings in the momentum window: the compiled decision
    does not cover them, so every member falls back to the Python path inside the step), and new schedules
    set during the run (the compiled step's constants rebuilt): the same closed loop as the Python path."""
    if not core_kernel.HAVE_NUMBA:
        pytest.skip("needs numba (extra 'fast')")
    times = [f"{h:02d}:00" for h in range(24)]
    later = [{"basal_rate_start_times": times, "basal_rate_values": [0.6 + 0.05 * (h % 5) for h in range(24)],
              "sensitivity_ratio_start_times": times, "sensitivity_ratio_values": [40.0 + h for h in range(24)]}
             for _ in range(2)]
    runs, statuses = [], _counting(monkeypatch)
    for compiled in (True, False):
        sim = Simulator(["adult#004", "child#003"], sensor=None, pump="Insulet", scenario=[(30, 45)], seed=5,
                        start_hour=6.5)
        controller = LoopController.for_simulator(sim)
        if not compiled:
            per_member_path(controller)
        if case == "schedules changed":
            act = controller.act

            def act_and_switch(step, act=act, controller=controller):
                if step.time_min == 60.0:
                    controller.set_schedules(later)
                return act(step)

            controller.act = act_and_switch
        minutes = 1 if case == "one-minute decisions" else 5
        runs.append(run_trial(sim, controller, days=2 / 24, seed=5, step_minutes=minutes))
    for key in ("basal_u_per_h", "bolus_u", "bg"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    decided = sum(s != core_kernel.NOT_COVERED for s in statuses)
    if case == "one-minute decisions":
        assert statuses and decided < len(statuses)  # members fell back once the window held > 7 readings
    else:
        assert decided >= 0.8 * len(statuses)


def test_a_forked_child_runs_the_threaded_step(tmp_path):
    """The thread pool is not inherited by a forked child (it makes its own): the child's closed loop
    on two threads finishes and equals the parent's."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")

    def run(threads):
        sim = Simulator(PATIENTS[:4], sensor="Dexcom", pump="Insulet", scenario=[(15, 40)], seed=2)
        return run_trial(sim, LoopController.for_simulator(sim, threads=threads), days=1 / 24, seed=2)["basal_u_per_h"]

    parent = run(2)  # the parent's pool exists from here on
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=lambda: queue.put(run(2)))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0, "the forked child did not finish"
    np.testing.assert_array_equal(queue.get(timeout=5), parent)
