"""The compiled dose preparation and counteraction passes equal their array paths bit for bit
(issue 9: speed without changing a single number), on histories in order (the closed loop's,
where the sorts are skipped and the effect indices come from a forward walk) and out of order.

With ``PYLOOPKIT_JIT=never`` the same passes run as plain Python against the same array paths.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pyloopkit import dose_store, glucose_math
from pyloopkit.dose import DoseArrays
from pyloopkit.glucose_store import GlucoseArrays
from pyloopkit.schedule import DailySchedule

DAY = 86400.0


def _assert_bytes_equal(a, b) -> None:
    """Same dtype, shape and bytes (-0.0 differs from 0.0, NaN payloads count)."""
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape, (x, y)
        assert x.tobytes() == y.tobytes(), (x, y)


def _columns(doses: DoseArrays) -> list[np.ndarray]:
    return [getattr(doses, f.name) for f in dataclasses.fields(doses)]


@pytest.mark.parametrize("seed", range(2))
def test_stable_order_is_the_stable_argsort(seed):
    """Insertion sort with a budget, or the sort: always ``np.argsort(kind="stable")`` (sorted,
    nearly sorted, reversed, ties, NaN, -0.0), and the identity flag says whether nothing moved."""
    rng = np.random.default_rng(seed)
    flags = set()
    for k in range(600):
        n = int(rng.integers(0, 60))
        keys = np.sort(rng.choice(np.arange(12.0) * 300.0, n) if k % 2 else rng.uniform(-1e3, 1e3, n))
        swaps = int(rng.choice([0, 0, 1, 3, 200]))
        for _ in range(swaps if n > 1 else 0):
            i = int(rng.integers(0, n - 1))
            keys[[i, i + 1]] = keys[[i + 1, i]]
        if k % 7 == 0:
            keys = keys[::-1].copy()
        if k % 11 == 0 and n:
            keys[rng.integers(0, n)] = np.nan
        if k % 13 == 0 and n:
            keys[rng.random(n) < 0.5] = rng.choice([0.0, -0.0])
        order, in_order = dose_store._stable_order(keys)
        expected = np.argsort(keys, kind="stable")
        np.testing.assert_array_equal(order, expected)
        if not np.isnan(keys).any():  # with NaN keys: the sort, flagged as moving
            assert in_order == bool(np.array_equal(expected, np.arange(n)))
            flags.add((in_order, n > 1))
    assert flags == {(True, False), (True, True), (False, True)}


def _closed_loop_history(rng: np.random.Generator) -> DoseArrays:
    """Five-minute temp basals (some running 30 min, some gaps), boluses at the same second as a
    temp basal or inside one, in time order as the controller appends them; in some histories
    some doses carry their delivered units (pump records)."""
    n = int(rng.integers(1, 120))
    start = np.cumsum(rng.choice([300.0, 300.0, 300.0, 600.0, 1800.0], n)) + float(rng.choice([0.0, 7.0, -3600.0]))
    duration = rng.choice([300.0, 1800.0, 0.0], n, p=[0.6, 0.35, 0.05])
    value = np.round(rng.uniform(0.0, 3.0, n), 2) * (rng.random(n) > 0.15)
    kind = np.full(n, 3, dtype=np.int8)
    boluses = rng.random(n) < 0.15
    kind[boluses] = 4
    duration[boluses] = rng.choice([0.0, 60.0], int(boluses.sum()))
    start[boluses] -= rng.choice([0.0, 0.0, 120.0], int(boluses.sum()))  # at a temp basal's start, or inside one
    delivered = np.where(rng.random(n) < (0.3 if rng.random() < 0.3 else 0.0), value * duration / 3600.0, np.nan)
    order = np.argsort(start, kind="stable")
    return DoseArrays(kind[order], start[order], start[order] + duration[order], value[order], delivered[order],
                      np.full(n, np.nan))


def _random_schedule(rng: np.random.Generator) -> DailySchedule:
    """One item (the closed loop's) or up to five, with a local offset (midnight moves with it)."""
    k = int(rng.choice([1, 1, 2, 5]))
    starts = np.concatenate(([0.0], np.sort(rng.choice(np.arange(1, 48) * 1800.0, k - 1, replace=False))))
    return DailySchedule(starts, rng.uniform(0.1, 3.0, k), float(rng.choice([0.0, 3600.0, -18000.0, 19800.0])))


def _both(doses, basal, lo, hi, monkeypatch):
    results = []
    for compiled in (True, False):
        monkeypatch.setattr(dose_store, "HAVE_NUMBA", compiled)
        results.append(dose_store.prepare_doses(doses, basal, start_s=lo, end_s=hi))
    return results


@pytest.mark.parametrize("seed", range(3))
def test_compiled_prepare_equals_the_array_path_in_and_out_of_order(seed, monkeypatch):
    """Closed-loop histories as appended (in order), the same shuffled, and with ties (doses sharing
    a start): every column bit for bit, for one- and multi-item schedules, windows open, closed and
    cutting through doses."""
    rng = np.random.default_rng(100 + seed)
    reordered = inside = 0
    for k in range(150):
        doses = _closed_loop_history(rng)
        if k % 3 == 1:
            doses = doses.take(rng.permutation(len(doses)))
        elif k % 3 == 2:  # ties: some doses moved onto their neighbour's start, then shuffled
            tie = np.flatnonzero(rng.random(len(doses) - 1) < 0.3)
            start = doses.start_s.copy()
            start[tie + 1] = start[tie]
            doses = dataclasses.replace(doses, start_s=start, end_s=np.maximum(doses.end_s, start))
            doses = doses.take(rng.permutation(len(doses)))
        basal = _random_schedule(rng)
        last = float(doses.end_s.max())
        lo = None if k % 10 == 0 else last - float(rng.uniform(0.0, 1.5 * DAY))
        hi = None if k % 10 == 5 else last - float(rng.choice([0.0, 150.0, 900.0]))
        compiled, plain = _both(doses, basal, lo, hi, monkeypatch)
        _assert_bytes_equal(_columns(compiled), _columns(plain))
        reordered += not np.array_equal(np.sort(doses.start_s), doses.start_s)
        temp, bolus = doses.type == 3, doses.type == 4
        inside += bool(np.any((doses.start_s[bolus][:, None] > doses.start_s[temp])
                              & (doses.start_s[bolus][:, None] < doses.end_s[temp])))
    assert reordered > 50 and inside > 50


def _inexact_day_counter_dose() -> DoseArrays:
    """A temp basal one ulp long at a date (~1e21 s) whose day counter ``floor(s / DAY)`` is past
    2**53, where ``counter + 1`` rounds back to the counter (the schedule split's arithmetic then
    gives a cut the one-day shortcut would not)."""
    start = float(2 ** 53 * DAY) * 1.3
    while not (np.floor(start / DAY) == np.floor(np.nextafter(start, np.inf) / DAY)
               and np.floor(start / DAY) + 1.0 == np.floor(start / DAY)):
        start = np.nextafter(start, np.inf)
    return DoseArrays(np.array([3], dtype=np.int8), np.array([start]), np.array([np.nextafter(start, np.inf)]),
                      np.array([1.0]), np.array([np.nan]), np.array([np.nan]))


def test_compiled_prepare_edge_cases(monkeypatch):
    """Empty history, one dose, a bolus and a temp basal at the same second (either order), a temp
    basal across midnight on a one-item schedule, and dates too large for exact day counters."""
    one_item = DailySchedule.constant(0.8, offset_s=3600.0)
    two_items = DailySchedule(np.array([0.0, 43200.0]), np.array([0.5, 1.1]))
    t = 100 * DAY
    cases = [
        DoseArrays(np.empty(0, dtype=np.int8), np.empty(0), np.empty(0), np.empty(0), np.empty(0), np.empty(0)),
        DoseArrays(np.array([3], dtype=np.int8), np.array([t]), np.array([t + 1800.0]), np.array([1.5]),
                   np.array([np.nan]), np.array([np.nan])),
        DoseArrays(np.array([4, 3, 3], dtype=np.int8), np.array([t, t, t + 300.0]),
                   np.array([t + 60.0, t + 1800.0, t + 600.0]), np.array([2.0, 1.0, 0.0]),
                   np.full(3, np.nan), np.full(3, np.nan)),
        DoseArrays(np.array([3, 4, 3], dtype=np.int8), np.array([t, t, t + 300.0]),
                   np.array([t + 1800.0, t + 60.0, t + 600.0]), np.array([1.0, 2.0, 0.0]),
                   np.full(3, np.nan), np.full(3, np.nan)),
        DoseArrays(np.array([3, 3], dtype=np.int8), np.array([t - 4500.0, t - 3000.0]),
                   np.array([t - 2700.0, t - 2400.0]), np.array([1.0, 0.4]), np.full(2, np.nan), np.full(2, np.nan)),
        DoseArrays(np.array([3, 3], dtype=np.int8), np.array([1e22, 1e22 + 3e6]), np.array([1e22 + 3e6, 1e22 + 6e6]),
                   np.array([1.0, 0.4]), np.full(2, np.nan), np.full(2, np.nan)),
        _inexact_day_counter_dose(),
    ]
    for doses in cases:
        for basal in (one_item, two_items):
            for lo, hi in ((None, None), (t - DAY, t + 900.0), (t + 200.0, t + 200.0)):
                compiled, plain = _both(doses, basal, lo, hi, monkeypatch)
                _assert_bytes_equal(_columns(compiled), _columns(plain))
    compiled, _ = _both(cases[4], one_item, None, None, monkeypatch)
    assert compiled.start_s.tolist() == [t - 4500.0, t - 3600.0, t - 3000.0]  # cut at local midnight


def _counteraction_both(glucose, effect, monkeypatch):
    results = []
    for compiled in (True, False):
        monkeypatch.setattr(glucose_math, "HAVE_NUMBA", compiled)
        results.append(glucose_math.counteraction_effects(glucose, *effect))
    return results


@pytest.mark.parametrize("seed", range(3))
def test_compiled_counteraction_walk_equals_the_searches(seed, monkeypatch):
    """The forward walk over the effect dates gives the array path's ``searchsorted`` indices:
    readings closer than 4 min (and at the same second), readings on effect dates, effect grids
    with repeated dates and irregular steps, effects starting late or ending early (uncovered
    tail), provenance changes and display-only readings; all bit for bit."""
    rng = np.random.default_rng(200 + seed)
    stopped = kept = 0
    for k in range(300):
        n = int(rng.integers(0, 120))
        offset = rng.uniform(-600.0, 600.0) if k % 4 else float(rng.integers(-2, 3)) * 300.0  # on the effect grid
        dates = np.cumsum(rng.choice([0.0, 30.0, 239.0, 240.0, 241.0, 300.0, 900.0], n)) + offset
        provenance = (rng.random(n) < (0.05 if k % 2 else 0.0)).astype(np.int8)
        glucose = GlucoseArrays(dates, rng.uniform(40.0, 400.0, n), provenance,
                                rng.random(n) < (0.05 if k % 3 == 0 else 0.0), np.zeros(n, dtype=bool))
        m = int(rng.integers(0, 150))
        steps = rng.choice([0.0, 60.0, 300.0, 300.0, 300.0, 700.0], m) if k % 2 else np.full(m, 300.0)
        first = float(rng.uniform(-3000.0, 6000.0)) if k % 4 else float(rng.integers(-10, 20)) * 300.0
        effect_dates = first + np.cumsum(steps)
        compiled, plain = _counteraction_both(glucose, (effect_dates, np.cumsum(rng.normal(0.0, 3.0, m))), monkeypatch)
        _assert_bytes_equal(compiled, plain)
        kept += compiled[0].size
        stopped += bool(compiled[0].size) and m > 0 and compiled[1][-1] < dates[-1] - 300.0
    assert kept > 3000 and stopped > 20
