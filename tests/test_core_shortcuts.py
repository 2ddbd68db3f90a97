"""The Loop core's shortcuts give exactly what the checked, plain paths give (issue 9: speed
without changing a single number).

- the compiled dose kernels (``_slices``, ``_trimmed`` via ``trim``, ``_resolve_delivery`` via
  ``reconcile``) equal the numpy paths bit for bit on random dose tables;
- ``validate=False`` changes no result, and the default still refuses garbage;
- ``core(..., bolus=False)`` only drops the manual bolus; the automatic bolus that reuses the
  temp basal's insulin correction equals ``recommended_automatic_bolus`` computing its own;
- a one-item schedule's ``at`` equals the indexed lookup.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from pyloopkit import dose_math, insulin_math, loop_math, pump_rounding
from pyloopkit.dose import DoseArrays
from pyloopkit.errors import InvalidInputError, LoopWarning
from pyloopkit.input_validation import convert_glucose_units, validate_input
from pyloopkit.insulin_models import model_from_setting
from pyloopkit.jit import HAVE_NUMBA
from pyloopkit.loop_data_manager import AUTOMATIC_BOLUS_FACTOR, core, model_for
from pyloopkit.loop_input import parse_input
from pyloopkit.schedule import DailySchedule
from pyloopkit.synthetic import dense_history
from tests.conftest import assert_compiled_equals_numpy

TYPES = [int(t) for t in insulin_math.INSULIN_TYPES]


def _random_doses(rng: np.random.Generator) -> DoseArrays:
    """Doses of every type; momentary, continuous and zero durations; known and unknown units."""
    n = int(rng.integers(0, 30))
    start = np.sort(rng.uniform(0.0, 1e5, n))
    duration = rng.choice([0.0, 1.0, 120.0, 300.0, 315.0, 316.0, 600.0, 1800.0, 3599.5, 7200.0], n)
    duration = duration + (rng.random(n) < 0.2) * rng.uniform(0.0, 900.0, n)
    return DoseArrays(rng.choice(TYPES, n).astype(np.int8), start, start + duration,
                      rng.uniform(0.0, 5.0, n) * (rng.random(n) > 0.1),
                      np.where(rng.random(n) < 0.3, rng.uniform(0.0, 3.0, n), np.nan),
                      np.where(rng.random(n) < 0.7, rng.uniform(0.0, 2.0, n), np.nan))


def _assert_same(a, b) -> None:
    if isinstance(a, DoseArrays):
        a = [getattr(a, f.name) for f in dataclasses.fields(a)]
        b = [getattr(b, f.name) for f in dataclasses.fields(b)]
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)  # NaN == NaN here; no tolerance


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (extra 'fast')")
@pytest.mark.parametrize("seed", range(4))
def test_compiled_dose_kernels_equal_the_numpy_paths(seed, monkeypatch):
    """Slicing, trimming, reconciliation and, on the annotated doses, the insulin effect and IOB
    (exponential and Walsh models, sorted and unsorted dates) in compiled loops: bit for bit."""
    rng = np.random.default_rng(seed)
    basal = DailySchedule(np.array([0.0, 21600.0, 64800.0]), np.array([0.8, 1.1, 0.9]))
    isf = DailySchedule(np.array([0.0, 43200.0]), np.array([45.0, 55.0]))
    models = [model_from_setting([360.0, 75.0], 10.0), model_from_setting([4.0], 0.0)]
    for _ in range(50):
        doses = _random_doses(rng)
        lo = float(rng.uniform(0.0, 1e5))
        hi = lo + float(rng.uniform(0.0, 5e4))
        prepared = insulin_math.annotate_with_basal(insulin_math.reconcile(doses), basal)
        dates = rng.uniform(-1e4, 1.5e5, int(rng.integers(0, 60)))
        dates = dates if rng.random() < 0.3 else np.sort(dates)
        model = models[int(rng.integers(0, len(models)))]
        results = []
        for compiled in (True, False):
            monkeypatch.setattr(insulin_math, "HAVE_NUMBA", compiled)
            results.append([insulin_math._slices(doses), insulin_math.trim(doses, lo, hi),
                            insulin_math.trim(doses, start_s=lo), insulin_math.reconcile(doses),
                            insulin_math._resolve_delivery(doses),
                            [insulin_math.glucose_effects(prepared, model, isf, dates)],
                            [insulin_math.insulin_on_board(prepared, model, dates)]])
        for fast, plain in zip(results[0][:5], results[1][:5]):
            _assert_same(fast, plain)
        for fast, plain in zip(results[0][5:], results[1][5:]):  # the insulin curve: exp
            assert_compiled_equals_numpy(fast[0], plain[0])


def test_predict_glucose_without_checks_is_the_same_and_the_default_still_checks():
    insulin = (np.arange(0.0, 3600.0, 300.0), -np.linspace(0.0, 30.0, 12))
    carb = (np.arange(0.0, 1800.0, 300.0), np.linspace(0.0, 12.0, 6))
    momentum = (np.array([0.0, 300.0, 600.0]), np.array([0.0, 2.0, 4.0]))
    checked = loop_math.predict_glucose(10.0, 150.0, [insulin, carb], momentum=momentum)
    unchecked = loop_math.predict_glucose(10.0, 150.0, [insulin, carb], momentum=momentum, validate=False)
    _assert_same(checked, unchecked)
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        loop_math.predict_glucose(10.0, 150.0, [(insulin[0][::-1], insulin[1])])


def _loop_input(settings: dict):
    d = dense_history(days=1.0, seed=3)
    d["settings_dictionary"] = {**d["settings_dictionary"], **settings}
    seconds: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoopWarning)
        validate_input(d, seconds)
    return parse_input(convert_glucose_units(d), seconds)


@pytest.mark.parametrize("settings", [{}, {"dosing_strategy": "automatic_bolus"},
                                      {"partial_application_factor": 0.4, "max_active_insulin": 4.0}])
def test_core_without_the_manual_bolus_changes_nothing_else(settings):
    inp = _loop_input(settings)
    full = core(inp, iob_timeline=False)
    lean = core(inp, iob_timeline=False, bolus=False)
    assert full.recommendations["bolus"] is not None and lean.recommendations["bolus"] is None
    assert lean.recommendations["temp_basal"] == full.recommendations["temp_basal"]
    assert lean.recommendations["autobolus"] == full.recommendations["autobolus"]
    _assert_same(lean.prediction, full.prediction)


def test_automatic_bolus_with_the_shared_correction_equals_its_own():
    inp = _loop_input({"dosing_strategy": "automatic_bolus"})
    model = model_for(inp.settings)
    result = core(inp, model, iob_timeline=False)
    s = inp.settings
    rate_rounder, bolus_rounder = pump_rounding.rounders(s.pump_rounding, s.rate_rounder, s.bolus_rounder, s.rounding)
    own = dose_math.recommended_automatic_bolus(
        *result.prediction, at_s=inp.now_s, target=inp.target, suspend_threshold_mgdl=s.suspend_threshold,
        sensitivity=inp.sensitivity, model=model, basal=inp.basal, max_automatic_bolus_u=s.max_bolus,
        partial_application_factor=AUTOMATIC_BOLUS_FACTOR, last_temp_basal=inp.last_temp_basal,
        volume_rounder=bolus_rounder, rate_rounder=rate_rounder, max_basal_rate_u_per_h=s.max_basal_rate)
    assert result.recommendations["autobolus"] == (0.0 if own is None else own["bolus_units"])
    expected_temp = None if own is None or own["basal_adjustment"] is None else (
        own["basal_adjustment"]["rate"], own["basal_adjustment"]["duration"])
    assert result.recommendations["temp_basal"] == expected_temp


@pytest.mark.parametrize("schedule", [DailySchedule.constant(42.5),
                                      DailySchedule(np.array([3600.0]), np.array([[100.0, 110.0]]), 3600.0)])
def test_one_item_schedule_at_equals_the_indexed_lookup(schedule):
    for seconds in (5.0, np.empty(0), np.array([1.0, -1e9, 86399.9]), np.arange(12.0).reshape(3, 4)):
        _assert_same([schedule.at(seconds)], [schedule.values[schedule.index_at(seconds)]])


def _random_schedule(rng: np.random.Generator) -> DailySchedule:
    """1-5 items at half-hour starts, and a local offset (midnight boundaries move with it)."""
    k = int(rng.integers(1, 6))
    starts = np.concatenate(([0.0], np.sort(rng.choice(np.arange(1, 48) * 1800.0, k - 1, replace=False))))
    return DailySchedule(starts, rng.uniform(0.1, 3.0, k), float(rng.choice([0.0, 3600.0, -18000.0, 19800.0])))


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (extra 'fast')")
@pytest.mark.parametrize("seed", range(3))
def test_compiled_prepare_doses_equals_the_array_path(seed, monkeypatch):
    """Reconcile + filter + annotate (multi-item schedules, offsets, midnight) + trim + sort in one
    compiled pass: bit for bit the array path, for open and closed windows and every dose type (a
    suspend or resume sends the history to the array path, which gives the same by construction)."""
    from pyloopkit import dose_store
    rng = np.random.default_rng(seed)
    compiled_runs = 0
    for k in range(200):
        n = int(rng.integers(0, 40))
        start = (np.sort(rng.uniform(0.0, 3e5, n)) if k % 2 else np.round(rng.uniform(0.0, 3e5, n) / 300.0) * 300.0)
        duration = rng.choice([0.0, 1.0, 60.0, 300.0, 315.0, 1800.0, 3599.5, 7200.0, 40000.0], n)
        duration = duration + (rng.random(n) < 0.2) * rng.uniform(0.0, 900.0, n)
        types = TYPES if k % 5 == 0 else [2, 3, 4]  # basal, temp basal, bolus: the compiled pass
        doses = DoseArrays(rng.choice(types, n).astype(np.int8), start, start + duration,
                           rng.uniform(0.0, 5.0, n) * (rng.random(n) > 0.1),
                           np.where(rng.random(n) < 0.3, rng.uniform(0.0, 3.0, n), np.nan),
                           np.where(rng.random(n) < 0.3, rng.uniform(0.0, 2.0, n), np.nan))
        basal = _random_schedule(rng)
        lo = None if k % 7 == 0 else float(rng.uniform(0.0, 3e5))
        hi = None if k % 11 == 0 else (lo or 0.0) + float(rng.uniform(0.0, 2e5))
        results = []
        for compiled in (True, False):
            monkeypatch.setattr(dose_store, "HAVE_NUMBA", compiled)
            results.append(dose_store.prepare_doses(doses, basal, start_s=lo, end_s=hi))
        _assert_same(*results)
        compiled_runs += k % 5 != 0 and len(results[0]) > 0
    assert compiled_runs > 100


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (extra 'fast')")
@pytest.mark.parametrize("model", ["parabolic", "linear", "piecewise_linear", "adaptive"])
def test_compiled_dynamic_carbs_equal_the_array_path(model, monkeypatch):
    """Dynamic COB and carb effects in one compiled pass: bit for bit the array path, for every
    absorption model and phase (modelled, observed, predicted; no ICE at all; entries before,
    during and after the observation)."""
    from pyloopkit import carb_math
    rng = np.random.default_rng(len(model))
    phases = set()
    for _ in range(150):
        n = int(rng.integers(1, 6))
        dates = np.sort(rng.choice(np.arange(0, 200) * 300.0, n)) + (rng.random(n) < 0.3) * rng.uniform(0, 300, n)
        grams = rng.uniform(0.0, 90.0, n) * (rng.random(n) > 0.1)
        times = rng.choice([7200.0, 10800.0, 14400.0], n) + (rng.random(n) < 0.2) * rng.uniform(1.0, 999.0, n)
        m = int(rng.integers(0, 300))
        ice_start = np.arange(m) * 300.0 + rng.uniform(-50.0, 50.0)
        ice_end = np.maximum.accumulate(ice_start + rng.choice([290.0, 300.0, 310.0], m))
        arguments = (dict(model="piecewise_linear", adaptive_rate=True, initial_absorption_time_overrun=1.0)
                     if model == "adaptive" else dict(model=model))
        status = carb_math.map_absorption(dates, grams, times, (ice_start, ice_end, rng.normal(1.0, 2.0, m)),
                                          10.0, 50.0, **arguments)
        phases.update(zip(status.has_timeline.tolist(), (status.timeline_stop > status.timeline_first).tolist()))
        grid = np.arange(-10, 300) * 300.0 + rng.choice([0.0, 17.0])
        for function in (carb_math.dynamic_carbs_on_board, carb_math.dynamic_carb_effects):
            delay_s = float(rng.choice([0.0, 600.0, 900.0]))
            results = []
            for compiled in (True, False):
                monkeypatch.setattr(carb_math, "HAVE_NUMBA", compiled)
                results.append(function(status, grid, delay_s=delay_s))
            _assert_same(*results)
    assert len(phases) >= 3


def test_carb_mapping_without_checks_is_the_same_and_the_default_still_checks():
    """``map_absorption(validate=False)`` (the core's own entries and counteraction) and
    ``simulation_dates(validate=False)`` give the checked results; the defaults still refuse garbage."""
    from pyloopkit import carb_math
    rng = np.random.default_rng(3)
    ice_start = np.arange(120) * 300.0
    counteraction = (ice_start, ice_start + 300.0, rng.normal(1.0, 2.0, 120))
    entries = (np.array([3000.0, 9000.0, 9000.0]), np.array([40.0, 25.0, 10.0]), np.array([10800.0, 7200.0, 14400.0]))
    for model in ("parabolic", "linear", "piecewise_linear"):
        checked = carb_math.map_absorption(*entries, counteraction, 10.0, 50.0, model=model)
        unchecked = carb_math.map_absorption(*entries, counteraction, 10.0, 50.0, model=model, validate=False)
        _assert_same([getattr(checked, f.name) for f in dataclasses.fields(checked) if f.name != "model"],
                     [getattr(unchecked, f.name) for f in dataclasses.fields(unchecked) if f.name != "model"])
        grid = carb_math.simulation_dates(checked.start_s, checked.estimated_absorption_time_s, start_s=0.0)
        _assert_same([grid], [carb_math.simulation_dates(checked.start_s, checked.estimated_absorption_time_s,
                                                         start_s=0.0, validate=False)])
    with pytest.raises(InvalidInputError, match="ICE interval must end after it starts"):
        carb_math.map_absorption(*entries, (ice_start, ice_start, counteraction[2]), 10.0, 50.0)
    with pytest.raises(InvalidInputError, match="carbs must be finite"):
        carb_math.map_absorption(entries[0], -entries[1], entries[2], counteraction, 10.0, 50.0)
    with pytest.raises(InvalidInputError, match="absorption time must be finite and >= 0"):
        carb_math.simulation_dates(entries[0], -entries[2])


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (extra 'fast')")
@pytest.mark.parametrize("seed", range(3))
def test_compiled_prediction_equals_the_array_path(seed, monkeypatch):
    """predict_glucose in one compiled pass: bit for bit the array path, for timelines on shared and
    offset grids, momentum of 0, 1, 2 and more points, and starts before, on and after the dates."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        timelines = []
        for _ in range(int(rng.integers(1, 4))):
            n = int(rng.integers(1, 80))
            first = float(rng.choice([0.0, 300.0, 150.0, -600.0]))
            dates = first + 300.0 * np.cumsum(rng.integers(1, 3, n)) - 300.0
            timelines.append((dates, np.cumsum(rng.normal(0.0, 5.0, n))))
        m = int(rng.choice([0, 1, 2, 3, 7]))
        momentum = None if m == 0 else (float(rng.choice([0.0, 300.0])) + 300.0 * np.arange(m),
                                        np.maximum(0.0, np.arange(m) - 0.4) * rng.normal(0.0, 3.0))
        start = float(rng.choice([-100.0, 0.0, 120.0, 300.0, 5000.0]))
        results = []
        for compiled in (True, False):
            monkeypatch.setattr(loop_math, "HAVE_NUMBA", compiled)
            results.append(loop_math.predict_glucose(start, 120.0, timelines, momentum=momentum))
        _assert_same(*results)


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (extra 'fast')")
def test_compiled_counteraction_equals_the_array_path(monkeypatch):
    """Counteraction effects in one compiled pass for integer provenance codes: bit for bit the
    array path, with close samples skipped, provenance changes and display-only samples dropped,
    and effects that start late or end early (the timeline stops at the first uncovered pair)."""
    from pyloopkit import glucose_math
    from pyloopkit.glucose_store import GlucoseArrays
    rng = np.random.default_rng(11)
    kept = 0
    for _ in range(300):
        n = int(rng.integers(0, 80))
        dates = np.cumsum(rng.choice([60.0, 200.0, 300.0, 301.0, 600.0], n)) + rng.uniform(0.0, 300.0)
        glucose = GlucoseArrays(dates, rng.uniform(40.0, 400.0, n), rng.choice([0, 0, 0, 1], n).astype(np.int8),
                                rng.random(n) < 0.05, np.zeros(n, dtype=bool))
        m = int(rng.integers(0, 100))
        effect_dates = float(rng.uniform(-3000.0, 6000.0)) + 300.0 * np.arange(m)
        effect = (effect_dates, np.cumsum(rng.normal(0.0, 3.0, m)))
        results = []
        for compiled in (True, False):
            monkeypatch.setattr(glucose_math, "HAVE_NUMBA", compiled)
            results.append(glucose_math.counteraction_effects(glucose, *effect))
        _assert_same(*results)
        kept += results[0][0].size
    assert kept > 1000
