"""update()'s one-pass conversions equal the element-by-element ones bit for bit: seconds to datetimes
(fixed offsets, naive, zones with DST), datetimes to seconds, numeric lists with None, dose type codes,
and the output dictionary's timelines."""
from __future__ import annotations

import datetime as dt
import warnings
import zoneinfo

import numpy as np
import pytest

from pyloopkit import update
from pyloopkit.date import (_REFERENCE_POSIX_S, REFERENCE_DATE, _seconds, from_seconds, fromtimestamp_microseconds,
                            same_zone_seconds)
from pyloopkit.dose import DoseType
from pyloopkit.input_validation import _numbers, _type_codes, convert_glucose_units, validate_input
from pyloopkit.loop_data_manager import core
from pyloopkit.loop_input import parse_input
from pyloopkit.synthetic import dense_history

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
FIXED = [dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5)), dt.timezone(dt.timedelta(hours=14)),
         dt.timezone(dt.timedelta(hours=-3, minutes=-30, seconds=-7, microseconds=-3)),
         dt.timezone(dt.timedelta(hours=23, minutes=59), "far east")]


def _seconds_cases() -> np.ndarray:
    """Seconds since the reference date from a millisecond to 1900 years either side, whole and
    half microseconds, and just off them; and multiples of 1/128 s, whose POSIX fractions are exact
    ties (7812.5 us, 23437.5 us, ...) that round half to even."""
    rng = np.random.default_rng(11)
    s = np.concatenate([rng.uniform(-x, x, 2000) for x in (1e-3, 300.0, 8e8, 3e9, 6e10)])
    return np.concatenate([s, np.round(s), np.round(s * 1e6) / 1e6, np.round(s * 2e6) / 2e6,
                           np.round(s * 1e6) / 1e6 + 5e-7, [0.0, -0.0, 5e-7, -5e-7, 1.5e-6],
                           8e8 + np.arange(-1000, 1000) / 128.0, -3e9 + np.arange(-1000, 1000) / 128.0])


