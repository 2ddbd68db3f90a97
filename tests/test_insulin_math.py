"""Tests for pyloopkit.insulin_math: invariants, Swift's hand-written scenarios, edge cases, properties.

The scenarios ``test_swift_*`` carry the expected doses of LoopKit ``InsulinMathTests.swift``
(reference numbers written in that test, not fixture files).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyloopkit import insulin_math as im
from pyloopkit.date import GRID_S, grid, to_second
from pyloopkit.dose import DoseArrays, DoseType
from pyloopkit.errors import InvalidInputError
from pyloopkit.insulin_models import PRESETS, ExponentialInsulinModel, WalshInsulinModel
from pyloopkit.schedule import DailySchedule

B, T, BOL, S, R = DoseType.BASAL, DoseType.TEMP_BASAL, DoseType.BOLUS, DoseType.SUSPEND, DoseType.RESUME
ADULT = PRESETS["adult"]
t = to_second


def doses(*rows, delivered=None, scheduled=None):
    """Rows of (type, start, end, value) with ISO dates or seconds."""
    kinds, starts, ends, values = zip(*rows)
    conv = [x if isinstance(x, (int, float)) else t(x) for x in starts]
    conv_end = [x if isinstance(x, (int, float)) else t(x) for x in ends]
    return DoseArrays.from_lists(kinds, conv, conv_end, values, delivered, scheduled)


# --------------------------------------------------------------------------- oracle (Swift loops, scalar)

def oracle(d: DoseArrays, model, isf: float, dates, what: str):
    """Swift's per-date, per-dose loops (``insulinOnBoard(at:)`` / ``glucoseEffect(at:)``) in plain Python."""
    net = im.net_basal_units(d)
    out = []
    for date in dates:
        total = 0.0
        for i in range(len(d)):
            time = date - d.start_s[i]
            if time < 0:
                continue
            duration = d.end_s[i] - d.start_s[i]

            def p(x):
                return float(model.percent_effect_remaining(x / 60.0))

            if duration <= 1.05 * GRID_S:
                part = p(time) if what == "iob" else 1.0 - p(time)
            else:
                part, dose_date = 0.0, 0.0
                while True:
                    segment = max(0.0, min(dose_date + GRID_S, duration) - dose_date) / duration
                    part += segment * (p(time - dose_date) if what == "iob" else 1.0 - p(time - dose_date))
                    dose_date += GRID_S
                    if not dose_date <= min(math.floor((time + model.delay_min * 60) / GRID_S) * GRID_S, duration):
                        break
            total += net[i] * (part if what == "iob" else -isf * part)
        out.append(total)
    return np.array(out)


histories = st.lists(
    st.tuples(st.sampled_from([T, T, BOL, S]), st.integers(0, 36_000), st.integers(0, 7200),
              st.floats(0.0, 5.0), st.one_of(st.none(), st.floats(0.0, 2.0))),
    min_size=1, max_size=8)


def from_strategy(rows):
    kinds = [r[0] for r in rows]
    start = np.array([float(r[1]) for r in rows])
    end = start + np.array([0.0 if r[0] == BOL else float(r[2]) for r in rows])
    value = [0.0 if r[0] == S else r[3] for r in rows]
    delivered = [r[4] if r[0] == T else None for r in rows]
    return DoseArrays.from_lists(kinds, start, end, value, delivered, [0.8] * len(rows))


@settings(max_examples=40, deadline=None)
@given(rows=histories, walsh=st.booleans(), offset=st.integers(0, 299))
def test_vectorised_timelines_equal_swift_loops(rows, walsh, offset):
    d = from_strategy(rows)
    model = WalshInsulinModel(4.0) if walsh else ADULT
    dates = float(offset) + grid(-600.0, 36_000.0 + 7200.0 + model.effect_duration_min * 60.0)[::3]
    np.testing.assert_allclose(im.insulin_on_board(d, model, dates), oracle(d, model, 0.0, dates, "iob"), atol=1e-9)
    np.testing.assert_allclose(im.glucose_effects(d, model, DailySchedule.constant(45.0), dates),
                               oracle(d, model, 45.0, dates, "effect"), atol=1e-8)


# --------------------------------------------------------------------------- invariants

