"""Tests of the RL environments: checkers, action mapping, rewards, episodes, Aura's features."""
import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("simglucose")

from gymnasium.utils.env_checker import check_env as gymnasium_check_env  # noqa: E402
from stable_baselines3.common.env_checker import check_env as sb3_check_env  # noqa: E402
from stable_baselines3.common.vec_env import VecCheckNan, VecNormalize  # noqa: E402

from pyloopkit.errors import InvalidInputError  # noqa: E402
from pyloopkit.rl.env import (BasalEnv, BasalVecEnv, RLOptions, doses, in_range_reward,  # noqa: E402
                              tiered_reward)
from pyloopkit.simulation.patients import load_patients  # noqa: E402

ADULT_1 = load_patients("adult#001")
BASAL_U_PER_H = float(ADULT_1.u2ss[0] * ADULT_1.BW[0] / 100.0)
GB = float(ADULT_1.Gb[0])
AURA = {"observation": "aura", "action": "discrete", "reward": "tiered"}
STEADY = {"sensor": None, "pump": None, "scenario": None}


CONTEXT = {"observation": "context", "meal_bolus": True, "reward": "tiered", "termination_penalty": -200.0}


@pytest.mark.parametrize("options", [{}, AURA, CONTEXT, {**CONTEXT, "action": "discrete", "shield": True}],
                         ids=["paper", "aura", "context", "context-discrete-shield"])
def test_checkers_pass(options):
    gymnasium_check_env(BasalEnv("adult#001", **options), skip_render_check=True)
    sb3_check_env(BasalEnv("adult#001", **options), warn=True)


def basal_rates(action, basal, options):
    return doses(action, basal, np.zeros(len(basal)), options)[0]


def test_basal_multiple_mapping():
    options = RLOptions()
    basal = np.array([1.0, 2.0, 0.5])
    rates = basal_rates(np.array([[-1.0], [1.0], [-0.5]]), basal, options)
    np.testing.assert_allclose(rates, [0.0, 8.0, 0.5])
    np.testing.assert_allclose(basal_rates(np.array([[5.0], [-3.0], [0.0]]), basal, options), [4.0, 0.0, 1.0])


def test_discrete_mapping_and_invalid_index():
    options = RLOptions(action="discrete", discrete_basal_multiples=(0.0, 1.0, 2.5))
    np.testing.assert_allclose(basal_rates(np.array([0, 2]), np.array([1.2, 0.8]), options), [0.0, 2.0])
    with pytest.raises(InvalidInputError, match="action"):
        basal_rates(np.array([0, 3]), np.array([1.0, 1.0]), options)


def test_rewards_by_hand():
    bg = np.array([[69.9, 70.0, 180.0, 180.1, 100.0, 100.0],
                   [53.9, 54.0, 250.0, 250.1, 1.0, 120.0]])
    np.testing.assert_allclose(in_range_reward(bg), [4 / 3, 1 / 3])
    # tiers: (-2 + 1 + 1 + 0 + 1 + 1) / 3 and (-4 - 2 + 0 - 1 - 4 + 1) / 3
    np.testing.assert_allclose(tiered_reward(bg), [2 / 3, -10 / 3])


def test_invalid_options_are_named():
    with pytest.raises(InvalidInputError) as error:
        RLOptions(decision_interval_min=0, observation="image", episode_days=-1)
    text = str(error.value)
    assert "decision_interval_min" in text and "observation" in text and "episode_days" in text


def test_steady_state_at_basal_scores_every_minute():
    """No meals, no noise, ideal pump: 1x basal (action -0.5) keeps BG at Gb, in range every minute."""
    assert 70 <= GB <= 180
    env = BasalEnv("adult#001", **STEADY)
    observation, _ = env.reset(seed=3)
    assert observation[0] == pytest.approx(GB, rel=1e-6)
    for _ in range(6):
        observation, reward, terminated, truncated, _ = env.step(np.array([-0.5], dtype=np.float32))
        assert observation[0] == pytest.approx(GB, rel=1e-6)
        assert reward == pytest.approx(30 / 3)
        assert not terminated and not truncated


def test_termination_and_autoreset():
    """4x basal with a lower bound 5 mg/dL under Gb terminates member 0 (1x basal keeps member 1 at Gb);
    the vector env returns the terminal observation in the info and restarts the member at Gb."""
    env = BasalVecEnv("adult#001", 2, seed=1, termination_bounds=(GB - 5.0, 1000.0), **STEADY)
    env.reset()
    for _ in range(12):
        observation, _, done, infos = env.step(np.array([[1.0], [-0.5]], dtype=np.float32))
        assert not done[1] and "terminal_observation" not in infos[1]
        if done[0]:
            break
    assert done[0] and infos[0]["terminated"] and not infos[0]["TimeLimit.truncated"]
    assert infos[0]["terminal_observation"][0] < GB - 5.0
    assert observation[0, 0] == pytest.approx(GB, rel=1e-6)


