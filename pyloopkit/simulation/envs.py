"""gymnasium environments over the batched UVA/Padova simulator.

:class:`T1DEnv` is a single-patient ``gymnasium.Env`` (registered as
``pyloopkit/T1D-v0`` when :mod:`pyloopkit.simulation` is imported) and
:class:`T1DVectorEnv` a ``gymnasium.vector.VectorEnv`` whose sub-environments
all live in one :class:`~pyloopkit.simulation.simulator.Simulator` batch, so a
vector step is one compiled simulator step plus a few numpy operations.
Both take the same options (see :class:`EnvOptions`).

Per decision the agent chooses a basal rate (U/h, continuous or from a
discrete set), which is held for ``decision_interval_min`` one-minute model
steps (no bolus). The observation is a float32 vector, in this order:

1. CGM (mg/dL): the last reading (``observation="cgm"``) or the readings at
   the last ``history_len`` decisions, oldest first (``"history"``; at reset
   the window is filled with the reset reading);
2. ``include_iob``: insulin on board (U) of the insulin the pump delivered,
   ``sum_k delivered_k * percent_effect_remaining(age_k)`` over the last 6 h
   with Loop's exponential curve (:class:`pyloopkit.insulin_models.ExponentialInsulinModel`,
   action duration 360 min, peak 75 min, delay 10 min); each decision's units
   are taken at the middle of the decision;
3. ``include_cob``: carbs on board (g): carbs eaten, each decision's grams
   absorbed linearly over :data:`COB_ABSORPTION_MIN` = 180 min from the middle
   of the decision (a simple observation feature, not the model's gut state);
4. ``include_time_of_day``: ``sin`` and ``cos`` of ``2 pi minute_of_day / 1440``;
5. ``announce_meals``: grams of the meals that start within the next decision
   (the simulator's meal announcement).

Rewards are computed on the true BG of every minute of the decision
(``bg_minutes``, mg/dL): ``"in_range_count"`` (minutes with 70 <= BG <= 180),
``"risk_diff"`` (Kovatchev risk of the BG at the previous decision minus that at
this one, simglucose's default reward but on BG instead of CGM), ``"magni"``
(minus the mean Magni risk over the minutes; both risk rewards evaluate BG
floored at 1 mg/dL, where the risk scales end), ``"shaped_tir"`` (mean over the
minutes of 1 in 70-180, falling linearly to -1 at 40 mg/dL below and at
300 mg/dL above, -1 beyond), or a callable. An episode terminates when any
minute's BG leaves ``termination_bounds`` (default 10 to 1000 mg/dL, strict)
and is truncated after ``max_episode_minutes``.

Seeding: ``reset(seed=s)`` replays an episode exactly (meals, sensor noise);
``reset()`` without a seed starts a new, different episode (simglucose's
gym environment replays the same one after every reset).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from pyloopkit import metrics
from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.insulin_models import ExponentialInsulinModel
from pyloopkit.simulation.patients import GROUPS, PatientParams, load_patients
from pyloopkit.simulation.simulator import Simulator

OBSERVATIONS = ("cgm", "history")
ACTIONS = ("continuous", "discrete")
REWARDS = ("in_range_count", "risk_diff", "magni", "shaped_tir")
#: Default discrete actions: multiples of each patient's steady-state basal rate.
DEFAULT_BASAL_MULTIPLES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
#: Linear absorption time of the COB feature (min).
COB_ABSORPTION_MIN = 180.0
#: IOB insulin curve (Loop's exponential model, rapid-acting adult preset).
IOB_ACTION_DURATION_MIN = 360.0
IOB_PEAK_ACTIVITY_MIN = 75.0
IOB_DELAY_MIN = 10.0
#: Shaped time-in-range reward: value 1 inside [70, 180] mg/dL, -1 at and beyond these limits.
SHAPED_FLOOR_MG_DL = 40.0
SHAPED_CEILING_MG_DL = 300.0
_UNBOUNDED = float(np.finfo(np.float32).max)
try:
    from gymnasium.vector import AutoresetMode
except ImportError:  # gymnasium 0.29 has no AutoresetMode: its vector envs always autoreset in the same step
    AutoresetMode = None


@dataclass(frozen=True)
class EnvOptions:
    """Options shared by :class:`T1DEnv` and :class:`T1DVectorEnv`.

    Attributes
    ----------
    decision_interval_min : int
        Minutes between decisions (3: every Dexcom reading; 15/30/45 for a
        reduced observation frequency).
    observation : "cgm" or "history"
        Last CGM reading, or the CGM readings at the last ``history_len`` decisions.
    history_len : int
        Length of the CGM window of ``observation="history"``.
    include_iob, include_cob, include_time_of_day, announce_meals : bool
        Extra observation features (see the module docstring).
    action : "continuous" or "discrete"
        ``Box(0, max_basal_u_per_h, (1,))`` basal rate in U/h, or ``Discrete(k)``
        choosing one of the ``k`` discrete rates.
    max_basal_u_per_h : float or None
        Upper bound of the continuous action; ``None``: the pump's maximum basal rate.
    discrete_doses_u_per_h : sequence of float or None
        Basal rates (U/h) of the discrete actions, the same for every patient;
        ``None``: ``discrete_basal_multiples`` times each patient's steady-state basal.
    discrete_basal_multiples : sequence of float
        Multiples of the steady-state basal ``u2ss * BW / 6000 * 60`` U/h.
    reward : str or callable
        One of :data:`REWARDS`, or ``f(bg_minutes, info) -> reward``: for
        :class:`T1DEnv` ``bg_minutes`` has shape ``(minutes,)`` and ``f`` returns a
        float; for :class:`T1DVectorEnv` shape ``(num_envs, minutes)`` and ``f``
        returns ``(num_envs,)``. ``info`` holds the step's ``cgm``, ``bg``,
        ``insulin_u``, ``carbs_g`` and ``previous_bg`` (mg/dL, U, g).
    termination_bounds : (float, float)
        An episode terminates when a minute's BG is below the first or above the
        second value (mg/dL); ``(-inf, inf)`` never terminates.
    termination_penalty : float
        Added to the reward of the terminating decision.
    max_episode_minutes : int or None
        Episode length (min) after which it is truncated; ``None``: never.
    sensor, pump, scenario, start_hour :
        Passed to :class:`~pyloopkit.simulation.simulator.Simulator`.
    """

    decision_interval_min: int = 3
    observation: str = "cgm"
    history_len: int = 12
    include_iob: bool = False
    include_cob: bool = False
    include_time_of_day: bool = False
    announce_meals: bool = False
    action: str = "continuous"
    max_basal_u_per_h: float | None = None
    discrete_doses_u_per_h: tuple | None = None
    discrete_basal_multiples: tuple = DEFAULT_BASAL_MULTIPLES
    reward: Any = "risk_diff"
    termination_bounds: tuple = (10.0, 1000.0)
    termination_penalty: float = 0.0
    max_episode_minutes: int | None = 1440
    sensor: Any = "Dexcom"
    pump: Any = "Insulet"
    scenario: Any = "random"
    start_hour: float = 0.0

    def __post_init__(self):
        problems = []

        def check(name, ok, reason):
            if not ok:
                problems.append(Problem(name, None, getattr(self, name), reason))

        def whole(value, low):
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low

        check("decision_interval_min", whole(self.decision_interval_min, 1), "must be an integer >= 1 (minutes)")
        check("observation", self.observation in OBSERVATIONS, f"must be one of {OBSERVATIONS}")
        check("history_len", whole(self.history_len, 1), "must be an integer >= 1")
        check("action", self.action in ACTIONS, f"must be one of {ACTIONS}")
        check("reward", callable(self.reward) or self.reward in REWARDS, f"must be one of {REWARDS} or a callable")
        check("max_basal_u_per_h", self.max_basal_u_per_h is None
              or (np.isfinite(self.max_basal_u_per_h) and self.max_basal_u_per_h > 0), "must be finite and > 0 U/h")
        for name in ("discrete_doses_u_per_h", "discrete_basal_multiples"):
            values = getattr(self, name)
            if values is not None:
                array = np.asarray(values, dtype=float)
                check(name, array.ndim == 1 and array.size >= 1 and np.all(np.isfinite(array) & (array >= 0)),
                      "must be a non-empty sequence of finite values >= 0")
        bounds = np.asarray(self.termination_bounds, dtype=float)
        check("termination_bounds", bounds.shape == (2,) and not np.isnan(bounds).any() and bounds[0] < bounds[1],
              "must be (low, high) in mg/dL with low < high")
        check("termination_penalty", np.isfinite(self.termination_penalty), "must be finite")
        check("max_episode_minutes", self.max_episode_minutes is None or whole(self.max_episode_minutes, 1),
              "must be an integer >= 1 (minutes) or None")
        if problems:
            raise InvalidInputError(problems)

    @property
    def cgm_len(self) -> int:
        """Number of CGM values in the observation."""
        return self.history_len if self.observation == "history" else 1


# Built-in rewards: f(bg_minutes (n, minutes), previous_bg (n,)) -> (n,), glucose in mg/dL.

def _in_range_count(bg_minutes, previous_bg):
    """Minutes of the decision with 70 <= BG <= 180 mg/dL."""
    in_range = (bg_minutes >= metrics.LOW_MG_DL) & (bg_minutes <= metrics.HIGH_MG_DL)
    return np.count_nonzero(in_range, axis=-1).astype(np.float64)


def _risk_domain(bg_mg_dl):
    """BG floored at 1 mg/dL, where the risk scales end (ln(G) < 0 below); only a terminating
    decision can reach it with the default bounds."""
    return np.maximum(bg_mg_dl, metrics.RISK_MINIMUM_MG_DL)


def _risk_diff(bg_minutes, previous_bg):
    """Kovatchev risk at the previous decision's BG minus that at this decision's last minute."""
    return metrics.kovatchev_risk(_risk_domain(previous_bg)) - metrics.kovatchev_risk(_risk_domain(bg_minutes[:, -1]))


def _magni(bg_minutes, previous_bg):
    """Minus the mean Magni risk over the minutes of the decision."""
    return -metrics.magni_risk(_risk_domain(bg_minutes)).mean(axis=-1)


def _shaped_tir(bg_minutes, previous_bg):
    """Mean over the minutes of 1 in 70-180 mg/dL, linear down to -1 at 40 and 300 mg/dL, -1 beyond."""
    below = (bg_minutes - metrics.LOW_MG_DL) / (metrics.LOW_MG_DL - SHAPED_FLOOR_MG_DL)
    above = (metrics.HIGH_MG_DL - bg_minutes) / (SHAPED_CEILING_MG_DL - metrics.HIGH_MG_DL)
    value = np.where(bg_minutes < metrics.LOW_MG_DL, np.maximum(2.0 * below + 1.0, -1.0),
                     np.where(bg_minutes > metrics.HIGH_MG_DL, np.maximum(2.0 * above + 1.0, -1.0), 1.0))
    return value.mean(axis=-1)


_REWARD_FUNCTIONS = {"in_range_count": _in_range_count, "risk_diff": _risk_diff, "magni": _magni,
                     "shaped_tir": _shaped_tir}


class _DecayingSum:
    """Per-member sum of past per-decision amounts weighted by the fraction still remaining.

    The last ``length`` amounts sit in a doubled ring buffer so that the window,
    oldest first, is one contiguous slice; the total is one matrix-vector product.
    """

    def __init__(self, n: int, interval_min: int, window_min: float, remaining: Callable[[np.ndarray], np.ndarray]):
        self.length = max(1, math.ceil(window_min / interval_min))
        ages_min = (np.arange(self.length)[::-1] + 0.5) * interval_min
        self.weights = np.ascontiguousarray(remaining(ages_min), dtype=np.float64)
        self.buffer = np.zeros((n, 2 * self.length))
        self.position = 0

    def push(self, amounts: np.ndarray) -> None:
        self.buffer[:, self.position] = amounts
        self.buffer[:, self.position + self.length] = amounts
        self.position = (self.position + 1) % self.length

    def total(self) -> np.ndarray:
        return self.buffer[:, self.position:self.position + self.length] @ self.weights

    def clear(self, rows) -> None:
        self.buffer[rows] = 0.0


def _iob_tracker(n: int, interval_min: int) -> _DecayingSum:
    model = ExponentialInsulinModel(action_duration_min=IOB_ACTION_DURATION_MIN,
                                    peak_activity_min=IOB_PEAK_ACTIVITY_MIN, delay_min=IOB_DELAY_MIN)
    return _DecayingSum(n, interval_min, model.effect_duration_min, model.percent_effect_remaining)


def _cob_tracker(n: int, interval_min: int) -> _DecayingSum:
    return _DecayingSum(n, interval_min, COB_ABSORPTION_MIN,
                        lambda age_min: np.clip(1.0 - age_min / COB_ABSORPTION_MIN, 0.0, 1.0))


class _Core:
    """Observation, action, reward and termination logic over one simulator batch.

    Environment ``j`` is simulator member ``j``: patient ``j % P`` of the ``P``
    patients given, in its episode ``j // P`` (so exactly ``num_envs`` members are
    simulated, each with its own meal and sensor-noise streams).
    """

    def __init__(self, patients, num_envs: int | None, options: EnvOptions, seed: int | None):
        base = patients if isinstance(patients, PatientParams) else load_patients(patients)
        num_envs = base.n if num_envs is None else num_envs
        if not (isinstance(num_envs, (int, np.integer)) and num_envs >= 1):
            raise InvalidInputError([Problem("num_envs", None, num_envs, "must be an integer >= 1")])
        self.options = options
        self.num_envs = int(num_envs)
        self.sim = Simulator(base.take(np.arange(self.num_envs) % base.n), sensor=options.sensor, pump=options.pump,
                             scenario=options.scenario, seed=seed, start_hour=options.start_hour,
                             announce_min=options.decision_interval_min)
        self.patient_names = list(self.sim.patients.names)
        self._zero_bolus = np.zeros(self.num_envs)
        self._build_action_space()
        self._build_observation_space()
        self.reward_function = _REWARD_FUNCTIONS[options.reward] if isinstance(options.reward, str) else options.reward
        self._low_bg, self._high_bg = (float(v) for v in options.termination_bounds)
        self.all_true = np.ones(self.num_envs, dtype=bool)
        self.all_true.setflags(write=False)

    # --- spaces ---------------------------------------------------------------------------------
    def _build_action_space(self) -> None:
        options = self.options
        if options.action == "continuous":
            high = options.max_basal_u_per_h
            if high is None:
                high = self.sim.pump.basal_max_u_per_h
                if not np.isfinite(high):
                    raise InvalidInputError([Problem("max_basal_u_per_h", None, None,
                                                     f"pump {self.sim.pump.name!r} has no finite maximum basal rate; "
                                                     "give max_basal_u_per_h")])
            self.action_space = spaces.Box(0.0, float(high), shape=(1,), dtype=np.float32)
            self.max_rate_u_per_h = float(self.action_space.high[0])
            self.rate_table = None
        else:
            if options.discrete_doses_u_per_h is not None:
                doses = np.asarray(options.discrete_doses_u_per_h, dtype=float)
                table = np.broadcast_to(doses, (self.num_envs, doses.size))
            else:
                basal_u_per_h = self.sim.patients.basal_u_per_min * 60.0
                table = basal_u_per_h[:, None] * np.asarray(options.discrete_basal_multiples, dtype=float)
            self.rate_table = np.ascontiguousarray(table)
            self.action_space = spaces.Discrete(self.rate_table.shape[1])

    def _build_observation_space(self) -> None:
        options = self.options
        sensor = self.sim.sensor
        cgm_high = float(sensor.max_mg_dl) if sensor is not None else _UNBOUNDED
        names = [f"cgm[-{k}]" for k in range(options.cgm_len - 1, 0, -1)] + ["cgm"]
        low, high = [0.0] * options.cgm_len, [cgm_high] * options.cgm_len
        for flag, name in ((options.include_iob, "iob_u"), (options.include_cob, "cob_g")):
            if flag:
                names.append(name)
                low.append(0.0)
                high.append(_UNBOUNDED)
        if options.include_time_of_day:
            names += ["sin_time_of_day", "cos_time_of_day"]
            low += [-1.0, -1.0]
            high += [1.0, 1.0]
        if options.announce_meals:
            names.append("announced_carbs_g")
            low.append(0.0)
            high.append(_UNBOUNDED)
        self.observation_names = names
        self.observation_space = spaces.Box(np.array(low, dtype=np.float32), np.array(high, dtype=np.float32),
                                            dtype=np.float32)

    # --- episodes -------------------------------------------------------------------------------
    def reset(self, seed: int | None) -> np.ndarray:
        """Start new episodes for every member; returns the observations (num_envs, d)."""
        result = self.sim.reset(seed)
        n = self.num_envs
        self._cgm_window = np.repeat(result.cgm[:, None], self.options.cgm_len, axis=1)
        self.previous_bg = result.bg.copy()
        self._announced = result.meal_announcement_g.copy()
        self._elapsed_min = np.zeros(n, dtype=np.int64)
        interval = self.options.decision_interval_min
        self._iob = _iob_tracker(n, interval) if self.options.include_iob else None
        self._cob = _cob_tracker(n, interval) if self.options.include_cob else None
        return self._observe()

    def restart(self, envs: np.ndarray) -> np.ndarray:
        """Begin a new episode for the environments ``envs`` (indices) at the current time; their observations."""
        cgm, bg = self.sim.restart_members(envs)
        self._cgm_window[envs] = cgm[:, None]
        self.previous_bg[envs] = bg
        self._elapsed_min[envs] = 0
        for tracker in (self._iob, self._cob):
            if tracker is not None:
                tracker.clear(envs)
        return self._observe()[envs]

    # --- stepping -------------------------------------------------------------------------------
    def _actions(self, actions, dtype=None) -> np.ndarray:
        """The actions as one value per environment; anything else names what is wrong."""
        try:
            array = np.asarray(actions, dtype=dtype)
            if dtype is None and not np.issubdtype(array.dtype, np.number):
                raise TypeError(array.dtype)
        except (TypeError, ValueError):
            raise InvalidInputError([Problem("action", None, actions, "must be numbers")]) from None
        if array.size != self.num_envs:
            raise InvalidInputError([Problem("action", None, array.shape,
                                             f"must hold one value per environment ({self.num_envs})")])
        return array.reshape(self.num_envs)

    def rates_for(self, actions) -> np.ndarray:
        """Basal rates (U/h) of a batch of actions, checked against the action space."""
        if self.rate_table is None:
            rates = self._actions(actions, np.float64)
            valid = (rates >= 0.0) & (rates <= self.max_rate_u_per_h)
            if not valid.all():
                bad = np.flatnonzero(~valid)
                raise InvalidInputError([Problem("action", int(k), float(rates[k]),
                                                 f"basal rate must be in [0, {self.max_rate_u_per_h}] U/h")
                                         for k in bad[:10]])
            return rates
        index = self._actions(actions)
        k = self.rate_table.shape[1]
        valid = (index >= 0) & (index < k) & (index == np.round(index))
        if not valid.all():
            bad = np.flatnonzero(~valid)
            raise InvalidInputError([Problem("action", int(j), index[j].item(), f"must be an integer in [0, {k})")
                                     for j in bad[:10]])
        return self.rate_table[np.arange(self.num_envs), index.astype(np.intp)]

    def step(self, rates_u_per_h: np.ndarray, bolus_u: np.ndarray | None = None):
        """Advance every environment by one decision (basal rates in U/h, optional boluses in U given in its
        first minute); returns obs, reward, terminated, truncated, info."""
        options = self.options
        bolus = self._zero_bolus if bolus_u is None else bolus_u
        result = self.sim.step(rates_u_per_h, bolus, options.decision_interval_min)
        bg_minutes = result.bg_minutes
        cgm, bg, insulin_u, carbs_g = result.cgm, result.bg, result.insulin_u, result.carbs_g
        self._announced = result.meal_announcement_g
        self._elapsed_min += options.decision_interval_min
        window = self._cgm_window
        window[:, :-1] = window[:, 1:]
        window[:, -1] = cgm
        if self._iob is not None:
            self._iob.push(insulin_u)
        if self._cob is not None:
            self._cob.push(carbs_g)
        info = {"cgm": cgm, "bg": bg, "insulin_u": insulin_u, "carbs_g": carbs_g, "previous_bg": self.previous_bg}
        if isinstance(options.reward, str):
            reward = self.reward_function(bg_minutes, self.previous_bg)
        else:
            reward = np.asarray(self.reward_function(bg_minutes, info), dtype=np.float64).reshape(self.num_envs)
            bad = np.flatnonzero(~np.isfinite(reward))
            if bad.size:
                raise InvalidInputError([Problem("reward", int(j), float(reward[j]),
                                                 "the reward function returned a non-finite value") for j in bad])
        terminated = (bg_minutes.min(axis=-1) < self._low_bg) | (bg_minutes.max(axis=-1) > self._high_bg)
        if options.termination_penalty:
            reward = reward + options.termination_penalty * terminated
        if options.max_episode_minutes is None:
            truncated = np.zeros(self.num_envs, dtype=bool)
        else:
            truncated = (self._elapsed_min >= options.max_episode_minutes) & ~terminated
        self.previous_bg = bg.copy()
        info = {"bg": bg, "cgm": cgm, "insulin_u": insulin_u, "carbs_g": carbs_g,
                "episode_minutes": self._elapsed_min.copy()}
        return self._observe(), reward, terminated, truncated, info

    def _observe(self) -> np.ndarray:
        options = self.options
        observation = np.empty((self.num_envs, len(self.observation_names)), dtype=np.float32)
        column = options.cgm_len
        observation[:, :column] = self._cgm_window
        for tracker in (self._iob, self._cob):
            if tracker is not None:
                observation[:, column] = tracker.total()
                column += 1
        if options.include_time_of_day:
            angle = (2.0 * np.pi / 1440.0) * ((options.start_hour * 60.0 + self.sim.time_min) % 1440.0)
            observation[:, column] = math.sin(angle)
            observation[:, column + 1] = math.cos(angle)
            column += 2
        if options.announce_meals:
            observation[:, column] = self._announced
        return observation


def _options(kwargs: dict) -> EnvOptions:
    known = {f.name for f in fields(EnvOptions)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise InvalidInputError([Problem(name, None, kwargs[name], f"unknown option; expected one of {sorted(known)}")
                                 for name in unknown])
    if kwargs.get("discrete_doses_u_per_h") is not None:
        kwargs["discrete_doses_u_per_h"] = tuple(kwargs["discrete_doses_u_per_h"])
    return EnvOptions(**kwargs)


class T1DEnv(gymnasium.Env):
    """One virtual patient with CGM, pump and meals, controlled by a basal rate.

    Parameters
    ----------
    patient : str
        A simglucose patient name, e.g. ``"adolescent#001"``.
    render_mode : None
        No rendering is provided.
    **options
        Any field of :class:`EnvOptions`.

    ``step`` returns ``(observation, reward, terminated, truncated, info)`` with
    ``info`` holding the step's ``bg``, ``cgm`` (mg/dL), ``insulin_u`` (U
    delivered), ``carbs_g`` (g eaten), ``episode_minutes`` and ``risk`` (the
    Kovatchev risk of the last BG).
    """

    metadata = {"render_modes": []}

    def __init__(self, patient: str = "adolescent#001", render_mode=None, **options):
        if not isinstance(patient, str):
            raise InvalidInputError([Problem("patient", None, patient, "must be one patient name, e.g. 'adult#001'")])
        if patient in GROUPS or patient == "all":
            raise InvalidInputError([Problem("patient", None, patient, "a group, not one patient: name one "
                                             f"(e.g. '{patient if patient != 'all' else 'adult'}#001') or use "
                                             "T1DVectorEnv for a group")])
        self.render_mode = render_mode
        self.options = _options(options)
        self._core = _Core(patient, 1, self.options, seed=None)
        self.patient = self._core.patient_names[0]
        self.observation_space = self._core.observation_space
        self.action_space = self._core.action_space
        self.observation_names = self._core.observation_names
        self._user_reward = self.options.reward if callable(self.options.reward) else None
        if self._user_reward is not None:
            self._core.reward_function = self._batched_user_reward
        self._episode_over: str | None = "not reset yet"
        """Why step() may not run ("not reset yet", "terminated", "truncated"), or None."""

    def _batched_user_reward(self, bg_minutes, info):
        single = {key: (value[0] if isinstance(value, np.ndarray) else value) for key, value in info.items()}
        return np.array([float(self._user_reward(bg_minutes[0], single))])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode; ``seed`` replays one exactly, ``None`` gives a new one."""
        if seed is not None and not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
            raise InvalidInputError([Problem("seed", None, seed, "must be an integer or None")])
        super().reset(seed=seed)
        observation = self._core.reset(seed)[0]
        self._episode_over = None
        return observation, {"bg": float(self._core.previous_bg[0]), "patient": self.patient}

    def step(self, action):
        if self._episode_over is not None:
            raise RuntimeError(f"T1DEnv.step: the episode is {self._episode_over}; call reset() first"
                               if self._episode_over != "not reset yet" else "T1DEnv.step before reset(): call reset()")
        rates = self._core.rates_for(action)
        observation, reward, terminated, truncated, info = self._core.step(rates)
        if terminated[0] or truncated[0]:
            self._episode_over = "terminated" if terminated[0] else "truncated"
        bg = float(info["bg"][0])
        single = {key: float(value[0]) for key, value in info.items()}
        single["risk"] = float(metrics.kovatchev_risk(_risk_domain([bg]))[0])
        return observation[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), single


