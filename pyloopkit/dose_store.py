"""The dose store: pump history made ready for the insulin math (LoopKit ``DoseStore``, thin).

``update()`` hands the raw dose history here once per run; :func:`prepare_doses` does what
LoopKit's ``DoseStore`` does before computing IOB and insulin effects: reconcile the pump events,
keep the doses that overlap the wanted window, annotate them with the scheduled basal rate, and
stop basal delivery at ``end_s`` (``basalDosingEnd``: a running temp basal counts only until now).

When numba is installed, a history without suspend or resume records (every closed-loop step)
goes through one compiled pass (:func:`_prepared_compiled`) doing the same operations, in the
same order, as the array path (reconcile, filter, annotate, trim, sort); anything else (suspends,
resumes, invalid doses, ``PYLOOPKIT_JIT=never``) takes the array path, which also raises.
"""
from __future__ import annotations

import numpy as np

from .date import SECONDS_PER_DAY
from .dose import DoseArrays, DoseType
from .insulin_math import (_BASAL_CODE, _BOLUS_CODE, _MAX_TYPE, _TRIM_EPS_S, DELIVERY_INCREMENTS_PER_UNIT,
                           _deliverable_units, annotate_with_basal, filter_date_range, reconcile, trim)
from .jit import HAVE_NUMBA, jit
from .schedule import DailySchedule

_CODES = np.array([_BOLUS_CODE, _BASAL_CODE, int(DoseType.TEMP_BASAL), int(DoseType.SUSPEND),
                   int(DoseType.RESUME), _MAX_TYPE], dtype=np.int64)
"""Type codes the compiled pass reads: bolus, basal, temp basal, suspend, resume, highest known."""
_EXACT_INTEGERS = 2.0 ** 52
"""Below this magnitude, float64 integers and their neighbours +-1 are exact."""


def prepare_doses(doses: DoseArrays, basal: DailySchedule, *, start_s: float | None,
                  end_s: float | None) -> DoseArrays:
    """Reconciled, basal-annotated doses overlapping ``[start_s, end_s]``, sorted by start.

    Parameters
    ----------
    doses : DoseArrays
        Raw history (any order; boluses in U, basal-like rates in U/h).
    basal : DailySchedule
        Scheduled basal rates (U/h).
    start_s, end_s : float or None
        Window in seconds since the reference date; ``None`` leaves that side open. Doses ending
        before ``start_s`` or starting after ``end_s`` are dropped; non-bolus doses are trimmed to
        end at ``end_s`` (boluses are kept whole, as LoopKit does).

    Notes
    -----
    Reconciliation runs on the whole history before filtering, so a temp basal cut short by a
    later one is cut even when the later one lies outside the window.
    """
    if HAVE_NUMBA and basal.values.ndim == 1:
        ok, *columns = _prepared_compiled(
            doses.type, doses.start_s, doses.end_s, doses.value, doses.delivered_units, doses.scheduled_rate,
            -np.inf if start_s is None else float(start_s), np.inf if end_s is None else float(end_s),
            end_s is not None, np.asarray(basal.start_s, dtype=float), np.asarray(basal.values, dtype=float),
            float(basal.offset_s), float(SECONDS_PER_DAY), _CODES, _TRIM_EPS_S, DELIVERY_INCREMENTS_PER_UNIT)
        if ok:
            return DoseArrays(*columns)
    prepared = annotate_with_basal(filter_date_range(reconcile(doses), start_s, end_s), basal, validate=False)
    if end_s is not None:
        prepared = trim(prepared, None, np.where(prepared.is_bolus, np.inf, float(end_s)))
    return prepared.sorted()


@jit
def _item_at(item_start, x, right):
    """``np.searchsorted(item_start, x, side) - 1``: the last item starting at or before ``x``
    (``right``), or strictly before it."""
    k = 0
    while k < item_start.size and (item_start[k] <= x if right else item_start[k] < x):
        k += 1
    return k - 1


