"""RowHistories: the controller's bounded history tables, one per member."""
import numpy as np

from pyloopkit.control.history import RowHistories


def test_rows_are_appended_dropped_from_the_front_and_addressed_by_stable_index():
    history = RowHistories(2, 2, capacity=2)
    indices = [history.append(0, (float(k), 10.0 * k)) for k in range(7)]  # grows past its capacity twice
    assert indices == list(range(7))
    assert history.append(1, (100.0, 1.0)) == 0  # each member counts its own rows
    np.testing.assert_array_equal(history.rows(0), [[k, 10.0 * k] for k in range(7)])
    history.drop_before(0, 4.5)
    np.testing.assert_array_equal(history.lengths(), [2, 1])  # member 1's row is not below the limit
    assert history.row(0, 3) is None and history.row(1, 0)[0] == 100.0
    history.row(0, 5)[1] = -1.0  # a running temp basal cut short
    for k in range(7, 12):  # the array end is reached again: live rows move to a new array
        history.append(0, (float(k), 10.0 * k))
    np.testing.assert_array_equal(history.rows(0)[:, 0], np.arange(5.0, 12.0))
    assert history.row(0, 5)[1] == -1.0 and history.row(0, 11)[1] == 110.0 and history.last(0, 1) == 110.0
    assert history.row(1, 0)[0] == 100.0 and history.last(1, 0) == 100.0  # moved with the others


def test_drop_stops_at_the_first_row_not_below_the_limit():
    history = RowHistories(1, 1, capacity=4)
    for value in (1.0, 5.0, 2.0, 6.0):
        history.append(0, (value,))
    history.drop_before(0, 3.0)
    np.testing.assert_array_equal(history.rows(0)[:, 0], [5.0, 2.0, 6.0])  # 2.0 stays behind 5.0


def test_views_handed_out_keep_their_values_and_an_empty_history_has_no_last_row():
    history = RowHistories(1, 1, capacity=2)
    assert history.lengths()[0] == 0 and np.isnan(history.last(0, 0)) and history.rows(0).shape == (0, 1)
    history.append(0, (1.0,))
    history.append(0, (2.0,))
    view = history.rows(0)
    history.drop_before(0, 1.5)
    history.append(0, (3.0,))  # moves the live rows: the old view is not overwritten
    np.testing.assert_array_equal(view[:, 0], [1.0, 2.0])
    np.testing.assert_array_equal(history.rows(0)[:, 0], [2.0, 3.0])
    history.drop_before(0, 10.0)
    assert history.lengths()[0] == 0


def test_reserve_makes_room_for_every_member_and_keeps_stable_indices():
    history = RowHistories(3, 4, capacity=2)
    history.append(0, (1.0, 2.0, 3.0, 4.0))
    history.append(0, (5.0, 6.0, 7.0, 8.0))
    history.reserve(2)
    assert history.array.shape[1] >= 4 and history.row(0, 1)[3] == 8.0
    np.testing.assert_array_equal(history.lengths(), [2, 0, 0])
    history.reserve(0)  # enough room: nothing moves
    assert history.row(0, 0)[0] == 1.0
