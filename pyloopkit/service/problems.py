"""Error answers of the service: one JSON shape, ``{"error": str, "problems": [...]}``.

Each problem is ``{"field", "index", "value", "reason"}`` like :class:`pyloopkit.errors.Problem`.
Values are echoed only when they are small JSON scalars; anything else is shown as a
``repr`` cut to :data:`MAX_VALUE_CHARS` characters, so an error answer never fails to encode
and never echoes a whole request back.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from ..errors import Problem

MAX_VALUE_CHARS = 200
"""Longest value (characters) echoed in a problem."""


def json_safe_value(value: Any) -> Any:
    """``value`` when it is None, a bool, an int, a finite float or a short string; else a short repr."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= MAX_VALUE_CHARS:
        return value
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 3] + "..."


def problem_json(p: Problem) -> dict:
    """One problem as JSON."""
    return {"field": p.field, "index": p.index, "value": json_safe_value(p.value), "reason": p.reason}


def error_body(error: str, problems: Iterable[Problem] = ()) -> dict:
    """The JSON body of every error answer."""
    return {"error": error, "problems": [problem_json(p) for p in problems]}


def validation_problems(errors: Iterable[dict]) -> list[Problem]:
    """Problems for FastAPI/pydantic request errors (``loc``, ``msg``, ``input``, ``type``).

    The field is the location joined by dots without its integers (``body.input_dict``); the index
    is the last integer of the location (a list position, or the character position of a JSON
    syntax error)."""
    out = []
    for e in errors:
        loc = [part for part in e.get("loc", ()) if not isinstance(part, int)]
        ints = [part for part in e.get("loc", ()) if isinstance(part, int)]
        reason = e.get("msg", "invalid")
        detail = (e.get("ctx") or {}).get("error")
        if detail and str(detail) not in reason:
            reason = f"{reason}: {detail}"
        value = None if e.get("type") == "json_invalid" else e.get("input")  # the input is not the text
        out.append(Problem(".".join(str(part) for part in loc), ints[-1] if ints else None, value, reason))
    return out
