"""Learning environments: an SB3 ``VecEnv`` over one batched simulator, and its single-patient face.

:class:`BasalVecEnv` drives a :class:`~pyloopkit.simulation.envs.T1DVectorEnv`
(every member in one compiled simulator step, no Python loop per member) and
presents it to Stable-Baselines3 as a ``VecEnv`` (``step_async``/``step_wait``,
``terminal_observation`` and ``TimeLimit.truncated`` in the infos). SB3 cannot use
the gymnasium vector env itself: it wraps anything that is not its own ``VecEnv``
in a ``DummyVecEnv`` of single environments, which fails on batched arrays
(``TypeError: only 0-dimensional arrays can be converted to Python scalars``).

Per decision (every ``decision_interval_min`` minutes; the paper uses 15/30/45 for
children/adolescents/adults) the agent sets a basal rate relative to its patient's
steady-state basal ``b = u2ss * BW / 6000 * 60`` U/h:

* ``action="basal_multiple"``: ``Box(-1, 1, (1,))``; ``a`` maps to
  ``(a + 1) / 2 * max_basal_multiple * b`` U/h (0 to 4x basal by default);
* ``action="discrete"``: ``Discrete(k)`` choosing ``discrete_basal_multiples[i] * b``.

With ``meal_bolus=True`` the agent also doses the meal announced for the coming
decision (grams ``g`` of the meals that start within it; the patient's carb ratio
``CR`` g/U): a bolus of ``f * g / CR`` U given in the decision's first minute, where
``f`` is a second action component in ``[-1, 1]`` mapped to ``0..max_bolus_fraction``
(continuous), or ``discrete_bolus_fractions[i]`` (discrete actions then index the
pairs ``(basal multiple, bolus fraction)``, basal-major). The agent can thus learn
to bolus less than the carb ratio says for patients whose settings overdose.

Observations (float32):

* ``"cgm"``: the last CGM reading (mg/dL), the paper's observation;
* ``"aura"``: Aura's ``[glucose (mg/dL), trend (mg/dL/min over the last decision),
  sin and cos of the time of day, insulin on board (U, Loop's exponential curve over
  the delivered insulin), minutes since the last meal started (capped at 1440)]``;
* ``"context"``: features relative to the patient, so that one policy can dose a
  whole group: ``[glucose (mg/dL), trend (mg/dL/min over the last decision),
  insulin on board / b (hours of basal), carbs on board / CR / b and carbs announced
  for the coming decision / CR / b (hours of basal that cover them), CF * b
  (mg/dL that an hour of basal lowers BG, by the patient's correction factor)]``.

Rewards, computed on the true BG of every minute of the decision:

* ``"in_range"``: the paper's +1 per 3-minute step with 70 <= BG <= 180 mg/dL,
  i.e. (minutes in range) / 3;
* ``"tiered"``: a tiered time-in-range reward in the spirit of Aura's, per minute
  +1 in 70-180, 0 in 180-250, -1 above 250, -2 in 54-70 and -4 below 54 mg/dL,
  summed over the decision and divided by 3 (so a decision in range scores as in
  ``"in_range"``); hypoglycaemia loses more than hyperglycaemia.

With ``shield=True`` the doses pass :func:`pyloopkit.rl.shield.default_shield`
before they reach the simulator (zero delivery when the CGM or its 30-minute
projection is below 70 mg/dL, max bolus, pump increments), the same guardrails as
the trial controller's ``shield=True``: the agent learns behind them.

An episode terminates when a minute's BG leaves ``termination_bounds`` (10 to
1000 mg/dL) and is truncated after ``episode_days``; 3-day episodes keep a
recurrent policy from learning an episode clock (with 1-day episodes every member
restarts at midnight from steady state).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.rl import require_rl

require_rl()

import gymnasium  # noqa: E402
from gymnasium import spaces  # noqa: E402
from stable_baselines3.common.vec_env import VecEnv  # noqa: E402

from pyloopkit import metrics  # noqa: E402
from pyloopkit.rl.shield import default_shield, projected_min_mg_dl  # noqa: E402
from pyloopkit.simulation.envs import T1DVectorEnv  # noqa: E402

OBSERVATIONS = ("cgm", "aura", "context")
ACTIONS = ("basal_multiple", "discrete")
REWARDS = ("in_range", "tiered")
#: Names of the ``"aura"`` observation columns.
AURA_FEATURES = ("cgm_mg_dl", "trend_mg_dl_per_min", "sin_time_of_day", "cos_time_of_day", "iob_u",
                 "minutes_since_meal")
#: Names of the ``"context"`` observation columns.
CONTEXT_FEATURES = ("cgm_mg_dl", "trend_mg_dl_per_min", "iob_basal_h", "cob_basal_h", "announced_basal_h",
                    "sensitivity_mg_dl_per_basal_h")
#: Cap of the minutes-since-meal feature.
MEAL_CLOCK_CAP_MIN = 1440.0
#: Tiered reward per minute: below 54, 54 to <70, 70-180, >180 to 250, above 250 mg/dL.
TIER_VALUES = (-4.0, -2.0, 1.0, 0.0, -1.0)
#: The paper's reward counts 3-minute CGM steps.
PAPER_STEP_MIN = 3.0


@dataclass(frozen=True)
class RLOptions:
    """Options of :class:`BasalVecEnv` (and of the policies trained on it).

    Attributes
    ----------
    decision_interval_min : int
        Minutes between decisions.
    observation : "cgm" or "aura"
    action : "basal_multiple" or "discrete"
    max_basal_multiple : float
        Upper end of the continuous action, in multiples of the basal rate.
    discrete_basal_multiples : tuple of float
        Rates of the discrete actions, in multiples of the basal rate.
    meal_bolus : bool
        Add the meal bolus of the announced carbs to the action (see the module docstring).
    max_bolus_fraction : float
        Upper end of the continuous bolus component, in multiples of carbs / CR.
    discrete_bolus_fractions : tuple of float
        Bolus fractions of the discrete actions.
    shield : bool
        Pass the doses through the simulation shield (see the module docstring).
    reward : "in_range" or "tiered"
    episode_days : float
        Episode length (days) before truncation.
    termination_bounds : (float, float)
        BG (mg/dL) below the first or above the second value ends the episode.
    termination_penalty : float
        Added to the reward of the terminating decision (negative: a penalty). With a reward that is
        mostly negative (``"tiered"``) a termination otherwise ends the penalties, which pays.
    sensor, pump, scenario :
        Passed to the simulator.
    """

    decision_interval_min: int = 30
    observation: str = "cgm"
    action: str = "basal_multiple"
    max_basal_multiple: float = 4.0
    discrete_basal_multiples: tuple = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
    meal_bolus: bool = False
    max_bolus_fraction: float = 1.5
    discrete_bolus_fractions: tuple = (0.0, 0.5, 0.75, 1.0)
    shield: bool = False
    reward: str = "in_range"
    episode_days: float = 3.0
    termination_bounds: tuple = (10.0, 1000.0)
    termination_penalty: float = 0.0
    sensor: str = "Dexcom"
    pump: str = "Insulet"
    scenario: str = "random"

    def __post_init__(self):
        problems = []

        def check(name, ok, reason):
            if not ok:
                problems.append(Problem(name, None, getattr(self, name), reason))

        interval = self.decision_interval_min
        check("decision_interval_min", isinstance(interval, (int, np.integer)) and not isinstance(interval, bool)
              and interval >= 1, "must be an integer >= 1 (minutes)")
        check("observation", self.observation in OBSERVATIONS, f"must be one of {OBSERVATIONS}")
        check("action", self.action in ACTIONS, f"must be one of {ACTIONS}")
        check("reward", self.reward in REWARDS, f"must be one of {REWARDS}")
        check("max_basal_multiple", np.isfinite(self.max_basal_multiple) and self.max_basal_multiple > 0,
              "must be finite and > 0")
        for name in ("discrete_basal_multiples", "discrete_bolus_fractions"):
            values = np.asarray(getattr(self, name), dtype=float)
            check(name, values.ndim == 1 and values.size >= 2 and np.all(np.isfinite(values) & (values >= 0)),
                  "must be >= 2 finite values >= 0")
        for name in ("meal_bolus", "shield"):
            check(name, isinstance(getattr(self, name), bool), "must be True or False")
        check("max_bolus_fraction", np.isfinite(self.max_bolus_fraction) and self.max_bolus_fraction > 0,
              "must be finite and > 0")
        check("episode_days", np.isfinite(self.episode_days) and self.episode_days > 0
              and float(self.episode_days * 1440).is_integer(), "must be > 0 days, a whole number of minutes")
        if problems:
            raise InvalidInputError(problems)

    def to_dict(self) -> dict:
        """JSON-ready options."""
        out = asdict(self)
        out["discrete_basal_multiples"] = list(self.discrete_basal_multiples)
        out["discrete_bolus_fractions"] = list(self.discrete_bolus_fractions)
        out["termination_bounds"] = list(self.termination_bounds)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "RLOptions":
        """Options from :meth:`to_dict`'s output (or any subset of the fields)."""
        values = dict(values)
        for key in ("discrete_basal_multiples", "discrete_bolus_fractions", "termination_bounds"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def in_range_reward(bg_minutes: np.ndarray) -> np.ndarray:
    """The paper's reward: 3-minute steps with 70 <= BG <= 180 mg/dL, from (n, minutes) BG -> (n,)."""
    inside = (bg_minutes >= metrics.LOW_MG_DL) & (bg_minutes <= metrics.HIGH_MG_DL)
    return np.count_nonzero(inside, axis=-1) / PAPER_STEP_MIN


def tiered_reward(bg_minutes: np.ndarray) -> np.ndarray:
    """Tiered reward (see the module docstring), from (n, minutes) BG in mg/dL -> (n,)."""
    bg = np.asarray(bg_minutes, dtype=np.float64)
    tiers = [bg < metrics.VERY_LOW_MG_DL, bg < metrics.LOW_MG_DL, bg <= metrics.HIGH_MG_DL,
             bg <= metrics.VERY_HIGH_MG_DL]
    return np.select(tiers, TIER_VALUES[:4], TIER_VALUES[4]).sum(axis=-1) / PAPER_STEP_MIN


_REWARDS = {"in_range": in_range_reward, "tiered": tiered_reward}


def doses(action: np.ndarray, basal_u_per_h: np.ndarray, meal_bolus_u: np.ndarray,
          options: RLOptions) -> tuple[np.ndarray, np.ndarray]:
    """Basal rates (U/h) and boluses (U) of a batch of actions.

    Parameters
    ----------
    action : ndarray
        ``(n, 1)`` or, with ``meal_bolus``, ``(n, 2)`` values in [-1, 1], or ``(n,)`` discrete indices.
        Continuous actions outside [-1, 1] are clipped (SB3's continuous policies sample an unbounded
        Gaussian and clip it the same way); discrete indices must be valid.
    basal_u_per_h : ndarray (n,)
        Each member's basal rate (U/h), the unit of the basal action.
    meal_bolus_u : ndarray (n,)
        Each member's announced carbs / carb ratio (U), the unit of the bolus action (ignored without
        ``options.meal_bolus``).
    options : RLOptions

    Returns
    -------
    (ndarray, ndarray)
        Basal rates (U/h) and boluses (U), shape (n,) each.
    """
    basal_u_per_h = np.asarray(basal_u_per_h, dtype=np.float64)
    n = basal_u_per_h.shape[0]
    if options.action == "basal_multiple":
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(n, -1), -1.0, 1.0)
        rate = (a[:, 0] + 1.0) * 0.5 * options.max_basal_multiple * basal_u_per_h
        if not options.meal_bolus:
            return rate, np.zeros(n)
        return rate, (a[:, 1] + 1.0) * 0.5 * options.max_bolus_fraction * np.asarray(meal_bolus_u, dtype=np.float64)
    multiples = np.asarray(options.discrete_basal_multiples, dtype=np.float64)
    fractions = np.asarray(options.discrete_bolus_fractions if options.meal_bolus else (0.0,), dtype=np.float64)
    k = multiples.size * fractions.size
    index = np.asarray(action).reshape(n)
    valid = (index >= 0) & (index < k) & (index == np.round(index))
    if not valid.all():
        raise InvalidInputError([Problem("action", int(j), index[j].item(), f"must be an integer in [0, {k})")
                                 for j in np.flatnonzero(~valid)[:10]])
    basal_index, bolus_index = np.divmod(index.astype(np.intp), fractions.size)
    bolus = fractions[bolus_index] * np.asarray(meal_bolus_u, dtype=np.float64) if options.meal_bolus else np.zeros(n)
    return multiples[basal_index] * basal_u_per_h, bolus


