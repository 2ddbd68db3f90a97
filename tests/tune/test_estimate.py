"""estimate(): recovery on simulated histories, limits, schedules for update(), autotune, answer()."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from pyloopkit.errors import InvalidInputError, MissingDataError
from pyloopkit.tune import Limits, TuneFormatError, answer, estimate
from pyloopkit.tune.estimate import NAMES, compact, hourly, hourly_settings
from pyloopkit.tune.simulate import TRUE_SETTINGS

from .conftest import MISSET, request_from_history

ROOT = Path(__file__).resolve().parents[2]
CURRENT = TRUE_SETTINGS * MISSET


@pytest.fixture(scope="module")
def model_fit(history14):
    return estimate(history14, hourly_settings(CURRENT), method="model")


def test_model_recovers_time_varying_settings_within_tolerance(model_fit):
    # 14 days, CGM noise 5 mg/dL, carb counts and boluses off by up to 20%, settings mis-set by 15-20%
    flagged = {(p["parameter"], p["hour"]) for p in model_fit.not_estimable}
    for i, name in enumerate(NAMES):
        err = np.abs(model_fit.hourly[name] / TRUE_SETTINGS[i] - 1.0)
        ok = np.array([(name, h) not in flagged for h in range(24)])
        assert ok.sum() >= 8, name
        assert err[ok].mean() < 0.08, (name, err[ok].mean())
        assert np.percentile(err[ok], 90) < 0.15, (name, np.percentile(err[ok], 90))
        # better than the settings it started from, everywhere on average
        assert err.mean() < np.abs(MISSET[i, 0] - 1.0) * 0.6, (name, err.mean())
    assert model_fit.loss < model_fit.loss_current


def test_model_confidence_intervals_and_reasons(model_fit):
    for name in NAMES:
        lo, hi, est = model_fit.ci_low[name], model_fit.ci_high[name], model_fit.hourly[name]
        assert np.all(lo < est) and np.all(est < hi)
    night_cr = [p for p in model_fit.not_estimable if p["parameter"] == "cr" and p["hour"] in (2, 3, 4)]
    assert len(night_cr) == 3 and all("carb absorption" in p["reason"] for p in night_cr)


def test_tuning_limit_is_respected(history14):
    e = estimate(history14, hourly_settings(CURRENT), limits={"tuning_limit": 0.1})
    for i, name in enumerate(NAMES):
        ratio = e.hourly[name] / CURRENT[i]
        assert np.all(ratio >= 0.9 - 1e-9) and np.all(ratio <= 1.1 + 1e-9)
    # basal was 20% too low: the limit binds
    assert np.mean(np.isclose(e.hourly["basal"] / CURRENT[2], 1.1)) > 0.5


def test_only_requested_schedules_change(history14):
    e = estimate(history14, hourly_settings(CURRENT), limits=Limits(tune=("basal",)))
    np.testing.assert_array_equal(e.hourly["isf"], CURRENT[0])
    np.testing.assert_array_equal(e.hourly["cr"], CURRENT[1])
    assert not np.allclose(e.hourly["basal"], CURRENT[2])


def test_autotune_moves_towards_the_truth_within_its_caps(history14):
    e = estimate(history14, hourly_settings(CURRENT), method="autotune")
    ratio = e.hourly["basal"] / CURRENT[2]
    assert np.all(ratio >= 0.7 - 1e-9) and np.all(ratio <= 1.2 + 1e-9)
    # basal was set 20% low and ISF 20% high: autotune raises basal and lowers ISF
    assert e.hourly["basal"].mean() > CURRENT[2].mean() * 1.05
    assert e.hourly["isf"].mean() < CURRENT[0].mean() * 0.95
    pts, used = e.details["points"], e.details["points_used"]
    assert min(pts.values()) > 0 and sum(pts.values()) > 14 * 288 * 0.9
    assert sum(used.values()) <= sum(pts.values()) and used["unannounced_meal"] <= pts["unannounced_meal"]
    assert len(e.details["days"]) == 14 and e.ci_low is None


def test_to_settings_feeds_update(model_fit):
    from pyloopkit.cli import load_input
    from pyloopkit.loop_data_manager import update

    d = load_input(str(ROOT / "example_files" / "synthetic_issue_report.json"))
    settings = model_fit.to_settings()
    assert settings["basal_rate_start_times"][0] == dt.time(0, 0)
    assert sum(settings["basal_rate_minutes"]) == 1440
    assert all(type(m) is float for m in settings["basal_rate_minutes"] + settings["basal_rate_values"])
    d.update(settings)
    out = update(d)
    assert np.isfinite(out["predicted_glucose_values"][-1])
    json.dumps(model_fit.to_dict())


def test_compact_hand_cases():
    values = np.array([1.0] * 6 + [1.3] * 6 + [1.02] * 12)
    s = compact(values, Limits(allowed_basal_rates=(0.0, 0.5, 1.0, 1.25, 1.5)), basal=True)
    assert s.index_min == [0, 360, 720] and s.values == [1.0, 1.25, 1.0]
    # three items; 1.3 and 1.02 are closest (|log 1.02/1.3| < |log 1.3|): they merge, time-weighted
    s = compact(values, Limits(maximum_schedule_item_count=2), basal=False)
    assert s.index_min == [0, 360]
    assert s.values == [1.0, pytest.approx((1.3 * 6 + 1.02 * 12) / 18)]
    s = compact(np.arange(24.0) + 1, Limits(minimum_time_interval_s=7200), basal=False)
    assert s.index_min == list(range(0, 1440, 120)) and s.values[0] == 1.5
    assert hourly([90, 720], [2.0, 4.0])[1] == pytest.approx((30 * 4 + 30 * 2) / 60)


def test_too_little_data_and_bad_input(history14):
    short = type(history14)(glucose=history14.glucose.iloc[:100], doses=history14.doses.iloc[:100],
                            carbs=history14.carbs.iloc[:0])
    with pytest.raises(MissingDataError):
        estimate(short, hourly_settings(CURRENT))
    with pytest.raises(InvalidInputError) as e:
        estimate(history14, {"basal_rate_start_times": ["00:00"], "basal_rate_values": [float("nan")]})
    assert {p.field for p in e.value.problems} >= {"basal_rate_values", "sensitivity_ratio_start_times"}
    with pytest.raises(InvalidInputError):
        estimate(history14, hourly_settings(CURRENT), method="guess")
    with pytest.raises(InvalidInputError) as e:
        estimate(history14, hourly_settings(CURRENT), limits={"tuning_limit": 1.5, "maximum_schedule_item_count": 0})
    assert {p.field for p in e.value.problems} == {"tuning_limit", "maximum_schedule_item_count"}
    with pytest.raises(InvalidInputError):
        estimate(history14, hourly_settings(CURRENT), limits={"max_change": 0.2})
    bad = type(history14)(glucose=history14.glucose.copy(), doses=history14.doses.copy(),
                          carbs=history14.carbs.copy())
    bad.glucose.loc[7, "glucose_mg_dl"] = float("nan")
    bad.doses.loc[3, "value"] = -1.0
    bad.carbs.loc[0, "grams"] = float("inf")
    with pytest.raises(InvalidInputError) as e:
        estimate(bad, hourly_settings(CURRENT))
    found = {(p.field, p.index) for p in e.value.problems}
    assert found == {("glucose.glucose_mg_dl", 7), ("doses.value", 3), ("carbs.grams", 0)}


def test_answer_in_tunes_layout_matches_estimate(history14):
    req = request_from_history(history14, CURRENT, tuning_limit=0.35, maximum_schedule_item_count=6,
                               allowed_basal_rates=[round(0.05 * k, 2) for k in range(60)])
    out = answer(req, "model")
    assert set(out) == {"version", "timezone", "insulin_sensitivity_schedule", "carb_ratio_schedule",
                        "basal_rate_schedule", "training_loss"}
    assert out["version"] == 1 and out["timezone"] == "Etc/UTC" and out["training_loss"] > 0
    basal = out["basal_rate_schedule"]
    assert len(basal["index"]) <= 6 and basal["index"][0] == 0
    assert all(abs(v / 0.05 - round(v / 0.05)) < 1e-9 for v in basal["values"])
    direct = estimate(history14, hourly_settings(CURRENT), limits={"tuning_limit": 0.35})
    # integer wire units (mU, whole mg/dL) give nearly the same fit as the history itself
    np.testing.assert_allclose(hourly(out["insulin_sensitivity_schedule"]["index"],
                                      out["insulin_sensitivity_schedule"]["values"]).mean(),
                               direct.hourly["isf"].mean(), rtol=0.05)
    with pytest.raises(TuneFormatError):
        answer(req, "gradient-boosting")
    assert answer(req, "autotune")["version"] == 1


def test_carb_entry_factors_find_a_miscounted_meal():
    """Carbs counted exactly, then one meal recorded as 1.6 x what was eaten: its fitted factor
    (eaten / entered, 1 / 1.6 = 0.625 in truth; the prior sd 0.15 pulls it towards 1) is the lowest
    of all meals and below 0.85, while the other meals stay near 1."""
    from pyloopkit.tune.simulate import simulate_history

    history = simulate_history(7, TRUE_SETTINGS, TRUE_SETTINGS, seed=5, carb_error=0.0, bolus_error=0.0)
    carbs = history.carbs.copy()
    meals = np.flatnonzero(carbs["grams"].to_numpy() >= 30)
    k = meals[7]
    carbs.loc[k, "grams"] = carbs.loc[k, "grams"] * 1.6
    history.carbs = carbs
    e = estimate(history, hourly_settings(TRUE_SETTINGS), method="model")
    factors = np.array(e.details["carb_entry_factors"])
    assert factors.size == len(carbs)  # one entry per recorded carb row (entries sorted by time)
    assert factors[k] < 0.85 and factors[k] == factors[meals].min(), factors[meals]
    others = np.delete(factors[meals], 7)
    assert np.median(np.abs(others - 1.0)) < 0.05


def test_windowed_rows_sum_consecutive_changes_within_an_hour():
    """Rows sum up to 6 usable 5-minute changes of one local hour; a gap or a new hour starts a row."""
    from types import SimpleNamespace

    from pyloopkit.tune import model_fit

    glucose = 100.0 + np.arange(26, dtype=float)  # +1 mg/dL per 5 min, bins 0-25 (hours 0, 1, 2)
    glucose[8] = np.nan  # changes 7 and 8 unusable
    obs = SimpleNamespace(glucose=glucose, hour=np.arange(26) // 12, carbs=[], n=26,
                          insulin_activity=lambda: np.full(26, 0.1), carb_activity=lambda: np.zeros(26))
    d = model_fit.Design.from_observations(obs, window=6)
    # hour 0: changes 0-5 | 6 | (7, 8 gone) 9-11; hour 1: 12-17 | 18-23; hour 2: 24
    np.testing.assert_array_equal(d.steps, [6, 1, 3, 6, 6, 1])
    np.testing.assert_array_equal(d.hour, [0, 0, 0, 1, 1, 2])
    np.testing.assert_allclose(d.dg, d.steps)
    np.testing.assert_allclose(d.insulin_u, 0.1 * d.steps)
