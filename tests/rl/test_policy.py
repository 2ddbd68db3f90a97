"""Shipped policies: loading, control in run_trial, the shield option, guarded_update."""
import json

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("simglucose")

from pyloopkit.control.trial import run_trial  # noqa: E402
from pyloopkit.errors import InvalidInputError  # noqa: E402
from pyloopkit.rl.policy import POLICY_DIR, load_policy, shipped_policies  # noqa: E402
from pyloopkit.simulation.patients import load_patients  # noqa: E402
from pyloopkit.simulation.simulator import Simulator  # noqa: E402


def test_shipped_policies_are_small_and_documented():
    names = shipped_policies()
    assert "ppo-lstm_adult001" in names
    for name in names:
        meta = json.loads((POLICY_DIR / f"{name}.json").read_text())
        assert (POLICY_DIR / f"{name}.zip").stat().st_size < 5e6
        for key in ("seed", "command", "training_seconds", "options", "learning_curve"):
            assert key in meta
        assert meta["command"].startswith("pyloopkit rl train")


def test_unknown_policy_names_what_is_shipped():
    with pytest.raises(InvalidInputError, match="ppo-lstm_adult001"):
        load_policy("ppo-lstm", group="teenager")


def test_a_patient_without_its_own_policy_gets_its_groups_bound_to_it():
    controller = load_policy("ppo-lstm", patient="adolescent#009")
    assert controller.meta["patients"] == "adolescent"
    patient = load_patients("adolescent#009")
    np.testing.assert_allclose(controller.basal_u_per_h, patient.basal_u_per_min * 60.0)
    np.testing.assert_allclose(controller.carb_ratio_g_per_u, patient.CR)


def test_policy_controls_a_trial_within_its_action_range():
    controller = load_policy("ppo-lstm", patient="adult#001")
    sim = Simulator("adult#001", seed=7, n_episodes_per_patient=3)
    trial = run_trial(sim, controller, days=1, seed=7, step_minutes=5)
    basal = sim.patients.basal_u_per_min[0] * 60.0
    rates = trial["basal_u_per_h"]
    assert rates.min() >= 0 and rates.max() <= 4 * basal + 1e-12
    # the rate is held for the 30-minute decision: 6 five-minute steps
    np.testing.assert_array_equal(rates[:, 0:6], np.repeat(rates[:, :1], 6, axis=1))
    assert np.all(trial["bolus_u"] == 0)
    assert np.all(trial["bg"] > 10)


def test_shield_option_caps_the_rate_and_suspends_on_a_falling_projection():
    controller = load_policy("ppo-lstm", patient="adult#001", shield=True)
    sim = Simulator("adult#001", seed=7, n_episodes_per_patient=2)
    trial = run_trial(sim, controller, days=1, seed=7, step_minutes=5)
    limit = controller.shield.max_basal_u_per_h
    assert limit == pytest.approx(4 * sim.patients.basal_u_per_min[0] * 60.0)
    assert trial["basal_u_per_h"].max() <= limit
    decisions = trial["cgm"][:, :-1:6]
    rates = trial["basal_u_per_h"][:, ::6]
    below = decisions < controller.shield.suspend_threshold_mg_dl
    assert np.all(rates[below] == 0)


def test_group_policy_needs_bind():
    controller = load_policy("ppo-lstm", patient="adult#001")
    controller.meta = {**controller.meta, "patients": "adult"}
    controller.basal_u_per_h = None
    with pytest.raises(InvalidInputError, match="bind"):
        run_trial(Simulator("adult", seed=1), controller, days=1 / 24, seed=1)


def test_guarded_update_with_a_shipped_policy():
    from pyloopkit.rl.guarded import guarded_update
    from pyloopkit.synthetic import dense_history

    controller = load_policy("ppo-lstm", patient="adult#001")
    d = dense_history(1.0, seed=0)
    out = guarded_update(d, controller)
    rate, duration = out["recommended_temp_basal"]
    proposed = out["policy_action"]["basal_u_per_h"]
    assert duration == 30.0 and 0 <= proposed <= 4 * 0.8 + 1e-9  # 4x the scheduled 0.8 U/h at 00:02
    assert rate <= min(proposed, d["settings_dictionary"]["max_basal_rate"])
    assert proposed - rate < 0.05 or out["guardrails_applied"]


