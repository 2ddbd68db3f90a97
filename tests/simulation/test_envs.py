"""Tests of the gymnasium environments over the batched simulator."""
import math

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")
pytest.importorskip("simglucose")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from scipy.integrate import quad  # noqa: E402

import pyloopkit.simulation  # noqa: E402,F401  (registers pyloopkit/T1D-v0)
from pyloopkit import metrics  # noqa: E402
from pyloopkit.errors import InvalidInputError  # noqa: E402
from pyloopkit.insulin_models import ExponentialInsulinModel  # noqa: E402
from pyloopkit.simulation import envs as envs_module  # noqa: E402
from pyloopkit.simulation.envs import COB_ABSORPTION_MIN, T1DEnv, T1DVectorEnv  # noqa: E402
from pyloopkit.simulation.patients import load_patients  # noqa: E402

ADOLESCENT_1 = load_patients("adolescent#001")
#: Steady-state basal of adolescent#001, U/h: u2ss * BW / 6000 * 60.
BASAL_U_PER_H = float(ADOLESCENT_1.u2ss[0] * ADOLESCENT_1.BW[0] / 100.0)
#: BG of the initial (steady) state, mg/dL: Gb of vpatient_params.csv.
GB = float(ADOLESCENT_1.Gb[0])


def steady_env(**options):
    """Noiseless, meal-free, ideal-pump environment of adolescent#001 (stays at Gb under its basal)."""
    options = {"sensor": None, "pump": None, "scenario": None, "max_basal_u_per_h": 10.0, **options}
    return T1DEnv("adolescent#001", **options)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("options", [
    {},
    {"observation": "history", "history_len": 6, "include_iob": True, "include_cob": True,
     "include_time_of_day": True, "announce_meals": True},
    {"action": "discrete", "decision_interval_min": 15, "reward": "magni"},
    {"action": "discrete", "discrete_doses_u_per_h": [0.0, 0.5, 1.0, 2.0], "reward": "shaped_tir",
     "sensor": "GuardianRT", "pump": "Cozmo", "decision_interval_min": 30},
    {"reward": "in_range_count", "decision_interval_min": 45, "observation": "history"},
])
def test_single_env_passes_gymnasium_checker(options):
    env = T1DEnv("child#003", **options)
    check_env(env, skip_render_check=True)
    observation, _ = env.reset(seed=3)
    assert observation.shape == (len(env.observation_names),)
    for _ in range(20):
        observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(observation)
        assert isinstance(reward, float) and math.isfinite(reward)
        if terminated or truncated:  # stepping an ended episode is an error: start the next one
            env.reset()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_registered_id_makes_the_env():
    env = gymnasium.make("pyloopkit/T1D-v0", patient="adult#002", include_iob=True)
    assert isinstance(env.unwrapped, T1DEnv)
    check_env(env.unwrapped, skip_render_check=True)


def run(env, seed, steps, action):
    trace = [env.reset(seed=seed)[0]]
    infos = []
    for _ in range(steps):
        observation, _, _, _, info = env.step(action)
        trace.append(observation)
        infos.append(info)
    return np.array(trace), infos


def test_reset_seed_replays_and_new_seeds_and_plain_resets_differ():
    """The same seed replays meals and sensor noise; another seed, or reset() without a seed
    (simglucose replays the same episode there), gives other meals and other noise."""
    env = T1DEnv("adult#001")
    action = np.array([1.0], dtype=np.float32)
    steps = 480  # one day of 3-min decisions
    first, first_info = run(env, 7, steps, action)
    again, _ = run(env, 7, steps, action)
    np.testing.assert_array_equal(first, again)
    other, other_info = run(env, 8, steps, action)
    assert not np.array_equal(first, other)
    meals = np.array([i["carbs_g"] for i in first_info])
    assert meals.sum() > 0
    assert not np.array_equal(meals, [i["carbs_g"] for i in other_info])
    noise = np.array([i["cgm"] - i["bg"] for i in first_info[:20]])
    other_noise = np.array([i["cgm"] - i["bg"] for i in other_info[:20]])
    assert not np.allclose(noise, other_noise)
    env.reset(seed=7)
    plain = np.array([env.reset()[0]] + [env.step(action)[0] for _ in range(steps)])
    assert not np.array_equal(first, plain)
    # A seeded reset followed by plain resets is itself reproducible across instances.
    twin = T1DEnv("adult#001")
    twin.reset(seed=7)
    twin_plain = np.array([twin.reset()[0]] + [twin.step(action)[0] for _ in range(steps)])
    np.testing.assert_array_equal(plain, twin_plain)