@pytest.mark.parametrize("model", [ADULT, PRESETS["afrezza"], WalshInsulinModel(4.0), WalshInsulinModel(6.0)], ids=repr)
def test_bolus_total_effect_and_iob_decay(model):
    start = t("2015-07-13T23:57:00")  # ISF changes at midnight: the dose's start decides
    d = doses((BOL, start, start, 3.5))
    isf = DailySchedule.from_lists(["00:00", "12:00"], [50.0, 30.0])
    dates = im.effect_dates(d, model)
    effect = im.glucose_effects(d, model, isf, dates)
    assert effect[-1] == -30.0 * 3.5
    assert effect[0] == 0.0 and np.all(effect <= 0.0)
    iob = im.insulin_on_board(d, model, dates)
    assert iob[1] == 3.5 and iob[-1] == 0.0
    assert np.all(np.diff(iob[1:]) <= 1e-12) if isinstance(model, ExponentialInsulinModel) else np.all(iob <= 3.5 * 1.001)


def test_loopalgorithm_two_six_minute_boluses():
    """LoopAlgorithm testGlucoseEffectsHistory: 5 U over 6 min twice (continuous), ISF 50: 89 effects, -500 at the end
    (Swift sums a dose's slice fractions before scaling; we sum scaled slices: equal to 1e-12)."""
    d = doses((BOL, "2015-10-15T01:00:00", "2015-10-15T01:06:00", 5.0), (BOL, "2015-10-15T02:00:00", "2015-10-15T02:06:00", 5.0))
    dates = im.effect_dates(d, ADULT)
    effect = im.glucose_effects(d, ADULT, DailySchedule.constant(50.0), dates)
    assert dates.size == 89 and effect[-1] == pytest.approx(-500.0, abs=1e-12)


def test_net_basal_units_swift_values():
    """testNetBasalUnits / testDoseEntryUnitsInDeliverableIncrements."""
    d = doses((T, "2018-07-16T03:49:00", "2018-07-16T03:54:00", 0.4), scheduled=[0.15])
    assert im.net_basal_rate(d)[0] == pytest.approx(0.25, abs=1e-15)
    assert im.net_basal_units(d)[0] == pytest.approx(0.0375, abs=1e-15)
    one = doses((T, "2018-07-16T03:49:00", "2018-07-16T03:54:00", 1.0), (T, "2018-07-16T03:49:00", "2018-07-16T03:54:00", 1.0),
                delivered=[None, 0.05])
    np.testing.assert_allclose(im.units_in_deliverable_increments(one), [0.1, 0.05], atol=1e-15)


def test_net_basal_units_by_type():
    d = doses((B, 0, 3600, 1.0), (T, 0, 3600, 2.0), (T, 0, 3600, 2.0), (S, 0, 1800, 0.0), (BOL, 0, 0, 2.0),
              (T, 100, 100, 3.0), (BOL, 0, 0, 2.0), delivered=[None, None, 1.5, None, None, None, 1.8],
              scheduled=[1.0, 1.0, 1.0, 0.8, np.nan, 1.0, np.nan])
    np.testing.assert_allclose(im.net_basal_units(d), [0.0, 1.0, 0.5, -0.4, 2.0, 0.0, 1.8], atol=1e-15)
    # Swift rounds the programmed units (half away from zero), never the net: 0.0125 U -> 0.0, 0.025 U -> 0.05.
    r = doses((T, 0, 300, 0.15), (T, 0, 300, 0.3), scheduled=[0.0, 0.0])
    np.testing.assert_allclose(im.net_basal_units(r), [0.0, 0.05], atol=1e-15)


def test_total_delivery_and_trim():
    d = doses((BOL, 0, 600, 2.0), (T, 0, 3600, 1.0), (T, 0, 3600, 1.0), delivered=[None, None, 0.8])
    assert im.total_delivery(d) == pytest.approx(3.8)
    trimmed = im.trim(d, start_s=300.0, end_s=1800.0)
    np.testing.assert_array_equal(trimmed.start_s, [300.0] * 3)
    np.testing.assert_array_equal(trimmed.end_s, [600.0, 1800.0, 1800.0])
    np.testing.assert_allclose(trimmed.value, [1.0, 1.0, 1.0])  # the bolus keeps half its units; rates unchanged
    np.testing.assert_allclose(trimmed.delivered_units, [np.nan, np.nan, 0.4 * 1500 / 1800 * 1800 / 3600 * 2], equal_nan=True)
    outside = im.trim(d, start_s=7200.0)
    assert np.all(outside.duration_s == 0.0) and len(outside) == 3


# --------------------------------------------------------------------------- reconcile (Swift scenarios)

def assert_doses(got, expected_rows):
    assert len(got) == len(expected_rows)
    for i, (kind, start, end, value, delivered) in enumerate(expected_rows):
        assert (got.type[i], got.start_s[i], got.end_s[i]) == (kind, t(start), t(end)), i
        assert got.value[i] == pytest.approx(value, abs=1e-12), i
        assert got.delivered_units[i] == pytest.approx(delivered, abs=1e-12), i


