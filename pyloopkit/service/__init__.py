"""HTTP service over the library: ``pyloopkit serve`` (extra ``service``: FastAPI + uvicorn).

Routes (see ``docs/service.md``): ``GET /health``, ``POST /loop/update``, ``POST /loop/run``,
``POST /tune/{model}``, ``POST /meals/parse``, ``POST /meals/log``; OpenAPI docs at ``/docs``.
The routes are thin: they decode the request, call one public library function and encode
its answer. Importing this package imports nothing heavy; :func:`create_app` needs the extra.
"""
from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'pyloopkit.service' has no attribute {name!r}")
