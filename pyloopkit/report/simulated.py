"""A :class:`~pyloopkit.io.history.History` made by the simulator, for demos, tests and benchmarks."""
from __future__ import annotations

import numpy as np

STEP_MIN = 5
#: Sensor changes every 10 days leave a 2-hour warm-up gap in the CGM record.
SENSOR_DAYS = 10
WARMUP_MIN = 120


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in ``mask``."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def simulated_history(days: float = 14, seed: int = 0, patient: str = "adult#001",
                      start: str = "2024-01-01T00:00:00", tz: str = "UTC", dropout_per_day: float = 0.5):
    """Simulate ``days`` of a virtual patient on the basal-bolus controller as a History.

    Parameters
    ----------
    days : float
        Length (days), a whole number of 5-minute steps.
    seed : int
        Seed of meals, sensor noise and CGM dropouts.
    patient : str
        A UVA/Padova patient name (see :func:`pyloopkit.simulation.patients.load_patients`).
    start : str
        Local wall-clock time of the first reading (ISO, no zone), also the meal scenario's start hour.
    tz : str
        IANA zone the times are in.
    dropout_per_day : float
        Mean number of random CGM dropouts (5-60 min each) per day, besides the 2-hour sensor
        warm-up every 10 days.

    Returns
    -------
    History
        ``glucose`` (CGM every 5 min, mg/dL), ``doses`` (the scheduled basal as one BASAL entry
        per run of equal rate, every bolus command as BOLUS), ``carbs`` (one entry per meal: the
        grams eaten in consecutive 5-minute steps), ``settings``: :func:`therapy_settings`.
    """
    import pandas as pd

    from pyloopkit.control.basal_bolus import BasalBolusController
    from pyloopkit.control.trial import run_trial
    from pyloopkit.io.history import History
    from pyloopkit.simulation.simulator import Simulator

    t0 = pd.Timestamp(start).tz_localize(tz)
    start_hour = t0.hour + t0.minute / 60.0
    sim = Simulator(patient, sensor="Dexcom", pump="Insulet", scenario="random", seed=seed, start_hour=start_hour)
    controller = BasalBolusController(sim.patients)
    trace = run_trial(sim, controller, days, seed=seed, step_minutes=STEP_MIN)
    time = t0 + pd.to_timedelta(trace["time_min"], unit="min")
    # the trial's last reading (at the end of the last step) would start another day
    cgm_time, cgm = time[:-1], trace["cgm"][0][:-1]

    rng = np.random.default_rng([seed, 1])
    n = cgm_time.size
    keep = np.ones(n, dtype=bool)
    per_sensor = SENSOR_DAYS * 1440 // STEP_MIN
    for first in range(per_sensor, n, per_sensor):
        keep[first:first + WARMUP_MIN // STEP_MIN] = False
    for _ in range(rng.poisson(dropout_per_day * float(days))):
        first = int(rng.integers(0, n))
        keep[first:first + int(rng.integers(1, 13))] = False
    glucose = pd.DataFrame({"time": cgm_time[keep], "glucose_mg_dl": cgm[keep], "source_unit": "mg/dL", "kind": "cgm"})

    step_start, step_end = time[:-1], time[1:]
    basal = trace["basal_u_per_h"][0]
    change = np.flatnonzero(np.r_[True, basal[1:] != basal[:-1]])
    run_end = np.r_[change[1:], basal.size]
    bolus_at = np.flatnonzero(trace["bolus_u"][0] > 0)
    doses = pd.concat([
        pd.DataFrame({"start": step_start[change], "end": step_end[run_end - 1], "type": "BASAL",
                      "value": basal[change], "unit": "U/h"}),
        pd.DataFrame({"start": step_start[bolus_at], "end": step_start[bolus_at], "type": "BOLUS",
                      "value": trace["bolus_u"][0][bolus_at], "unit": "U"}),
    ]).sort_values("start", kind="stable").reset_index(drop=True)

    eaten = trace["carbs_g"][0]
    first, last = _runs(eaten > 0)
    grams = np.add.reduceat(eaten, first) if first.size else np.zeros(0)
    carbs = pd.DataFrame({"time": step_start[first], "grams": grams, "absorption_min": np.nan})
    return History(glucose=glucose.reset_index(drop=True), doses=doses, carbs=carbs,
                   settings=therapy_settings(controller), source=f"simulated: {patient}, {days} days, seed {seed}")


def therapy_settings(controller) -> dict:
    """The controller's rates as PyLoopKit schedule keys (one item each, start times "HH:MM:SS", as
    ``pyloopkit.io`` stores them) plus Loop's limits: target 100-110 mg/dL, suspend threshold
    70 mg/dL, maximum basal 4 x the basal rate, maximum bolus 15 U, rapid-acting adult model."""
    rate = float(controller.basal_u_per_h[0])
    return {
        "basal_rate_start_times": ["00:00:00"], "basal_rate_values": [rate],
        "carb_ratio_start_times": ["00:00:00"], "carb_ratio_values": [float(controller.carb_ratio_g_per_u[0])],
        "sensitivity_ratio_start_times": ["00:00:00"],
        "sensitivity_ratio_values": [float(controller.correction_factor_mg_dl_per_u[0])],
        "target_range_start_times": ["00:00:00"], "target_range_minimum_values": [100.0],
        "target_range_maximum_values": [110.0],
        "settings_dictionary": {"model": [360.0, 75.0], "suspend_threshold": 70.0, "max_basal_rate": 4.0 * rate,
                                "max_bolus": 15.0},
    }
