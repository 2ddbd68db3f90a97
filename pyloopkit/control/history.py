"""A bounded history of float rows, appended at the end and dropped from the front, kept as one array.

:class:`~pyloopkit.control.loop_controller.LoopController` keeps each member's doses and carb
entries, and the batch's CGM readings, in these tables: the Loop core reads them as array views
at every decision instead of arrays rebuilt from Python lists.
"""
from __future__ import annotations

import numpy as np


class RowHistory:
    """Rows of ``width`` floats; the live rows are ``rows`` (oldest first).

    Rows are addressed by a stable index (the number of rows appended before them), so a row can
    be changed after later appends (a running temp basal cut short) while older rows are dropped.
    Storage grows by doubling, and live rows move to the front of a new array (never in place,
    so views handed out earlier keep their values) when the end of the array is reached.
    """

    def __init__(self, width: int, capacity: int = 64):
        self._array = np.empty((capacity, width))
        self._first = 0  # array row of the oldest live row
        self._stop = 0  # array row after the newest live row
        self._base = 0  # stable index of array row 0

    def __len__(self) -> int:
        return self._stop - self._first

    @property
    def rows(self) -> np.ndarray:
        """The live rows, oldest first (a view: copy it to keep it across appends)."""
        return self._array[self._first:self._stop]

    def append(self, row) -> int:
        """Append a row; returns its stable index."""
        if self._stop == self._array.shape[0]:
            live = self._stop - self._first
            capacity = max(2 * live, self._array.shape[0], 1)
            array = np.empty((capacity, self._array.shape[1]))
            array[:live] = self._array[self._first:self._stop]
            self._base += self._first
            self._array, self._first, self._stop = array, 0, live
        self._array[self._stop] = row
        self._stop += 1
        return self._base + self._stop - 1

    def row(self, index: int) -> np.ndarray | None:
        """The live row with stable ``index`` (a view, writable), or None when it was dropped."""
        k = index - self._base
        return self._array[k] if self._first <= k < self._stop else None

    def drop_before(self, column: int, limit: float) -> None:
        """Drop the oldest rows while their ``column`` is below ``limit``; stops at the first row that
        is not (a later row below ``limit`` stays until the rows before it are dropped)."""
        while self._first < self._stop and self._array[self._first, column] < limit:
            self._first += 1

    def last(self, column: int) -> float:
        """``column`` of the newest row (NaN when empty)."""
        return float(self._array[self._stop - 1, column]) if self._stop > self._first else np.nan
