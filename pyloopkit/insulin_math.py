"""Insulin math on dose arrays: reconciliation, basal annotation, net units, IOB and insulin effects.

Semantics follow LoopKit's ``InsulinMath.swift`` / ``DoseEntry.swift`` (the Swift code behind the
LoopKit fixtures) and LoopAlgorithm's ``InsulinMath.swift`` (same effect and IOB formulas):

* a dose lasting at most ``1.05 x 5 min`` is *momentary*: its whole net amount starts at its start;
* a longer dose is *continuous*: LoopKit cuts it into 5-minute slices from its start (the last one
  shorter), each holding its share of the net units and starting at its own offset
  (``continuousDeliveryGlucoseEffect`` / ``continuousDeliveryInsulinOnBoard``). We build exactly those
  slices, so the numbers match Swift's 5-minute numerical sum, not an exact integral;
* the insulin sensitivity of a dose is the one in force at the dose's start;
* IOB of a continuous dose counts a slice from ``delay`` before the slice starts (Swift's loop bound
  ``floor((t + delay) / delta) * delta``), and nothing before the dose starts.

Every timeline is computed without a Python loop per date or per dose: doses become slices, each
slice only touches the dates inside its action window (a ``slices x window`` array, summed with
``np.bincount``), and the constant full effect after the window is added with one cumulative sum.
The cost is linear in the number of doses and in the number of dates.

Times are seconds since the reference date (:mod:`pyloopkit.date`); amounts U, rates U/h,
effects mg/dL.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from .date import GRID_S, grid, overlaps
from .dose import INSULIN_TYPES, DoseArrays, DoseType
from .errors import InvalidInputError, Problem, raise_if
from .insulin_models import WALSH_COEFFICIENTS, ExponentialInsulinModel, WalshInsulinModel
from .jit import HAVE_NUMBA, jit
from .schedule import DailySchedule, value_at

MOMENTARY_FACTOR = 1.05
"""Doses lasting at most ``1.05 x GRID_S`` are momentary (LoopKit ``insulinOnBoard(at:)``)."""

DELIVERY_INCREMENTS_PER_UNIT = 20.0
"""Medtronic basal delivery increment is 1/20 U (LoopKit ``minimumMinimedIncrementPerUnit``)."""

MAXIMUM_RESERVOIR_DROP_PER_MINUTE = 6.5
"""Largest plausible reservoir drop, U/min (LoopKit ``MaximumReservoirDropPerMinute``)."""

_TRIM_EPS_S = np.finfo(float).eps
_MAX_TYPE = int(max(INSULIN_TYPES))
_BASAL_CODE = int(DoseType.BASAL)
_BOLUS_CODE = int(DoseType.BOLUS)
_MAX_BLOCK = 8192
"""Slices x dates evaluated per block: temporaries stay below 64 kB (faster than one large block)."""


# --------------------------------------------------------------------------- validation

def validate_doses(doses: DoseArrays, field: str = "doses") -> None:
    """Raise :class:`InvalidInputError` naming every dose with a non-finite time, an end before its
    start, a negative or non-finite value, a negative or infinite delivered amount or scheduled rate
    (NaN means unknown), or an unknown type."""
    du, sr = doses.delivered_units, doses.scheduled_rate
    with np.errstate(invalid="ignore"):  # one pass per check group: this runs on every math call
        known = np.concatenate((du, sr))
        fine = (np.isfinite(np.concatenate((doses.start_s, doses.end_s, doses.value))).all()
                and (np.minimum(doses.end_s - doses.start_s, doses.value) >= 0).all()
                and not ((known < 0) | np.isinf(known)).any()
                and (doses.type.astype(np.uint8) <= _MAX_TYPE).all())
    if fine:
        return
    problems: list[Problem] = []

    def flag(mask, column, values, reason):
        for i in np.flatnonzero(mask):
            problems.append(Problem(f"{field}.{column}", int(i), float(values[i]), reason))

    flag(~np.isfinite(doses.start_s), "start_s", doses.start_s, "must be a finite time")
    flag(~np.isfinite(doses.end_s), "end_s", doses.end_s, "must be a finite time")
    flag(np.isfinite(doses.start_s) & np.isfinite(doses.end_s) & (doses.end_s < doses.start_s),
         "end_s", doses.end_s, "ends before the dose starts")
    flag(~np.isfinite(doses.value) | (doses.value < 0), "value", doses.value, "must be a finite amount >= 0")
    flag(~np.isnan(du) & (~np.isfinite(du) | (du < 0)), "delivered_units", du, "must be NaN or a finite amount >= 0")
    flag(~np.isnan(sr) & (~np.isfinite(sr) | (sr < 0)), "scheduled_rate", sr, "must be NaN or a finite rate >= 0")
    known = np.isin(doses.type, [int(t) for t in INSULIN_TYPES])
    flag(~known, "type", doses.type, "unknown dose type")
    if problems:
        raise InvalidInputError(problems)


# --------------------------------------------------------------------------- units

def _round_half_away(x: np.ndarray) -> np.ndarray:
    """Swift's ``round`` (half away from zero), unlike numpy's half-to-even."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def programmed_units(doses: DoseArrays) -> np.ndarray:
    """Units the pump was asked to deliver (U): the bolus amount, or rate x hours for basal-like doses."""
    hours = doses.duration_s / 3600.0
    return np.where(doses.is_bolus, doses.value, doses.value * hours)


def units_in_deliverable_increments(doses: DoseArrays) -> np.ndarray:
    """Delivered units (U) when known, else the programmed units rounded to the pump's 0.05 U basal
    increment (boluses are not rounded). LoopKit ``DoseEntry.unitsInDeliverableIncrements``."""
    programmed = programmed_units(doses)
    rounded = _round_half_away(programmed * DELIVERY_INCREMENTS_PER_UNIT) / DELIVERY_INCREMENTS_PER_UNIT
    estimate = np.where(doses.is_bolus, programmed, rounded)
    return np.where(np.isnan(doses.delivered_units), estimate, doses.delivered_units)


def net_basal_units(doses: DoseArrays) -> np.ndarray:
    """Insulin (U) delivered net of the scheduled basal, which drives IOB and effects.

    LoopKit ``DoseEntry.netBasalUnits``: a bolus counts its delivered (else programmed) units; a
    scheduled basal counts 0; a temp basal, suspend or resume counts its deliverable units minus
    ``scheduled_rate x hours`` (a missing scheduled rate counts as 0) and 0 when it lasts no time.
    A suspend is therefore negative. Rounding applies to the programmed units, never to the net.
    """
    hours = doses.duration_s / 3600.0
    scheduled = np.nan_to_num(doses.scheduled_rate, nan=0.0)
    units = units_in_deliverable_increments(doses)
    relative = np.where(hours > 0, units - scheduled * hours, 0.0)
    net = np.where(doses.is_bolus, units, relative)
    return np.where(doses.type == _BASAL_CODE, 0.0, net)


