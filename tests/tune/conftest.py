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
    """Whole Unix seconds of a time-zone-aware column (whatever its resolution)."""
    import pandas as pd

    return ((column - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy().astype(np.int64)


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
    ]
    c = history.carbs
    for minutes in sorted(set(c["absorption_min"])):
        sel = c[c["absorption_min"] == minutes]
        timelines.append(Timeline("carb", unix(sel["time"]), np.rint(sel["grams"].to_numpy()).astype(np.int64),
                                  None, {"delay": 10.0, "duration": float(minutes)}))
    timelines += [
        Timeline("glucose", unix(history.glucose["time"]),
                 np.rint(history.glucose["glucose_mg_dl"].to_numpy()).astype(np.int64)),
    ]
    hours = list(range(0, 1440, 60))
    req = TuneRequest("Etc/UTC", timelines,
                      insulin_sensitivity_schedule=Schedule(hours, [float(v) for v in current[0]]),
                      carb_ratio_schedule=Schedule(hours, [float(v) for v in current[1]]),
                      basal_rate_schedule=Schedule(hours, [float(v) for v in current[2]]), **optional)
    return encode(req)