def test_steady_state_rewards_match_hand_values():
    """Under its steady basal, without meals, BG stays at Gb = 149.02 mg/dL (inside 70-180), so per
    3-min decision: in_range_count = 3, shaped_tir = 1, risk_diff = 0 and
    magni = -10 (3.35506 (ln(149.02)^0.8353 - 3.7932))^2: ln 149.02 = 5.004080,
    ln(5.004080) = 1.610254, x 0.8353 = 1.345045, exp = 3.838361, - 3.7932 = 0.045161,
    x 3.35506 = 0.151518, squared x 10 = 0.2296."""
    rate = np.array([BASAL_U_PER_H], dtype=np.float32)
    expected = {"in_range_count": 3.0, "shaped_tir": 1.0, "risk_diff": 0.0, "magni": -0.2296}
    for name, value in expected.items():
        env = steady_env(reward=name)
        env.reset(seed=0)
        for _ in range(10):
            _, reward, terminated, truncated, info = env.step(rate)
            assert reward == pytest.approx(value, abs=2e-3), name
            assert not terminated and not truncated
        assert info["bg"] == pytest.approx(GB, abs=0.05)


def test_shaped_reward_limits_and_callable_reward():
    """shaped_tir is 1 in range and -1 at 40 mg/dL and 300 mg/dL, linear in between: 55 and 240 mg/dL
    are half way (0), so [55, 240, 125] averages (0 + 0 + 1) / 3. A callable gets the minute BG."""
    from pyloopkit.simulation.envs import _shaped_tir

    bg = np.array([[70.0, 180.0, 125.0], [40.0, 30.0, 40.0], [300.0, 400.0, 300.0], [55.0, 240.0, 125.0]])
    np.testing.assert_allclose(_shaped_tir(bg, None), [1.0, -1.0, -1.0, 1.0 / 3.0])
    seen = []

    def reward(bg_minutes, info):
        seen.append((bg_minutes.copy(), info["bg"]))
        return float(bg_minutes.mean())

    env = steady_env(reward=reward, decision_interval_min=5)
    env.reset(seed=1)
    _, value, _, _, info = env.step(np.array([BASAL_U_PER_H], dtype=np.float32))
    assert seen[0][0].shape == (5,) and seen[0][1] == info["bg"]
    assert value == pytest.approx(seen[0][0].mean())


def test_risk_diff_is_previous_minus_current_risk():
    env = steady_env(reward="risk_diff")
    env.reset(seed=2)
    previous = GB
    for _ in range(30):
        _, reward, _, _, info = env.step(np.array([4.0], dtype=np.float32))  # too much insulin: BG falls
        assert reward == pytest.approx(float(metrics.kovatchev_risk([previous])[0] - info["risk"]), abs=1e-9)
        previous = info["bg"]
    assert previous < GB - 1.0


def test_termination_bounds_and_truncation():
    env = steady_env(termination_bounds=(150.0, 1000.0))
    env.reset(seed=0)
    assert env.step(np.array([BASAL_U_PER_H], dtype=np.float32))[2]  # Gb = 149.02 < 150
    env = steady_env(termination_bounds=(-np.inf, np.inf), max_episode_minutes=30, decision_interval_min=15)
    env.reset(seed=0)
    assert env.step(np.array([10.0], dtype=np.float32))[3:5][0] is False
    _, _, terminated, truncated, info = env.step(np.array([10.0], dtype=np.float32))
    assert truncated and not terminated and info["episode_minutes"] == 30
    env = steady_env(termination_bounds=(140.0, 1000.0), max_episode_minutes=None)
    env.reset(seed=0)
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(np.array([10.0], dtype=np.float32))
        assert not truncated
        if terminated:
            break
    assert terminated and info["bg"] < 140.5


def test_actions_map_to_delivered_insulin_and_bad_actions_raise():
    """With an ideal pump a basal rate r (U/h) held for 15 min delivers r / 4 units; the default
    discrete actions are 0, 0.5, 1, 1.5, 2, 3 times the steady basal."""
    env = steady_env(action="discrete", decision_interval_min=15)
    env.reset(seed=0)
    for k, multiple in enumerate((0.0, 0.5, 1.0, 1.5, 2.0, 3.0)):
        info = env.step(k)[4]
        assert info["insulin_u"] == pytest.approx(multiple * BASAL_U_PER_H / 4.0, rel=1e-12)
    for bad in (-1, 6, 2.5):
        with pytest.raises(InvalidInputError, match="action"):
            env.step(bad)
    env = steady_env(decision_interval_min=15)
    env.reset(seed=0)
    assert env.step(np.array([2.0], dtype=np.float32))[4]["insulin_u"] == pytest.approx(0.5)
    for bad in (np.nan, -0.1, 10.5):
        with pytest.raises(InvalidInputError, match="action"):
            env.step(np.array([bad], dtype=np.float32))


