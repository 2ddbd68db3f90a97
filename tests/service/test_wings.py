"""The routes of the optional wings (tune, meals) over a live server.

Each wing has two sets of tests: without the wing its routes must answer 501 naming the missing
module; with it (after the wings are merged) the routes must answer exactly what the library
answers in this process, through JSON. The set that does not apply is skipped with its reason.
"""
from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
import math

import pytest

from tests.service.conftest import require_service_extra

require_service_extra()

from pyloopkit.service.app import json_ready  # noqa: E402
from tests.service.test_service import example_input_json  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

HAS_TUNE = importlib.util.find_spec("pyloopkit.tune") is not None
HAS_MEALS = importlib.util.find_spec("pyloopkit.meals") is not None
needs_tune = pytest.mark.skipif(not HAS_TUNE, reason="pyloopkit.tune (branch tune) is not merged here yet")
needs_meals = pytest.mark.skipif(not HAS_MEALS, reason="pyloopkit.meals (branch meals) is not merged here yet")
without_tune = pytest.mark.skipif(HAS_TUNE, reason="pyloopkit.tune is installed: its real route is tested")
without_meals = pytest.mark.skipif(HAS_MEALS, reason="pyloopkit.meals is installed: its real routes are tested")

MEAL = "two slices of pizza and a coke"


# --------------------------------------------------------------------------- a Tune v1 request

def delta(values: list) -> list:
    """Tune's delta encoding: the first value, then differences from the previous one."""
    return [values[0]] + [b - a for a, b in zip(values, values[1:])]


def tune_request(days: int = 3, start_unix: int = 1_576_627_200) -> dict:
    """A small Tune version 1 request (layout of Tune's README): basal 1 U/h every 30 min (mU/h,
    durations s), a 4 U bolus (mU) and 40 g of carbs at 08:00, 13:00 and 19:00, glucose every
    5 min (mg/dL) with a rise after each meal; current schedules indexed by minutes since midnight."""
    five_min = list(range(start_unix, start_unix + days * 86400, 300))
    meals = [start_unix + d * 86400 + h * 3600 for d in range(days) for h in (8, 13, 19)]

    def glucose(t: int) -> int:
        rise = sum(60.0 * math.exp(-((t - m - 3600) / 3600.0) ** 2) for m in meals)
        return round(110 + rise + 10 * math.sin(2 * math.pi * (t - start_unix) / 86400))

    basal_times = list(range(start_unix, start_unix + days * 86400, 1800))
    insulin = {"delay": 6, "peak": 65, "duration": 200}
    return {
        "version": 1,
        "timezone": "UTC",
        "minimum_time_interval": 1800,
        "maximum_schedule_item_count": 48,
        "allowed_basal_rates": [round(0.05 * i, 2) for i in range(61)],
        "basal_insulin_parameters": insulin,
        "insulin_sensitivity_schedule": {"index": [0, 720], "values": [50, 45]},
        "carb_ratio_schedule": {"index": [0], "values": [10]},
        "basal_rate_schedule": {"index": [0, 360], "values": [0.9, 1.0]},
        "tuning_limit": 0.35,
        "timelines": [
            {"type": "basal", "parameters": insulin, "index": delta(basal_times),
             "values": delta([1000] * len(basal_times)), "durations": [1800] * len(basal_times)},
            {"type": "insulin", "parameters": insulin, "index": delta(meals), "values": delta([4000] * len(meals))},
            {"type": "carb", "parameters": {"delay": 15, "duration": 180}, "index": delta(meals),
             "values": delta([40] * len(meals))},
            {"type": "glucose", "index": delta(five_min), "values": delta([glucose(t) for t in five_min])},
        ],
    }


def in_process(call):
    """``(200, JSON answer)`` or ``(422, error name)`` for what the library does with the same input."""
    from pyloopkit.errors import InvalidInputError, MissingDataError

    try:
        return 200, json.loads(json.dumps(call()))
    except InvalidInputError:
        return 422, "invalid input"
    except MissingDataError:
        return 422, "missing data"


# --------------------------------------------------------------------------- tune

@without_tune
def test_tune_route_without_the_wing_is_501(server):
    a = server.call("POST", "/tune/model", tune_request(days=1))
    assert a.status == 501 and "pyloopkit.tune" in a.body["error"]


