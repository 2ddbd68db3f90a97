"""update(input_dict, forecaster=f): the forecast in the output, and in the dose math on request."""
import os

import numpy as np
import pytest

from pyloopkit.cli import load_input
from pyloopkit.errors import InvalidInputError
from pyloopkit.forecast import Forecaster, Persistence
from pyloopkit.loop_data_manager import update

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "example_files", "synthetic_issue_report.json")


class Constant(Forecaster):
    """Forecasts the same glucose at every horizon."""

    def __init__(self, mg_dl):
        self.mg_dl = mg_dl

    def predict_rows(self, rows):
        return np.full((len(rows), 48), float(self.mg_dl))


@pytest.fixture(scope="module")
def inputs():
    return load_input(EXAMPLE)


def test_the_forecast_is_added_and_loop_still_decides_by_default(inputs):
    plain = update(inputs)
    out = update(inputs, forecaster=Persistence())
    assert out["prediction_source"] == "loop"
    assert len(out["forecast_glucose_values"]) == 48
    assert out["forecast_glucose_values"][0] == inputs["glucose_values"][-1]
    assert out["recommended_temp_basal"] == plain["recommended_temp_basal"]
    assert out["recommended_bolus"] == plain["recommended_bolus"]
    assert out["predicted_glucose_values"] == plain["predicted_glucose_values"]


def test_the_recommendation_follows_the_chosen_source(inputs):
    settings = inputs["settings_dictionary"]
    high = update(inputs, forecaster=Constant(300), prediction_source="forecaster")
    low = update(inputs, forecaster=Constant(60), prediction_source="forecaster")
    assert high["recommended_temp_basal"][0] == pytest.approx(settings["max_basal_rate"])  # far above target
    assert high["recommended_bolus"][0] > 0
    assert low["recommended_temp_basal"][0] == 0.0  # below the suspend threshold: zero delivery
    assert low["recommended_bolus"][0] == 0.0
    blend = update(inputs, forecaster=Constant(300), prediction_source="blend")
    assert blend["recommended_bolus"][0] < high["recommended_bolus"][0]


def test_the_setting_chooses_the_source_and_limits_still_hold(inputs):
    settings = {**inputs["settings_dictionary"], "prediction_source": "forecaster"}
    out = update({**inputs, "settings_dictionary": settings}, forecaster=Constant(5000))
    assert out["prediction_source"] == "forecaster"
    assert out["recommended_temp_basal"][0] <= settings["max_basal_rate"]
    assert out["recommended_bolus"][0] <= settings["max_bolus"]


def test_bad_sources_are_refused(inputs):
    with pytest.raises(InvalidInputError, match="prediction_source"):
        update(inputs, forecaster=Persistence(), prediction_source="lstm")
    with pytest.raises(InvalidInputError, match="needs a forecaster"):
        update(inputs, prediction_source="forecaster")
    with pytest.raises(InvalidInputError, match=r"forecast.values\[0\]"):
        update(inputs, forecaster=Constant(np.nan), prediction_source="forecaster")
