"""Optional compilation with numba (extra ``fast``).

``jit`` compiles a function with ``numba.njit(cache=True)`` when numba is installed and returns
it unchanged otherwise; ``HAVE_NUMBA`` lets callers choose a vectorised numpy path instead of
running a compiled loop as slow plain Python.
"""
from __future__ import annotations

try:
    from numba import njit as _njit
except ImportError:  # pragma: no cover - exercised only without numba
    _njit = None

HAVE_NUMBA = _njit is not None


def jit(function):
    """``function`` compiled with numba (cached on disk) when available, else as given."""
    return function if _njit is None else _njit(cache=True)(function)
