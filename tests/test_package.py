"""The package surface: lazy submodules as attributes, an accurate docstring."""
import importlib.util
import re
import subprocess
import sys

import pytest

import pyloopkit


@pytest.mark.parametrize("name", ["metrics", "simulation", "control", "plots", "compat", "io", "report", "tune",
                                  "forecast", "meals", "service"])
def test_submodules_are_attributes(name):
    assert getattr(pyloopkit, name).__name__ == f"pyloopkit.{name}"


def test_subpackages_are_listed_and_exist():
    assert set(pyloopkit.SUBPACKAGES) <= set(dir(pyloopkit))
    assert all(importlib.util.find_spec(f"pyloopkit.{n}") for n in pyloopkit.SUBPACKAGES)


def test_io_attribute_is_lazy_in_a_fresh_process():
    """``import pyloopkit`` does not import the wings; ``pyloopkit.io`` is imported on first use and
    its importers still do not pull in pandas until a file is read."""
    code = ("import sys, pyloopkit; before = 'pyloopkit.io' in sys.modules; "
            "print(before, callable(pyloopkit.io.read), 'pyloopkit.io' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.split() == ["False", "True", "True"], result.stderr


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
