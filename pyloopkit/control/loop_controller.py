"""Loop as a closed-loop controller: the Loop algorithm run for every member at every decision.

:class:`LoopController` drives :class:`~pyloopkit.simulation.simulator.Simulator` the way
the Loop app drives a pump. At each decision (every :meth:`Simulator.step`, 5 min by
default) it adds the new CGM reading to each member's history, enters announced meals
as carb entries, runs the Loop algorithm on the member's history, and enacts the
recommendation.

Two engines give the same recommendations (``tests/simulation/test_loop_fast_path.py``
checks it at every step of random closed loops):

- ``engine="fast"`` (default) decides and enacts for the members in one compiled call per step
  (:mod:`pyloopkit.control.loop_batch`: each member's whole decision compiled by
  :mod:`pyloopkit.core_kernel` on its arrays, no datetime per sample; the members split between
  ``threads`` threads; a meal announced now included: the meal bolus and Loop's run after it). A
  member's input is validated at its first decision (once, by ``update()``'s validation); inputs the
  compiled decision does not cover take the per-member path: its :class:`~pyloopkit.loop_input.LoopInput` built directly from the
  arrays (seconds since the reference date, dose arrays, schedules and settings parsed once per
  member) and the array core :func:`pyloopkit.loop_data_manager.core`, as ``update()`` runs after
  parsing (``tests/control/test_loop_batch.py``: both paths enact the same);
- ``engine="update"`` builds the PyLoopKit input dictionary (:meth:`LoopController.input_dict`)
  and calls :func:`pyloopkit.update` (validation, parsing, core, output dictionary): the
  slow reference path.

The recommendation is enacted as follows:

- temp basals follow Loop's pump semantics: a recommended ``(rate, 30 min)`` starts a
  temp basal programmed for 30 min, truncating the running one at ``now``; ``(0, 0)``
  cancels the running temp basal (back to the scheduled rate); ``None`` leaves the
  pump as it is; a temp basal whose programmed end has passed has expired;
- when a meal is announced, a bolus (Loop's ``recommended_bolus``, or ``grams / CR``)
  is given now, and ``update()`` runs again with the bolus in the history before the
  temp basal is chosen, as Loop re-runs its loop after a bolus;
- with ``dosing_strategy="automatic_bolus"`` (Loop 3's automatic bolus) the
  ``recommended_autobolus`` is given at every decision.

Loop sees only what the app would see: the CGM readings (dated at the sensor's sample
times), the doses it commanded and the announced carbs. The history passed to
``update()`` is bounded to the last 24 h (glucose) and 24 h plus one insulin action
(doses, carbs), which is all Loop uses, so long runs keep a constant cost per step.

Therapy settings come from the patient (simglucose ``Quest.csv``): carb ratio ``CR``
(g/U), insulin sensitivity ``CF`` (mg/dL/U), and the steady basal ``u2ss * BW / 6000``
U/min (x 60 U/h) rounded to the pump's increment, as a pump would be programmed, all flat
over the day; or, per member, daily schedules (``schedules=``, :meth:`LoopController.set_schedules`,
e.g. :meth:`pyloopkit.tune.EstimatedSettings.to_settings`), which Loop and the pump follow by the
time of day of the simulated clock (``start`` is minute 0).
"""
from __future__ import annotations

import datetime as _dt
import math
import multiprocessing
import os
import warnings

import numpy as np

from pyloopkit.control import loop_batch
from pyloopkit.control.history import RowHistories
from pyloopkit.date import REFERENCE_DATE, parse_time_of_day
from pyloopkit.dose import DoseArrays, DoseType
from pyloopkit.errors import InvalidInputError, LoopWarning, Problem
from pyloopkit.input_validation import MAX_BASAL_CARB_RATIO_NUMERATOR, validate_input
from pyloopkit.insulin_models import PRESETS
from pyloopkit import core_kernel
from pyloopkit.loop_data_manager import (HISTORY_S, closed_loop_recommendations, core, fixed_application_factor,
                                         model_for, update)
from pyloopkit.loop_input import LoopInput, LoopSettings, parse_schedules
from pyloopkit.schedule import DailySchedule
from pyloopkit.simulation.patients import PatientParams

BOLUS_DELIVERY_MIN = 1.0
"""The simulator delivers a bolus within the first minute of a step (minutes)."""

DEFAULT_MAX_BASAL_SCALE = 4.0
"""Default maximum basal rate: this multiple of the highest scheduled basal rate (Loop recommends
2.1-6.4), at most Loop's absolute limit ``70 / lowest CR`` U/h."""

DEFAULT_MAX_BOLUS_MEAL_G = 100.0
"""Default maximum bolus: the bolus for a meal of this size (g) at the lowest carb ratio, within 10-30 U."""

DEFAULT_MAX_BOLUS_LIMITS_U = (10.0, 30.0)

