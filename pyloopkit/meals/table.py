"""The food table: USDA SR28 carbohydrate values plus the curated layer of meal names.

``data/foods.csv`` (built by ``scripts/build_food_table.py``) holds one row per SR28 food:
carbohydrate in g per 100 g and the household measures of ``WEIGHT.txt``.
``data/curated.csv`` maps the words people use ("pizza", "dal", "coke") to SR foods: a
composition ``ndb:grams+ndb:grams`` giving the grams of each SR food in one natural unit
(one slice, one can, one bowl), that unit, and an absorption class.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from ..errors import InvalidInputError, Problem

#: Loop's default absorption times (minutes) per class.
ABSORPTION_MINUTES = {"fast": 120.0, "medium": 180.0, "slow": 240.0}

#: SR food groups whose carbohydrate is absorbed fast / slowly, for foods outside the curated layer.
_FAST_GROUPS = {"Beverages", "Fruits and Fruit Juices", "Sweets"}
_SLOW_GROUPS = {"Fast Foods", "Restaurant Foods", "Meals, Entrees, and Side Dishes", "Legumes and Legume Products",
                "Nut and Seed Products", "Fats and Oils", "Beef Products", "Pork Products", "Poultry Products",
                "Lamb, Veal, and Game Products", "Finfish and Shellfish Products", "Sausages and Luncheon Meats"}


@dataclass(frozen=True)
class SRFood:
    """One SR28 food: ``carb_per_100g`` in g/100 g; ``measures_json`` parsed on demand."""

    ndb: str
    description: str
    group: str
    carb_per_100g: float
    measures_json: str

    def measures(self) -> list[tuple[float, str, float]]:
        """Household measures as ``(amount, description, grams)``."""
        return [tuple(m) for m in json.loads(self.measures_json)]

    @property
    def absorption(self) -> str:
        """Absorption class guessed from the food group."""
        if self.group in _FAST_GROUPS:
            return "fast"
        return "slow" if self.group in _SLOW_GROUPS else "medium"


@dataclass(frozen=True)
class CuratedFood:
    """A meal name mapped to SR foods: ``parts`` are ``(ndb, grams in one unit)``."""

    name: str
    aliases: tuple[str, ...]
    parts: tuple[tuple[str, float], ...]
    unit: str
    absorption: str
    unit_grams: float = field(init=False)
    carb_per_100g: float = field(init=False)

    def finish(self, foods: dict[str, SRFood]) -> "CuratedFood":
        grams = sum(g for _, g in self.parts)
        carbs = sum(g * foods[n].carb_per_100g / 100.0 for n, g in self.parts)
        object.__setattr__(self, "unit_grams", grams)
        object.__setattr__(self, "carb_per_100g", 100.0 * carbs / grams)
        return self


@dataclass(frozen=True, eq=False)
class FoodTable:
    """SR foods by NDB number and curated foods by every name and alias (lower case)."""

    foods: dict[str, SRFood]
    curated: dict[str, CuratedFood]
    names: tuple[str, ...]


def _read_csv(name: str) -> list[dict[str, str]]:
    with resources.files("pyloopkit.meals").joinpath("data", name).open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        return [dict(zip(header, r)) for r in rows]


def _parse_parts(text: str, index: int, foods: dict[str, SRFood]) -> tuple[tuple[str, float], ...]:
    parts = []
    for item in text.split("+"):
        ndb, _, grams = item.partition(":")
        try:
            value = float(grams)
        except ValueError:
            value = float("nan")
        if ndb not in foods or not value > 0:
            raise InvalidInputError([Problem("curated.composition", index, item,
                                             "expected NDB:grams with a known SR28 NDB number and grams > 0")])
        parts.append((ndb, value))
    return tuple(parts)


def build_table(food_rows: list[dict[str, str]], curated_rows: list[dict[str, str]]) -> FoodTable:
    """A :class:`FoodTable` from the rows of ``foods.csv`` and ``curated.csv``.

    Raises
    ------
    InvalidInputError
        A curated row names an unknown NDB number, a bad weight, an unknown absorption class,
        or repeats a name used by another row.
    """
    foods = {r["ndb_no"]: SRFood(r["ndb_no"], r["description"], r["food_group"], float(r["carb_g_per_100g"]),
                                 r["measures"]) for r in food_rows}
    curated: dict[str, CuratedFood] = {}
    problems = []
    for i, r in enumerate(curated_rows):
        if r["absorption"] not in ABSORPTION_MINUTES:
            problems.append(Problem("curated.absorption", i, r["absorption"], "expected fast, medium or slow"))
            continue
        aliases = tuple(a.strip().lower() for a in r["aliases"].split("|") if a.strip())
        food = CuratedFood(r["name"].lower(), aliases, _parse_parts(r["composition"], i, foods), r["unit"],
                           r["absorption"]).finish(foods)
        for key in (food.name, *aliases):
            if key in curated:
                problems.append(Problem("curated.aliases", i, key, f"already names {curated[key].name!r}"))
            curated[key] = food
    if problems:
        raise InvalidInputError(problems)
    return FoodTable(foods, curated, tuple(curated))


@lru_cache(maxsize=1)
def load_table() -> FoodTable:
    """The shipped table, read once per process."""
    return build_table(_read_csv("foods.csv"), _read_csv("curated.csv"))
