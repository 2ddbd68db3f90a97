"""The population protocol: early termination, metrics, chunking, backends, reproducibility, CLI and report."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyloopkit import metrics
from pyloopkit.cli import main
from pyloopkit.control import run_population_trial
from pyloopkit.control.population import COLUMNS, episode_metrics, run_episodes
from pyloopkit.errors import InvalidInputError
from pyloopkit.simulation import Simulator
from pyloopkit.simulation.conditions import Conditions

PATIENTS = ["child#002", "adolescent#003", "adult#004"]


class Overdose:
    """Any object with act(): ten times the basal of its batch."""

    def __init__(self, simulator):
        self.rate = simulator.patients.basal_u_per_min * 600.0

    def act(self, step):
        return self.rate, np.zeros_like(self.rate)


@pytest.fixture(scope="module")
def protocol():
    """The short protocol: 3 patients x 2 seeds x 1 day for the four fast controllers."""
    return run_population_trial("bb,bb-cd,pid,pid-if", PATIENTS, seeds=2, days=1, progress=False)


def test_short_protocol_table(protocol):
    assert list(protocol.columns) == list(COLUMNS) and len(protocol) == 4 * 3 * 2
    assert list(protocol["controller"].unique()) == ["bb", "bb-cd", "pid", "pid-if"]
    np.testing.assert_allclose(protocol[["pct_below_70", "pct_in_70_180", "pct_above_180"]].sum(axis=1), 100.0)
    assert (protocol["pct_below_54"] <= protocol["pct_below_70"]).all()
    np.testing.assert_allclose(protocol["risk_index"], protocol["lbgi"] + protocol["hbgi"], rtol=1e-12)
    np.testing.assert_allclose(protocol["gmi_percent"], 3.31 + 0.02392 * protocol["mean_mg_dl"], rtol=1e-12)
    # BB-CD differs from BB only by the corrections it skips: it never gives more insulin, so never lower mean BG
    bb, cd = (protocol[protocol["controller"] == c].reset_index(drop=True) for c in ("bb", "bb-cd"))
    assert (cd["mean_mg_dl"] >= bb["mean_mg_dl"] - 1e-9).all()


def test_metrics_are_those_of_the_bg_trace():
    sim = Simulator(PATIENTS, seed=0, episodes=np.array([0, 0, 0]))
    from pyloopkit.control import BasalBolusController
    result = run_episodes(sim, BasalBolusController(sim.patients), 288, seed=0)
    table = episode_metrics(result["bg"], result["readings"])
    summary = metrics.summary(result["bg"])
    np.testing.assert_array_equal(table["risk_index"], summary["risk_index"])
    np.testing.assert_array_equal(table["pct_in_70_180"], summary["time_in_70_180"] * 100)
    rows = run_population_trial("bb", PATIENTS, seeds=[0], days=1, progress=False)
    np.testing.assert_array_equal(rows["risk_index"], summary["risk_index"])


def test_early_termination_with_configurable_bounds():
    table = run_population_trial({"overdose": Overdose}, ["adult#001"], seeds=1, days=1, progress=False)
    row = table.iloc[0]
    assert row["terminated"] and 0 < row["fraction_completed"] < 1
    sim = Simulator(["adult#001"], seed=0, episodes=np.array([0]))
    result = run_episodes(sim, Overdose(sim), 288, seed=0)
    k = int(result["readings"][0])
    assert result["bg"][0, k] < 10 <= result["bg"][0, :k].min()
    assert row["fraction_completed"] == k / 288
    assert row["mean_mg_dl"] == pytest.approx(result["bg"][0, :k].mean(), rel=1e-12)
    strict = run_population_trial("bb", ["child#002"], seeds=1, days=1, bounds_mg_dl=(100, 1000), progress=False)
    assert strict.iloc[0]["terminated"] and strict.iloc[0]["fraction_completed"] < 1
    with pytest.raises(InvalidInputError):
        run_population_trial("bb", ["child#002"], seeds=1, days=1, bounds_mg_dl=(100, 50), progress=False)
    with pytest.raises(InvalidInputError, match="must be one of"):
        run_population_trial("bb,nope", ["child#002"], seeds=1, days=1, progress=False)
    with pytest.raises(InvalidInputError, match=r"1 invalid input value\(s\):\n  - patients\[1\] = 'adult#099'"):
        run_population_trial("bb", "child#002, adult#099", seeds=3, days=1, progress=False)


def test_patients_as_one_comma_separated_string():
    table = run_population_trial("bb", "adult#004, child#002,adult", seeds=1, days=0.25, progress=False)
    assert list(table["patient"]) == ["adult#004", "child#002"] + [f"adult#{k:03d}" for k in range(1, 11) if k != 4]


def test_tables_do_not_depend_on_chunking(protocol):
    chunked = run_population_trial("bb,bb-cd,pid,pid-if", PATIENTS, seeds=2, days=1, chunk_seeds=1, progress=False)
    pd.testing.assert_frame_equal(protocol, chunked, check_exact=True)
    single = run_population_trial("pid-if", ["adult#004"], seeds=[1], days=1, progress=False)
    expected = protocol[(protocol["controller"] == "pid-if") & (protocol["patient"] == "adult#004")
                        & (protocol["seed"] == 1)].reset_index(drop=True)
    pd.testing.assert_frame_equal(single, expected, check_exact=True)


def test_conditions_change_outcomes_and_default_conditions_change_nothing(protocol):
    bb = protocol[protocol["controller"] == "bb"].reset_index(drop=True)
    neutral = run_population_trial("bb", PATIENTS, seeds=2, days=1, conditions=Conditions(), progress=False)
    pd.testing.assert_frame_equal(neutral, bb, check_exact=True)
    unannounced = run_population_trial("bb", PATIENTS, seeds=2, days=1, progress=False,
                                       conditions=Conditions(unannounced_probability=1.0))
    assert (unannounced["mean_mg_dl"] > bb["mean_mg_dl"] + 10).all()


def test_loop_runs_in_the_protocol():
    table = run_population_trial("loop,loop-ab,bb", ["adult#004"], seeds=1, days=0.25, progress=False)
    rows = table.set_index("controller")
    for name in ("loop", "loop-ab"):
        assert rows.loc[name, "fraction_completed"] == 1.0
        assert 70 < rows.loc[name, "mean_mg_dl"] < 250
    assert rows.loc["loop-ab", "mean_mg_dl"] != rows.loc["loop", "mean_mg_dl"]


def test_loop_ab_doses_by_automatic_bolus():
    from pyloopkit.control.population import CONTROLLERS

    simulator = Simulator(["adult#004"], seed=0)
    assert CONTROLLERS["loop-ab"](simulator).dosing_strategy == "automatic_bolus"
    assert CONTROLLERS["loop"](simulator).dosing_strategy == "temp_basal"


def test_backends_give_identical_tables():
    ray = pytest.importorskip("ray")
    args = dict(controllers="bb-cd,pid-if", patients=["child#002", "adult#004"], seeds=2, days=0.5, progress=False)
    local = run_population_trial(**args)
    processes = run_population_trial(**args, backend="processes", workers=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_population_trial(**args, backend="ray")
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(local, processes, check_exact=True)
    pd.testing.assert_frame_equal(local, on_ray, check_exact=True)


def test_cli_reproduces_results_bit_for_bit_and_reports(tmp_path, capsys):
    argv = ["trial", "--controller", "bb,pid", "--patients", "child#002,adult#004", "--seeds", "2", "--days", "0.5",
            "--no-progress", "--dropouts-per-day", "4", "--isf-sd", "0.2"]
    for name in ("a", "b"):
        assert main(argv + ["--out", str(tmp_path / name)]) == 0
    for file in ("trial.csv", "trial.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert main(argv + ["--out", str(tmp_path / "p"), "--format", "parquet"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p" / "trial.parquet"),
                                  pd.read_csv(tmp_path / "a" / "trial.csv"), check_exact=True)
    assert main(["trial-report", str(tmp_path / "a")]) == 0
    summary = (tmp_path / "a" / "summary.md").read_text()
    assert "### child" in summary and "### adult" in summary and "| pid |" in summary
    for figure in ("fraction_completed.png", "time_in_ranges.png", "risk.png"):
        assert (tmp_path / "a" / "figures" / figure).stat().st_size > 1000


def test_explicit_episode_numbers_replay_the_same_episodes():
    implicit = Simulator(["adult#001", "adult#001", "child#003"], seed=5)
    explicit = Simulator(["adult#001", "child#003"], seed=5, episodes=np.array([1, 0]))
    for _ in range(30):
        a = implicit.step(1.0, 0.0, 5)
        b = explicit.step(1.0, 0.0, 5)
    np.testing.assert_array_equal(a.cgm[1:], b.cgm)
    np.testing.assert_array_equal(a.bg[1:], b.bg)
    with pytest.raises(InvalidInputError, match="episodes"):
        Simulator(["adult#001", "child#003"], episodes=np.array([0]))
    with pytest.raises(InvalidInputError, match="episodes"):
        Simulator(["adult#001"], episodes=np.array([-1]))