def net_basal_rate(doses: DoseArrays) -> np.ndarray:
    """Rate (U/h) net of the scheduled basal: LoopKit ``netBasalUnitsPerHour`` (0 for scheduled
    basal and for unannotated temp basals, the average rate for a bolus, 0 when below 1 ulp)."""
    hours = doses.duration_s / 3600.0
    with np.errstate(divide="ignore", invalid="ignore"):
        bolus_rate = np.where(hours > 0, doses.value / np.where(hours > 0, hours, 1.0), 0.0)
    relative = doses.value - doses.scheduled_rate
    relative = np.where(np.isnan(relative) | (np.abs(relative) <= np.finfo(float).eps), 0.0, relative)
    net = np.where(doses.is_bolus, bolus_rate, relative)
    return np.where(doses.type == DoseType.BASAL, 0.0, net)


def total_delivery(doses: DoseArrays) -> float:
    """Total insulin delivered (U): the sum of :func:`units_in_deliverable_increments`."""
    return float(np.sum(units_in_deliverable_increments(doses)))


# --------------------------------------------------------------------------- trimming

def _trimmed(doses: DoseArrays, new_start: np.ndarray, new_end: np.ndarray) -> DoseArrays:
    """LoopKit ``DoseEntry.trimmed``: new bounds; delivered units (and a bolus's units) scale with
    the kept fraction of the original duration when the bounds changed. A compiled loop (same
    arithmetic) runs when numba is installed."""
    if HAVE_NUMBA:
        new_start, new_end = np.asarray(new_start, dtype=float), np.asarray(new_end, dtype=float)
        value, delivered = _trimmed_compiled(doses.type, doses.start_s, doses.end_s, doses.value,
                                             doses.delivered_units, new_start, new_end, _BOLUS_CODE, _TRIM_EPS_S,
                                             DELIVERY_INCREMENTS_PER_UNIT)
        return doses.with_(start_s=new_start, end_s=new_end, value=value, delivered_units=delivered)
    original = doses.duration_s
    changed = (original > _TRIM_EPS_S) & ((new_start > doses.start_s) | (new_end < doses.end_s))
    fraction = np.where(changed, (new_end - new_start) / np.where(changed, original, 1.0), 1.0)
    scaled = units_in_deliverable_increments(doses) * fraction
    delivered = np.where(changed & ~np.isnan(doses.delivered_units), scaled, doses.delivered_units)
    value = np.where(changed & doses.is_bolus, scaled, doses.value)
    return doses.with_(start_s=new_start, end_s=new_end, value=value, delivered_units=delivered)


@jit
def _trimmed_compiled(kind, start_s, end_s, value, delivered, new_start, new_end, bolus_code, eps,
                      increments_per_unit):
    """Compiled :func:`_trimmed`: the new ``value`` and ``delivered_units`` columns."""
    n = kind.size
    value_out = value.copy()
    delivered_out = delivered.copy()
    for i in range(n):
        original = end_s[i] - start_s[i]
        if original > eps and (new_start[i] > start_s[i] or new_end[i] < end_s[i]):
            bolus = kind[i] == bolus_code
            scaled = _deliverable_units(bolus, original / 3600.0, value[i], delivered[i], increments_per_unit) * (
                (new_end[i] - new_start[i]) / original)
            if not np.isnan(delivered[i]):
                delivered_out[i] = scaled
            if bolus:
                value_out[i] = scaled
    return value_out, delivered_out


def trim(doses: DoseArrays, start_s=None, end_s=None) -> DoseArrays:
    """Clip every dose to ``[start_s, end_s]`` (LoopKit ``trimmed(from:to:)``).

    ``start_s`` / ``end_s`` are seconds (a scalar, or one value per dose), ``None`` for open.
    A dose entirely outside the interval becomes zero-length (it is not dropped, as in Swift).
    Delivered units and bolus units are scaled to the kept fraction; rates stay unchanged.
    """
    lo = -np.inf if start_s is None else np.asarray(start_s, dtype=float)
    hi = np.inf if end_s is None else np.asarray(end_s, dtype=float)
    new_start = np.maximum(doses.start_s, lo)
    new_end = np.maximum(new_start, np.minimum(doses.end_s, hi))
    return _trimmed(doses, new_start, new_end)


def filter_date_range(doses: DoseArrays, start_s: float | None = None, end_s: float | None = None) -> DoseArrays:
    """Doses overlapping ``[start_s, end_s]`` (LoopKit ``filterDateRange``: end >= start_s and start <= end_s)."""
    return doses.take(overlaps(doses.start_s, doses.end_s, start_s, end_s))


# --------------------------------------------------------------------------- reconciliation

_KEEP_DELIVERY, _NO_DELIVERY = 0, 1


def reconcile(doses: DoseArrays, validate: bool = True) -> DoseArrays:
    """Turn pump history into non-overlapping delivery (LoopKit ``reconciled()``).

    Doses are taken in start order (stable, so simultaneous events keep their given order). A basal or
    temp basal ends when the next one starts; a suspend ends at the next resume and interrupts the
    running basal, which continues after the resume until its own end; resumes disappear; a trailing
    suspend stays open (zero length); zero-length basals are dropped. Missing delivered units are
    then resolved: bolus units, temp basal units rounded to the pump increment, scheduled basal
    programmed units, 0 for a suspend.

    One deliberate deviation: a suspend while already suspended is ignored. Swift would emit the
    interrupted basal a second time (overlapping, double-counted delivery) and drop the first
    suspend's interval.

    The state machine is inherently sequential; its loop only records ``(source, start, end)``
    triples, the columns are then built with array operations. ``validate=False`` skips
    :func:`validate_doses` for doses the caller has already validated.
    """
    if validate:
        validate_doses(doses)
    d = doses.sorted()
    suspends = ((d.type == int(DoseType.SUSPEND)) | (d.type == int(DoseType.RESUME))).any()
    return _from_records(d, *(_state_machine_records(d) if suspends else _basal_records(d)))


