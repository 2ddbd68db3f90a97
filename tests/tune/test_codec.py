"""Tune v1 codec: hand-decoded examples, every malformed case named, round trips."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from pyloopkit.errors import InvalidInputError
from pyloopkit.tune import TuneFormatError, decode, encode
from pyloopkit.tune.codec import Timeline, TuneRequest, delta, run_length, undelta
from pyloopkit.tune.data import from_request

T0 = 1576623834


def payload(**changes):
    base = {
        "version": 1, "timezone": "US/Pacific",
        "basal_rate_schedule": {"index": [0, 360], "values": [0.25, 0.4]},
        "timelines": [
            {"type": "basal", "parameters": {"delay": 6, "peak": 65, "duration": 200},
             "index": [T0, 300], "values": [500, -200], "durations": [3600, -3300]},
            {"type": "insulin", "parameters": {"delay": 6, "peak": 65, "duration": 200},
             "index": [T0, 600], "values": [50, 100]},
            {"type": "carb", "parameters": {"delay": 15, "duration": 120}, "index": [T0, 164], "values": [10, -5]},
            {"type": "glucose", "index": [T0, 300, 300], "values": [110, 2, -4]},
        ],
    }
    base.update(changes)
    return base


def problems_of(p):
    with pytest.raises(TuneFormatError) as e:
        decode(p)
    return {(x.field, x.index): x for x in e.value.problems}


def test_decodes_the_readme_layout_by_hand():
    req = decode(payload())
    basal, insulin, carb, glucose = req.timelines
    assert basal.index_s.tolist() == [T0, T0 + 300]
    assert basal.values.tolist() == [500, 300]          # mU/h
    assert basal.durations_s.tolist() == [3600, 300]    # delta encoded like index and values
    assert insulin.index_s.tolist() == [T0, T0 + 600] and insulin.values.tolist() == [50, 150]
    assert carb.values.tolist() == [10, 5] and carb.parameters == {"delay": 15.0, "duration": 120.0}
    assert glucose.values.tolist() == [110, 112, 108]
    assert req.basal_rate_schedule.index_min == [0, 360] and req.insulin_sensitivity_schedule is None


def test_units_on_the_grid():
    obs = from_request(decode(payload()))
    # basal: 500 mU/h for 3600 s + 300 mU/h for 300 s = 0.5 + 0.025 U; insulin 50 + 150 mU = 0.2 U
    assert sum(s.amount.sum() for s in obs.insulin) == pytest.approx(0.5 + 0.025 + 0.2, abs=1e-12)
    assert obs.carbs[0].amount.sum() == pytest.approx(15.0)
    assert obs.carbs[0].absorption_min == 120.0 and obs.carbs[0].delay_min == 15.0
    assert np.nansum(obs.glucose) == pytest.approx(330.0)


def test_run_length_pairs_expand_after_delta():
    p = payload()
    p["timelines"][3] = {"type": "glucose", "index": [T0, [300, 2]], "values": [110, [2, 2]]}
    g = decode(p).timelines[3]
    assert g.index_s.tolist() == [T0, T0 + 300, T0 + 600] and g.values.tolist() == [110, 112, 114]


def test_nan_is_rejected_with_field_and_index():
    p = json.loads(json.dumps(payload()).replace("[110, 2, -4]", "[110, NaN, -4]"))
    probs = problems_of(p)
    assert ("timelines[3].values", 1) in probs
    assert isinstance(probs[("timelines[3].values", 1)].value, float) and math.isnan(probs[("timelines[3].values", 1)].value)


def test_unsorted_wrong_lengths_unknown_type_and_more_are_all_listed():
    p = payload(version=2, timezone="Mars/Olympus", tuning_limit=1.5, maximum_schedule_item_count=0)
    p["timelines"][3]["index"] = [T0, 300, -600]          # goes back in time
    p["timelines"][1]["values"] = [50]                    # length mismatch
    p["timelines"].append({"type": "ketone", "index": [T0], "values": [1]})
    p["carb_ratio_schedule"] = {"index": [0, 1440], "values": [10, 12]}
    probs = problems_of(p)
    assert ("version", None) in probs and ("timezone", None) in probs
    assert ("timelines[3].index", 2) in probs and probs[("timelines[3].index", 2)].value == T0 - 300
    assert ("timelines[1]", None) in probs and "same decoded length" in probs[("timelines[1]", None)].reason
    assert ("timelines[4].type", None) in probs and probs[("timelines[4].type", None)].value == "ketone"
    assert ("carb_ratio_schedule.index", 1) in probs
    assert ("tuning_limit", None) in probs and ("maximum_schedule_item_count", None) in probs
    assert issubclass(TuneFormatError, InvalidInputError)


def test_missing_durations_negative_values_and_unknown_fields():
    p = payload(extra=1)
    del p["timelines"][0]["durations"]
    p["timelines"][2]["values"] = [10, -20]
    probs = problems_of(p)
    assert probs[("timelines[0]", None)].value == ["durations"]
    assert ("timelines[2].values", 1) in probs and probs[("timelines[2].values", 1)].value == -10
    assert probs[("request", None)].value == ["extra"]
    assert ("request", None) in problems_of([1, 2])


def test_carb_duration_zero_and_absurd_spans():
    p = payload()
    p["timelines"][2]["parameters"] = {"delay": 15, "duration": 0}
    assert ("timelines[2].parameters.duration", None) in problems_of(p)
    p = payload()
    p["timelines"][3]["index"] = [T0, 300, 10 ** 9]
    with pytest.raises(InvalidInputError) as e:
        from_request(decode(p))
    assert e.value.problems[0].field == "timestamps" and e.value.problems[0].value > 400


def test_ios_gmt_offset_timezone():
    assert decode(payload(timezone="GMT-0800")).timezone == "GMT-0800"


def test_delta_and_run_length_by_hand():
    assert delta([5, 8, 8, 11]) == [5, 3, 0, 3]
    assert run_length([5, 3, 3, 3, 0, 0]) == [5, [3, 3], [0, 2]]
    assert undelta([5, 3, 0, 3]).tolist() == [5, 8, 8, 11]


ints = st.integers(min_value=0, max_value=10**6)


@st.composite
def requests(draw):
    timelines = []
    for kind in draw(st.lists(st.sampled_from(["basal", "insulin", "carb", "glucose"]), min_size=1, max_size=4)):
        n = draw(st.integers(0, 30))
        steps = draw(st.lists(st.integers(1 if kind == "glucose" else 0, 900), min_size=n, max_size=n))
        index = np.cumsum([T0] + steps)[:n].astype(np.int64)
        low = 1 if kind == "glucose" else 0
        values = np.array(draw(st.lists(st.integers(low, 5000), min_size=n, max_size=n)), dtype=np.int64)
        durations = (np.array(draw(st.lists(st.integers(0, 7200), min_size=n, max_size=n)), dtype=np.int64)
                     if kind == "basal" else None)
        params = ({"delay": 10.0, "peak": 75.0, "duration": 360.0} if kind in ("basal", "insulin") else
                  {"delay": 15.0, "duration": 180.0} if kind == "carb" else {})
        timelines.append(Timeline(kind, index, values, durations, params))
    limit = draw(st.none() | st.floats(0.0, 0.9))
    return TuneRequest("Europe/Paris", timelines, tuning_limit=limit,
                       maximum_schedule_item_count=draw(st.none() | st.integers(1, 48)))


@given(requests(), st.booleans())
def test_round_trip_is_exact_for_integers(req, rle):
    wire = json.loads(json.dumps(encode(req, run_length_encoding=rle)))
    back = decode(wire)
    assert encode(back, run_length_encoding=rle) == wire
    assert [t.type for t in back.timelines] == [t.type for t in req.timelines]
    for a, b in zip(req.timelines, back.timelines):
        assert a.index_s.tolist() == b.index_s.tolist() and a.values.tolist() == b.values.tolist()
        assert (a.durations_s is None) == (b.durations_s is None)
        if a.durations_s is not None:
            assert a.durations_s.tolist() == b.durations_s.tolist()
    assert back.tuning_limit == req.tuning_limit


@given(st.lists(st.floats(0.0, 500.0, allow_nan=False), min_size=1, max_size=50), st.booleans())
def test_round_trip_of_float_values_is_within_an_ulp_of_the_sum(values, rle):
    req = TuneRequest("UTC", [Timeline("glucose", T0 + 300 * np.arange(len(values)), np.array(values) + 1.0)])
    back = decode(json.loads(json.dumps(encode(req, run_length_encoding=rle))))
    np.testing.assert_allclose(back.timelines[0].values, np.array(values) + 1.0, rtol=1e-12, atol=1e-9)