def test_swift_reconciling_basal_profile_start_before_resume():
    d = doses((T, "2018-04-04 05:14:15 +0000", "2018-04-04 05:44:15 +0000", 1.9),
              (R, "2018-04-04 05:11:02 +0000", "2018-04-04 05:11:02 +0000", 0.0),
              (B, "2018-04-04 05:11:01 +0000", "2018-04-05 05:11:01 +0000", 1.2),
              (S, "2018-04-04 04:40:06 +0000", "2018-04-04 04:40:06 +0000", 0.0),
              (T, "2018-04-04 04:39:15 +0000", "2018-04-04 05:09:15 +0000", 4.5),
              (BOL, "2018-04-04 04:34:46 +0000", "2018-04-04 04:34:46 +0000", 1.85),
              (T, "2018-04-04 04:34:15 +0000", "2018-04-04 05:04:15 +0000", 1.85))
    assert_doses(im.reconcile(d.take(np.arange(len(d))[::-1])), [
        (T, "2018-04-04 04:34:15 +0000", "2018-04-04 04:39:15 +0000", 1.85, 0.15),
        (BOL, "2018-04-04 04:34:46 +0000", "2018-04-04 04:34:46 +0000", 1.85, 1.85),
        (T, "2018-04-04 04:39:15 +0000", "2018-04-04 04:40:06 +0000", 4.5, 0.05),
        (S, "2018-04-04 04:40:06 +0000", "2018-04-04 05:11:02 +0000", 0.0, 0.0),
        (B, "2018-04-04 05:11:02 +0000", "2018-04-04 05:14:15 +0000", 1.2, 0.06433333333333334),
        (T, "2018-04-04 05:14:15 +0000", "2018-04-04 05:44:15 +0000", 1.9, 0.95)])


def test_swift_reconcile_multiple_resumes():
    d = doses((B, "2018-05-15 14:42:36 +0000", "2018-05-16 14:42:36 +0000", 0.85),
              (T, "2018-05-15 14:42:36 +0000", "2018-05-15 14:42:36 +0000", 0.0),
              (T, "2018-05-15 14:32:51 +0000", "2018-05-15 15:02:51 +0000", 1.9),
              (T, "2018-05-15 14:32:49 +0000", "2018-05-15 15:02:49 +0000", 1.9),
              (B, "2018-05-15 14:25:42 +0000", "2018-05-16 14:25:42 +0000", 0.85),
              (R, "2018-05-15 14:24:04 +0000", "2018-05-15 14:24:04 +0000", 0.0),
              (R, "2018-05-15 14:22:28 +0000", "2018-05-15 14:22:28 +0000", 0.0),
              (S, "2018-05-15 14:21:33 +0000", "2018-05-15 14:21:33 +0000", 0.0),
              (T, "2018-05-15 14:10:29 +0000", "2018-05-15 14:10:29 +0000", 0.0),
              (B, "2018-05-15 14:10:29 +0000", "2018-05-16 14:10:29 +0000", 0.85),
              (T, "2018-05-15 14:05:29 +0000", "2018-05-15 14:35:29 +0000", 2.925))
    assert_doses(im.reconcile(d.take(np.arange(len(d))[::-1])), [
        (T, "2018-05-15 14:05:29 +0000", "2018-05-15 14:10:29 +0000", 2.925, 0.25),
        (T, "2018-05-15 14:10:29 +0000", "2018-05-15 14:10:29 +0000", 0.0, 0.0),
        (S, "2018-05-15 14:21:33 +0000", "2018-05-15 14:22:28 +0000", 0.0, 0.0),
        (B, "2018-05-15 14:25:42 +0000", "2018-05-15 14:32:49 +0000", 0.85, 0.10081944444444443),
        (T, "2018-05-15 14:32:49 +0000", "2018-05-15 14:32:51 +0000", 1.9, 0.0),
        (T, "2018-05-15 14:32:51 +0000", "2018-05-15 14:42:36 +0000", 1.9, 0.3),
        (B, "2018-05-15 14:42:36 +0000", "2018-05-16 14:42:36 +0000", 0.85, 20.4)])