def _state_machine_records(d: DoseArrays):
    """LoopKit's reconciliation state machine over sorted doses: ``(source, start, end, mode)`` arrays."""
    kinds = d.type.tolist()
    starts = d.start_s.tolist()
    ends = d.end_s.tolist()
    bolus, basal, temp_basal = int(DoseType.BOLUS), int(DoseType.BASAL), int(DoseType.TEMP_BASAL)
    resume, suspend = int(DoseType.RESUME), int(DoseType.SUSPEND)
    records: list[tuple[int, float, float, int]] = []
    last_suspend: int | None = None
    last_basal: tuple[int, float, float, int] | None = None  # (source, start, end, delivery mode)
    for i, (kind, s, e) in enumerate(zip(kinds, starts, ends)):
        if kind == bolus:
            records.append((i, s, e, _KEEP_DELIVERY))
        elif kind == basal or kind == temp_basal:
            if last_suspend is None and last_basal is not None:
                end = last_basal[2] if last_basal[2] < s else s
                if end > last_basal[1]:
                    records.append((last_basal[0], last_basal[1], end, last_basal[3]))
            last_basal = (i, s, e, _KEEP_DELIVERY)
        elif kind == resume:
            if last_suspend is not None:
                records.append((last_suspend, starts[last_suspend], s, _NO_DELIVERY))
                last_suspend = None
                if last_basal is not None:
                    last_basal = (last_basal[0], e, last_basal[2], _NO_DELIVERY) if last_basal[2] > e else None
        elif kind == suspend:
            if last_suspend is not None:
                continue  # already suspended (Swift would emit the interrupted basal a second time)
            if last_basal is not None:
                records.append((last_basal[0], last_basal[1], min(last_basal[2], s), _NO_DELIVERY))
                if last_basal[2] <= s:
                    last_basal = None
            last_suspend = i
    if last_suspend is not None:
        records.append((last_suspend, starts[last_suspend], ends[last_suspend], _KEEP_DELIVERY))
    elif last_basal is not None and last_basal[2] > last_basal[1]:
        records.append(last_basal)
    if not records:
        return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)
    source, new_start, new_end, mode = (np.array(c) for c in zip(*records))
    return source.astype(np.int64), new_start.astype(float), new_end.astype(float), mode


def _basal_records(d: DoseArrays):
    """:func:`_state_machine_records` for histories without suspend or resume, on arrays:
    boluses as they are; each basal or temp basal ends at the next one's start at the latest, and
    is dropped when that leaves it empty. Records keep the order the state machine emits them in."""
    n = len(d)
    index = np.arange(n)
    is_basal = (d.type == int(DoseType.BASAL)) | (d.type == int(DoseType.TEMP_BASAL))
    basal = index[is_basal]
    next_start = np.append(d.start_s[basal][1:], np.inf)
    basal_end = np.minimum(d.end_s[basal], next_start)
    emitted_at = np.append(basal[1:], n)  # a basal is emitted when the next one arrives (or at the end)
    keep = basal_end > d.start_s[basal]
    bolus = index[d.type == int(DoseType.BOLUS)]
    source = np.concatenate((bolus, basal[keep]))
    order = np.argsort(np.concatenate((bolus, emitted_at[keep])), kind="stable")
    source = source[order]
    new_end = np.concatenate((d.end_s[bolus], basal_end[keep]))[order]
    return source, d.start_s[source], new_end, np.full(source.size, _KEEP_DELIVERY)


def _from_records(d: DoseArrays, source, new_start, new_end, mode) -> DoseArrays:
    """Reconciled doses from state-machine records ``(source index, start, end, delivery mode)``."""
    if source.size == 0:
        return DoseArrays()
    picked = d.take(source)
    fresh = mode == _NO_DELIVERY
    if fresh.any():
        # Copies built from scratch in Swift (suspend/resume branches) carry no delivered units nor schedule.
        picked = picked.with_(
            start_s=np.where(fresh, new_start, picked.start_s),
            delivered_units=np.where(fresh, np.nan, picked.delivered_units),
            scheduled_rate=np.where(fresh, np.nan, picked.scheduled_rate))
    out = _trimmed(picked, picked.start_s, new_end)
    return _resolve_delivery(out).sorted()


def _resolve_delivery(doses: DoseArrays) -> DoseArrays:
    """LoopKit ``resolvingDelivery``: fill missing delivered units (scheduled basal: programmed
    units; temp basal: deliverable increments; bolus: its units; suspend/resume: 0). A compiled
    loop (same arithmetic) runs when numba is installed."""
    if HAVE_NUMBA:
        return doses.with_(delivered_units=_resolved_compiled(
            doses.type, doses.start_s, doses.end_s, doses.value, doses.delivered_units, _BOLUS_CODE, _BASAL_CODE,
            int(DoseType.SUSPEND), int(DoseType.RESUME), DELIVERY_INCREMENTS_PER_UNIT))
    estimate = np.where(doses.type == DoseType.BASAL, programmed_units(doses), units_in_deliverable_increments(doses))
    estimate = np.where((doses.type == DoseType.SUSPEND) | (doses.type == DoseType.RESUME), 0.0, estimate)
    delivered = np.where(np.isnan(doses.delivered_units), estimate, doses.delivered_units)
    return doses.with_(delivered_units=delivered)


@jit
def _resolved_compiled(kind, start_s, end_s, value, delivered, bolus_code, basal_code, suspend_code, resume_code,
                       increments_per_unit):
    """Compiled :func:`_resolve_delivery`: the resolved ``delivered_units`` column."""
    out = delivered.copy()
    for i in range(kind.size):
        if np.isnan(delivered[i]):
            if kind[i] == suspend_code or kind[i] == resume_code:
                out[i] = 0.0
            elif kind[i] == basal_code:
                out[i] = value[i] * ((end_s[i] - start_s[i]) / 3600.0)
            else:
                out[i] = _deliverable_units(kind[i] == bolus_code, (end_s[i] - start_s[i]) / 3600.0, value[i],
                                            delivered[i], increments_per_unit)
    return out


# --------------------------------------------------------------------------- annotation

def annotate_with_basal(doses: DoseArrays, basal: DailySchedule, validate: bool = True) -> DoseArrays:
    """Split temp basals, suspends and resumes at basal schedule boundaries and fill ``scheduled_rate``.

    LoopKit ``annotated(with: BasalRateSchedule)``: only temp basal / suspend / resume doses without
    a scheduled rate are annotated; boluses, scheduled basals and already annotated doses pass
    unchanged. Each piece keeps its share of known delivered units (proportional to duration);
    pieces stay in input order. Schedule boundaries use the schedule's local offset, midnight wraps.
    ``validate=False`` skips :func:`validate_doses` for doses the caller has already validated.
    """
    if validate:
        validate_doses(doses)
    n = len(doses)
    if n == 0:
        return doses
    kind = doses.type
    target = (((kind == int(DoseType.TEMP_BASAL)) | (kind == int(DoseType.SUSPEND)) | (kind == int(DoseType.RESUME)))
              & np.isnan(doses.scheduled_rate))
    rows = np.flatnonzero(target)
    owner, seg_start, seg_end, rate = basal.split(doses.start_s[rows], doses.end_s[rows])
    pieces = _trimmed(doses.take(rows[owner]), seg_start, seg_end).with_(scheduled_rate=np.asarray(rate, dtype=float))
    others = np.flatnonzero(~target)
    merged = DoseArrays.concat([doses.take(others), pieces])
    order = np.argsort(np.concatenate((others, rows[owner])), kind="stable")
    return merged.take(order)


