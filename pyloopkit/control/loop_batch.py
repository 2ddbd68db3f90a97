"""Every member's Loop decision of a closed-loop step in one compiled call, run on all cores.

:class:`~pyloopkit.control.loop_controller.LoopController` keeps its members' histories in
:class:`~pyloopkit.control.history.RowHistories` (minutes since the start of the run). At each step
:func:`decide_and_enact` does for each member what the controller's Python path does
(:meth:`LoopController.loop_input`, :func:`pyloopkit.loop_data_manager.closed_loop_recommendations`
and the enactment in :meth:`LoopController.act`): it converts the member's dates to seconds since
the reference date exactly as ``loop_input`` does (whole microseconds / 1e6), runs the compiled
decision (:func:`pyloopkit.core_kernel._decide`) and enacts it: the automatic bolus (with
``dosing_strategy="automatic_bolus"``) is appended, the running temp basal is cut at now and the
recommended one appended, or the temp basal cancelled. At a meal announced now the meal bolus (Loop's
recommended bolus, from the same decision, or the carb-ratio bolus) is appended first and Loop decides
again with it, whose temp basal is enacted (its automatic bolus is not given at that step). The members
are decided on ``threads`` threads, the calling one included (the compiled code runs without the GIL,
so they run on as many cores); a member whose decision the compiled pass does not cover is left
untouched and flagged, and the controller runs its Python path.
"""
from __future__ import annotations

import concurrent.futures
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue

import numpy as np

from pyloopkit import core_kernel
from pyloopkit.dose import DoseType
from pyloopkit.dose_math import _KEEP, _SET, TEMP_BASAL_DURATION_MIN
from pyloopkit.jit import jit
from pyloopkit.schedule import value_at

TEMP_BASAL, BOLUS = int(DoseType.TEMP_BASAL), int(DoseType.BOLUS)
US_PER_MIN = 60_000_000
"""Microseconds per minute (the controller's minute-to-date conversion)."""
PARTS_PER_THREAD = 4
"""The members of a step are split into this many parts per thread; each thread takes the next part
left until none is (a thread that starts late or runs slower takes fewer)."""


def decide_and_enact(now_min, start_us, glucose_s, readings, doses, dose_first, dose_stop, dose_base, temp,
                     carbs, carb_first, carb_stop, absorption_min, members, meal_u, factors, constants,
                     automatic_strategy, bolus_delivery_min, threads: int = 1):
    """Decide and enact for ``members`` (indices into the batch) at simulated minute ``now_min``.

    Parameters
    ----------
    now_min : float
    start_us : int
        Microseconds from the reference date to simulated minute 0.
    glucose_s, readings : arrays (T,), (T, n)
        The batch's CGM history (seconds since the reference date, mg/dL).
    doses, dose_first, dose_stop, dose_base : the members' dose tables (``RowHistories`` arrays;
        rows: type code, start min, end min, value); rows are appended in place (room for two more
        rows per member must be reserved).
    temp : int array (n,)
        Stable index of each member's running temp basal row, -1 for none (updated in place).
    carbs, carb_first, carb_stop : the members' carb tables (minute, g), a meal announced now included.
    absorption_min : float
        Absorption time of every carb entry (min).
    members : int array
    meal_u : float array (n,)
        Each member's meal bolus now (U): 0 for none (no meal, or a meal without a bolus), NaN for Loop's
        recommended bolus (computed with the decision), else the bolus given. With a meal bolus above 0
        the bolus is given and Loop decides again with it in the history (``LoopController.act``).
    factors : float array (n,)
        Automatic bolus application factor of each member.
    constants : typed list
        :func:`pyloopkit.core_kernel.plan` of each member.
    automatic_strategy : bool
        ``dosing_strategy == "automatic_bolus"``: the automatic bolus is given and its temp basal used.
    bolus_delivery_min : float
        How long a bolus row lasts (min).
    threads : int
        The members are decided on this many threads at once, the calling one included (split into
        :data:`PARTS_PER_THREAD` parts per thread, each thread taking the next part left).

    Returns
    -------
    status : int array (len(members),)
        :data:`pyloopkit.core_kernel.NOT_COVERED` (nothing enacted: run the Python path),
        ``DECIDED`` or ``STALE`` (no recommendation).
    bolus_u : float array (len(members),)
        Bolus given now (U): the meal bolus, else the automatic bolus.
    """
    arguments = (now_min, start_us, glucose_s, readings, doses, dose_first, dose_stop, dose_base, temp, carbs,
                 carb_first, carb_stop, absorption_min)
    settings = (meal_u, factors, constants, automatic_strategy, bolus_delivery_min)
    if threads <= 1 or members.size <= 1:
        return _decide_and_enact(*arguments, members, *settings)
    parts = np.array_split(members, min(members.size, PARTS_PER_THREAD * threads))
    results = [None] * len(parts)
    queue = SimpleQueue()
    for index in range(len(parts)):
        queue.put(index)

    def work():
        """Decide the parts still in the queue, one after the other."""
        while True:
            try:
                index = queue.get_nowait()
            except Empty:
                return
            results[index] = _decide_and_enact(*arguments, parts[index], *settings)

    futures = [_executor(threads - 1).submit(work) for _ in range(threads - 1)]
    try:
        work()
    finally:  # never return (or raise) while other threads still write into the histories
        concurrent.futures.wait(futures)
    for future in futures:
        future.result()
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