def test_swift_suspend_and_basal_profile_start_interaction():
    d = doses((T, "2018-07-11 05:02:15 +0000", "2018-07-11 05:32:15 +0000", 0.0),
              (B, "2018-07-11 05:01:14 +0000", "2018-07-12 05:01:14 +0000", 1.2),
              (R, "2018-07-11 05:01:14 +0000", "2018-07-11 05:01:14 +0000", 0.0),
              (S, "2018-07-11 04:31:55 +0000", "2018-07-11 04:31:55 +0000", 0.0),
              (B, "2018-07-11 04:12:15 +0000", "2018-07-12 04:12:15 +0000", 1.2),
              (T, "2018-07-11 04:12:15 +0000", "2018-07-11 04:12:15 +0000", 0.0),
              (T, "2018-07-11 04:07:15 +0000", "2018-07-11 04:37:15 +0000", 0.675),
              (B, "2018-07-11 04:00:00 +0000", "2018-07-12 04:00:00 +0000", 1.2))
    assert_doses(im.reconcile(d.take(np.arange(len(d))[::-1])), [
        (B, "2018-07-11 04:00:00 +0000", "2018-07-11 04:07:15 +0000", 1.2, 0.145),
        (T, "2018-07-11 04:07:15 +0000", "2018-07-11 04:12:15 +0000", 0.675, 0.05),
        (B, "2018-07-11 04:12:15 +0000", "2018-07-11 04:31:55 +0000", 1.2, 0.3933333333333333),
        (S, "2018-07-11 04:31:55 +0000", "2018-07-11 05:01:14 +0000", 0.0, 0.0),
        (B, "2018-07-11 05:01:14 +0000", "2018-07-11 05:02:15 +0000", 1.2, 0.02033333333333333),
        (T, "2018-07-11 05:02:15 +0000", "2018-07-11 05:32:15 +0000", 0.0, 0.0)])


def test_swift_overlay_basal_schedule_with_suspend():
    d = doses((T, "2018-07-11 04:07:15 +0000", "2018-07-11 04:12:15 +0000", 0.675),
              (S, "2018-07-11 04:31:55 +0000", "2018-07-11 05:01:14 +0000", 0.0),
              (T, "2018-07-11 05:02:15 +0000", "2018-07-11 05:32:15 +0000", 0.0))
    got = im.overlay_basal_schedule(d, DailySchedule.constant(1.2), t("2018-07-11 04:00:00 +0000"), t("2018-07-11 05:32:15 +0000"))
    expected = [(B, "04:00:00", "04:07:15", 1.2), (T, "04:07:15", "04:12:15", 0.675), (B, "04:12:15", "04:31:55", 1.2),
                (S, "04:31:55", "05:01:14", 0.0), (B, "05:01:14", "05:02:15", 1.2), (T, "05:02:15", "05:32:15", 0.0)]
    assert len(got) == len(expected)
    for i, (kind, start, end, value) in enumerate(expected):
        assert (got.type[i], got.start_s[i], got.end_s[i], got.value[i]) == (
            kind, t(f"2018-07-11 {start} +0000"), t(f"2018-07-11 {end} +0000"), value)


def test_overlay_refuses_unreconciled_resumes():
    d = doses((S, 0, 600, 0.0), (R, 600, 600, 0.0))
    with pytest.raises(InvalidInputError) as error:
        im.overlay_basal_schedule(d, DailySchedule.constant(1.0), 0.0, 3600.0)
    assert (error.value.problems[0].field, error.value.problems[0].index) == ("doses.type", 1)


@settings(max_examples=60, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from([B, T, T, BOL, S, R]), st.integers(0, 20_000), st.integers(0, 3600),
                                 st.floats(0.0, 4.0)), min_size=0, max_size=12))
def test_reconciled_basal_doses_never_overlap(events):
    rows = [(k, float(s), float(s if k in (BOL, S, R) else s + d), 0.0 if k in (S, R) else v) for k, s, d, v in events]
    reconciled = im.reconcile(doses(*rows)) if rows else im.reconcile(DoseArrays())
    basal = reconciled.take(reconciled.type != BOL)
    assert np.all(basal.end_s >= basal.start_s)
    assert np.all(basal.end_s[:-1] <= basal.start_s[1:])
    assert not np.any(reconciled.type == R)
    assert not np.any(np.isnan(reconciled.delivered_units))


@settings(max_examples=40, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from([T, BOL, S, R]), st.integers(0, 20_000), st.integers(1, 3600),
                                 st.floats(0.0, 4.0)), min_size=1, max_size=10, unique_by=lambda e: e[1]),
       seed=st.integers(0, 1000))
