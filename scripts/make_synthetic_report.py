"""Write ``example_files/synthetic_issue_report.json``: a synthetic 24 h Loop issue report.

The day is made here, deterministically from a seed, in the JSON layout of Tidepool-parsed
Loop issue reports (keys with a leading space where Swift descriptions leave one, Loop time
strings, ``basal_rate_timeZone``...), so that ``pyloopkit.pyloop_parser.parse_report`` and
``example.py`` can run it without any real patient data.

The patient is a small compartment model integrated at 1-minute steps:

* insulin: two subcutaneous compartments with time constant ``TAU_INSULIN_MIN``; the
  insulin acting on glucose is the outflow of the second one (U/min);
* carbs: two gut compartments with a time constant of a quarter of the meal's absorption time;
  the rate of appearance (g/min) raises glucose by ``ISF / CR`` mg/dL per g;
* glucose (mg/dL/min): ``ISF * (basal need - insulin action) + CSF * appearance``, plus
  counter-regulation below 70 mg/dL; the patient's true ISF, CR and basal need differ
  somewhat from the pump settings, so the controller has work to do.

The controller (not Loop: a proportional rule on a 30-minute glucose extrapolation minus
insulin on board) sets a 30-minute temp basal whenever its rate changes or the running one
expires; meal boluses follow the carb ratio plus a correction. The CGM adds AR(1) noise.
The report's ``recommended_temp_basal`` and ``recommended_bolus`` are that controller's last
decision (they only date the run); the Loop app's own prediction lists are left empty because
no Loop app made this report.

Run ``python scripts/make_synthetic_report.py [--seed N] [--out PATH]``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "example_files" / "synthetic_issue_report.json"
UTC_OFFSET_S = -5 * 3600
"""Local zone of the synthetic patient (UTC-05:00)."""
DAY_START_UTC = dt.datetime(2026, 3, 2, 5, 2, 37, tzinfo=dt.timezone.utc)
"""First CGM reading: 00:02:37 local time."""
CGM_INTERVAL_MIN = 5
N_CGM = 289
"""24 h of readings every 5 minutes, both ends included."""
WARMUP_MIN = 360

TAU_INSULIN_MIN = 55.0
ISF_TRUE = 48.0  # mg/dL/U
CR_TRUE = 10.5  # g/U
TARGET = 110.0  # mg/dL, the controller's target
MAX_BASAL = 3.0  # U/h
MAX_BOLUS = 10.0  # U
BOLUS_SECONDS_PER_UNIT = 40.0  # delivery speed of a pump bolus

# Pump settings (local seconds after midnight, value).
BASAL_SCHEDULE = [(0, 0.8), (14400, 1.0), (32400, 0.85), (75600, 0.75)]  # U/h
ISF_SCHEDULE = [(0, 55.0), (21600, 45.0), (72000, 50.0)]  # mg/dL/U
CR_SCHEDULE = [(0, 12.0), (21600, 9.0), (39600, 11.0), (61200, 10.0)]  # g/U
TARGET_SCHEDULE = [(0, (100.0, 110.0)), (25200, (100.0, 105.0)), (79200, (105.0, 115.0))]  # mg/dL
TRUE_BASAL_NEED = [(0, 0.75), (14400, 1.05), (32400, 0.9), (75600, 0.7)]  # U/h, the patient's

# Meals: (minutes after the first reading, grams, absorption time in hours).
MEALS = [(7 * 60 + 25, 45.0, 3.0), (12 * 60 + 35, 60.0, 3.0), (15 * 60 + 50, 15.0, 2.0), (19 * 60 + 5, 70.0, 4.0)]


def schedule_at(schedule, local_s: np.ndarray) -> np.ndarray:
    """Schedule value at local seconds after midnight (vectorised, repeats daily)."""
    starts = np.array([s for s, _ in schedule], dtype=float)
    values = np.array([v for _, v in schedule], dtype=float)
    return values[np.searchsorted(starts, np.mod(local_s, 86400.0), side="right") - 1]


def local_seconds(minute: np.ndarray | float) -> np.ndarray:
    """Local seconds after midnight of minutes after the first reading."""
    t0 = DAY_START_UTC.timestamp() + UTC_OFFSET_S
    return np.mod(t0 + 60.0 * np.asarray(minute, dtype=float), 86400.0)


def round_to(value: float, step: float) -> float:
    return round(float(np.round(value / step) * step), 10)


def simulate_day(seed: int = 1) -> dict:
    """Minute-by-minute patient and controller over the warm-up and the 24 h day.

    Returns the CGM readings and the temp basals, boluses and carb entries, with times in
    minutes after the first reading.
    """
    rng = np.random.default_rng(seed)
    n_min = (N_CGM - 1) * CGM_INTERVAL_MIN + 1
    minutes = np.arange(-WARMUP_MIN, n_min)
    need_u_per_min = schedule_at(TRUE_BASAL_NEED, local_seconds(minutes)) / 60.0
    sched_u_per_h = schedule_at(BASAL_SCHEDULE, local_seconds(minutes))

    meal_index = {m: i for i, (m, _, _) in enumerate(MEALS)}
    gut = np.zeros((len(MEALS), 2))
    tau_gut = np.array([h * 60.0 / 4.0 for _, _, h in MEALS])
    x1 = x2 = sched_u_per_h[0] / 60.0 * TAU_INSULIN_MIN
    glucose = 120.0
    noise = 0.0

    cgm, temps, boluses = [], [], []
    rate, rate_end = None, -np.inf
    pending_bolus = np.zeros(minutes.size + 60)
    for k, m in enumerate(minutes):
        if m >= 0 and m % CGM_INTERVAL_MIN == 0:
            noise = 0.7 * noise + rng.normal(0.0, 2.2)
            cgm.append((m, round(float(np.clip(glucose + noise, 40.0, 400.0)), 1)))
            local = local_seconds(m)
            isf = float(schedule_at(ISF_SCHEDULE, local))
            iob = x1 + x2 - 2.0 * sched_u_per_h[k] / 60.0 * TAU_INSULIN_MIN
            slope = (cgm[-1][1] - cgm[-4][1]) / 15.0 if len(cgm) >= 4 else 0.0
            correction_u = (cgm[-1][1] + 30.0 * slope - TARGET) / isf - iob
            new_rate = round_to(np.clip(sched_u_per_h[k] + 2.0 * correction_u, 0.0, MAX_BASAL), 0.05)
            if new_rate != rate or m >= rate_end:
                rate, rate_end = new_rate, m + 30
                temps.append((m, rate))
            if m in meal_index:
                grams = MEALS[meal_index[m]][1]
                cr = float(schedule_at(CR_SCHEDULE, local))
                units = round_to(np.clip(grams / cr + max(correction_u, 0.0), 0.0, MAX_BOLUS), 0.05)
                boluses.append((m, units))
                n_deliver = max(1, int(np.ceil(units * BOLUS_SECONDS_PER_UNIT / 60.0)))
                pending_bolus[k:k + n_deliver] += units / n_deliver
        if m in meal_index:
            gut[meal_index[m], 0] += MEALS[meal_index[m]][1]
        delivery = (sched_u_per_h[k] if rate is None or m >= rate_end else rate) / 60.0 + pending_bolus[k]
        action = x2 / TAU_INSULIN_MIN
        appearance = gut[:, 1] / tau_gut
        dglucose = ISF_TRUE * (need_u_per_min[k] - action) + ISF_TRUE / CR_TRUE * appearance.sum()
        dglucose += 0.05 * max(70.0 - glucose, 0.0)
        x1, x2 = x1 + delivery - x1 / TAU_INSULIN_MIN, x2 + (x1 - x2) / TAU_INSULIN_MIN
        gut = gut + np.column_stack((-gut[:, 0] / tau_gut, gut[:, 0] / tau_gut - appearance))
        glucose = float(np.clip(glucose + dglucose, 39.0, 450.0))
    return {"cgm": cgm, "temps": temps, "boluses": boluses,
            "carbs": [(m, g, h) for m, g, h in MEALS], "last_minute": int(minutes[-1])}


# ---------------------------------------------------------------- report layout

def loop_time(minute: float) -> str:
    """Loop's time string for minutes after the first reading."""
    return (DAY_START_UTC + dt.timedelta(minutes=float(minute))).strftime("%Y-%m-%d %H:%M:%S +0000")