def test_truncation_after_episode_days():
    env = BasalVecEnv("adult#001", 1, seed=1, episode_days=0.125, **STEADY)  # 180 min = 6 decisions
    env.reset()
    for k in range(6):
        _, _, done, infos = env.step(np.array([[-0.5]], dtype=np.float32))
        assert done[0] == (k == 5)
    assert infos[0]["TimeLimit.truncated"] and not infos[0]["terminated"]


def test_aura_features_by_hand():
    """A 50 g meal at minute 60: minutes since meal is 15 after the decision eating it (the third, 60-90)
    and grows by 30 after; the trend is the CGM change over the decision per minute; time of day
    is that of the decision (start at midnight)."""
    env = BasalVecEnv("adult#001", 1, seed=1, sensor=None, pump=None, scenario=[(60, 50.0)], **{
        k: v for k, v in AURA.items()})
    observation = env.reset()
    assert observation[0, 5] == 1440.0 and observation[0, 1] == 0.0 and observation[0, 3] == pytest.approx(1.0)
    previous = observation[0, 0]
    since = []
    for k in range(4):
        observation, _, _, _ = env.step(np.array([4]))  # 1x basal
        assert observation[0, 1] == pytest.approx((observation[0, 0] - previous) / 30.0, rel=1e-5)
        previous = observation[0, 0]
        since.append(float(observation[0, 5]))
    assert since == [1440.0, 1440.0, 15.0, 45.0]
    angle = 2 * np.pi * 120 / 1440
    np.testing.assert_allclose(observation[0, 2:4], [np.sin(angle), np.cos(angle)], atol=1e-6)
    assert observation[0, 4] > 0  # insulin on board of the basal delivered


def test_vector_env_batches_a_group_under_vecnormalize():
    env = BasalVecEnv("child", 20, seed=2)
    assert env.num_envs == 20 and env.patient_names[:2] == ["child#001", "child#002"]
    assert env.patient_names[10] == "child#001"
    wrapped = VecNormalize(VecCheckNan(env, raise_exception=True))
    wrapped.reset()
    rng = np.random.default_rng(0)
    for _ in range(20):
        observation, reward, done, infos = wrapped.step(rng.uniform(-1, 1, (20, 1)).astype(np.float32))
    assert observation.shape == (20, 1) and reward.shape == (20,) and done.dtype == bool and len(infos) == 20
    np.testing.assert_allclose(env.basal_u_per_h, load_patients("child").basal_u_per_min.repeat(1)[
        np.arange(20) % 10] * 60.0)


def test_seeded_reset_replays():
    a, b = BasalVecEnv("adult#001", 3, seed=5), BasalVecEnv("adult#001", 3, seed=5)
    np.testing.assert_array_equal(a.reset(), b.reset())
    actions = np.zeros((3, 1), dtype=np.float32)
    for _ in range(5):
        oa, ra, _, _ = a.step(actions)
        ob, rb, _, _ = b.step(actions)
    np.testing.assert_array_equal(oa, ob)
    np.testing.assert_array_equal(ra, rb)


def test_termination_penalty_is_added_to_the_terminating_decision():
    kwargs = dict(termination_bounds=(GB - 5.0, 1000.0), **STEADY)
    plain, penalised = BasalVecEnv("adult#001", 1, seed=1, **kwargs), BasalVecEnv(
        "adult#001", 1, seed=1, termination_penalty=-100.0, **kwargs)
    plain.reset(), penalised.reset()
    for _ in range(12):
        _, reward, done, _ = plain.step(np.array([[1.0]], dtype=np.float32))
        _, penalised_reward, _, _ = penalised.step(np.array([[1.0]], dtype=np.float32))
        assert penalised_reward[0] == pytest.approx(reward[0] - 100.0 * done[0])
        if done[0]:
            break
    assert done[0]