def test_bad_options_raise_naming_the_option():
    for options in ({"observation": "image"}, {"decision_interval_min": 0}, {"reward": "fun"},
                    {"termination_bounds": (100, 50)}, {"history_len": 0}, {"no_such_option": 1},
                    {"discrete_doses_u_per_h": [1.0, -1.0]}):
        with pytest.raises(InvalidInputError) as excinfo:
            T1DEnv("adult#001", **options)
        assert excinfo.value.problems[0].field == next(iter(options))


def test_iob_steady_state_equals_integral_of_the_insulin_curve():
    """Delivering r U/h for longer than the 370-min effect duration leaves
    IOB = r/60 * integral_0^370 percent_effect_remaining(t) dt (midpoint sum over decisions)."""
    rate = 1.2
    env = steady_env(include_iob=True)
    observation, _ = env.reset(seed=0)
    assert observation[1] == 0.0
    for _ in range(130):
        observation = env.step(np.array([rate], dtype=np.float32))[0]
    model = ExponentialInsulinModel(action_duration_min=360, peak_activity_min=75, delay_min=10)
    integral, _ = quad(lambda t: float(model.percent_effect_remaining(t)), 0.0, 370.0, points=[10.0], limit=200)
    assert observation[1] == pytest.approx(rate / 60.0 * integral, rel=1e-3)


def test_cob_decays_linearly_over_three_hours():
    """A 30 g meal at minute 0 is eaten at 5 g/min within the first 15-min decision, so after k
    decisions COB = 30 (1 - (k - 1/2) 15 / 180) until it reaches 0 at about 3 h."""
    env = steady_env(include_cob=True, announce_meals=True, decision_interval_min=15, scenario=[(0, 30)])
    observation, _ = env.reset(seed=0)
    assert env.observation_names == ["cgm", "cob_g", "announced_carbs_g"]
    assert observation[2] == 30.0  # announced at reset: the meal starts within the next decision
    for k in range(1, 15):
        observation = env.step(np.array([BASAL_U_PER_H], dtype=np.float32))[0]
        expected = max(0.0, 30.0 * (1.0 - (k - 0.5) * 15.0 / COB_ABSORPTION_MIN))
        assert observation[1] == pytest.approx(expected, abs=1e-4)
        assert observation[2] == 0.0


def test_time_of_day_features():
    env = steady_env(include_time_of_day=True, start_hour=6.0, decision_interval_min=15)
    observation, _ = env.reset(seed=0)
    np.testing.assert_allclose(observation[1:], [1.0, 0.0], atol=1e-7)  # 06:00 is a quarter of the day
    for _ in range(24):
        observation = env.step(np.array([BASAL_U_PER_H], dtype=np.float32))[0]
    np.testing.assert_allclose(observation[1:], [0.0, -1.0], atol=1e-6)  # 12:00


def test_history_window_keeps_the_last_readings_oldest_first():
    env = T1DEnv("adult#004", observation="history", history_len=4)
    first, _ = env.reset(seed=5)
    assert np.all(first == first[-1])
    cgm = [first[-1]]
    for _ in range(6):
        observation, _, _, _, info = env.step(np.array([1.0], dtype=np.float32))
        cgm.append(np.float32(info["cgm"]))
        np.testing.assert_array_equal(observation, (([cgm[0]] * 4) + cgm)[-4:])


# --- vector environment ------------------------------------------------------------------------

def test_vector_env_spaces_shapes_dtypes_and_contains():
    env = T1DVectorEnv("adolescent", num_envs=13, observation="history", history_len=3, include_iob=True,
                       include_cob=True, include_time_of_day=True, announce_meals=True)
    assert env.num_envs == 13
    assert env.observation_space.shape == (13, 3 + 5) and env.single_observation_space.shape == (8,)
    assert env.action_space.shape == (13, 1) and env.single_action_space.shape == (1,)
    assert env.patient_names[:11] == [f"adolescent#{k:03d}" for k in range(1, 11)] + ["adolescent#001"]
    observations, info = env.reset(seed=11)
    assert observations.dtype == np.float32 and env.observation_space.contains(observations)
    assert info["bg"].shape == (13,)
    env.action_space.seed(0)
    for _ in range(300):
        observations, rewards, terminated, truncated, infos = env.step(env.action_space.sample())
        assert observations.shape == (13, 8) and observations.dtype == np.float32
        assert env.observation_space.contains(observations)
        assert rewards.shape == (13,) and rewards.dtype == np.float64 and np.all(np.isfinite(rewards))
        assert terminated.dtype == bool and truncated.dtype == bool and terminated.shape == (13,)
        assert infos["bg"].shape == (13,) and infos["_bg"].all()
        if "final_observation" in infos:
            for j in np.flatnonzero(infos["_final_observation"]):
                assert env.single_observation_space.contains(infos["final_observation"][j])
    env.close()


