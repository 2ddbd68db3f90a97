"""Closed-loop Simulator and the basal-bolus reference controller."""
from __future__ import annotations

import numpy as np
import pytest

from pyloopkit.control import BasalBolusController
from pyloopkit.errors import InvalidInputError
from pyloopkit.simulation import Pump, Simulator, StepResult, load_patients, simulate_open_loop
from pyloopkit.simulation import simulator as simulator_module

STANDARD_DAY = [(7 * 60, 45.0), (12 * 60, 70.0), (18 * 60, 80.0)]  # simglucose's mean meal sizes


def _run(sim, steps, minutes=5, seed=None):
    result = sim.reset(seed)
    controller = BasalBolusController(sim.patients)
    out = [result]
    for _ in range(steps):
        result = sim.step(*controller.act(result), minutes=minutes)
        out.append(result)
    return out


def test_step_shapes_and_types():
    sim = Simulator(["adult#001", "child#002"], seed=0, n_episodes_per_patient=3)
    assert sim.n == 6 and sim.patients.names[:3] == ["adult#001"] * 3
    first = sim.reset(0)
    assert isinstance(first, StepResult) and first.time_min == 0.0
    assert first.bg_minutes.shape == (6, 0)
    result = sim.step(np.full(6, 1.0), 0.0, minutes=3)
    assert result.time_min == sim.time_min == 3.0
    for key in ("cgm", "bg", "carbs_g", "meal_announcement_g", "insulin_u"):
        value = getattr(result, key)
        assert value.shape == (6,) and value.dtype == np.float64 and np.isfinite(value).all()
    assert result.bg_minutes.shape == (6, 3)
    np.testing.assert_array_equal(result.bg, result.bg_minutes[:, -1])


def test_same_seed_replays_and_other_seeds_differ():
    sim = Simulator("adolescent", seed=5)
    a = _run(sim, 300, seed=5)
    b = _run(sim, 300, seed=5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.cgm, y.cgm)
        np.testing.assert_array_equal(x.bg_minutes, y.bg_minutes)
    c = _run(sim, 300, seed=6)
    assert not np.array_equal(np.stack([r.cgm for r in a]), np.stack([r.cgm for r in c]))
    fresh = Simulator("adolescent", seed=5)
    np.testing.assert_array_equal(_run(fresh, 300)[-1].cgm, a[-1].cgm)


def test_reset_without_seed_gives_new_episodes_and_episodes_differ():
    sim = Simulator("adult#003", seed=1, n_episodes_per_patient=2)
    first = np.stack([r.carbs_g for r in _run(sim, 288)])
    second = np.stack([r.carbs_g for r in _run(sim, 288)])
    assert not np.array_equal(first, second)
    assert not np.array_equal(first[:, 0], first[:, 1])
    again = np.stack([r.carbs_g for r in _run(sim, 288, seed=1)])
    np.testing.assert_array_equal(again, first)


def test_every_member_has_its_own_streams():
    """A patient repeated in the list is another episode (its k-th appearance is episode k), with
    other meals and noise; patients that share simglucose's ``i`` column (adolescent#001 and
    adult#001 both have i = 1, child#001 and child#010 both 100) still get different streams."""
    names = ["adult#001", "adolescent#001", "adult#001", "child#001", "child#010", "adult#001"]
    sim = Simulator(names, sensor="Dexcom", scenario="random", seed=3)
    np.testing.assert_array_equal(sim.episode, [0, 0, 1, 0, 0, 2])
    results = _run(sim, 288)
    meals = np.stack([r.carbs_g for r in results], axis=1) > 0
    noise = sim.sensor.noise(sim._seeds(1), 50)
    for a in range(len(names)):
        for b in range(a):
            assert not np.array_equal(meals[a], meals[b]), (names[a], names[b])
            assert not np.allclose(noise[a], noise[b]), (names[a], names[b])
    # The second appearance of adult#001 runs what n_episodes_per_patient=2 calls episode 1.
    pair = Simulator("adult#001", sensor="Dexcom", scenario="random", seed=3, n_episodes_per_patient=2)
    np.testing.assert_array_equal(_run(pair, 288)[-1].cgm[1], results[-1].cgm[2])


