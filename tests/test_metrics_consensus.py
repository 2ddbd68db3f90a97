"""The consensus CGM metrics: hand-computed cases and a cross-check against iglu-python
(Broll et al.'s iglu, the R package's Python port) on 200 seeded random traces with gaps."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from pyloopkit import metrics
from pyloopkit.errors import InvalidInputError
from pyloopkit.metrics import series
from pyloopkit.metrics.consensus import RANGE_BANDS, band_percentages, cgm_summary


def test_grid_interpolates_and_leaves_long_gaps_missing():
    """Readings at 2, 7 | 100, 105 min: the grid point 5 lies 3/5 of the way from 2 to 7; the
    93-minute gap (> 45) leaves 10..95 missing; 100 and 105 are readings."""
    grid, values = series.grid_glucose([2.0, 7.0, 100.0, 105.0], [100.0, 110.0, 150.0, 160.0])
    assert grid.tolist() == [5.0 * k for k in range(1, 22)]
    assert values[0] == pytest.approx(106.0)
    assert np.isnan(values[1:19]).all()
    assert values[19:].tolist() == [150.0, 160.0]


def test_conga_and_modd_hand_values():
    """A step from 100 to 160 mg/dL at 60 min, readings every 5 min over 0-120 min: the 1-hour
    differences at 60..115 min are 60 (12 of them) and at 120 min 0, so CONGA1 = SD of those.
    Two identical days, the second 10 mg/dL higher: every 24-hour difference is 10 -> MODD = 10."""
    t = 5.0 * np.arange(25)
    g = np.where(t < 60, 100.0, 160.0)
    assert series.conga(t, g) == pytest.approx(np.std([60.0] * 12 + [0.0], ddof=1))
    day = 5.0 * np.arange(288)
    shape = 120 + 40 * np.sin(day / 200.0)
    assert series.modd(np.r_[day, day + 1440], np.r_[shape, shape + 10]) == pytest.approx(10.0)


def test_adrr_takes_the_largest_low_and_high_risk_of_each_day():
    """Day 1: [20, 112.5] -> max rl = 100, max rh = 0; day 2: [600, 112.5] -> 0 and 100 (to 0.1 %):
    ADRR = (100 + 100) / 2 = 100."""
    assert series.adrr([60.0, 120.0, 1500.0, 1600.0], [20.0, 112.5, 600.0, 112.5]) == pytest.approx(100.0, rel=2e-3)


def test_mage_of_a_triangle_wave_is_its_amplitude():
    """A triangle between 100 and 200 mg/dL, period 4 h, over two days, starting and ending at a
    nadir: every excursion is 100 mg/dL, larger than the SD (100 / sqrt(12) = 28.9)."""
    t = 5.0 * np.arange(2 * 288 + 1)
    g = 100.0 + 100.0 * (1.0 - np.abs((t % 240.0) / 120.0 - 1.0))
    assert series.mage(t, g) == pytest.approx(100.0)


def test_cgm_active_percent_automatic_and_window():
    """13 expected readings over 0-60 min, the ones at 20 and 25 missing: 11 / 13."""
    t = np.delete(5.0 * np.arange(13), [4, 5])
    assert series.cgm_active_percent(t) == pytest.approx(100 * 11 / 13)
    assert series.cgm_active_percent(t, start_min=0.0, end_min=65.0) == pytest.approx(100 * 11 / 13)
    assert series.cgm_active_percent(t, start_min=0.0, end_min=130.0) == pytest.approx(100 * 11 / 26)


def test_gmi_mmol_mol_agrees_with_the_ifcc_master_equation():
    """Mean 154 mg/dL: GMI = 3.31 + 0.02392 x 154 = 6.99368 %; 12.71 + 4.70587 x 154 / 18.01559 =
    52.936 mmol/mol, and the NGSP-IFCC equation 10.929 (6.99368 - 2.15) = 52.937."""
    assert metrics.gmi([154.0]) == pytest.approx(6.99368)
    assert metrics.gmi_mmol_mol([154.0]) == pytest.approx(52.936, abs=1e-3)
    assert metrics.gmi_mmol_mol([154.0]) == pytest.approx(10.929 * (metrics.gmi([154.0]) - 2.15), abs=0.01)


def test_gri_zone_and_j_index():
    assert [metrics.gri_zone(v) for v in (0, 20, 20.01, 40, 59.9, 80, 80.5, 100)] == list("AABBCDEE")
    with pytest.raises(InvalidInputError):
        metrics.gri_zone(101.0)
    assert metrics.j_index([100.0, 200.0]) == pytest.approx(0.001 * (150 + 50 * math.sqrt(2)) ** 2)


def test_band_percentages_add_up_and_match_the_boundaries():
    """[40, 54, 60, 70, 100, 180, 181, 250, 251, 400]: <54: 1, 54-69: 2, 70-180: 3, 181-250: 2, >250: 2."""
    bands = band_percentages([40, 54, 60, 70, 100, 180, 181, 250, 251, 400])
    assert [bands[key] for key, *_ in RANGE_BANDS] == pytest.approx([10, 20, 30, 20, 20])


def test_trace_validation_names_the_problem():
    with pytest.raises(InvalidInputError, match="times must increase") as excinfo:
        series.conga([0.0, 5.0, 5.0], [100.0, 110.0, 120.0])
    assert excinfo.value.problems[0].index == 2
    with pytest.raises(InvalidInputError, match="shape"):
        series.modd([0.0, 5.0], [100.0])


def test_local_minutes_count_elapsed_time_from_the_local_midnight():
    """Across the spring-forward change, 03:00 CEST on 31 March is 26 elapsed hours after the
    first day's midnight (00:00 CET on 30 March)."""
    times = pd.to_datetime(["2024-03-30T23:00:00+01:00", "2024-03-31T03:00:00+02:00"], utc=True).tz_convert("Europe/Berlin")
    assert series.local_minutes(times).tolist() == [23 * 60.0, 26 * 60.0]


