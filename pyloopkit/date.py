"""Time conversion at the boundary and Loop's 5-minute grid.

Inside the library every timestamp is a float number of seconds since Loop's
reference date, 2001-01-01T00:00:00Z (Foundation's ``timeIntervalSinceReferenceDate``).
Naive datetimes are taken as wall-clock times in an unnamed zone and converted
as if they were UTC; aware datetimes are converted to UTC. Schedule look-ups
add ``utc_offset_s`` (the local offset) to get the local time of day.

The 5-minute grid is anchored like LoopKit's ``dateFlooredToTimeInterval`` /
``dateCeiledToTimeInterval``: multiples of 300 s since the reference date
(which is also a multiple of 300 s since the Unix epoch).
"""
from __future__ import annotations

import datetime as _dt
import itertools
import operator
from typing import Iterable, Sequence

import numpy as np
from dateutil import parser as _dateparser

REFERENCE_DATE = _dt.datetime(2001, 1, 1)
"""Loop's reference date (naive form; aware inputs are compared in UTC)."""

GRID_S = 300.0
"""Loop's effect grid interval: 5 minutes, in seconds."""

SECONDS_PER_DAY = 86400.0


def parse_datetime(value) -> _dt.datetime:
    """Return ``value`` as a datetime: datetimes pass through, strings are parsed (ISO 8601
    or ``2019-08-12 01:28:19 +0000``), pandas ``Timestamp``s convert with their zone and
    ``numpy.datetime64`` values as naive (UTC wall-clock) datetimes."""
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return _dt.datetime.fromisoformat(text)
        except ValueError:
            return _dateparser.parse(text)
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError("NaT is not a date")
        return value.astype("datetime64[us]").item()
    raise TypeError(f"not a datetime: {value!r}")


_REFERENCE_POSIX_S = REFERENCE_DATE.replace(tzinfo=_dt.timezone.utc).timestamp()
_REFERENCE_64 = np.datetime64("2001-01-01T00:00:00", "us")


_US = _dt.timedelta(microseconds=1)
_REFERENCE_UTC = REFERENCE_DATE.replace(tzinfo=_dt.timezone.utc)


def _micros(d: _dt.datetime) -> int:
    """Whole microseconds since the reference date (UTC for aware datetimes, wall clock for naive)."""
    if d.tzinfo is not None and d.utcoffset() is not None:
        return (d - _REFERENCE_UTC) // _US
    return (d - REFERENCE_DATE) // _US


def _seconds(d: _dt.datetime) -> float:
    """Seconds since the reference date: whole microseconds / 1e6, so every path gives the same float."""
    return _micros(d) / 1e6


MIXED_ZONES = object()
_TZINFO = operator.attrgetter("tzinfo")


def common_zone(items: list):
    """The tzinfo shared by a list of datetime objects (None for naive), or ``MIXED_ZONES`` when an
    item is not a datetime or the zones differ (tzinfo objects compared by identity)."""
    if not items or type(items[0]) is not _dt.datetime:
        return MIXED_ZONES
    tz, n = items[0].tzinfo, len(items)
    # Two passes in C: every type is datetime, and every tzinfo is the first one (by identity).
    same = list(map(type, items)).count(_dt.datetime) == n and all(map(operator.is_, map(_TZINFO, items),
                                                                          itertools.repeat(tz)))
    return tz if same else MIXED_ZONES


_EXACT_SECONDS = 2.0 ** 50 / 1e6
"""Below this many seconds (35 years), ``timedelta.total_seconds()`` (whole microseconds / 1e6, correctly
rounded) times 1e6 is within 0.25 us of the whole microseconds, so rounding recovers them exactly."""


_BULK_MIN = 16
"""Lists shorter than this are converted one by one (the bulk path's fixed cost is larger)."""


def zone_key(key: str) -> str:
    """The key under which a dictionary of converted date lists (``validate_input``'s ``seconds_out``)
    holds the :func:`common_zone` of the list ``key``."""
    return f"{key}:zone"