def test_members_do_not_depend_on_the_rest_of_the_batch():
    alone = Simulator("child#004", seed=9)
    batch = Simulator(["adult#001", "child#004"], seed=9)
    a, b = _run(alone, 100), _run(batch, 100)
    np.testing.assert_array_equal(a[-1].cgm[0], b[-1].cgm[1])


@pytest.mark.parametrize("dt_min", [1.0, 0.5])
def test_closed_loop_equals_open_loop_with_the_same_inputs(dt_min):
    """Ideal pump, noiseless sensor, fixed meals: the step kernel reproduces simulate_open_loop exactly."""
    patients = load_patients(["adult#002", "adolescent#007"])
    meals = [(12, 30.0), (100, 20.0)]
    sim = Simulator(patients, sensor=None, pump=None, scenario=meals, seed=0, dt_min=dt_min)
    sim.reset(0)
    basal_u_per_h = np.array([0.7, 1.3])
    boluses = {10: np.array([2.0, 4.0]), 20: np.array([1.0, 0.0])}
    minutes, steps = 3, 60
    carbs = np.zeros((2, minutes * steps))
    insulin = np.repeat(basal_u_per_h[:, None] / 60.0, minutes * steps, axis=1)
    for minute, grams in meals:
        carbs[:, minute] = grams
    traces = []
    for k in range(steps):
        bolus = boluses.get(k, np.zeros(2))
        insulin[:, minutes * k] += bolus
        result = sim.step(basal_u_per_h, bolus, minutes)
        traces.append(result.bg_minutes)
        np.testing.assert_allclose(result.insulin_u, basal_u_per_h * minutes / 60.0 + bolus, rtol=1e-12)
        np.testing.assert_array_equal(result.cgm, result.bg)
    reference = simulate_open_loop(patients, carbs, insulin, dt_min=dt_min)
    np.testing.assert_allclose(np.concatenate(traces, axis=1), reference.bg[:, 1:], rtol=1e-12)


def test_numpy_step_matches_compiled_step():
    compiled = _run(Simulator("all", seed=2), 60)
    sim = Simulator("all", seed=2)
    sim._kernel = simulator_module._step_numpy
    vectorised = _run(sim, 60)
    for a, c in zip(compiled, vectorised):
        np.testing.assert_allclose(a.bg_minutes, c.bg_minutes, rtol=1e-9)
        np.testing.assert_allclose(a.cgm, c.cgm, rtol=1e-9)
        np.testing.assert_array_equal(a.insulin_u, c.insulin_u)


def test_pump_rounding_and_limits_are_reported_in_insulin_delivered():
    sim = Simulator("adult#001", sensor=None, pump="Insulet", scenario=None, seed=0)
    result = sim.step(0.123, 3.14159, minutes=6)
    assert result.insulin_u[0] == pytest.approx(0.1 * 6 / 60 + 3.15, rel=1e-12)
    result = sim.step(45.0, 31.0, minutes=6)
    assert result.insulin_u[0] == pytest.approx(30.0 * 6 / 60 + 30.0, rel=1e-12)


def test_invalid_requests_raise_and_leave_the_state_untouched():
    sim = Simulator(["adult#001", "adult#002"], seed=0)
    before = sim._x.copy()
    with pytest.raises(InvalidInputError) as error:
        sim.step(np.array([1.0, -1.0]))
    assert [(p.field, p.index, p.value) for p in error.value.problems] == [("basal_u_per_h", 1, -1.0)]
    with pytest.raises(InvalidInputError, match="bolus_u"):
        sim.step(1.0, np.array([np.nan, 0.0]))
    with pytest.raises(InvalidInputError, match="shape"):
        sim.step(np.ones(3))
    with pytest.raises(InvalidInputError, match="minutes"):
        sim.step(1.0, minutes=0)
    np.testing.assert_array_equal(sim._x, before)
    assert sim.time_min == 0.0
    with pytest.raises(InvalidInputError):
        Simulator("adult#001", scenario="fixed")
    with pytest.raises(InvalidInputError):
        Simulator("adult#001", n_episodes_per_patient=0)


