"""Fuzz: bad inputs to the loop routes are answered 200 or 4xx with a problem list, never 5xx.

Derandomised (tests/conftest.py) and small: each example is one HTTP request to a live server.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.conftest import LiveServer, require_service_extra

require_service_extra()

from tests.service.test_service import example_input_json  # noqa: E402
from tests.test_algorithm import flat, scenario  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

UPDATE_BASE = example_input_json()
RUN_BASE = json.loads(json.dumps(scenario(flat(120), doses=[("bolus", -30, -30, 1.0)], carbs=[(-20, 30, 180)])))

json_scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats()
                | st.text(max_size=12) | st.sampled_from(["2024-01-01T12:00:00Z", "12:00:00", "bolus", "", "nil"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


@st.composite
def mutated(draw, base: dict):
    """``base`` with 1-3 edits: a key replaced, deleted or added, or one list element replaced or dropped."""
    d = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(d) + ["unknown_key"]))
        action = draw(st.sampled_from(["replace", "delete", "element", "truncate"]))
        if action == "delete":
            d.pop(key, None)
        elif action in ("element", "truncate") and isinstance(d.get(key), list) and d[key]:
            i = draw(st.integers(0, len(d[key]) - 1))
            if action == "truncate":
                del d[key][i]
            else:
                d[key][i] = draw(json_values)
        else:
            d[key] = draw(json_values)
    return d


@pytest.fixture(scope="module")
def live():
    with LiveServer() as s:
        yield s


def assert_answered(answer):
    assert answer.status < 500, answer.raw[:2000]
    if answer.status != 200:
        assert 400 <= answer.status < 500
        assert isinstance(answer.body["error"], str) and isinstance(answer.body["problems"], list)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=mutated(UPDATE_BASE))
def test_update_never_answers_5xx(live, body):
    assert_answered(live.call("POST", "/loop/update", body))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=mutated(RUN_BASE))
def test_run_never_answers_5xx(live, body):
    assert_answered(live.call("POST", "/loop/run", body))


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_any_json_body_is_answered_4xx(live, body):
    for route in ("/loop/update", "/loop/run"):
        answer = live.call("POST", route, body)
        assert 400 <= answer.status < 500, answer.raw[:2000]
