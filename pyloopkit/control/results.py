"""Trial results on disk: the tidy table (CSV or Parquet) and, beside it, what reproduces it.

``trial.json`` records the controllers, patients, seeds, options, the versions of the
packages that shape the numbers, the SHA-256 of the shipped PID gains and of the table
itself. It holds no clock time, so rerunning the same command on the same installation
rewrites both files byte for byte.
"""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata, resources
from pathlib import Path

TABLE_STEM = "trial"
METADATA_FILE = "trial.json"
FORMATS = ("csv", "parquet")
VERSIONED_PACKAGES = ("pyloopkit", "numpy", "scipy", "numba", "pandas", "simglucose", "ray")


def versions() -> dict:
    """Python, machine and the installed versions of :data:`VERSIONED_PACKAGES` (``None`` if absent)."""
    found = {"python": platform.python_version(), "machine": platform.machine()}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def gains_sha256() -> str:
    """SHA-256 of the shipped ``pyloopkit/control/data/pid_gains.csv``."""
    data = resources.files("pyloopkit.control").joinpath("data", "pid_gains.csv").read_bytes()
    return hashlib.sha256(data).hexdigest()


def save_trial(table, out, info: dict, format: str = "csv") -> Path:
    """Write ``table`` as ``out/trial.<format>`` and ``info`` (plus versions and hashes) as ``out/trial.json``."""
    if format not in FORMATS:
        from pyloopkit.errors import InvalidInputError, Problem
        raise InvalidInputError([Problem("format", None, format, f"must be one of {FORMATS}")])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{TABLE_STEM}.{format}"
    if format == "csv":
        table.to_csv(path, index=False, lineterminator="\n")
    else:
        table.to_parquet(path, index=False)
    record = {**info, "table": path.name, "table_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
              "pid_gains_sha256": gains_sha256(), "versions": versions()}
    (out / METADATA_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def load_trial(directory):
    """The table saved by :func:`save_trial` in ``directory`` (CSV or Parquet)."""
    import pandas as pd

    directory = Path(directory)
    for format in FORMATS:
        path = directory / f"{TABLE_STEM}.{format}"
        if path.exists():
            return pd.read_csv(path) if format == "csv" else pd.read_parquet(path)
    raise FileNotFoundError(f"no {TABLE_STEM}.csv or {TABLE_STEM}.parquet in {directory}")
