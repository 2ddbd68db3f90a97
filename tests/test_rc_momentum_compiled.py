"""The compiled retrospective correction and momentum passes equal their numpy array paths bit
for bit (issue 9: speed without changing a single number).

- ``correction_from_effects(validate=False)`` (the core's call): standard and integral RC, stepwise
  and continuous decay, on random ICE and carb effects, every result field identical;
- ``recent_momentum_effect``: random glucose windows, gradual-transition threshold, slope cap;
- the compiled ``np.sum`` equals numpy's (pairwise order) for 0..300 values;
- the edge cases: no glucose, no ICE, one ICE, a stale discrepancy, refused decay inputs, too few,
  discontinuous or too many (array path) momentum samples;
- ``core()`` on closed-loop inputs with LoopAlgorithm's settings (integral RC, gradual-transition
  threshold, slope cap), compiled vs array paths.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pyloopkit import glucose_math
from pyloopkit import retrospective_correction as rc
from pyloopkit.carb_math import pairwise_sum
from pyloopkit.control import LoopController
from pyloopkit.control.trial import run_trial
from pyloopkit.errors import InvalidInputError
from pyloopkit.jit import HAVE_NUMBA
from pyloopkit.loop_data_manager import core, model_for
from pyloopkit.simulation import Simulator
from tests.conftest import assert_compiled_equals_numpy, per_member_path

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (extra 'fast')")

METHODS = [("standard", False), ("standard", True), ("integral", True), ("integral", False)]
FIELDS = ("total_mgdl", "proportional_mgdl", "integral_mgdl", "differential_mgdl", "effect_duration_min")


ARRAY_ENTRY = {rc: "discrepancies", glucose_math: "momentum_effect"}
"""The array path's first step in each module: called by the compiled run only where it falls back."""


def _both(module, monkeypatch, call, fallbacks: list | None = None):
    """``call()`` with the module's compiled pass, then with its array path; appends to
    ``fallbacks`` whether the compiled run fell back to the array path."""
    results = []
    for compiled in (True, False):
        monkeypatch.setattr(module, "HAVE_NUMBA", compiled)
        entry = getattr(module, ARRAY_ENTRY[module])
        used = []
        monkeypatch.setattr(module, ARRAY_ENTRY[module], lambda *a, **k: used.append(1) or entry(*a, **k))
        results.append(call())
        monkeypatch.setattr(module, ARRAY_ENTRY[module], entry)
        if compiled and fallbacks is not None:
            fallbacks.append(bool(used))
    return results


def _assert_same_correction(a, b) -> None:
    assert type(a) is type(b)
    assert_compiled_equals_numpy(a.dates_s, b.dates_s)
    assert_compiled_equals_numpy(a.values_mgdl, b.values_mgdl)
    for name in FIELDS:
        x, y = getattr(a, name, None), getattr(b, name, None)
        assert (x is None and y is None) or type(x) is type(y), name
        if x is not None:
            assert_compiled_equals_numpy(x, y)
    if isinstance(a, rc.IntegralCorrectionResult):
        assert_compiled_equals_numpy(a.recent_discrepancies_mgdl, b.recent_discrepancies_mgdl)


