"""Tests for pyloopkit.dose_store.prepare_doses: reconcile + filter + annotate + basal trimming."""
import numpy as np
import pytest

from pyloopkit import insulin_math as im
from pyloopkit.dose import DoseArrays, DoseType
from pyloopkit.dose_store import prepare_doses
from pyloopkit.insulin_models import PRESETS
from pyloopkit.schedule import DailySchedule

T, BOL, S, R = DoseType.TEMP_BASAL, DoseType.BOLUS, DoseType.SUSPEND, DoseType.RESUME
H = 3600.0
BASAL = DailySchedule.from_lists(["00:00", "02:00"], [1.0, 0.5])


def history():
    # 00:30-01:30 temp 2 U/h cut at 01:00 by a 3 U/h temp until 03:00 (crosses the 02:00 boundary);
    # suspend 02:30-02:45; bolus at 01:10.
    return DoseArrays.from_lists([T, T, BOL, S, R], [0.5 * H, 1.0 * H, 1 * H + 600, 2.5 * H, 2.75 * H],
                                 [1.5 * H, 3.0 * H, 1 * H + 600, 2.5 * H, 2.75 * H], [2.0, 3.0, 1.5, 0.0, 0.0])


def test_prepare_reconciles_annotates_and_splits():
    out = prepare_doses(history(), BASAL, start_s=None, end_s=None)
    np.testing.assert_array_equal(out.type, [T, T, BOL, T, S, T])
    np.testing.assert_array_equal(out.start_s, [0.5 * H, 1 * H, 1 * H + 600, 2 * H, 2.5 * H, 2.75 * H])
    np.testing.assert_array_equal(out.end_s, [1 * H, 2 * H, 1 * H + 600, 2.5 * H, 2.75 * H, 3 * H])
    np.testing.assert_array_equal(out.scheduled_rate, [1.0, 1.0, np.nan, 0.5, 0.5, 0.5])
    basal_like = out.take(out.type != BOL)
    assert np.all(basal_like.end_s[:-1] <= basal_like.start_s[1:])
    np.testing.assert_allclose(im.net_basal_units(out).sum(), 0.5 + 2.0 + 1.5 + (3.0 - 0.5) * 0.5 + (3.0 - 0.5) * 0.25 - 0.5 * 0.25)


def test_prepare_start_and_end_windows():
    out = prepare_doses(history(), BASAL, start_s=1.2 * H, end_s=2.6 * H)
    assert out.start_s.min() >= 1.0 * H  # the first temp basal (ended 01:00) is filtered out
    assert out.end_s[out.type != BOL].max() == 2.6 * H  # running suspend trimmed at end_s
    bolus_only = prepare_doses(history(), BASAL, start_s=1 * H + 600, end_s=1 * H + 600)
    assert BOL in bolus_only.type


def test_prepare_is_order_independent_and_handles_empty():
    d = history()
    shuffled = d.take(np.array([3, 1, 4, 0, 2]))
    a = prepare_doses(d, BASAL, start_s=None, end_s=None)
    b = prepare_doses(shuffled, BASAL, start_s=None, end_s=None)
    np.testing.assert_array_equal(a.start_s, b.start_s)
    np.testing.assert_array_equal(a.delivered_units, b.delivered_units)
    assert len(prepare_doses(DoseArrays(), BASAL, start_s=0.0, end_s=H)) == 0


def test_prepared_doses_give_effect_of_net_insulin():
    out = prepare_doses(history(), BASAL, start_s=None, end_s=None)
    model = PRESETS["adult"]
    dates = im.effect_dates(out, model)
    effect = im.glucose_effects(out, model, DailySchedule.constant(40.0), dates)
    assert effect[-1] == pytest.approx(-40.0 * im.net_basal_units(out).sum(), abs=1e-9)
