"""The carb step of the Loop core as one compiled pass (issue 9): ``carb_store.effects_and_cob``
with ``validate=False`` gives bit for bit the numbers of the array path (window, default
absorption times, ISF/CR look-ups, entry and ICE order, absorption mapping, grids, dynamic or
static effects and COB, numpy's order of summing over entries, pairwise for a one-date grid),
and the shared compiled helpers equal their plain-Python runs.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pyloopkit import carb_math, carb_store
from pyloopkit.jit import HAVE_NUMBA
from pyloopkit.schedule import DailySchedule, value_at

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (extra 'fast')")

MODELS = ("parabolic", "linear", "piecewise_linear", "adaptive")


def _schedule(rng: np.random.Generator, low: float, high: float) -> DailySchedule:
    """One item or several (starts on and off the hour), with a local offset or none."""
    n = int(rng.choice([1, 1, 2, 5]))
    starts = np.concatenate([[0.0], np.sort(rng.choice(np.arange(1, 48) * 1800.0, n - 1, replace=False))])
    starts = starts + np.concatenate([[0.0], (rng.random(n - 1) < 0.3) * rng.uniform(0.0, 1000.0, n - 1)])
    return DailySchedule(starts, rng.uniform(low, high, n), float(rng.choice([0.0, -18000.0, 19800.0])))


def _inputs(rng: np.random.Generator, model: str):
    """A core-like input (entries with ties, zero grams, default absorption times, entries long
    before the window) and a counteraction on the 5-min grid, sometimes out of start order."""
    n = int(rng.integers(1, 9))
    dates = rng.choice(np.arange(-150, 100) * 300.0, n) + (rng.random(n) < 0.3) * rng.uniform(0.0, 300.0, n)
    if n > 1 and rng.random() < 0.5:
        dates[1] = dates[0]
    grams = rng.choice([0.0, 10.0, 25.0, 40.0], n) + (rng.random(n) < 0.5) * rng.uniform(0.0, 90.0, n)
    minutes = np.where(rng.random(n) < 0.3, np.nan, rng.choice([120.0, 180.0, 240.0, 97.5], n))
    settings = SimpleNamespace(default_absorption_times=(120.0, float(rng.choice([180.0, 150.0])), 240.0),
                               carb_delay=float(rng.choice([0.0, 10.0, 15.0])), carb_absorption_model=model,
                               dynamic_carb_absorption_enabled=True)
    inp = SimpleNamespace(carb_s=dates, carb_g=grams, carb_absorption_min=minutes, settings=settings,
                          sensitivity=_schedule(rng, 20.0, 120.0), carb_ratio=_schedule(rng, 5.0, 25.0))
    m = int(rng.integers(0, 200))
    ice_start = np.arange(m) * 300.0 - 30000.0 + rng.uniform(-50.0, 50.0)
    ice_end = np.maximum.accumulate(ice_start + rng.choice([290.0, 300.0, 310.0], m))
    velocity = rng.normal(1.0, 2.0, m)
    if rng.random() < 0.2:
        shuffle = rng.permutation(m)
        ice_start, ice_end, velocity = ice_start[shuffle], ice_end[shuffle], velocity[shuffle]
    return inp, (ice_start, ice_end, velocity)


def _array_path(monkeypatch, inp, counteraction, **starts):
    """``effects_and_cob`` through the array path: no compiled pass, numpy dynamic and static formulas, the
    shared helpers run as plain Python."""
    with monkeypatch.context() as patch:
        patch.setattr(carb_math, "HAVE_NUMBA", False)
        patch.setattr(carb_math, "_mapped", carb_math._mapped.py_func)
        patch.setattr(carb_math, "_grid_between", carb_math._grid_between.py_func)
        return carb_store.effects_and_cob(inp, counteraction, validate=False, **starts)


def _assert_same(a, b) -> None:
    for (dates_a, values_a), (dates_b, values_b) in zip(a, b, strict=True):
        for x, y in ((dates_a, dates_b), (values_a, values_b)):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)  # no tolerance


@pytest.mark.parametrize("absorption", ["dynamic", "static", "no counteraction"])
@pytest.mark.parametrize("model", MODELS)
def test_compiled_carb_step_equals_the_array_path(model, absorption, monkeypatch):
    """300 random inputs per model, dynamic or static absorption (setting off, or no counteraction):
    effect and COB timelines bit for bit, non-empty and empty windows reached."""
    rng = np.random.default_rng(MODELS.index(model))
    seen = set()
    for _ in range(300):
        inp, counteraction = _inputs(rng, model)
        inp.settings.dynamic_carb_absorption_enabled = absorption != "static"
        counteraction = None if absorption == "no counteraction" else counteraction
        now = float(rng.choice([0.0, 3000.0, 6000.0])) + rng.choice([0.0, 123.0])
        starts = dict(effect_start_s=now - float(rng.choice([1800.0, 3600.0])) + rng.choice([0.0, 17.0]),
                      cob_start_s=now - 300.0)
        compiled = carb_store.effects_and_cob(inp, counteraction, validate=False, **starts)
        _assert_same(compiled, _array_path(monkeypatch, inp, counteraction, **starts))
        seen.add(compiled[0][0].size > 0)
    assert seen == {True, False}


@pytest.mark.parametrize("model", MODELS)
def test_many_finished_entries_sum_as_numpy_does(model, monkeypatch):
    """8 to 40 entries that all finished absorbing before the effect start: the effect timeline is
    one date, where numpy sums the entries pairwise (not in order); compiled pass, compiled dynamic
    kernel and array path agree bit for bit."""
    rng = np.random.default_rng(20 + MODELS.index(model))
    one_date = 0
    for _ in range(40):
        inp, counteraction = _inputs(rng, model)
        n = int(rng.integers(8, 41))
        inp.carb_s = rng.uniform(-32000.0, -25000.0, n)
        inp.carb_g = rng.uniform(1.0, 60.0, n)
        inp.carb_absorption_min = np.where(rng.random(n) < 0.3, np.nan, 120.0)
        inp.settings.default_absorption_times = (120.0, 120.0, 240.0)
        starts = dict(effect_start_s=-3600.0, cob_start_s=-300.0)
        compiled = carb_store.effects_and_cob(inp, counteraction, validate=False, **starts)
        _assert_same(compiled, _array_path(monkeypatch, inp, counteraction, **starts))
        _assert_same(compiled, carb_store.effects_and_cob(inp, counteraction, validate=True, **starts))
        one_date += compiled[0][0].size == 1
    assert one_date >= 30


@pytest.mark.parametrize("n", [*range(0, 20), 31, 127, 128, 129, 136, 300, 1031])
def test_entry_sums_follow_numpy(n):
    """Summing entries over an (entries, dates) array: numpy's order, pairwise for one date."""
    rng = np.random.default_rng(n)
    values = rng.normal(size=(n, 3)) * 10.0 ** rng.uniform(-5.0, 5.0, (n, 3))
    for dates in (1, 2, 3):
        out, column = np.zeros(dates), np.zeros(n)
        for e in range(n):
            for j in range(dates):
                carb_math._accumulate(out, column, e, j, values[e, j])
        assert carb_math._entry_sums(out, column).tobytes() == values[:, :dates].sum(axis=0).tobytes()


