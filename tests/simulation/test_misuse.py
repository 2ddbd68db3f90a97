"""Simulator and environments under misuse (issue 8): glucose stays physical, every misuse says what is wrong."""
import numpy as np
import pytest

from pyloopkit.errors import InvalidInputError
from pyloopkit.simulation.envs import T1DEnv, T1DVectorEnv
from pyloopkit.simulation.simulator import MAX_REQUEST, Simulator

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def ideal(seed=1) -> Simulator:
    return Simulator("adolescent#001", sensor=None, pump=None, scenario=None, seed=seed)


@pytest.mark.parametrize("basal,bolus,steps", [(30.0, 0.0, 600), (MAX_REQUEST["basal_u_per_h"], 0.0, 50),
                                               (0.0, MAX_REQUEST["bolus_u"], 20)])
def test_glucose_stays_physical_under_extreme_insulin(basal, bolus, steps):
    """With the ideal pump, 30 U/h settled at -0.009 mg/dL and step(1e12) reached -418 mg/dL."""
    sim = ideal()
    results = [sim.step(basal, bolus) for _ in range(steps)]
    bg = np.concatenate([r.bg_minutes.ravel() for r in results])
    assert np.all(np.isfinite(bg)) and bg.min() >= 0.0
    assert bg.min() < 40.0  # the insulin did act: the clamp is reached, not avoided
    assert np.all(sim._x >= 0.0)


@pytest.mark.parametrize("request_u", [1e12, 1e300, np.inf])
def test_absurd_insulin_requests_are_errors(request_u):
    sim = ideal()
    with pytest.raises(InvalidInputError, match="basal_u_per_h"):
        sim.step(request_u)
    with pytest.raises(InvalidInputError, match="bolus_u"):
        sim.step(0.0, request_u)


@pytest.mark.parametrize("call,field", [
    (lambda: Simulator(123), "patients"),
    (lambda: Simulator("adult#001", seed=1.5), "seed"),
    (lambda: ideal().reset(seed=1.5), "seed"),
    (lambda: ideal().reset(seed=-1), "seed"),
    (lambda: ideal().restart_members([99]), "members"),
    (lambda: ideal().step(["a"]), "basal_u_per_h"),
    (lambda: ideal().step([1.0, 2.0]), "basal_u_per_h"),
    (lambda: T1DEnv("adult"), "patient"),
    (lambda: T1DEnv("adult#001").reset(seed=1.5), "seed"),
])
def test_misuse_names_the_argument(call, field):
    with pytest.raises(InvalidInputError) as err:
        call()
    assert err.value.problems[0].field == field


def _env(**options) -> T1DEnv:
    env = T1DEnv("adult#001", **options)
    env.reset(seed=3)
    return env


@pytest.mark.parametrize("action", [[1.0, 2.0], np.ones((2, 2)), "a", None])
def test_wrong_actions_are_errors(action):
    with pytest.raises(InvalidInputError) as err:
        _env().step(action)
    assert err.value.problems[0].field == "action"
    vector = T1DVectorEnv("adult", num_envs=3)
    vector.reset(seed=1)
    with pytest.raises(InvalidInputError):
        vector.step(action)


def test_step_before_reset_and_after_the_end_are_errors():
    with pytest.raises(RuntimeError, match="reset"):
        T1DEnv("adult#001").step(1.0)
    env = _env()
    high = float(np.max(env.action_space.high))
    for _ in range(10_000):
        *_, terminated, truncated, _ = env.step(high)
        if terminated or truncated:
            break
    assert terminated  # maximal insulin ends the episode in hypoglycaemia
    with pytest.raises(RuntimeError, match="terminated"):
        env.step(0.0)
    env.reset(seed=3)
    env.step(0.0)


def test_a_non_finite_user_reward_is_an_error():
    env = _env(reward=lambda bg_minutes, info: float("nan"))
    with pytest.raises(InvalidInputError) as err:
        env.step(1.0)
    assert err.value.problems[0].field == "reward"
