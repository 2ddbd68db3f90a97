"""Property-based fuzzing of ``update()`` and ``replay()`` (issue 3, item 3 and "never crash on real data").

Messy but valid inputs are built from :func:`pyloopkit.synthetic.dense_history` and from the four
reference issue reports (``pyloop_parser.parse_report``), then mutated: doses shuffled, overlapping
and superseding temp basals, suspend/resume pairs and a trailing suspend, zero-length doses, boluses
during temp basals, delivered units set or unknown, carbs with unknown absorption and carbs after the
last dose (even after now), CGM gaps, a single CGM value, flat and extreme glucose (40-400 mg/dL),
mmol/L inputs, naive or aware dates in zones with non-zero offsets, schedules whose items cross
midnight, Walsh and exponential models, and every setting documented in ``docs/update.md``.

Properties (docs/update.md, issue 3 item 3): no exception; every output value finite and
index-matched; the temp basal in [0, max_basal_rate], bolus and automatic bolus in [0, max_bolus];
suspension when the current glucose or a prediction within the insulin action is below the suspend
threshold; IOB/COB finite, COB in [0, entered grams]; a replay step equals ``update()`` run on the
data known at that step. Invalid inputs raise ``InvalidInputError`` naming the field.
"""
from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pyloopkit import replay, update
from pyloopkit.dose import DoseType
from pyloopkit.dose_math import ULP_OF_ONE
from pyloopkit.errors import InvalidInputError
from pyloopkit.input_validation import MMOL_TO_MGDL
from pyloopkit.insulin_models import model_from_setting
from pyloopkit.synthetic import dense_history

from tests.conftest import REFERENCE_DIR

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
REPORTS = [REFERENCE_DIR / "issue_reports" / f"example_issue_report_{i}.json" for i in range(1, 5)]

ZONES = [None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5)), dt.timezone(dt.timedelta(hours=5, minutes=30)),
         dt.timezone(dt.timedelta(hours=13)), dt.timezone(dt.timedelta(hours=-9, minutes=-30)),
         dt.timezone(dt.timedelta(hours=12, minutes=45))]
"""Naive, UTC, and zones with whole, half and quarter hour offsets on both sides of UTC."""

TYPE_SPELLINGS = {
    DoseType.BOLUS: ["Bolus", "bolus", "BOLUS"],
    DoseType.TEMP_BASAL: ["TempBasal", "tempbasal", "TEMPBASAL"],
    DoseType.BASAL: ["Basal", "BasalProfileStart", "basalprofilestart"],
    DoseType.SUSPEND: ["Suspend", "PumpSuspend", "pumpsuspend"],
    DoseType.RESUME: ["Resume", "PumpResume", "resume"],
}

DOSE_KEYS = ("dose_types", "dose_start_times", "dose_end_times", "dose_values", "dose_delivered_units")
CARB_KEYS = ("carb_dates", "carb_values", "carb_absorption_times")
INJECTED_KEYS = ("counteraction_starts", "counteraction_ends", "counteraction_values")

# Output timelines that must be index-matched (dates, values).
TIMELINES = ("predicted_glucose", "insulin_effect", "momentum_effect", "carb_effect", "retrospective_effect",
             "cob_timeline", "insulin_on_board_timeline")


# ------------------------------------------------------------------ strategies

LIMIT_U_PER_H = st.one_of(st.just(0.0), st.floats(0.1, 10.0))
LIMIT_U = st.one_of(st.just(0.0), st.floats(0.1, 25.0))
"""Maximum basal rate / bolus: 0, or at least the largest pump increment drawn (0.1), since a limit
below the increment is invalid input (no non-zero amount could be delivered)."""

def _minutes(x: float) -> dt.timedelta:
    """A duration of ``x`` minutes in whole seconds (see the xfail test on sub-second dates below)."""
    return dt.timedelta(seconds=round(60.0 * float(x)))


