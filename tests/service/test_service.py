"""The HTTP service over a real uvicorn server on 127.0.0.1: loop routes, errors, auth, size limit, CLI."""
from __future__ import annotations

import copy
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import PROJECT_ROOT, load_reference
from tests.service.conftest import LiveServer, http_call, require_service_extra

require_service_extra()

from pyloopkit import algorithm  # noqa: E402
from pyloopkit.loop_data_manager import update  # noqa: E402
from pyloopkit.pyloop_parser import input_dict_to_json, parse_report  # noqa: E402
from pyloopkit.service.app import json_ready  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

REPORT = PROJECT_ROOT / "example_files" / "synthetic_issue_report.json"


def example_input_json() -> dict:
    """The shipped synthetic day as a JSON input dictionary (what a client sends)."""
    return json.loads(json.dumps(input_dict_to_json(parse_report(REPORT))))


def library_update_json() -> dict:
    """What /loop/update should answer for the synthetic day: update() in this process, through JSON."""
    out = update(parse_report(REPORT))
    out.pop("input_data")
    return json.loads(json.dumps(json_ready(out)))


def fields(answer) -> set:
    return {(p["field"], p["index"]) for p in answer.body["problems"]}


# --------------------------------------------------------------------------- health and docs

def test_health_reports_version_and_wings(server):
    import importlib.util

    a = server.call("GET", "/health")
    assert a.status == 200
    assert a.body["status"] == "ok" and a.body["version"] == "0.1.0"
    assert a.body["wings"] == {w: importlib.util.find_spec(f"pyloopkit.{w}") is not None for w in ("tune", "meals")}


def test_openapi_lists_every_route(server):
    spec = server.call("GET", "/openapi.json").body
    assert set(spec["paths"]) == {"/health", "/loop/update", "/loop/run", "/tune/{model}", "/meals/parse",
                                  "/meals/log"}
    assert server.call("GET", "/docs").status == 200


# --------------------------------------------------------------------------- /loop/update and /loop/run

def test_update_answers_what_the_library_computes(server):
    body = example_input_json()
    a = server.call("POST", "/loop/update", body)
    assert a.status == 200, a.body
    assert a.body == library_update_json()
    assert "input_data" not in a.body
    # dates come back as ISO strings in the zone of time_to_calculate_at (the report's -05:00)
    first = dt.datetime.fromisoformat(a.body["predicted_glucose_dates"][0])
    assert first.utcoffset() == dt.timedelta(hours=-5)
    assert len(a.body["predicted_glucose_values"]) == len(a.body["predicted_glucose_dates"]) > 36
    rate, minutes = a.body["recommended_temp_basal"]
    assert 0.0 <= rate and minutes == 30.0


def test_update_at_another_time_changes_the_answer(server):
    body = example_input_json()
    body["time_to_calculate_at"] = "2026-03-02T12:00:00-05:00"
    body["glucose_dates"], body["glucose_values"] = zip(*[
        (d, v) for d, v in zip(body["glucose_dates"], body["glucose_values"]) if d <= "2026-03-02T12:00:00-05:00"])
    a = server.call("POST", "/loop/update", body)
    assert a.status == 200, a.body
    assert a.body["predicted_glucose_dates"][0] <= "2026-03-02T12:00:00-05:00"
    assert a.body["predicted_glucose_values"][0] == body["glucose_values"][-1]


def test_run_answers_what_the_library_computes_on_a_loopalgorithm_fixture(server):
    fixture = load_reference("loopalgorithm/suspend_scenario.json")
    a = server.call("POST", "/loop/run", fixture)
    assert a.status == 200, a.body
    assert a.body == json.loads(json.dumps(algorithm.run(copy.deepcopy(fixture))))
    assert a.body["recommendation"]["automatic"]["basalAdjustment"]["unitsPerHour"] == 0


