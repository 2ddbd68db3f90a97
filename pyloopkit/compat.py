"""Compatibility switch for programs written against Tidepool's PyLoopKit.

PyLoopKit's ``update()`` returns an empty list for input it cannot use, and client
programs test for it (``if type(output) == list: skip``). pyloopkit raises
:class:`~pyloopkit.errors.InvalidInputError` / :class:`~pyloopkit.errors.MissingDataError`
instead. Setting the environment variable ``PYLOOPKIT_COMPAT_EMPTY_ON_ERROR=1`` (no code
change in the client) makes ``update()`` return ``[]`` for such input and emit one
:class:`~pyloopkit.errors.LoopWarning` carrying the full problem list. Any other value, or
no variable, keeps the default: raise.
"""
from __future__ import annotations

import functools
import os
import warnings

from .errors import InvalidInputError, LoopWarning, MissingDataError

ENV_EMPTY_ON_ERROR = "PYLOOPKIT_COMPAT_EMPTY_ON_ERROR"
"""Name of the environment variable that turns the switch on (value ``1``, ``true`` or ``yes``)."""

_ON = {"1", "true", "yes", "on"}


def empty_on_error() -> bool:
    """True when the environment asks for PyLoopKit's ``[]``-on-bad-input behaviour (read on every call)."""
    return os.environ.get(ENV_EMPTY_ON_ERROR, "").strip().lower() in _ON


def empty_list_on_error(function):
    """Decorate ``update()``: under the switch, input errors give ``[]`` and a warning instead of raising."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (InvalidInputError, MissingDataError) as exc:
            if not empty_on_error():
                raise
            warnings.warn(f"update() returned [] ({ENV_EMPTY_ON_ERROR} is set) because the input cannot be "
                          f"used: {exc}", LoopWarning, stacklevel=2)
            return []

    return wrapper
