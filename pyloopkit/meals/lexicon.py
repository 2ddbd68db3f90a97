"""Words for amounts: number words, units and household measures, sizes, filler words."""
from __future__ import annotations

import re
from fractions import Fraction

NUMBER_WORDS = {
    "a": 1.0, "an": 1.0, "one": 1.0, "single": 1.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0,
    "six": 6.0, "seven": 7.0, "eight": 8.0, "nine": 9.0, "ten": 10.0, "eleven": 11.0, "twelve": 12.0,
    "fifteen": 15.0, "twenty": 20.0, "half": 0.5, "quarter": 0.25, "couple": 2.0, "pair": 2.0,
    "few": 3.0, "several": 3.0, "dozen": 12.0, "double": 2.0, "triple": 3.0, "both": 2.0,
}
#: Phrases read before single words (``a couple of`` is 2, not 1 x 2).
NUMBER_PHRASES = (
    (re.compile(r"\b(?:one|1) and (?:a )?half\b"), "1.5"),
    (re.compile(r"\b(?:two|2) and (?:a )?half\b"), "2.5"),
    (re.compile(r"\b(?:a|one) and (?:a )?half\b"), "1.5"),
    (re.compile(r"\bhalf (?:a|an|of a|of an|of the|the)\b"), "0.5"),
    (re.compile(r"\b(?:a|one) quarter (?:of )?(?:a|an)?\b"), "0.25"),
    (re.compile(r"\ba (?:couple|pair|few) of\b"), None),
    (re.compile(r"\ba (?:couple|pair|few|dozen)\b"), None),
)

#: Unit word -> canonical unit.
UNIT_WORDS = {
    "slice": "slice", "slices": "slice", "piece": "piece", "pieces": "piece", "pc": "piece", "pcs": "piece",
    "cup": "cup", "cups": "cup", "mug": "mug", "mugs": "mug", "bowl": "bowl", "bowls": "bowl",
    "plate": "plate", "plates": "plate", "plateful": "plate", "serving": "serving", "servings": "serving",
    "portion": "serving", "portions": "serving", "helping": "serving", "helpings": "serving",
    "can": "can", "cans": "can", "tin": "can", "bottle": "bottle", "bottles": "bottle",
    "glass": "glass", "glasses": "glass", "pint": "pint", "pints": "pint",
    "tablespoon": "tablespoon", "tablespoons": "tablespoon", "tbsp": "tablespoon", "tbs": "tablespoon",
    "teaspoon": "teaspoon", "teaspoons": "teaspoon", "tsp": "teaspoon", "scoop": "scoop", "scoops": "scoop",
    "bar": "bar", "bars": "bar", "bag": "bag", "bags": "bag", "packet": "bag", "packets": "bag", "pack": "bag",
    "box": "box", "boxes": "box", "handful": "handful", "handfuls": "handful", "stick": "piece",
    "g": "g", "gram": "g", "grams": "g", "gr": "g", "kg": "kg", "oz": "oz", "ounce": "oz", "ounces": "oz",
    "lb": "lb", "lbs": "lb", "pound": "lb", "pounds": "lb", "ml": "ml", "l": "l", "liter": "l", "litre": "l",
    "liters": "l", "litres": "l", "cl": "cl", "wedge": "slice", "wedges": "slice", "square": "piece",
    "squares": "piece", "loaf": "loaf", "container": "container", "containers": "container", "pot": "container",
    "tub": "container", "carton": "container",
}
#: Mass units in g.
MASS_G = {"g": 1.0, "kg": 1000.0, "oz": 28.3495, "lb": 453.592}
#: Volume units in mL (a bowl, plate and handful are typical household amounts, not standards).
VOLUME_ML = {"ml": 1.0, "cl": 10.0, "l": 1000.0, "cup": 240.0, "mug": 300.0, "glass": 250.0, "can": 355.0,
             "bottle": 500.0, "pint": 473.0, "tablespoon": 15.0, "teaspoon": 5.0, "scoop": 70.0,
             "bowl": 350.0, "plate": 500.0, "handful": 40.0}
#: SR28 measure descriptions that stand for a canonical unit.
SR_MEASURE_WORDS = {"tablespoon": ("tbsp", "tablespoon"), "teaspoon": ("tsp", "teaspoon"),
                    "slice": ("slice", "wedge"), "container": ("container",), "cup": ("cup",), "can": ("can",), "bottle": ("bottle",),
                    "bar": ("bar",), "scoop": ("scoop",), "piece": ("piece", "each", "item")}

SIZE_WORDS = {"small": "small", "little": "small", "mini": "small", "medium": "medium", "regular": "medium",
              "normal": "medium", "large": "large", "big": "large", "huge": "large", "giant": "large",
              "extra large": "large", "jumbo": "large"}
#: Portion factor per size when SR28 gives no measure for it.
SIZE_FACTOR = {"small": 0.7, "medium": 1.0, "large": 1.4}

#: Words that, before a food's name, describe it rather than name another food ("egg fried rice").
MODIFIERS = frozenset("""
egg chicken beef pork lamb mutton keema meat veggie veg vegetable cheese garlic butter ham turkey tuna fish shrimp
prawn mushroom tofu paneer bacon sausage pepperoni chocolate vanilla strawberry blueberry mango apple banana
cinnamon honey spicy sweet sour whole wheat white brown fried grilled baked roasted steamed boiled toasted iced diet
protein cheesy buttered creamy crispy fresh frozen leftover homemade hot cold warm
""".split())

#: Words that carry no food meaning (verbs of eating, articles, meal names, ...).
FILLER = frozenset("""
i i've ive im i'm just had have having has ate eat eating eaten drank drink drinking drunk got get grabbed
some of the my for breakfast lunch dinner supper snack brunch dessert tea-time this morning afternoon evening
tonight today now earlier then also too plus on at in into from to with a an and or like about around approx
approximately maybe roughly ish homemade fresh little bit bite bites plain we she he they it its
was were be been is are some more another extra side order ordered shared split yesterday
""".split())


_NUMBER = re.compile(r"\d+(?:\.\d+)?|\d+/\d+")


def to_number(token: str) -> float | None:
    """``"2"``, ``"1.5"``, ``"1/2"``, ``"½"`` or a number word as a float; ``None`` otherwise."""
    token = token.replace("½", "1/2").replace("¼", "1/4").replace("¾", "3/4")
    if token in NUMBER_WORDS:
        return NUMBER_WORDS[token]
    if not _NUMBER.fullmatch(token):
        return None
    try:
        return float(Fraction(token))
    except ZeroDivisionError:
        return None


def singular(word: str) -> str:
    """A crude English singular: ``slices`` -> ``slice``, ``berries`` -> ``berry``, ``dishes`` -> ``dish``."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "oes", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
