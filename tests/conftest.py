"""Shared test helpers: locating the Swift reference fixtures beside the project."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# CI runs property tests derandomised (a fixed seed: the same examples every run); locally
# HYPOTHESIS_PROFILE=explore searches at random. What exploration finds becomes an @example.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = PROJECT_ROOT.parent / "shared" / "reference"


def reference_path(relative: str) -> Path:
    """Path of a reference fixture; skips the test (naming the folder) when it is absent."""
    path = REFERENCE_DIR / relative
    if not path.exists():
        pytest.skip(f"reference data not found: {path} (expected ../shared/reference beside the project)")
    return path


def load_reference(relative: str):
    """Parsed JSON of a reference fixture under ../shared/reference."""
    with open(reference_path(relative)) as f:
        return json.load(f)


def assert_compiled_equals_numpy(compiled, numpy_path) -> None:
    """A compiled pass against its numpy path: bit for bit (dtype, shape, bytes: -0.0 differs from 0.0).
    Both evaluate ``exp`` and ``pow`` with the C library (``pyloopkit.libm``), on every CPU."""
    x, y = np.asarray(compiled), np.asarray(numpy_path)
    assert x.dtype == y.dtype and x.shape == y.shape, (x, y)
    assert x.tobytes() == y.tobytes(), (x, y)


def per_member_path(controller) -> None:
    """Send every decision of a ``LoopController`` through its per-member path (``controller._run``,
    which tests wrap to compare each decision), also after ``set_schedules``: the compiled step over all
    members is switched off (that it enacts the same is tests/control/test_loop_batch.py's subject)."""
    controller._batch_constants = lambda: None
    controller._batch = None
