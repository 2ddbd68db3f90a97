"""Synthetic ``update()`` input dictionaries for tests, benchmarks and demos.

:func:`dense_history` builds days of Loop-like data: a CGM reading every 5 min, a
new temp basal every 5 min (the densest history Loop produces), four boluses and
four meals a day. Glucose is a smooth seeded curve, not a physiological model: the
data exercise the algorithm's code paths, they do not describe a patient.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np

from .dose import DoseType

MEAL_HOURS = (7.5, 12.5, 16.0, 19.0)
"""Local times of the four daily meals (hours after midnight)."""

MEAL_GRAMS = (45.0, 60.0, 15.0, 70.0)
MEAL_ABSORPTION_MIN = (180.0, 180.0, 120.0, 240.0)
CARB_RATIO_G_PER_U = 10.0


def _glucose(minutes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """mg/dL: a daily wave, meal bumps and a little noise, kept in 60-280."""
    hours = (minutes / 60.0) % 24.0
    wave = 125.0 + 25.0 * np.sin(2.0 * np.pi * (hours - 4.0) / 24.0)
    bumps = sum(50.0 * np.exp(-0.5 * ((hours - h - 1.0) / 0.7) ** 2) for h in MEAL_HOURS)
    return np.clip(wave + bumps + rng.normal(0.0, 3.0, minutes.size), 60.0, 280.0)


def dense_history(days: float = 1.0, seed: int = 0, start: _dt.datetime | None = None,
                  tz: _dt.tzinfo | None = _dt.timezone(_dt.timedelta(hours=-5))) -> dict:
    """A PyLoopKit input dictionary covering ``days`` days ending at ``time_to_calculate_at``.

    Parameters
    ----------
    days : float
        Length of the history (days).
    seed : int
        Seed of the glucose noise and temp basal rates.
    start : datetime, optional
        First CGM time (local, naive or in ``tz``); default 2026-03-02 00:02:37.
    tz : tzinfo or None
        Zone of the dates (None gives naive datetimes).

    Returns
    -------
    dict
        ``update()`` input: 288 CGM values and 288 five-minute temp basals per day, 4 boluses
        and 4 meals per day, adult exponential model, schedules and settings.
    """
    rng = np.random.default_rng(seed)
    start = (start or _dt.datetime(2026, 3, 2, 0, 2, 37)).replace(tzinfo=tz)
    n = int(round(days * 288))
    minutes = 5.0 * np.arange(n + 1)
    glucose = _glucose(minutes, rng)
    at = start + _dt.timedelta(minutes=float(minutes[-1]), seconds=20)
    temp_starts = [start + _dt.timedelta(minutes=float(m) - 1.0) for m in minutes[1:]]
    rates = np.round(np.clip(0.8 + (glucose[1:] - 120.0) / 60.0 + rng.normal(0, 0.1, n), 0.0, 3.0) / 0.05) * 0.05
    meal_times, meal_grams, meal_abs, bolus_times, bolus_units = [], [], [], [], []
    for day in range(int(np.ceil(days))):
        for h, g, a in zip(MEAL_HOURS, MEAL_GRAMS, MEAL_ABSORPTION_MIN):
            t = start.replace(hour=0, minute=0, second=0) + _dt.timedelta(days=day, hours=h)
            if start <= t < at - _dt.timedelta(minutes=10):
                meal_times.append(t)
                meal_grams.append(g)
                meal_abs.append(a)
                bolus_times.append(t + _dt.timedelta(minutes=2))
                bolus_units.append(round(g / CARB_RATIO_G_PER_U, 2))
    doses = sorted(
        [(DoseType.TEMP_BASAL, s, s + _dt.timedelta(minutes=30), float(r)) for s, r in zip(temp_starts, rates)]
        + [(DoseType.BOLUS, t, t + _dt.timedelta(seconds=40 * u), u) for t, u in zip(bolus_times, bolus_units)],
        key=lambda d: d[1])
    return {
        "time_to_calculate_at": at,
        "glucose_dates": [start + _dt.timedelta(minutes=float(m)) for m in minutes],
        "glucose_values": glucose.round(1).tolist(),
        "dose_types": [d[0] for d in doses],
        "dose_start_times": [d[1] for d in doses],
        "dose_end_times": [d[2] for d in doses],
        "dose_values": [d[3] for d in doses],
        "dose_delivered_units": [None] * len(doses),
        "carb_dates": meal_times, "carb_values": meal_grams, "carb_absorption_times": meal_abs,
        "sensitivity_ratio_start_times": [_dt.time(0), _dt.time(9)],
        "sensitivity_ratio_end_times": [_dt.time(9), _dt.time(0)],
        "sensitivity_ratio_values": [45.0, 55.0],
        "carb_ratio_start_times": [_dt.time(0)], "carb_ratio_values": [CARB_RATIO_G_PER_U],
        "basal_rate_start_times": [_dt.time(0), _dt.time(6), _dt.time(20)],
        "basal_rate_minutes": [360.0, 840.0, 240.0],
        "basal_rate_values": [0.8, 1.0, 0.85],
        "target_range_start_times": [_dt.time(0)], "target_range_end_times": [_dt.time(0)],
        "target_range_minimum_values": [100.0], "target_range_maximum_values": [110.0],
        "last_temporary_basal": [DoseType.TEMP_BASAL, temp_starts[-1], temp_starts[-1] + _dt.timedelta(minutes=30),
                                 float(rates[-1])],
        "settings_dictionary": {
            "model": [360.0, 75.0], "momentum_data_interval": 15.0, "suspend_threshold": 75.0,
            "dynamic_carb_absorption_enabled": True, "retrospective_correction_enabled": True,
            "retrospective_correction_integration_interval": 30.0, "recency_interval": 15.0,
            "retrospective_correction_grouping_interval": 30.0,
            "default_absorption_times": [120.0, 180.0, 240.0],
            "max_basal_rate": 4.0, "max_bolus": 10.0, "insulin_delay": 10.0, "carb_delay": 10.0,
            "rate_rounder": 0.05,
        },
    }
