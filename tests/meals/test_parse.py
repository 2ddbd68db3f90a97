"""parse(): amounts, units, sizes, misspellings, several foods, stated carbs, mentions, errors.

Expected carbs are hand-computed from the SR28 values in foods.csv: pizza 29.02 g/100 g (slice
107 g), cola 10.36 (can 370 g), banana 22.84 (medium 118 g, large 136 g), white rice 28.17
(cup 158 g), orange juice 10.4 (cup 248 g), sugar 99.98, cookie 65.36 (16 g).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyloopkit.errors import InvalidInputError
from pyloopkit.meals import parse
from pyloopkit.meals.lexicon import singular, to_number
from pyloopkit.meals.mentions import MMOL_TO_MGDL

AT = datetime(2026, 3, 3, 12, 0, tzinfo=timezone.utc)


def one(text):
    items = parse(text, at=AT).items
    assert len(items) == 1, items
    return items[0]


def test_aura_example_two_foods_with_their_absorption():
    meal = parse("had 2 slices of pizza and a coke", at=AT)
    assert [i.name for i in meal.items] == ["pizza", "coke"]
    assert meal.items[0].carbs_g == pytest.approx(2 * 107 * 29.02 / 100)
    assert meal.items[1].carbs_g == pytest.approx(370 * 10.36 / 100)
    assert meal.total_carbs_g == pytest.approx(2 * 107 * 29.02 / 100 + 370 * 10.36 / 100)
    assert [i.absorption for i in meal.items] == ["slow", "fast"]
    assert meal.to_carb_entries() == {"carb_dates": [AT, AT], "carb_values": [i.carbs_g for i in meal.items],
                                      "carb_absorption_times": [240.0, 120.0]}


@pytest.mark.parametrize("text, quantity", [
    ("two bananas", 2.0), ("a couple of bananas", 2.0), ("half a banana", 0.5), ("1 1/2 bananas", 1.5),
    ("one and a half bananas", 1.5), ("2 x banana", 2.0), ("a dozen bananas", 12.0), ("3 bananas", 3.0),
    ("a banana", 1.0), ("½ banana", 0.5),
])
def test_quantities_in_digits_fractions_and_words(text, quantity):
    item = one(text)
    assert item.quantity == quantity
    assert item.carbs_g == pytest.approx(quantity * 118 * 22.84 / 100)


def test_number_words_and_singulars():
    assert to_number("1/4") == 0.25 and to_number("seven") == 7.0 and to_number("pizza") is None
    assert [singular(w) for w in ("slices", "berries", "sandwiches", "potatoes", "glass", "hummus")] == \
        ["slice", "berry", "sandwich", "potato", "glass", "hummus"]


def test_units_household_measures_and_mass():
    assert one("a cup of rice").portion_g == 158.0
    # a bowl is 350 mL against the cup's 240 mL
    assert one("a bowl of rice").portion_g == pytest.approx(158 * 350 / 240)
    assert one("200g rice").carbs_g == pytest.approx(200 * 28.17 / 100)
    assert one("8 oz orange juice").portion_g == pytest.approx(8 * 28.3495)
    assert one("2 tablespoons of sugar").portion_g == pytest.approx(2 * 12.6)  # 15 mL / 5 mL x the 4.2 g teaspoon
    assert one("a can of coke").portion_g == 370.0
    assert one("a bottle of coke").portion_g == pytest.approx(370 * 500 / 355)
    assert one("a cup of banana").portion_g == 225.0  # SR28 "cup, mashed"


def test_sizes_use_sr_measures_then_a_factor():
    assert one("a large banana").portion_g == 136.0
    assert one("a small banana").portion_g == 101.0
    assert one("a large coke").portion_g == pytest.approx(370 * 1.4)


def test_counted_items_of_a_food_measured_by_volume():
    item = one("5 strawberries")  # SR28 "medium (1-1/4" dia)" 12 g
    assert item.portion_g == pytest.approx(60.0)


def test_misspellings_are_matched_with_lower_confidence():
    exact, fuzzy = one("a sandwich"), one("a sandwhich")
    assert fuzzy.name == "sandwich" and fuzzy.carbs_g == exact.carbs_g
    assert fuzzy.confidence < exact.confidence
    assert one("spagetti").name == "spaghetti"
    assert one("two chapatis").name == "roti"


def test_several_foods_with_and_commas_with_and_compound_names():
    assert [i.name for i in parse("eggs, bacon and toast with jam", at=AT).items] == \
        ["eggs", "bacon", "white bread", "jam"]
    assert [i.name for i in parse("mac and cheese", at=AT).items] == ["mac and cheese"]
    assert [i.name for i in parse("a peanut butter and jelly sandwich", at=AT).items] == ["pbj"]
    assert [i.name for i in parse("dal rice", at=AT).items] == ["dal", "rice"]
    # a describing word before a food is not another food; the head word is the last one
    assert [i.name for i in parse("egg fried rice", at=AT).items] == ["fried rice"]
    assert [i.name for i in parse("a chicken shawarma", at=AT).items] == ["gyro"]
    # foods without separators come out in the order written; the amount goes to the first
    meal = parse("2 burgers fries coke", at=AT)
    assert [(i.name, i.quantity) for i in meal.items] == [("hamburger", 2.0), ("fries", 1.0), ("coke", 1.0)]


def test_amount_stated_after_the_food():
    assert one("pizza, 2 slices").quantity == 2.0


def test_explicit_carbs_alone_and_for_a_food():
    bare = one("30g carbs")
    assert (bare.name, bare.carbs_g, bare.source, bare.confidence, bare.absorption) == \
        ("carbs", 30.0, "stated", 1.0, "medium")
    assert one("carbs: 45").carbs_g == 45.0
    pasta = one("pasta 75 grams of carbohydrates")
    assert (pasta.name, pasta.carbs_g, pasta.absorption) == ("pasta", 75.0, "medium")
    with pytest.raises(InvalidInputError):
        parse("5000g carbs", at=AT)


def test_glucose_insulin_and_exercise_are_returned_separately():
    meal = parse("bg 180, took 4 units, walked 30 min, then a banana", at=AT)
    assert [(m.kind, m.value, m.unit) for m in meal.mentions] == \
        [("glucose", 180.0, "mg/dL"), ("insulin", 4.0, "U"), ("exercise", 30.0, "min")]
    assert [i.name for i in meal.items] == ["banana"]
    mmol = parse("blood sugar 7.2 mmol", at=AT)
    assert mmol.mentions[0].value == pytest.approx(7.2 * MMOL_TO_MGDL) and mmol.items == ()
    assert parse("ran for 1 hour", at=AT).mentions[0].value == 60.0
    assert parse("bolused 2.5u", at=AT).to_carb_entries() == \
        {"carb_dates": [], "carb_values": [], "carb_absorption_times": []}


def test_foods_outside_the_curated_layer_come_from_sr28_with_low_confidence():
    item = one("kumquats")
    assert item.source == "usda" and item.ndb == ("09149",) and item.description == "Kumquats, raw" and item.confidence < 0.5


def test_not_understood_fragments_are_reported():
    meal = parse("a banana and my blue umbrella", at=AT)
    assert [i.name for i in meal.items] == ["banana"]
    assert meal.not_understood == ("blue umbrella",)


@pytest.mark.parametrize("text", ["", "   ", None, 42, "the weather is nice", "hello"])
def test_empty_or_garbage_text_raises_naming_the_field(text):
    with pytest.raises(InvalidInputError) as e:
        parse(text, at=AT)
    assert e.value.problems[0].field == "text"


def test_to_dict_is_json_and_carries_everything():
    d = json.loads(json.dumps(parse("a large coke and bg 120", at=AT).to_dict()))
    assert d["at"] == "2026-03-03T12:00:00+00:00"
    assert d["items"][0]["name"] == "coke" and d["items"][0]["size"] == "large"
    assert d["items"][0]["absorption_minutes"] == 120.0
    assert d["total_carbs_g"] == pytest.approx(370 * 1.4 * 10.36 / 100)
    assert d["mentions"] == [{"kind": "glucose", "value": 120.0, "unit": "mg/dL", "text": "bg 120"}]


def test_default_time_is_now_and_aware():
    before = datetime.now().astimezone()
    at = parse("a banana").at
    assert at.tzinfo is not None and before <= at <= datetime.now().astimezone()


def test_numbers_that_are_not_amounts_are_reported_not_used():
    meal = parse("1e5 bananas", at=AT)
    assert meal.items[0].quantity == 1.0 and meal.not_understood == ("1e5",)
    assert one("a nan").name == "naan"  # "nan" is bread, not a float


def test_implausible_amounts_raise():
    with pytest.raises(InvalidInputError) as e:
        parse("a banana and 100000 cookies", at=AT)
    assert e.value.problems[0].index == 1 and e.value.problems[0].value == "cookies"


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz0123456789 ,./%&+-x½")), max_size=60)
       | st.lists(st.sampled_from(["2", "a", "half", "of", "cup", "bowl", "pizza", "and", "with", "coke", "bg",
                                   "180", "units", "g", "carbs", "large", "1/2", "rice", "dal", "took", ","]),
                  max_size=12).map(" ".join))
def test_any_text_gives_a_parse_or_a_clear_error(text):
    try:
        meal = parse(text, at=AT)
    except InvalidInputError as e:
        assert e.problems and e.problems[0].field == "text"
        return
    entries = meal.to_carb_entries()
    assert len(entries["carb_values"]) == len(entries["carb_dates"]) == len(entries["carb_absorption_times"])
    assert all(0 < v <= 1000 for v in entries["carb_values"])
    assert meal.total_carbs_g == pytest.approx(sum(i.carbs_g for i in meal.items))
    assert all(0 < i.confidence <= 1 for i in meal.items)
    json.dumps(meal.to_dict())


def test_stated_carbs_for_several_foods_make_one_entry():
    # Stated carbs that close the text are the total of the foods before them (no double count).
    meal = parse("burger and fries 60g carbs", at=AT)
    assert [(i.name, i.carbs_g, i.source) for i in meal.items] == [("hamburger + fries", 60.0, "stated")]
    assert meal.items[0].absorption == "slow" and meal.total_carbs_g == 60.0
    meal = parse("burger fries 60g carbs", at=AT)
    assert len(meal.items) == 1
    item = meal.items[0]
    assert (item.name, item.carbs_g, item.absorption, item.source) == ("hamburger + fries", 60.0, "slow", "stated")


@pytest.mark.parametrize("text, expected", [
    ("had pizza, about 70g carbs", [("pizza", 70.0)]),
    ("a sandwich with 45g carbs", [("sandwich", 45.0)]),
    ("pizza, 70g carbs, and a coke", [("pizza", 70.0), ("coke", None)]),
    ("2 slices of pizza 60g carbs and a coke", [("pizza", 60.0), ("coke", None)]),
    ("30g carbs", [("carbs", 30.0)]),
])
def test_stated_carbs_belong_to_the_foods_they_follow(text, expected):
    """Inside the text, stated carbs alone in a fragment replace the previous fragment's foods, and
    beside a food they replace that food only; the foods after them keep their own estimate."""
    meal = parse(text, at=AT)
    assert [i.name for i in meal.items] == [name for name, _ in expected]
    for item, (_, grams) in zip(meal.items, expected):
        if grams is not None:
            assert item.carbs_g == grams and item.source == "stated"
        else:
            assert item.source != "stated" and item.carbs_g > 0


def test_meal_time_as_iso_text_or_rejected():
    assert parse("a banana", at="2026-03-03T12:00:00+00:00").at == AT
    with pytest.raises(InvalidInputError) as e:
        parse("a banana", at="not a time")
    assert e.value.problems[0].field == "at"