@jit
def _split_bounds(s, e, item_start, offset_s, period):
    """``DailySchedule.split`` of one interval, same arithmetic: the first boundary counter
    ``g_first``, the number of cuts and the item in force at ``s``.

    An interval within one day of a one-item schedule starting at or before midnight skips the
    times of day: its item is 0 (a time of day is never negative) and the cut count
    ``max(base + {-1 or 0} - (base + 1) + 1, 0)`` is 0, exactly while ``|base| < 2**52``."""
    n_items = item_start.size
    base = np.floor((s + offset_s) / period)
    base_end = np.floor((e + offset_s) / period)
    if n_items == 1 and item_start[0] <= 0.0 and base_end == base and abs(base) < _EXACT_INTEGERS:
        return base + 1.0, np.int64(0), np.int64(0)
    first_idx = _item_at(item_start, np.mod(s + offset_s, period), True)
    g_first = base * n_items + first_idx + 1
    last_local = np.mod(e + offset_s, period)
    g_last = base_end * n_items + _item_at(item_start, last_local, False)
    return g_first, np.int64(max(g_last - g_first + 1, 0.0)), first_idx


@jit
def _stable_order(keys):
    """``np.argsort(keys, kind="mergesort")`` and whether it is the identity: an insertion sort
    (the same permutation: a stable sort of NaN-free keys is unique) for keys nearly in order,
    O(n) when in order; NaN keys or more than ``n + 16`` moves fall back to the sort."""
    n = keys.size
    order = np.arange(n)
    budget = n + 16
    for i in range(n):
        key = keys[i]
        if np.isnan(key):
            return np.argsort(keys, kind="mergesort"), False
        j = i
        while j > 0 and keys[order[j - 1]] > key:
            order[j] = order[j - 1]
            j -= 1
        budget -= i - j
        if budget < 0:
            return np.argsort(keys, kind="mergesort"), False
        order[j] = i
    return order, budget == n + 16


@jit
def _trim_row(bolus, s, e, value, delivered, new_s, new_e, eps, increments_per_unit):
    """``insulin_math._trimmed`` of one dose: its new ``(value, delivered_units)`` (a basal-like
    dose without delivered units keeps both: its scaled units are not computed)."""
    original = e - s
    if original > eps and (new_s > s or new_e < e) and (bolus or not np.isnan(delivered)):
        scaled = _deliverable_units(bolus, original / 3600.0, value, delivered, increments_per_unit) * (
            (new_e - new_s) / original)
        return (scaled if bolus else value), (delivered if np.isnan(delivered) else scaled)
    return value, delivered