def observation_space(options: RLOptions) -> spaces.Box:
    """The observation space of ``options``."""
    big = np.finfo(np.float32).max
    if options.observation == "cgm":
        return spaces.Box(0.0, 1000.0, shape=(1,), dtype=np.float32)
    if options.observation == "context":
        low = np.array([0.0, -big, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)
        high = np.array([1000.0, big, big, big, big, big], dtype=np.float32)
        return spaces.Box(low, high, dtype=np.float32)
    low = np.array([0.0, -big, -1.0, -1.0, 0.0, 0.0], dtype=np.float32)
    high = np.array([1000.0, big, 1.0, 1.0, big, MEAL_CLOCK_CAP_MIN], dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32)


def action_space(options: RLOptions) -> spaces.Space:
    """The action space of ``options``."""
    if options.action == "basal_multiple":
        return spaces.Box(-1.0, 1.0, shape=(2 if options.meal_bolus else 1,), dtype=np.float32)
    fractions = len(options.discrete_bolus_fractions) if options.meal_bolus else 1
    return spaces.Discrete(len(options.discrete_basal_multiples) * fractions)


def context_features(cgm_window: np.ndarray, iob_u: np.ndarray, cob_g: np.ndarray, announced_g: np.ndarray,
                     basal_u_per_h: np.ndarray, carb_ratio_g_per_u: np.ndarray, cf_mg_dl_per_u: np.ndarray,
                     interval_min: float) -> np.ndarray:
    """The ``"context"`` observation (:data:`CONTEXT_FEATURES`) from the CGM at the last two decisions
    (n, 2) in mg/dL, IOB (n,) in U, carbs on board and announced (n,) in g, and the patients' basal rate
    (U/h), carb ratio (g/U) and correction factor (mg/dL/U), each (n,)."""
    out = np.empty((cgm_window.shape[0], len(CONTEXT_FEATURES)), dtype=np.float32)
    out[:, 0] = cgm_window[:, -1]
    out[:, 1] = (cgm_window[:, -1] - cgm_window[:, 0]) / interval_min
    out[:, 2] = iob_u / basal_u_per_h
    out[:, 3] = cob_g / carb_ratio_g_per_u / basal_u_per_h
    out[:, 4] = announced_g / carb_ratio_g_per_u / basal_u_per_h
    out[:, 5] = cf_mg_dl_per_u * basal_u_per_h
    return out


def aura_features(cgm_window: np.ndarray, time_of_day: np.ndarray, iob_u: np.ndarray,
                  minutes_since_meal: np.ndarray, interval_min: float) -> np.ndarray:
    """Aura's observation from the CGM at the last two decisions (n, 2), ``[sin, cos]`` (n, 2) or (2,),
    IOB (n,) in U and minutes since the last meal (n,)."""
    n = cgm_window.shape[0]
    out = np.empty((n, len(AURA_FEATURES)), dtype=np.float32)
    out[:, 0] = cgm_window[:, -1]
    out[:, 1] = (cgm_window[:, -1] - cgm_window[:, 0]) / interval_min
    out[:, 2:4] = time_of_day
    out[:, 4] = iob_u
    out[:, 5] = np.minimum(minutes_since_meal, MEAL_CLOCK_CAP_MIN)
    return out


class BasalVecEnv(VecEnv):
    """Stable-Baselines3 ``VecEnv`` of ``num_envs`` members of one simulator batch.

    Parameters
    ----------
    patients : str, list of str
        A patient (``"adult#001"``), a group (``"child"``) or a list; member ``j``
        is patient ``j % P`` of the ``P`` patients (a population policy trains on
        every patient of its group at once).
    num_envs : int or None
        Members; ``None``: one per patient.
    seed : int or None
        Seed of the first reset (meals, sensor noise); later resets continue the streams.
    options : RLOptions or None
    **kwargs
        Fields of :class:`RLOptions` (instead of ``options``).
    """

    def __init__(self, patients="adult#001", num_envs: int | None = None, seed: int | None = None,
                 options: RLOptions | None = None, **kwargs):
        self.options = options if options is not None else RLOptions(**kwargs)
        o = self.options
        aura, context = o.observation == "aura", o.observation == "context"
        self._announce = context or o.meal_bolus
        self._reward = _REWARDS[o.reward]
        self._venv = T1DVectorEnv(
            patients, num_envs, decision_interval_min=int(o.decision_interval_min),
            observation="cgm" if o.observation == "cgm" else "history", history_len=2,
            include_iob=aura or context, include_cob=context, include_time_of_day=aura,
            announce_meals=self._announce, action="continuous", max_basal_u_per_h=1e6,
            reward=lambda bg_minutes, info: self._reward(bg_minutes),
            termination_bounds=tuple(o.termination_bounds), termination_penalty=float(o.termination_penalty),
            max_episode_minutes=int(round(o.episode_days * 1440)),
            sensor=o.sensor, pump=o.pump, scenario=o.scenario)
        self.patient_names = list(self._venv.patient_names)
        members = self._venv.simulator.patients
        self.basal_u_per_h = members.basal_u_per_min * 60.0
        self.carb_ratio_g_per_u = np.asarray(members.CR, dtype=np.float64)
        self.cf_mg_dl_per_u = np.asarray(members.CF, dtype=np.float64)
        self._shield = (default_shield(o.max_basal_multiple * self.basal_u_per_h.max(), o.meal_bolus)
                        if o.shield else None)
        self._seed = seed
        self._actions = None
        n = self._venv.num_envs
        self._since_meal = np.full(n, MEAL_CLOCK_CAP_MIN)
        self.render_mode = None
        super().__init__(n, observation_space(o), action_space(o))

    # --- observations ---------------------------------------------------------------------------
    def _features(self, raw: np.ndarray, members=slice(None)) -> np.ndarray:
        """The agent's observation of members ``members`` from the vector env's raw rows of them."""
        observation, interval = self.options.observation, self.options.decision_interval_min
        if observation == "cgm":
            return np.ascontiguousarray(raw[:, :1], dtype=np.float32)
        if observation == "aura":
            return aura_features(raw[:, :2], raw[:, 3:5], raw[:, 2], self._since_meal[members], interval)
        return context_features(raw[:, :2], raw[:, 2], raw[:, 3], raw[:, 4], self.basal_u_per_h[members],
                                self.carb_ratio_g_per_u[members], self.cf_mg_dl_per_u[members], interval)

    def _cgm(self, raw: np.ndarray) -> np.ndarray:
        """The last CGM (mg/dL) of raw rows."""
        return raw[:, 0 if self.options.observation == "cgm" else 1].astype(np.float64)

    def _meal_bolus_u(self, raw: np.ndarray) -> np.ndarray:
        """Carbs announced for the coming decision / carb ratio (U) of every member (0 without announcements)."""
        if not self._announce:
            return np.zeros(self.num_envs)
        return raw[:, -1].astype(np.float64) / self.carb_ratio_g_per_u

    # --- VecEnv ---------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        """Reset every member (with the seed given to :meth:`seed` or the constructor, once)."""
        raw, _ = self._venv.reset(seed=self._seed)
        self._seed = None
        self._since_meal[:] = MEAL_CLOCK_CAP_MIN
        self._meal_u = self._meal_bolus_u(raw)
        self._cgm_window = np.repeat(self._cgm(raw)[:, None], 2, axis=1)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._features(raw)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        rates, bolus_u = doses(self._actions, self.basal_u_per_h, self._meal_u, self.options)
        if self._shield is not None:
            projected = projected_min_mg_dl(self._cgm_window, self.options.decision_interval_min)
            rates, bolus_u, _ = self._shield.apply(rates, bolus_u, projected)
        raw, rewards, terminated, truncated, info = self._venv.step_doses(
            rates, bolus_u if self.options.meal_bolus else None)
        self._meal_u = self._meal_bolus_u(raw)
        self._cgm_window = np.column_stack([self._cgm_window[:, -1], self._cgm(raw)])
        done = terminated | truncated
        interval = self.options.decision_interval_min
        self._since_meal = np.where(info["carbs_g"] > 0, interval / 2.0, self._since_meal + interval)
        infos = [{} for _ in range(self.num_envs)]
        if done.any():
            finished = np.flatnonzero(done)
            final = (info["final_obs"][finished] if "final_obs" in info  # gymnasium >= 1.0
                     else np.stack([info["final_observation"][j] for j in finished]))
            terminal = self._features(final, finished)
            self._since_meal[finished] = MEAL_CLOCK_CAP_MIN
            self._cgm_window[finished, 0] = self._cgm_window[finished, 1]
            for row, j in enumerate(finished):
                infos[j]["terminal_observation"] = terminal[row]
                infos[j]["TimeLimit.truncated"] = bool(truncated[j] and not terminated[j])
                infos[j]["terminated"] = bool(terminated[j])
        return self._features(raw), rewards.astype(np.float32), done, infos

    def seed(self, seed: int | None = None):
        """Seed of the next reset."""
        self._seed = seed
        return [seed] * self.num_envs

    def close(self) -> None:
        self._venv.close()

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [getattr(self, method_name)(*method_args, **method_kwargs)] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._indices(indices))

    def _indices(self, indices):
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else indices


class BasalEnv(gymnasium.Env):
    """One patient of :class:`BasalVecEnv` as a ``gymnasium.Env`` (same options, spaces and rewards).

    Parameters
    ----------
    patient : str
        One patient name.
    **kwargs
        Fields of :class:`RLOptions`.
    """

    metadata = {"render_modes": []}

    def __init__(self, patient: str = "adult#001", render_mode=None, **kwargs):
        self.render_mode = render_mode
        self._vec = BasalVecEnv(patient, 1, **kwargs)
        if self._vec.num_envs != 1:
            raise InvalidInputError([Problem("patient", None, patient, "must name one patient")])
        self.observation_space = self._vec.observation_space
        self.action_space = self._vec.action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._vec.seed(int(seed))
        return self._vec.reset()[0], {}

    def step(self, action):
        self._vec.step_async(np.asarray(action)[None])
        observation, reward, done, infos = self._vec.step_wait()
        info = infos[0]
        if done[0]:
            observation = info["terminal_observation"][None]
            return observation[0], float(reward[0]), info["terminated"], info["TimeLimit.truncated"], {}
        return observation[0], float(reward[0]), False, False, {}