def test_run_on_a_hand_built_scenario():
    """Flat glucose at target with no insulin or carbs: Loop recommends no bolus."""
    from tests.test_algorithm import flat, scenario

    with LiveServer() as s:
        a = s.call("POST", "/loop/run", scenario(flat(105)))
    assert a.status == 200, a.body
    assert a.body["recommendation"]["manual"]["amount"] == 0
    assert all(abs(p["value"] - 105) < 1e-6 for p in a.body["predictedGlucose"])


# --------------------------------------------------------------------------- invalid input: 4xx with the problem list

def test_invalid_update_input_lists_every_problem(server):
    body = example_input_json()
    body["glucose_values"][3] = "abc"
    body["carb_values"][1] = -10
    del body["basal_rate_values"]
    a = server.call("POST", "/loop/update", body)
    assert a.status == 422
    assert a.body["error"] == "invalid input"
    assert {("glucose_values", 3), ("carb_values", 1), ("basal_rate_values", None)} <= fields(a)
    bad = next(p for p in a.body["problems"] if p["field"] == "glucose_values")
    assert bad["value"] == "abc" and bad["reason"]


def test_undecodable_dates_are_problems_not_errors(server):
    body = example_input_json()
    body["glucose_dates"][0] = "yesterday-ish"
    body["dose_types"] = 7
    a = server.call("POST", "/loop/update", body)
    assert a.status == 422
    assert {"glucose_dates", "dose_types"} <= {f for f, _ in fields(a)}


def test_invalid_algorithm_input_lists_field_and_index(server):
    from tests.test_algorithm import flat, scenario

    body = scenario(flat(100))
    body["glucoseHistory"][2]["value"] = float("nan")  # JSON NaN, as Python writes it
    body["glucoseHistory"][3]["date"] = "not a date"
    a = server.call("POST", "/loop/run", body)
    assert a.status == 422
    assert {("glucoseHistory.value", 2), ("glucoseHistory.date", 3)} <= fields(a)
    assert next(p["value"] for p in a.body["problems"] if p["index"] == 3) == "not a date"


def test_missing_data_and_unexpected_errors_have_no_traceback(server, monkeypatch):
    from pyloopkit.errors import MissingDataError

    def missing(data):
        raise MissingDataError("basal timeline does not cover 2024-01-01T12:00:00Z")

    monkeypatch.setattr(algorithm, "run", missing)
    a = server.call("POST", "/loop/run", {})
    assert a.status == 422 and a.body["error"] == "missing data"
    assert "does not cover" in a.body["problems"][0]["reason"]

    def broken(data):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(algorithm, "run", broken)
    a = server.call("POST", "/loop/run", {})
    assert a.status == 500 and a.body == {"error": "internal error (logged on the server)", "problems": []}
    assert b"secret" not in a.raw and b"Traceback" not in a.raw


@pytest.mark.parametrize("route", ["/loop/update", "/loop/run", "/tune/model", "/meals/parse"])
@pytest.mark.parametrize("data, status", [
    (b"{not json", 400),
    (b'{"a": 1,}', 400),
    (b"[" * 50_000 + b"]" * 50_000, 400),
    (b"\xff\xfe\x00garbage", 400),
    (b"", 422),
    (b"[1, 2, 3]", 422),
    (b'"/etc/passwd"', 422),
    (b"42", 422),
])
def test_garbage_bodies_are_4xx_with_a_problem_list(server, route, data, status):
    a = server.call("POST", route, data=data)
    assert a.status == status, a.raw
    assert isinstance(a.body["error"], str) and isinstance(a.body["problems"], list)
    assert b"Traceback" not in a.raw


def test_json_syntax_error_gives_its_position(server):
    data = b'{"glucose_values": [1, 2,, 3]}'
    a = server.call("POST", "/loop/update", data=data)
    assert a.status == 400
    (p,) = a.body["problems"]
    assert p["index"] == data.index(b",,") + 1 and "JSON" in p["reason"]