@jit
def _prepared_compiled(kind, start_s, end_s, value, delivered, scheduled, window_start, window_end, trim_end,
                       item_start, item_value, offset_s, period, codes, eps, increments_per_unit):
    """Compiled :func:`prepare_doses` for histories without suspend or resume: ``(ok, columns...)``;
    ``ok`` is False (nothing computed) when a dose would fail ``validate_doses`` or is a suspend or
    resume. Reconcile (each basal ends at the next one's start, records in emission order, trimmed,
    delivery resolved, sorted), filter, annotate (split at schedule boundaries), trim at the end,
    sort: the array path's operations, row by row."""
    bolus_code, basal_code, temp_code, suspend_code, resume_code, max_type = (
        codes[0], codes[1], codes[2], codes[3], codes[4], codes[5])
    n = kind.size
    empty = np.empty(0)
    for i in range(n):
        k = kind[i]
        fine = (np.isfinite(start_s[i]) and np.isfinite(end_s[i]) and np.isfinite(value[i])
                and end_s[i] - start_s[i] >= 0 and value[i] >= 0 and 0 <= k <= max_type
                and not (delivered[i] < 0 or np.isinf(delivered[i]))
                and not (scheduled[i] < 0 or np.isinf(scheduled[i])))
        if not fine or k == suspend_code or k == resume_code:
            return False, np.empty(0, dtype=np.int8), empty, empty, empty, empty, empty
    # reconcile: records (source, end) in the order the state machine emits them
    order, _ = _stable_order(start_s)
    source = np.empty(n, dtype=np.int64)
    record_end = np.empty(n)
    m = 0
    pending = -1
    for j in range(n):
        i = order[j]
        if kind[i] == bolus_code:
            source[m] = i
            record_end[m] = end_s[i]
            m += 1
        elif kind[i] == basal_code or kind[i] == temp_code:
            if pending >= 0:
                cut = min(end_s[pending], start_s[i])
                if cut > start_s[pending]:
                    source[m] = pending
                    record_end[m] = cut
                    m += 1
            pending = i
    if pending >= 0 and end_s[pending] > start_s[pending]:
        source[m] = pending
        record_end[m] = end_s[pending]
        m += 1
    r_start = np.empty(m)
    for r in range(m):
        r_start[r] = start_s[source[r]]
    by_start, _ = _stable_order(r_start)
    # trim to the record, resolve delivery, filter, count the annotated pieces
    r_value = np.empty(m)
    r_delivered = np.empty(m)
    count = np.zeros(m, dtype=np.int64)
    g_first = np.zeros(m)
    first_idx = np.zeros(m, dtype=np.int64)
    total = 0
    for r in range(m):
        i = source[r]
        bolus = kind[i] == bolus_code
        e = record_end[r]
        v, d = _trim_row(bolus, start_s[i], end_s[i], value[i], delivered[i], start_s[i], e, eps,
                         increments_per_unit)
        if np.isnan(d):
            hours = (e - start_s[i]) / 3600.0
            d = v * hours if kind[i] == basal_code else _deliverable_units(bolus, hours, v, d, increments_per_unit)
        r_value[r] = v
        r_delivered[r] = d
        if not (e >= window_start and start_s[i] <= window_end):
            continue
        if kind[i] == temp_code and np.isnan(scheduled[i]):
            g_first[r], cuts, first_idx[r] = _split_bounds(start_s[i], max(e, start_s[i]), item_start, offset_s,
                                                           period)
            count[r] = cuts + 1
        else:
            count[r] = 1
        total += count[r]
    o_kind = np.empty(total, dtype=np.int8)
    o_start = np.empty(total)
    o_end = np.empty(total)
    o_value = np.empty(total)
    o_delivered = np.empty(total)
    o_scheduled = np.empty(total)
    n_items = item_start.size
    p = 0
    for q in range(m):
        r = by_start[q]
        if count[r] == 0:
            continue
        i = source[r]
        s, e = start_s[i], record_end[r]
        if kind[i] == temp_code and np.isnan(scheduled[i]):
            e = max(e, s)
            for j in range(count[r]):
                if j == 0:
                    seg_start, rate = s, item_value[first_idx[r]]
                else:
                    g = g_first[r] + j - 1
                    day = np.floor(g / n_items)
                    item = np.int64(g - day * n_items)
                    seg_start, rate = day * period + item_start[item] - offset_s, item_value[item]
                o_start[p + j] = seg_start
                o_scheduled[p + j] = rate
                if j > 0:
                    o_end[p + j - 1] = seg_start
            o_end[p + count[r] - 1] = e
            for j in range(count[r]):
                o_kind[p + j] = kind[i]
                o_value[p + j], o_delivered[p + j] = _trim_row(False, s, e, r_value[r], r_delivered[r],
                                                               o_start[p + j], o_end[p + j], eps, increments_per_unit)
        else:
            o_kind[p], o_start[p], o_end[p] = kind[i], s, e
            o_value[p], o_delivered[p], o_scheduled[p] = r_value[r], r_delivered[r], scheduled[i]
        p += count[r]
    if trim_end:
        for j in range(total):
            bolus = o_kind[j] == bolus_code
            new_end = max(o_start[j], min(o_end[j], np.inf if bolus else window_end))
            o_value[j], o_delivered[j] = _trim_row(bolus, o_start[j], o_end[j], o_value[j], o_delivered[j],
                                                   o_start[j], new_end, eps, increments_per_unit)
            o_end[j] = new_end
    final, in_order = _stable_order(o_start)
    if in_order:
        return True, o_kind, o_start, o_end, o_value, o_delivered, o_scheduled
    return (True, o_kind[final], o_start[final], o_end[final], o_value[final], o_delivered[final],
            o_scheduled[final])