def test_reconcile_independent_of_input_order(events, seed):
    rows = [(k, float(s), float(s if k in (BOL, S, R) else s + d), 0.0 if k in (S, R) else v) for k, s, d, v in events]
    d = doses(*rows)
    shuffled = d.take(np.random.default_rng(seed).permutation(len(d)))
    a, b = im.reconcile(d), im.reconcile(shuffled)
    for column in ("type", "start_s", "end_s", "value", "delivered_units"):
        np.testing.assert_array_equal(getattr(a, column), getattr(b, column))


# --------------------------------------------------------------------------- annotation

def basal_json_like():
    return DailySchedule.from_lists(["00:00", "04:00", "07:00", "10:00", "12:00", "15:00", "22:00"],
                                    [0.9, 0.925, 0.85, 0.85, 0.75, 0.8, 0.9])


@pytest.mark.parametrize("delivered", [0.1, 0.05])
def test_swift_annotate_splits_delivery_proportionally(delivered):
    d = doses((T, "2018-07-16T11:59:00", "2018-07-16T12:04:00", 1.0), delivered=[delivered])
    split = im.annotate_with_basal(d, basal_json_like())
    assert len(split) == 2
    np.testing.assert_allclose(im.units_in_deliverable_increments(split), [delivered / 5, delivered * 4 / 5], atol=1e-15)
    np.testing.assert_array_equal(split.scheduled_rate, [0.85, 0.75])


def test_annotate_crosses_local_midnight_with_offset():
    """Schedule in UTC-7: local midnight is 07:00 UTC; the temp basal 06:30-07:30 UTC splits there."""
    basal = DailySchedule.from_lists(["00:00", "21:00"], [1.0, 0.5], offset_s=-7 * 3600.0)
    d = doses((T, "2020-01-01T06:30:00", "2020-01-01T07:30:00", 2.0), (BOL, "2020-01-01T06:45:00", "2020-01-01T06:45:00", 1.0),
              (B, "2020-01-01T05:00:00", "2020-01-01T06:30:00", 0.5))
    out = im.annotate_with_basal(d, basal)
    np.testing.assert_array_equal(out.type, [T, T, BOL, B])
    np.testing.assert_array_equal(out.end_s[:2], [t("2020-01-01T07:00:00"), t("2020-01-01T07:30:00")])
    np.testing.assert_array_equal(out.scheduled_rate[:2], [0.5, 1.0])
    assert np.isnan(out.scheduled_rate[2]) and np.isnan(out.scheduled_rate[3])
    np.testing.assert_allclose(im.net_basal_units(out), [0.75, 0.5, 1.0, 0.0])
    already = im.annotate_with_basal(out, DailySchedule.constant(9.0))
    np.testing.assert_array_equal(already.scheduled_rate, out.scheduled_rate)


def test_effects_across_schedule_boundaries_sum_to_net_units():
    basal, isf = basal_json_like(), DailySchedule.from_lists(["00:00", "06:00"], [40.0, 55.0])
    raw = doses((T, "2015-07-12T23:40:00", "2015-07-13T04:20:00", 2.0), (S, "2015-07-13T05:00:00", "2015-07-13T05:00:00", 0.0),
                (R, "2015-07-13T06:10:00", "2015-07-13T06:10:00", 0.0), (BOL, "2015-07-13T06:00:00", "2015-07-13T06:00:00", 2.0))
    d = im.annotate_with_basal(im.reconcile(raw), basal)
    dates = im.effect_dates(d, ADULT)
    effect = im.glucose_effects(d, ADULT, isf, dates)
    expected = -np.sum(im.net_basal_units(d) * isf.at(d.start_s))
    assert effect[-1] == pytest.approx(expected, abs=1e-9)
    assert im.net_basal_units(d)[d.type == S][0] == pytest.approx(-0.925 * 70 / 60)


# --------------------------------------------------------------------------- edge cases and errors

def test_empty_and_zero_length():
    empty = DoseArrays()
    assert len(im.reconcile(empty)) == 0 and len(im.annotate_with_basal(empty, basal_json_like())) == 0
    dates = grid(0.0, 3600.0)
    np.testing.assert_array_equal(im.glucose_effects(empty, ADULT, DailySchedule.constant(40.0), dates), 0.0)
    np.testing.assert_array_equal(im.insulin_on_board(empty, ADULT, dates), 0.0)
    assert im.glucose_effects(doses((BOL, 0, 0, 1.0)), ADULT, DailySchedule.constant(40.0), np.empty(0)).size == 0
    zero = doses((T, 600, 600, 3.0), scheduled=[1.0])
    assert im.net_basal_units(zero)[0] == 0.0 and im.effect_dates(zero, ADULT).size == 0
    assert len(im.reconcile(zero)) == 0  # a zero-length temp basal is dropped


