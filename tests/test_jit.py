"""PYLOOPKIT_JIT chooses compiled or plain code; both give the same update() (issue 8, item 6)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyloopkit import update
from pyloopkit.synthetic import dense_history

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = """
import json, warnings
warnings.simplefilter("ignore")
from pyloopkit import jit, update
from pyloopkit.synthetic import dense_history
out = update(dense_history(days=1.0, seed=0))
print(json.dumps({"numba": jit.HAVE_NUMBA, "prediction": out["predicted_glucose_values"],
                  "temp_basal": out["recommended_temp_basal"]}))
"""


def _run(mode: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYLOOPKIT_JIT": mode, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, cwd=ROOT)


@pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")
def test_never_runs_without_numba_and_agrees():
    done = _run("never")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["numba"] is False
    here = update(dense_history(days=1.0, seed=0))
    np.testing.assert_allclose(out["prediction"], here["predicted_glucose_values"], rtol=0, atol=1e-9)
    assert out["temp_basal"] == list(here["recommended_temp_basal"])


def test_unknown_mode_is_an_error_naming_the_variable():
    done = _run("sometimes")
    assert done.returncode != 0 and "PYLOOPKIT_JIT='sometimes'" in done.stderr
