"""Forecasting: features, baselines, error grids, LSTM training/saving/calibration, CLI."""
import datetime as dt
import json
import os

import numpy as np
import pytest

from pyloopkit.errors import InvalidInputError
from pyloopkit.forecast import (DEFAULT_RECIPE, Autoregressive, ForecastRows, LinearTrend, LoopPrediction,
                                Persistence, Truth, clarke_zones, evaluate, parkes_zones, score)
from pyloopkit.forecast.data import check_disjoint, simulate_rows
from pyloopkit.forecast.features import HISTORY_STEPS, HORIZON_STEPS, HORIZONS_MIN

torch = pytest.importorskip("torch")
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "example_files", "synthetic_issue_report.json")


def synthetic_rows(n=200, bias=0.0, seed=0):
    """Rows whose target is Loop's prediction plus ``bias`` and a function of IOB (learnable)."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(80, 250, n)
    slope = rng.normal(0, 1.0, n)
    history = level[:, None] + slope[:, None] * 5 * np.arange(-(HISTORY_STEPS - 1), 1)
    prediction = level[:, None] + slope[:, None] * HORIZONS_MIN * 0.5
    iob = rng.uniform(0, 5, n)
    target = prediction + bias - 4.0 * iob[:, None] * HORIZONS_MIN / 60.0
    zeros = np.zeros((n, HORIZON_STEPS))
    return ForecastRows(origin=np.arange(n) * 3600.0, cgm_history=history, counteraction=np.zeros((n, HISTORY_STEPS)),
                        loop_prediction=prediction, insulin_effect=zeros, carb_effect=zeros, iob_u=iob,
                        cob_g=np.zeros(n), target=target)


@pytest.fixture(scope="module")
def simulated():
    return simulate_rows(["adult#001", "child#002"], seed=7, days=1.0, origin_every_min=60, warmup_min=600)


def test_simulated_rows_have_the_documented_shapes(simulated):
    n = len(simulated)
    assert n == 2 * 11  # origins at 600, 660, ..., 1200 min: the last one leaves 4 h of targets
    assert simulated.cgm_history.shape == (n, HISTORY_STEPS)
    for name in ("loop_prediction", "insulin_effect", "carb_effect", "target"):
        assert getattr(simulated, name).shape == (n, HORIZON_STEPS)
    assert np.all(np.isfinite(simulated.loop_prediction)) and np.all(np.isfinite(simulated.iob_u))
    assert set(simulated.group) == {"adult#001/7/loop", "child#002/7/loop"}
    # The target's first value is the reading 5 min after the origin, which is the history's last
    # value 5 min later: consecutive origins 60 min apart share readings.
    first = simulated.take(simulated.group == "adult#001/7/loop")
    assert first.target[0, 11] == pytest.approx(first.cgm_history[1, -1])


def test_truth_scores_zero_and_persistence_holds_the_last_reading(simulated):
    table = evaluate([Truth(), Persistence()], simulated)
    assert np.all(table[table.model == "truth"]["rmse"] == 0.0)
    assert np.all(table[table.model == "truth"]["clarke_A_percent"] == 100.0)
    np.testing.assert_array_equal(Persistence().predict_rows(simulated)[:, 47], simulated.cgm_history[:, -1])
    np.testing.assert_array_equal(LoopPrediction().predict_rows(simulated), simulated.loop_prediction)


def test_predict_gives_48_dates_five_minutes_apart_after_the_origin():
    from pyloopkit.cli import load_input

    inputs = load_input(EXAMPLE)
    forecast = Persistence().predict(inputs)
    assert len(forecast["dates"]) == len(forecast["values"]) == 48
    origin = inputs["time_to_calculate_at"]
    assert forecast["dates"][0] - origin == dt.timedelta(minutes=5)
    assert forecast["dates"][-1] - origin == dt.timedelta(minutes=240)
    assert forecast["values"][0] == inputs["glucose_values"][-1]


def test_linear_trend_extrapolates_a_ramp_exactly():
    rows = synthetic_rows(5)
    predicted = LinearTrend(30).predict_rows(rows)
    slope = (rows.cgm_history[:, -1] - rows.cgm_history[:, -2]) / 5.0
    np.testing.assert_allclose(predicted, rows.cgm_history[:, -1:] + slope[:, None] * HORIZONS_MIN, atol=1e-9)
    with pytest.raises(InvalidInputError, match="window_min"):
        LinearTrend(7)


def test_autoregression_recovers_a_known_process():
    rng = np.random.default_rng(3)
    n, length = 300, HISTORY_STEPS + HORIZON_STEPS + 1
    d = np.zeros((n, length))
    for t in range(2, length):
        d[:, t] = 0.6 * d[:, t - 1] - 0.2 * d[:, t - 2] + rng.normal(0, 1, n)
    series = 120 + np.cumsum(d, axis=1)
    rows = synthetic_rows(n)
    rows.cgm_history, rows.target = series[:, :HISTORY_STEPS], series[:, HISTORY_STEPS:HISTORY_STEPS + 48]
    model = Autoregressive(order=2).fit(rows)
    np.testing.assert_allclose(model.coef_[:2], [-0.2, 0.6], atol=0.03)  # oldest lag first
    with pytest.raises(RuntimeError):
        Autoregressive().predict_rows(rows)


def test_clarke_and_parkes_zones_on_hand_placed_points():
    reference = [100, 100, 50, 200, 300, 60]
    assert list(clarke_zones(reference, [110, 150, 200, 50, 150, 65])) == ["A", "B", "E", "E", "D", "A"]
    # Parkes type 1: (100, 300) lies between the C and D upper boundaries; (300, 80) below C lower.
    assert list(parkes_zones([100, 100, 100, 100, 40, 300], [100, 150, 300, 400, 200, 80])) == \
        ["A", "B", "C", "D", "D", "C"]


def test_score_rejects_non_finite_forecasts_by_index():
    with pytest.raises(InvalidInputError, match=r"\[1\]"):
        score([100, 100], [100, np.nan])
    s = score([60, 100, 65], [50, 60, 90])
    assert s["hypo_sensitivity"] == 0.5 and s["hypo_precision"] == 0.5


def test_recipe_splits_share_no_patient_or_seed():
    check_disjoint(DEFAULT_RECIPE)
    leaky = {**DEFAULT_RECIPE, "test": {**DEFAULT_RECIPE["test"], "patients": ["adult#001"]}}
    with pytest.raises(InvalidInputError, match="test.patients"):
        check_disjoint(leaky)


def test_lstm_learns_a_bias_and_an_iob_dependent_error(tmp_path):
    from pyloopkit.forecast import LSTMForecaster

    train, validation = synthetic_rows(400, bias=20.0, seed=1), synthetic_rows(100, bias=20.0, seed=2)
    model = LSTMForecaster("residual", hidden=8, seed=0)
    log = model.fit(train, validation, epochs=20, lr=5e-3, batch_size=32)
    before, after = np.sqrt(log[0]["validation_mse"]), np.sqrt(min(r["validation_mse"] for r in log))
    # Loop's prediction is off by 20 mg/dL minus 4 mg/dL/h per unit of IOB (RMSE 20 mg/dL).
    assert before > 15 and after < 0.35 * before
    model.save(str(tmp_path / "m"), note="test")
    again = type(model).load(str(tmp_path / "m"))
    np.testing.assert_array_equal(again.predict_rows(validation), model.predict_rows(validation))
    assert again.metadata["note"] == "test" and json.load(open(tmp_path / "m.json"))["mode"] == "residual"


def test_calibration_lowers_the_error_on_a_users_data():
    from pyloopkit.forecast import LSTMForecaster

    model = LSTMForecaster("residual", hidden=8, seed=0)
    model.fit(synthetic_rows(300, bias=0.0, seed=1), epochs=10, lr=5e-3)
    user = synthetic_rows(120, bias=15.0, seed=5)  # this user's glucose runs 15 mg/dL above the population's
    result = model.calibrate(user, epochs=15, lr=5e-3)
    assert result["rmse_after"] < 0.6 * result["rmse_before"]


def test_modes_and_sizes_are_validated():
    from pyloopkit.forecast import LSTMForecaster

    with pytest.raises(InvalidInputError, match="mode"):
        LSTMForecaster("both")
    with pytest.raises(InvalidInputError, match="targets"):
        LSTMForecaster(hidden=4).fit(synthetic_rows(10).take(slice(0, 10)).__class__(
            **{**synthetic_rows(10).__dict__, "target": None}))


def test_the_shipped_forecaster_loads_offline_and_predicts(capsys):
    from pyloopkit.cli import load_input, main
    from pyloopkit.forecast import load_forecaster

    model = load_forecaster("default")
    assert model.metadata["recipe"]["test"]["seeds"] == DEFAULT_RECIPE["test"]["seeds"]
    values = model.predict(load_input(EXAMPLE))["values"]
    assert len(values) == 48 and all(20 < v < 600 for v in values)
    assert main(["forecast", "predict", EXAMPLE]) == 0
    printed = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(printed["values"], values, atol=0.005)
    with pytest.raises(InvalidInputError, match="no such forecaster"):
        load_forecaster("nonexistent")


def test_rows_from_a_users_history_and_calibration_on_them():
    pytest.importorskip("pandas")
    from pyloopkit.forecast import LSTMForecaster, load_forecaster, rows_from_history
    from pyloopkit.report import simulated_history

    history = simulated_history(days=2, seed=3, dropout_per_day=0.0)
    rows = rows_from_history(history, every_min=120, warmup_min=360)
    glucose = history.glucose.set_index("time")["glucose_mg_dl"]
    origin = history.glucose["time"].iloc[0] + np.timedelta64(360, "m")
    # The first origin's targets are the readings 5..240 min after it, its history ends with the reading at it.
    assert rows.target[0, 0] == glucose[origin + np.timedelta64(5, "m")]
    assert rows.target[0, -1] == glucose[origin + np.timedelta64(240, "m")]
    assert rows.cgm_history[0, -1] == glucose[origin]
    assert len(rows) == 19  # origins every 2 h at 6, 8, ..., 42 h (the last reading is at 47:55)
    model = load_forecaster("default")
    result = model.calibrate(rows, epochs=3)  # runs on a History's rows; that it helps is tested above
    assert result["rows"] == 19 and np.isfinite(result["rmse_before"]) and result["rmse_before"] > 0
    assert isinstance(model, LSTMForecaster)


def test_unannounced_meals_leave_loop_without_carb_entries_but_not_the_patient_without_meals():
    rows = simulate_rows(["adult#004"], seed=9, days=1.0, origin_every_min=60, warmup_min=600,
                         conditions={"unannounced_probability": 1.0})
    told = simulate_rows(["adult#004"], seed=9, days=1.0, origin_every_min=60, warmup_min=600)
    assert np.all(rows.cob_g == 0.0) and told.cob_g.max() > 10.0
    # Same meals and sensor noise: the readings before the first meal agree, the rises remain.
    assert rows.target.max() > 180.0


def test_basal_bolus_rows_come_from_a_simulated_history():
    pytest.importorskip("pandas")
    from pyloopkit.forecast.data import basal_bolus_rows

    rows = basal_bolus_rows("child#003", seed=4, days=1.0, origin_every_min=60, warmup_min=600)
    assert 0 < len(rows) <= 11 and set(rows.group) == {"child#003/4/bb"}
    assert rows.target.shape == (len(rows), HORIZON_STEPS) and np.all(rows.target > 0)