def test_unsorted_dates_and_dose_order():
    d = doses((BOL, 0, 0, 1.0), (T, 1000, 4000, 2.0), (BOL, 2000, 2000, 0.5), scheduled=[np.nan, 1.0, np.nan])
    dates = im.effect_dates(d, ADULT)
    isf = DailySchedule.constant(40.0)
    reference = im.glucose_effects(d, ADULT, isf, dates)
    order = np.random.default_rng(1).permutation(dates.size)
    np.testing.assert_allclose(im.glucose_effects(d, ADULT, isf, dates[order]), reference[order], atol=1e-12)
    np.testing.assert_allclose(im.glucose_effects(d.take([2, 0, 1]), ADULT, isf, dates), reference, atol=1e-12)


@pytest.mark.parametrize("column,value,reason", [("start_s", np.nan, "finite"), ("end_s", -10.0, "ends before"),
                                                 ("value", -1.0, ">= 0"), ("delivered_units", np.inf, "NaN or")])
def test_invalid_doses_name_field_and_index(column, value, reason):
    d = doses((BOL, 0, 0, 1.0), (T, 0, 600, 1.0))
    bad = getattr(d, column).copy()
    bad[1] = value
    with pytest.raises(InvalidInputError) as error:
        im.glucose_effects(d.with_(**{column: bad}), ADULT, DailySchedule.constant(40.0), grid(0, 600))
    problem = error.value.problems[0]
    assert problem.field == f"doses.{column}" and problem.index == 1 and reason in problem.reason


def test_invalid_sensitivity_names_the_dose():
    d = doses((BOL, 0, 0, 1.0), (BOL, 50_000, 50_000, 1.0))
    isf = DailySchedule.from_lists(["00:00", "12:00"], [40.0, 0.0])
    with pytest.raises(InvalidInputError) as error:
        im.glucose_effects(d, ADULT, isf, grid(0, 3600))
    problem = error.value.problems[0]
    assert (problem.field, problem.index, problem.value) == ("sensitivity", 1, 0.0)


def test_invalid_dates():
    with pytest.raises(InvalidInputError) as error:
        im.insulin_on_board(doses((BOL, 0, 0, 1.0)), ADULT, [0.0, np.nan])
    assert error.value.problems[0].field == "dates_s" and error.value.problems[0].index == 1


# --------------------------------------------------------------------------- reservoir

def test_doses_from_reservoir_rules():
    dates = np.array([0.0, 300.0, 600.0, 900.0, 900.0, 1200.0, 1260.0])
    volumes = np.array([100.0, 99.5, 150.0, 149.0, 148.0, 147.9, 140.0])
    d = im.doses_from_reservoir(dates, volumes)
    # 0-300: 0.5 U; 300-600 rise (rewind): none; 600-900: 1 U; 900-900: no time; 900-1200: 0.1 U;
    # 1200-1260: 7.9 U in 1 min > 6.5 U/min: none.
    np.testing.assert_array_equal(d.start_s, [0.0, 600.0, 900.0])
    np.testing.assert_allclose(d.delivered_units, [0.5, 1.0, 0.1], atol=1e-12)
    np.testing.assert_allclose(d.value, [6.0, 12.0, 1.2], atol=1e-9)
    assert len(im.doses_from_reservoir([], [])) == 0
    with pytest.raises(InvalidInputError):
        im.doses_from_reservoir([0.0, 1.0], [1.0, np.nan])


def test_is_continuous_without_values():
    assert not im.is_continuous([], [], None, 1000.0, 1800.0)
    assert im.is_continuous([0.0, 600.0], [10.0, 9.0], None, 600.0, 1800.0)
    assert not im.is_continuous([0.0, 2400.0], [10.0, 9.0], None, 2400.0, 1800.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([DoseType.BASAL, DoseType.TEMP_BASAL, DoseType.BOLUS]),
                          st.integers(0, 40), st.sampled_from([0.0, 17.0]),
                          st.sampled_from([0.0, 60.0, 300.0, 600.0, 1800.0, 3600.0])), max_size=14))
def test_vectorised_reconciliation_equals_the_state_machine(rows):
    """Without suspends, reconcile() takes an array path; it must emit exactly the state machine's records."""
    rows = sorted(rows, key=lambda r: r[1] * 300.0 + r[2])
    starts = np.array([r[1] * 300.0 + r[2] for r in rows])
    doses = DoseArrays.from_lists([r[0] for r in rows], starts, starts + np.array([r[3] for r in rows]),
                                  np.ones(len(rows)))
    fast = im._basal_records(doses)
    slow = im._state_machine_records(doses)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("model", [PRESETS["adult"], PRESETS["afrezza"], WalshInsulinModel(4.0),
                                   WalshInsulinModel(2.5, delay_min=0.0)], ids=["adult", "afrezza", "walsh4", "walsh2.5"])
