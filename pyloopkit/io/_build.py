"""What every reader shares: the row collector that builds a :class:`History`, and the read error.

A reader walks its file once and hands each observation to a :class:`Collector` (times as
``datetime`` objects, aware or naive). :meth:`Collector.history` then builds the tables in bulk:
naive local times are placed in the reader's zone (a local time that does not exist or is ambiguous
at a DST change and cannot be ordered is skipped, with the reason), duplicates are skipped,
overlapping temporary basals are cut at the start of the next one, and everything is sorted.
"""
from __future__ import annotations

import datetime as _dt
import math
import warnings
from pathlib import Path

from ..errors import InvalidInputError, LoopWarning, Problem
from .history import CARB_COLUMNS, DOSE_COLUMNS, GLUCOSE_COLUMNS, SKIPPED_COLUMNS, History, _pandas

MMOL_TO_MG_DL = 18.01559
"""mg/dL per mmol/L (LoopKit's conversion)."""

BASAL_TYPES = ("BASAL", "TEMP_BASAL", "SUSPEND")
"""Dose types that are rates over an interval (U/h)."""

GLUCOSE_RANGE_MG_DL = (10.0, 1000.0)
"""Readings outside this range are not physiological: skipped with the reason."""


class ImportFormatError(InvalidInputError):
    """Input that a reader cannot read: names the file, the line or record, the field and the value."""

    def __init__(self, source: str, record, field: str, value, reason: str):
        self.source, self.record, self.field, self.value, self.reason = source, record, field, value, reason
        ValueError.__init__(self, f"{Path(str(source)).name or source}, {record}, field {field!r}: "
                                  f"{_short(value)}: {reason}")
        self.problems = [Problem(field, record if isinstance(record, int) else None, value, reason)]


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def number(value, source: str, record, field: str) -> float:
    """``value`` as a finite float, else :class:`ImportFormatError` naming where it was."""
    try:
        out = float(value.strip().replace(",", ".") if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ImportFormatError(source, record, field, value, "not a number") from None
    if not math.isfinite(out):
        raise ImportFormatError(source, record, field, value, "not a finite number")
    return out


def timestamp(value, source: str, record, field: str) -> _dt.datetime:
    """An ISO 8601 string (``Z`` or offset allowed), epoch milliseconds, or a datetime -> datetime."""
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return _dt.datetime.fromtimestamp(value / 1000.0, _dt.timezone.utc)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return _dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            pass
        for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S.%f%z", "%a %b %d %H:%M:%S %Z %Y"):
            try:
                return _dt.datetime.strptime(text, fmt)
            except ValueError:
                continue
    raise ImportFormatError(source, record, field, value, "not a date and time")


def zone(tz):
    """A tzinfo from an IANA name, a tzinfo, or None (None stays None)."""
    if tz is None or isinstance(tz, _dt.tzinfo):
        return tz
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise ImportFormatError("tz", "argument", "tz", tz, "not an IANA time zone name") from None


class Collector:
    """Rows of one source, collected record by record and turned into a :class:`History` at the end.

    Parameters
    ----------
    source : str
        File name or URL (named in errors and in ``History.source``).
    tz : str or tzinfo, optional
        Zone of naive local times in the source, and the zone of the History's tables
        (default: the zone the reader found, else UTC).
    """

    def __init__(self, source: str, tz=None):
        self.source = str(source)
        self.tz = zone(tz)
        self.tz_given = tz is not None
        self.glucose_rows: list[tuple] = []
        self.dose_rows: list[tuple] = []
        self.carb_rows: list[tuple] = []
        self.skipped_rows: list[tuple] = []
        self.settings: dict = {}

    # ------------------------------------------------------------------ adding rows
    def glucose(self, record, time, value_mg_dl: float, source_unit: str = "mg/dL", kind: str = "cgm") -> None:
        """One reading (mg/dL); outside :data:`GLUCOSE_RANGE_MG_DL` it is skipped with the reason."""
        lo, hi = GLUCOSE_RANGE_MG_DL
        if not lo <= value_mg_dl <= hi:
            self.skip(record, "glucose", value_mg_dl, f"outside {lo:g}-{hi:g} mg/dL")
            return
        self.glucose_rows.append((record, time, float(value_mg_dl), source_unit, kind))

    def dose(self, record, start, end, type_: str, value: float) -> None:
        """A bolus (U, ``end`` may equal ``start``) or a basal-like dose (U/h over [start, end))."""
        if value < 0:
            self.skip(record, "value", value, "negative insulin")
            return
        if end < start:
            self.skip(record, "end", end, "ends before it starts")
            return
        self.dose_rows.append((record, start, end, type_, float(value), "U/h" if type_ in BASAL_TYPES else "U"))

    def carb(self, record, time, grams: float, absorption_min: float = math.nan) -> None:
        """A carb entry (g; absorption time in minutes, NaN = the default)."""
        if grams < 0:
            self.skip(record, "carbs", grams, "negative carbs")
            return
        if grams == 0:
            self.skip(record, "carbs", grams, "zero grams")
            return
        self.carb_rows.append((record, time, float(grams), float(absorption_min)))

    def skip(self, record, field: str, value, reason: str) -> None:
        """Record something not imported, and why."""
        self.skipped_rows.append((str(record), field, "" if value is None else str(value), reason))

    # ------------------------------------------------------------------ building
    def history(self) -> History:
        """The History of what was collected (see the module docstring for what is done here)."""
        pd = _pandas()
        out_tz = self.tz or _dt.timezone.utc
        glucose = self._frame(self.glucose_rows, ("record",) + GLUCOSE_COLUMNS, ("time",), out_tz)
        doses = self._frame(self.dose_rows, ("record",) + DOSE_COLUMNS, ("start", "end"), out_tz)
        carbs = self._frame(self.carb_rows, ("record",) + CARB_COLUMNS, ("time",), out_tz)
        glucose = self._drop_duplicates(glucose, ["time", "kind"], "glucose_mg_dl", "reading")
        carbs = self._drop_duplicates(carbs, ["time"], "grams", "carb entry")
        doses = self._drop_duplicates(doses, ["start", "type"], "value", "dose")
        doses = self._cut_overlapping_basals(doses)
        doses = self._drop_zero_length_basals(doses)
        skipped = pd.DataFrame(self.skipped_rows, columns=list(SKIPPED_COLUMNS))
        return History(glucose=glucose.drop(columns="record"), doses=doses.drop(columns="record"),
                       carbs=carbs.drop(columns="record"), settings=self.settings, skipped=skipped,
                       source=self.source)

    def _frame(self, rows: list[tuple], columns: tuple, time_columns: tuple, out_tz):
        pd = _pandas()
        frame = pd.DataFrame(rows, columns=list(columns))
        frame = frame.astype({c: "float64" for c in columns if c in ("glucose_mg_dl", "value", "grams",
                                                                     "absorption_min")})
        bad = pd.Series(False, index=frame.index)
        for c in time_columns:
            frame[c], nat = self._times(frame[c], frame["record"], c, out_tz)
            bad |= nat
        return frame[~bad].reset_index(drop=True)

    def _times(self, values, records, field: str, out_tz):
        """Times as datetime64[ns, out_tz]; naive ones localised in the reader's zone."""
        pd = _pandas()
        if len(values) == 0:
            return pd.Series(pd.DatetimeIndex([], tz=out_tz)), pd.Series(dtype=bool)
        naive = values.map(lambda d: d.tzinfo is None or d.utcoffset() is None).to_numpy(dtype=bool)
        result = pd.Series(pd.NaT, index=values.index, dtype=f"datetime64[ns, {out_tz}]"
                           if isinstance(out_tz, str) else pd.DatetimeTZDtype(tz=out_tz))
        if (~naive).any():
            aware = pd.to_datetime(list(values[~naive]), utc=True).tz_convert(out_tz)
            result[~naive] = aware
        if naive.any():
            if self.tz is None:
                warnings.warn(f"{self.source}: local times without a zone read as UTC (pass tz=...)",
                              LoopWarning, stacklevel=4)
            local = pd.DatetimeIndex(list(values[naive]))
            try:
                placed = local.tz_localize(out_tz, ambiguous="infer", nonexistent="NaT")
            except Exception:  # ambiguity that the order cannot settle (pytz/pandas raise several types)
                placed = local.tz_localize(out_tz, ambiguous="NaT", nonexistent="NaT")
            result[naive] = placed.tz_convert(out_tz)
        result = result.dt.as_unit("ns")
        nat = result.isna()
        for record, value in zip(records[nat], values[nat]):
            self.skip(record, field, value, f"local time does not exist or is ambiguous in {out_tz} "
                                            "(daylight-saving change)")
        return result, nat

    def _drop_duplicates(self, frame, keys: list, value_column: str, what: str):
        """Keep the first of rows sharing ``keys``; the others are skipped with the reason."""
        dup = frame.duplicated(subset=keys, keep="first")
        if dup.any():
            first = frame[~dup].set_index(keys)[value_column]
            for _, row in frame[dup].iterrows():
                kept = first.loc[tuple(row[k] for k in keys)]
                same = kept == row[value_column]
                self.skip(row["record"], value_column, row[value_column],
                          f"duplicate {what} at {row[keys[0]].isoformat()}"
                          + ("" if same else f" (kept the first, {kept:g})"))
        return frame[~dup].sort_values(keys[0], kind="stable").reset_index(drop=True)

    def _cut_overlapping_basals(self, doses):
        """A temp basal or suspend that starts before the previous one ends cancels it (as on a pump)."""
        if doses.empty:
            return doses
        basal = doses["type"].isin(["TEMP_BASAL", "SUSPEND"])
        idx = doses.index[basal]
        starts, ends = doses.loc[idx, "start"], doses.loc[idx, "end"]
        next_start = starts.shift(-1)
        overlap = next_start.notna() & (next_start < ends)
        for i in idx[overlap.to_numpy()]:
            self.skip(doses.at[i, "record"], "end", doses.at[i, "end"].isoformat(),
                      f"cut to {next_start[i].isoformat()} by the next temp basal or suspend")
            doses.at[i, "end"] = next_start[i]
        return doses

    def _drop_zero_length_basals(self, doses):
        """A temp basal of zero duration only ends the running one (Nightscout's cancel): not a dose."""
        zero = doses["type"].isin(BASAL_TYPES) & (doses["end"] <= doses["start"])
        for _, row in doses[zero].iterrows():
            self.skip(row["record"], "duration", 0, "zero-length basal (it only ends the running temp basal)")
        return doses[~zero].reset_index(drop=True)


__all__ = ["Collector", "ImportFormatError", "MMOL_TO_MG_DL", "number", "timestamp", "zone"]
