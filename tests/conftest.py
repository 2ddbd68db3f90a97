"""Shared test helpers: locating the Swift reference fixtures beside the project."""
from __future__ import annotations

import json
import os
from pathlib import Path

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