def make_uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4)).upper()


def glucose_samples(cgm, rng) -> list[dict]:
    return [{
        "isDisplayOnly": "false", "provenanceIdentifier": "\"\"", "quantity": value, "quantity_units": "mg/dL",
        "sampleUUID": make_uuid(rng), "startDate": loop_time(m), "syncIdentifier": f"\"{make_uuid(rng)}\"",
        "syncVersion": "1"} for m, value in cgm]


def dose_entry(kind: str, start_min: float, end_min: float, value: float, unit: str, sync: str) -> dict:
    return {"description": "nil", "endDate": loop_time(end_min), "scheduledBasalRate": "nil",
            "startDate": loop_time(start_min), "syncIdentifier": f"\"{sync}\"", "type": f"LoopKit.DoseType.{kind}",
            "unit": f"LoopKit.DoseUnit.{unit}", "value": repr(float(value))}


def normalized_doses(sim: dict, now_min: float, rng) -> list[dict]:
    """Temp basals (past ones in U delivered, the running one in U/h, as Loop 1.x lists them)
    and boluses, sorted by start."""
    rows = []
    temps = sim["temps"]
    for i, (m, rate) in enumerate(temps):
        end = min(m + 30.0, temps[i + 1][0] if i + 1 < len(temps) else m + 30.0)
        if i + 1 < len(temps):
            rows.append((m, dose_entry("tempBasal", m, end, rate * (end - m) / 60.0, "units", rng.bytes(16).hex())))
        else:
            rows.append((m, dose_entry("tempBasal", m, end, rate, "unitsPerHour", rng.bytes(16).hex())))
    for m, units in sim["boluses"]:
        seconds = units * BOLUS_SECONDS_PER_UNIT
        rows.append((m + 0.1, dose_entry("bolus", m + 0.1, m + 0.1 + seconds / 60.0, units, "units",
                                         rng.bytes(16).hex())))
    return [entry for start, entry in sorted(rows, key=lambda r: r[0]) if start <= now_min]


