"""Closed-loop simulator: a batch of virtual patients with CGM, pump and meals, stepped by a controller.

The batch is a list of members, each a (patient, episode) pair: the patients
given, in their order, each repeated ``n_episodes_per_patient`` times in a row. A
patient that appears several times in the batch (repeated in the list, or
repeated by ``n_episodes_per_patient``) runs a different episode each time: its
``k``-th appearance is episode ``k`` (:attr:`Simulator.episode`). Each
:meth:`Simulator.step` advances every member by ``minutes`` one-minute UVA/Padova
updates in one compiled call: the pump rounds and limits the request, the bolus is
given in the first minute, the basal rate over the whole step, the announced
meals are eaten at up to 5 g/min, and the CGM samples BG every ``sample_time``
minutes (held in between). Meals and sensor noise come from one random stream
per (patient name, episode, reset), derived from the seed with
:class:`numpy.random.SeedSequence`: the same seed replays an episode exactly,
another seed, or a reset without a seed, gives new meals and noise, and a
member's streams do not depend on the rest of the batch.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.simulation.model import (HAVE_NUMBA, N_MEAL_STATE, N_STATES, _KP3, _VG, _VMX, _minute, initial_meal_state,
                                        inline_jit, jit, numpy_model, param_matrix, substeps_per_minute)
from pyloopkit.simulation.patients import PatientParams, load_patients
from pyloopkit.simulation.pump import Pump, _quantize_numpy, quantize
from pyloopkit.simulation.scenario import CustomScenario, RandomScenario, Scenario
from pyloopkit.simulation.sensor import CGMSensor

_NOISE_CHUNK_MIN = 1500
_MEAL_CHUNK_MIN = 1440


@dataclass(slots=True)
class StepResult:
    """What the batch looks like after a step (or a reset), one element per member.

    Attributes
    ----------
    time_min : float
        Minutes since the start of the episode.
    cgm : ndarray (n,)
        Latest CGM reading (mg/dL), taken at the last sensor sample time <= ``time_min``.
    bg : ndarray (n,)
        True BG (subcutaneous glucose, mg/dL) at ``time_min``.
    bg_minutes : ndarray (n, minutes)
        BG at the end of each minute of the step (empty at reset).
    carbs_g : ndarray (n,)
        CHO eaten during the step (g).
    meal_announcement_g : ndarray (n,)
        CHO of the meals that start during the next step (g), 0 if none.
    insulin_u : ndarray (n,)
        Insulin delivered during the step after pump rounding and limits (U).
    """

    time_min: float
    cgm: np.ndarray
    bg: np.ndarray
    bg_minutes: np.ndarray
    carbs_g: np.ndarray
    meal_announcement_g: np.ndarray
    insulin_u: np.ndarray


@inline_jit
def _invalid_request(basal_u_per_h, bolus_u):
    """Index of the first member with a non-finite or negative request, or -1."""
    for i in range(basal_u_per_h.shape[0]):
        if not (np.isfinite(basal_u_per_h[i]) and basal_u_per_h[i] >= 0.0
                and np.isfinite(bolus_u[i]) and bolus_u[i] >= 0.0):
            return i
    return -1


@jit
def _step_kernel(x, params, meal, cgm, basal_u_per_h, bolus_u, pump, event_min, event_g, noise, noise_offset,
                 sensor, t0, minutes, announce_min, n_sub, bg_minutes, out):
    """Advance every member by ``minutes``; fills ``bg_minutes`` (n, minutes) and ``out`` (5, n).

    Meals are events (``event_min`` (n, k), -1 for none, and ``event_g``); ``noise``
    (samples, n) is time-major, so that consecutive members read consecutive memory.
    """
    bad = _invalid_request(basal_u_per_h, bolus_u)
    if bad >= 0:
        return bad
    sample_time = int(sensor[0])
    work = np.empty((5, N_STATES))
    cho = np.empty(minutes)
    for i in range(x.shape[0]):
        basal = quantize(basal_u_per_h[i], pump[0], pump[1], pump[2]) / 60.0
        bolus = quantize(bolus_u[i], pump[3], pump[4], pump[5])
        cho[:] = 0.0
        announced = 0.0
        for k in range(event_min.shape[1]):
            if event_min[i, k] < 0:
                continue
            minute = event_min[i, k] - t0
            if 0 <= minute < minutes:
                cho[minute] += event_g[i, k]
            elif minutes <= minute < minutes + announce_min:
                announced += event_g[i, k]
        xi, p, mi = x[i], params[i], meal[i]
        eaten = 0.0
        bg = xi[12] / p[_VG]
        for j in range(minutes):
            eaten += _minute(xi, p, mi, cho[j], basal + bolus * (j == 0), n_sub, work)
            bg = xi[12] / p[_VG]
            bg_minutes[i, j] = bg
            t = t0 + j + 1
            if t % sample_time == 0:
                cgm[i] = min(max(bg + noise[t // sample_time - noise_offset, i], sensor[1]), sensor[2])
        out[0, i] = cgm[i]
        out[1, i] = bg
        out[2, i] = eaten
        out[3, i] = announced
        out[4, i] = basal * minutes + bolus
    return -1


def _step_numpy(x, params, meal, cgm, basal_u_per_h, bolus_u, pump, event_min, event_g, noise, noise_offset,
                sensor, t0, minutes, announce_min, n_sub, bg_minutes, out):
    """The same step vectorised over the batch in numpy (used without numba)."""
    valid = np.isfinite(basal_u_per_h) & (basal_u_per_h >= 0) & np.isfinite(bolus_u) & (bolus_u >= 0)
    if not valid.all():
        return int(np.flatnonzero(~valid)[0])
    sample_time = int(sensor[0])
    basal = _quantize_numpy(basal_u_per_h, *pump[:3]) / 60.0
    bolus = _quantize_numpy(bolus_u, *pump[3:])
    offset = np.where(event_min >= 0, event_min - t0, -1)
    cho = np.zeros((minutes + announce_min, x.shape[0]))
    member, column = np.nonzero((offset >= 0) & (offset < minutes + announce_min))
    np.add.at(cho, (offset[member, column], member), event_g[member, column])
    xt, p, mt = x.T, params.T, meal.T
    work = np.empty((5, N_STATES, x.shape[0]))
    eaten = np.zeros(x.shape[0])
    bg = xt[12] / p[_VG]
    for j in range(minutes):
        eaten += numpy_model._minute(xt, p, mt, cho[j], basal + bolus * (j == 0), n_sub, work)
        bg = xt[12] / p[_VG]
        bg_minutes[:, j] = bg
        t = t0 + j + 1
        if t % sample_time == 0:
            cgm[:] = np.minimum(np.maximum(bg + noise[t // sample_time - noise_offset], sensor[1]), sensor[2])
    out[0], out[1], out[2] = cgm, bg, eaten
    out[3] = cho[minutes:].sum(axis=0)
    out[4] = basal * minutes + bolus
    return -1


MAX_REQUEST = {"basal_u_per_h": 1000.0, "bolus_u": 1000.0}
"""Largest insulin request accepted (U/h, U), far above any pump's limit: a larger one is a caller's bug
(1e300 U/h overflowed the model to NaN)."""


def _seed_problems(seed) -> list[Problem]:
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        return []
    return [Problem("seed", None, seed, "must be an integer >= 0 or None")]


class Simulator:
    """Batched closed-loop UVA/Padova simulator.

    Parameters
    ----------
    patients : str, list of str or PatientParams
        Patients or groups (see :func:`~pyloopkit.simulation.patients.load_patients`);
        a patient may appear several times, each appearance being another episode.
    sensor : "Dexcom", "GuardianRT", "Navigator", CGMSensor or None
        CGM model; ``None``: a noiseless reading of BG every minute.
    pump : "Insulet", "Cozmo", Pump or None
        Pump model; ``None``: any non-negative request is delivered exactly.
    scenario : Scenario, "random", list of (minute, grams) or None
        Meals: ``"random"`` is :class:`RandomScenario`; a list gives the same meals
        (minute since start, g) to everyone; ``None``: no meals.
    seed : int or None
        Seed of the first episode; ``None`` draws fresh OS entropy.
    n_episodes_per_patient : int
        Consecutive members made of each patient given (each its own episode).
    record_minutes : bool
        Keep every step's outputs and minute-level BG in :attr:`history` (memory grows with time).
    start_hour : float
        Time of day (h) at minute 0, for the meal scenario.
    dt_min : float
        RK4 step (min): 1.0 or 1/k.
    announce_min : int or None
        Window (min) of ``meal_announcement_g`` after a step; ``None``: the step's own length
        (5 min after a reset).
    episodes : array of int (n,) or None
        Episode number of each member (after the repetition by ``n_episodes_per_patient``);
        ``None``: the order of appearance (:attr:`episode`). Explicit numbers let a run split
        a (patients x episodes) design into chunks that replay the same episodes.
    """

    def __init__(self, patients: str | list[str] | PatientParams, sensor: str | CGMSensor | None = "Dexcom",
                 pump: str | Pump | None = "Insulet", scenario: Scenario | str | list | None = "random",
                 seed: int | None = None, n_episodes_per_patient: int = 1, record_minutes: bool = False,
                 start_hour: float = 0.0, dt_min: float = 1.0, announce_min: int | None = None,
                 episodes=None):
        base = patients if isinstance(patients, PatientParams) else load_patients(patients)
        problems = _seed_problems(seed)
        if not (isinstance(n_episodes_per_patient, (int, np.integer)) and n_episodes_per_patient >= 1):
            problems.append(Problem("n_episodes_per_patient", None, n_episodes_per_patient, "must be an integer >= 1"))
        if not (np.isfinite(start_hour) and 0 <= start_hour < 24):
            problems.append(Problem("start_hour", None, start_hour, "must be in [0, 24)"))
        if announce_min is not None and not (isinstance(announce_min, (int, np.integer)) and announce_min >= 0):
            problems.append(Problem("announce_min", None, announce_min, "must be an integer >= 0 or None"))
        if problems:
            raise InvalidInputError(problems)
        self.n_sub = substeps_per_minute(dt_min)
        self.patients = base.take(np.repeat(np.arange(base.n), n_episodes_per_patient))
        self.episode = episode_numbers(self.patients.names) if episodes is None else np.asarray(episodes)
        if episodes is not None and not (self.episode.shape == (self.patients.n,)
                                         and np.issubdtype(self.episode.dtype, np.integer)
                                         and (self.episode >= 0).all()):
            raise InvalidInputError([Problem("episodes", None, episodes,
                                             f"must be {self.patients.n} integers >= 0, one per member")])
        self.n = self.patients.n
        self._stream_keys = [int.from_bytes(name.encode("utf-8"), "little") for name in self.patients.names]
        self.sensor = CGMSensor.from_name(sensor) if isinstance(sensor, str) else sensor
        self.pump = Pump.ideal() if pump is None else Pump.from_name(pump) if isinstance(pump, str) else pump
        self.scenario = _as_scenario(scenario)
        self.record_minutes = record_minutes
        self.start_hour = float(start_hour)
        self.announce_min = announce_min
        self._params = param_matrix(self.patients)
        self._pump = self.pump.as_array()
        self._sensor = (np.array([self.sensor.sample_time_min, self.sensor.min_mg_dl, self.sensor.max_mg_dl])
                        if self.sensor is not None else np.array([1.0, -np.inf, np.inf]))
        self._kernel = _step_kernel if HAVE_NUMBA else _step_numpy
        if not HAVE_NUMBA:
            warnings.warn("numba is not installed (extra `sim`): the simulator uses the slower numpy path",
                          RuntimeWarning, stacklevel=2)
        self._entropy = np.random.SeedSequence(seed).entropy
        self._resets = 0
        self._fresh = True
        self.time_min = 0.0
        self.reset(seed)
        self._fresh = True

    def set_insulin_sensitivity(self, scale) -> None:
        """Scale each member's insulin sensitivity from now on (1: the patient's own).

        Multiplies the insulin-dependent glucose utilisation ``Vmx`` and the insulin action
        on endogenous production ``kp3`` of the UVA/Padova model by ``scale`` (scalar or (n,),
        finite and > 0), relative to the patient's parameters (not cumulative).
        """
        factor = self._request("scale", scale)
        bad = np.flatnonzero(~(np.isfinite(factor) & (factor > 0)))
        if bad.size:
            raise InvalidInputError([Problem("scale", int(i), float(factor[i]), "must be finite and > 0")
                                     for i in bad])
        self._params[:, _VMX] = self.patients.Vmx * factor
        self._params[:, _KP3] = self.patients.kp3 * factor

    # --- episode set-up -------------------------------------------------------------------------
    def _seeds(self, stream: int) -> list[np.random.SeedSequence]:
        return [np.random.SeedSequence(self._entropy, spawn_key=(key, self._resets, int(episode), stream))
                for key, episode in zip(self._stream_keys, self.episode)]

    def reset(self, seed: int | None = None) -> StepResult:
        """Start new episodes; ``seed`` replays exactly, ``None`` continues to new episodes.

        The first ``reset()`` without a seed right after construction starts the
        constructor's (seeded) episode; every later one draws the next episodes.
        """
        if _seed_problems(seed):
            raise InvalidInputError(_seed_problems(seed))
        if seed is not None:
            self._entropy, self._resets = np.random.SeedSequence(seed).entropy, 0
        elif not self._fresh:
            self._resets += 1
        self._fresh = False
        self.time_min = 0.0
        self._t = 0
        self._x = np.empty((self.n, N_STATES))
        self._meal = np.empty((self.n, N_MEAL_STATE))
        self._cgm = np.empty(self.n)
        self._plan = self.scenario.plan(self.patients, self._seeds(0), self.start_hour) if self.scenario else None
        self._event_min = np.full((self.n, 0), -1, dtype=np.int64)
        self._event_g = np.zeros((self.n, 0))
        self._events_end = 0
        self._noise_stream = self.sensor.noise_stream(self._seeds(1)) if self.sensor is not None else None
        self._noise_by_sample = np.zeros((0, self.n))
        self._noise = self._noise_by_sample.T
        self._noise_start = 0
        window = 5 if self.announce_min is None else self.announce_min
        self._ensure_inputs(0, window)
        cgm, bg = self.restart_members(slice(None))
        self._history = [] if self.record_minutes else None
        zeros = np.zeros(self.n)
        announced = (((self._event_min >= 0) & (self._event_min < window)) * self._event_g).sum(axis=1)
        result = StepResult(0.0, cgm, bg, np.empty((self.n, 0)), zeros, announced, zeros.copy())
        if self._history is not None:
            self._history.append(result)
        return result

    def restart_members(self, members) -> tuple[np.ndarray, np.ndarray]:
        """Put ``members`` (indices, a boolean mask or a slice) back to their initial state at the current time.

        The batch shares one clock, so a restarted member keeps its meal and
        sensor-noise streams (they continue where they are); only its 13 model
        states and meal bookkeeping return to the reset values, and its CGM
        reading becomes the initial BG plus the noise of the current sensor sample
        (for vector environments that autoreset one sub-environment).

        Returns
        -------
        cgm, bg : ndarray (len(members),)
            The restarted members' new CGM reading and BG (mg/dL).
        """
        try:
            index = np.arange(self.n)[members]
        except (IndexError, TypeError, ValueError):
            raise InvalidInputError([Problem("members", None, members, f"must index the {self.n} members "
                                             "(indices in [0, n), a boolean mask of length n, or a slice)")]) from None
        x0 = np.ascontiguousarray(self.patients.x0[index], dtype=np.float64)
        self._x[index] = x0
        self._meal[index] = initial_meal_state(x0)
        sample_time = int(self._sensor[0])
        noise = self._noise[index, self._t // sample_time - self._noise_start]
        bg = x0[:, 12] / self.patients.Vg[index]
        cgm = np.clip(bg + noise, self._sensor[1], self._sensor[2])
        self._cgm[index] = cgm
        return cgm, bg

    def _ensure_inputs(self, minutes: int, announce_min: int) -> None:
        """Make the meal events cover the step and announcement window, and the noise buffer the step."""
        end = self._t + minutes + announce_min
        if self._events_end < end and self._plan is not None:
            stop = max(end, self._events_end + _MEAL_CHUNK_MIN)
            new_min, new_g = self._plan.events(self._events_end, stop)
            event_min = np.concatenate([np.where(self._event_min >= self._t, self._event_min, -1), new_min], axis=1)
            keep = (event_min >= 0).any(axis=0)
            self._event_min = np.ascontiguousarray(event_min[:, keep])
            self._event_g = np.ascontiguousarray(np.concatenate([self._event_g, new_g], axis=1)[:, keep])
            self._events_end = stop
        sample_time = int(self._sensor[0])
        last_sample = (self._t + minutes) // sample_time
        if self._noise_start + self._noise.shape[1] <= last_sample:
            first = self._t // sample_time
            keep = self._noise[:, first - self._noise_start:]
            count = max(last_sample + 1 - first - keep.shape[1], _NOISE_CHUNK_MIN // sample_time)
            new = self._noise_stream.next(count) if self._noise_stream is not None else np.zeros((self.n, count))
            self._noise_by_sample = np.ascontiguousarray(np.concatenate([keep, new], axis=1).T)
            self._noise, self._noise_start = self._noise_by_sample.T, first

    # --- stepping ---------------------------------------------------------------------------------
    def _request(self, name: str, value) -> np.ndarray:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError([Problem(name, None, value, "must be numbers (U/h or U)")]) from None
        if array.ndim == 0:
            array = np.full(self.n, float(array))
        if array.shape != (self.n,):
            raise InvalidInputError([Problem(name, None, array.shape, f"must be a scalar or have shape ({self.n},)")])
        too_large = np.flatnonzero(array > MAX_REQUEST.get(name, np.inf))
        if too_large.size:
            raise InvalidInputError([Problem(name, int(i), float(array[i]), f"must be <= {MAX_REQUEST[name]:g}")
                                     for i in too_large])
        return np.ascontiguousarray(array)

    def step(self, basal_u_per_h: np.ndarray | float, bolus_u: np.ndarray | float = 0.0,
             minutes: int = 5) -> StepResult:
        """Advance the batch by ``minutes`` with a basal rate (U/h) and a bolus (U, given in the first minute)."""
        if not (isinstance(minutes, (int, np.integer)) and minutes >= 1):
            raise InvalidInputError([Problem("minutes", None, minutes, "must be an integer >= 1")])
        basal = self._request("basal_u_per_h", basal_u_per_h)
        bolus = self._request("bolus_u", bolus_u)
        announce_min = minutes if self.announce_min is None else self.announce_min
        self._ensure_inputs(minutes, announce_min)
        bg_minutes = np.empty((self.n, minutes))
        out = np.empty((5, self.n))
        bad = self._kernel(self._x, self._params, self._meal, self._cgm, basal, bolus, self._pump,
                           self._event_min, self._event_g, self._noise_by_sample, self._noise_start,
                           self._sensor, self._t, minutes, announce_min, self.n_sub, bg_minutes, out)
        if bad >= 0:
            raise InvalidInputError([Problem(name, bad, float(values[bad]), "must be finite and >= 0")
                                     for name, values in (("basal_u_per_h", basal), ("bolus_u", bolus))
                                     if not (np.isfinite(values[bad]) and values[bad] >= 0)])
        self._t += minutes
        self._fresh = False
        self.time_min = float(self._t)
        result = StepResult(self.time_min, out[0], out[1], bg_minutes, out[2], out[3], out[4])
        if self._history is not None:
            self._history.append(result)
        return result

    @property
    def history(self) -> dict:
        """Recorded trace (``record_minutes=True``): per-step arrays (n, steps + 1) and minute BG (n, minutes + 1).

        Keys: ``time_min`` (steps + 1,), ``cgm``, ``bg``, ``carbs_g``, ``insulin_u``,
        ``meal_announcement_g`` (n, steps + 1; the first column is the reset),
        ``minute_time_min`` (minutes + 1,) and ``bg_minutes`` (n, minutes + 1).
        """
        if self._history is None:
            raise InvalidInputError([Problem("record_minutes", None, False, "history needs record_minutes=True")])
        steps = self._history
        trace = {"time_min": np.array([s.time_min for s in steps])}
        for key in ("cgm", "bg", "carbs_g", "insulin_u", "meal_announcement_g"):
            trace[key] = np.stack([getattr(s, key) for s in steps], axis=1)
        trace["bg_minutes"] = np.concatenate([steps[0].bg[:, None]] + [s.bg_minutes for s in steps[1:]], axis=1)
        trace["minute_time_min"] = np.arange(trace["bg_minutes"].shape[1], dtype=np.float64)
        return trace


def episode_numbers(names: list[str]) -> np.ndarray:
    """For each member, how many earlier members have the same patient name (its episode number)."""
    _, key = np.unique(np.asarray(names), return_inverse=True)
    order = np.argsort(key, kind="stable")
    first_of_key = np.searchsorted(key[order], key[order])
    numbers = np.empty(len(names), dtype=np.int64)
    numbers[order] = np.arange(len(names)) - first_of_key
    return numbers


def _as_scenario(scenario) -> Scenario | None:
    if scenario is None or isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str):
        if scenario != "random":
            raise InvalidInputError([Problem("scenario", None, scenario,
                                             "must be 'random', a Scenario, a meal list or None")])
        return RandomScenario()
    return CustomScenario(scenario)