def test_vector_env_simulates_exactly_num_envs_members_each_with_its_own_streams():
    """13 environments over 10 patients: 13 simulated members; env 10 is adolescent#001's episode 1
    (other meals and noise than env 0), and every environment's trajectory is the same as in a
    batch of 20 (a member does not depend on the rest of the batch)."""
    def rollout(num_envs):
        env = T1DVectorEnv("adolescent", num_envs=num_envs, max_episode_minutes=None,
                           termination_bounds=(-np.inf, np.inf))
        trace = [env.reset(seed=2)[0]]
        trace += [env.step(np.full((num_envs, 1), 1.0, dtype=np.float32))[0] for _ in range(480)]
        return env, np.array(trace)[..., 0]

    env, cgm = rollout(13)
    assert env.simulator.n == 13
    np.testing.assert_array_equal(env.simulator.episode, [0] * 10 + [1] * 3)
    assert not np.allclose(cgm[:, 0], cgm[:, 10])
    assert len({tuple(np.round(cgm[:, j], 6)) for j in range(13)}) == 13
    np.testing.assert_array_equal(cgm, rollout(20)[1][:, :13])


def test_vector_env_discrete_and_seeding():
    def rollout(seed):
        env = T1DVectorEnv(["adult#001", "child#002"], num_envs=4, action="discrete")
        trace = [env.reset(seed=seed)[0]]
        actions = np.array([1, 2, 3, 4])
        trace += [env.step(actions)[0] for _ in range(100)]
        return np.array(trace)

    first = rollout(3)
    np.testing.assert_array_equal(first, rollout(3))
    assert not np.array_equal(first, rollout(4))
    # Episodes of the same patient in one batch are independent (different meals and noise).
    assert not np.array_equal(first[:, 0], first[:, 2])


def test_vector_env_with_one_env_equals_the_single_env():
    single = T1DEnv("child#007", include_cob=True, reward="magni")
    vector = T1DVectorEnv("child#007", num_envs=1, include_cob=True, reward="magni")
    observation, _ = single.reset(seed=21)
    observations, _ = vector.reset(seed=21)
    np.testing.assert_array_equal(observations[0], observation)
    for _ in range(200):
        observation, reward, *_ = single.step(np.array([0.6], dtype=np.float32))
        observations, rewards, *_ = vector.step(np.array([[0.6]], dtype=np.float32))
        np.testing.assert_array_equal(observations[0], observation)
        assert rewards[0] == reward


@pytest.mark.parametrize("gymnasium_major", [0, 1])
def test_vector_autoreset_restarts_only_finished_envs(gymnasium_major, monkeypatch):
    """Same seed and actions, once without and once with a low-BG termination bound: envs that never
    terminate follow identical trajectories; a terminated env reports its last observation in
    final_observation (gymnasium 0.29) or final_obs (gymnasium 1.x, emulated here) and restarts from
    the patient's initial state (noiseless: CGM = Gb); its main info entries are those of its reset."""
    final = {0: envs_module._final_infos_gymnasium0, 1: envs_module._final_infos_gymnasium1}[gymnasium_major]
    monkeypatch.setattr(envs_module, "_final_infos", final)
    obs_key = "final_observation" if gymnasium_major == 0 else "final_obs"
    patients = ["adolescent#001", "adult#003", "child#005"]
    common = {"sensor": None, "pump": None, "max_basal_u_per_h": 10.0, "max_episode_minutes": None}
    free = T1DVectorEnv(patients, termination_bounds=(-np.inf, np.inf), **common)
    bounded = T1DVectorEnv(patients, termination_bounds=(130.0, np.inf), **common)
    free.reset(seed=1)
    bounded.reset(seed=1)
    gb = load_patients(patients).Gb
    actions = np.array([[8.0], [0.0], [0.0]], dtype=np.float32)  # only env 0 gets much insulin
    restarted = False
    for _ in range(60):
        free_obs, *_, free_info = free.step(actions)
        obs, rewards, terminated, truncated, infos = bounded.step(actions)
        np.testing.assert_array_equal(obs[1:], free_obs[1:])
        if terminated[0]:
            assert list(infos[f"_{obs_key}"]) == [True, False, False]
            assert list(infos["_final_info"]) == [True, False, False]
            assert infos[obs_key][0][0] < 130.0
            if gymnasium_major == 0:
                assert infos["final_info"][0]["bg"] < 130.0 and infos["final_info"][1] is None
            else:
                assert infos["final_info"]["bg"][0] < 130.0 and list(infos["final_info"]["_bg"]) == [1, 0, 0]
            assert obs[0, 0] == pytest.approx(gb[0], rel=1e-6)
            assert infos["bg"][0] == pytest.approx(gb[0], rel=1e-6) and infos["_bg"].all()
            assert list(infos["_cgm"]) == [False, True, True]
            np.testing.assert_array_equal(infos["bg"][1:], free_info["bg"][1:])
            restarted = True
            break
        assert obs_key not in infos and "final_info" not in infos
        np.testing.assert_array_equal(infos["bg"], free_info["bg"])
    assert restarted
    obs, *_, infos = bounded.step(actions)
    assert infos["episode_minutes"][0] == 3 and infos["episode_minutes"][1] > 3


