"""Shared test helpers: locating the Swift reference fixtures beside the project."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

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
