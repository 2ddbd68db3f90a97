"""Trained policies as controllers: :func:`load_policy` and :class:`PolicyController`.

A policy is a pair of files, ``<name>.zip`` (SB3 weights) and ``<name>.json``
(written by :func:`~pyloopkit.rl.train.train`: algorithm, patients, env options,
observation-normalisation statistics, seed, command, training time). The shipped
ones live in ``pyloopkit/rl/policies/`` and load without network.

:class:`PolicyController` has ``act(step) -> (basal_u_per_h, bolus_u)`` for
:func:`~pyloopkit.control.trial.run_trial`: every ``decision_interval_min`` of the
policy it builds the observation the policy was trained on from the
:class:`~pyloopkit.simulation.simulator.StepResult` (CGM; for Aura's features also
the CGM trend, time of day, IOB of the delivered insulin and time since the last
meal; for the ``"context"`` features also the carbs on board and announced,
relative to the patient's basal rate and carb ratio), normalises it as in
training, runs the policy (keeping one LSTM state per member) and holds the rate
until the next decision. A policy trained with ``meal_bolus`` also boluses at a
decision for the meals the simulator announces: run it on a simulator that
announces meals over the policy's decision interval
(``Simulator(..., announce_min=controller.announce_min)``), as in training;
other policies never bolus. With a :class:`~pyloopkit.rl.shield.Shield` the doses
pass Loop's guardrails, the suspend rule reading a 30-minute linear projection of
the CGM trend.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.rl import require_rl

require_rl()

import torch  # noqa: E402

from pyloopkit.rl.env import MEAL_CLOCK_CAP_MIN, RLOptions, aura_features, context_features, doses  # noqa: E402
from pyloopkit.rl.shield import Shield, default_shield, projected_min_mg_dl  # noqa: E402
from pyloopkit.rl.train import group_of, model_class, policy_name  # noqa: E402
from pyloopkit.simulation.envs import _cob_tracker, _iob_tracker  # noqa: E402
from pyloopkit.simulation.patients import PatientParams, load_patients  # noqa: E402

POLICY_DIR = Path(__file__).parent / "policies"


def shipped_policies() -> list[str]:
    """Names (file stems) of the shipped policies."""
    return sorted(path.stem for path in POLICY_DIR.glob("*.json"))


def policy_path(algo: str, group: str | None = None, patient: str | None = None) -> Path:
    """The shipped policy's ``.zip`` for ``patient`` if there is one, else for ``group`` (by default the
    patient's own group: ``child#003`` falls back to the ``child`` policy)."""
    if group is None and patient is not None:
        group = group_of(patient)
    candidates = [policy_name(algo, who) for who in (patient, group) if who is not None]
    if not candidates:
        raise InvalidInputError([Problem("group", None, None, "give a group or a patient")])
    for name in candidates:
        if (POLICY_DIR / f"{name}.zip").exists():
            return POLICY_DIR / f"{name}.zip"
    raise InvalidInputError([Problem("patient" if patient else "group", None, patient or group,
                                     f"no shipped {algo} policy ({', '.join(candidates)}); "
                                     f"shipped: {', '.join(shipped_policies())}")])


def load_policy(algo: str, group: str | None = None, patient: str | None = None, *, path: str | Path | None = None,
                shield: Shield | bool | None = None) -> "PolicyController":
    """A shipped (or saved) policy as a controller.

    Parameters
    ----------
    algo : "ppo-lstm" or "dqn"
    group, patient : str or None
        Which shipped policy: the patient's own if shipped, else the group's (by default the patient's
        group). A ``patient`` also binds the controller to that patient (:meth:`PolicyController.bind`).
    path : path or None
        A policy's ``.zip`` or ``.json`` instead of a shipped one.
    shield : Shield, True or None
        Guardrails on the rate; ``True``: :meth:`PolicyController.default_shield`.

    Returns
    -------
    PolicyController
        Call :meth:`PolicyController.bind` with the simulator's patients before a
        trial on other patients than the one it was loaded for.
    """
    zip_path = Path(path).with_suffix(".zip") if path is not None else policy_path(algo, group, patient)
    meta = json.loads(zip_path.with_suffix(".json").read_text())
    if meta["algo"] != algo:
        raise InvalidInputError([Problem("algo", None, algo, f"{zip_path.name} is a {meta['algo']} policy")])
    torch.set_num_threads(1)
    model = model_class(algo).load(zip_path, device="cpu")
    controller = PolicyController(model, meta)
    if patient is not None and path is None:
        controller.bind(patient)
    if shield is True:
        controller.auto_shield = True
    elif shield is not None and shield is not False:
        controller.shield = shield
    return controller


