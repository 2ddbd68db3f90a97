"""Plain words to foods and carbs: ``parse("had 2 slices of pizza and a coke")``."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from ..errors import InvalidInputError, Problem
from .lexicon import (FILLER, MASS_G, MODIFIERS, NUMBER_PHRASES, SIZE_FACTOR, SIZE_WORDS, SR_MEASURE_WORDS, UNIT_WORDS,
                      VOLUME_ML, singular, to_number)
from .mentions import Mention, cut_mentions, explicit_carbs
from .table import ABSORPTION_MINUTES, CuratedFood, FoodTable, SRFood, load_table

#: Confidence of a name found as written, found by fuzzy matching (times the score), or only in SR28.
EXACT, FUZZY, USDA_ONLY = 0.9, 0.85, 0.45
#: Most carbs one food or statement may have (g); more is read as a typing error.
MAX_CARBS_G = 1000.0
#: rapidfuzz ``ratio`` needed to accept a misspelt name (0-100).
FUZZY_CUTOFF = 84.0
_COUNT_UNITS = {"piece", "slice", "serving", "bar", "box", "bag", "loaf"}
_SKIPPED_GROUPS = {"Baby Foods", "Restaurant Foods", "Fast Foods"}
_BRAND = re.compile(r"\b[A-Z][A-Z'&.]{2,}")
_LETTERS_ONLY = str.maketrans({c: " " for c in "0123456789()[]{}%&/\\\"'.;:-+!?*#@$=<>~^_|"})
_SPLIT = re.compile(r"\s*(?:,|;|\band\b|\bwith\b|\bplus\b|&|\+|\bthen\b|\balso\b|\bn\b)\s*")


@dataclass(frozen=True)
class FoodItem:
    """One food read from the text.

    ``portion_g`` is the eaten weight in g (``None`` for bare explicit carbs), ``carbs_g`` the
    carbohydrate in g, ``confidence`` in [0, 1], ``absorption`` fast/medium/slow with
    ``absorption_minutes`` Loop's default for that class.
    """

    name: str
    words: str
    source: str
    quantity: float
    unit: str | None
    size: str | None
    portion_g: float | None
    carbs_g: float
    confidence: float
    absorption: str
    ndb: tuple[str, ...] = ()
    description: str = ""

    @property
    def absorption_minutes(self) -> float:
        return ABSORPTION_MINUTES[self.absorption]

    def to_dict(self) -> dict:
        return {"name": self.name, "words": self.words, "source": self.source, "quantity": self.quantity,
                "unit": self.unit, "size": self.size, "portion_g": self.portion_g, "carbs_g": self.carbs_g,
                "confidence": self.confidence, "absorption": self.absorption,
                "absorption_minutes": self.absorption_minutes, "ndb": list(self.ndb),
                "description": self.description}


@dataclass(frozen=True)
class MealParse:
    """What :func:`parse` understood: foods, other mentions and the fragments it could not read."""

    text: str
    at: datetime
    items: tuple[FoodItem, ...]
    mentions: tuple[Mention, ...]
    not_understood: tuple[str, ...]
    total_carbs_g: float = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "total_carbs_g", float(sum(i.carbs_g for i in self.items)))

    def to_carb_entries(self) -> dict:
        """Loop carb entries, one per food with carbs: ``carb_dates`` (all ``at``), ``carb_values`` (g),
        ``carb_absorption_times`` (minutes)."""
        eaten = [i for i in self.items if i.carbs_g > 0]
        return {"carb_dates": [self.at] * len(eaten), "carb_values": [i.carbs_g for i in eaten],
                "carb_absorption_times": [i.absorption_minutes for i in eaten]}

    def to_dict(self) -> dict:
        """A JSON-able dictionary (``at`` as ISO 8601)."""
        return {"text": self.text, "at": self.at.isoformat(), "items": [i.to_dict() for i in self.items],
                "total_carbs_g": self.total_carbs_g, "mentions": [m.to_dict() for m in self.mentions],
                "not_understood": list(self.not_understood)}


@dataclass(frozen=True)
class _Amount:
    quantity: float
    stated: bool
    unit: str | None
    size: str | None


@lru_cache(maxsize=4)
def _compounds(table: FoodTable) -> re.Pattern | None:
    """Curated names holding a splitting word ("mac and cheese"), to keep them whole."""
    names = sorted((n for n in table.curated if _SPLIT.search(n)), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")(?:e?s)?\b") if names else None


@lru_cache(maxsize=4)
def _sr_index(table: FoodTable) -> tuple[dict[str, set[str]], dict[str, frozenset[str]]]:
    """For SR28 foods outside the curated layer (built on first need): the foods holding each
    (singular) word, and the words of each food's first segment. Brand-name foods are left out."""
    stems: dict[str, str] = {}
    postings: dict[str, set[str]] = {}
    heads: dict[str, frozenset[str]] = {}
    for ndb, food in table.foods.items():
        if food.group in _SKIPPED_GROUPS or _BRAND.search(food.description):
            continue
        head, _, rest = food.description.lower().translate(_LETTERS_ONLY).partition(",")
        head_words = frozenset(stems.get(w) or stems.setdefault(w, singular(w)) for w in head.split())
        heads[ndb] = head_words
        rest_words = [stems.get(w) or stems.setdefault(w, singular(w)) for w in rest.replace(",", " ").split()]
        for word in head_words.union(rest_words):
            postings.setdefault(word, set()).add(ndb)
    return postings, heads