def test_compiled_carb_step_covers_every_phase():
    """The random inputs above reach entries with less than the minimum absorption observed (modelled),
    with an observed timeline, and fully predicted ones (no ICE credited yet)."""
    rng = np.random.default_rng(0)
    phases = set()
    for _ in range(300):
        inp, counteraction = _inputs(rng, "parabolic")
        status = carb_store.carb_status(inp, counteraction, start_s=0.0, validate=False)
        phases.update(zip(status.has_timeline.tolist(), (status.timeline_stop > status.timeline_first).tolist()))
    assert phases >= {(True, True), (True, False), (False, True)}


def test_mapping_columns_equal_their_plain_python_run():
    """``_mapped`` compiled and as plain Python (the ``PYLOOPKIT_JIT=never`` run) on sorted entries."""
    rng = np.random.default_rng(5)
    for model_id in (0, 1, 2):
        for _ in range(50):
            inp, (ice_start, ice_end, velocity) = _inputs(rng, "parabolic")
            order = np.argsort(ice_start, kind="stable")
            dates = np.sort(inp.carb_s)
            arguments = (model_id, dates, np.full(dates.size, 30.0), np.full(dates.size, 10800.0),
                         rng.uniform(2.0, 10.0, dates.size), ice_start[order], ice_end[order], velocity[order],
                         1.5, float(rng.choice([1.0, 1.5])), 600.0, bool(model_id == 2), 0.2)
            for x, y in zip(carb_math._mapped(*arguments), carb_math._mapped.py_func(*arguments), strict=True):
                assert x.dtype == y.dtype
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("start_s, end_s", [(0.0, 0.0), (-17.0, 3.0), (299.9, 300.1), (1e5 + 0.5, 2e5 - 0.5),
                                            (600.0, 0.0)])
def test_grid_equals_its_plain_python_run(start_s, end_s):
    """The simulation grid compiled and as plain Python: same dates, at least one."""
    compiled = carb_math._grid_between(start_s, end_s, 300.0)
    np.testing.assert_array_equal(compiled, carb_math._grid_between.py_func(start_s, end_s, 300.0))
    assert compiled.size >= 1 and compiled[0] == np.floor(start_s / 300.0) * 300.0


