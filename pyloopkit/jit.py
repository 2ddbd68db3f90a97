"""Optional compilation with numba (extra ``fast``), cached on disk across processes.

``jit`` compiles a function with ``numba.njit(cache=True)`` when numba is in use and returns it
unchanged otherwise; ``HAVE_NUMBA`` lets callers choose a vectorised numpy path instead of
running a compiled loop as slow plain Python.

The environment variable ``PYLOOPKIT_JIT`` chooses, when the package is imported:

- ``auto`` (default): compile when numba is installed;
- ``always``: compile, and fail at import with an error naming the extra when numba is missing;
- ``never``: do not compile (numpy paths and plain Python loops: slower, same results).

Compiled code is written beside the sources (``__pycache__/*.nbi, *.nbc``), or under
``NUMBA_CACHE_DIR`` when that is set (use it when the installation is read-only); the first
process after an install compiles once, later processes load the cache. numba renews a function's
cached code when the function's own file changes, not when a compiled function it calls from another
module does: after editing a module in a working tree, delete the ``*.nbi`` / ``*.nbc`` files (or point
``NUMBA_CACHE_DIR`` at a fresh folder). Installs write every file anew, so they are not affected.
"""
from __future__ import annotations

import os

MODES = ("auto", "always", "never")
MODE = os.environ.get("PYLOOPKIT_JIT", "auto").strip().lower() or "auto"
if MODE not in MODES:
    raise ValueError(f"PYLOOPKIT_JIT={MODE!r}: must be one of {', '.join(MODES)}")

_njit = None
if MODE != "never":
    try:
        from numba import njit as _njit
    except ImportError:  # pragma: no cover - exercised only without numba
        if MODE == "always":
            raise ImportError("PYLOOPKIT_JIT=always needs numba: pip install 'pyloopkit[fast]'") from None

HAVE_NUMBA = _njit is not None


def jit(function=None, *, nogil: bool = False):
    """``function`` compiled with numba (cached on disk) when in use, else as given; ``@jit(nogil=True)``
    releases the GIL while the compiled code runs (so that threads may run it at the same time)."""
    if function is None:
        return lambda f: jit(f, nogil=nogil)
    return function if _njit is None else _njit(cache=True, nogil=nogil)(function)