MEAL_BOLUS_MODES = ("recommended", "carb_ratio", None)
DOSING_STRATEGIES = ("temp_basal", "automatic_bolus")
ENGINES = ("fast", "update")

_TYPE_NAMES = {loop_batch.TEMP_BASAL: "TempBasal", loop_batch.BOLUS: "Bolus"}

GLUCOSE_HISTORY_MIN = HISTORY_S / 60.0 + 10.0
"""Glucose kept for ``update()``: Loop's 24 h of counteraction history plus the reading before it."""

DEFAULT_START = _dt.datetime(2026, 1, 1)

SCHEDULE_KEYS = {
    "sensitivity": ("sensitivity_ratio_start_times", "sensitivity_ratio_values", "sensitivity_ratio_value_units",
                    "mg/dL/U"),
    "carb_ratio": ("carb_ratio_start_times", "carb_ratio_values", "carb_ratio_value_units", "g/U"),
    "basal": ("basal_rate_start_times", "basal_rate_values", "basal_rate_units", "U/hr"),
}
"""Per schedule: the input-dictionary keys of its start times, values and unit, and the unit accepted."""

_DERIVED_KEYS = {"sensitivity_ratio_end_times", "basal_rate_minutes"}
"""Keys :meth:`LoopController.set_schedules` accepts and ignores: they follow from the start times."""


def _per_member(name: str, value, default: np.ndarray, problems: list[Problem]) -> np.ndarray:
    """A scalar or (n,) setting as an (n,) float array; ``None`` takes ``default``."""
    if value is None:
        return default
    array = np.broadcast_to(np.asarray(value, dtype=np.float64), default.shape).copy()
    for i in np.flatnonzero(~(np.isfinite(array) & (array > 0))):
        problems.append(Problem(name, int(i), float(array[i]), "must be finite and > 0"))
    return array


def _schedule(member: dict, i: int, name: str, flat: float, problems: list[Problem]) -> DailySchedule:
    """Member ``i``'s ``name`` schedule from its schedule keys (a flat ``flat`` when absent)."""
    k_start, k_values, k_unit, unit = SCHEDULE_KEYS[name]
    if member.get(k_unit, unit) != unit:
        problems.append(Problem(f"schedules[{i}].{k_unit}", None, member[k_unit], f"must be {unit!r}"))
    if k_start not in member and k_values not in member:
        return DailySchedule.constant(flat)
    field = f"schedules[{i}].{k_start}"
    try:
        start_s = np.array([parse_time_of_day(t) for t in member.get(k_start, [])], dtype=np.float64)
    except (TypeError, ValueError) as error:
        problems.append(Problem(field, None, member.get(k_start), str(error)))
        return DailySchedule.constant(flat)
    values = np.asarray(member.get(k_values, []), dtype=np.float64).ravel()
    count = len(problems)
    if start_s.size == 0 or start_s.size != values.size:
        problems.append(Problem(f"schedules[{i}].{k_values}", None, values.size,
                                f"must have one value per start time ({start_s.size}), at least one"))
    elif (start_s[0] != 0.0 or np.any(np.diff(start_s) <= 0) or start_s[-1] >= 86400.0
          or np.any(start_s != np.floor(start_s))):
        problems.append(Problem(field, None, list(start_s), "must be whole seconds, start at midnight and "
                                                            "increase within the day"))
    problems.extend(Problem(f"schedules[{i}].{k_values}", int(j), float(values[j]), "must be finite and > 0")
                    for j in np.flatnonzero(~(np.isfinite(values) & (values > 0))))
    return DailySchedule(start_s, values) if len(problems) == count else DailySchedule.constant(flat)