class PolicyController:
    """A trained policy driving a batch of simulator members (see the module docstring).

    Parameters
    ----------
    model : SB3 model
        ``RecurrentPPO`` or ``DQN``.
    meta : dict
        The policy's JSON metadata.
    """

    def __init__(self, model, meta: dict):
        self.model = model
        self.meta = meta
        self.algo = meta["algo"]
        self.options = RLOptions.from_dict(meta["options"])
        self.recurrent = self.algo == "ppo-lstm"
        if self.recurrent:
            model.policy.set_training_mode(False)
        self._mean = np.asarray(meta["obs_mean"], dtype=np.float64)
        self._std = np.sqrt(np.asarray(meta["obs_var"], dtype=np.float64) + meta["epsilon"])
        self._clip = float(meta["clip_obs"])
        self.basal_u_per_h = self.carb_ratio_g_per_u = self.cf_mg_dl_per_u = None
        self.shield = None
        #: Use :meth:`default_shield` of the bound patients (``load_policy(..., shield=True)``).
        self.auto_shield = False
        self.reset()

    # --- set-up ---------------------------------------------------------------------------------
    @property
    def announce_min(self) -> int | None:
        """The simulator's meal-announcement window (min) this policy expects: its decision interval for a
        ``meal_bolus`` policy, ``None`` (the simulator's default) otherwise."""
        return int(self.options.decision_interval_min) if self.options.meal_bolus else None

    def bind(self, patients: PatientParams | str | list) -> "PolicyController":
        """Use the basal rates, carb ratios and correction factors of ``patients`` (one per member, e.g.
        ``Simulator.patients``)."""
        patients = patients if isinstance(patients, PatientParams) else load_patients(patients)
        self.basal_u_per_h = patients.basal_u_per_min * 60.0
        self.carb_ratio_g_per_u = np.asarray(patients.CR, dtype=np.float64)
        self.cf_mg_dl_per_u = np.asarray(patients.CF, dtype=np.float64)
        return self

    def guard(self, input_dict: dict, output: dict) -> dict:
        """``update()``'s ``output`` with this policy's basal rate behind Loop's guardrails (what
        ``update(input_dict, dosing_policy=self)`` calls; see :func:`pyloopkit.rl.guarded.guard_output`)."""
        from .guarded import guard_output

        return guard_output(input_dict, output, self)

    def default_shield(self) -> Shield:
        """:func:`pyloopkit.rl.shield.default_shield` with max basal ``max_basal_multiple`` times the
        largest bound basal (the training env's ``shield`` option uses the same)."""
        basal = self.basal_u_per_h if self.basal_u_per_h is not None else self._basal(1)
        return default_shield(self.options.max_basal_multiple * basal.max(), self.options.meal_bolus)

    def reset(self) -> None:
        """Forget the episode (called by ``run_trial`` after the simulator's reset)."""
        self._next_decision_min = 0.0
        self._state = None
        self._n = None

    def _basal(self, n: int) -> np.ndarray:
        """The bound basal rates (U/h) of ``n`` members (a single-patient policy binds its own patient)."""
        if self.basal_u_per_h is None:
            own = load_patients(self.meta["patients"])
            if own.n != 1:
                raise InvalidInputError([Problem("patients", None, self.meta["patients"],
                                                 "a group policy needs bind(simulator.patients) before use")])
            self.bind(own)
        if self.basal_u_per_h.size == 1 and n > 1:
            self.basal_u_per_h, self.carb_ratio_g_per_u, self.cf_mg_dl_per_u = (
                np.repeat(values, n) for values in (self.basal_u_per_h, self.carb_ratio_g_per_u, self.cf_mg_dl_per_u))
        if self.basal_u_per_h.size != n:
            raise InvalidInputError([Problem("step.cgm", None, n, f"the controller is bound to "
                                                                  f"{self.basal_u_per_h.size} members")])
        return self.basal_u_per_h

    def _start(self, n: int, cgm: np.ndarray) -> None:
        interval = self.options.decision_interval_min
        self._n = n
        self._rate = np.zeros(n)
        self._episode_start = np.ones(n, dtype=bool)
        self._cgm_window = np.repeat(cgm[:, None], 2, axis=1)
        self._iob = _iob_tracker(n, interval)
        self._cob = _cob_tracker(n, interval)
        self._insulin_since = np.zeros(n)
        self._carbs_since = np.zeros(n)
        self._since_meal = np.full(n, MEAL_CLOCK_CAP_MIN)

    # --- control --------------------------------------------------------------------------------
    def observe(self, step) -> np.ndarray:
        """The policy's raw (unnormalised) observation at a decision, (n, d)."""
        if self.options.observation == "cgm":
            return np.asarray(step.cgm, dtype=np.float32)[:, None]
        if self.options.observation == "context":
            return context_features(self._cgm_window, self._iob.total(), self._cob.total(),
                                    np.asarray(step.meal_announcement_g, dtype=np.float64), self.basal_u_per_h,
                                    self.carb_ratio_g_per_u, self.cf_mg_dl_per_u, self.options.decision_interval_min)
        angle = 2.0 * np.pi * (float(step.time_min) % 1440.0) / 1440.0
        return aura_features(self._cgm_window, np.array([np.sin(angle), np.cos(angle)]), self._iob.total(),
                             self._since_meal, self.options.decision_interval_min)

    def act(self, step) -> tuple[np.ndarray, np.ndarray]:
        """``(basal_u_per_h (n,), bolus_u (n,))`` for the next simulator step."""
        cgm = np.asarray(step.cgm, dtype=np.float64)
        n = cgm.size
        basal = self._basal(n)
        if self.auto_shield:
            self.shield = self.default_shield()
        if self._n is None:
            self._start(n, cgm)
        else:
            self._insulin_since += step.insulin_u
            self._carbs_since += step.carbs_g
        bolus = np.zeros(n)
        if float(step.time_min) >= self._next_decision_min:
            interval = self.options.decision_interval_min
            if float(step.time_min) > 0:
                self._iob.push(self._insulin_since)
                self._cob.push(self._carbs_since)
                self._since_meal = np.where(self._carbs_since > 0, interval / 2.0, self._since_meal + interval)
                self._cgm_window = np.column_stack([self._cgm_window[:, -1], cgm])
            self._insulin_since[:] = 0.0
            self._carbs_since[:] = 0.0
            observation = np.clip((self.observe(step) - self._mean) / self._std, -self._clip, self._clip)
            meal_u = np.asarray(step.meal_announcement_g, dtype=np.float64) / self.carb_ratio_g_per_u
            self._rate, bolus = doses(self.propose(observation.astype(np.float32)), basal, meal_u, self.options)
            if self.shield is not None:
                projected = projected_min_mg_dl(self._cgm_window, interval)
                self._rate, bolus, _ = self.shield.apply(self._rate, bolus, projected)
            self._next_decision_min = float(step.time_min) + interval
        return self._rate.copy(), bolus

    def recommend(self, features: dict) -> float:
        """One patient's basal rate (U/h): the rate of :meth:`recommend_doses`."""
        return self.recommend_doses(features)[0]

    def recommend_doses(self, features: dict) -> tuple[float, float]:
        """One patient's basal rate (U/h) and bolus (U) from observation features (the keys of
        :func:`pyloopkit.rl.guarded.observation_from_input`); advances the LSTM state, so call it once
        per decision. The basal action multiplies ``features["scheduled_basal_u_per_h"]``; a meal-bolus
        policy's bolus is a fraction of ``announced_g / carb_ratio_g_per_u`` (0 for other policies).
        Loop's carbs on board include the announced carbs, which the training env's did not (they were
        not eaten yet): they are taken out of the COB feature."""
        interval = self.options.decision_interval_min
        cgm = np.array([[features["cgm_mg_dl"] - features["trend_mg_dl_per_min"] * interval, features["cgm_mg_dl"]]])
        basal = np.array([features["scheduled_basal_u_per_h"]])
        carb_ratio = np.array([features.get("carb_ratio_g_per_u", np.nan)])
        announced = np.array([features.get("announced_g", 0.0)])
        if self.options.observation == "cgm":
            raw = np.array([[features["cgm_mg_dl"]]], dtype=np.float32)
        elif self.options.observation == "context":
            cob = np.maximum(np.array([features["cob_g"]]) - announced, 0.0)
            raw = context_features(cgm, np.array([features["iob_u"]]), cob, announced, basal, carb_ratio,
                                   np.array([features["cf_mg_dl_per_u"]]), interval)
        else:
            angle = 2.0 * np.pi * features["minute_of_day"] / 1440.0
            raw = aura_features(cgm, np.array([np.sin(angle), np.cos(angle)]), np.array([features["iob_u"]]),
                                np.array([features["minutes_since_meal"]]), interval)
        if self._n != 1:
            self._start(1, raw[:, 0].astype(np.float64))
        observation = np.clip((raw - self._mean) / self._std, -self._clip, self._clip).astype(np.float32)
        meal_u = announced / carb_ratio if self.options.meal_bolus else np.zeros(1)
        rate, bolus = doses(self.propose(observation), basal, meal_u, self.options)
        return float(rate[0]), float(bolus[0])

    def propose(self, observation: np.ndarray) -> np.ndarray:
        """The policy's deterministic actions for normalised observations (n, d); advances the LSTM state.

        The recurrent policy runs its actor directly (features, actor LSTM, actor MLP, action mean: the
        mode of SB3's diagonal Gaussian, which its ``predict(deterministic=True)`` returns) with the LSTM
        state kept as tensors, skipping ``predict``'s per-call conversions (a third of its time).
        """
        if not self.recurrent:
            action, _ = self.model.predict(observation, deterministic=True)
            return action
        policy = self.model.policy
        with torch.no_grad():
            obs = torch.from_numpy(np.ascontiguousarray(observation, dtype=np.float32))
            if self._state is None:
                zeros = torch.zeros((policy.lstm_actor.num_layers, obs.shape[0], policy.lstm_actor.hidden_size))
                self._state = (zeros, zeros.clone())
            starts = torch.from_numpy(self._episode_start.astype(np.float32))
            features = policy.pi_features_extractor(obs)
            latent, self._state = policy._process_sequence(features, self._state, starts, policy.lstm_actor)
            mean = policy.action_net(policy.mlp_extractor.forward_actor(latent))
        self._episode_start = np.zeros(obs.shape[0], dtype=bool)
        return np.clip(mean.numpy(), -1.0, 1.0)