def _normalise(text: str) -> str:
    t = text.lower().replace("\u2019", "'").replace("w/", " with ")
    t = re.sub(r"(\d),(\d{3})\b", r"\1\2", t)
    t = re.sub(r"(?<!\d)\.|\.(?!\d)|[!?\n]", " , ", t)
    t = re.sub(r"(\d)\s*(g|kg|ml|cl|l|oz|lbs?|u|iu|gr|x)\b", r"\1 \2", t)
    t = re.sub(r"[^a-z0-9.,;/%&+' \-½¼¾]", " ", t)
    for pattern, value in NUMBER_PHRASES:
        t = pattern.sub(lambda m, v=value: f" {v or m.group(0).split()[1]} ", t)
    return re.sub(r"\s+", " ", t).strip()


def _amount(words: list[str], names: dict) -> tuple[_Amount, list[str]]:
    """Quantity, unit and size words read off ``words``; the rest are food words.

    Consecutive numbers add when the second is a fraction ("1 1/2") and multiply otherwise
    ("2 dozen"); ``x`` between a number and a food is skipped ("2 x muffin"). A unit word that
    ends a food's name in ``names`` stays a food word ("granola bar", "juice box").
    """
    quantity, stated, unit, size, rest = 1.0, False, None, None, []
    for i, w in enumerate(words):
        if i and w in UNIT_WORDS and f"{words[i - 1]} {singular(w)}" in names:
            rest.append(w)
            continue
        n = None if w in ("a", "an") else to_number(w)
        if n is not None:
            quantity = (quantity + n if n < 1 else quantity * n) if stated else n
            stated = True
        elif w == "x" and stated:
            continue
        elif unit is None and w in UNIT_WORDS and (stated or len(w) > 2):
            unit = UNIT_WORDS[w]
        elif size is None and w in SIZE_WORDS:
            size = SIZE_WORDS[w]
        else:
            rest.append(w)
    return _Amount(quantity, stated, unit, size), rest


def _exact(words: list[str], table: FoodTable, lengths: range) -> tuple[int, int, CuratedFood, float] | None:
    """The longest run of ``words`` (of a length in ``lengths``) that names a curated food; the
    rightmost of equal length, since an English food's name ends with its head word."""
    for length in lengths:
        for start in range(len(words) - length, -1, -1):
            span = words[start:start + length]
            for key in (" ".join(span), " ".join(span[:-1] + [singular(span[-1])])):
                food = table.curated.get(key.replace("_", " "))
                if food is not None:
                    return start, start + length, food, EXACT
    return None


