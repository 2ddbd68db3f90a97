"""Requests per second of the HTTP service over loopback.

    python benchmarks/bench_service.py [--seconds 5] [--clients 1 2]

Starts ``pyloopkit serve`` in a subprocess on a free 127.0.0.1 port (one uvicorn worker), then
for each client count keeps that many keep-alive connections busy for ``--seconds`` with
``POST /loop/update`` on the shipped synthetic day (example_files/synthetic_issue_report.json
as a JSON input dictionary), and prints requests/s and median/95th-percentile latency, next to
the median time of ``update()`` called in this process on the same input (the floor) and the
requests/s of ``GET /health`` (the service overhead alone).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyloopkit import update  # noqa: E402
from pyloopkit.pyloop_parser import input_dict_to_json, parse_report  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    env.pop("PYLOOPKIT_SERVICE_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "pyloopkit", "serve", "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the server did not start")


def hammer(port: int, method: str, path: str, body: bytes | None, clients: int, seconds: float) -> list[float]:
    """Latencies (s) of every request made by ``clients`` keep-alive connections in ``seconds``."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}
        mine = []
        while time.perf_counter() < stop:
            start = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}")
            mine.append(time.perf_counter() - start)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def report(name: str, latencies: list[float], seconds: float) -> None:
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    print(f"{name:<36} {len(latencies) / seconds:8.1f} req/s   median {1e3 * statistics.median(ordered):7.2f} ms"
          f"   p95 {1e3 * p95:7.2f} ms   ({len(latencies)} requests)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    input_dict = parse_report(ROOT / "example_files" / "synthetic_issue_report.json")
    body = json.dumps(input_dict_to_json(input_dict)).encode()
    update(input_dict)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        update(input_dict)
        times.append(time.perf_counter() - start)
    print(f"update() in process (synthetic day): median {1e3 * statistics.median(times):.2f} ms; "
          f"request body {len(body) / 1e3:.1f} kB")

    port = free_port()
    proc = start_server(port)
    try:
        hammer(port, "POST", "/loop/update", body, 1, 1.0)  # warm-up (imports, JIT caches)
        report("GET /health, 1 client", hammer(port, "GET", "/health", None, 1, args.seconds), args.seconds)
        for clients in args.clients:
            report(f"POST /loop/update, {clients} client(s)",
                   hammer(port, "POST", "/loop/update", body, clients, args.seconds), args.seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"machine: {os.cpu_count()} CPU(s) reported; server: 1 uvicorn worker; Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