def _same_datetimes(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert type(a) is type(b) is dt.datetime
        assert (a, a.fold, a.utcoffset()) == (b, b.fold, b.utcoffset()) and repr(a) == repr(b)
        assert a.tzinfo is b.tzinfo


@pytest.mark.parametrize("tz", FIXED + [NEW_YORK], ids=str)
def test_from_seconds_equals_fromtimestamp_one_by_one(tz):
    s = _seconds_cases()
    expected = [dt.datetime.fromtimestamp(x, tz) for x in (s + _REFERENCE_POSIX_S).tolist()]
    _same_datetimes(from_seconds(s, tz), expected)


def test_from_seconds_naive_rounds_to_the_microsecond():
    s = _seconds_cases()
    expected = [REFERENCE_DATE + dt.timedelta(microseconds=int(np.round(x * 1e6))) for x in s.tolist()]
    _same_datetimes(from_seconds(s, None), expected)


def test_from_seconds_across_dst_changes_matches_the_zone_rules():
    # every 5 minutes over both 2026 changes in New York: the zone's own fromutc (fold included)
    for day in (dt.datetime(2026, 3, 8), dt.datetime(2026, 11, 1)):
        s = (day - REFERENCE_DATE).total_seconds() + 37.0 + np.arange(0.0, 86400.0, 300.0)
        dates = from_seconds(s, NEW_YORK)
        assert {d.utcoffset() for d in dates} == {dt.timedelta(hours=-5), dt.timedelta(hours=-4)}
        _same_datetimes(dates, [dt.datetime.fromtimestamp(x, NEW_YORK) for x in (s + _REFERENCE_POSIX_S).tolist()])


def test_from_seconds_outside_datetime_range_raises_like_fromtimestamp():
    with pytest.raises((ValueError, OverflowError)) as bulk:
        from_seconds(np.array([0.0, 1e13]), dt.timezone.utc)
    with pytest.raises((ValueError, OverflowError)) as single:
        dt.datetime.fromtimestamp(1e13 + _REFERENCE_POSIX_S, dt.timezone.utc)
    assert type(bulk.value) is type(single.value)
    with pytest.raises(ValueError):
        from_seconds(np.array([np.nan]), dt.timezone.utc)


def test_fromtimestamp_microseconds_matches_cpython_rounding():
    posix = _seconds_cases() + _REFERENCE_POSIX_S
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    expected = [(dt.datetime.fromtimestamp(x, dt.timezone.utc) - epoch) // dt.timedelta(microseconds=1)
                for x in posix.tolist()]
    assert fromtimestamp_microseconds(posix).tolist() == expected


@pytest.mark.parametrize("tz", [None, dt.timezone(dt.timedelta(hours=-5))])
@pytest.mark.parametrize("n", [1, 15, 16, 40])
def test_same_zone_seconds_is_exact_near_the_float_bound(tz, n):
    # offsets from the first item just below and above 2**50 us (the bulk path's exact range)
    rng = np.random.default_rng(n)
    base = dt.datetime(2020, 1, 1, tzinfo=tz)
    for span_us in (2 ** 50 - 1, 2 ** 50 + 10 ** 6):
        offsets = [0] + rng.integers(-span_us, span_us, n - 1).tolist() + [span_us]
        items = [base + dt.timedelta(microseconds=int(x)) for x in offsets]
        assert np.array_equal(same_zone_seconds(items, tz), np.array([_seconds(x) for x in items]))


def test_numbers_with_none_and_non_finite_values():
    problems = []
    d = {"a": [None, 1.5, float("nan"), None, 2], "b": [None] * 3, "c": [None, 1.0]}
    a = _numbers(d, "a", problems, allow_none=True)
    assert np.array_equal(a, [np.nan, 1.5, np.nan, np.nan, 2.0], equal_nan=True)
    assert [(p.field, p.index) for p in problems] == [("a", 2)]  # NaN is a problem, None is not
    assert np.isnan(_numbers(d, "b", problems, allow_none=True)).all() and len(problems) == 1
    assert _numbers({}, "b", problems, allow_none=True).shape == (0,)
    _numbers(d, "c", problems)  # None not allowed: not a number
    assert [(p.field, p.index, p.reason) for p in problems[1:]] == [("c", 0, "not a number")]


def test_type_codes_of_members_names_and_numbers_agree():
    members = [DoseType.TEMP_BASAL, DoseType.BOLUS, DoseType.SUSPEND, DoseType.RESUME, DoseType.BASAL]
    names = ["TempBasal", "bolus", "PumpSuspend", "resume", "BasalProfileStart"]
    for types in (members, names, [3, 4, 0, 1, 2], [DoseType.TEMP_BASAL, "bolus", 0, "resume", 2]):
        codes = _type_codes(types)
        assert codes.dtype == np.int8 and codes.tolist() == [3, 4, 0, 1, 2]


@pytest.mark.parametrize("tz", [dt.timezone(dt.timedelta(hours=-5)), None, NEW_YORK], ids=str)
def test_update_timelines_equal_their_seconds_converted_one_by_one(tz):
    start = dt.datetime(2026, 3, 8, 0, 0, 3, tzinfo=dt.timezone.utc)  # the day crosses New York's spring change
    d = dense_history(days=1.0, seed=3, start=start if tz is not None else start.replace(tzinfo=None),
                      tz=dt.timezone.utc if tz is not None else None)
    if tz is not None:
        d = {k: [x.astimezone(tz) if isinstance(x, dt.datetime) else x for x in v] if isinstance(v, list)
             else v.astimezone(tz) if isinstance(v, dt.datetime) else v for k, v in d.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = update(d)
        known: dict = {}
        validate_input(d, known)
    result = core(parse_input(convert_glucose_units(d), known))
    effects = result.effects
    for prefix, (dates_s, values) in {"predicted_glucose": result.prediction, "insulin_effect": effects.insulin,
                                      "momentum_effect": effects.momentum, "carb_effect": effects.carb,
                                      "retrospective_effect": effects.retrospective, "cob_timeline": effects.cob,
                                      "insulin_on_board_timeline": effects.iob}.items():
        assert len(dates_s) > 0 or prefix in ("carb_effect", "cob_timeline"), prefix
        expected = [REFERENCE_DATE + dt.timedelta(microseconds=int(np.round(x * 1e6))) for x in dates_s.tolist()] \
            if tz is None else [dt.datetime.fromtimestamp(x + _REFERENCE_POSIX_S, tz) for x in dates_s.tolist()]
        _same_datetimes(out[f"{prefix}_dates"], expected)
        assert out[f"{prefix}_values"] == values.tolist() and all(type(v) is float for v in out[f"{prefix}_values"])
    starts = out["counteraction_effect_start_times"]
    assert all(any(x is g for g in d["glucose_dates"]) for x in starts[:5])  # the caller's own objects