def _masked(info: dict, mask: np.ndarray) -> dict:
    """``info`` (arrays over the environments) with gymnasium's ``_key`` validity mask after every key."""
    infos = {}
    for key, value in info.items():
        infos[key] = value
        infos[f"_{key}"] = mask
    return infos


def _final_infos_gymnasium0(observations: np.ndarray, info: dict, done: np.ndarray) -> dict:
    """gymnasium 0.29's keys for the finished environments: object arrays of observations and info dicts."""
    final_observation = np.full(done.size, None, dtype=object)
    final_info = np.full(done.size, None, dtype=object)
    for j in np.flatnonzero(done):
        final_observation[j] = observations[j]
        final_info[j] = {key: value[j].item() for key, value in info.items()}
    return {"final_observation": final_observation, "_final_observation": done,
            "final_info": final_info, "_final_info": done.copy()}


def _final_infos_gymnasium1(observations: np.ndarray, info: dict, done: np.ndarray) -> dict:
    """gymnasium >= 1.0's same-step keys: ``final_obs`` (num_envs, d) and ``final_info``, a dict of
    arrays with ``_key`` masks (what its ``VectorEnv._add_info`` builds)."""
    return {"final_obs": observations, "_final_obs": done, "final_info": _masked(info, done),
            "_final_info": done.copy()}


