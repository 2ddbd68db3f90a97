"""Histories generated from known hourly settings, for recovery tests and benchmarks (extra ``io``).

Glucose follows the estimators' model equation (:mod:`pyloopkit.tune.model_fit`) with the *true*
hourly ISF, CR and basal need, the true carbs eaten and the insulin delivered; readings carry
Gaussian CGM noise. The person eats three meals a day (and sometimes a snack), counts carbs with
an error of up to ``carb_error`` (uniform), boluses ``counted / CR_current`` times a bolus error of
up to ``bolus_error``, takes 20 g (recorded, absorbed in 60 minutes) when CGM falls below 70 mg/dL
(at most once an hour), and a simple loop sets a temp basal every 5 minutes from the *current* settings:
``basal_current + (CGM - 110) / ISF_current / 2`` U/h, between 0 and 4 x the scheduled rate, 0 when
CGM < 90 mg/dL. Readings are reported within a CGM's range, 40-400 mg/dL (:data:`CGM_RANGE_MGDL`;
the model glucose itself is linear and unbounded).
"""
from __future__ import annotations

import datetime as _dt

import numpy as np

from ..input_validation import CGM_RANGE_MGDL
from .data import BIN_MIN, DEFAULT_CARB_DELAY_MIN, DEFAULT_INSULIN_MODEL, Stream

TRUE_SETTINGS = np.array([
    # ISF mg/dL/U by hour
    [55.0] * 6 + [40.0] * 5 + [45.0] * 6 + [50.0] * 4 + [55.0] * 3,
    # CR g/U by hour
    [10.0] * 5 + [7.0] * 6 + [12.0] * 5 + [9.0] * 8,
    # basal need U/h by hour
    [0.8] * 4 + [1.1] * 4 + [0.9] * 8 + [1.0] * 8,
])
"""Time-varying reference settings (ISF, CR, basal) for the proofs."""
MEALS = ((7.5, 30, 70), (12.5, 40, 80), (18.5, 40, 90))
"""(hour, min g, max g) of the daily meals."""
ABSORPTION_MIN = 180.0
RESCUE_ABSORPTION_MIN = 60.0


def _pandas():
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("pyloopkit.tune.simulate needs pandas: pip install 'pyloopkit[io]'") from e
    return pd


def simulate_history(days: float, truth: np.ndarray, current: np.ndarray, seed: int, cgm_sd: float = 5.0,
                     carb_error: float = 0.2, bolus_error: float = 0.2, snack_probability: float = 0.3,
                     start: _dt.datetime = _dt.datetime(2026, 1, 5, tzinfo=_dt.timezone.utc)):
    """A :class:`~pyloopkit.io.history.History` of ``days`` generated from ``truth`` (3, 24).

    ``current`` (3, 24) are the settings the person's loop and boluses use. Returns the history.
    """
    from ..io.history import History

    pd = _pandas()
    rng = np.random.default_rng(seed)
    n = int(round(days * 1440 / BIN_MIN))
    start_s = start.timestamp()
    hour0 = (start.hour + start.minute / 60.0)
    hours = ((hour0 + (np.arange(n) * BIN_MIN + BIN_MIN / 2) / 60.0) % 24).astype(int)
    ins_kernel = Stream(np.zeros(1), insulin_model=DEFAULT_INSULIN_MODEL).kernel()
    carb_kernel = Stream(np.zeros(1), absorption_min=ABSORPTION_MIN, delay_min=DEFAULT_CARB_DELAY_MIN).kernel()
    rescue_kernel = Stream(np.zeros(1), absorption_min=RESCUE_ABSORPTION_MIN, delay_min=DEFAULT_CARB_DELAY_MIN).kernel()
    pad = max(ins_kernel.size, carb_kernel.size)
    ins_act, carb_act = np.zeros(n + pad), np.zeros(n + pad)
    isf_t, cr_t, basal_t = truth
    isf_c, cr_c, basal_c = current
    meal_bins = {}
    for day in range(int(np.ceil(days))):
        for hour, lo, hi in MEALS:
            k = int((day * 24 + hour - hour0 + rng.uniform(-0.75, 0.75)) * 60 / BIN_MIN)
            meal_bins[k] = rng.uniform(lo, hi)
        if rng.random() < snack_probability:
            k = int((day * 24 + rng.uniform(14.5, 16.5) - hour0) * 60 / BIN_MIN)
            meal_bins[k] = rng.uniform(10, 25)
    bg = np.empty(n)
    cgm = np.empty(n)
    rates = np.empty(n)
    boluses, carbs = [], []
    g = 110.0
    rescue_until = -1
    noise = rng.normal(0.0, cgm_sd, n)
    for k in range(n):
        h = hours[k]
        bg[k] = g
        cgm[k] = min(max(g + noise[k], CGM_RANGE_MGDL[0]), CGM_RANGE_MGDL[1])
        if k in meal_bins and meal_bins[k] > 0:
            eaten = meal_bins[k]
            counted = round(eaten * (1.0 + rng.uniform(-carb_error, carb_error)))
            carb_act[k: k + carb_kernel.size] += eaten * carb_kernel
            carbs.append((k, float(counted), ABSORPTION_MIN))
            units = round(counted / cr_c[h] * (1.0 + rng.uniform(-bolus_error, bolus_error)), 2)
            ins_act[k: k + ins_kernel.size] += units * ins_kernel
            boluses.append((k, units))
        if cgm[k] < 70 and k > rescue_until:
            carb_act[k: k + rescue_kernel.size] += 20.0 * rescue_kernel
            carbs.append((k, 20.0, RESCUE_ABSORPTION_MIN))
            rescue_until = k + 12
        rate = basal_c[h] + (cgm[k] - 110.0) / isf_c[h] / 2.0 if cgm[k] >= 90 else 0.0
        rates[k] = round(min(max(rate, 0.0), 4.0 * basal_c[h]), 2)
        ins_act[k: k + ins_kernel.size] += rates[k] * BIN_MIN / 60.0 * ins_kernel
        g = g + isf_t[h] * (carb_act[k] / cr_t[h] - ins_act[k] + basal_t[h] * BIN_MIN / 60.0)
    times = pd.to_datetime(start_s + np.arange(n) * BIN_MIN * 60.0, unit="s", utc=True).tz_convert(start.tzinfo)

    def at(ks):
        return times[np.asarray(ks, dtype=int)] if len(ks) else pd.DatetimeIndex([], tz=start.tzinfo)

    glucose = pd.DataFrame({"time": times, "glucose_mg_dl": np.round(cgm, 1), "source_unit": "mg/dL", "kind": "cgm"})
    temp = pd.DataFrame({"start": times, "end": times + pd.Timedelta(minutes=BIN_MIN), "type": "TEMP_BASAL",
                         "value": rates, "unit": "U/h"})
    bk = [b[0] for b in boluses]
    bol = pd.DataFrame({"start": at(bk), "end": at(bk), "type": "BOLUS", "value": [b[1] for b in boluses],
                        "unit": "U"})
    doses = pd.concat([temp, bol], ignore_index=True).sort_values("start", kind="stable", ignore_index=True)
    ck = [c[0] for c in carbs]
    carb_table = pd.DataFrame({"time": at(ck), "grams": [c[1] for c in carbs],
                                "absorption_min": [c[2] for c in carbs]})
    return History(glucose=glucose, doses=doses, carbs=carb_table, source=f"pyloopkit.tune.simulate seed={seed}")
