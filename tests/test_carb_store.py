"""Own tests of carb_store: defaults, windows, model settings, dynamic vs static timelines."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from pyloopkit import carb_math, carb_store
from pyloopkit.errors import InvalidInputError
from pyloopkit.schedule import DailySchedule

T0 = 467_000_100.0
HOUR = 3600.0


@dataclass
class Settings:
    default_absorption_times: tuple = (120.0, 180.0, 240.0)
    carb_delay: float = 10.0
    carb_absorption_model: str = "parabolic"
    dynamic_carb_absorption_enabled: bool = True


@dataclass
class Inp:
    carb_s: np.ndarray
    carb_g: np.ndarray
    carb_absorption_min: np.ndarray
    carb_ratio: DailySchedule = field(default_factory=lambda: DailySchedule.constant(10.0))
    sensitivity: DailySchedule = field(default_factory=lambda: DailySchedule.constant(50.0))
    settings: Settings = field(default_factory=Settings)


def meals(**settings) -> Inp:
    return Inp(np.array([T0 - 9 * HOUR, T0, T0 + HOUR]), np.array([80.0, 30.0, 20.0]),
               np.array([180.0, None, 120.0], dtype=object), settings=Settings(**settings))


def test_absorption_defaults_and_validation():
    np.testing.assert_array_equal(carb_store.absorption_times_min([None, 90.0, np.nan]), [180.0, 90.0, 180.0])
    np.testing.assert_array_equal(carb_store.absorption_times_min([None], (60.0, 150.0, 300.0)), [150.0])
    with pytest.raises(InvalidInputError, match="default_absorption_times"):
        carb_store.absorption_times_min([None], (60.0, 0.0, 300.0))


def test_window_and_model_arguments():
    np.testing.assert_array_equal(carb_store.window([T0, T0 + 10, T0 + 20], T0 + 5), [1, 2])
    np.testing.assert_array_equal(carb_store.window([T0, T0 + 10, T0 + 20], T0, T0 + 10), [0, 1])
    assert carb_store.model_arguments("adaptive") == dict(model="piecewise_linear", adaptive_rate=True,
                                                          initial_absorption_time_overrun=1.0)
    assert carb_store.model_arguments("linear") == dict(model="linear")
    with pytest.raises(InvalidInputError, match="carb_absorption_model"):
        carb_store.model_arguments("gamma")


@pytest.mark.parametrize("model", ["parabolic", "linear", "piecewise_linear", "adaptive"])
def test_static_timeline_totals_and_window(model):
    """Entries older than 2 x slow before the start are left out (the 80 g meal here)."""
    inp = meals(dynamic_carb_absorption_enabled=False, carb_absorption_model=model)
    dates, effect = carb_store.glucose_effects(inp, None, start_s=T0 - 1800.0)
    assert dates[0] == T0 - 1800.0 and np.all(np.diff(dates) == 300.0)
    assert dates[-1] == T0 + HOUR + 2 * HOUR + 600.0
    assert effect[-1] == pytest.approx(5.0 * 50.0)
    cob_dates, cob = carb_store.carbs_on_board(inp, None, start_s=T0 - 300.0)
    assert cob[cob_dates == T0][0] == pytest.approx(30.0) and cob[-1] == pytest.approx(0.0)


@pytest.mark.parametrize("model", ["parabolic", "linear", "piecewise_linear", "adaptive"])
def test_dynamic_timeline_uses_counteraction(model):
    inp = meals(carb_absorption_model=model)
    starts = T0 + 300.0 * np.arange(12)
    ice = (starts, starts + 300.0, np.full(12, 2.0))
    status = carb_store.carb_status(inp, ice, start_s=T0 - 1800.0)
    assert len(status) == 2
    np.testing.assert_allclose(status.observed_grams.sum() * 5.0, 2.0 * 5 * 12)
    dates, effect = carb_store.glucose_effects(inp, ice, start_s=T0 - 1800.0)
    expected = carb_math.dynamic_carb_effects(status, dates, delay_s=600.0)
    np.testing.assert_allclose(effect, expected)
    assert effect[-1] == pytest.approx(5.0 * 50.0)
    _, cob = carb_store.carbs_on_board(inp, ice, start_s=T0 - 300.0)
    assert np.all((cob >= 0) & (cob <= 50.0))


def test_no_entries_gives_empty_timelines():
    inp = Inp(np.empty(0), np.empty(0), np.empty(0, dtype=object))
    for ice in (None, (np.empty(0),) * 3):
        assert carb_store.glucose_effects(inp, ice, start_s=T0)[0].size == 0
        assert carb_store.carbs_on_board(inp, ice, start_s=T0)[0].size == 0
