"""Training smoke test and the command line (short budgets; seeds fixed)."""
import json

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("simglucose")

from pyloopkit.cli import main  # noqa: E402
from pyloopkit.rl.env import RLOptions  # noqa: E402
from pyloopkit.rl.train import fit, mean_policy_reward, random_policy_reward  # noqa: E402

#: Reward per decision that 8,192 steps of RecurrentPPO must add to the random policy's on unseen episodes
#: (max 10 per 30-min decision; random actions score about 7.2 for adult#001: their mean, 2x basal, is a
#: decent constant rate, so the margin is small in absolute terms).
MARGIN = 0.25


def test_short_training_beats_random_actions():
    options = RLOptions()
    model, env, callback, _ = fit("ppo-lstm", "adult#001", options, seed=1, seconds=600, num_envs=16,
                                  total_timesteps=8192)
    assert model.num_timesteps >= 8192 and len(callback.curve) == 2
    trained = mean_policy_reward(model, env, 144, seed=99)
    random = random_policy_reward("adult#001", options, 144, seed=99)
    assert trained > random + MARGIN


def test_cli_train_writes_weights_json_and_curve(tmp_path):
    code = main(["rl", "train", "--algo", "dqn", "--patient", "adult#001", "--minutes", "0.02", "--seed", "3",
                 "--num-envs", "4", "--out", str(tmp_path)])
    assert code == 0
    meta = json.loads((tmp_path / "dqn_adult001.json").read_text())
    assert meta["seed"] == 3 and meta["algo"] == "dqn" and meta["patients"] == "adult#001"
    assert "rl train --algo dqn" in meta["command"]
    assert meta["options"]["observation"] == "aura" and meta["options"]["decision_interval_min"] == 30
    assert len(meta["obs_mean"]) == 6 and np.all(np.asarray(meta["obs_var"]) >= 0)
    assert (tmp_path / "dqn_adult001.zip").stat().st_size < 5e6
    assert (tmp_path / "dqn_adult001.png").exists()


def test_cli_rejects_unknown_algo(capsys):
    with pytest.raises(SystemExit) as error:
        main(["rl", "train", "--algo", "a2c", "--patient", "adult#001", "--out", "x"])
    assert error.value.code == 2


def test_cli_evaluate_prints_both_controllers(tmp_path, capsys):
    out = tmp_path / "table.json"
    code = main(["rl", "evaluate", "--policy", "ppo-lstm:adult#001", "--seeds", "2", "--days", "0.5",
                 "--json", str(out)])
    assert code == 0
    table = json.loads(out.read_text())
    assert [row["controller"] for row in table["rows"]] == ["ppo-lstm", "basal-bolus"]
    for row in table["rows"]:
        assert row["episodes"] == 2 and 0 <= row["below_54"] <= row["below_70"] <= 100 - row["tir_70_180"] + 1e-9
    assert "| ppo-lstm |" in capsys.readouterr().out


def test_cli_train_records_the_population_options(tmp_path, capsys):
    """The options of the shipped group policies reach the env and the recorded command reproduces them."""
    from pyloopkit.rl.env import RLOptions

    code = main(["rl", "train", "--algo", "dqn", "--group", "child", "--minutes", "0.02", "--seed", "2",
                 "--num-envs", "10", "--observation", "context", "--reward", "tiered", "--meal-bolus", "--shield",
                 "--termination-penalty", "-200", "--discrete-basal-multiples", "0,0.5,1,3",
                 "--hyperparameter", "gradient_steps=2", "--out", str(tmp_path)])
    assert code == 0
    meta = json.loads((tmp_path / "dqn_child.json").read_text())
    options = RLOptions.from_dict(meta["options"])
    assert options == RLOptions(observation="context", action="discrete", reward="tiered", meal_bolus=True,
                                shield=True, termination_penalty=-200.0, discrete_basal_multiples=(0.0, 0.5, 1.0, 3.0),
                                decision_interval_min=15)
    assert meta["command"].endswith("--num-envs 10 --observation context --reward tiered --termination-penalty -200 "
                                    "--discrete-basal-multiples 0,0.5,1,3 --meal-bolus --shield "
                                    f"--hyperparameter gradient_steps=2 --out {tmp_path}")
    assert meta["hyperparameters"]["gradient_steps"] == 2 and meta["hyperparameters"]["train_freq"] == 4
    capsys.readouterr()
    assert main(["rl", "train", "--algo", "dqn", "--group", "child", "--minutes", "0.01", "--hyperparameter",
                 "gradient_stepz=2", "--out", str(tmp_path)]) != 0
    assert "hyperparameters = 'gradient_stepz'" in capsys.readouterr().err
    for flag, value in (("--discrete-basal-multiples", "0,x"), ("--hyperparameter", "gradient_steps"),
                        ("--hyperparameter", "learning_rate=1e-")):
        with pytest.raises(SystemExit):
            main(["rl", "train", "--algo", "dqn", "--group", "child", flag, value, "--out", "x"])


def test_cli_evaluates_each_groups_policy_and_pools_them(tmp_path, capsys):
    """ALGO:groups runs each group's shipped policy on its own ten patients; the "all" rows pool the groups
    by episodes (ten per group here, so plain means) and add up terminations."""
    out = tmp_path / "groups.json"
    code = main(["rl", "evaluate", "--policy", "ppo-lstm:groups", "--seeds", "1", "--days", "0.25",
                 "--baselines", "pid", "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(row["group"], row["controller"]) for row in rows] == [
        (group, controller) for group in ("child", "adolescent", "adult", "all") for controller in ("ppo-lstm", "pid")]
    for controller in ("ppo-lstm", "pid"):
        mine = [row for row in rows if row["controller"] == controller]
        assert [row["episodes"] for row in mine] == [10, 10, 10, 30]
        for key in ("tir_70_180", "below_54", "mean_mg_dl"):
            assert mine[3][key] == pytest.approx(np.mean([row[key] for row in mine[:3]]))
        assert mine[3]["terminations"] == sum(row["terminations"] for row in mine[:3])
        assert mine[3]["min_tir"] == min(row["min_tir"] for row in mine[:3])
    assert "| all | ppo-lstm |" in capsys.readouterr().out