def _random_rc_case(rng: np.random.Generator):
    """Glucose-dated ICE (5-min or jittered, sometimes long same-sign runs, sometimes zeros and
    signed zeros), an optional carb effect on the 5-min grid starting before or after the ICE,
    the latest glucose and the calculation time."""
    n = int(rng.integers(0, 70))
    dates = 7e8 + np.cumsum(rng.choice([250.0, 300.0, 300.0, 301.0, 420.0, 900.0], n + 1))
    if rng.random() < 0.5:
        dates = dates + rng.uniform(0.0, 30.0, n + 1).cumsum()
    velocity = rng.normal(0.0, 1.5, n) * 10.0 ** rng.integers(-3, 1, n)
    if rng.random() < 0.4:
        velocity = np.abs(velocity) * rng.choice([-1.0, 1.0])
    if rng.random() < 0.1:
        velocity[rng.random(n) < 0.3] = rng.choice([0.0, -0.0])
    carb = (np.empty(0), np.empty(0))
    if rng.random() < 0.7:
        first = np.floor(dates[0] / 300.0) * 300.0 + 300.0 * rng.integers(-10, 20)
        grid = first + 300.0 * np.arange(rng.integers(0, 90))
        carb = (grid, np.cumsum(rng.uniform(0.0, 4.0, grid.size)))
    glucose_s = dates[-1] + rng.choice([0.0, 0.0, 120.0, 899.0, 901.0, 2000.0])
    now_s = glucose_s + rng.choice([0.0, 150.0, -300.0, -1200.0])
    return (np.array([glucose_s - 300.0, glucose_s]), np.array([120.0, float(rng.uniform(40.0, 400.0))]),
            (dates[:-1], dates[1:], velocity), carb, now_s)


