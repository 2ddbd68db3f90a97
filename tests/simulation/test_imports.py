"""The simulator's optional dependencies stay out of ``import pyloopkit``."""
import json
import subprocess
import sys

import pytest

OPTIONAL = ["numba", "gymnasium", "simglucose"]


def _loaded_after(statement: str) -> list[str]:
    """Top-level optional packages in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    program = (f"import json, sys\n{statement}\n"
               f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({OPTIONAL!r}))))")
    output = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    return json.loads(output)


def test_import_pyloopkit_loads_no_simulation_dependency():
    assert _loaded_after("import pyloopkit") == []


def test_import_simulation_registers_the_environment():
    pytest.importorskip("gymnasium")
    pytest.importorskip("simglucose")
    statement = ("import gymnasium, pyloopkit.simulation\n"
                 "assert 'pyloopkit/T1D-v0' in gymnasium.registry\n"
                 "assert type(gymnasium.make('pyloopkit/T1D-v0').unwrapped).__name__ == 'T1DEnv'")
    assert "gymnasium" in _loaded_after(statement)