def test_direct_actor_path_matches_sb3_predict():
    """PolicyController.propose runs the LSTM actor directly; SB3's predict gives the same actions."""
    controller = load_policy("ppo-lstm", patient="adult#001")
    rng = np.random.default_rng(0)
    state, start = None, np.ones(4, dtype=bool)
    controller._episode_start = np.ones(4, dtype=bool)
    for _ in range(5):
        observation = rng.normal(size=(4, 1)).astype(np.float32)
        expected, state = controller.model.predict(observation, state=state, episode_start=start, deterministic=True)
        start = np.zeros(4, dtype=bool)
        np.testing.assert_allclose(controller.propose(observation), expected, rtol=1e-5, atol=1e-6)


def test_dqn_policy_chooses_its_discrete_multiples():
    """Aura's observation is rebuilt by the controller from the trial (trend, IOB, time since meal)."""
    controller = load_policy("dqn", patient="adult#001")
    sim = Simulator("adult#001", seed=11, n_episodes_per_patient=2)
    trial = run_trial(sim, controller, days=1, seed=11, step_minutes=5)
    basal = sim.patients.basal_u_per_min[0] * 60.0
    multiples = np.asarray(controller.options.discrete_basal_multiples)
    ratios = trial["basal_u_per_h"] / basal
    assert np.all(np.min(np.abs(ratios[..., None] - multiples), axis=-1) < 1e-9)
    assert len(np.unique(ratios)) > 1


class _Scripted:
    """A stand-in DQN model: plays a fixed sequence of discrete actions and records what it saw."""

    def __init__(self, actions):
        self.actions = list(actions)
        self.seen = []

    def predict(self, observation, deterministic=True):
        self.seen.append(observation.copy())
        return np.array([self.actions[len(self.seen) - 1]]), None


def _env_and_controller(patient: str, seed: int, options, actions):
    """The env's observations under scripted discrete ``actions`` and those the trial controller built from
    5-minute StepResults for the same actions and seed; returns (expected, seen, trial, sim)."""
    from pyloopkit.rl.env import BasalVecEnv
    from pyloopkit.rl.policy import PolicyController

    env = BasalVecEnv(patient, 1, seed=seed, options=options)
    expected = [env.reset()[0]]
    for action in actions[:-1]:
        observation, _, done, _ = env.step(np.array([action]))
        assert not done[0]
        expected.append(observation[0])
    meta = {"algo": "dqn", "patients": patient, "options": options.to_dict(), "obs_mean": [0.0] * 6,
            "obs_var": [1.0] * 6, "epsilon": 0.0, "clip_obs": 1e30}
    model = _Scripted(actions)
    controller = PolicyController(model, meta)
    assert controller.announce_min == (options.decision_interval_min if options.meal_bolus else None)
    sim = Simulator(patient, seed=seed, announce_min=controller.announce_min)
    days = len(actions) * options.decision_interval_min / 1440
    trial = run_trial(sim, controller, days=days, seed=seed, step_minutes=5)
    return np.array(expected), np.concatenate(model.seen), trial, sim


def test_controller_rebuilds_the_aura_observation_of_the_env():
    """Same seed, same actions: the observation that the trial controller builds from 5-minute
    StepResults equals the env's (CGM, trend, time of day, IOB, minutes since meal)."""
    from pyloopkit.rl.env import RLOptions

    options = RLOptions(observation="aura", action="discrete", reward="tiered")
    expected, seen, _, _ = _env_and_controller("adult#001", 21, options, [4, 6, 0, 10, 2, 4, 8, 1, 4, 5, 3, 7] * 4)
    np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-4)
    assert np.any(seen[:, 5] < 1440)  # a meal happened in the window


def test_controller_rebuilds_the_context_observation_and_meal_boluses_of_the_env():
    """A meal-bolus policy with the "context" features: same seed, same actions, the controller's
    observations (CGM, trend, IOB, COB and announced carbs relative to the patient) equal the env's, which
    also checks that its boluses were the env's (they feed the IOB); it boluses only at decisions that
    announce a meal, fraction * carbs / CR."""
    from pyloopkit.rl.env import RLOptions

    options = RLOptions(observation="context", action="discrete", meal_bolus=True, decision_interval_min=15)
    actions = [17, 22, 3, 43, 9, 18, 33, 5, 19, 23, 14, 29] * 8
    expected, seen, trial, sim = _env_and_controller("child#002", 4, options, actions)
    np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-4)
    announced = seen[:, 4] > 0
    assert announced.any()
    bolus = trial["bolus_u"][0, ::3]
    fractions = np.asarray(options.discrete_bolus_fractions)[np.asarray(actions) % 4]
    basal = sim.patients.basal_u_per_min[0] * 60.0
    np.testing.assert_allclose(bolus, fractions * seen[:, 4] * basal, rtol=1e-5)
    assert np.all(bolus[~announced] == 0) and np.all(trial["bolus_u"][0].reshape(-1, 3)[:, 1:] == 0)