def test_schedule_lookup_and_entry_order_equal_numpy():
    """The compiled ISF/CR look-up equals ``DailySchedule.at`` and the entry (or ICE) order
    ``np.lexsort`` (ties, signed zeros, one key or several)."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        schedule = _schedule(rng, 1.0, 100.0)
        seconds = rng.uniform(-3e5, 3e5, 50)
        seconds[:5] = schedule.start_s[0] - schedule.offset_s + 86400.0 * rng.integers(-3, 3, 5)  # item starts
        looked_up = [value_at(*carb_math._schedule_arrays(schedule), s) for s in seconds]
        np.testing.assert_array_equal(looked_up, schedule.at(seconds))
        keys = rng.choice([0.0, -0.0, 1.0, 2.0], (int(rng.integers(0, 300)), int(rng.integers(1, 5))))
        np.testing.assert_array_equal(carb_math._stable_order(keys), np.lexsort(keys.T[::-1]))


def test_compiled_pass_is_skipped_where_it_does_not_apply(monkeypatch):
    """Checked calls, object absorption times (None for the default) and two-column schedules
    take the array path: no compiled call."""
    inp, counteraction = _inputs(np.random.default_rng(11), "parabolic")
    starts = dict(effect_start_s=-1800.0, cob_start_s=-300.0)
    listed = SimpleNamespace(**{**vars(inp), "carb_absorption_min": [None] * inp.carb_s.size})
    two_column = SimpleNamespace(**{**vars(inp), "sensitivity": DailySchedule(np.zeros(1), np.array([[40.0, 50.0]]))})
    assert carb_store._compiled_applies(inp)
    assert not carb_store._compiled_applies(listed) and not carb_store._compiled_applies(two_column)
    calls = []
    for kernel in ("_dynamic_pass", "_static_pass"):
        monkeypatch.setattr(carb_math, kernel, lambda *a: calls.append(a))
    carb_store.effects_and_cob(inp, counteraction, validate=True, **starts)
    carb_store.effects_and_cob(listed, counteraction, validate=False, **starts)
    assert calls == []


@pytest.mark.parametrize("model", MODELS[:3])
def test_compiled_static_curves_equal_the_array_path(model, monkeypatch):
    """``carbs_on_board`` / ``carb_effects`` (modelled absorption) compiled and in numpy, on grids of
    one date and many, entries before, inside and after them."""
    rng = np.random.default_rng(30 + MODELS.index(model))
    for _ in range(100):
        n = int(rng.integers(1, 20))
        entries = (rng.uniform(-30000.0, 30000.0, n), rng.uniform(0.0, 90.0, n), rng.choice([7200.0, 10800.5], n))
        grid = rng.uniform(-40000.0, 40000.0) + 300.0 * np.arange(int(rng.choice([1, 2, 150])))
        delay_s = float(rng.choice([0.0, 600.0]))
        effects = (carb_math.carb_effects, (10.0, rng.uniform(20.0, 90.0, n)))
        for function, extra in ((carb_math.carbs_on_board, ()), effects):
            results = []
            for compiled in (True, False):
                monkeypatch.setattr(carb_math, "HAVE_NUMBA", compiled)
                results.append(function(*entries, *extra, grid, delay_s=delay_s, model=model))
            assert results[0].tobytes() == results[1].tobytes()


@pytest.mark.parametrize("dynamic", [True, False])
def test_a_nan_cob_start_gives_the_same_effect_and_no_cob(dynamic):
    """The compiled decision (core_kernel) asks the passes for the effect only (NaN COB start): the
    effect equals the one computed beside the COB, bit for bit, and the COB timeline is empty."""
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(200):
        inp, ice = _inputs(rng, str(rng.choice(MODELS[:3])))
        s = inp.settings
        schedules = (*carb_math._schedule_arrays(inp.sensitivity), *carb_math._schedule_arrays(inp.carb_ratio))
        entries = (inp.carb_s, inp.carb_g, inp.carb_absorption_min, float(s.default_absorption_times[1]))
        effect_start, cob_start = -1800.0, -300.0
        model = carb_math.MODELS[s.carb_absorption_model]
        if dynamic:
            def run(cob_s):
                return carb_math._dynamic_pass(*entries, -30000.0, *schedules, *ice, model, 1.5, 1.5, 600.0, False,
                                               carb_math.ADAPTIVE_RATE_STANDBY_FRACTION, effect_start, cob_s, 300.0)
        else:
            def run(cob_s):
                return carb_math._static_pass(*entries, -30000.0, -28000.0, *schedules, model, 600.0, effect_start,
                                              cob_s, 300.0)
        both, effect_only = run(cob_start), run(np.nan)
        np.testing.assert_array_equal(effect_only[0], both[0])
        assert effect_only[1].tobytes() == both[1].tobytes()
        assert effect_only[2].size == effect_only[3].size == 0
        covered += both[3].size > 0
    assert covered > 50
