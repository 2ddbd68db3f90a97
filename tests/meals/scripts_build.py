"""``scripts/build_food_table.py`` loaded as a module for the tests (scripts/ is not a package)."""
import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parents[2] / "scripts" / "build_food_table.py"
_spec = importlib.util.spec_from_file_location("build_food_table", _path)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
build_rows = _module.build_rows
