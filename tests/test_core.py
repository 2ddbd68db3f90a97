"""Tests for the boundary helpers: time conversion, schedules, dose types."""
import datetime as dt

import numpy as np
import pytest

from pyloopkit.date import ceil_to_grid, floor_to_grid, from_seconds, grid, to_seconds
from pyloopkit.dose import DoseArrays, DoseType
from pyloopkit.schedule import DailySchedule


def test_reference_date_and_roundtrip():
    s = to_seconds(["2001-01-01T00:05:00+00:00", "2019-08-12 01:28:19 +0000"])
    assert s[0] == 300.0
    back = from_seconds(s, tz=dt.timezone.utc)
    assert back[1] == dt.datetime(2019, 8, 12, 1, 28, 19, tzinfo=dt.timezone.utc)


def test_aware_datetimes_convert_to_utc():
    tz = dt.timezone(dt.timedelta(hours=-7))
    local = dt.datetime(2019, 8, 12, 1, 0, tzinfo=tz)
    assert to_seconds([local])[0] - to_seconds([dt.datetime(2019, 8, 12, 8, 0)])[0] == 0.0


def test_grid_floor_ceil():
    assert floor_to_grid(301.0) == 300.0 and ceil_to_grid(301.0) == 600.0
    assert ceil_to_grid(600.0) == 600.0
    assert list(grid(301.0, 601.0)) == [300.0, 600.0, 900.0]


def test_schedule_lookup_with_offset():
    s = DailySchedule.from_lists(["00:00", "12:00", "13:30"], [0.85, 0.65, 0.7], offset_s=-7 * 3600)
    # 19:00 UTC is 12:00 local
    assert list(s.at(np.array([0.0, 19 * 3600.0 - 1, 19 * 3600.0, 20.5 * 3600]))) == [0.7, 0.85, 0.65, 0.7]


def test_schedule_split_crosses_midnight_and_boundaries():
    s = DailySchedule.from_lists(["00:00", "12:00", "13:30"], [1.0, 2.0, 3.0])
    owner, a, b, v = s.split(np.array([11 * 3600.0, 5.0]), np.array([36 * 3600.0, 5.0]))
    assert list(owner) == [0, 0, 0, 0, 1]
    assert list(a / 3600) == [11, 12, 13.5, 24, 5 / 3600]
    assert list(b / 3600)[:4] == [12, 13.5, 24, 36]
    assert list(v) == [1.0, 2.0, 3.0, 1.0, 1.0]
    # segments tile each interval exactly
    assert np.all(b[:-2] == a[1:-1])


def test_schedule_split_at_exact_boundary_does_not_make_empty_segments():
    s = DailySchedule.from_lists(["00:00", "12:00"], [1.0, 2.0])
    owner, a, b, v = s.split(np.array([12 * 3600.0]), np.array([24 * 3600.0]))
    assert list(owner) == [0] and list(v) == [2.0] and b[0] == 24 * 3600.0


def test_schedule_not_starting_at_midnight_wraps_last_value():
    s = DailySchedule.from_lists(["06:00"], [42.0])
    assert s.at(np.array([0.0]))[0] == 42.0


@pytest.mark.parametrize("name,expected", [
    ("Bolus", DoseType.BOLUS), ("tempbasal", DoseType.TEMP_BASAL), ("BasalProfileStart", DoseType.BASAL),
    ("PumpSuspend", DoseType.SUSPEND), ("RESUME", DoseType.RESUME), (4, DoseType.BOLUS), (3, DoseType.TEMP_BASAL),
])
def test_dose_type_parse(name, expected):
    assert DoseType.parse(name) is expected


def test_dose_type_unknown_is_error():
    with pytest.raises(ValueError, match="unknown dose type"):
        DoseType.parse("squarewave")


def test_dose_arrays_take_and_concat():
    d = DoseArrays.from_lists(["bolus", "tempbasal"], [0, 10], [0, 20], [1.0, 0.5], [None, 0.1])
    assert len(d) == 2 and np.isnan(d.delivered_units[0]) and d.delivered_units[1] == 0.1
    both = DoseArrays.concat([d.take([1]), d.take([0])])
    assert list(both.type) == [DoseType.TEMP_BASAL, DoseType.BOLUS]
    assert list(both.sorted().type) == [DoseType.BOLUS, DoseType.TEMP_BASAL]
