"""Glucose, insulin, exercise and explicit-carb mentions, found and cut out before foods are read."""
from __future__ import annotations

import re
from dataclasses import dataclass

MMOL_TO_MGDL = 18.01559

_NUM = r"(\d+(?:\.\d+)?)"
GLUCOSE = re.compile(r"\b(?:bg|bgl|blood sugar|blood glucose|glucose|sugar level|sugars|cgm|reading|sugar)"
                     r"(?:\s+(?:is|was|of|at|=|reads?|now))*\s*:?\s*" + _NUM +
                     r"\s*(mg/dl|mgdl|mmol/l|mmol)?")
INSULIN = re.compile(r"(?:\b(?:took|take|taking|bolused|bolus(?:ed)? of|injected|gave|dosed|shot of)\s+)?" + _NUM +
                     r"\s*(?:u|units?|iu)\b(?:\s+of\s+(?:insulin|humalog|novolog|novorapid|fiasp|lyumjev|"
                     r"lispro|aspart|apidra|lantus|tresiba|levemir|basaglar|toujeo))?(?:\s+insulin)?")
EXERCISE = re.compile(r"\b(?:(?:went for|did|had|took) (?:a |an )?)?(walk(?:ed|ing)?|run|ran|running|jog(?:ged|ging)?|"
                      r"gym|work(?:ed)? ?out|exercis(?:e|ed|ing)|bik(?:e|ed|ing)|cycl(?:e|ed|ing)|swim|swam|"
                      r"swimming|yoga|hik(?:e|ed|ing)|football|soccer|tennis|basketball|dance|dancing)"
                      r"(?:\s+(?:for\s+)?" + _NUM + r"\s*(min|mins|minutes|h|hr|hrs|hours?))?\b")
EXPLICIT_CARBS = re.compile(_NUM + r"\s*(?:g|grams?|gr)?\s*(?:of\s+)?(?:carbs?|carbohydrates?|cho)\b"
                            r"|\b(?:carbs?|carbohydrates?)\s*(?:of|=|:)?\s*" + _NUM + r"\s*(?:g|grams?)?\b")


@dataclass(frozen=True)
class Mention:
    """Something said besides food: ``kind`` is glucose (mg/dL), insulin (U) or exercise (minutes or None)."""

    kind: str
    value: float | None
    unit: str | None
    text: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "value": self.value, "unit": self.unit, "text": self.text}


def _glucose(m: re.Match) -> Mention:
    value, unit = float(m.group(1)), (m.group(2) or "").lower()
    if unit.startswith("mmol") or (not unit and "." in m.group(1) and value < 35.0):
        return Mention("glucose", value * MMOL_TO_MGDL, "mg/dL", m.group(0))
    return Mention("glucose", value, "mg/dL", m.group(0))


def _exercise(m: re.Match) -> Mention:
    if m.group(2) is None:
        return Mention("exercise", None, None, m.group(0))
    minutes = float(m.group(2)) * (60.0 if m.group(3).startswith("h") else 1.0)
    return Mention("exercise", minutes, "min", m.group(0))


def cut_mentions(text: str) -> tuple[str, list[Mention]]:
    """``text`` with glucose, insulin and exercise mentions replaced by commas, and the mentions."""
    found: list[Mention] = []
    for pattern, make in ((GLUCOSE, _glucose), (INSULIN, lambda m: Mention("insulin", float(m.group(1)), "U",
                                                                           m.group(0))),
                          (EXERCISE, _exercise)):
        def keep(m: re.Match) -> str:
            found.append(make(m))
            return " , "
        text = pattern.sub(keep, text)
    return text, found


def explicit_carbs(fragment: str) -> tuple[str, float | None]:
    """The fragment without a ``30g carbs`` phrase and the grams it states (``None`` when absent)."""
    m = EXPLICIT_CARBS.search(fragment)
    if m is None:
        return fragment, None
    grams = float(m.group(1) or m.group(2))
    return (fragment[:m.start()] + " " + fragment[m.end():]).strip(), grams