def _random_trace(seed: int):
    """1-4 days of 5-minute readings at a random phase, a wave plus a random walk in 40-400 mg/dL
    (whole numbers for even seeds, to hit the range boundaries), with 0-5 dropouts of 5 min - 5 h."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5)) * 288
    start = pd.Timestamp("2024-03-01") + pd.Timedelta(minutes=5 * int(rng.integers(0, 288)) + int(rng.integers(0, 5)))
    times = start + pd.to_timedelta(5 * np.arange(n), unit="min")
    walk = np.cumsum(rng.normal(0, 4, n))
    glucose = np.clip(140 + 60 * np.sin(np.arange(n) / rng.uniform(20, 80)) + walk - walk.mean(), 40, 400)
    glucose = np.round(glucose) if seed % 2 == 0 else glucose + rng.uniform(0, 1, n)
    keep = np.ones(n, dtype=bool)
    for _ in range(int(rng.integers(0, 6))):
        first = int(rng.integers(0, n))
        keep[first:first + int(rng.integers(1, 60))] = False
    return pd.DatetimeIndex(times[keep]), glucose[keep]


iglu = pytest.importorskip("iglu_python")


def _iglu_values(times, glucose):
    s = pd.Series(glucose, index=times)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        below = iglu.below_percent(s.copy(), targets_below=[54, 70])
        above = iglu.above_percent(s.copy(), targets_above=[180, 250])
        return {
            "mean_mg_dl": iglu.mean_glu(s.copy()), "sd_mg_dl": iglu.sd_glu(s.copy()), "cv_percent": iglu.cv_glu(s.copy()),
            "gmi_percent": iglu.gmi(s.copy()), "gri": iglu.gri(s.copy()), "lbgi": iglu.lbgi(s.copy()),
            "hbgi": iglu.hbgi(s.copy()), "j_index": iglu.j_index(s.copy()),
            "percent_below_54": below["below_54"], "percent_below_70": below["below_70"],
            "percent_above_180": above["above_180"], "percent_above_250": above["above_250"],
            "percent_70_180": iglu.in_range_percent(s.copy(), target_ranges=[[70, 180]])["in_range_70_180"],
            # iglu's ADRR uses 22.77 for Kovatchev's 10 x 1.509^2 = 22.77081; we keep the unrounded product
            "adrr": iglu.adrr(s.copy()) * (10 * 1.509 ** 2) / 22.77,
            "mage_mg_dl": iglu.mage(s.copy()), "conga1_mg_dl": iglu.conga(s.copy(), n=1),
            "modd_mg_dl": iglu.modd(s.copy()),
            "cgm_active_percent": iglu.active_percent(s.copy())["active_percent"],
        }


@pytest.mark.parametrize("first_seed", range(0, 200, 20))
def test_agrees_with_iglu_on_random_traces_with_gaps(first_seed):
    for seed in range(first_seed, first_seed + 20):
        times, glucose = _random_trace(seed)
        time_min = series.local_minutes(times)
        ours = cgm_summary(time_min, glucose)
        ours["cgm_active_percent"] = series.cgm_active_percent(time_min)  # iglu's automatic span
        for key, expected in _iglu_values(times, glucose).items():
            expected = float(expected)
            if np.isnan(expected):
                assert np.isnan(ours[key]), (seed, key)
            else:
                assert ours[key] == pytest.approx(expected, rel=1e-6, abs=1e-6), (seed, key)