@needs_tune
def test_tune_route_answers_what_the_library_answers(server):
    from pyloopkit import tune

    request = tune_request()
    status, expected = in_process(lambda: json_ready(tune.answer(copy.deepcopy(request), model="model")))
    a = server.call("POST", "/tune/model", request)
    assert a.status == status, a.body
    if status != 200:
        assert a.body["error"] == expected and a.body["problems"]
        return
    assert a.body == expected
    assert a.body["version"] == 1 and a.body["timezone"] == "UTC"
    for name in ("insulin_sensitivity_schedule", "carb_ratio_schedule", "basal_rate_schedule"):
        index, values = a.body[name]["index"], a.body[name]["values"]
        assert len(index) == len(values) >= 1 and index == sorted(index) and 0 <= index[0] < 1440
        assert all(v > 0 for v in values)
    assert math.isfinite(a.body["training_loss"])


@needs_tune
@pytest.mark.parametrize("breakage", ["short values", "unknown type", "no version", "NaN glucose"])
def test_malformed_tune_request_is_422_with_problems(server, breakage):
    request = tune_request(days=1)
    glucose = request["timelines"][3]
    if breakage == "short values":
        glucose["values"] = glucose["values"][:-5]
    elif breakage == "unknown type":
        request["timelines"].append({"type": "exercise", "index": [1_576_627_200], "values": [1]})
    elif breakage == "no version":
        del request["version"]
    else:
        glucose["values"][10] = float("nan")
    a = server.call("POST", "/tune/model", request)
    assert a.status == 422, a.body
    assert a.body["error"] == "invalid input"
    assert a.body["problems"] and all(p["reason"] for p in a.body["problems"])


# --------------------------------------------------------------------------- meals

@without_meals
@pytest.mark.parametrize("route, body", [("/meals/parse", {"text": MEAL}),
                                         ("/meals/log", {"text": MEAL, "input_dict": {}})])
def test_meal_routes_without_the_wing_are_501(server, route, body):
    a = server.call("POST", route, body)
    assert a.status == 501 and "pyloopkit.meals" in a.body["error"]


@needs_meals
def test_meals_parse_answers_what_the_library_answers(server):
    from pyloopkit import meals

    at = "2026-03-02T12:30:00-05:00"
    status, expected = in_process(lambda: json_ready(meals.parse(MEAL, at=dt.datetime.fromisoformat(at)).to_dict()))
    a = server.call("POST", "/meals/parse", {"text": MEAL, "at": at})
    assert status == 200 and a.status == 200, a.body
    assert a.body == expected
    text = json.dumps(a.body).lower()
    assert "pizza" in text and ("coke" in text or "cola" in text)
    carbs = meals.parse(MEAL, at=dt.datetime.fromisoformat(at)).to_carb_entries()["carb_values"]
    assert 75.0 <= sum(carbs) <= 145.0  # about 70 g for two slices and 39 g for a can (issue 15)


@needs_meals
def test_meals_log_answers_what_the_library_answers(server):
    from pyloopkit import meals
    from pyloopkit.service.app import decode_input_dict

    input_json = example_input_json()
    at = input_json["time_to_calculate_at"]
    status, expected = in_process(lambda: json_ready(
        meals.log(MEAL, decode_input_dict(copy.deepcopy(input_json)), at=dt.datetime.fromisoformat(at))))
    a = server.call("POST", "/meals/log", {"text": MEAL, "input_dict": input_json, "at": at})
    assert a.status == status == 200, a.body
    assert a.body == expected
    assert "pizza" in json.dumps(a.body).lower()


@needs_meals
@pytest.mark.parametrize("text", ["", "   ", "qwzx vbnm plok"])
def test_meals_parse_of_nothing_edible_is_422(server, text):
    a = server.call("POST", "/meals/parse", {"text": text})
    assert a.status == 422 and a.body["problems"], a.body


@needs_meals
def test_meals_log_with_a_broken_input_dict_lists_its_problems(server):
    input_json = example_input_json()
    input_json["glucose_values"][0] = "high"
    a = server.call("POST", "/meals/log", {"text": MEAL, "input_dict": input_json})
    assert a.status == 422
    assert ("glucose_values", 0) in {(p["field"], p["index"]) for p in a.body["problems"]}
