"""``pyloopkit serve``: run the HTTP service with uvicorn (registered in ``pyloopkit.cli.WING_COMMANDS``)."""
from __future__ import annotations

import ipaddress
import os
import sys

from .guard import DEFAULT_MAX_BODY_BYTES

TOKEN_ENV = "PYLOOPKIT_SERVICE_TOKEN"
"""Environment variable read for the bearer token when ``--token`` is not given."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args) -> int:
    """Serve until interrupted; returns the exit code."""
    try:
        import uvicorn
    except ImportError as e:
        raise ImportError(f"pyloopkit serve needs uvicorn: pip install 'pyloopkit[service]' ({e})") from e
    from .app import create_app

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not _is_loopback(args.host) and token is None:
        print(f"warning: serving on {args.host} without a token: anyone who can reach it can use it "
              f"(set --token or {TOKEN_ENV})", file=sys.stderr)
    uvicorn.run(create_app(token=token, max_body_bytes=args.max_body_bytes), host=args.host, port=args.port,
                log_level=args.log_level)
    return 0


def register(subparsers) -> None:
    """Add the ``serve`` subcommand."""
    p = subparsers.add_parser("serve", help="serve the library over HTTP (FastAPI; docs at /docs)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV} if set)")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                   help=f"largest request body accepted, bytes (default {DEFAULT_MAX_BODY_BYTES})")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)
