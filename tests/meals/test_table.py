"""The shipped food table: SR28 values, the curated layer's arithmetic and its validation."""
from __future__ import annotations

import pytest

from pyloopkit.errors import InvalidInputError
from pyloopkit.meals import ABSORPTION_MINUTES, load_table
from pyloopkit.meals.table import build_table

from .scripts_build import build_rows


def test_sr28_table_has_every_food_with_carbohydrate():
    table = load_table()
    assert len(table.foods) == 8789
    banana = table.foods["09040"]
    assert banana.description == "Bananas, raw"
    assert banana.carb_per_100g == 22.84
    assert (1.0, "large (8\" to 8-7/8\" long)", 136.0) in banana.measures()


def test_curated_composite_carbs_are_the_weighted_sr_values():
    dal = load_table().curated["dal"]
    # lentils 170 g x 20.13 + onion 15 g x 9.34 + tomato 10 g x 3.89 + oil 5 g x 0, per 200 g
    assert dal.unit_grams == 200.0
    assert dal.carb_per_100g * 2.0 == pytest.approx((170 * 20.13 + 15 * 9.34 + 10 * 3.89) / 100.0)


def test_aliases_point_to_their_food_and_classes_are_loops():
    table = load_table()
    assert table.curated["chapati"] is table.curated["roti"]
    assert table.curated["coca cola"].name == "coke"
    assert {f.absorption for f in table.curated.values()} == set(ABSORPTION_MINUTES)
    assert ABSORPTION_MINUTES == {"fast": 120.0, "medium": 180.0, "slow": 240.0}


FOOD = {"ndb_no": "00001", "description": "Test food, raw", "food_group": "Sweets", "carb_g_per_100g": "50",
        "measures": "[]"}


def test_bad_curated_rows_name_the_row_and_value():
    good = {"name": "x", "aliases": "", "composition": "00001:10", "unit": "piece", "absorption": "fast"}
    assert build_table([FOOD], [good]).curated["x"].carb_per_100g == 50.0
    with pytest.raises(InvalidInputError) as e:
        build_table([FOOD], [dict(good, composition="99999:10")])
    assert e.value.problems[0].field == "curated.composition" and e.value.problems[0].index == 0
    with pytest.raises(InvalidInputError) as e:
        build_table([FOOD], [dict(good, composition="00001:-3")])
    assert e.value.problems[0].value == "00001:-3"
    with pytest.raises(InvalidInputError) as e:
        build_table([FOOD], [dict(good, absorption="quick")])
    assert e.value.problems[0].field == "curated.absorption"
    with pytest.raises(InvalidInputError) as e:
        build_table([FOOD], [good, dict(good, name="y", aliases="x")])
    assert e.value.problems[0].index == 1 and e.value.problems[0].value == "x"


def test_build_script_joins_food_carbs_groups_and_measures():
    records = {
        "FD_GROUP.txt": [["0900", "Fruits and Fruit Juices"]],
        "FOOD_DES.txt": [["09040", "0900", "Bananas, raw"], ["09999", "0900", "No carb value"]],
        "NUT_DATA.txt": [["09040", "205", "22.84"], ["09040", "203", "1.09"], ["09999", "203", "1.0"]],
        "WEIGHT.txt": [["09040", "1", "1", "medium", "118"], ["09040", "2", "0", "bad", "5"]],
    }
    assert build_rows(records) == [["09040", "Bananas, raw", "Fruits and Fruit Juices", 22.84,
                                    '[[1.0, "medium", 118.0]]']]
