"""Pydantic request and response models of the service (they also document it at ``/docs``)."""
from __future__ import annotations

import datetime as _dt
from typing import Any

from pydantic import BaseModel, Field


class ProblemModel(BaseModel):
    """One thing wrong with the request (like :class:`pyloopkit.errors.Problem`)."""

    field: str | None = Field(description="the input field, dotted for nested ones")
    index: int | None = Field(description="position in a list field, or null for a scalar")
    value: Any = Field(description="the offending value (a short repr when not a small scalar)")
    reason: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: what went wrong and every problem found."""

    error: str
    problems: list[ProblemModel]


class HealthResponse(BaseModel):
    """Liveness, the library version, and which optional wings this installation can serve."""

    status: str = "ok"
    version: str
    wings: dict[str, bool] = Field(description="wing name -> importable here (routes of absent wings answer 501)")


class MealParseRequest(BaseModel):
    """Plain words about a meal, e.g. ``"two slices of pizza and a coke"``."""

    text: str = Field(examples=["two slices of pizza and a coke"])
    at: _dt.datetime | None = Field(default=None, description="when the meal was eaten (ISO 8601); default: now")


class MealLogRequest(MealParseRequest):
    """A meal in words plus the PyLoopKit input dictionary (as for ``/loop/update``) to add it to."""

    input_dict: dict[str, Any] = Field(description="PyLoopKit input dictionary, dates as ISO 8601 strings")