def carb_entries(sim: dict, rng) -> list[dict]:
    return [{"absorptionTime": f" {h * 3600.0}", "createdByCurrentApp": " true", "externalID": " ",
             "foodType": " ", "isUploaded": " false", "quantity": g, "quantity_units": "g",
             "sampleUUID": f" {make_uuid(rng)}", "startDate": f" {loop_time(m - 2)}",
             "syncIdentifier": f" {make_uuid(rng)}", "syncVersion": " 1"} for m, g, h in sim["carbs"]]


def schedule_items(schedule) -> list[dict]:
    return [{"startTime": float(s), "value": v} for s, v in schedule]


def build_report(sim: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed + 1000)
    now_min = sim["last_minute"] + 0.75
    last_m, last_rate = sim["temps"][-1]
    now = loop_time(now_min)
    return {
        "file_name": "synthetic_issue_report.json",
        "loop_version": "synthetic day (pyloopkit scripts/make_synthetic_report.py, not the Loop app)",
        "synthetic_seed": seed,
        "basal_rate_schedule": schedule_items(BASAL_SCHEDULE),
        "basal_rate_timeZone": UTC_OFFSET_S,
        "carb_ratio_schedule": schedule_items(CR_SCHEDULE),
        "carb_ratio_timeZone": UTC_OFFSET_S,
        "carb_ratio_unit": "g",
        "insulin_sensitivity_factor_schedule": schedule_items(ISF_SCHEDULE),
        "insulin_sensitivity_factor_timeZone": UTC_OFFSET_S,
        "insulin_sensitivity_factor_unit": "mg/dL",
        "correction_range_schedule": [{"startTime": str(float(s)), "value": list(v)} for s, v in TARGET_SCHEDULE],
        "override_units": "mg/dL",
        "carb_default_absorption_times_fast": 7200.0,
        "carb_default_absorption_times_medium": 10800.0,
        "carb_default_absorption_times_slow": 14400.0,
        "insulin_model": "humalogNovologAdult",
        "insulin_action_duration": 21600.0,
        "maximum_basal_rate": MAX_BASAL,
        "maximum_bolus": MAX_BOLUS,
        "retrospective_correction_enabled": "true",
        "suspend_threshold": 75.0,
        "suspend_threshold_unit": "mg/dL",
        "glucose_store": {"cacheLength": " 86400.0", "managedDataInterval": " 0.0",
                          "momentumDataInterval": " 900.0"},
        "cached_glucose_samples": glucose_samples(sim["cgm"], rng),
        "cached_carb_entries": carb_entries(sim, rng),
        "cached_dose_entries": [],
        "get_normalized_pump_event_dose": [],
        "get_pump_event_values": [],
        "get_normalized_dose_entries": normalized_doses(sim, now_min, rng),
        "last_temp_basal": {" description": "nil", " endDate": loop_time(last_m + 30), " scheduledBasalRate": "nil",
                            " startDate": loop_time(last_m), " syncIdentifier": "nil",
                            " type": "LoopKit.DoseType.tempBasal", " unit": "LoopKit.DoseUnit.unitsPerHour",
                            " value": last_rate},
        "recommended_temp_basal": {" date": now, " duration": 1800.0, " unitsPerHour": last_rate},
        "recommended_bolus": {" amount": 0.0, " date": now, " notice": "nil", " pendingInsulin": 0.0},
        "predicted_glucose": [], "insulin_effect": [], "carb_effect": [], "glucose_momentum_effect": [],
        "retrospective_glucose_effect": [], "insulin_counteraction_effects": [],
    }


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    report = build_report(simulate_day(args.seed), args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return args.out


if __name__ == "__main__":
    path = main()
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