def test_meal_announcement_carbs_and_cgm_sampling():
    sim = Simulator("adult#001", sensor="Dexcom", pump=None, scenario=[(60, 50.0)], seed=4, record_minutes=True)
    results = _run(sim, 40, minutes=5)
    announcements = np.array([r.meal_announcement_g[0] for r in results])
    assert announcements[12] == 50.0 and np.count_nonzero(announcements) == 1  # step ending at minute 60
    carbs = np.array([r.carbs_g[0] for r in results])
    np.testing.assert_allclose(carbs[13:15], [25.0, 25.0])  # eaten at 5 g/min over minutes 60-69
    assert carbs.sum() == 50.0
    assert results[13].insulin_u[0] > 50.0 / sim.patients.CR[0]  # the controller's meal bolus
    history = sim.history
    assert history["bg_minutes"].shape == (1, 201) and history["cgm"].shape == (1, 41)
    # Dexcom samples every 3 min: with 1-min steps the reading only changes at multiples of 3
    sim = Simulator("adult#001", sensor="Dexcom", scenario=None, seed=4)
    readings = [sim.step(1.0, 0.0, minutes=1).cgm[0] for _ in range(12)]
    assert all(readings[k] == readings[k - 1] for k in range(1, 12) if (k + 1) % 3 != 0)


def test_cgm_is_clipped_to_the_sensor_range():
    sim = Simulator("child#001", sensor="Dexcom", pump=None, scenario=None, seed=0)
    sim.reset(0)
    result = sim.step(0.0, 60.0, minutes=600)
    assert result.bg[0] < 39.0
    assert result.cgm[0] == 39.0


def test_history_requires_recording():
    with pytest.raises(InvalidInputError, match="record_minutes"):
        Simulator("adult#001", seed=0).history


def test_basal_bolus_keeps_the_thirty_patients_plausible_over_a_day():
    """Standard day (45/70/80 g at 7, 12 and 18 h), Dexcom noise, Insulet pump, decisions every 5 min.

    Adults and adolescents: no level-2 hypoglycaemia (< 54 mg/dL), nothing above 300 mg/dL.
    Children: simglucose's own BBController on this day (its env, Dexcom seed 1) reaches 29.5 mg/dL
    for child#004 and 438 mg/dL for child#008 (the children's Quest.csv ratios are aggressive in
    this model), so they are only held to 20-500 mg/dL.
    """
    sim = Simulator("all", scenario=STANDARD_DAY, seed=0)
    results = _run(sim, 288)
    bg = np.concatenate([r.bg_minutes for r in results[1:]], axis=1)
    assert np.isfinite(bg).all()
    groups = np.array(sim.patients.groups)
    grown_up = groups != "child"
    assert bg[grown_up].min() > 54.0 and bg[grown_up].max() < 300.0
    assert bg[~grown_up].min() > 20.0 and bg[~grown_up].max() < 500.0
    in_range = ((bg >= 70) & (bg <= 180)).mean(axis=1)
    assert np.median(in_range[grown_up]) > 0.8