def test_body_without_json_content_type_is_refused(server):
    a = server.call("POST", "/loop/run", data=b"{}", headers={"Content-Type": "text/plain"})
    assert a.status == 422 and a.body["problems"][0]["field"] == "body"


def test_unknown_route_and_method_answer_in_the_error_shape(server):
    assert server.call("GET", "/nope").body == {"error": "Not Found", "problems": []}
    a = server.call("GET", "/loop/update")
    assert a.status == 405 and a.body["problems"] == []


# --------------------------------------------------------------------------- token and size limit

def test_bearer_token_is_required_when_set():
    with LiveServer(token="s3cret") as s:
        assert s.call("GET", "/health").status == 200  # liveness stays open
        no = s.call("POST", "/loop/run", {})
        assert no.status == 401 and no.headers["www-authenticate"] == "Bearer"
        assert no.body["error"] == "missing or wrong bearer token"
        assert s.call("POST", "/loop/run", {}, headers={"Authorization": "Bearer wrong"}).status == 401
        assert s.call("POST", "/loop/run", {}, headers={"Authorization": "s3cret"}).status == 401
        ok = s.call("POST", "/loop/run", {}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status == 422  # past the guard: the empty input is invalid
        spec = s.call("GET", "/openapi.json").body  # the docs stay open and declare the scheme
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert spec["paths"]["/loop/update"]["post"]["security"] == [{"HTTPBearer": []}]
        assert "security" not in spec["paths"]["/health"]["get"]


def _post_chunked(url: str, path: str, chunks: list[bytes]) -> int:
    """POST ``chunks`` with chunked transfer encoding (no Content-Length) and return the status.

    Headers and the whole encoded body go out in one send, so a server that answers 413 after the
    first chunks and closes cannot break the pipe under the client before it reads the answer.
    """
    import http.client
    import urllib.parse

    where = urllib.parse.urlsplit(url)
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders(message_body=body)
        return conn.getresponse().status
    finally:
        conn.close()


def test_bodies_over_the_limit_are_413_declared_or_chunked():
    limit = 1_000
    with LiveServer(max_body_bytes=limit) as s:
        big = {"text": "x" * (2 * limit)}
        a = s.call("POST", "/loop/run", big)
        assert a.status == 413 and str(limit) in a.body["error"]
        assert _post_chunked(s.url, "/loop/run", [b'{"text": "' + b"y" * 400 + b'",'] * 5) == 413
        just_under = {"t": "z" * (limit - 20)}
        assert len(json.dumps(just_under)) <= limit
        assert s.call("POST", "/loop/run", just_under).status == 422  # read, parsed, then rejected as input


def test_create_app_refuses_a_non_positive_limit():
    from pyloopkit.service import create_app

    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(max_body_bytes=0)


# --------------------------------------------------------------------------- the command line

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_pyloopkit_serve_command_binds_localhost_with_a_token():
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYLOOPKIT_SERVICE_TOKEN": "from-env"}
    proc = subprocess.Popen([sys.executable, "-m", "pyloopkit", "serve", "--port", str(port), "--log-level",
                             "warning"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = http_call(url, "GET", "/health")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.communicate(timeout=5)[1].decode())
                time.sleep(0.1)
        assert health.status == 200
        assert http_call(url, "POST", "/loop/run", {}).status == 401
        assert http_call(url, "POST", "/loop/run", {}, headers={"Authorization": "Bearer from-env"}).status == 422
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_warns_when_exposed_without_a_token(monkeypatch, capsys):
    import uvicorn

    from pyloopkit.cli import main

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(kw))
    monkeypatch.delenv("PYLOOPKIT_SERVICE_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "9999"]) == 0
    assert served == {"host": "0.0.0.0", "port": 9999, "log_level": "info"}
    assert "without a token" in capsys.readouterr().err
    assert main(["serve"]) == 0
    assert served["host"] == "127.0.0.1" and capsys.readouterr().err == ""