@pytest.mark.parametrize("absorbed", [True, False])
def test_compiled_window_sum_equals_the_numpy_evaluation(model, absorbed):
    """The compiled loop (numba) and the blocked numpy evaluation sum the same terms (rounding aside)."""
    if not im.HAVE_NUMBA:
        pytest.skip("numba not installed: only the numpy path exists")
    rng = np.random.default_rng(7)
    dates = np.sort(rng.uniform(0.0, 86400.0, 300))
    starts = np.sort(rng.uniform(-20000.0, 86400.0, 200))
    weights, tails = rng.normal(size=200), rng.normal(size=200)
    window_s = model.effect_duration_min * 60.0
    tail = tails if absorbed else None
    compiled = im._window_sum(dates, starts, starts - 300.0, weights, model, absorbed, window_s, tail)
    remaining = model.percent_effect_remaining
    curve = (lambda t: 1.0 - remaining(t)) if absorbed else remaining
    numpy_sum = im._window_sum_numpy(dates, starts, starts - 300.0, weights, curve, window_s, tail)
    np.testing.assert_allclose(compiled, numpy_sum, rtol=0, atol=1e-12)


def _term_by_term(dates, starts, window_starts, weights, window_s, tails, absorbed, kind, p):
    """The window sum in the compiled kernel's order: every term evaluated with the compiled curve,
    added slice by slice into each date, then the tails' running sum."""
    expected, after = np.zeros(dates.size), np.zeros(dates.size + 1)
    first, stop = np.searchsorted(dates, window_starts), np.searchsorted(dates, starts + window_s)
    for i in range(starts.size):
        for j in range(first[i], stop[i]):
            r = im._remaining((dates[j] - starts[i]) / 60.0, kind, p)
            expected[j] += weights[i] * ((1.0 - r) if absorbed else r)
        after[stop[i]] += tails[i]
    return expected + np.cumsum(after[:-1])


WINDOW_DATES = {  # name -> (rng -> sorted dates, s)
    "step-5": lambda rng: 300.0 * np.arange(400),
    "step-1": lambda rng: 60.0 * np.arange(-300, 1200),
    "step-7": lambda rng: 1_700_000_040.0 + 420.0 * np.arange(300),
    "gaps": lambda rng: np.delete(300.0 * np.arange(400), rng.choice(400, 60, replace=False)),
    "not-whole-minutes": lambda rng: 300.0 * np.arange(400) + np.where(rng.random(400) < 0.05, 0.5, 0.0),
    "random": lambda rng: np.sort(rng.uniform(-20000.0, 120000.0, 300)),
    "one-date": lambda rng: np.array([36000.0]),
}


@pytest.mark.parametrize("model", [PRESETS["adult"], WalshInsulinModel(4.0)], ids=["adult", "walsh4"])
@pytest.mark.parametrize("absorbed", [True, False])
@pytest.mark.parametrize("dates_name", list(WINDOW_DATES))
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_compiled_window_sum_on_whole_minutes_is_term_by_term_exact(model, absorbed, dates_name, seed):
    """On uniform whole-minute grids (steps of 1, 5 and 7 min: the curve comes from the kernel's
    tables), grids with gaps, dates off the minute and random dates, with slices on and off the grid
    (some starts 17.5 s late, some whole minutes between grid dates) and windows opening before the
    slice (IOB's delay), the compiled window sum equals, bit for bit, the same terms evaluated one by
    one with the compiled curve and summed in the kernel's order."""
    if not im.HAVE_NUMBA:
        pytest.skip("numba not installed: only the numpy path exists")
    rng = np.random.default_rng(seed)
    dates = WINDOW_DATES[dates_name](rng)
    starts = dates[0] + 60.0 * rng.integers(-2000, 2500, 150) + np.where(rng.random(150) < 0.2, 17.5, 0.0)
    starts = np.sort(np.where(rng.random(150) < 0.5, starts, dates[0] + 300.0 * rng.integers(-400, 500, 150)))
    window_starts = starts - np.where(rng.random(150) < 0.5, 0.0, 60.0 * rng.integers(1, 40, 150))
    weights, tails = rng.normal(size=150), rng.normal(size=150)
    window_s = model.effect_duration_min * 60.0
    kind, p = im._curve_spec(model)
    compiled = im._window_sum_compiled(dates, starts, window_starts, weights, window_s, tails, absorbed, kind, p,
                                       im._curve_table((kind, p), window_s, absorbed))
    expected = _term_by_term(dates, starts, window_starts, weights, window_s, tails, absorbed, kind, p)
    np.testing.assert_array_equal(compiled, expected)