@functools.lru_cache(maxsize=None)
def _executor(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` threads, shared by every controller (created at the first use; a forked
    child process creates its own, the parent's threads do not exist there); the calling thread decides
    parts of the members too."""
    return ThreadPoolExecutor(threads, thread_name_prefix="pyloopkit-loop")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_executor.cache_clear)


@jit(nogil=True)
def _decide_and_enact(now_min, start_us, glucose_s, readings, doses, dose_first, dose_stop, dose_base, temp, carbs,
                      carb_first, carb_stop, absorption_min, members, meal_u, factors, constants, automatic_strategy,
                      bolus_delivery_min):
    """:func:`decide_and_enact` for one part of the members, without the GIL."""
    status = np.zeros(members.size, dtype=np.int64)
    bolus_u = np.zeros(members.size)
    now_s = _seconds(np.array([now_min]), start_us)[0]
    for k in range(members.size):
        i = members[k]
        running = _running(doses, i, temp[i] - dose_base[i], dose_first[i], dose_stop[i], now_min, start_us)
        entries = carbs[i, carb_first[i]:carb_stop[i]]
        carb_columns = (_seconds(entries[:, 0], start_us), entries[:, 1].copy(),
                        np.full(entries.shape[0], absorption_min))
        glucose = (now_s, glucose_s, np.ascontiguousarray(readings[:, i]))
        meal = meal_u[i]
        out = _decision(glucose, doses, i, dose_first, dose_stop, start_us, carb_columns, running, factors[i],
                        constants[i], np.isnan(meal))
        status[k] = out[0]
        if out[0] == core_kernel.NOT_COVERED:
            continue
        if np.isnan(meal):
            meal = out[6] if out[0] == core_kernel.DECIDED else 0.0
        if meal > 0:  # the meal bolus, then Loop again with it in the history (its automatic bolus not given)
            row = _append(doses, i, dose_stop, BOLUS, now_min, now_min + bolus_delivery_min, meal)
            out = _decision(glucose, doses, i, dose_first, dose_stop, start_us, carb_columns, running, factors[i],
                            constants[i], False)
            status[k] = out[0]
            if out[0] == core_kernel.NOT_COVERED:  # the Python path gives the meal bolus again
                dose_stop[i] = row
                continue
        given = 0.0
        if out[0] == core_kernel.DECIDED:
            given = _enact(doses, i, temp, dose_first, dose_stop, dose_base, now_min, out, automatic_strategy,
                           meal <= 0, bolus_delivery_min)
        bolus_u[k] = meal if meal > 0 else given
    return status, bolus_u


@jit
def _decision(glucose, doses, i, first, stop, start_us, carb_columns, running, factor, constants, manual):
    """:func:`pyloopkit.core_kernel._decide` of member ``i``'s dose table as it is now (``glucose``:
    ``(now s, dates s, the member's readings)``)."""
    table = doses[i, first[i]:stop[i]]
    n_doses = table.shape[0]
    columns = (table[:, 0].astype(np.int8), _seconds(table[:, 1], start_us), _seconds(table[:, 2], start_us),
               table[:, 3].copy(), np.full(n_doses, np.nan), np.full(n_doses, np.nan))
    return core_kernel._decide(glucose[0], glucose[1], glucose[2], columns, carb_columns, running, factor, constants,
                               manual)


@jit
def _seconds(minutes, start_us):
    """Seconds since the reference date of simulated minutes (``LoopController._seconds``)."""
    out = np.empty(minutes.size)
    for k in range(minutes.size):
        out[k] = (start_us + np.int64(np.rint(minutes[k] * US_PER_MIN))) / 1e6
    return out


@jit
def _running(doses, i, k, first, stop, now_min, start_us):
    """The running temp basal of member ``i`` (array row ``k``) as the compiled decision reads it:
    ``(is a temp basal or basal, start s, end s, rate U/h)``, or ``(False, nan, nan, nan)``."""
    if k < first or k >= stop or not doses[i, k, 2] > now_min:
        return False, np.nan, np.nan, np.nan
    kind = int(doses[i, k, 0])
    bounds = _seconds(doses[i, k, 1:3].copy(), start_us)
    is_temp = kind == core_kernel.TEMP_TYPES[0] or kind == core_kernel.TEMP_TYPES[1]
    return is_temp, bounds[0], bounds[1], doses[i, k, 3]


@jit
def _enact(doses, i, temp, first, stop, base, now_min, out, automatic_strategy, automatic_bolus,
           bolus_delivery_min):
    """``LoopController.act``'s enactment of a decision ``out`` (:func:`core_kernel._decide`'s tuple)
    for member ``i``: the automatic bolus (unless ``automatic_bolus`` is False: after a meal bolus),
    then the temp basal decision. Returns the automatic bolus given (U)."""
    _, temp_decision, temp_rate, auto_bolus, auto_decision, auto_rate = out[:6]
    bolus = 0.0
    if automatic_strategy:
        if automatic_bolus:
            bolus = 0.0 if auto_decision == _KEEP and auto_bolus <= 0 else auto_bolus
        temp_decision, temp_rate = auto_decision, auto_rate
        if bolus != 0.0:
            _append(doses, i, stop, BOLUS, now_min, now_min + bolus_delivery_min, bolus)
    if temp_decision != _KEEP:  # cancel or set: the running temp basal ends now
        k = temp[i] - base[i]
        if first[i] <= k < stop[i] and doses[i, k, 2] > now_min:
            doses[i, k, 2] = now_min
        temp[i] = -1
        if temp_decision == _SET:
            temp[i] = base[i] + _append(doses, i, stop, TEMP_BASAL, now_min, now_min + TEMP_BASAL_DURATION_MIN,
                                        temp_rate)
    return bolus


@jit
def _append(doses, i, stop, kind, start_min, end_min, value):
    """Append a dose row to member ``i``'s table; returns its array row."""
    k = stop[i]
    doses[i, k, 0], doses[i, k, 1], doses[i, k, 2], doses[i, k, 3] = kind, start_min, end_min, value
    stop[i] = k + 1
    return k



@jit
def expire_temps(doses, first, stop, base, temp, now_min):
    """Forget each member's temp basal (``temp`` -1) once it has ended by ``now_min`` or was dropped
    (``LoopController``'s running temp basal: its row's end after now)."""
    for i in range(temp.size):
        k = temp[i] - base[i]
        if temp[i] >= 0 and not (first[i] <= k < stop[i] and doses[i, k, 2] > now_min):
            temp[i] = -1


def schedule_table(schedules) -> tuple:
    """The members' :class:`~pyloopkit.schedule.DailySchedule` s as padded arrays for
    :func:`scheduled_values`: start times (n, K) padded with +inf (no item starts there), values
    (n, K) and offsets (n,)."""
    width = max((len(x.start_s) for x in schedules), default=1)
    starts = np.full((len(schedules), width), np.inf)
    values = np.zeros((len(schedules), width))
    for i, schedule in enumerate(schedules):
        starts[i, :schedule.start_s.size] = schedule.start_s
        values[i, :schedule.values.size] = schedule.values
    return starts, values, np.array([float(x.offset_s) for x in schedules])


@jit
def scheduled_values(now_s, starts, values, offsets):
    """Each member's schedule value at ``now_s`` (:func:`pyloopkit.schedule.value_at`: the padding
    starts after every time of day, so a member's value is its own schedule's)."""
    out = np.empty(offsets.size)
    for i in range(offsets.size):
        out[i] = value_at(starts[i], values[i], offsets[i], now_s)
    return out