def overlay_basal_schedule(doses: DoseArrays, basal: DailySchedule, start_s: float, end_s: float,
                           inserting_basal_entries: bool = True) -> DoseArrays:
    """Fill the gaps between reconciled basal doses with scheduled basal (LoopKit ``overlayBasalSchedule``).

    For pumps that do not report scheduled basal delivery. Doses are taken in the given
    (chronological) order. Basal-like doses (basal, temp basal, suspend) that end after ``end_s`` are
    left out, since they may still be cancelled; boluses are kept. With ``inserting_basal_entries``,
    the time from ``start_s`` (then from the end of each kept basal-like dose) to the start of the
    next one is covered by ``BASAL`` doses at the scheduled rate, split at schedule boundaries; gaps
    shorter than 1 ulp are skipped. Each inserted run precedes the dose that closes its gap.
    """
    validate_doses(doses)
    resumes = np.flatnonzero(doses.type == DoseType.RESUME)
    if resumes.size:
        raise InvalidInputError([Problem("doses.type", int(i), "RESUME", "reconcile the doses first: no resume expected")
                                 for i in resumes])
    basal_like = doses.is_basal_like
    keep = ~basal_like | (doses.end_s <= end_s)
    kept = doses.take(keep)
    if not inserting_basal_entries or len(kept) == 0:
        return kept
    rows = np.flatnonzero(kept.is_basal_like)
    gap_start = np.concatenate(([float(start_s)], kept.end_s[rows][:-1]))
    owner, seg_start, seg_end, rate = basal.split(gap_start, kept.start_s[rows])
    real = seg_end - seg_start > np.finfo(float).eps
    owner, seg_start, seg_end, rate = owner[real], seg_start[real], seg_end[real], np.asarray(rate, dtype=float)[real]
    n = int(owner.size)
    inserted = DoseArrays(np.full(n, DoseType.BASAL, dtype=np.int8), seg_start, seg_end, rate, np.full(n, np.nan), rate)
    merged = DoseArrays.concat([inserted, kept])
    # Inserted pieces go right before the basal-like dose closing their gap (rank 2i), doses at 2i+1.
    rank = np.concatenate((2 * rows[owner], 2 * np.arange(len(kept)) + 1))
    return merged.take(np.argsort(rank, kind="stable"))


# --------------------------------------------------------------------------- timelines

def simulation_dates(start_s: np.ndarray, end_s: np.ndarray, duration_s: float,
                     from_s: float | None = None, to_s: float | None = None) -> np.ndarray:
    """Dates (s) of a Swift effect timeline: every 5 min from ``floor(from_s or first start)`` to
    ``ceil(to_s or last end + duration_s)`` inclusive; empty without samples
    (LoopKit ``LoopMath.simulationDateRangeForSamples``)."""
    start_s = np.asarray(start_s, dtype=float)
    if start_s.size == 0:
        return np.empty(0)
    first = float(np.min(start_s)) if from_s is None else float(from_s)
    if to_s is None:
        last = float(max(np.max(np.asarray(end_s, dtype=float)), np.max(start_s))) + float(duration_s)
    else:
        last = float(to_s)
    return grid(first, last)


def iob_dates(doses: DoseArrays, model, from_s: float | None = None, to_s: float | None = None) -> np.ndarray:
    """Dates of LoopKit's IOB timeline for ``doses`` (all doses, ``model.effect_duration_min`` after the last end)."""
    return simulation_dates(doses.start_s, doses.end_s, model.effect_duration_min * 60.0, from_s, to_s)


def effect_dates(doses: DoseArrays, model, from_s: float | None = None, to_s: float | None = None,
                 duration_s: float | None = None) -> np.ndarray:
    """Dates of LoopKit's insulin effect timeline: only doses with non-zero net units set the range;
    ``duration_s`` defaults to the model's effect duration (LoopAlgorithm uses 6 h 10 min always)."""
    active = net_basal_units(doses) != 0
    duration = model.effect_duration_min * 60.0 if duration_s is None else float(duration_s)
    return simulation_dates(doses.start_s[active], doses.end_s[active], duration, from_s, to_s)


