"""The PyLoopKit input dictionary, converted once into arrays, schedules and settings.

``update()`` accepts Tidepool PyLoopKit's input dictionary (index-matched lists,
datetimes or ISO strings, naive or aware). :func:`parse_input` converts a validated
dictionary (in mg/dL: see ``input_validation.convert_glucose_units``) into a
:class:`LoopInput` of numpy arrays (seconds since 2001-01-01T00:00:00Z), daily
schedules in local time, and a :class:`LoopSettings` whose defaults are applied
with ``is None`` tests, so a zero setting is honoured rather than replaced.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, fields

import numpy as np

from .date import MIXED_ZONES, common_zone, to_second, to_seconds, tzinfo_of, utc_offset_s, zone_key
from .dose import DoseArrays, DoseType
from .schedule import DailySchedule

@dataclass(frozen=True)
class LoopSettings:
    """Algorithm settings with PyLoopKit's defaults (minutes for durations, mg/dL, U, U/h).

    Only ``None`` means "use the default"; zero is a valid value.
    """

    model: tuple = (360.0, 75.0)
    momentum_data_interval: float = 15.0
    suspend_threshold: float | None = None
    dynamic_carb_absorption_enabled: bool = True
    retrospective_correction_enabled: bool = False
    retrospective_correction_integration_interval: float = 30.0
    recency_interval: float = 15.0
    retrospective_correction_grouping_interval: float = 30.0
    default_absorption_times: tuple = (120.0, 180.0, 240.0)
    max_basal_rate: float | None = None
    max_bolus: float | None = None
    insulin_delay: float = 10.0
    carb_delay: float = 10.0
    rate_rounder: float | None = None
    bolus_rounder: float | None = None
    rounding: str | None = None
    pump_rounding: str | None = None
    partial_application_factor: float | None = None
    max_physiologic_slope: float | None = None
    include_positive_velocity_and_rc_in_bolus: bool = False
    retrospective_correction: str = "standard"
    carb_absorption_model: str = "parabolic"
    dosing_strategy: str = "temp_basal"
    max_active_insulin: float | None = None
    use_mid_absorption_isf: bool = False
    gradual_transitions_threshold: float | None = None
    use_glucose_based_application_factor: bool = False

    @classmethod
    def from_dict(cls, settings: dict | None) -> "LoopSettings":
        """Settings from PyLoopKit's ``settings_dictionary``; unknown keys are ignored
        (PyLoopKit passes extra keys through), missing or ``None`` keys take the default."""
        settings = settings or {}
        values = {}
        for name in _SETTING_NAMES:
            if settings.get(name) is not None:
                v = settings[name]
                values[name] = tuple(float(x) for x in v) if isinstance(v, (list, tuple, np.ndarray)) else v
        if settings.get("retrospective_correction_enabled") is None and settings.get("retrospective_correction"):
            values["retrospective_correction_enabled"] = True
        return cls(**values)


_SETTING_NAMES = tuple(f.name for f in fields(LoopSettings))


@dataclass
class LoopInput:
    """Everything ``update()`` needs, as arrays (seconds since the reference date)."""

    now_s: float
    tz: _dt.tzinfo | None
    offset_s: float
    glucose_s: np.ndarray
    glucose_mgdl: np.ndarray
    doses: DoseArrays
    carb_s: np.ndarray
    carb_g: np.ndarray
    carb_absorption_min: np.ndarray
    sensitivity: DailySchedule
    carb_ratio: DailySchedule
    basal: DailySchedule
    target: DailySchedule
    settings: LoopSettings
    last_temp_basal: tuple | None = None
    injected: dict = field(default_factory=dict)
    glucose_dates: list | None = None
    """The caller's glucose datetime objects when they are in the output zone (reused for output)."""


def _opt_list(d: dict, key: str) -> list:
    value = d.get(key)
    return [] if value is None else list(value)


def _seconds(d: dict, key: str, known: dict) -> np.ndarray:
    """``d[key]`` as seconds since the reference date, from ``known`` when validation converted it."""
    return known[key] if key in known else to_seconds(_opt_list(d, key))


def _floats(d: dict, key: str, known: dict) -> np.ndarray:
    """``d[key]`` as a float array, from ``known`` when validation converted it."""
    return known[key] if key in known else np.asarray(_opt_list(d, key), dtype=float)


def _now(d: dict, glucose_s: np.ndarray):
    at = d.get("time_to_calculate_at")
    if at is None:
        if glucose_s.size == 0:
            raise ValueError("time_to_calculate_at is missing and there is no glucose to infer it from")
        first = d["glucose_dates"][-1]
        return float(glucose_s[-1]), tzinfo_of(first), utc_offset_s(first)
    return to_second(at), tzinfo_of(at), utc_offset_s(at)