def test_basal_bolus_controller_rule():
    patients = load_patients(["adult#001", "adult#002"])
    controller = BasalBolusController(patients)
    step = StepResult(0.0, np.array([200.0, 120.0]), np.zeros(2), np.empty((2, 0)), np.zeros(2),
                      np.array([60.0, 30.0]), np.zeros(2))
    basal, bolus = controller.act(step)
    np.testing.assert_allclose(basal, patients.u2ss * patients.BW / 6000.0 * 60.0)
    np.testing.assert_allclose(bolus, [60.0 / patients.CR[0] + (200.0 - 140.0) / patients.CF[0], 30.0 / patients.CR[1]])
    no_meal = StepResult(0.0, np.array([250.0, 250.0]), np.zeros(2), np.empty((2, 0)), np.zeros(2), np.zeros(2),
                         np.zeros(2))
    np.testing.assert_array_equal(controller.act(no_meal)[1], 0.0)


def test_ideal_pump_object_and_sensor_none():
    sim = Simulator("adult#001", sensor=None, pump=Pump.ideal(), scenario=None, seed=0)
    result = sim.step(0.0123, 0.0, minutes=10)
    assert result.insulin_u[0] == pytest.approx(0.0123 * 10 / 60, rel=1e-12)


def test_restart_members_returns_them_to_the_initial_state():
    sim = Simulator(["adult#001", "adult#002", "child#001"], sensor=None, scenario=[(0, 40.0)], seed=0)
    for _ in range(20):
        result = sim.step(1.0, 0.0, minutes=5)
    cgm, bg = sim.restart_members([0, 2])
    np.testing.assert_array_equal(sim._x[[0, 2]], sim.patients.x0[[0, 2]])
    assert not np.array_equal(sim._x[1], sim.patients.x0[1])
    initial_bg = sim.patients.x0[[0, 2], 12] / sim.patients.Vg[[0, 2]]  # Gs / Vg: Gb of vpatient_params.csv
    np.testing.assert_allclose(bg, initial_bg)
    np.testing.assert_allclose(sim.patients.Gb[[0, 2]], initial_bg, rtol=1e-4)
    np.testing.assert_array_equal(cgm, bg)  # no sensor: CGM is BG
    assert sim._cgm[1] == result.cgm[1]
    after = sim.step(1.0, 0.0, minutes=5)
    assert after.time_min == 105.0 and np.isfinite(after.bg).all()
    # With a sensor the new reading is the new BG plus the noise of the current sample.
    sim = Simulator(["adult#001", "adult#002"], sensor="Dexcom", scenario=None, seed=6)
    sim.step(1.0, 0.0, minutes=30)
    cgm, bg = sim.restart_members(np.array([False, True]))
    noise = sim.sensor.noise(sim._seeds(1), 11)[1, 30 // 3]
    assert cgm[0] == pytest.approx(bg[0] + noise, rel=1e-12)
    assert sim.step(1.0, 0.0, minutes=1).cgm[1] == cgm[0]  # held until the next sample at minute 33


def test_without_numba_the_numpy_paths_give_the_same_simulation():
    """Block numba in a fresh interpreter: the fallback runs and reproduces the compiled results."""
    import json
    import subprocess
    import sys

    program = (
        "import sys, warnings\n"
        "sys.modules['numba'] = None\n"
        "warnings.simplefilter('ignore', RuntimeWarning)\n"
        "import numpy as np\n"
        "from pyloopkit.simulation import Simulator\n"
        "from pyloopkit.simulation.model import HAVE_NUMBA\n"
        "from pyloopkit.control import BasalBolusController\n"
        "assert not HAVE_NUMBA\n"
        "sim = Simulator(['adult#004', 'child#006'], seed=8)\n"
        "controller = BasalBolusController(sim.patients)\n"
        "result = sim.reset()\n"
        "for _ in range(100):\n"
        "    result = sim.step(*controller.act(result))\n"
        "import json\n"
        "print(json.dumps({'bg': result.bg.tolist(), 'cgm': result.cgm.tolist()}))\n"
    )
    output = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    fallback = json.loads(output)
    compiled = _run(Simulator(["adult#004", "child#006"], seed=8), 100)[-1]
    np.testing.assert_allclose(fallback["bg"], compiled.bg, rtol=1e-9)
    np.testing.assert_allclose(fallback["cgm"], compiled.cgm, rtol=1e-9)