def _slices(doses: DoseArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split active doses into LoopKit's 5-minute delivery slices.

    Returns ``(dose_index, dose_start_s, slice_start_s, slice_units)``: a momentary dose is one slice
    with all its net units; a continuous dose of duration ``d`` gives ``ceil(d / 5 min)`` slices at
    offsets ``0, 5, 10 ... min``, each with ``net x (min(offset + 5 min, d) - offset) / d`` units.
    A compiled loop (the same arithmetic, element by element) runs when numba is installed.
    """
    if HAVE_NUMBA:
        return _slices_compiled(doses.type, doses.start_s, doses.end_s, doses.value, doses.delivered_units,
                                doses.scheduled_rate, _BOLUS_CODE, _BASAL_CODE, MOMENTARY_FACTOR * GRID_S, GRID_S,
                                DELIVERY_INCREMENTS_PER_UNIT)
    net = net_basal_units(doses)
    active = np.flatnonzero(net != 0)
    duration = doses.duration_s[active]
    momentary = duration <= MOMENTARY_FACTOR * GRID_S
    count = np.where(momentary, 1, np.ceil(duration / GRID_S)).astype(np.int64)
    owner = np.repeat(np.arange(active.size), count)
    offset = GRID_S * (np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count))
    d = duration[owner]
    share = np.where(momentary[owner], 1.0,
                     (np.minimum(offset + GRID_S, d) - offset) / np.where(momentary[owner], 1.0, d))
    dose_start = doses.start_s[active][owner]
    return active[owner], dose_start, dose_start + offset, net[active][owner] * share


@jit
def _deliverable_units(bolus, hours, value, delivered, increments_per_unit):
    """One dose's :func:`units_in_deliverable_increments` (compiled kernels' helper, same arithmetic)."""
    if not np.isnan(delivered):
        return delivered
    programmed = value if bolus else value * hours
    x = programmed * increments_per_unit
    return programmed if bolus else np.sign(x) * np.floor(np.abs(x) + 0.5) / increments_per_unit


@jit
def _slices_compiled(kind, start_s, end_s, value, delivered, scheduled_rate, bolus_code, basal_code, momentary_s,
                     grid_s, increments_per_unit):
    """Compiled :func:`_slices`: :func:`net_basal_units` and the slicing per dose, same operations."""
    n = kind.size
    net = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    total = 0
    for i in range(n):
        duration = end_s[i] - start_s[i]
        hours = duration / 3600.0
        bolus = kind[i] == bolus_code
        units = _deliverable_units(bolus, hours, value[i], delivered[i], increments_per_unit)
        scheduled = 0.0 if np.isnan(scheduled_rate[i]) else scheduled_rate[i]
        relative = units - scheduled * hours if hours > 0 else 0.0
        net[i] = 0.0 if kind[i] == basal_code else (units if bolus else relative)
        if net[i] != 0:
            count[i] = 1 if duration <= momentary_s else np.int64(np.ceil(duration / grid_s))
            total += count[i]
    owner = np.empty(total, dtype=np.int64)
    dose_start = np.empty(total)
    slice_start = np.empty(total)
    units_out = np.empty(total)
    k = 0
    for i in range(n):
        duration = end_s[i] - start_s[i]
        momentary = duration <= momentary_s
        for j in range(count[i]):
            offset = grid_s * j
            share = 1.0 if momentary else (min(offset + grid_s, duration) - offset) / duration
            owner[k] = i
            dose_start[k] = start_s[i]
            slice_start[k] = start_s[i] + offset
            units_out[k] = net[i] * share
            k += 1
    return owner, dose_start, slice_start, units_out


def _window_sum(dates_s: np.ndarray, slice_start_s: np.ndarray, window_start_s: np.ndarray,
                weight: np.ndarray, model, absorbed: bool, window_end_s: float,
                tail: np.ndarray | None) -> np.ndarray:
    """``out[j] = sum_i weight_i c((dates_j - slice_start_i) / 60)`` over slices ``i`` with
    ``window_start_i <= dates_j < slice_start_i + window_end_s``, plus ``tail_i`` for every date at or
    after ``slice_start_i + window_end_s``; ``c`` is the model's remaining fraction, or the absorbed
    fraction ``1 - remaining`` when ``absorbed``. ``dates_s`` must be sorted. A compiled loop runs
    for the exponential and Walsh models when numba is installed, else a blocked numpy evaluation."""
    spec = _curve_spec(model)
    if HAVE_NUMBA and spec is not None and dates_s.size and slice_start_s.size:
        no_tail = np.zeros(slice_start_s.size) if tail is None else tail
        return _window_sum_compiled(dates_s, slice_start_s, window_start_s, weight, float(window_end_s), no_tail,
                                    absorbed, *spec, _curve_table(spec, window_end_s, absorbed))
    remaining = model.percent_effect_remaining
    curve = (lambda tau_min: 1.0 - remaining(tau_min)) if absorbed else remaining
    return _window_sum_numpy(dates_s, slice_start_s, window_start_s, weight, curve, window_end_s, tail)


def _window_sum_numpy(dates_s, slice_start_s, window_start_s, weight, curve: Callable[[np.ndarray], np.ndarray],
                      window_end_s: float, tail: np.ndarray | None) -> np.ndarray:
    """:func:`_window_sum` with any vectorised curve: slices x window blocks summed with ``np.bincount``."""
    n = dates_s.size
    out = np.zeros(n)
    if n == 0 or slice_start_s.size == 0:
        return out
    first = np.searchsorted(dates_s, window_start_s, side="left")
    stop = np.searchsorted(dates_s, slice_start_s + window_end_s, side="left")
    width = int(np.max(stop - first, initial=0))
    if width > 0:
        columns = np.arange(width)
        step = max(1, _MAX_BLOCK // width)
        for lo in range(0, slice_start_s.size, step):
            hi = lo + step
            index = first[lo:hi, None] + columns
            inside = index < stop[lo:hi, None]
            index = np.minimum(index, n - 1)
            tau_min = (dates_s[index] - slice_start_s[lo:hi, None]) / 60.0
            values = np.where(inside, weight[lo:hi, None] * curve(tau_min), 0.0)
            out += np.bincount(index.ravel(), values.ravel(), minlength=n)
    if tail is not None:
        out += np.cumsum(np.bincount(stop, tail, minlength=n + 1)[:n])
    return out


_EXPONENTIAL, _WALSH = 0, 1


def _curve_spec(model):
    """``(kind, parameters)`` of the closed-form curves the compiled loop knows, else None."""
    if isinstance(model, ExponentialInsulinModel):
        return _EXPONENTIAL, np.array([model.delay_min, model.action_duration_min, model._tau, model._a, model._s])
    if isinstance(model, WalshInsulinModel):
        nearest = model.nearest_modeled_duration_h
        return _WALSH, np.array([model.delay_min, model.action_duration_min, nearest / model.action_duration_h,
                                 *WALSH_COEFFICIENTS[nearest]])
    return None


@jit
def _remaining(tau_min, kind, p):
    """Remaining fraction of one slice ``tau_min`` minutes after its start, the same arithmetic as
    ``ExponentialInsulinModel`` / ``WalshInsulinModel.percent_effect_remaining``."""
    t = tau_min - p[0]
    if t <= 0.0:
        return 1.0
    if t >= p[1]:
        return 0.0
    if kind == 0:
        td, tau, a, s = p[1], p[2], p[3], p[4]
        return 1.0 - s * (1.0 - a) * ((t * t / (tau * td * (1.0 - a)) - t / tau - 1.0) * np.exp(-t / tau) + 1.0)
    m = t * p[2]
    return (((p[3] * m + p[4]) * m + p[5]) * m + p[6]) * m + p[7]


@jit
def _curve_term(tau_min, absorbed, kind, p):
    """A window sum's curve at ``tau_min``: the remaining fraction, or ``1 - remaining`` when ``absorbed``."""
    r = _remaining(tau_min, kind, p)
    return (1.0 - r) if absorbed else r


@jit
def _whole_minute_curve(window_end, absorbed, kind, p):
    """:func:`_curve_term` at every whole minute ``0 .. window_end / 60`` (the same calls, so the same bits)."""
    curve = np.empty(int(np.ceil(window_end / 60.0)) + 1)
    for m in range(curve.size):
        curve[m] = _curve_term(float(m), absorbed, kind, p)
    return curve


@functools.lru_cache(maxsize=64)
def _cached_curve(kind: int, p: bytes, window_end: float, absorbed: bool) -> np.ndarray:
    curve = _whole_minute_curve(window_end, absorbed, kind, np.frombuffer(p))
    curve.flags.writeable = False  # shared by every call with this model
    return curve


