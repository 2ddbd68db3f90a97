"""Accuracy of ``pyloopkit.meals.parse`` on the project's sentence set (``sentences.csv``).

Each sentence lists the expected foods as ``name:grams`` (a portion stated by the author from
USDA household measures or typical servings; its carbs are the grams times the food's USDA
carbohydrate per 100 g) or ``name=grams of carbs`` (carbs stated in the sentence); an empty list
means "no food". Run ``PYTHONPATH=. python tests/meals/evaluate.py`` for the table.

Food precision/recall compare the sets of food names per sentence. A total is "within" when the
parsed total is within +-20% of the expected total; sentences expecting under 1 g are left out
of that share (their foods still count).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pyloopkit.errors import InvalidInputError
from pyloopkit.meals import load_table, parse

SENTENCES = Path(__file__).with_name("sentences.csv")
TOLERANCE = 0.20


@dataclass
class Scores:
    """Counts and shares for one split."""

    sentences: int = 0
    true_positive: int = 0
    predicted: int = 0
    expected: int = 0
    totals_checked: int = 0
    totals_within: int = 0

    @property
    def precision(self) -> float:
        return self.true_positive / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positive / self.expected if self.expected else 1.0

    @property
    def within(self) -> float:
        return self.totals_within / self.totals_checked if self.totals_checked else 1.0


def expected_foods(spec: str) -> tuple[set[str], float]:
    """The expected food names and total carbs (g) of one ``expected`` cell."""
    table = load_table()
    names, total = set(), 0.0
    for item in filter(None, spec.split(";")):
        if "=" in item:
            name, carbs = item.split("=")
            total += float(carbs)
        else:
            name, grams = item.split(":")
            total += float(grams) * table.curated[name].carb_per_100g / 100.0
        names.add(name)
    return names, total


def parsed_foods(text: str) -> tuple[set[str], float]:
    """Food names and total carbs (g) that :func:`parse` finds; nothing when it raises."""
    try:
        meal = parse(text)
    except InvalidInputError:
        return set(), 0.0
    return {i.name for i in meal.items}, meal.total_carbs_g


def evaluate(rows: list[dict]) -> tuple[dict[str, Scores], list[tuple]]:
    """Scores per split and the rows that miss (split, text, expected, got, carbs expected, carbs got)."""
    scores: dict[str, Scores] = {}
    misses = []
    for row in rows:
        s = scores.setdefault(row["split"], Scores())
        want, want_g = expected_foods(row["expected"])
        got, got_g = parsed_foods(row["text"])
        s.sentences += 1
        s.true_positive += len(want & got)
        s.predicted += len(got)
        s.expected += len(want)
        ok_total = True
        if want_g >= 1.0:
            s.totals_checked += 1
            ok_total = abs(got_g - want_g) <= TOLERANCE * want_g
            s.totals_within += ok_total
        if want != got or not ok_total:
            misses.append((row["split"], row["text"], sorted(want), sorted(got), round(want_g, 1), round(got_g, 1)))
    return scores, misses


def load_rows() -> list[dict]:
    with open(SENTENCES, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


if __name__ == "__main__":
    result, missed = evaluate(load_rows())
    print(f"{'split':8} {'n':>4} {'precision':>9} {'recall':>7} {'totals +-20%':>13}")
    for split, sc in result.items():
        print(f"{split:8} {sc.sentences:4d} {sc.precision:9.3f} {sc.recall:7.3f} "
              f"{sc.within:8.3f} ({sc.totals_within}/{sc.totals_checked})")
    for m in missed:
        print("miss:", *m)