def _fuzzy(words: list[str], table: FoodTable, lengths: range) -> tuple[int, int, CuratedFood, float] | None:
    """The best misspelt match of a run of words (of a length in ``lengths``), by rapidfuzz ``ratio``."""
    try:
        from rapidfuzz import fuzz, process
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("pyloopkit.meals needs rapidfuzz: pip install 'pyloopkit[meals]'") from e
    best = None
    for length in lengths:
        for start in range(len(words) - length + 1):
            query = " ".join(words[start:start + length]).replace("_", " ")
            if len(query) < 4:
                continue
            hit = process.extractOne(query, table.names, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
            if hit is not None and (best is None or hit[1] > best[3]):
                best = (start, start + length, table.curated[hit[0]], hit[1])
    return None if best is None else (*best[:3], FUZZY * best[3] / 100.0)


def _match(words: list[str], table: FoodTable) -> tuple[int, int, CuratedFood, float] | None:
    """Names of several words first (exact, then misspelt), then single words (exact, then misspelt)."""
    longest = min(len(words), 6)
    return (_exact(words, table, range(longest, 1, -1)) or _fuzzy(words, table, range(min(longest, 3), 1, -1))
            or _exact(words, table, range(1, 0, -1)) or _fuzzy(words, table, range(1, 0, -1)))


def _usda(words: list[str], table: FoodTable) -> SRFood | None:
    """An SR28 food whose description holds every word and whose first segment holds one of them."""
    postings, heads = _sr_index(table)
    keys = {singular(w) for w in words if len(w) > 2}
    if not keys or any(k not in postings for k in keys):
        return None
    found = [table.foods[n] for n in set.intersection(*(postings[k] for k in keys)) if keys & heads[n]]
    return min(found, key=lambda f: (len(f.description), f.ndb)) if found else None


def _sr_measure(food: SRFood, unit: str | None, size: str | None) -> float | None:
    """Grams in one ``unit`` (or one ``size`` item) from the SR28 household measures, if listed."""
    wanted = SR_MEASURE_WORDS.get(unit, ()) if unit else ()
    if size is not None and unit in (None, "piece"):
        wanted = (size,) + tuple(wanted)
    for word in wanted:
        for amount, desc, grams in food.measures():
            if desc.lower().startswith(word):
                return grams / amount
    return None


def _item_measure(food: SRFood, name: str) -> float | None:
    """Grams of one item ("5 strawberries") from an SR28 measure such as ``medium`` or ``10 grapes``."""
    stem = singular(name.split()[-1])
    for amount, desc, grams in food.measures():
        first = singular(desc.lower().split()[0].strip(",("))
        if first == "medium" or (len(first) > 3 and stem.endswith(first)):
            return grams / amount
    return None


def _curated_grams(food: CuratedFood, amount: _Amount, table: FoodTable) -> tuple[float, float]:
    """Grams in one unit of ``food`` as the user measured it, and a confidence factor."""
    unit, factor = amount.unit, 1.0
    single = table.foods[food.parts[0][0]] if len(food.parts) == 1 else None
    counted = None
    if unit is None and amount.stated and food.unit in VOLUME_ML and single is not None:
        counted = _item_measure(single, food.name)
    if counted is not None:
        grams = counted
    elif unit is None or unit == food.unit:
        grams = food.unit_grams
    elif unit in MASS_G:
        return MASS_G[unit], 1.0
    elif single is not None and _sr_measure(single, unit, None) is not None:
        grams, factor = _sr_measure(single, unit, None), 0.95
    elif unit in VOLUME_ML and food.unit in VOLUME_ML:
        grams, factor = food.unit_grams * VOLUME_ML[unit] / VOLUME_ML[food.unit], 0.85
    elif unit in _COUNT_UNITS and food.unit in _COUNT_UNITS:
        grams, factor = food.unit_grams, 0.85
    else:
        grams, factor = food.unit_grams, 0.6
    if amount.size is not None:
        sized = _sr_measure(single, "piece", amount.size) if single is not None and unit in (None, "piece") else None
        grams = sized if sized is not None else grams * SIZE_FACTOR[amount.size]
    return grams, factor


def _usda_grams(food: SRFood, amount: _Amount) -> float:
    if amount.unit in MASS_G:
        return MASS_G[amount.unit]
    grams = _sr_measure(food, amount.unit, amount.size)
    if grams is not None:
        return grams
    household = [(a, g) for a, d, g in food.measures() if not d.startswith(("oz", "lb", "fl oz", "g"))]
    grams = household[0][1] / household[0][0] if household else 100.0
    return grams * (SIZE_FACTOR[amount.size] if amount.size else 1.0)


def _item_from_curated(food: CuratedFood, words: str, amount: _Amount, confidence: float,
                       table: FoodTable) -> FoodItem:
    grams, factor = _curated_grams(food, amount, table)
    portion = amount.quantity * grams
    return FoodItem(food.name, words, "curated", amount.quantity, amount.unit or food.unit, amount.size, portion,
                    portion * food.carb_per_100g / 100.0, confidence * factor, food.absorption,
                    tuple(n for n, _ in food.parts), "; ".join(table.foods[n].description for n, _ in food.parts))


def _find(run: list[str], position: int, table: FoodTable, found: list, leftover: list[str]) -> None:
    """Append ``(position, food, words, confidence)`` for each food named in ``run`` to ``found``.

    Words before a food's name that describe it ("egg" fried rice) are not read as foods.
    """
    if not run:
        return
    hit = _match(run, table)
    if hit is None:
        sr = _usda(run, table)
        if sr is None:
            leftover.extend(run)
        else:
            found.append((position, sr, " ".join(run), USDA_ONLY))
        return
    start, stop, food, confidence = hit
    found.append((position + start, food, " ".join(run[start:stop]), confidence))
    _find([w for w in run[:start] if w not in MODIFIERS], position, table, found, leftover)
    _find(run[stop:], position + stop, table, found, leftover)


def _usda_item(food: SRFood, words: str, amount: _Amount) -> FoodItem:
    portion = amount.quantity * _usda_grams(food, amount)
    return FoodItem(food.description.split(",")[0].lower(), words, "usda", amount.quantity, amount.unit, amount.size,
                    portion, portion * food.carb_per_100g / 100.0, USDA_ONLY, food.absorption, (food.ndb,),
                    food.description)


def _read_fragment(fragment: str, table: FoodTable) -> tuple[_Amount, list[FoodItem], list[str]]:
    """The stated amount, the foods in one fragment in the order written (the first gets the
    amount) and the words left unread."""
    amount, words = _amount(fragment.split(), table.curated)
    found: list = []
    leftover: list[str] = []
    _find([w for w in words if w not in FILLER], 0, table, found, leftover)
    items = []
    for n, (_, food, matched, confidence) in enumerate(sorted(found, key=lambda f: f[0])):
        this_amount = amount if n == 0 else _Amount(1.0, False, None, None)
        items.append(_usda_item(food, matched, this_amount) if isinstance(food, SRFood)
                     else _item_from_curated(food, matched, this_amount, confidence, table))
    return amount, items, leftover


def _restate(item: FoodItem, amount: _Amount, table: FoodTable) -> FoodItem:
    """``item`` with an amount stated after it ("pizza, 2 slices")."""
    food = table.curated[item.name]
    return _item_from_curated(food, item.words, amount, item.confidence, table)


def _explicit_item(grams: float, fragment: str, items: list[FoodItem]) -> list[FoodItem]:
    """Stated carbs replace the estimate of ``items``, the foods they are about (one entry, named after
    the distinct foods, absorbed like the slowest; see :func:`_claimed_by_stated_carbs`), or stand
    alone as "carbs"."""
    if grams > MAX_CARBS_G:
        raise InvalidInputError([Problem("text", None, fragment, f"{grams:g} g of carbs is over {MAX_CARBS_G:g} g")])
    if not items:
        return [FoodItem("carbs", fragment.strip(), "stated", 1.0, None, None, None, grams, 1.0, "medium")]
    first = items[0]
    slowest = max(items, key=lambda i: i.absorption_minutes).absorption
    portion = None if any(i.portion_g is None for i in items) else sum(i.portion_g for i in items)
    return [FoodItem(" + ".join(dict.fromkeys(i.name for i in items)), " ".join(i.words for i in items), "stated",
                     first.quantity, first.unit, first.size, portion, grams, 1.0, slowest,
                     tuple(n for i in items for n in i.ndb),
                     "; ".join(i.description for i in items))]


def _claimed_by_stated_carbs(closes_text: bool, has_food: bool, uncovered: int, previous: int) -> int:
    """How many foods before a fragment with stated carbs those carbs replace.

    Stated carbs that close the text ("burger and fries, 60g carbs") are the total of every food
    not already under stated carbs; stated carbs alone in a fragment inside the text ("pizza, 70g
    carbs, and a coke") belong to the previous fragment's foods; stated carbs written beside a food
    ("2 slices of pizza 60g carbs and a coke") belong to that fragment only.
    """
    if closes_text:
        return uncovered
    return min(previous, uncovered) if not has_food else 0


def _meal_time(at) -> datetime:
    if at is None:
        return datetime.now().astimezone()
    if isinstance(at, datetime):
        return at
    from ..date import parse_datetime

    try:
        return parse_datetime(at)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidInputError([Problem("at", None, at, f"expected a datetime or ISO 8601 text ({e})")]) from e


def parse(text: str, at: datetime | str | None = None, table: FoodTable | None = None) -> MealParse:
    """Foods, carbs and other mentions in a sentence such as ``"had 2 slices of pizza and a coke"``.

    Parameters
    ----------
    text : str
        What was eaten, in English. Amounts as digits, fractions or words ("two", "a couple of",
        "half a"), units and household measures (slice, cup, bowl, can, bottle, tablespoon, g, oz,
        ...), sizes (small/medium/large), several foods joined by "and", commas or "with",
        explicit carbs ("30g carbs"). Glucose ("bg 180", "bg 7.2 mmol"), insulin ("took 4 units")
        and exercise ("walked 30 min") are returned as mentions.
    at : datetime or ISO 8601 str, optional
        Time of the meal for the carb entries (default: now, local time zone).
    table : FoodTable, optional
        Food table (default: the shipped one).

    Returns
    -------
    MealParse

    Raises
    ------
    InvalidInputError
        ``text`` is not a string, is empty, or holds neither a food, stated carbs nor a mention.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError([Problem("text", None, text, "expected a non-empty sentence about a meal")])
    table = table or load_table()
    at = _meal_time(at)
    protect = _compounds(table)
    clean, mentions = cut_mentions(_normalise(text))
    if protect is not None:
        clean = protect.sub(lambda m: m.group(0).replace(" ", "_"), clean)
    items: list[FoodItem] = []
    not_understood: list[str] = []
    fragments = _SPLIT.split(clean)
    last = max((k for k, f in enumerate(fragments) if f and f.strip()), default=-1)
    covered = previous = 0  # items already under stated carbs; items of the previous fragment
    for k, fragment in enumerate(fragments):
        fragment, stated = explicit_carbs(fragment)
        amount, found, leftover = _read_fragment(fragment, table)
        if stated is not None:
            claimed = _claimed_by_stated_carbs(k == last, bool(found), len(items) - covered, previous)
            found = _explicit_item(stated, fragment, items[len(items) - claimed:] + found)
            del items[len(items) - claimed:]
            covered = len(items) + len(found)
        elif (not found and not leftover and amount.stated and items and items[-1].source == "curated"
              and items[-1].quantity == 1.0 and items[-1].name in table.curated):
            items[-1] = _restate(items[-1], amount, table)
            continue
        items.extend(found)
        previous = len(found)
        if leftover:
            not_understood.append(" ".join(leftover).replace("_", " "))
    too_much = [Problem("text", i, item.words, f"{item.carbs_g:g} g of carbs is over {MAX_CARBS_G:g} g")
                for i, item in enumerate(items) if item.carbs_g > MAX_CARBS_G]
    if too_much:
        raise InvalidInputError(too_much)
    if not items and not mentions:
        raise InvalidInputError([Problem("text", None, text, "found no food, carbs, glucose, insulin or exercise")])
    return MealParse(text, at, tuple(items), tuple(mentions), tuple(not_understood))
