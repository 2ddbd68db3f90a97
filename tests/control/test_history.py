"""RowHistory: the controller's bounded history tables."""
import numpy as np

from pyloopkit.control.history import RowHistory


def test_rows_are_appended_dropped_from_the_front_and_addressed_by_stable_index():
    history = RowHistory(2, capacity=2)
    indices = [history.append((float(k), 10.0 * k)) for k in range(7)]  # grows past its capacity twice
    assert indices == list(range(7))
    np.testing.assert_array_equal(history.rows, [[k, 10.0 * k] for k in range(7)])
    history.drop_before(0, 4.5)
    assert len(history) == 2 and history.row(3) is None
    history.row(5)[1] = -1.0  # a running temp basal cut short
    for k in range(7, 12):  # the array end is reached again: live rows move to a new array
        history.append((float(k), 10.0 * k))
    np.testing.assert_array_equal(history.rows[:, 0], np.arange(5.0, 12.0))
    assert history.row(5)[1] == -1.0 and history.row(11)[1] == 110.0 and history.last(1) == 110.0


def test_views_handed_out_keep_their_values_and_an_empty_history_has_no_last_row():
    history = RowHistory(1, capacity=2)
    assert len(history) == 0 and np.isnan(history.last(0)) and history.rows.shape == (0, 1)
    history.append((1.0,))
    history.append((2.0,))
    view = history.rows
    history.drop_before(0, 1.5)
    history.append((3.0,))  # moves the live rows: the old view is not overwritten
    np.testing.assert_array_equal(view[:, 0], [1.0, 2.0])
    np.testing.assert_array_equal(history.rows[:, 0], [2.0, 3.0])
    history.drop_before(0, 10.0)
    assert len(history) == 0
