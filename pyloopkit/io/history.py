"""One object for a person's data, whatever format it came from (extra ``io``: pandas).

A :class:`History` holds tidy pandas tables, one row per observation, time-zone aware:

``glucose``
    ``time`` (datetime64[ns, tz]), ``glucose_mg_dl`` (float), ``source_unit`` ("mg/dL" or
    "mmol/L", the unit the reading was recorded in), ``kind`` ("cgm" or "smbg").
``doses``
    ``start``, ``end`` (datetime64[ns, tz]), ``type`` (a :class:`pyloopkit.dose.DoseType` name:
    "BASAL", "TEMP_BASAL", "BOLUS", "SUSPEND", ...), ``value`` (float), ``unit`` ("U" for a bolus,
    "U/h" for a basal rate).
``carbs``
    ``time`` (datetime64[ns, tz]), ``grams`` (float), ``absorption_min`` (float, NaN = the default).

``settings`` is a dictionary of the PyLoopKit settings and schedules found in the source (may be
empty); ``skipped`` is a table of what a reader did not import (``record``, ``field``, ``value``,
``reason``), so that nothing is dropped silently; ``source`` names the file or URL.
"""
from __future__ import annotations

from dataclasses import dataclass, field

GLUCOSE_COLUMNS = ("time", "glucose_mg_dl", "source_unit", "kind")
DOSE_COLUMNS = ("start", "end", "type", "value", "unit")
CARB_COLUMNS = ("time", "grams", "absorption_min")
SKIPPED_COLUMNS = ("record", "field", "value", "reason")


def _pandas():
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("pyloopkit.io needs pandas: pip install 'pyloopkit[io]'") from e
    return pd


def empty_frame(columns) -> "pd.DataFrame":
    """An empty table with the given columns (times as UTC datetimes)."""
    pd = _pandas()
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c in ("time", "start", "end") else object)
                         for c in columns})


@dataclass
class History:
    """Glucose, doses, carbs and settings of one person, as tidy time-zone-aware tables."""

    glucose: "pd.DataFrame" = field(default_factory=lambda: empty_frame(GLUCOSE_COLUMNS))
    doses: "pd.DataFrame" = field(default_factory=lambda: empty_frame(DOSE_COLUMNS))
    carbs: "pd.DataFrame" = field(default_factory=lambda: empty_frame(CARB_COLUMNS))
    settings: dict = field(default_factory=dict)
    skipped: "pd.DataFrame" = field(default_factory=lambda: empty_frame(SKIPPED_COLUMNS))
    source: str = ""

    def __post_init__(self):
        for name, columns in (("glucose", GLUCOSE_COLUMNS), ("doses", DOSE_COLUMNS),
                              ("carbs", CARB_COLUMNS), ("skipped", SKIPPED_COLUMNS)):
            missing = [c for c in columns if c not in getattr(self, name).columns]
            if missing:
                raise ValueError(f"History.{name} lacks the column(s) {missing}")