def test_vector_env_truncation_autoresets_every_env():
    env = T1DVectorEnv("adult", num_envs=10, max_episode_minutes=9, sensor=None)
    env.reset(seed=0)
    for step in range(1, 4):
        obs, _, terminated, truncated, infos = env.step(np.full((10, 1), 1.0, dtype=np.float32))
        assert truncated.all() == (step == 3) and not terminated.any()
    assert infos["_final_observation"].all()
    np.testing.assert_allclose(obs[:, 0], load_patients("adult").Gb, rtol=1e-6)


def test_vector_env_rejects_bad_inputs():
    env = T1DVectorEnv("adult", num_envs=4)
    with pytest.raises(InvalidInputError, match="seed"):
        env.reset(seed=[1, 2, 3, 4])
    env.reset(seed=0)
    with pytest.raises(InvalidInputError, match="action"):
        env.step(np.array([[1.0], [np.nan], [1.0], [1.0]], dtype=np.float32))
    with pytest.raises(InvalidInputError, match="num_envs"):
        T1DVectorEnv("adult", num_envs=0)


def test_risk_rewards_are_finite_below_one_mg_dl():
    """BG below 1 mg/dL (possible only in a terminating decision) is scored at 1 mg/dL:
    Kovatchev risk 10 (1.509 (0 - 5.381))^2 = 659.3."""
    from pyloopkit.simulation.envs import _magni, _risk_diff

    bg = np.array([[5.0, 0.5]])
    assert _risk_diff(bg, np.array([112.5]))[0] == pytest.approx(-10.0 * (1.509 * 5.381) ** 2, rel=1e-6)
    assert np.isfinite(_magni(bg, None)).all()


def test_iob_is_the_direct_sum_over_past_deliveries():
    """IOB after k decisions = sum_i delivered_i * percent_effect_remaining((k - i - 1/2) * interval),
    written out directly for varying rates (ideal pump: delivered = rate * interval / 60)."""
    interval = 5
    rates = np.random.default_rng(4).uniform(0.0, 3.0, 90)
    env = steady_env(include_iob=True, decision_interval_min=interval)
    env.reset(seed=0)
    model = ExponentialInsulinModel(action_duration_min=360, peak_activity_min=75, delay_min=10)
    delivered = rates * interval / 60.0
    for k, rate in enumerate(rates, start=1):
        observation, _, _, _, info = env.step(np.array([rate], dtype=np.float32))
        assert info["insulin_u"] == pytest.approx(float(np.float32(rate)) * interval / 60.0, rel=1e-12)
        ages = (k - np.arange(k) - 0.5) * interval
        expected = np.sum(delivered[:k] * model.percent_effect_remaining(ages))
        assert observation[1] == pytest.approx(expected, rel=2e-6)


def test_vector_env_works_with_gymnasium_episode_statistics():
    """gymnasium 0.29's RecordEpisodeStatistics takes vector envs; 1.x has gymnasium.wrappers.vector's."""
    wrappers = getattr(gymnasium.wrappers, "vector", gymnasium.wrappers)
    env = wrappers.RecordEpisodeStatistics(T1DVectorEnv("adult", num_envs=10, max_episode_minutes=30))
    env.reset(seed=0)
    for _ in range(10):
        *_, infos = env.step(env.action_space.sample())
    assert infos["_episode"].all() and (infos["episode"]["l"] == 10).all()