def _doses(d: dict, known: dict) -> DoseArrays:
    types = known["dose_types"] if "dose_types" in known else _opt_list(d, "dose_types")
    delivered = d.get("dose_delivered_units")
    values = known["dose_values"] if "dose_values" in known else [float(v) for v in _opt_list(d, "dose_values")]
    doses = DoseArrays.from_lists(types, _seconds(d, "dose_start_times", known),
                                  _seconds(d, "dose_end_times", known), values,
                                  None if delivered is None or "dose_delivered_units" in known else list(delivered))
    return doses.with_(delivered_units=known["dose_delivered_units"]) if "dose_delivered_units" in known else doses


def _carb_absorption(d: dict, settings: LoopSettings, known: dict) -> np.ndarray:
    """Absorption times (min), the medium default where an entry has None (NaN in ``known``)."""
    medium = settings.default_absorption_times[1]
    if "carb_absorption_times" in known:
        times = known["carb_absorption_times"]
        return np.where(np.isnan(times), float(medium), times)
    times = _opt_list(d, "carb_absorption_times")
    return np.array([medium if t is None else float(t) for t in times], dtype=float)


def _last_temp_basal(d: dict):
    ltb = d.get("last_temporary_basal")
    if ltb is None or len(ltb) == 0:
        return None
    rate = float(ltb[3]) if len(ltb) > 3 and ltb[3] is not None else 0.0
    return (DoseType.parse(ltb[0]), to_second(ltb[1]), to_second(ltb[2]), rate)


def parse_schedules(d: dict, offset_s: float, known: dict | None = None):
    """The sensitivity, carb ratio, basal and target schedules of an input dictionary (start times and
    values from ``known`` where validation converted them)."""
    known = known or {}

    def listed(key: str):
        return known[key] if key in known else d[key]

    def schedule(start_key: str, values) -> DailySchedule:
        return DailySchedule.from_lists(listed(start_key), values, offset_s)

    isf = schedule("sensitivity_ratio_start_times", listed("sensitivity_ratio_values"))
    cr = schedule("carb_ratio_start_times", listed("carb_ratio_values"))
    basal = schedule("basal_rate_start_times", listed("basal_rate_values"))
    target_values = np.column_stack([np.asarray(listed("target_range_minimum_values"), float),
                                     np.asarray(listed("target_range_maximum_values"), float)])
    return isf, cr, basal, schedule("target_range_start_times", target_values)


_INJECTABLE = {
    "momentum": ("momentum_effect_dates", "momentum_effect_values"),
    "insulin": ("now_to_dia_insulin_effect_dates", "now_to_dia_insulin_effect_values"),
    "carb": ("carb_effect_dates", "carb_effect_values"),
}


def _injected(d: dict, known: dict) -> dict:
    """Precomputed effects a caller passed in (PyLoopKit's test hook), as arrays."""
    out = {}
    for name, (kd, kv) in _INJECTABLE.items():
        if d.get(kd) and d.get(kv) is not None:
            out[name] = (_seconds(d, kd, known), np.asarray(d[kv], dtype=float))
    if d.get("counteraction_starts") and d.get("counteraction_ends") and d.get("counteraction_values") is not None:
        out["counteraction"] = (_seconds(d, "counteraction_starts", known), _seconds(d, "counteraction_ends", known),
                                np.asarray(d["counteraction_values"], dtype=float))
    if d.get("previous_counteraction_effect_dates"):
        out["previous_counteraction_end_s"] = to_second(d["previous_counteraction_effect_dates"][-1])
    return out


def parse_input(d: dict, known_seconds: dict | None = None) -> LoopInput:
    """Convert a validated PyLoopKit input dictionary, in mg/dL, into a :class:`LoopInput`.

    ``known_seconds`` may hold what validation already converted (``validate_input``'s
    ``seconds_out``: date lists, their zones, dose type codes, numeric lists in mg/dL, schedules).
    """
    known = known_seconds or {}
    settings = LoopSettings.from_dict(d.get("settings_dictionary"))
    glucose_s = _seconds(d, "glucose_dates", known)
    glucose = _floats(d, "glucose_values", known)
    now_s, tz, offset_s = _now(d, glucose_s)
    isf, cr, basal, target = parse_schedules(d, offset_s, known)
    return LoopInput(
        now_s=now_s, tz=tz, offset_s=offset_s,
        glucose_s=glucose_s, glucose_mgdl=glucose,
        doses=_doses(d, known),
        carb_s=_seconds(d, "carb_dates", known),
        carb_g=_floats(d, "carb_values", known),
        carb_absorption_min=_carb_absorption(d, settings, known),
        sensitivity=isf, carb_ratio=cr, basal=basal, target=target,
        settings=settings,
        last_temp_basal=_last_temp_basal(d),
        injected=_injected(d, known),
        glucose_dates=_dates_in_zone(d, "glucose_dates", tz, known),
    )


def _dates_in_zone(d: dict, key: str, tz, known: dict) -> list | None:
    """The list ``d[key]`` when all are datetimes in the zone ``tz`` (same tzinfo, or both naive), else None
    (their :func:`~pyloopkit.date.common_zone` from ``known`` when validation found it)."""
    dates = _opt_list(d, key)
    zone = known[zone_key(key)] if zone_key(key) in known else common_zone(dates)
    return dates if zone is not MIXED_ZONES and (zone is tz or zone == tz) else None