def same_zone_seconds(items: list, tz) -> np.ndarray:
    """:func:`to_seconds` for datetimes that all carry the tzinfo ``tz`` (see :func:`common_zone`).

    Naive datetimes and one fixed offset (``datetime.timezone``): whole microseconds from the first
    item, from the differences of the datetimes (within one zone, Python subtracts them without
    consulting the zone; about 5x faster than numpy's conversion of datetime objects) in seconds,
    scaled back to whole microseconds (exact within :data:`_EXACT_SECONDS` of the first item, else
    counted in integers); exact."""
    if (tz is not None and not isinstance(tz, _dt.timezone)) or len(items) < _BULK_MIN:
        return np.array([_seconds(d) for d in items], dtype=float)
    first = items[0]
    offsets = map(operator.sub, items, itertools.repeat(first))
    offsets_s = np.fromiter(map(_dt.timedelta.total_seconds, offsets), float, len(items))
    if np.abs(offsets_s).max() < _EXACT_SECONDS:
        offsets_us = np.rint(offsets_s * 1e6).astype(np.int64)
    else:
        offsets_us = np.array([(d - first) // _US for d in items], dtype=np.int64)
    return (offsets_us + _micros(first)) / 1e6


def to_seconds(dates: Iterable) -> np.ndarray:
    """Seconds since 2001-01-01T00:00:00Z (float64 array) for datetimes or date strings.

    Aware datetimes count in UTC, naive ones as wall-clock time; a list of datetimes of one
    zone is converted in bulk (numpy's datetime64, or differences within one fixed offset)."""
    items = dates if isinstance(dates, list) else list(dates)
    tz = common_zone(items)
    if tz is MIXED_ZONES:
        items = [d if type(d) is _dt.datetime else parse_datetime(d) for d in items]
        tz = common_zone(items)
        if tz is MIXED_ZONES:
            return np.array([_seconds(d) for d in items], dtype=float)
    return same_zone_seconds(items, tz)


def to_second(date) -> float:
    """Scalar form of :func:`to_seconds`."""
    return _seconds(parse_datetime(date))


def utc_offset_s(date) -> float:
    """The UTC offset of ``date`` in seconds (0 for a naive datetime)."""
    d = parse_datetime(date)
    off = d.utcoffset()
    return 0.0 if off is None else off.total_seconds()


_EPOCH_UTC = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_POSIX_RANGE_S = ((_dt.datetime.min - _dt.datetime(1970, 1, 1)).total_seconds() + 2 * SECONDS_PER_DAY,
                  (_dt.datetime.max - _dt.datetime(1970, 1, 1)).total_seconds() - 2 * SECONDS_PER_DAY)
"""POSIX seconds whose datetimes, in any fixed offset (under a day), lie inside ``datetime``'s range."""


def fromtimestamp_microseconds(posix_s: np.ndarray) -> np.ndarray:
    """Whole microseconds since the Unix epoch (int64) that ``datetime.fromtimestamp`` reads from float
    POSIX seconds: CPython splits each float into whole seconds and fraction, rounds the fraction times
    1e6 half to even, and carries a rounded 1e6 (or a negative fraction) into the seconds."""
    fraction, whole = np.modf(posix_s)
    micro = np.rint(fraction * 1e6)
    carry = (micro >= 1e6).astype(float) - (micro < 0)
    return (whole + carry).astype(np.int64) * 1_000_000 + (micro - 1e6 * carry).astype(np.int64)


def from_seconds(seconds: Sequence[float] | np.ndarray, tz: _dt.tzinfo | None = None) -> list[_dt.datetime]:
    """Datetimes for seconds since the reference date: naive when ``tz`` is None,
    else aware in ``tz``. Values are rounded to the microsecond.

    Aware datetimes equal ``datetime.fromtimestamp(s + POSIX seconds of the reference date, tz)`` for
    each value, bit for bit; for a fixed offset (``datetime.timezone``) they are built in one pass,
    the offset's epoch plus each value's :func:`fromtimestamp_microseconds` as a timedelta (no zone
    rule to consult), about 4x faster."""
    s = np.asarray(seconds, dtype=float)
    if tz is None:
        return (_REFERENCE_64 + np.round(s * 1e6).astype("int64").astype("timedelta64[us]")).tolist()
    posix = s + _REFERENCE_POSIX_S
    if not isinstance(tz, _dt.timezone) or not np.all((posix > _POSIX_RANGE_S[0]) & (posix < _POSIX_RANGE_S[1])):
        return [_dt.datetime.fromtimestamp(x, tz) for x in posix.tolist()]
    offsets = fromtimestamp_microseconds(posix).astype("timedelta64[us]").tolist()
    return list(map(operator.add, itertools.repeat(_EPOCH_UTC.astimezone(tz)), offsets))


def tzinfo_of(date) -> _dt.tzinfo | None:
    """The tzinfo of ``date`` (None for naive)."""
    return parse_datetime(date).tzinfo


def floor_to_grid(seconds, interval_s: float = GRID_S):
    """Floor to a multiple of ``interval_s`` since the reference date (LoopKit ``dateFlooredToTimeInterval``)."""
    s = np.asarray(seconds, dtype=float)
    return np.floor(s / interval_s) * interval_s


def ceil_to_grid(seconds, interval_s: float = GRID_S):
    """Ceil to a multiple of ``interval_s`` since the reference date (LoopKit ``dateCeiledToTimeInterval``)."""
    s = np.asarray(seconds, dtype=float)
    return np.ceil(s / interval_s) * interval_s


def grid(start_s: float, end_s: float, interval_s: float = GRID_S) -> np.ndarray:
    """Grid times from ``floor(start)`` to ``ceil(end)`` inclusive, every ``interval_s`` seconds."""
    first = float(floor_to_grid(start_s, interval_s))
    last = float(ceil_to_grid(end_s, interval_s))
    n = int(round((last - first) / interval_s)) + 1
    return first + interval_s * np.arange(max(n, 0), dtype=float)


def overlaps(starts_s, ends_s, start_s: float | None = None, end_s: float | None = None) -> np.ndarray:
    """Mask of intervals ``[starts_s, ends_s]`` touching ``[start_s, end_s]`` (either bound optional;
    LoopKit's ``filterDateRange``: ``end >= start_s`` and ``start <= end_s``)."""
    keep = np.ones(np.shape(starts_s), dtype=bool)
    if start_s is not None:
        keep &= np.asarray(ends_s) >= start_s
    if end_s is not None:
        keep &= np.asarray(starts_s) <= end_s
    return keep


def time_of_day_s(seconds, offset_s: float = 0.0) -> np.ndarray:
    """Local time of day in seconds [0, 86400) for UTC seconds and a local offset."""
    return np.mod(np.asarray(seconds, dtype=float) + offset_s, SECONDS_PER_DAY)


def parse_time_of_day(value) -> float:
    """Seconds after midnight for a ``datetime.time``, ``"HH:MM[:SS]"`` string, or a number of seconds."""
    if isinstance(value, _dt.time):
        return value.hour * 3600.0 + value.minute * 60.0 + value.second + value.microsecond / 1e6
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        parts = value.strip().split(":")
        if 2 <= len(parts) <= 3:
            h, m = int(parts[0]), int(parts[1])
            s = float(parts[2]) if len(parts) == 3 else 0.0
            return h * 3600.0 + m * 60.0 + s
    if isinstance(value, _dt.datetime):
        return parse_time_of_day(value.time())
    raise TypeError(f"not a time of day: {value!r}")
