"""Simulated histories and Tune requests built from them (shared by the tune tests)."""
from __future__ import annotations

import numpy as np
import pytest

from pyloopkit.tune.codec import Schedule, Timeline, TuneRequest, encode
from pyloopkit.tune.simulate import TRUE_SETTINGS, simulate_history

MISSET = np.array([[1.2], [0.85], [0.8]])
"""Current settings as a fraction of the truth (ISF, CR, basal) in the tests."""


@pytest.fixture(scope="session")
def history14():
    return simulate_history(14, TRUE_SETTINGS, TRUE_SETTINGS * MISSET, seed=11)


def unix(column) -> np.ndarray:
    return (column.astype("int64").to_numpy() // 10**9).astype(np.int64)


def request_from_history(history, current: np.ndarray, **optional) -> dict:
    """A Tune v1 request (parsed JSON) of a simulated history: integer mU, mU/h, g and mg/dL."""
    d = history.doses
    basal = d[d["type"] == "TEMP_BASAL"]
    bolus = d[d["type"] == "BOLUS"]
    start = unix(basal["start"])
    timelines = [
        Timeline("basal", start, np.rint(basal["value"].to_numpy() * 1000).astype(np.int64),
                 unix(basal["end"]) - start, {"delay": 10.0, "peak": 75.0, "duration": 360.0}),
        Timeline("insulin", unix(bolus["start"]), np.rint(bolus["value"].to_numpy() * 1000).astype(np.int64),
                 None, {"delay": 10.0, "peak": 75.0, "duration": 360.0}),
        Timeline("carb", unix(history.carbs["time"]), np.rint(history.carbs["grams"].to_numpy()).astype(np.int64),
                 None, {"delay": 10.0, "duration": 180.0}),
        Timeline("glucose", unix(history.glucose["time"]),
                 np.rint(history.glucose["glucose_mg_dl"].to_numpy()).astype(np.int64)),
    ]
    hours = list(range(0, 1440, 60))
    req = TuneRequest("Etc/UTC", timelines,
                      insulin_sensitivity_schedule=Schedule(hours, [float(v) for v in current[0]]),
                      carb_ratio_schedule=Schedule(hours, [float(v) for v in current[1]]),
                      basal_rate_schedule=Schedule(hours, [float(v) for v in current[2]]), **optional)
    return encode(req)