def _schedule_keys(isf: DailySchedule, cr: DailySchedule, basal: DailySchedule) -> dict:
    """The input-dictionary keys of three schedules (start times as ``datetime.time``)."""
    def times(schedule):
        return [_dt.time(int(t // 3600), int(t % 3600 // 60), int(t % 60)) for t in schedule.start_s]
    isf_times = times(isf)
    return {
        "sensitivity_ratio_start_times": isf_times, "sensitivity_ratio_end_times": isf_times[1:] + isf_times[:1],
        "sensitivity_ratio_values": [float(v) for v in isf.values],
        "carb_ratio_start_times": times(cr), "carb_ratio_values": [float(v) for v in cr.values],
        "basal_rate_start_times": times(basal), "basal_rate_values": [float(v) for v in basal.values],
        "basal_rate_minutes": [float(m) for m in np.diff(np.append(basal.start_s, 86400.0)) / 60.0],
    }


def _default_threads() -> int:
    """One thread per CPU this process may run on, at most ``OMP_NUM_THREADS`` when that is set (Ray
    sets it to 1 in its workers); 1 in a worker process of a multiprocessing pool (the population
    protocol's processes backend already runs one worker per CPU)."""
    if multiprocessing.parent_process() is not None:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    return max(1, min(cpus, int(limit))) if limit.isdigit() else cpus


def _floor_to(value: np.ndarray, increment: float) -> np.ndarray:
    """Round down to a multiple of ``increment`` (no rounding when it is 0); 1e-9 guards float error."""
    return value if increment == 0 else np.floor(value / increment + 1e-9) * increment


class LoopController:
    """Loop (``pyloopkit.update()``) driving every member of a simulated batch.

    Parameters
    ----------
    patients : PatientParams
        The batch (``Simulator.patients``), one row per member: ``CR`` (g/U) is the carb
        ratio, ``CF`` (mg/dL/U) the insulin sensitivity, ``basal_u_per_min * 60`` the
        scheduled basal rate (U/h), all flat over the day, unless ``schedules`` says otherwise.
    target_range_mg_dl : (float, float)
        Correction range (mg/dL), Loop's recommended 100-110 by default.
    suspend_threshold_mg_dl : float
        Glucose safety limit (mg/dL).
    max_basal_u_per_h : float, array (n,) or None
        Maximum basal rate (U/h); ``None``: 4 x the highest scheduled rate, at most Loop's
        absolute limit 70 / lowest CR, rounded down to the rate increment.
    max_bolus_u : float, array (n,) or None
        Maximum bolus (U); ``None``: the bolus for 100 g (``100 / lowest CR``) rounded up to
        1 U, within 10-30 U.
    insulin_model : str
        Exponential insulin model preset of :data:`pyloopkit.insulin_models.PRESETS`
        (``"adult"``, ``"child"``, ``"fiasp"``, ``"lyumjev"``, ``"afrezza"``).
    retrospective_correction, dynamic_carb_absorption : bool
        Loop's retrospective correction and dynamic carb absorption.
    meal_bolus : "recommended", "carb_ratio" or None
        At an announced meal: Loop's ``recommended_bolus`` (carbs, correction, pending
        insulin, safety), the plain ``grams / CR`` (U, limited to the maximum bolus,
        rounded down to the increment), or no bolus (the carbs are still entered).
    carb_absorption_time_min : float
        Absorption time of the carb entries (minutes); Loop's medium, 180, by default.
    dosing_strategy : "temp_basal" or "automatic_bolus"
        Loop's dosing strategy (``automatic_bolus``: the automatic bolus at every decision).
    rate_increment_u_per_h, bolus_increment_u : float
        Pump increments (U/h, U) Loop rounds to (Insulet: 0.05, 0.05); 0 for none.
    cgm_sample_time_min : int or None
        Sensor sample time (min): a reading is dated at the last multiple of it, and a
        reading already seen is not added again; ``None``: dated at the decision time.
    start : datetime
        Date of simulated minute 0 (naive, local time: the schedules follow its time of day).
    settings : dict or None
        Further ``settings_dictionary`` keys for ``update()`` (see ``docs/update.md``), e.g.
        ``max_active_insulin``; keys set by the keywords above are refused.
    engine : "fast" or "update"
        ``"fast"``: the compiled decision (or the array core) on arrays built directly; ``"update"``:
        ``update()`` on the PyLoopKit dictionary (the reference path, about 30x slower:
        ``benchmarks/bench_closed_loop.py``). Same recommendations.
    schedules : sequence of dict or None
        Per member, daily ISF, CR and basal schedules instead of the flat patient values
        (:meth:`set_schedules`).
    threads : int or None
        The fast engine's compiled step decides the members on this many threads at once (None: one
        per CPU this process may use, at most ``OMP_NUM_THREADS`` when set; 1 in a multiprocessing
        worker process).

    Attributes
    ----------
    sensitivity_mg_dl_per_u, carb_ratio_g_per_u, scheduled_basal_u_per_h : ndarray (n,)
        The patient's flat settings (used where a member has no schedule; see :meth:`schedule_at`).
    max_basal_u_per_h, max_bolus_u : ndarray (n,)
        The limits in use.
    warnings : list of set of str
        Distinct validation warnings (guardrails, data quality) per member, collected here
        instead of being issued at every decision (the fast engine validates once per member).
    """

    def __init__(self, patients: PatientParams, *, target_range_mg_dl: tuple[float, float] = (100.0, 110.0),
                 suspend_threshold_mg_dl: float = 75.0, max_basal_u_per_h=None, max_bolus_u=None,
                 insulin_model: str = "adult", retrospective_correction: bool = True,
                 dynamic_carb_absorption: bool = True, meal_bolus: str | None = "recommended",
                 carb_absorption_time_min: float = 180.0, dosing_strategy: str = "temp_basal",
                 rate_increment_u_per_h: float = 0.05, bolus_increment_u: float = 0.05,
                 cgm_sample_time_min: int | None = None, start: _dt.datetime = DEFAULT_START,
                 settings: dict | None = None, engine: str = "fast", schedules=None, threads: int | None = None):
        problems = []
        if engine not in ENGINES:
            problems.append(Problem("engine", None, engine, f"must be one of {ENGINES}"))
        if insulin_model not in PRESETS:
            problems.append(Problem("insulin_model", None, insulin_model, f"must be one of {sorted(PRESETS)}"))
        if meal_bolus not in MEAL_BOLUS_MODES:
            problems.append(Problem("meal_bolus", None, meal_bolus, f"must be one of {MEAL_BOLUS_MODES}"))
        if dosing_strategy not in DOSING_STRATEGIES:
            problems.append(Problem("dosing_strategy", None, dosing_strategy, f"must be one of {DOSING_STRATEGIES}"))
        low, high = (float(v) for v in target_range_mg_dl)
        if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
            problems.append(Problem("target_range_mg_dl", None, target_range_mg_dl, "must be finite, 0 < min <= max"))
        for name, value in (("rate_increment_u_per_h", rate_increment_u_per_h),
                            ("bolus_increment_u", bolus_increment_u)):
            if not (np.isfinite(value) and value >= 0):
                problems.append(Problem(name, None, value, "must be finite and >= 0"))
        if not (np.isfinite(carb_absorption_time_min) and carb_absorption_time_min > 0):
            problems.append(Problem("carb_absorption_time_min", None, carb_absorption_time_min,
                                    "must be finite and > 0"))
        if cgm_sample_time_min is not None and not (float(cgm_sample_time_min).is_integer()
                                                    and cgm_sample_time_min >= 1):
            problems.append(Problem("cgm_sample_time_min", None, cgm_sample_time_min, "must be an integer >= 1"))
        if start.tzinfo is not None:
            problems.append(Problem("start", None, start, "must be a naive datetime"))
        if threads is not None and not (isinstance(threads, (int, np.integer)) and not isinstance(threads, bool)
                                        and threads >= 1):
            problems.append(Problem("threads", None, threads, "must be an integer >= 1"))
        if problems:
            raise InvalidInputError(problems)
        self.n = patients.n
        self.carb_ratio_g_per_u = np.asarray(patients.CR, dtype=np.float64)
        self.sensitivity_mg_dl_per_u = np.asarray(patients.CF, dtype=np.float64)
        steady = patients.basal_u_per_min * 60.0
        self.scheduled_basal_u_per_h = (steady if rate_increment_u_per_h == 0
                                        else np.round(steady / rate_increment_u_per_h) * rate_increment_u_per_h)
        self.meal_bolus = meal_bolus
        self.dosing_strategy = dosing_strategy
        self.rate_increment_u_per_h = float(rate_increment_u_per_h)
        self.bolus_increment_u = float(bolus_increment_u)
        self.carb_absorption_time_min = float(carb_absorption_time_min)
        self.cgm_sample_time_min = None if cgm_sample_time_min is None else int(cgm_sample_time_min)
        self.start = start
        self.engine = engine
        self.threads = _default_threads() if threads is None else int(threads)
        self._start_us = (start - REFERENCE_DATE) // _dt.timedelta(microseconds=1)
        model = PRESETS[insulin_model]
        self.dose_history_min = GLUCOSE_HISTORY_MIN + model.effect_duration_min
        self._common = {
            "model": [model.action_duration_min, model.peak_activity_min],
            "insulin_delay": model.delay_min,
            "suspend_threshold": float(suspend_threshold_mg_dl),
            "dynamic_carb_absorption_enabled": bool(dynamic_carb_absorption),
            "retrospective_correction_enabled": bool(retrospective_correction),
            "rate_rounder": float(rate_increment_u_per_h) or None,
            "bolus_rounder": float(bolus_increment_u) or None,
            "dosing_strategy": dosing_strategy,
        }
        owned = sorted((set(self._common) | {"max_basal_rate", "max_bolus"}) & set(settings or {}))
        if owned:
            raise InvalidInputError([Problem("settings", None, key, "is set by a constructor keyword")
                                     for key in owned])
        self._settings = dict(settings or {})
        self._target = (low, high)
        self._max_arguments = (max_basal_u_per_h, max_bolus_u)
        self.set_schedules(schedules)
        self.reset()

    def set_schedules(self, schedules=None) -> None:
        """Use these therapy schedules from the next decision on (a Loop user changing settings:
        the histories are kept; the new settings are validated at the member's next decision).

        Parameters
        ----------
        schedules : sequence of dict or None, or None
            One entry per member: ``None`` (flat patient settings) or a dict with any of the
            input-dictionary schedule keys ``sensitivity_ratio_start_times`` / ``_values``
            (mg/dL/U), ``carb_ratio_start_times`` / ``_values`` (g/U), ``basal_rate_start_times`` /
            ``_values`` (U/h): start times (``datetime.time``, ``"HH:MM[:SS]"`` or seconds after
            midnight, whole seconds, the first at midnight, increasing) and one value each, as
            :meth:`pyloopkit.tune.EstimatedSettings.to_settings` gives them (its unit keys must
            name these units; ``sensitivity_ratio_end_times`` and ``basal_rate_minutes`` are
            ignored). A schedule left out is the patient's flat value. Basal rates are used as
            given (the pump rounds what it delivers). ``None``: flat patient settings for all.

        The maximum basal rate and bolus given to the constructor stay; their defaults follow the
        schedules: ``4 x`` the highest scheduled basal rate, at most ``70 /`` the lowest carb ratio,
        rounded down to the rate increment; the bolus for 100 g at the lowest carb ratio rounded up
        to 1 U, within 10-30 U.

        Raises
        ------
        InvalidInputError
            A wrong number of entries, an unknown key, a unit other than the above, start times
            not starting at midnight or not increasing, a value not finite and > 0, or a maximum
            not finite and > 0.
        """
        problems = []
        members = [None] * self.n if schedules is None else list(schedules)
        if len(members) != self.n:
            raise InvalidInputError([Problem("schedules", None, len(members), f"must have one entry per member "
                                                                              f"({self.n})")])
        known = {k for keys in SCHEDULE_KEYS.values() for k in keys[:3]} | _DERIVED_KEYS
        parsed = []
        for i, member in enumerate(members):
            member = {} if member is None else member
            problems.extend(Problem(f"schedules[{i}]", None, key, "is not a schedule key")
                            for key in sorted(set(member) - known, key=str))
            flat = (self.sensitivity_mg_dl_per_u[i], self.carb_ratio_g_per_u[i], self.scheduled_basal_u_per_h[i])
            parsed.append([_schedule(member, i, name, value, problems) for name, value in zip(SCHEDULE_KEYS, flat)])
        if problems:
            raise InvalidInputError(problems)
        lowest_cr = np.array([cr.values.min() for _, cr, _ in parsed])
        highest_basal = np.array([basal.values.max() for *_, basal in parsed])
        max_basal, max_bolus = self._max_arguments
        self.max_basal_u_per_h = _per_member(
            "max_basal_u_per_h", max_basal,
            _floor_to(np.minimum(DEFAULT_MAX_BASAL_SCALE * highest_basal, MAX_BASAL_CARB_RATIO_NUMERATOR / lowest_cr),
                      self.rate_increment_u_per_h), problems)
        self.max_bolus_u = _per_member("max_bolus_u", max_bolus, np.clip(
            np.ceil(DEFAULT_MAX_BOLUS_MEAL_G / lowest_cr), *DEFAULT_MAX_BOLUS_LIMITS_U), problems)
        if problems:
            raise InvalidInputError(problems)
        midnight = _dt.time(0)
        low, high = self._target
        self._schedules = parsed
        self._schedule_tables = [loop_batch.schedule_table([member[p] for member in parsed])
                                 for p in range(len(SCHEDULE_KEYS))]
        self._static = [{
            **_schedule_keys(*parsed[i]),
            "target_range_start_times": [midnight], "target_range_end_times": [midnight],
            "target_range_minimum_values": [low], "target_range_maximum_values": [high],
            "settings_dictionary": {**self._common, "max_basal_rate": float(self.max_basal_u_per_h[i]),
                                    "max_bolus": float(self.max_bolus_u[i]), **self._settings},
        } for i in range(self.n)]
        self._parsed = [(LoopSettings.from_dict(static["settings_dictionary"]), *parse_schedules(static, 0.0))
                        for static in self._static]
        self._model = model_for(self._parsed[0][0]) if self.n else None  # one insulin model for the batch
        self._plans = [core_kernel.plan(settings, self._model, isf, cr, basal, target, HISTORY_S)
                       for settings, isf, cr, basal, target in self._parsed]
        self._factors = np.array([fixed_application_factor(settings) for settings, *_ in self._parsed], dtype=float)
        self._batch = self._batch_constants()
        self._validated = np.zeros(self.n, dtype=bool)

    def schedule_at(self, name: str, now_min: float) -> np.ndarray:
        """Each member's ``name`` (``"sensitivity"`` mg/dL/U, ``"carb_ratio"`` g/U or ``"basal"`` U/h)
        in force at simulated minute ``now_min``, shape (n,)."""
        now_s = float(self._seconds(np.array([now_min]))[0])
        return loop_batch.scheduled_values(now_s, *self._schedule_tables[list(SCHEDULE_KEYS).index(name)])

    @classmethod
    def for_simulator(cls, simulator, **settings) -> "LoopController":
        """A controller for ``simulator``'s batch, with its sensor's sample time, its pump's
        increments and its start hour; ``settings`` as in the constructor."""
        pump = simulator.pump
        defaults = {
            "cgm_sample_time_min": 1 if simulator.sensor is None else simulator.sensor.sample_time_min,
            "rate_increment_u_per_h": pump.basal_increment_u_per_h,
            "bolus_increment_u": pump.bolus_increment_u,
            "start": DEFAULT_START + _dt.timedelta(hours=simulator.start_hour),
        }
        return cls(simulator.patients, **{**defaults, **settings})

    def reset(self) -> None:
        """Forget every history (call with :meth:`Simulator.reset`)."""
        self.time_min = -math.inf
        self._glucose = RowHistories(1, 1 + self.n)  # minute, then the (n,) readings: shared by the batch
        self._doses = RowHistories(self.n, 4)  # type code, start min, end min, value
        self._carbs = RowHistories(self.n, 2)  # minute, g
        self._temp = np.full(self.n, -1, dtype=np.int64)  # stable index of the running temp basal's row, or -1
        self._validated = np.zeros(self.n, dtype=bool)
        self.warnings = [set() for _ in range(self.n)]

    # --- history --------------------------------------------------------------------------------
    def history_lengths(self) -> dict:
        """The longest history any member holds: ``glucose`` readings, ``doses``, ``carbs`` entries
        (bounded to what Loop reads, so constant over a long run)."""
        return {"glucose": int(self._glucose.lengths()[0]), "doses": int(self._doses.lengths().max(initial=0)),
                "carbs": int(self._carbs.lengths().max(initial=0))}

    def _date(self, minute: float) -> _dt.datetime:
        return self.start + _dt.timedelta(minutes=minute)

    def _seconds(self, minutes) -> np.ndarray:
        """Seconds since the reference date of simulated minutes, exactly as ``update()`` converts
        ``_date(minute)`` (whole microseconds / 1e6)."""
        micros = np.rint(np.asarray(minutes, dtype=np.float64) * loop_batch.US_PER_MIN).astype(np.int64)
        return (self._start_us + micros) / 1e6

    def _record_glucose(self, now_min: float, cgm: np.ndarray) -> None:
        sample = now_min if self.cgm_sample_time_min is None else (
            math.floor(now_min / self.cgm_sample_time_min) * self.cgm_sample_time_min)
        if not self._glucose.lengths()[0] or self._glucose.last(0, 0) < sample:
            self._glucose.append(0, np.concatenate(([sample], cgm)))
        self._glucose.drop_before(0, now_min - GLUCOSE_HISTORY_MIN)

    def _trim(self, now_min: float) -> None:
        """Drop what Loop no longer reads from every member's history, and expired temp basals."""
        self._doses.drop_before(2, now_min - self.dose_history_min)
        self._carbs.drop_before(0, now_min - self.dose_history_min)
        loop_batch.expire_temps(self._doses.array, self._doses.first, self._doses.stop, self._doses.base, self._temp,
                                now_min)

    def _start_temp(self, i: int, now_min: float, rate_u_per_h: float, duration_min: float) -> None:
        """Truncate the running temp basal at ``now``; start a new one unless ``duration_min`` is 0."""
        self._stop_temp(i, now_min)
        if duration_min > 0:
            row = (loop_batch.TEMP_BASAL, now_min, now_min + duration_min, rate_u_per_h)
            self._temp[i] = self._doses.append(i, row)

    def _stop_temp(self, i: int, now_min: float) -> None:
        entry = self._running_temp(i, now_min)
        if entry is not None:
            entry[2] = now_min
        self._temp[i] = -1

    def _bolus(self, i: int, now_min: float, units: float) -> None:
        self._doses.append(i, (loop_batch.BOLUS, now_min, now_min + BOLUS_DELIVERY_MIN, units))

    def _running_temp(self, i: int, now_min: float) -> np.ndarray | None:
        """Member ``i``'s running temp basal row (type, start min, end min, U/h; writable), or None."""
        temp = None if self._temp[i] < 0 else self._doses.row(i, int(self._temp[i]))
        return temp if temp is not None and temp[2] > now_min else None

    def input_dict(self, i: int, now_min: float) -> dict:
        """Member ``i``'s ``update()`` input at minute ``now_min`` from the history seen so far."""
        doses, carbs, temp = self._doses.rows(i).tolist(), self._carbs.rows(i).tolist(), self._running_temp(i, now_min)
        glucose = self._glucose.rows(0)
        return {
            **self._static[i],
            "time_to_calculate_at": self._date(now_min),
            "glucose_dates": [self._date(minute) for minute in glucose[:, 0].tolist()],
            "glucose_values": glucose[:, 1 + i].tolist(),
            "dose_types": [_TYPE_NAMES[int(d[0])] for d in doses],
            "dose_start_times": [self._date(d[1]) for d in doses],
            "dose_end_times": [self._date(d[2]) for d in doses],
            "dose_values": [d[3] for d in doses],
            "carb_dates": [self._date(c[0]) for c in carbs],
            "carb_values": [c[1] for c in carbs],
            "carb_absorption_times": [self.carb_absorption_time_min] * len(carbs),
            "last_temporary_basal": ([_TYPE_NAMES[int(temp[0])], self._date(temp[1]), self._date(temp[2]),
                                      float(temp[3])] if temp is not None else []),
        }

    def loop_input(self, i: int, now_min: float, glucose=None) -> LoopInput:
        """Member ``i``'s parsed input at minute ``now_min``: what ``update()`` parses
        :meth:`input_dict` into, built from the arrays directly. ``glucose``: the batch's
        ``(readings (T, n), seconds (T,))`` when the caller already stacked them (:meth:`_glucose_arrays`)."""
        readings, glucose_s = self._glucose_arrays() if glucose is None else glucose
        settings, isf, cr, basal, target = self._parsed[i]
        dose_table, carb_table, temp = self._doses.rows(i), self._carbs.rows(i), self._running_temp(i, now_min)
        n_doses, n_carbs = len(dose_table), len(carb_table)
        # every date of the member in one conversion: dose starts, dose ends, carbs, now, the temp basal
        dates_s = self._seconds(np.concatenate((dose_table[:, 1], dose_table[:, 2], carb_table[:, 0],
                                                [now_min] if temp is None else [now_min, temp[1], temp[2]])))
        carbs_end = 2 * n_doses + n_carbs
        return LoopInput(
            now_s=float(dates_s[carbs_end]), tz=None, offset_s=0.0,
            glucose_s=glucose_s, glucose_mgdl=readings[:, i].copy(),
            doses=DoseArrays.from_lists(dose_table[:, 0].astype(np.int8), dates_s[:n_doses],
                                        dates_s[n_doses:2 * n_doses], dose_table[:, 3].copy()),
            carb_s=dates_s[2 * n_doses:carbs_end], carb_g=carb_table[:, 1].copy(),
            carb_absorption_min=np.full(n_carbs, self.carb_absorption_time_min),
            sensitivity=isf, carb_ratio=cr, basal=basal, target=target, settings=settings,
            last_temp_basal=None if temp is None else (DoseType(int(temp[0])), float(dates_s[carbs_end + 1]),
                                                        float(dates_s[carbs_end + 2]), float(temp[3])))

    def _glucose_arrays(self):
        """The batch's glucose history: readings (T, n) and their dates in seconds since the reference date (T,)."""
        rows = self._glucose.rows(0)
        return rows[:, 1:], self._seconds(rows[:, 0])

    def _run(self, i: int, now_min: float, glucose, bolus: bool = True) -> dict:
        """The recommendations for member ``i`` now: ``temp_basal`` (rate, duration) or None,
        ``bolus`` (amount, pending, notice) or None (the fast engine computes it only when ``bolus`` is
        asked, for a meal announced now with ``meal_bolus="recommended"``), ``autobolus`` U or None."""
        if self.engine == "update":
            result = update(self.input_dict(i, now_min))
            self.warnings[i].update(result["warnings"])
            return {"temp_basal": result["recommended_temp_basal"], "bolus": result["recommended_bolus"],
                    "autobolus": result["recommended_autobolus"]}
        self._validate(i, now_min)
        # The manual bolus is read only for a meal announced now (meal_bolus="recommended"): skip it otherwise.
        wanted = bolus and self.meal_bolus == "recommended" and self._carbs.last(i, 0) == now_min
        inp = self.loop_input(i, now_min, glucose)
        if wanted:
            return core(inp, self._model, iob_timeline=False, bolus=True).recommendations
        return closed_loop_recommendations(inp, self._model, self._plans[i])

    def _validate(self, i: int, now_min: float) -> None:
        """Validate member ``i``'s input with ``update()``'s validation at its first decision (once; its
        warnings are kept in :attr:`warnings`); raises :class:`InvalidInputError` naming every problem."""
        if not self._validated[i]:
            self.warnings[i].update(validate_input(self.input_dict(i, now_min)))
            self._validated[i] = True

    def _batch_constants(self):
        """Every member's :func:`pyloopkit.core_kernel.plan` as a numba typed list for the compiled step
        (:mod:`pyloopkit.control.loop_batch`), or None when a member is not covered (or a member's
        automatic bolus factor depends on glucose): then every member takes the Python path."""
        if not self.n or any(plan is None for plan in self._plans) or not np.all(np.isfinite(self._factors)):
            return None
        from numba.typed import List  # plans exist only with numba in use
        constants = List()
        for plan in self._plans:
            constants.append(plan)
        return constants

    def _decide_compiled(self, now_min: float, glucose, meal_u: np.ndarray, bolus_u: np.ndarray) -> np.ndarray:
        """Decide and enact, in one compiled call (:func:`loop_batch.decide_and_enact`), for every member
        the fast engine covers now (a member's input is validated first at its first decision), a meal
        announced now included (``meal_u``: :meth:`_meal_boluses`). Writes the boluses given into
        ``bolus_u``; returns the members left to the Python path."""
        everyone = np.arange(self.n)
        if self.engine != "fast" or self._batch is None:
            return everyone
        for i in np.flatnonzero(~self._validated):
            self._validate(i, now_min)
        members = everyone
        self._doses.reserve(2)  # a bolus (automatic or for a meal) and a temp basal per member
        d, c = self._doses, self._carbs
        status, given = loop_batch.decide_and_enact(
            now_min, self._start_us, glucose[1], glucose[0], d.array, d.first, d.stop, d.base, self._temp, c.array,
            c.first, c.stop, self.carb_absorption_time_min, members, meal_u, self._factors, self._batch,
            self.dosing_strategy == "automatic_bolus", BOLUS_DELIVERY_MIN, self.threads)
        bolus_u[members] = given
        done = np.zeros(self.n, dtype=bool)
        done[members[status != core_kernel.NOT_COVERED]] = True
        return everyone[~done]

    # --- control --------------------------------------------------------------------------------
    def _meal_boluses(self, meals_g: np.ndarray) -> np.ndarray:
        """Each member's meal bolus now (U; ``meals_g`` the grams announced now): 0 without a meal or
        with ``meal_bolus=None``; NaN with ``"recommended"`` (Loop's recommended bolus, which the decision
        gives); with ``"carb_ratio"`` the grams over the carb ratio in force, at most the maximum bolus,
        rounded down to the bolus increment."""
        meal = meals_g > 0
        if self.meal_bolus == "recommended":
            return np.where(meal, np.nan, 0.0)
        if self.meal_bolus == "carb_ratio":
            units = np.minimum(meals_g / self.schedule_at("carb_ratio", self.time_min), self.max_bolus_u)
            return np.where(meal, _floor_to(units, self.bolus_increment_u), 0.0)
        return np.zeros(self.n)

    def act(self, step) -> tuple[np.ndarray, np.ndarray]:
        """``(basal_u_per_h (n,), bolus_u (n,))`` for the next step, from a :class:`StepResult`.

        Raises
        ------
        InvalidInputError
            When ``step.time_min`` is not after the previous step's (call :meth:`reset`
            when the simulator is reset), a CGM reading is not finite or an announced meal is not a
            finite number of grams >= 0.
        """
        now_min = float(step.time_min)
        cgm = np.asarray(step.cgm, dtype=np.float64)
        problems = [] if now_min > self.time_min else [
            Problem("step.time_min", None, now_min, f"must be after the previous step ({self.time_min}); "
                                                    "call reset() after Simulator.reset()")]
        problems += [Problem("step.cgm", int(i), float(cgm[i]), "must be finite")
                     for i in np.flatnonzero(~np.isfinite(cgm))]
        meals_g = np.asarray(step.meal_announcement_g, dtype=np.float64)
        problems += [Problem("step.meal_announcement_g", int(i), float(meals_g[i]), "must be a finite number >= 0")
                     for i in np.flatnonzero(~(np.isfinite(meals_g) & (meals_g >= 0)))]
        if problems:
            raise InvalidInputError(problems)
        self.time_min = now_min
        self._record_glucose(now_min, cgm)
        self._trim(now_min)
        for i in np.flatnonzero(meals_g > 0):
            self._carbs.append(i, (now_min, float(meals_g[i])))
        bolus_u = np.zeros(self.n)
        glucose = self._glucose_arrays()
        meal_u = self._meal_boluses(meals_g)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LoopWarning)
            for i in self._decide_compiled(now_min, glucose, meal_u, bolus_u):
                result = self._run(i, now_min, glucose)
                recommended = result["bolus"]
                bolus_u[i] = meal_u[i] if not np.isnan(meal_u[i]) else (
                    0.0 if recommended is None else recommended[0])
                if bolus_u[i] > 0:  # Loop runs again with the bolus in the history
                    self._bolus(i, now_min, bolus_u[i])
                    result = self._run(i, now_min, glucose, bolus=False)
                elif self.dosing_strategy == "automatic_bolus" and result["autobolus"]:
                    bolus_u[i] = result["autobolus"]
                    self._bolus(i, now_min, bolus_u[i])
                temp_basal = result["temp_basal"]
                if temp_basal is not None:
                    self._start_temp(i, now_min, *temp_basal)
        basal_u_per_h = self.schedule_at("basal", now_min)
        running = np.flatnonzero(self._temp >= 0)
        basal_u_per_h[running] = self._doses.array[running, self._temp[running] - self._doses.base[running], 3]
        return basal_u_per_h, bolus_u
