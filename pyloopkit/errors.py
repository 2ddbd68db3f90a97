"""Typed errors and warnings raised at the library's boundary.

Every invalid input is reported as a :class:`Problem` naming the field, the
index (``None`` for a scalar field), the offending value and the reason.
:class:`InvalidInputError` carries the full list so a caller can fix all of
them at once, like Swift LoopAlgorithm's typed errors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: ``field[index] = value``: ``reason``."""

    field: str
    index: int | None
    value: Any
    reason: str

    def __str__(self) -> str:
        where = self.field if self.index is None else f"{self.field}[{self.index}]"
        value = self.value.item() if hasattr(self.value, "item") and getattr(self.value, "ndim", None) == 0 \
            else self.value  # numpy scalars print as plain numbers
        return f"{where} = {value!r}: {self.reason}"


class InvalidInputError(ValueError):
    """Input that the algorithm cannot run on; ``problems`` lists every one found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} invalid input value(s):\n{lines}")


class MissingDataError(ValueError):
    """Data the algorithm needs is absent (no glucose, no schedule covering a time, ...)."""


class LoopWarning(UserWarning):
    """A guardrail or data-quality warning; also collected under ``warnings`` in outputs."""


def raise_if(problems: list[Problem]) -> None:
    """Raise :class:`InvalidInputError` when ``problems`` is non-empty."""
    if problems:
        raise InvalidInputError(problems)
