"""Daily (time-of-day) schedules: basal rates, ISF, carb ratios, target ranges.

A schedule is a sorted array of start offsets in seconds after local midnight
and the value in force from each start until the next (the last item runs to
midnight and the schedule repeats daily), like LoopKit's ``DailyValueSchedule``.
Look-ups and splitting are vectorised with ``np.searchsorted``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .date import SECONDS_PER_DAY, parse_time_of_day, time_of_day_s
from .jit import jit


@dataclass(frozen=True)
class DailySchedule:
    """Start offsets (s after local midnight, first 0, increasing) and values.

    ``values`` has shape (n,) or (n, k) (a target range stores (min, max) rows).
    ``offset_s`` is the local UTC offset applied to absolute times before look-up.
    """

    start_s: np.ndarray
    values: np.ndarray
    offset_s: float = 0.0

    @classmethod
    def from_lists(cls, start_times: Sequence, values: Sequence, offset_s: float = 0.0) -> "DailySchedule":
        """Build from PyLoopKit-style start times (``datetime.time``, ``"HH:MM:SS"`` or seconds)."""
        start = np.array([parse_time_of_day(t) for t in start_times], dtype=float)
        vals = np.asarray(values, dtype=float)
        if start.size == 0:
            raise ValueError("a schedule needs at least one item")
        if start[0] != 0.0:
            # LoopKit schedules start at midnight; an item set that does not wraps the last value over it.
            start = np.concatenate(([0.0], start))
            vals = np.concatenate((vals[-1:], vals))
        if np.any(np.diff(start) <= 0):
            raise ValueError("schedule start times must be strictly increasing")
        return cls(start, vals, float(offset_s))

    @classmethod
    def constant(cls, value, offset_s: float = 0.0) -> "DailySchedule":
        """A schedule with one value all day."""
        return cls(np.zeros(1), np.asarray([value], dtype=float), float(offset_s))

    def index_at(self, seconds) -> np.ndarray:
        """Index of the item in force at each absolute time (seconds since the reference date)."""
        tod = time_of_day_s(seconds, self.offset_s)
        return np.searchsorted(self.start_s, tod, side="right") - 1

    def at(self, seconds) -> np.ndarray:
        """Value in force at each absolute time (vectorised)."""
        if self.start_s.size == 1:  # one item in force all day (index 0 or its alias -1): no time of day needed
            return self.values[np.zeros(np.asarray(seconds, dtype=float).shape, dtype=np.intp)]
        return self.values[self.index_at(seconds)]

    def boundaries_between(self, start_s: float, end_s: float) -> np.ndarray:
        """Absolute times of item starts strictly inside (start_s, end_s)."""
        day0 = np.floor((start_s + self.offset_s) / SECONDS_PER_DAY) * SECONDS_PER_DAY - self.offset_s
        n_days = int(np.ceil((end_s - day0) / SECONDS_PER_DAY)) + 1
        b = (day0 + SECONDS_PER_DAY * np.arange(n_days)[:, None] + self.start_s[None, :]).ravel()
        return b[(b > start_s) & (b < end_s)]

    def split(self, start_s: np.ndarray, end_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Split intervals at schedule boundaries (vectorised over intervals).

        Returns ``(interval_index, seg_start_s, seg_end_s, value)``: every interval
        ``[start_s[i], end_s[i])`` becomes one or more consecutive segments, each
        inside one schedule item, in input order. Zero-length intervals give one
        zero-length segment.
        """
        start_s = np.asarray(start_s, dtype=float)
        end_s = np.maximum(np.asarray(end_s, dtype=float), start_s)
        if start_s.size == 0:
            e = np.empty(0)
            return np.empty(0, dtype=np.int64), e, e.copy(), e.copy()
        period = SECONDS_PER_DAY
        n_items = self.start_s.size
        # Boundary k (over all days) is at day_k * period + start_s[item_k] - offset.
        base = np.floor((start_s + self.offset_s) / period)
        first_idx = self.index_at(start_s)
        # Global boundary counter: day * n_items + item index.
        g_first = base * n_items + first_idx + 1
        last_local = np.mod(end_s + self.offset_s, period)
        base_end = np.floor((end_s + self.offset_s) / period)
        end_idx = np.searchsorted(self.start_s, last_local, side="left") - 1
        g_last = base_end * n_items + end_idx  # last boundary strictly before end
        n_cuts = np.maximum(g_last - g_first + 1, 0).astype(np.int64)
        n_segs = n_cuts + 1
        owner = np.repeat(np.arange(start_s.size), n_segs)
        pos = np.arange(owner.size) - np.repeat(np.cumsum(n_segs) - n_segs, n_segs)
        # Segment j of interval i starts at boundary g_first + j - 1 (j >= 1), else at start.
        g = g_first[owner] + pos - 1
        day = np.floor(g / n_items)
        item = (g - day * n_items).astype(np.int64)
        bound = day * period + self.start_s[item] - self.offset_s
        seg_start = np.where(pos == 0, start_s[owner], bound)
        last_of = np.cumsum(n_segs) - 1
        seg_end = np.empty_like(seg_start)
        seg_end[:-1] = seg_start[1:]
        seg_end[last_of] = end_s
        value_idx = np.where(pos == 0, first_idx[owner], item)
        return owner, seg_start, seg_end, self.values[value_idx]


@jit
def value_at(start_s, values, offset_s, seconds):
    """Compiled :meth:`DailySchedule.at` of one absolute time (seconds since the reference date) for a
    schedule given as its ``start_s``, ``values`` and ``offset_s``: the value (or row) of the last item
    starting at or before the local time of day (``np.mod`` of ``seconds + offset_s``), the only item
    of a one-item schedule without computing the time of day; the same arithmetic as ``at``."""
    if start_s.size == 1:
        return values[0]
    time_of_day = np.mod(seconds + offset_s, SECONDS_PER_DAY)
    k = 0
    while k < start_s.size and start_s[k] <= time_of_day:
        k += 1
    return values[k - 1]