def test_meal_bolus_actions_by_hand():
    """Continuous: the second component maps [-1, 1] to 0..max_bolus_fraction of carbs / CR; discrete:
    index i is (basal multiple i // 4, bolus fraction i % 4)."""
    basal, meal_u = np.array([1.0, 0.5, 2.0]), np.array([4.0, 0.0, 2.0])
    options = RLOptions(meal_bolus=True)
    rates, bolus = doses(np.array([[-0.5, 1.0], [1.0, 1.0], [0.0, -1.0]]), basal, meal_u, options)
    np.testing.assert_allclose(rates, [1.0, 2.0, 4.0])
    np.testing.assert_allclose(bolus, [6.0, 0.0, 0.0])
    np.testing.assert_allclose(doses(np.array([[0.0, 0.0]] * 3), basal, meal_u, options)[1], [3.0, 0.0, 1.5])
    discrete = RLOptions(action="discrete", meal_bolus=True, discrete_basal_multiples=(0.0, 1.0, 2.0),
                         discrete_bolus_fractions=(0.0, 0.5, 1.0, 1.5))
    rates, bolus = doses(np.array([0, 7, 11]), basal, meal_u, discrete)
    np.testing.assert_allclose(rates, [0.0, 0.5, 4.0])
    np.testing.assert_allclose(bolus, [0.0, 0.0, 3.0])
    with pytest.raises(InvalidInputError, match="action"):
        doses(np.array([0, 12, 1]), basal, meal_u, discrete)
    assert BasalVecEnv("adult#001", 1, options=discrete).action_space.n == 12
    assert BasalVecEnv("adult#001", 1, options=options).action_space.shape == (2,)


def test_context_features_and_meal_bolus_by_hand():
    """A 60 g meal at minute 60, 30-minute decisions, no noise: the decision at minute 60 sees it
    announced (60 g / CR / basal hours of basal) and boluses fraction f of 60 / CR; carbs on board
    then decay linearly from the middle of the decision that ate them; the insulin on board of two
    runs differing only in f differs by the bolus times Loop's exponential curve at 15 min."""
    from pyloopkit.simulation.envs import _iob_tracker

    cr, cf = float(ADULT_1.CR[0]), float(ADULT_1.CF[0])
    runs = {}
    for fraction in (-1.0, 1.0):  # 0 and 1.5 x carbs / CR
        env = BasalVecEnv("adult#001", 1, seed=1, sensor=None, pump=None, scenario=[(60, 60.0)],
                          observation="context", meal_bolus=True)
        seen = [env.reset()[0]]
        for _ in range(3):
            seen.append(env.step(np.array([[-0.5, fraction]], dtype=np.float32))[0][0])
        runs[fraction] = np.array(seen)
    zero, full = runs[-1.0], runs[1.0]
    assert zero[0, 5] == pytest.approx(cf * BASAL_U_PER_H, rel=1e-6)
    np.testing.assert_allclose(zero[:, 4], [0.0, 0.0, 60.0 / cr / BASAL_U_PER_H, 0.0], rtol=1e-6)
    assert zero[2, 3] == 0.0 and zero[3, 3] == pytest.approx(60.0 * (1 - 15 / 180) / cr / BASAL_U_PER_H, rel=1e-5)
    remaining = _iob_tracker(1, 30).weights[-1]  # the newest decision's units, taken at 15 min
    bolus_u = 1.5 * 60.0 / cr
    assert full[3, 2] - zero[3, 2] == pytest.approx(bolus_u * remaining / BASAL_U_PER_H, rel=1e-5)
    np.testing.assert_allclose(full[:3, 2], zero[:3, 2])
    assert full[3, 0] < zero[3, 0]  # the bolus lowers the post-meal glucose


def test_shield_option_guards_what_reaches_the_simulator():
    """A policy asking for the most (4x basal and 1.5x the meal bolus) behind the env's shield: every dose
    that reaches the simulator is within the limits, floored to the pump's increments, and zero whenever
    the last CGM or its 30-minute projection is below 70 mg/dL (which happens: 4x basal drives BG down)."""
    from pyloopkit.rl.shield import DEFAULT_MAX_BOLUS_U

    env = BasalVecEnv("adult#001", 3, seed=8, observation="context", meal_bolus=True, shield=True,
                      scenario=[(60, 80.0)])
    sent = []
    step_doses = env._venv.step_doses
    env._venv.step_doses = lambda rates, bolus: sent.append((rates.copy(), bolus.copy())) or step_doses(rates, bolus)
    observation = env.reset()
    window = [observation[:, 0]]
    projected = []
    for _ in range(24):
        cgm_before, cgm_now = (window[-2] if len(window) > 1 else window[-1]), window[-1]
        projected.append(np.minimum(cgm_now, cgm_now + (cgm_now - cgm_before) / 30.0 * 30.0))
        observation, _, done, _ = env.step(np.ones((3, 2), dtype=np.float32))
        if done.any():  # a restarted member's window starts again: check the steps before
            break
        window.append(observation[:, 0].astype(np.float64))
    rates, bolus = (np.array([pair[k] for pair in sent[:len(projected)]]) for k in (0, 1))
    projected = np.array(projected)
    assert (projected < 70).any() and (projected >= 70).any()
    assert np.all(rates[projected < 70] == 0) and np.all(bolus[projected < 70] == 0)
    assert rates.max() <= 4 * BASAL_U_PER_H and bolus.max() <= DEFAULT_MAX_BOLUS_U and bolus.max() > 0
    np.testing.assert_allclose(rates / 0.05, np.round(rates / 0.05), atol=1e-9)