def _curve_table(spec, window_end_s: float, absorbed: bool) -> np.ndarray:
    """:func:`_whole_minute_curve` of a curve spec (:func:`_curve_spec`), computed once per model,
    window and curve (read-only)."""
    return _cached_curve(int(spec[0]), np.ascontiguousarray(spec[1], dtype=np.float64).tobytes(),
                         float(window_end_s), bool(absorbed))


@jit
def _grid_step(dates):
    """``(whole, step)``: whether there are dates and every one is a whole minute (``dates / 60``
    integral), and the whole number of minutes between consecutive dates when it is the same throughout
    (all whole, at least two dates), else 0."""
    for j in range(dates.size):
        if dates[j] / 60.0 != np.floor(dates[j] / 60.0):
            return False, 0
    if dates.size < 2:
        return dates.size > 0, 0
    step = dates[1] / 60.0 - dates[0] / 60.0
    for j in range(2, dates.size):
        if dates[j] / 60.0 - dates[j - 1] / 60.0 != step:
            return True, 0
    return True, int(step) if step >= 1.0 else 0


@jit
def _search(dates, x, scale):
    """``np.searchsorted(dates, x)`` (the first index whose date is not below ``x``; ``dates`` sorted).
    On a uniform grid (``scale`` = 1 / its step in s, else 0) the index is guessed from the grid, then
    walked to the exact one (the same index, without a binary search)."""
    n = dates.size
    if scale == 0.0 or x != x:
        return np.searchsorted(dates, x)
    guess = (x - dates[0]) * scale
    j = 0 if not guess > 0.0 else (n if guess >= n else int(np.ceil(guess)))
    while j > 0 and dates[j - 1] >= x:
        j -= 1
    while j < n and dates[j] < x:
        j += 1
    return j


@jit
def _residue_table(curve, step):
    """``curve`` laid out by residue for a grid of ``step`` > 1 minutes: ``table[(m % step) * width +
    m // step] = curve[m]`` with ``width = table.size // step``, so that ``curve[m], curve[m + step],
    ...`` are contiguous; empty for steps up to 1 (then ``curve`` itself is that row)."""
    if step <= 1:
        return np.zeros(0)
    width = (curve.size - 1) // step + 1
    table = np.zeros(step * width)
    for residue in range(step):
        for q in range(width):
            if residue + q * step < curve.size:
                table[residue * width + q] = curve[residue + q * step]
    return table


@jit
def _add_scaled(out, weight, values):
    """``out[k] += weight * values[k]`` for every ``k`` (a contiguous loop the compiler vectorises; the
    same operations element by element)."""
    for k in range(out.size):
        out[k] += weight * values[k]


@jit
def _window_sum_compiled(dates, slice_start, window_start, weight, window_end, tail, absorbed, kind, p, curve):
    """Compiled :func:`_window_sum`: one pass over each slice's window, then the tails' running sum.

    ``curve`` is :func:`_curve_table` of the model and window. When every date and a slice's start
    are whole minutes (every date and dose of a closed loop on the 5-min grid), the slice's terms read
    the curve from it: the offset ``(date - start) / 60`` is then the exact integer
    ``date / 60 - start / 60`` and the table holds the same function of the same argument, so the
    sums are the same bits, without an ``exp`` per term. On a uniform grid the terms of a slice read
    one contiguous row of :func:`_residue_table`. Other terms are evaluated one by one. Each
    ``out[j]`` adds the same terms in the same order (slice by slice, then the tails)."""
    n = dates.size
    out = np.zeros(n)
    after = np.zeros(n + 1)
    whole, step = _grid_step(dates)
    table = _residue_table(curve, step)
    width = table.size // max(step, 1)
    scale = 1.0 / (60.0 * step) if step > 0 else 0.0
    for i in range(slice_start.size):
        lead = _search(dates, slice_start[i], scale)
        first = lead if window_start[i] == slice_start[i] else _search(dates, window_start[i], scale)
        stop = _search(dates, slice_start[i] + window_end, scale)
        start_min = slice_start[i] / 60.0
        # terms before the slice's start (IOB counts from the delay before it) are evaluated one by one
        split = lead if whole and start_min == np.floor(start_min) else stop
        for j in range(first, min(split, stop)):
            out[j] += weight[i] * _curve_term((dates[j] - slice_start[i]) / 60.0, absorbed, kind, p)
        j = max(split, first)
        m = int(dates[j] / 60.0 - start_min) if j < stop else 0
        if j < stop and step == 1:  # a uniform grid: the curve index grows by the same whole minutes
            _add_scaled(out[j:stop], weight[i], curve[m:m + stop - j])
        elif j < stop and step > 1:
            row = (m % step) * width + m // step
            _add_scaled(out[j:stop], weight[i], table[row:row + stop - j])
        else:
            for j in range(j, stop):
                out[j] += weight[i] * curve[int(dates[j] / 60.0 - start_min)]
        after[stop] += tail[i]
    total = 0.0
    for j in range(n):
        total += after[j]
        out[j] += total
    return out


