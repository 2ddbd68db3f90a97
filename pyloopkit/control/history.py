"""Bounded histories of float rows, one table per member, appended at the end and dropped from the front.

:class:`~pyloopkit.control.loop_controller.LoopController` keeps each member's doses and carb
entries, and the batch's CGM readings (one table), in these tables: the Loop core reads them as
array views at every decision, and the compiled closed-loop step (:mod:`pyloopkit.control.loop_batch`)
reads and appends to the arrays themselves (:attr:`RowHistories.array`, ``first``, ``stop``, ``base``).
"""
from __future__ import annotations

import numpy as np

from pyloopkit.jit import jit


class RowHistories:
    """``members`` tables of rows of ``width`` floats; member ``i``'s live rows are ``rows(i)``
    (oldest first), ``array[i, first[i]:stop[i]]``.

    Rows are addressed by a stable index per member (the number of rows appended to that member
    before them), ``base[i] + k`` for array row ``k``, so a row can be changed after later appends (a
    running temp basal cut short) while older rows are dropped. When a member's table reaches the end
    of the array, every member's live rows move to the front of a new array (twice as long when one
    member needs it; never in place, so views handed out earlier keep their values).
    """

    def __init__(self, members: int, width: int, capacity: int = 64):
        self.array = np.empty((members, capacity, width))
        self.first = np.zeros(members, dtype=np.int64)  # array row of each member's oldest live row
        self.stop = np.zeros(members, dtype=np.int64)  # array row after each member's newest live row
        self.base = np.zeros(members, dtype=np.int64)  # stable index of array row 0, per member

    def lengths(self) -> np.ndarray:
        """Live rows per member, shape (members,)."""
        return self.stop - self.first

    def rows(self, i: int) -> np.ndarray:
        """Member ``i``'s live rows, oldest first (a view: copy it to keep it across appends)."""
        return self.array[i, self.first[i]:self.stop[i]]

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` more rows in every member's table (see the class docstring)."""
        if int(self.stop.max(initial=0)) + rows <= self.array.shape[1]:
            return
        live = self.lengths()
        capacity = max(2 * (int(live.max(initial=0)) + rows), self.array.shape[1], 1)
        array = np.empty((self.array.shape[0], capacity, self.array.shape[2]))
        for i in range(self.array.shape[0]):
            array[i, :live[i]] = self.rows(i)
        self.base += self.first
        self.array, self.first, self.stop = array, np.zeros_like(self.first), live

    def append(self, i: int, row) -> int:
        """Append a row to member ``i``'s table; returns its stable index."""
        if self.stop[i] == self.array.shape[1]:
            self.reserve(1)
        k = int(self.stop[i])
        self.array[i, k] = row
        self.stop[i] = k + 1
        return int(self.base[i]) + k

    def row(self, i: int, index: int) -> np.ndarray | None:
        """Member ``i``'s live row with stable ``index`` (a view, writable), or None when it was dropped."""
        k = index - int(self.base[i])
        return self.array[i, k] if self.first[i] <= k < self.stop[i] else None

    def drop_before(self, column: int, limit: float) -> None:
        """In every table, drop the oldest rows while their ``column`` is below ``limit``; a table stops
        at its first row that is not (a later row below ``limit`` stays until the rows before it go)."""
        _drop_before(self.array, self.first, self.stop, column, float(limit))

    def last(self, i: int, column: int) -> float:
        """``column`` of member ``i``'s newest row (NaN when empty)."""
        return float(self.array[i, self.stop[i] - 1, column]) if self.stop[i] > self.first[i] else np.nan


@jit
def _drop_before(array, first, stop, column, limit):
    """:meth:`RowHistories.drop_before` on the arrays (moves ``first`` in place)."""
    for i in range(first.size):
        k = first[i]
        while k < stop[i] and array[i, k, column] < limit:
            k += 1
        first[i] = k