@pytest.mark.parametrize("seed", range(3))
def test_compiled_correction_equals_the_array_path(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    found, runs, fallbacks = 0, [], []
    for _ in range(400):
        glucose_s, glucose_mgdl, ice, carb, now_s = _random_rc_case(rng)
        for method, continuous in METHODS:
            a, b = _both(rc, monkeypatch, lambda: rc.correction_from_effects(
                glucose_s, glucose_mgdl, ice, carb, now_s=now_s, method=method, continuous_decay=continuous,
                validate=False), fallbacks)
            _assert_same_correction(a, b)
            found += a.total_mgdl is not None
            if method == "integral":
                runs.append(a.recent_discrepancies_mgdl.size)
    assert found > 600 and max(runs) >= 9 and 0 in runs  # pairwise-summed runs and empty runs met
    assert not any(fallbacks)


@pytest.mark.parametrize("method,continuous", METHODS)
def test_compiled_correction_edge_cases(method, continuous, monkeypatch):
    one = (np.array([0.0]), np.array([300.0]), np.array([1.5]))
    none = (np.empty(0), np.empty(0), np.empty(0))
    carb = (np.array([0.0, 300.0, 600.0]), np.array([0.0, 2.0, 3.0]))
    cases = [
        (np.empty(0), np.empty(0), one, carb, 300.0),  # no glucose: no effect
        (np.array([300.0]), np.array([110.0]), none, carb, 300.0),  # no ICE
        (np.array([300.0]), np.array([110.0]), one, (np.empty(0), np.empty(0)), 300.0),  # one ICE, no carbs
        (np.array([300.0]), np.array([110.0]), one, carb, 300.0),  # one ICE minus a carb step
        (np.array([300.0]), np.array([110.0]), one, carb, 299.0),  # the ICE is not known yet
        (np.array([1250.0]), np.array([110.0]), one, carb, 1250.0),  # stale: 950 s > 15 min
        (np.array([300.0]), np.array([110.0]), (*one[:2], np.array([-0.0])), none[:2], 300.0),  # total -0.0
        (np.array([1200.0]), np.array([110.0]), one, carb, 1200.0),  # exactly 15 min: still recent
    ]
    fallbacks = []
    for glucose_s, glucose_mgdl, ice, effect, now_s in cases[1:]:
        a, b = _both(rc, monkeypatch, lambda: rc.correction_from_effects(
            glucose_s, glucose_mgdl, ice, effect, now_s=now_s, method=method, continuous_decay=continuous,
            validate=False), fallbacks)
        _assert_same_correction(a, b)
    assert not any(fallbacks)
    for compiled in (True, False):
        monkeypatch.setattr(rc, "HAVE_NUMBA", compiled)
        empty = rc.correction_from_effects(*cases[0][:4], now_s=300.0, method=method, validate=False)
        assert empty.dates_s.size == 0 and empty.total_mgdl is None
    assert a.total_mgdl == 1.5 * 5.0 - (3.0 - 2.0)  # the last case: velocity x 5 min minus the carb step after it
    # a decay the array path refuses (duration not above 5 min; non-finite velocity) raises either way
    for duration_min, velocity in ((5.0, 1.5), (60.0, 1e308)):
        ice = (np.array([0.0]), np.array([300.0]), np.array([velocity]))
        for compiled in (True, False):
            monkeypatch.setattr(rc, "HAVE_NUMBA", compiled)
            with pytest.raises((InvalidInputError, ZeroDivisionError)), np.errstate(over="ignore"):
                rc.correction_from_effects(np.array([300.0]), np.array([110.0]), ice, carb, now_s=300.0,
                                           method=method, effect_duration_min=duration_min, validate=False)
    with pytest.raises(InvalidInputError, match="grouping_interval_min"):
        rc.correction_from_effects(np.array([300.0]), np.array([110.0]), one, carb, now_s=300.0, method=method,
                                   grouping_interval_min=0.0, validate=False)


def test_pairwise_sum_follows_numpys_order():
    """The compiled sum the integral RC uses adds in numpy's (pairwise) order: the same bits as np.sum."""
    rng = np.random.default_rng(5)
    for n in range(301):
        for _ in range(20):
            values = rng.normal(0.0, 10.0, n) * 10.0 ** rng.integers(-6, 7, n)
            assert pairwise_sum(values, 0, n) == np.sum(values)


def _random_glucose(rng: np.random.Generator):
    n = int(rng.integers(0, 22))
    step = float(rng.choice([60.0, 300.0, 297.3, 310.0, 420.0]))
    if rng.random() < 0.5:
        dates = 7e8 + np.cumsum(rng.uniform(0.5, 1.5, n) * step)
    else:
        dates = 7e8 + step * np.arange(1, n + 1)
    values = 100.0 + np.cumsum(rng.normal(0.0, 5.0, n)) * 10.0 ** rng.integers(-2, 2)
    now_s = (dates[-1] if n else 7e8) + float(rng.uniform(-100.0, 400.0))
    return dates, values, now_s


@pytest.mark.parametrize("seed", range(3))
def test_compiled_momentum_equals_the_array_path(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    effects, fallbacks = 0, []
    for k in range(2000):
        dates, values, now_s = _random_glucose(rng)
        options = dict(data_interval_min=float(rng.choice([10.0, 15.0, 30.0, 60.0])),
                       velocity_max_mgdl_per_min=[None, 4.0, 0.5, -1.0][k % 4],
                       gradual_threshold_mgdl=[None, 40.0, 5.0][k % 3])
        a, b = _both(glucose_math, monkeypatch,
                     lambda: glucose_math.recent_momentum_effect(dates, values, now_s, **options), fallbacks)
        assert_compiled_equals_numpy(a[0], b[0])
        assert_compiled_equals_numpy(a[1], b[1])
        effects += a[0].size > 0
    assert effects > 500 and 200 < fallbacks.count(True) < 1000


def test_compiled_momentum_edge_cases(monkeypatch):
    grid = 300.0 * (2_333_334 + np.arange(20))  # on the 5-min grid
    rising = 100.0 + 3.0 * np.arange(20)
    cases = [
        (grid[:2], rising[:2], grid[1], {}),  # too few samples
        (grid[:3], rising[:3], grid[2], {}),  # three samples: 3 mg/dL per 5 min
        (grid[[0, 1, 5]], rising[:3], grid[5], {"data_interval_min": 30.0}),  # not continuous
        (grid[:4], np.array([100.0, 150.0, 151.0, 152.0]), grid[3], {"gradual_threshold_mgdl": 40.0}),
        (grid[:4], rising[:4], grid[3], {"gradual_threshold_mgdl": 40.0}),
        (grid[:4], rising[:4], grid[3], {"gradual_threshold_mgdl": 3.0}),  # steps equal to it: gradual
        (grid[0] + np.array([0.0, 450.0, 900.0]), rising[:3], grid[3], {}),  # 900 s = 300 s x 3: not continuous
        (grid[:4], rising[:4], grid[3], {"velocity_max_mgdl_per_min": 0.1}),  # capped at 0.1 mg/dL/min
        (grid, rising, grid[-1], {"data_interval_min": 100.0}),  # 20 samples: the array path
        (grid[0] + 60.0 * np.arange(20), rising, grid[0] + 60.0 * 19, {}),  # 1-min CGM: 16 samples, array path
        (grid[0] + 120.0 * np.arange(8), rising[:8], grid[0] + 840.0, {}),  # 8 samples: the array path
        (grid[0] + 150.0 * np.arange(7), rising[:7], grid[0] + 900.0, {}),  # 7 samples: compiled
    ]
    results, fallbacks = [], []
    for dates, values, now_s, options in cases:
        options = {"data_interval_min": 15.0} | options
        a, b = _both(glucose_math, monkeypatch,
                     lambda: glucose_math.recent_momentum_effect(dates, values, now_s, **options), fallbacks)
        assert_compiled_equals_numpy(a[0], b[0])
        assert_compiled_equals_numpy(a[1], b[1])
        results.append(a)
    assert [r[0].size for r in results] == [0, 4, 0, 0, 4, 4, 0, 4, 21, 5, 5, 4]
    assert fallbacks == [False] * 8 + [True] * 3 + [False]
    np.testing.assert_allclose(results[1][1], [0.0, 3.0, 6.0, 9.0], rtol=1e-12)
    np.testing.assert_allclose(results[7][1], [0.0, 0.5, 1.0, 1.5], rtol=1e-12)


@pytest.mark.parametrize("strategy", ["temp_basal", "automatic_bolus"])
def test_core_with_loop_algorithm_settings_equals_the_array_paths(strategy, monkeypatch):
    """A short closed loop; at every decision ``core()`` with integral RC (continuous decay), a
    gradual-transition threshold and a slope cap, compiled vs array paths: bit for bit."""
    sim = Simulator(["adult#004", "child#003"], sensor="Dexcom", pump="Insulet", scenario="random", seed=3,
                    start_hour=6.5)
    controller = LoopController.for_simulator(sim, dosing_strategy=strategy)
    decide, compared = controller._run, []
    per_member_path(controller)

    def run(i, now_min, glucose, bolus=True):
        inp = controller.loop_input(i, now_min, glucose)
        settings = dataclasses.replace(inp.settings, retrospective_correction="integral", max_physiologic_slope=1.0,
                                       gradual_transitions_threshold=float([40.0, 8.0][i]))
        inp = dataclasses.replace(inp, settings=settings)
        fast, plain = _both_modules(monkeypatch, lambda: core(inp, model_for(inp.settings), iob_timeline=True))
        for x, y in zip([*fast.effects.momentum, *fast.effects.retrospective, *fast.prediction],
                        [*plain.effects.momentum, *plain.effects.retrospective, *plain.prediction], strict=True):
            np.testing.assert_array_equal(x, y)  # bit for bit
        assert fast.recommendations == plain.recommendations
        compared.append((fast.effects.momentum[0].size > 0, fast.effects.retrospective[0].size > 0))
        return decide(i, now_min, glucose, bolus)

    controller._run = run
    run_trial(sim, controller, days=3 / 24, seed=3)
    assert len(compared) >= 2 * 36
    assert any(m for m, _ in compared) and any(r for _, r in compared)


def _both_modules(monkeypatch, call):
    results = []
    for compiled in (True, False):
        monkeypatch.setattr(rc, "HAVE_NUMBA", compiled)
        monkeypatch.setattr(glucose_math, "HAVE_NUMBA", compiled)
        results.append(call())
    return results
