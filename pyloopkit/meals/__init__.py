"""Meal logging in plain words: ``parse("had 2 slices of pizza and a coke")`` -> foods, carbs and
Loop carb entries with absorption times; ``log(text, input_dict)`` runs ``update()`` with them.

The food table (USDA SR28 plus a curated layer of meal names) ships in ``data/``; fuzzy matching
needs rapidfuzz (``pip install 'pyloopkit[meals]'``).
"""
from __future__ import annotations

from .parser import FoodItem, MealParse, parse
from .table import ABSORPTION_MINUTES, FoodTable, load_table
from .loop import log

__all__ = ["parse", "log", "MealParse", "FoodItem", "FoodTable", "load_table", "ABSORPTION_MINUTES"]
