"""Therapy settings from history: Tune's v1 wire format, a model-based estimator and autotune.

``estimate(history, current_settings, limits=None, method="model" | "autotune")`` returns an
:class:`EstimatedSettings` whose ``to_settings()`` gives the schedule keys of the PyLoopKit input
dictionary; ``answer(request, model)`` serves a Tune request in Tune's response layout.
See ``docs/tune.md``.
"""
from __future__ import annotations

from .codec import TuneFormatError, TuneRequest, TuneResponse, decode, encode
from .estimate import EstimatedSettings, Limits, answer, estimate

__all__ = ["EstimatedSettings", "Limits", "TuneFormatError", "TuneRequest", "TuneResponse", "answer", "decode",
           "encode", "estimate"]