@pytest.mark.parametrize("sizes", [(0, 5), (5, 0), (0, 0)], ids=["no-dates", "no-slices", "nothing"])
def test_compiled_window_sum_of_empty_inputs(sizes):
    """No dates: an empty sum; no slices: zeros at every date."""
    if not im.HAVE_NUMBA:
        pytest.skip("numba not installed: only the numpy path exists")
    dates, starts = 300.0 * np.arange(sizes[0]), 300.0 * np.arange(sizes[1])
    kind, p = im._curve_spec(ADULT)
    window_s = ADULT.effect_duration_min * 60.0
    out = im._window_sum_compiled(dates, starts, starts, np.ones(sizes[1]), window_s, np.ones(sizes[1]), True,
                                  kind, p, im._curve_table((kind, p), window_s, True))
    np.testing.assert_array_equal(out, np.zeros(sizes[0]))


@pytest.mark.parametrize("step", [1, 2, 5, 7, 13])
def test_residue_table_rows_are_the_strided_curve(step):
    """Row ``r`` of the residue table holds ``curve[r], curve[r + step], ...`` contiguously."""
    curve = np.arange(361.0)
    table = im._residue_table(curve, step)
    width = table.size // max(step, 1)
    for r in range(step if step > 1 else 0):
        row = curve[r::step]
        np.testing.assert_array_equal(table[r * width:r * width + row.size], row)
    assert table.size == (0 if step == 1 else step * (-(-361 // step)))


@pytest.mark.parametrize("model", [PRESETS["adult"], PRESETS["fiasp"], WalshInsulinModel(4.0)],
                         ids=["adult", "fiasp", "walsh4"])
def test_active_effect_and_iob_equals_the_separate_calls(model):
    """The one-pass prediction effect and IOB now (the Loop core's closed-loop path) equal, bit for
    bit, filter + trim + glucose_effects on the grid from now, and insulin_on_board at now, on
    prepared histories (on and off the 5-min grid, multi-item ISF schedules with a UTC offset),
    including a history with no dose acting any more."""
    from pyloopkit.dose_store import prepare_doses
    if not im.HAVE_NUMBA:
        pytest.skip("numba not installed: only the separate paths exist")
    rng = np.random.default_rng(5)
    duration_s = model.effect_duration_min * 60.0
    checked = 0
    for k in range(100):
        n = int(rng.integers(0, 40))
        start = np.sort(rng.uniform(0.0, 2e5, n)) if k % 3 == 0 else 300.0 * np.sort(rng.integers(0, 700, n))
        end = start + rng.choice([0.0, 60.0, 300.0, 1800.0, 5400.0], n)
        types = rng.choice([int(DoseType.TEMP_BASAL), int(DoseType.BOLUS), int(DoseType.BASAL)], n).astype(np.int8)
        basal = DailySchedule(np.array([0.0, 30600.0]), np.array([0.8, 1.2]))
        now = float(2e5 + 300.0 * rng.integers(0, 100)) if k % 10 else 1e7  # 1e7: long after every dose
        doses = prepare_doses(DoseArrays(types, start, end, rng.uniform(0.0, 3.0, n), np.full(n, np.nan),
                                         np.full(n, np.nan)), basal, start_s=now - 86400.0 - duration_s, end_s=now)
        items = int(rng.integers(1, 4))
        isf = DailySchedule(np.array([0.0, 21600.0, 64800.0])[:items], np.array([40.0, 55.0, 35.0])[:items],
                            float(rng.choice([0.0, -18000.0, 19800.0])))
        dates, effect, iob = im.active_effect_and_iob(doses, model, isf, now)
        active = im.trim(im.filter_date_range(doses, now - duration_s, None), start_s=now - duration_s)
        if len(active) == 0:
            assert dates.size == effect.size == iob.size == 0
            continue
        expected_dates = grid(now, max(float(np.max(active.end_s)) + duration_s, now))
        np.testing.assert_array_equal(dates, expected_dates)
        np.testing.assert_array_equal(effect, im.glucose_effects(active, model, isf, expected_dates, validate=False))
        np.testing.assert_array_equal(iob, im.insulin_on_board(im.filter_date_range(doses, now - duration_s, None),
                                                               model, np.array([now]), validate=False))
        checked += 1
    assert checked > 20  # histories with doses still acting, compared term by term