_final_infos = _final_infos_gymnasium0 if AutoresetMode is None else _final_infos_gymnasium1


class T1DVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` episodes stepping together in one simulator batch.

    Parameters
    ----------
    patients : str, list of str or PatientParams
        Patients or groups; environment ``j`` runs patient ``j % P`` of the ``P``
        patients given (episode ``j // P``).
    num_envs : int or None
        Number of environments; ``None``: one per patient.
    **options
        Any field of :class:`EnvOptions`.

    Autoreset happens in the same step, as in gymnasium's vector environments
    (0.29, and ``AutoresetMode.SAME_STEP`` of gymnasium >= 1.0, declared in
    ``metadata["autoreset_mode"]``): when environment ``j`` terminates or is
    truncated, ``step`` returns the first observation of its next episode in
    ``observations[j]`` and the last one of the finished episode in the info:

    * gymnasium 0.29: ``infos["final_observation"][j]`` and ``infos["final_info"][j]``
      (object arrays; a dict of the step's ``info`` values of environment ``j``);
    * gymnasium >= 1.0: ``infos["final_obs"][j]`` (an array (num_envs, d)) and
      ``infos["final_info"]``, a dict of arrays over the environments, each ``key``
      with its ``_key`` mask;

    the masks ``_final_observation`` (``_final_obs``) and ``_final_info`` say
    which environments finished. The other environments are not touched. A new
    episode of one environment starts at the current simulated time of day, from
    the patient's initial state, and continues that environment's meal and
    sensor-noise streams; a ``reset(seed=s)`` of the whole vector replays
    everything exactly. Every other ``info`` key (``bg``, ``cgm``, ``insulin_u``,
    ``carbs_g``, ``episode_minutes``) is an array over the environments with a
    ``_key`` mask; as in gymnasium, the entries of a restarted environment are
    those of its reset: ``bg`` is its new BG, and the other keys are masked out.
    """

    metadata = {"render_modes": [], "autoreset_mode": "SameStep" if AutoresetMode is None else AutoresetMode.SAME_STEP}

    def __init__(self, patients="adult", num_envs: int | None = None, **options):
        self.options = _options(options)
        self._core = _Core(patients, num_envs, self.options, seed=None)
        self.num_envs = self._core.num_envs
        self.is_vector_env = True
        self.closed = False
        self.viewer = None
        self.render_mode = None
        self.single_observation_space = self._core.observation_space
        self.single_action_space = self._core.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.patient_names = self._core.patient_names
        self.observation_names = self._core.observation_names

    @property
    def simulator(self) -> Simulator:
        """The simulator batch: member ``j`` is environment ``j`` (``simulator.n == num_envs``)."""
        return self._core.sim

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset every environment; ``seed`` (one int) replays the whole batch exactly."""
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise InvalidInputError([Problem("seed", None, seed, "must be one integer for the whole batch, or None")])
        if seed is not None:
            self._np_random, _ = gymnasium.utils.seeding.np_random(int(seed))
        observations = self._core.reset(seed)
        return observations, {"bg": self._core.previous_bg.copy(), "_bg": self._core.all_true}

    def step(self, actions):
        return self.step_doses(self._core.rates_for(actions))

    def step_doses(self, rates_u_per_h: np.ndarray, bolus_u: np.ndarray | None = None):
        """:meth:`step` with the doses themselves: basal rates (U/h, (num_envs,)) and boluses (U, given in
        the decision's first minute; ``None``: none), limited only by the simulator's pump."""
        observations, rewards, terminated, truncated, info = self._core.step(rates_u_per_h, bolus_u)
        done = terminated | truncated
        if not done.any():
            return observations, rewards, terminated, truncated, _masked(info, self._core.all_true)
        envs = np.flatnonzero(done)
        final_observations = observations.copy()
        final_info = {key: value.copy() for key, value in info.items()}
        observations[envs] = self._core.restart(envs)
        infos = _masked(info, ~done)
        infos.update(bg=self._core.previous_bg.copy(), _bg=self._core.all_true)
        infos.update(_final_infos(final_observations, final_info, done))
        return observations, rewards, terminated, truncated, infos

    def close_extras(self, **kwargs):
        """Nothing to release: the batch lives in this process."""
