"""Tests of pyloopkit.plots on small hand-made update() outputs."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pytest

from pyloopkit.plots import effect_alone, plot_effects, plot_update

TZ = dt.timezone(dt.timedelta(hours=-7))
NOW = dt.datetime(2019, 8, 15, 12, 0, tzinfo=TZ)


def every_5_min(start: dt.datetime, n: int) -> list[dt.datetime]:
    return [start + dt.timedelta(minutes=5 * i) for i in range(n)]


def hand_made_output() -> dict:
    history = every_5_min(NOW - dt.timedelta(minutes=55), 12)  # last reading at NOW
    future = every_5_min(NOW, 13)  # NOW .. NOW + 60 min
    insulin = [-1.0 * i for i in range(13)]  # -1 mg/dL per 5 min
    carbs = [2.0 * i for i in range(13)]  # +2 mg/dL per 5 min
    return {
        "input_data": {
            "glucose_dates": history,
            "glucose_values": [100.0 + i for i in range(12)],  # 100 .. 111 mg/dL
            "time_to_calculate_at": NOW.isoformat(),  # strings are accepted too
        },
        "predicted_glucose_dates": future,
        "predicted_glucose_values": [111.0 + i for i in range(13)],  # 111 + (2 - 1) per step
        "insulin_effect_dates": future, "insulin_effect_values": insulin,
        "carb_effect_dates": future, "carb_effect_values": carbs,
        "momentum_effect_dates": future[:3], "momentum_effect_values": [0.0, 0.5, 1.0],
        "retrospective_effect_dates": future[:4], "retrospective_effect_values": [111.0, 110.0, 109.5, 109.5],
        "insulin_on_board_timeline_dates": future, "insulin_on_board_timeline_values": np.linspace(2.0, 1.4, 13),
        "cob_timeline_dates": future, "cob_timeline_values": np.linspace(30.0, 18.0, 13),
        "recommended_temp_basal": [0.5, 30.0],
        "recommended_bolus": [1.25, 0.0, None],
    }


def line(ax, label):
    matches = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(matches) == 1, label
    return matches[0]


def test_plot_update_panels_units_and_lines(tmp_path):
    path = tmp_path / "update.png"
    fig = plot_update(hand_made_output(), str(path), title="hand-made")
    assert path.exists() and path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 4
    assert [ax.get_ylabel() for ax in fig.axes] == ["glucose (mg/dL)", "effect alone\n(mg/dL change)",
                                                    "insulin (U, U/h)", "carbs on board (g)"]
    assert fig.axes[-1].get_xlabel() == "local time (UTC-07:00)"
    glucose_ax, effects_ax = fig.axes[:2]
    assert {"CGM history", "prediction"} <= {ln.get_label() for ln in glucose_ax.get_lines()}
    assert {"insulin", "carbs", "momentum", "retrospective correction"} <= {
        ln.get_label() for ln in effects_ax.get_lines()}
    # The effect-alone curves are in their own panel, as changes from now: insulin -1 mg/dL per 5 minutes.
    np.testing.assert_allclose(line(effects_ax, "insulin").get_ydata()[1:], -np.arange(13.0))
    # Retrospective effect stored as glucose levels: only its changes count.
    np.testing.assert_allclose(line(effects_ax, "retrospective correction").get_ydata()[1:], [0.0, -1.0, -1.5, -1.5])
    low, high = glucose_ax.get_ylim()
    assert low > 90.0 and high < 130.0  # the glucose axis is not blown out by the effect curves
    assert "temp basal 0.50 U/h for 30 min" in fig._suptitle.get_text()
    assert "bolus 1.25 U" in fig._suptitle.get_text()
    assert [t.get_text() for t in glucose_ax.texts if t.get_text() == "now"] == ["now"]


def _with_therapy(out: dict) -> dict:
    """The hand-made output with a target range, a suspend threshold, one bolus, one temp basal and a meal."""
    out["input_data"].update({
        "target_range_start_times": [dt.time(0)], "target_range_minimum_values": [100.0],
        "target_range_maximum_values": [110.0], "settings_dictionary": {"suspend_threshold": 70.0},
        "dose_types": ["TempBasal", "Bolus"], "dose_values": [0.8, 2.5],
        "dose_start_times": [NOW - dt.timedelta(minutes=40), NOW - dt.timedelta(minutes=30)],
        "dose_end_times": [NOW - dt.timedelta(minutes=10), NOW - dt.timedelta(minutes=29)],
        "carb_dates": [NOW - dt.timedelta(minutes=30)], "carb_values": [40.0], "carb_absorption_times": [180.0],
    })
    return out


def test_plot_update_therapy_markers_and_low_predictions(tmp_path):
    out = _with_therapy(hand_made_output())
    out["predicted_glucose_values"] = list(np.linspace(111.0, 30.0, 13))
    fig = plot_update(out, str(tmp_path / "therapy.png"))
    glucose_ax, _, insulin_ax, _ = fig.axes
    labels = {h.get_label() for h in glucose_ax.get_legend_handles_labels()[0]}
    assert {"target range", "suspend threshold 70 mg/dL", "bolus", "carb entry",
            "prediction below 40 mg/dL"} <= labels
    low = line(glucose_ax, "prediction below 40 mg/dL").get_ydata()
    assert np.all(low < 40.0) and low.size == int(np.sum(np.linspace(111.0, 30.0, 13) < 40.0))
    texts = {t.get_text() for t in glucose_ax.texts}
    assert {"2.5 U", "40 g", "now"} <= texts
    assert "temp basal (U/h)" in {h.get_label() for h in insulin_ax.get_legend_handles_labels()[0]}


def test_effects_alone_add_up_to_the_prediction():
    out = hand_made_output()
    start, g0 = out["input_data"]["glucose_dates"][-1], out["input_data"]["glucose_values"][-1]
    total = np.full(13, g0)
    for key in ("insulin_effect", "carb_effect"):
        _, alone = effect_alone(start, g0, out[f"{key}_dates"], np.asarray(out[f"{key}_values"]))
        total += alone[1:] - g0
    np.testing.assert_allclose(total, out["predicted_glucose_values"])


def test_effect_alone_uses_the_point_before_the_start():
    dates = every_5_min(NOW - dt.timedelta(minutes=10), 5)  # NOW-10 .. NOW+10
    got_dates, got = effect_alone(NOW + dt.timedelta(minutes=2), 90.0, dates, np.array([0.0, -1.0, -3.0, -6.0, -10.0]))
    assert got_dates[0] == NOW + dt.timedelta(minutes=2) and got_dates[1:] == dates[3:]
    np.testing.assert_allclose(got, [90.0, 87.0, 83.0])  # changes since -3 (value at NOW)
    assert effect_alone(NOW, 90.0, [], np.empty(0))[1].size == 0


def test_plot_update_without_data_still_draws(tmp_path):
    fig = plot_update({"recommended_temp_basal": None}, str(tmp_path / "empty.png"))
    assert (tmp_path / "empty.png").exists()
    assert len(fig.axes) == 4
    assert "no recommendation" in fig._suptitle.get_text()


def test_carbs_on_board_is_drawn_from_the_meal():
    """update()'s cob_timeline starts at the run time; the figure's COB starts at the first meal in view and
    agrees with update()'s carbs on board now."""
    import warnings

    from pyloopkit import update
    from pyloopkit.synthetic import dense_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = update(dense_history(days=0.8))
    fig = plot_update(out, history_hours=6.0)
    cob_line = line(fig.axes[3], "carbs on board since the meal")
    dates, grams = cob_line.get_xdata(), np.asarray(cob_line.get_ydata(), dtype=float)
    view_start = out["input_data"]["glucose_dates"][-1] - dt.timedelta(hours=6)
    meal = min(d for d in out["input_data"]["carb_dates"] if d >= view_start)
    first = dates[0] if isinstance(dates[0], dt.datetime) else None
    assert first is not None and first < out["cob_timeline_dates"][0]
    assert abs((first - meal).total_seconds()) <= 300.0
    index = [i for i, d in enumerate(out["cob_timeline_dates"]) if d <= out["input_data"]["time_to_calculate_at"]][-1]
    at_now = [g for d, g in zip(dates, grams) if d == out["cob_timeline_dates"][index]]
    assert at_now == pytest.approx([out["cob_timeline_values"][index]], abs=1e-9)


