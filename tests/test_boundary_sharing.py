"""update()'s boundary: what validate_input converts and hands to parse_input equals parse_input's own
conversion, and the bulk date conversions equal the one-by-one ones exactly."""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import zoneinfo

import numpy as np
import pytest
from test_input_validation import base_input

from pyloopkit.date import MIXED_ZONES, _seconds, common_zone, same_zone_seconds, to_seconds, zone_key
from pyloopkit.input_validation import MMOL_TO_MGDL, convert_glucose_units, validate_input
from pyloopkit.loop_input import LoopInput, parse_input
from pyloopkit.synthetic import dense_history

EST = dt.timezone(dt.timedelta(hours=-5))


def _mmol(d: dict) -> dict:
    """``d`` with glucose, sensitivities and targets declared in mmol/L (same quantities)."""
    out = copy.deepcopy(d)
    out["glucose_units"] = "mmol/L"
    out["glucose_values"] = [v / MMOL_TO_MGDL for v in d["glucose_values"]]
    out["sensitivity_ratio_value_units"] = "mmol/L/U"
    out["sensitivity_ratio_values"] = [v / MMOL_TO_MGDL for v in d["sensitivity_ratio_values"]]
    out["target_range_value_units"] = "mmol/L"
    for key in ("target_range_minimum_values", "target_range_maximum_values"):
        out[key] = [v / MMOL_TO_MGDL for v in d[key]]
    out["settings_dictionary"]["suspend_threshold_units"] = "mg/dL"
    return out


def _variants() -> dict:
    with_delivered = base_input()
    with_delivered["dose_delivered_units"] = [None, 1.9]
    with_delivered["carb_absorption_times"] = [150]
    late_start = base_input()  # schedules whose first item starts after midnight (wrapped over it)
    late_start["carb_ratio_start_times"] = ["06:00"]
    strings = dense_history(days=0.5, seed=4)
    for key in ("glucose_dates", "dose_start_times", "dose_end_times", "carb_dates"):
        strings[key] = [d.isoformat() for d in strings[key]]
    return {"base": base_input(), "mmol": _mmol(base_input()), "delivered": with_delivered,
            "late_start": late_start, "dense_aware": dense_history(days=1.0, seed=0),
            "dense_naive": dense_history(days=1.0, seed=1, tz=None), "dense_strings": strings,
            "dense_mmol": _mmol(dense_history(days=0.5, seed=2))}


def _assert_same(a, b, path: str = "") -> None:
    """Equal values of the same types, arrays bit for bit (NaN equal to NaN)."""
    assert type(a) is type(b), path
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}[{k}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


@pytest.mark.parametrize("name", list(_variants()))
def test_parse_input_with_validations_arrays_equals_parsing_alone(name):
    d = _variants()[name]
    known: dict = {}
    validate_input(d, known)
    shared = parse_input(convert_glucose_units(d), known)
    alone = parse_input(convert_glucose_units(d))
    assert isinstance(shared, LoopInput)
    _assert_same(shared, alone)
    assert {"glucose_values", "dose_values", "carb_values", "sensitivity_ratio_values",
            "target_range_start_times", zone_key("glucose_dates")} <= known.keys()


def test_shared_arrays_are_in_mgdl_and_schedule_seconds():
    d = _mmol(base_input())
    known: dict = {}
    validate_input(d, known)
    assert known["glucose_values"] == pytest.approx([120.0, 125.0, 130.0, 128.0], rel=1e-15)
    assert known["sensitivity_ratio_values"] == pytest.approx([45.0, 50.0], rel=1e-15)
    assert known["target_range_minimum_values"] == pytest.approx([100.0], rel=1e-15)
    assert list(known["sensitivity_ratio_start_times"]) == [0.0, 43200.0]
    assert known[zone_key("glucose_dates")] is dt.timezone.utc
    assert np.isnan(known["carb_absorption_times"][0])  # None: parse_input puts the medium default there


def test_invalid_input_shares_no_schedule():
    d = base_input()
    d["carb_ratio_values"] = [-1.0]
    known: dict = {}
    with pytest.raises(Exception):
        validate_input(d, known)
    assert "carb_ratio_start_times" not in known


@pytest.mark.parametrize("tz", [None, EST])
def test_same_zone_seconds_is_exact_over_any_span(tz):
    rng = np.random.default_rng(7)
    base = dt.datetime(3000, 1, 1, tzinfo=tz)
    for span_us in (10 ** 9, 10 ** 15, 6 * 10 ** 16):  # 17 minutes, 32 years, 1900 years (beyond 2**53 us)
        items = [base + dt.timedelta(microseconds=int(x)) for x in rng.integers(-span_us, span_us, 40)]
        expected = np.array([_seconds(x) for x in items])  # one by one, integer microseconds
        assert np.array_equal(same_zone_seconds(items, tz), expected)


def test_common_zone_compares_zones_by_identity():
    same_offset = dt.timezone(dt.timedelta(hours=-5))  # equal to EST, another object
    a, b = dt.datetime(2020, 1, 1, tzinfo=EST), dt.datetime(2020, 1, 1, tzinfo=same_offset)
    assert common_zone([a, a]) is EST
    assert common_zone([a, b]) is MIXED_ZONES
    assert common_zone([a.replace(tzinfo=None)] * 2) is None
    assert common_zone([a, a.isoformat()]) is MIXED_ZONES
    assert common_zone([]) is MIXED_ZONES


def test_to_seconds_across_a_dst_change_counts_real_time():
    ny = zoneinfo.ZoneInfo("America/New_York")
    before = dt.datetime(2021, 3, 14, 1, 30, tzinfo=ny)  # EST; 2 a.m. becomes 3 a.m. EDT
    after = dt.datetime(2021, 3, 14, 3, 30, tzinfo=ny)
    assert np.diff(to_seconds([before, after]))[0] == 3600.0