def _sorted_dates(dates_s, validate: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Dates as a sorted float array and the order that sorted them (None when already sorted);
    raises naming the first non-finite date unless ``validate`` is False."""
    dates = np.asarray(dates_s, dtype=float).ravel()
    if validate and not np.all(np.isfinite(dates)):
        bad = int(np.flatnonzero(~np.isfinite(dates))[0])
        raise InvalidInputError([Problem("dates_s", bad, float(dates[bad]), "must be a finite time")])
    if dates.size > 1 and not (_is_sorted(dates) if HAVE_NUMBA else not np.any(np.diff(dates) < 0)):
        order = np.argsort(dates, kind="stable")
        return dates[order], order
    return dates, None


@jit
def _is_sorted(dates):
    """True when no date is smaller than the one before it (``not any(diff(dates) < 0)``)."""
    for j in range(1, dates.size):
        if dates[j] - dates[j - 1] < 0:
            return False
    return True


def _dose_columns(doses: DoseArrays) -> tuple:
    """The columns and constants the compiled slicing (:func:`_slices_compiled`) reads."""
    return (doses.type, doses.start_s, doses.end_s, doses.value, doses.delivered_units, doses.scheduled_rate,
            _BOLUS_CODE, _BASAL_CODE, MOMENTARY_FACTOR * GRID_S, GRID_S, DELIVERY_INCREMENTS_PER_UNIT)


@jit
def _effect_compiled(columns, isf_at_start, dates, window_end, kind, p, curve):
    """Compiled :func:`glucose_effects` on sorted dates: slices, ``-ISF x units`` weights and the
    absorbed-fraction window sum with the full effect as tail (the same kernels in one call)."""
    owner, _, slice_start, units = _slices_compiled(*columns)
    weight = np.empty(units.size)
    for k in range(units.size):
        weight[k] = -isf_at_start[owner[k]] * units[k]
    return _window_sum_compiled(dates, slice_start, slice_start, weight, window_end, weight, True, kind, p, curve)


@jit
def _iob_compiled(columns, dates, delay_s, window_end, kind, p, curve):
    """Compiled :func:`insulin_on_board` on sorted dates: slices counted from ``delay`` before
    their start (never before the dose's start), remaining-fraction window sum, no tail."""
    _, dose_start, slice_start, units = _slices_compiled(*columns)
    window_start = np.empty(units.size)
    for k in range(units.size):
        window_start[k] = max(dose_start[k], slice_start[k] - delay_s)
    return _window_sum_compiled(dates, slice_start, window_start, units, window_end, np.zeros(units.size), False,
                                kind, p, curve)


@jit
def _active_compiled(kind, start_s, end_s, value, delivered, scheduled, now_s, duration_s, delay_s, isf_start_s,
                     isf_values, isf_offset_s, bolus_code, basal_code, momentary_s, grid_s, increments_per_unit,
                     trim_eps, curve_kind, p, absorbed_curve, remaining_curve):
    """Compiled :func:`active_effect_and_iob`: ``(dates, effect, iob)``, the same filter, trim, grid,
    ISF look-ups and compiled window sums as the separate calls."""
    since = now_s - duration_s
    keep = np.flatnonzero(end_s >= since)
    columns = (kind[keep], start_s[keep], end_s[keep], value[keep], delivered[keep], scheduled[keep])
    if keep.size == 0:
        return np.empty(0), np.empty(0), np.empty(0)
    new_start = np.maximum(columns[1], since)
    new_end = np.maximum(new_start, columns[2])
    trimmed_value, trimmed_delivered = _trimmed_compiled(*columns[:5], new_start, new_end, bolus_code, trim_eps,
                                                         increments_per_unit)
    isf = np.empty(keep.size)
    for k in range(keep.size):
        isf[k] = value_at(isf_start_s, isf_values, isf_offset_s, new_start[k])
    first = np.floor(now_s / grid_s) * grid_s
    last = np.ceil(max(np.max(new_end) + duration_s, now_s) / grid_s) * grid_s
    dates = np.empty(max(int(round((last - first) / grid_s)) + 1, 0))
    for k in range(dates.size):
        dates[k] = first + grid_s * float(k)
    constants = (bolus_code, basal_code, momentary_s, grid_s, increments_per_unit)
    effect = _effect_compiled((columns[0], new_start, new_end, trimmed_value, trimmed_delivered, columns[5],
                               *constants), isf, dates, duration_s, curve_kind, p, absorbed_curve)
    iob = _iob_compiled((*columns, *constants), np.array([now_s]), delay_s, duration_s, curve_kind, p,
                        remaining_curve)
    return dates, effect, iob


def active_effect_and_iob(doses: DoseArrays, model, sensitivity: DailySchedule, now_s: float):
    """The insulin effect from ``now_s`` on and the insulin on board at ``now_s``, in one compiled pass.

    The same numbers as :func:`glucose_effects` of the doses acting after one effect duration before
    ``now_s`` (``filter_date_range``), trimmed to start there, on the 5-min grid from ``now_s`` to the
    end of their action (the Loop core's prediction effect), and :func:`insulin_on_board` at ``now_s``
    of the same doses untrimmed. ``doses`` must be prepared (:func:`pyloopkit.dose_store.prepare_doses`,
    annotated, valid) and ``sensitivity`` a 1-D schedule.

    Returns
    -------
    (dates_s, effect_mg_dl, iob_u) arrays, all empty when no dose acts after that date; or None when
    the compiled pass does not apply (numba not in use, a model other than exponential / Walsh, a
    2-D schedule): the caller then takes the separate array paths.
    """
    spec = _curve_spec(model) if HAVE_NUMBA else None
    if spec is None or np.ndim(sensitivity.values) != 1:
        return None
    window_s = model.effect_duration_min * 60.0
    return _active_compiled(doses.type, doses.start_s, doses.end_s, doses.value, doses.delivered_units,
                            doses.scheduled_rate, float(now_s), window_s,
                            model.delay_min * 60.0, sensitivity.start_s, np.asarray(sensitivity.values, dtype=float),
                            float(sensitivity.offset_s), _BOLUS_CODE, _BASAL_CODE, MOMENTARY_FACTOR * GRID_S, GRID_S,
                            DELIVERY_INCREMENTS_PER_UNIT, _TRIM_EPS_S, *spec, _curve_table(spec, window_s, True),
                            _curve_table(spec, window_s, False))


def _unsort(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    if order is None:
        return values
    out = np.empty_like(values)
    out[order] = values
    return out


def insulin_on_board(doses: DoseArrays, model, dates_s, validate: bool = True) -> np.ndarray:
    """Insulin on board (U, net of scheduled basal) at each date.

    LoopKit / LoopAlgorithm ``insulinOnBoard(at:)`` summed over doses: a momentary dose counts
    ``net x remaining(t)`` from its start on; a continuous dose sums its 5-minute slices, a slice
    counting from ``model.delay`` before its own start (Swift's loop bound) but never before the
    dose starts. Doses must be annotated (see :func:`annotate_with_basal`) for temp basals to be
    counted net of the schedule. ``validate=False`` skips the checks of the doses and dates (doses
    from :func:`pyloopkit.dose_store.prepare_doses`, the core's own dates: already valid).
    """
    if validate:
        validate_doses(doses)
    dates, order = _sorted_dates(dates_s, validate)
    delay_s = model.delay_min * 60.0
    spec = _curve_spec(model) if HAVE_NUMBA and dates.size else None
    if spec is not None:
        window_s = model.effect_duration_min * 60.0
        return _unsort(_iob_compiled(_dose_columns(doses), dates, delay_s, window_s, *spec,
                                     _curve_table(spec, window_s, False)),
                       order)
    _, dose_start, slice_start, units = _slices(doses)
    window_start = np.maximum(dose_start, slice_start - delay_s)
    iob = _window_sum(dates, slice_start, window_start, units, model, False, model.effect_duration_min * 60.0,
                      tail=None)
    return _unsort(iob, order)


def glucose_effects(doses: DoseArrays, model, sensitivity: DailySchedule, dates_s, validate: bool = True) -> np.ndarray:
    """Cumulative insulin effect on glucose (mg/dL, negative for insulin given) at each date.

    LoopKit / LoopAlgorithm ``glucoseEffects``: each dose acts with the insulin sensitivity in force
    at its start, ``-ISF x net x (1 - remaining(t))`` for a momentary dose and the sum over 5-minute
    slices for a continuous one. After its effect duration a dose contributes exactly ``-ISF x net``.
    ``validate=False`` skips the checks of the doses, dates and ISF (all already validated).
    """
    if validate:
        validate_doses(doses)
    dates, order = _sorted_dates(dates_s, validate)
    isf_at_start = np.asarray(sensitivity.at(doses.start_s), dtype=float)
    if validate:
        bad = np.flatnonzero(~np.isfinite(isf_at_start) | (isf_at_start <= 0))
        raise_if([Problem("sensitivity", int(i), float(isf_at_start[i]),
                          "insulin sensitivity at this dose's start must be finite and > 0") for i in bad])
    spec = _curve_spec(model) if HAVE_NUMBA and dates.size else None
    if spec is not None:
        window_s = model.effect_duration_min * 60.0
        return _unsort(_effect_compiled(_dose_columns(doses), np.ascontiguousarray(isf_at_start).reshape(-1), dates,
                                        window_s, *spec, _curve_table(spec, window_s, True)), order)
    dose_index, _, slice_start, units = _slices(doses)
    weight = -isf_at_start[dose_index] * units

    effect = _window_sum(dates, slice_start, slice_start, weight, model, True, model.effect_duration_min * 60.0,
                         tail=weight)
    return _unsort(effect, order)


def mid_absorption_glucose_effects(doses: DoseArrays, model, sensitivity: DailySchedule, dates_s,
                                   validate: bool = True) -> np.ndarray:
    """Cumulative insulin effect (mg/dL) from the first date on, insulin absorbed at time t acting
    with the ISF in force at t (LoopAlgorithm ``glucoseEffectsMidAbsorptionISF``).

    With ``E1`` the effect for an ISF of 1 mg/dL/U (:func:`glucose_effects`), the effect at ``t``
    is ``sum_m ISF_m (E1(min(t, end_m)) - E1(start_m))`` over the sensitivity items ``m`` that
    split ``[first date, t]`` (Swift sums the same terms step by step over the 5-min grid); it is
    0 at the first date. ``sensitivity`` is a :class:`~pyloopkit.schedule.DailySchedule` or any
    object with the same ``split`` (e.g. an absolute timeline) covering the dates. ``validate=False``
    skips :func:`validate_doses` (doses already validated).
    """
    dates, order = _sorted_dates(dates_s)
    if dates.size == 0:
        return np.zeros(0)
    _, seg_start, seg_end, isf = sensitivity.split(dates[:1], dates[-1:])
    isf = np.asarray(isf, dtype=float)
    bad = np.flatnonzero(~np.isfinite(isf) | (isf <= 0))
    if bad.size:
        raise InvalidInputError([Problem("sensitivity", None, float(isf[i]), "insulin sensitivity between "
                                         "the dates must be finite and > 0") for i in bad])
    n = seg_start.size
    unit = glucose_effects(doses, model, DailySchedule.constant(1.0), np.concatenate((seg_start, seg_end, dates)),
                           validate=validate)
    at_start, at_end, at_date = unit[:n], unit[n:2 * n], unit[2 * n:]
    accrued = np.concatenate(([0.0], np.cumsum(isf * (at_end - at_start))))
    m = np.clip(np.searchsorted(seg_start, dates, side="right") - 1, 0, n - 1)
    return _unsort(accrued[m] + isf[m] * (at_date - at_start[m]), order)


# --------------------------------------------------------------------------- reservoir

def doses_from_reservoir(dates_s, volumes_u) -> DoseArrays:
    """Temp basal doses from a reservoir volume history (LoopKit ``doseEntries`` of reservoir values).

    Each pair of consecutive readings (in date order) whose volume dropped by ``0 <= drop <= 6.5 U/min
    x minutes`` over a positive interval becomes a temp basal delivering ``drop`` units (stored as
    ``delivered_units``, with the average rate as ``value``); rises (rewind/prime) and implausible
    drops produce no dose.
    """
    dates = np.asarray(dates_s, dtype=float)
    volumes = np.asarray(volumes_u, dtype=float)
    problems = [Problem("dates_s", int(i), float(dates[i]), "must be a finite time")
                for i in np.flatnonzero(~np.isfinite(dates))]
    problems += [Problem("volumes_u", int(i), float(volumes[i]), "must be a finite volume")
                 for i in np.flatnonzero(~np.isfinite(volumes))]
    if dates.shape != volumes.shape:
        problems.append(Problem("volumes_u", None, volumes.shape, f"must match dates_s shape {dates.shape}"))
    if problems:
        raise InvalidInputError(problems)
    order = np.argsort(dates, kind="stable")
    dates, volumes = dates[order], volumes[order]
    drop = volumes[:-1] - volumes[1:]
    duration = np.diff(dates)
    keep = (duration > 0) & (drop >= 0) & (drop <= MAXIMUM_RESERVOIR_DROP_PER_MINUTE * duration / 60.0)
    start, end, units = dates[:-1][keep], dates[1:][keep], drop[keep]
    n = int(units.size)
    return DoseArrays(np.full(n, DoseType.TEMP_BASAL, dtype=np.int8), start, end,
                      units / ((end - start) / 3600.0), units, np.full(n, np.nan))


def is_continuous(dates_s, volumes_u, start_s: float | None, end_s: float, maximum_gap_s: float) -> bool:
    """Whether a reservoir history is reliable over ``[start_s, end_s]`` (LoopKit ``isContinuous``).

    False when there is no reading, when the first reading is after ``start_s``, or when a reading in
    the interval is 0 or below, rises more than 1 U above the previous reading (rewind/prime), or
    follows the previous reading by more than ``maximum_gap_s``. ``start_s=None`` means the first
    reading. Readings are taken in the given (chronological) order, as in Swift.
    """
    dates = np.asarray(dates_s, dtype=float)
    volumes = np.asarray(volumes_u, dtype=float)
    if dates.size == 0:
        return False
    start = dates[0] if start_s is None else float(start_s)
    if dates[0] > start:
        return False
    previous_dates = np.concatenate((dates[:1], dates[:-1]))
    previous_volumes = np.concatenate((volumes[:1], volumes[:-1]))
    in_range = (dates >= start) & (dates <= end_s)
    bad = (volumes <= 0) | (volumes > previous_volumes + 1.0) | (dates - previous_dates > maximum_gap_s)
    return not bool(np.any(in_range & bad))