@st.composite
def schedules(draw) -> dict:
    """ISF, carb ratio, basal and target schedules of 1-12 items; when the first item does not start at
    midnight the last one runs over midnight into the next day."""
    n = draw(st.integers(1, 12))
    slots = sorted(draw(st.lists(st.integers(0, 47), min_size=n, max_size=n, unique=True)))
    starts = [dt.time(s // 2, 30 * (s % 2)) for s in slots]
    ends = starts[1:] + starts[:1]
    minutes = [((slots[(i + 1) % n] - slots[i]) % 48 or 48) * 30.0 for i in range(n)]

    def values(lo, hi):
        return [draw(st.floats(lo, hi)) for _ in range(n)]

    lows = values(70.0, 180.0)
    return {
        "sensitivity_ratio_start_times": starts, "sensitivity_ratio_end_times": ends,
        "sensitivity_ratio_values": values(10.0, 400.0),
        "carb_ratio_start_times": starts, "carb_ratio_values": values(2.0, 150.0),
        "basal_rate_start_times": starts, "basal_rate_minutes": minutes,
        "basal_rate_values": [draw(st.sampled_from([0.0, 0.05, 0.5, 1.0, 2.35, 5.0])) for _ in range(n)],
        "target_range_start_times": starts, "target_range_end_times": ends,
        "target_range_minimum_values": lows,
        "target_range_maximum_values": [lo + draw(st.floats(0.0, 60.0)) for lo in lows],
    }


@st.composite
def setting_choices(draw) -> dict:
    """Every setting of docs/update.md, each either absent (default) or drawn from its valid range."""
    if draw(st.booleans()):
        model = [draw(st.sampled_from([2.0, 3.0, 4.0, 4.5, 5.0, 6.0, 7.0]))]
    else:
        dia = draw(st.floats(120.0, 600.0))
        model = [dia, draw(st.floats(10.0, dia / 2.0 - 1.0))]
    s = {
        "model": model,
        "insulin_delay": draw(st.sampled_from([0.0, 0, 5.0, 10.0, 20.0])),
        "carb_delay": draw(st.sampled_from([0.0, 10.0, 15.0, 60.0])),
        "momentum_data_interval": draw(st.sampled_from([5.0, 15.0, 30.0])),
        "suspend_threshold": draw(st.one_of(st.none(), st.floats(40.0, 150.0))),
        "max_basal_rate": draw(LIMIT_U_PER_H),
        "max_bolus": draw(LIMIT_U),
        "dynamic_carb_absorption_enabled": draw(st.booleans()),
        "retrospective_correction_enabled": draw(st.booleans()),
        "retrospective_correction": draw(st.sampled_from([None, "standard", "integral"])),
        "retrospective_correction_integration_interval": draw(st.sampled_from([None, 30.0, 60.0])),
        "recency_interval": draw(st.sampled_from([None, 15.0, 5.0])),
        "retrospective_correction_grouping_interval": draw(st.sampled_from([None, 30.0, 45.0])),
        "default_absorption_times": draw(st.sampled_from([None, [120.0, 180.0, 240.0], [60.0, 90.0, 360.0],
                                                          [300.0, 60.0, 30.0]])),
        "carb_absorption_model": draw(st.sampled_from([None, "parabolic", "linear", "piecewise_linear", "adaptive"])),
        "dosing_strategy": draw(st.sampled_from([None, "temp_basal", "automatic_bolus"])),
        "max_active_insulin": draw(st.one_of(st.none(), st.floats(0.0, 20.0))),
        "rounding": draw(st.sampled_from([None, "nearest", "down"])),
        "rate_rounder": draw(st.sampled_from([None, 0.025, 0.05, 0.1])),
        "bolus_rounder": draw(st.sampled_from([None, 0.025, 0.05, 0.1])),
        "partial_application_factor": draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
        "include_positive_velocity_and_rc_in_bolus": draw(st.booleans()),
        "max_physiologic_slope": draw(st.sampled_from([None, 4.0, 0.5])),
    }
    return {k: v for k, v in s.items() if v is not None or draw(st.booleans())}


NONE_DEFAULTED = ("momentum_data_interval", "retrospective_correction_integration_interval", "recency_interval",
                  "retrospective_correction_grouping_interval", "insulin_delay", "carb_delay")
"""Settings an explicit ``None`` sets to their default (docs/update.md)."""


def _spell(kind: DoseType, draw):
    return draw(st.sampled_from([kind] + TYPE_SPELLINGS[kind]))


def _mutate_glucose(d: dict, draw) -> None:
    """Flat, rescaled into 40-400, a random walk; a gap of missing hours; or one value only."""
    values = np.asarray(d["glucose_values"], dtype=float)
    if d.get("glucose_units") == "mmol/L":
        values = values * MMOL_TO_MGDL
    shape = draw(st.sampled_from(["as_is", "flat", "rescaled", "walk"]))
    if shape == "flat":
        values = np.full(values.size, draw(st.floats(40.0, 400.0)))
    elif shape == "rescaled" and values.size > 1 and np.ptp(values) > 0:
        lo = draw(st.floats(40.0, 400.0))
        hi = draw(st.floats(lo, 400.0))
        values = lo + (values - values.min()) / np.ptp(values) * (hi - lo)
    elif shape == "walk":
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
        values = np.clip(draw(st.floats(40.0, 400.0)) + np.cumsum(rng.normal(0.0, 6.0, values.size)), 40.0, 400.0)
    values = np.clip(values, 40.0, 400.0)
    dates = list(d["glucose_dates"])
    gaps_s = [(b - a).total_seconds() for a, b in zip(dates, dates[1:])]
    bound_s = int(min([120.0] + [(g - 2.0) / 2.0 for g in gaps_s]))
    if bound_s > 0 and draw(st.booleans()):  # irregular CGM intervals: readings moved, order kept
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
        shifts = rng.integers(-bound_s, bound_s + 1, len(dates))
        shifts[-1] = min(shifts[-1], 0)  # never after time_to_calculate_at
        dates = [x + dt.timedelta(seconds=int(k)) for x, k in zip(dates, shifts)]
    if draw(st.integers(0, 5)) == 0 and len(dates) > 1:  # the last hour at 1-min CGM intervals (interpolated)
        last = dates[-1]
        extra = [last - dt.timedelta(minutes=m) for m in range(59, 0, -1)]
        keep_old = [x < extra[0] for x in dates[:-1]]
        old_s = np.array([(x - last).total_seconds() for x in dates])
        new_s = np.array([(x - last).total_seconds() for x in extra])
        new_values = np.interp(new_s, old_s, values)
        dates = [x for x, k in zip(dates[:-1], keep_old) if k] + extra + [last]
        values = np.concatenate([values[:-1][np.array(keep_old, dtype=bool)], new_values, values[-1:]])
    keep = np.ones(len(dates), dtype=bool)
    if draw(st.booleans()) and len(dates) > 2:
        first = draw(st.integers(0, len(dates) - 2))
        keep[first:first + draw(st.integers(1, 12 * 6))] = False  # up to 6 h missing, possibly the latest
    if draw(st.integers(0, 9)) == 0:
        keep[:] = False
        keep[-1] = True  # a single CGM value
    if not keep.any():
        keep[-1] = True
    d["glucose_dates"] = [x for x, k in zip(dates, keep) if k]
    d["glucose_values"] = [float(v) for v, k in zip(values, keep) if k]
    d.pop("glucose_units", None)


def _mutate_doses(d: dict, draw, history_start: dt.datetime, now: dt.datetime, suspends: bool = True) -> None:
    """Extra temp basals (overlapping, superseding, zero-length), boluses during them, suspend/resume
    pairs and a trailing suspend, scheduled basal entries; delivered units set or None; shuffled."""
    rows = [list(r) for r in zip(*(d.get(k) or [None] * len(d["dose_types"]) for k in DOSE_KEYS))]
    if draw(st.integers(0, 7)) == 0:
        rows = []
    span_min = max(1.0, (now - history_start).total_seconds() / 60.0)
    when = st.floats(0.0, span_min)

    def at(offset_min):
        return min(now, history_start + _minutes(offset_min))

    for _ in range(draw(st.integers(0, 4))):  # overlapping / superseding temp basals, some zero-length
        s = at(draw(when))
        length = draw(st.sampled_from([0.0, 5.0, 30.0, 120.0, 1440.0]))
        rate = draw(st.floats(0.0, 6.0))
        rows.append([_spell(DoseType.TEMP_BASAL, draw), s, s + _minutes(length), rate,
                     draw(st.sampled_from([None, rate * length / 60.0]))])
    for _ in range(draw(st.integers(0, 4))):  # boluses, some zero-length, some partly delivered
        s = at(draw(when))
        units = draw(st.floats(0.0, 10.0))
        rows.append([_spell(DoseType.BOLUS, draw), s, s + _minutes(draw(st.sampled_from([0.0, 0.5, 2.0]))), units,
                     draw(st.sampled_from([None, units, units / 2.0]))])
    for _ in range(draw(st.integers(0, 2))):  # scheduled basal entries
        s = at(draw(when))
        rate = draw(st.floats(0.0, 3.0))
        rows.append([_spell(DoseType.BASAL, draw), s, s + _minutes(draw(st.floats(0.0, 180.0))), rate, None])
    for _ in range(draw(st.integers(0, 2 if suspends else 0))):  # suspend/resume pairs
        s = at(draw(when))
        r = max(s, min(now, s + _minutes(draw(st.floats(0.0, 90.0)))))
        rows.append([_spell(DoseType.SUSPEND, draw), s, s, 0.0, None])
        rows.append([_spell(DoseType.RESUME, draw), r, r, 0.0, None])
    if suspends and draw(st.integers(0, 4)) == 0:  # a trailing suspend, never resumed
        s = now - _minutes(draw(st.floats(0.0, 60.0)))
        rows.append([_spell(DoseType.SUSPEND, draw), s, s, 0.0, None])
    if rows and draw(st.integers(0, 4)) == 0:  # a dose recorded twice
        rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
    if draw(st.booleans()):
        rows = [rows[i] for i in draw(st.permutations(range(len(rows))))]
    for key, column in zip(DOSE_KEYS, zip(*rows) if rows else [()] * len(DOSE_KEYS)):
        d[key] = list(column)


def _mutate_carbs(d: dict, draw, history_start: dt.datetime, now: dt.datetime) -> None:
    """Extra meals (0-150 g), absorption unknown or 1-480 min, some after the last dose or after now;
    entries duplicated or out of order."""
    rows = [list(r) for r in zip(*(d.get(k) or [] for k in CARB_KEYS))]
    if draw(st.integers(0, 5)) == 0:
        rows = []
    span_min = max(1.0, (now - history_start).total_seconds() / 60.0)
    for _ in range(draw(st.integers(0, 3))):
        rows.append([history_start + _minutes(draw(st.floats(0.0, span_min + 60.0))), draw(st.floats(0.0, 150.0)),
                     draw(st.one_of(st.none(), st.sampled_from([1.0, 5.0]), st.floats(30.0, 480.0)))])
    if rows and draw(st.integers(0, 4)) == 0:  # two entries at the same time
        rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
    if draw(st.booleans()):
        rows.sort(key=lambda r: r[0])
    for key, column in zip(CARB_KEYS, zip(*rows) if rows else [()] * len(CARB_KEYS)):
        d[key] = list(column)


def _to_mmol(d: dict, draw) -> None:
    """Declare glucose, ISF and/or target in mmol/L (each independently)."""
    if draw(st.booleans()):
        d["glucose_values"] = [v / MMOL_TO_MGDL for v in d["glucose_values"]]
        d["glucose_units"] = "mmol/L"
        s = d["settings_dictionary"]
        if s.get("suspend_threshold") is not None:
            s["suspend_threshold"] = s["suspend_threshold"] / MMOL_TO_MGDL
    if draw(st.booleans()):
        d["sensitivity_ratio_values"] = [v / MMOL_TO_MGDL for v in d["sensitivity_ratio_values"]]
        d["sensitivity_ratio_value_units"] = "mmol/L/U"
    if draw(st.booleans()):
        for key in ("target_range_minimum_values", "target_range_maximum_values"):
            d[key] = [v / MMOL_TO_MGDL for v in d[key]]
        d["target_range_value_units"] = "mmol/L"


def _last_temp_basal(d: dict, draw, now: dt.datetime) -> list:
    """The given one, none, or the latest temp basal of the (mutated) history still running at now."""
    choice = draw(st.sampled_from(["given", "none", "from_doses"]))
    if choice == "none":
        return []
    if choice == "from_doses":
        temps = [(s, e, v) for k, s, e, v in zip(d["dose_types"], d["dose_start_times"], d["dose_end_times"],
                                                 d["dose_values"])
                 if DoseType.parse(k) == DoseType.TEMP_BASAL and s <= now < e]
        if temps:
            s, e, v = max(temps, key=lambda x: x[0])
            return [draw(st.sampled_from([DoseType.TEMP_BASAL, "TempBasal", "Basal"])), s, e, v]
        return []
    return d.get("last_temporary_basal") or []


def _mutate(d: dict, draw, *, replace_schedules: bool, replace_settings: bool, suspends: bool = True) -> dict:
    d = copy.deepcopy(d)
    now = d["time_to_calculate_at"]
    history_start = min(d["glucose_dates"][0], now - dt.timedelta(hours=6))
    _mutate_glucose(d, draw)
    _mutate_doses(d, draw, history_start, now, suspends)
    _mutate_carbs(d, draw, history_start, now)
    if replace_schedules:
        for key in [k for k in d if k.endswith("_value_units")]:
            del d[key]
        d.update(draw(schedules()))
    if replace_settings:
        d["settings_dictionary"] = draw(setting_choices())
    else:
        d["settings_dictionary"] = {**d["settings_dictionary"], **draw(st.fixed_dictionaries(
            {}, optional={"max_basal_rate": LIMIT_U_PER_H, "max_bolus": LIMIT_U,
                          "suspend_threshold": st.floats(50.0, 120.0),
                          "dosing_strategy": st.sampled_from(["temp_basal", "automatic_bolus"]),
                          "retrospective_correction": st.sampled_from(["standard", "integral"]),
                          "carb_absorption_model": st.sampled_from(["linear", "piecewise_linear", "adaptive"])}))}
    d["last_temporary_basal"] = _last_temp_basal(d, draw, now)
    lag = draw(st.sampled_from([None, 0.0, 0.0, 3.0, 16.0, 300.0]))  # None: at the last glucose itself
    d["time_to_calculate_at"] = d["glucose_dates"][-1] if lag is None else now + _minutes(lag)
    if "sensitivity_ratio_value_units" not in d and "target_range_value_units" not in d:
        _to_mmol(d, draw)
    return d


@st.composite
def synthetic_inputs(draw, suspends: bool = True) -> dict:
    tz = draw(st.sampled_from(ZONES))
    start = dt.datetime(2026, 3, 2, draw(st.integers(0, 23)), draw(st.integers(0, 59)), 37)
    base = dense_history(days=draw(st.sampled_from([0.3, 1.0, 1.4])), seed=draw(st.integers(0, 5)),
                         start=start, tz=tz)
    return _mutate(base, draw, replace_schedules=draw(st.booleans()), replace_settings=True, suspends=suspends)


# ------------------------------------------------------------------ properties

def _finite(x) -> bool:
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, (list, tuple)):
        return all(_finite(v) for v in x)
    return True


def _at_now(d: dict, start_key: str, values: list) -> float:
    """The schedule value in force at ``time_to_calculate_at``'s local time of day (an item set whose first
    start is after midnight wraps the last value over midnight)."""
    now = d["time_to_calculate_at"]
    tod = now.hour * 3600 + now.minute * 60 + now.second
    starts = [t.hour * 3600 + t.minute * 60 + t.second for t in d[start_key]]
    i = max([j for j, start in enumerate(starts) if start <= tod], default=len(starts) - 1)
    return values[i]


def _suspend_threshold_mgdl(d: dict) -> float:
    """The effective suspend threshold (mg/dL): the setting, else the lower target bound at now."""
    s = d["settings_dictionary"].get("suspend_threshold")
    if s is not None:
        return s * (MMOL_TO_MGDL if d.get("glucose_units") == "mmol/L" else 1.0)
    factor = MMOL_TO_MGDL if d.get("target_range_value_units") == "mmol/L" else 1.0
    return _at_now(d, "target_range_start_times", d["target_range_minimum_values"]) * factor


def _running_temp_rate(d: dict) -> float | None:
    """Rate (U/h) of ``last_temporary_basal`` when it is still running at now, else None."""
    ltb = d.get("last_temporary_basal")
    if not ltb or ltb[2] <= d["time_to_calculate_at"]:
        return None
    return float(ltb[3])


def check_properties(d: dict, out: dict) -> None:
    """The safety and shape promises of docs/update.md for one run."""
    for key, value in out.items():
        if key != "input_data":
            assert _finite(value), f"{key} has a non-finite value: {value!r}"
    for name in TIMELINES:
        assert len(out[f"{name}_dates"]) == len(out[f"{name}_values"]), name
    assert len(out["counteraction_effect_start_times"]) == len(out["counteraction_effect_end_times"]) \
        == len(out["counteraction_effect_values"])
    assert out["predicted_glucose_dates"] == sorted(out["predicted_glucose_dates"])

    s = d["settings_dictionary"]
    max_basal = s.get("max_basal_rate")
    max_bolus = s.get("max_bolus")
    temp, bolus, auto = out["recommended_temp_basal"], out["recommended_bolus"], out["recommended_autobolus"]
    if temp is not None:
        assert 0.0 <= temp[0] <= max_basal, temp
        assert temp[1] in (0.0, 30.0), temp
    if bolus is not None:
        assert 0.0 <= bolus[0] <= max_bolus, bolus
        assert bolus[1] >= 0.0
    if auto is not None:
        assert 0.0 <= auto <= max_bolus, auto

    iob, cob = out["insulin_on_board"], out["carbs_on_board"]
    assert math.isfinite(iob) and math.isfinite(cob)
    total_g = float(sum(d.get("carb_values") or []))
    assert 0.0 <= cob <= total_g + 1e-9, (cob, total_g)
    assert all(0.0 <= c <= total_g + 1e-9 for c in out["cob_timeline_values"])

    if temp is None and bolus is None:
        return  # stale glucose: no recommendation at all
    scheduled = _at_now(d, "basal_rate_start_times", d["basal_rate_values"])
    if s.get("dosing_strategy") == "automatic_bolus" and temp is not None:
        assert temp[0] <= scheduled, ("automatic bolus strategy: temp basal above the scheduled rate", temp)
    if s.get("max_active_insulin") is not None:
        headroom = max(0.0, s["max_active_insulin"] - iob - bolus[1])
        assert temp is None or temp[0] <= scheduled + headroom * 2.0 + 1e-9, (temp, scheduled, headroom)
        assert auto is None or auto <= headroom + 1e-9, (auto, headroom)
    threshold = _suspend_threshold_mgdl(d)
    model = model_from_setting(s.get("model", [360.0, 75.0]), s.get("insulin_delay", 10.0))
    now = d["time_to_calculate_at"]
    horizon = now + _minutes(model.effect_duration_min)
    current = out["predicted_glucose_values"][0]
    low = current < threshold or any(
        v < threshold for t, v in zip(out["predicted_glucose_dates"], out["predicted_glucose_values"])
        if now <= t <= horizon)
    if low:
        assert bolus is not None and bolus[0] == 0.0, (bolus, threshold)
        assert temp is None or temp[0] == 0.0, (temp, threshold)
        if temp is None:  # "no change" is only safe when nothing is being delivered (Loop's rate match)
            running = _running_temp_rate(d)
            delivering = scheduled if running is None else running
            assert abs(delivering) < ULP_OF_ONE, (running, scheduled)
        assert auto is None or auto == 0.0, (auto, threshold)


def _iso(d: dict) -> dict:
    """The same input with every datetime written as an ISO 8601 string (docs/update.md allows both)."""
    def conv(v):
        if isinstance(v, dt.datetime):
            return v.isoformat()
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v
    return {k: conv(v) if k != "settings_dictionary" else v for k, v in d.items()}


@FUZZ
@given(d=synthetic_inputs(), as_strings=st.booleans())
def test_update_on_messy_synthetic_input_keeps_its_promises(d, as_strings):
    out = update(_iso(d) if as_strings else d)
    check_properties(d, out)
    assert all(x.utcoffset() == d["time_to_calculate_at"].utcoffset() for x in out["predicted_glucose_dates"])


def _reports() -> list[Path]:
    present = [p for p in REPORTS if p.exists()]
    if not present:
        pytest.skip(f"reference issue reports not found under {REFERENCE_DIR / 'issue_reports'}")
    return present


@pytest.fixture(scope="module")
def reports():
    from pyloopkit.pyloop_parser import parse_report
    return [parse_report(p) for p in _reports()]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_update_on_mutated_issue_reports_keeps_its_promises(reports, data):
    base = data.draw(st.sampled_from(reports))
    if data.draw(st.booleans()):  # recompute counteraction from the mutated data
        base = {k: v for k, v in base.items() if k not in INJECTED_KEYS}
    d = _mutate(base, data.draw, replace_schedules=data.draw(st.booleans()), replace_settings=data.draw(st.booleans()))
    check_properties(d, update(d))


# ------------------------------------------------------------------ replay agrees with update

def _known_at(d: dict, t: dt.datetime) -> dict:
    """The input as it stood at ``t`` (replay's rule): later glucose, doses and carbs removed, running
    doses cut at ``t``, the latest temp basal started by ``t`` and still running as the last temp basal."""
    k = copy.deepcopy(d)
    g = [i for i, x in enumerate(d["glucose_dates"]) if x <= t]
    for key in ("glucose_dates", "glucose_values"):
        k[key] = [d[key][i] for i in g]
    doses = [i for i, x in enumerate(d["dose_start_times"]) if x <= t]
    for key in DOSE_KEYS:
        k[key] = [d[key][i] for i in doses]
    temps = [i for i in doses if DoseType.parse(d["dose_types"][i]) == DoseType.TEMP_BASAL]
    latest = max(temps, key=lambda i: d["dose_start_times"][i], default=None)
    running = latest is not None and d["dose_end_times"][latest] > t
    k["last_temporary_basal"] = ([DoseType.TEMP_BASAL, d["dose_start_times"][latest], d["dose_end_times"][latest],
                                  d["dose_values"][latest]] if running else [])
    carbs = [i for i, x in enumerate(d["carb_dates"]) if x <= t]
    for key in CARB_KEYS:
        k[key] = [d[key][i] for i in carbs]
    k["time_to_calculate_at"] = t
    return k


@st.composite
def replay_inputs(draw) -> dict:
    """Synthetic inputs without suspend/resume events, every dose over by ``time_to_calculate_at``
    (the three xfail tests below show where replay and update() part otherwise)."""
    d = draw(synthetic_inputs(suspends=False))
    now = d["time_to_calculate_at"]
    # basal-like doses all 30 min long, so no dose is cut short by one that ends earlier than it would
    known = [i for i, (k, x, e) in enumerate(zip(d["dose_types"], d["dose_start_times"], d["dose_end_times"]))
             if x <= now and (DoseType.parse(k) == DoseType.BOLUS or e - x == dt.timedelta(minutes=30))]
    for key in DOSE_KEYS:
        d[key] = [d[key][i] for i in known]
    d["dose_end_times"] = [min(e, now) for e in d["dose_end_times"]]
    d["last_temporary_basal"] = []
    return d


def _assert_replay_step_matches(table: dict, i: int, out: dict) -> None:
    t = table["time"][i]
    assert table["iob"][i] == pytest.approx(out["insulin_on_board"], abs=1e-9)
    assert table["cob"][i] == pytest.approx(out["carbs_on_board"], abs=1e-9)
    assert table["glucose"][i] == pytest.approx(out["predicted_glucose_values"][0], rel=1e-12)
    t0 = out["predicted_glucose_dates"][0]
    pred_min = np.array([(x - t0).total_seconds() / 60.0 for x in out["predicted_glucose_dates"]])
    now_min = (t - t0).total_seconds() / 60.0
    for h in (30, 60, 120):
        expected = np.interp(now_min + h, pred_min, out["predicted_glucose_values"])
        assert table[f"predicted_{h}"][i] == pytest.approx(expected, abs=1e-9), h
    temp = out["recommended_temp_basal"]
    assert table["temp_basal_rate"][i] == (None if temp is None else temp[0])
    bolus = out["recommended_bolus"]
    assert table["bolus"][i] == (None if bolus is None else pytest.approx(bolus[0], abs=1e-9))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(d=replay_inputs(), step=st.sampled_from([5.0, 10.0]), n_steps=st.integers(1, 4))
def test_replay_step_agrees_with_update(d, step, n_steps):
    """The last step of a short replay equals update() run on the data known then."""
    end = d["time_to_calculate_at"]
    start = max(end - _minutes(step * (n_steps - 1)), d["glucose_dates"][0])
    assume(any(x <= start for x in d["dose_start_times"]))  # xfail test below: no dose known yet
    table = replay(d, start=start, end=end, step_minutes=step, as_dataframe=False)
    assert len({len(v) for v in table.values()}) == 1
    for name in ("glucose", "iob", "cob", "counteraction", "predicted_30", "predicted_60", "predicted_120"):
        assert np.all(np.isfinite(table[name].astype(float))), name
    i = len(table["time"]) - 1
    known = _known_at(d, table["time"][i])
    out = update(known)
    check_properties(known, out)
    _assert_replay_step_matches(table, i, out)


def _plain_history(model=(2.0,)) -> dict:
    """Seven hours of dense_history (naive dates), no carbs, RC on, zero insulin delay."""
    d = dense_history(days=0.3, seed=0, start=dt.datetime(2026, 3, 2, 0, 0, 37), tz=None)
    d.update(carb_dates=[], carb_values=[], carb_absorption_times=[], last_temporary_basal=[])
    d["settings_dictionary"] = {"model": list(model), "insulin_delay": 0.0, "momentum_data_interval": 5.0,
                                "max_basal_rate": 4.0, "max_bolus": 10.0, "dynamic_carb_absorption_enabled": False,
                                "retrospective_correction_enabled": True}
    return d


@pytest.mark.parametrize("case", ["suspend_resumed_inside", "short_temp_supersedes_long"])
def test_replay_reconciles_before_windowing(case):
    d = _plain_history(model=(120.0, 50.0))  # effect duration 130 min
    now = d["time_to_calculate_at"]
    if case == "suspend_resumed_inside":
        s, r = now - _minutes(150), now - _minutes(100)
        extra = (["PumpSuspend", "PumpResume"], [s, r], [s, r], [0.0, 0.0], [None, None])
    else:  # 2 h at 3 U/h from now-150 min, superseded 5 min later by a 5-min zero temp basal (ends before the window)
        a, b = now - _minutes(150), now - _minutes(145)
        extra = (["TempBasal", "TempBasal"], [a, b], [a + _minutes(120), b + _minutes(5)], [3.0, 0.0], [None, None])
        keep = [i for i, x in enumerate(d["dose_start_times"]) if x < a - _minutes(30)]
        for key in DOSE_KEYS:
            d[key] = [d[key][i] for i in keep]
    for key, values in zip(DOSE_KEYS, extra):
        d[key] = d[key] + values
    d["dose_end_times"] = [min(e, now) for e in d["dose_end_times"]]
    table = replay(d, start=now, end=now, as_dataframe=False)
    _assert_replay_step_matches(table, 0, update(_known_at(d, now)))


def test_replay_step_before_the_first_dose():
    d = _plain_history()
    now = d["time_to_calculate_at"]
    for key, value in zip(DOSE_KEYS, (["PumpSuspend"], [now], [now], [0.0], [None])):
        d[key] = value
    t = now - _minutes(5)
    table = replay(d, start=t, end=now, as_dataframe=False)
    _assert_replay_step_matches(table, 0, update(_known_at(d, t)))


def test_replay_step_with_a_running_temp_basal():
    d = _plain_history()
    now = d["time_to_calculate_at"]
    table = replay(d, start=now, end=now, as_dataframe=False)
    _assert_replay_step_matches(table, 0, update(_known_at(d, now)))


@pytest.mark.parametrize("case", ["zero_length_dose", "now_at_last_glucose"])
def test_sub_second_aware_dates_are_valid(case):
    tz = dt.timezone(dt.timedelta(hours=-7))
    d = dense_history(days=0.2, tz=tz)
    if case == "zero_length_dose":  # 'dose_end_times[1] ... ends before the dose starts'
        a = d["dose_start_times"][1].replace(microsecond=801105)
        d["dose_start_times"][:2] = [d["dose_start_times"][0].replace(microsecond=398438), a]
        d["dose_end_times"][:2] = [d["dose_end_times"][0].replace(microsecond=546876), a]
    else:  # 'time_to_calculate_at ...: before the last glucose date'
        d["glucose_dates"][-1] = d["glucose_dates"][-1].replace(microsecond=380113)
        d["time_to_calculate_at"] = d["glucose_dates"][-1]
    update(d)


def test_no_bolus_when_the_returned_prediction_is_below_the_suspend_threshold():
    now = dt.datetime(2026, 3, 2, 12, 0, 20)
    dates = [now - _minutes(5 * (24 - i)) for i in range(25)]
    d = {k: v for k, v in dense_history().items() if k.startswith(("carb_ratio", "target_range"))}
    d.update(time_to_calculate_at=now, glucose_dates=dates,
             glucose_values=[104.0 - min(5.0 * (24 - i), 15.0) for i in range(25)],  # flat 89, then +1 mg/dL/min
             dose_types=["Bolus"], dose_start_times=[now], dose_end_times=[now], dose_values=[5.0],
             carb_dates=[now - _minutes(63)], carb_values=[62.0], carb_absorption_times=[180.0],
             sensitivity_ratio_start_times=[dt.time(0)], sensitivity_ratio_end_times=[dt.time(0)],
             sensitivity_ratio_values=[50.0], basal_rate_start_times=[dt.time(0)], basal_rate_minutes=[1440.0],
             basal_rate_values=[1.0], last_temporary_basal=[],
             settings_dictionary={"model": [360.0, 75.0], "max_basal_rate": 4.0, "max_bolus": 10.0,
                                  "suspend_threshold": 100.0, "dynamic_carb_absorption_enabled": False})
    out = update(d)
    assert min(out["predicted_glucose_values"]) < 100.0 and out["recommended_temp_basal"] == (0.0, 30.0)
    assert out["recommended_bolus"][0] == 0.0


@pytest.mark.parametrize("key", NONE_DEFAULTED)
def test_none_setting_takes_the_default(key):
    d = _plain_history()
    d["settings_dictionary"][key] = None
    update(d)


# ------------------------------------------------------------------ invalid input

def _valid_small(tz) -> dict:
    d = dense_history(days=0.3, seed=1, tz=tz)
    now = d["time_to_calculate_at"]
    d.update(carb_dates=[now - _minutes(200), now - _minutes(40)], carb_values=[30.0, 12.5],
             carb_absorption_times=[None, 120.0])
    d["dose_delivered_units"] = [None if i % 2 else v for i, v in enumerate(d["dose_values"])]
    return d


NUMERIC_LISTS = ("glucose_values", "dose_values", "dose_delivered_units", "carb_values", "carb_absorption_times",
                 "sensitivity_ratio_values", "carb_ratio_values", "basal_rate_values",
                 "target_range_minimum_values", "target_range_maximum_values")
NEGATIVE_REJECTED = ("glucose_values", "dose_values", "dose_delivered_units", "carb_values", "carb_absorption_times",
                     "sensitivity_ratio_values", "carb_ratio_values", "basal_rate_values")
GROUPED_LISTS = ("glucose_values", "dose_types", "dose_end_times", "dose_values", "carb_values",
                 "carb_absorption_times", "sensitivity_ratio_values", "basal_rate_values",
                 "target_range_maximum_values")
DATE_LISTS = ("glucose_dates", "dose_start_times", "dose_end_times", "carb_dates")


@st.composite
def corruptions(draw):
    """(input, field, index): one impossible value in an otherwise valid input; index None when the
    problem has no single index (list lengths, settings)."""
    tz = draw(st.sampled_from(ZONES))
    d = _valid_small(tz)
    kind = draw(st.sampled_from(["nan", "negative", "dose_type", "length", "mixed", "unsorted", "duplicate",
                                 "setting", "other"]))
    if kind in ("nan", "negative"):
        key = draw(st.sampled_from(NUMERIC_LISTS if kind == "nan" else NEGATIVE_REJECTED))
        i = draw(st.integers(0, len(d[key]) - 1))
        d[key][i] = draw(st.sampled_from([math.nan, math.inf, -math.inf])) if kind == "nan" \
            else -draw(st.floats(1e-6, 1e3))
        return d, key, i
    if kind == "dose_type":
        i = draw(st.integers(0, len(d["dose_types"]) - 1))
        d["dose_types"][i] = draw(st.sampled_from(["Foo", "", "temp basal x", None, 3.5, 99]))
        return d, "dose_types", i
    if kind == "length":
        key = draw(st.sampled_from(GROUPED_LISTS))
        d[key] = d[key][:-1]
        return d, key, None
    if kind == "mixed":
        key = draw(st.sampled_from(DATE_LISTS))
        i = draw(st.integers(0, len(d[key]) - 1))
        x = d[key][i]
        d[key][i] = x.replace(tzinfo=None) if tz is not None else x.replace(tzinfo=dt.timezone.utc)
        return d, None, None  # the problem names whichever date list disagrees with the first date seen
    if kind in ("unsorted", "duplicate"):
        i = draw(st.integers(1, len(d["glucose_dates"]) - 1))
        g = d["glucose_dates"]
        if kind == "unsorted":
            g[i - 1], g[i] = g[i], g[i - 1]
        else:
            g[i] = g[i - 1]
        return d, "glucose_dates", i
    if kind == "other":
        now = d["time_to_calculate_at"]
        case = draw(st.sampled_from(["now_before_glucose", "range_inverted", "negative_last_temp", "nan_effect",
                                     "schedule_gap", "bad_date"]))
        if case == "now_before_glucose":
            d["time_to_calculate_at"] = d["glucose_dates"][-1] - _minutes(1)
            return d, "time_to_calculate_at", None
        if case == "range_inverted":
            d["target_range_maximum_values"] = [d["target_range_minimum_values"][0] - 1.0]
            return d, "target_range_maximum_values", 0
        if case == "negative_last_temp":
            d["last_temporary_basal"] = [DoseType.TEMP_BASAL, now - _minutes(5), now + _minutes(25), -1.0]
            return d, "last_temporary_basal", 3
        if case == "nan_effect":
            starts = d["glucose_dates"][:-1]
            d.update(counteraction_starts=starts, counteraction_ends=d["glucose_dates"][1:],
                     counteraction_values=[0.0] * (len(starts) - 1) + [math.nan])
            return d, "counteraction_values", len(starts) - 1
        if case == "schedule_gap":
            d["sensitivity_ratio_end_times"] = [dt.time(8), dt.time(0)]
            return d, "sensitivity_ratio_end_times", 0
        i = draw(st.integers(0, len(d["carb_dates"]) - 1))
        d["carb_dates"][i] = draw(st.sampled_from(["yesterday", "2026-13-40T00:00:00", 12345, None]))
        return d, "carb_dates", i
    key, value = draw(st.sampled_from([
        ("max_basal_rate", math.nan), ("max_bolus", -1.0), ("insulin_delay", -5.0), ("rate_rounder", 0.0),
        ("partial_application_factor", 1.5), ("model", [360.0, 200.0]), ("model", [0.0]),
        ("carb_absorption_model", "cubic"), ("rounding", "up"), ("dosing_strategy", "bolus_only"),
        ("retrospective_correction", "fancy"), ("momentum_data_interval", math.inf),
        ("dynamic_carb_absorption_enabled", "yes")]))
    d["settings_dictionary"][key] = value
    return d, f"settings_dictionary.{key}", None


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=corruptions())
def test_invalid_input_raises_invalid_input_error_naming_the_field(case):
    d, field, index = case
    for run in (update, lambda x: replay(x, as_dataframe=False)):
        with pytest.raises(InvalidInputError) as err:
            run(copy.deepcopy(d))
        problems = err.value.problems
        assert problems, "an InvalidInputError must list its problems"
        if field is None:
            assert any("mixed" in p.reason for p in problems), problems
        else:
            assert any((p.field == field or f"{field}:" in p.reason) and (index is None or p.index == index)
                       for p in problems), (field, index, problems)
