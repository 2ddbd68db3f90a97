"""Clinical report of a :class:`~pyloopkit.io.history.History`: AGP, time in ranges, daily views, PDF.

Needs matplotlib and pandas (extra ``io`` for pandas; matplotlib as for :mod:`pyloopkit.plots`).
Submodules are imported when a name is first used, so ``import pyloopkit.report`` is cheap.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "write_report": "pyloopkit.report.pdf",
    "write_pngs": "pyloopkit.report.pdf",
    "prepare": "pyloopkit.report.data",
    "ReportData": "pyloopkit.report.data",
    "agp_percentiles": "pyloopkit.report.agp",
    "simulated_history": "pyloopkit.report.simulated",
    "prediction_errors": "pyloopkit.report.prediction",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pyloopkit.report' has no attribute {name!r}")