def test_plot_update_rejects_mismatched_lists():
    out = hand_made_output()
    out["cob_timeline_values"] = [1.0, 2.0]
    with pytest.raises(ValueError, match="cob_timeline"):
        plot_update(out)


def test_plot_effects_minutes_and_dates(tmp_path):
    minutes = np.arange(0, 361, 5.0)
    fig = plot_effects(minutes, {"insulin effect": -40.0 * (1 - np.exp(-minutes / 75)),
                                 "IOB": np.exp(-minutes / 75)}, str(tmp_path / "insulin.png"))
    assert (tmp_path / "insulin.png").exists()
    assert [ax.get_ylabel() for ax in fig.axes] == ["insulin effect (mg/dL)", "IOB (U)"]
    assert fig.axes[-1].get_xlabel() == "time (minutes)"

    dates = every_5_min(NOW, 37)
    fig = plot_effects(dates, {"carb effect": np.linspace(0, 150, 37), "COB": np.linspace(30, 0, 37),
                               "absorbed": (np.linspace(0, 30, 37), "g")}, str(tmp_path / "carbs.png"))
    assert [ax.get_ylabel() for ax in fig.axes] == ["carb effect (mg/dL)", "COB (g)", "absorbed (g)"]
    assert fig.axes[-1].get_xlabel() == "local time (UTC-07:00)"
    with pytest.raises(ValueError, match="COB"):
        plot_effects(dates, {"COB": [1.0]})


def test_import_pyloopkit_does_not_import_matplotlib():
    code = "import sys, pyloopkit, pyloopkit.plots; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
