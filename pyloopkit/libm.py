"""Element-wise ``exp`` with the C library's bits, the ``exp`` compiled code computes.

numpy evaluates float64 ``exp`` with its own vector code on CPUs with AVX-512 (on others it calls the
C library), and that code may differ from the C library's ``exp`` in the last bit; code compiled by
numba calls the C library's. The Loop core's array paths evaluate the exponential insulin curve
through :func:`exp`, so that a compiled pass (:mod:`pyloopkit.core_kernel`, :mod:`pyloopkit.dose_math`,
:mod:`pyloopkit.insulin_math`) and its array path give the same bits on every CPU. Without numba
there is no compiled pass to agree with, and :func:`exp` is numpy's.
"""
from __future__ import annotations

import numpy as np

from .jit import HAVE_NUMBA, jit


@jit
def _exp_into(x, out):
    """``out[i] = exp(x[i])`` with the C library's ``exp``, one value after the other (1-D arrays)."""
    for i in range(x.size):
        out[i] = np.exp(x[i])


def exp(x) -> np.ndarray:
    """``e ** x`` element-wise: a float64 array of ``x``'s shape, with the C library's bits when
    numba is in use (numpy's ``exp`` otherwise)."""
    x = np.asarray(x, dtype=float)
    if not HAVE_NUMBA:
        return np.exp(x)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    _exp_into(flat, out)
    return out.reshape(x.shape)
