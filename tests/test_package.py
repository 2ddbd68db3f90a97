"""The package surface: lazy submodules as attributes, an accurate docstring."""
import importlib.util
import re
import subprocess
import sys

import pytest

import pyloopkit


@pytest.mark.parametrize("name", ["metrics", "simulation", "control", "plots", "compat"])
def test_submodules_are_attributes(name):
    assert getattr(pyloopkit, name).__name__ == f"pyloopkit.{name}"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="nonexistent"):
        pyloopkit.nonexistent  # noqa: B018


def test_docstring_names_only_existing_subpackages():
    named = set(re.findall(r"pyloopkit\.([a-z_]+)", pyloopkit.__doc__))
    assert named and all(importlib.util.find_spec(f"pyloopkit.{n}") for n in named), named
    assert "forecasting" not in pyloopkit.__doc__


def test_metrics_attribute_in_a_fresh_process():
    code = "import pyloopkit; print(callable(pyloopkit.metrics.lbgi))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
