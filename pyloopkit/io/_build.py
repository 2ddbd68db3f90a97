"""What every reader shares: the row collector that builds a :class:`History`, and the read error.

A reader walks its file once and hands each observation to a :class:`Collector` (times as
``datetime`` objects, aware or naive). :meth:`Collector.history` then builds the tables in bulk:
naive local times are placed in the reader's zone (a time in the spring-forward gap is skipped with
the reason; one in the repeated fall-back hour is resolved in file order), duplicates are skipped,
overlapping temporary basals are cut at the start of the next one, and everything is sorted.
"""
from __future__ import annotations

import datetime as _dt
import math
import warnings
from pathlib import Path

from ..errors import InvalidInputError, LoopWarning, Problem
from ..input_validation import MMOL_TO_MGDL
from .history import CARB_COLUMNS, DOSE_COLUMNS, GLUCOSE_COLUMNS, SKIPPED_COLUMNS, History, _pandas, zone_from_name

MMOL_TO_MG_DL = MMOL_TO_MGDL
"""mg/dL per mmol/L (LoopKit's conversion, the one the input validation uses)."""

BASAL_TYPES = ("BASAL", "TEMP_BASAL", "SUSPEND")
"""Dose types that are rates over an interval (U/h)."""

_PLACEHOLDER = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
"""Stands in for a dose end given as a duration until its start is placed in the zone."""

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
    """A tzinfo from an IANA name, a ``UTC+HH:MM`` offset, a tzinfo, or None (None stays None)."""
    if tz is None or isinstance(tz, _dt.tzinfo):
        return tz
    from zoneinfo import ZoneInfoNotFoundError

    try:
        return zone_from_name(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise ImportFormatError("tz", "argument", "tz", tz, "not an IANA time zone name nor UTC+HH:MM") from None


LOW_HIGH_CHOICES = ("skip", "limit")


def sensor_limit(c: "Collector", record, field: str, text: str, low_mg_dl: float, high_mg_dl: float,
                 low_high: str) -> float | None:
    """A CGM export's "Low"/"High" marker: None (skipped, with the reason) or the sensor's limit (mg/dL).

    ``low_high="skip"`` (default) lists the reading in ``History.skipped``; ``"limit"`` imports it at
    the sensor's reporting limit, which the true value is below (Low) or above (High).
    """
    if low_high not in LOW_HIGH_CHOICES:
        raise ImportFormatError(c.source, "argument", "low_high", low_high, f"expected one of {LOW_HIGH_CHOICES}")
    low = text.strip().lower() in ("low", "lo")
    if low_high == "skip":
        c.skip(record, field, text, f"sensor reported {'below' if low else 'above'} its range "
                                    f"({'<' if low else '>'}{low_mg_dl if low else high_mg_dl:g} mg/dL); "
                                    "low_high='limit' imports it at the limit")
        return None
    return low_mg_dl if low else high_mg_dl


def is_low_high(text) -> bool:
    """True for the Low/High markers CGM exports write instead of a number."""
    return isinstance(text, str) and text.strip().lower() in ("low", "high", "lo", "hi")


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
        self.glucose_rows: list[tuple] = []
        self.dose_rows: list[tuple] = []
        self.carb_rows: list[tuple] = []
        self.skipped_rows: list[tuple] = []
        self.settings: dict = {}
        self._seq = 0
        self._bulk_glucose: list = []
        self._bulk_doses: list = []

    def _next(self) -> int:
        """Insertion order of rows across the tables (the file order, used at a DST fall-back)."""
        self._seq += 1
        return self._seq

    # ------------------------------------------------------------------ adding rows
    def glucose(self, record, time, value_mg_dl: float, source_unit: str = "mg/dL", kind: str = "cgm") -> None:
        """One reading (mg/dL); outside :data:`GLUCOSE_RANGE_MG_DL` it is skipped with the reason."""
        lo, hi = GLUCOSE_RANGE_MG_DL
        if not lo <= value_mg_dl <= hi:
            self.skip(record, "glucose", value_mg_dl, f"outside {lo:g}-{hi:g} mg/dL")
            return
        self.glucose_rows.append((record, self._next(), time, float(value_mg_dl), source_unit, kind))

    def dose(self, record, start, end, type_: str, value: float) -> None:
        """A bolus (U, ``end`` may equal ``start``) or a basal-like dose (U/h over [start, end)).

        ``end`` is a datetime or a ``timedelta``: a duration of real time after ``start`` (use it for
        a naive local ``start`` with a duration, so that the end lands right across a DST change).
        """
        if value < 0:
            self.skip(record, "value", value, "negative insulin")
            return
        if isinstance(end, _dt.timedelta):
            if end < _dt.timedelta(0):
                self.skip(record, "duration", end, "negative duration")
                return
            if start.tzinfo is not None and start.utcoffset() is not None:
                end = start + end
        elif end < start:
            self.skip(record, "end", end, "ends before it starts")
            return
        self.dose_rows.append((record, self._next(), start, end, type_, float(value), "U/h" if type_ in BASAL_TYPES else "U"))

    def carb(self, record, time, grams: float, absorption_min: float = math.nan) -> None:
        """A carb entry (g; absorption time in minutes, NaN = the default)."""
        if grams < 0:
            self.skip(record, "carbs", grams, "negative carbs")
            return
        if grams == 0:
            self.skip(record, "carbs", grams, "zero grams")
            return
        self.carb_rows.append((record, self._next(), time, float(grams), float(absorption_min)))

    def _seqs(self, n: int):
        import numpy as np

        out = np.arange(self._seq + 1, self._seq + 1 + n)
        self._seq += n
        return out

    def glucose_many(self, records, times, values, source_unit: str, kinds) -> None:
        """Many readings at once: ``times`` aware (a DatetimeIndex), ``values`` mg/dL (numpy arrays).

        The same checks as :meth:`glucose`, vectorised (a reader's fast path for large files)."""
        pd = _pandas()
        lo, hi = GLUCOSE_RANGE_MG_DL
        ok = (values >= lo) & (values <= hi)
        for record, value in zip(records[~ok], values[~ok]):
            self.skip(record, "glucose", value, f"outside {lo:g}-{hi:g} mg/dL")
        self._bulk_glucose.append(pd.DataFrame({
            "record": records[ok], "seq": self._seqs(len(records))[ok], "time": times[ok],
            "glucose_mg_dl": values[ok].astype(float), "source_unit": source_unit, "kind": kinds[ok]}))

    def doses_many(self, records, starts, ends, type_: str, values) -> None:
        """Many doses of one type at once (aware DatetimeIndex starts/ends, numpy values); as :meth:`dose`."""
        pd = _pandas()
        negative, backwards = values < 0, (ends < starts)
        for record, value in zip(records[negative], values[negative]):
            self.skip(record, "value", value, "negative insulin")
        for record, end in zip(records[backwards & ~negative], ends[backwards & ~negative]):
            self.skip(record, "end", end, "ends before it starts")
        ok = ~negative & ~backwards
        self._bulk_doses.append(pd.DataFrame({
            "record": records[ok], "seq": self._seqs(len(records))[ok], "start": starts[ok], "end": ends[ok],
            "type": type_, "value": values[ok].astype(float), "unit": "U/h" if type_ in BASAL_TYPES else "U"}))

    def _with_bulk(self, frame, bulk: list, out_tz):
        """The row-by-row table and the bulk-added ones, in insertion order, times in ``out_tz``."""
        if not bulk:
            return frame
        pd = _pandas()
        parts = [frame] if len(frame) else []
        for b in bulk:
            b = b.copy()
            for c in ("time", "start", "end"):
                if c in b:
                    b[c] = b[c].dt.tz_convert(out_tz).dt.as_unit("ns")
            parts.append(b)
        return pd.concat(parts, ignore_index=True).sort_values("seq", kind="stable").reset_index(drop=True)

    def skip(self, record, field: str, value, reason: str) -> None:
        """Record something not imported, and why."""
        self.skipped_rows.append((str(record), field, "" if value is None else str(value), reason))

    # ------------------------------------------------------------------ building
    def history(self) -> History:
        """The History of what was collected (see the module docstring for what is done here)."""
        pd = _pandas()
        out_tz = self.tz or _dt.timezone.utc
        flags = self._daylight_flags(out_tz)
        glucose = self._with_bulk(self._frame(self.glucose_rows, GLUCOSE_COLUMNS, ("time",), out_tz, flags),
                                  self._bulk_glucose, out_tz)
        doses = self._with_bulk(self._frame(self.dose_rows, DOSE_COLUMNS, ("start", "end"), out_tz, flags),
                                self._bulk_doses, out_tz)
        carbs = self._frame(self.carb_rows, CARB_COLUMNS, ("time",), out_tz, flags)
        glucose = self._drop_duplicates(glucose, ["time", "kind"], "glucose_mg_dl", "reading")
        carbs = self._drop_duplicates(carbs, ["time"], "grams", "carb entry")
        doses = self._drop_duplicates(doses, ["start", "end", "type"], "value", "dose")
        doses = self._cut_overlapping_basals(doses)
        doses = self._drop_zero_length_basals(doses)
        skipped = pd.DataFrame(self.skipped_rows, columns=list(SKIPPED_COLUMNS))
        extra = ["record", "seq"]
        return History(glucose=glucose.drop(columns=extra), doses=doses.drop(columns=extra),
                       carbs=carbs.drop(columns=extra), settings=self.settings, skipped=skipped,
                       source=self.source)

    def _daylight_flags(self, tz) -> dict:
        """For each naive time that is ambiguous in ``tz`` (the repeated hour of a fall-back), whether it
        is daylight time: in insertion (file) order, ambiguous times are daylight time until the clock
        steps back, standard time after; a non-ambiguous time ends the episode.

        Returns ``{(seq, column position): bool}``.
        """
        pd = _pandas()
        import numpy as np

        cells = [(row[1], p, row[p]) for rows, positions in ((self.glucose_rows, (2,)), (self.dose_rows, (2, 3)),
                                                              (self.carb_rows, (2,)))
                 for row in rows for p in positions if isinstance(row[p], _dt.datetime) and row[p].tzinfo is None]
        if not cells:
            return {}
        cells.sort(key=lambda cell: cell[:2])
        local = pd.DatetimeIndex([cell[2] for cell in cells])
        ones = np.ones(len(cells), dtype=bool)
        daylight = local.tz_localize(tz, ambiguous=ones, nonexistent="NaT")
        ambiguous = (daylight.notna() & (daylight != local.tz_localize(tz, ambiguous=~ones, nonexistent="NaT")))
        flags, after, last = {}, False, None
        for (seq, p, d), amb in zip(cells, ambiguous):
            if not amb:
                after, last = False, None
                continue
            after = after or (last is not None and d < last)
            last = d
            flags[(seq, p)] = not after
        return flags

    def _frame(self, rows: list[tuple], columns: tuple, time_columns: tuple, out_tz, flags: dict):
        pd = _pandas()
        columns = ("record", "seq") + columns
        frame = pd.DataFrame(rows, columns=list(columns))
        frame = frame.astype({c: "float64" for c in columns if c in ("glucose_mg_dl", "value", "grams",
                                                                     "absorption_min")})
        bad = pd.Series(False, index=frame.index)
        for c in time_columns:
            position = columns.index(c)
            flag = [flags.get((seq, position), True) for seq in frame["seq"]] if flags else None
            values = [r[position] for r in rows]
            duration = [isinstance(v, _dt.timedelta) for v in values]  # an end given as a duration after the start
            frame[c], nat = self._times([_PLACEHOLDER if d else v for v, d in zip(values, duration)],
                                        frame["record"], c, out_tz, flag)
            if any(duration):
                frame.loc[duration, c] = frame.loc[duration, time_columns[0]] + pd.to_timedelta(
                    [v for v, d in zip(values, duration) if d])
            bad |= nat
        return frame[~bad].reset_index(drop=True)

    def _times(self, values: list, records, field: str, out_tz, daylight):
        """Times (a list of datetimes) as datetime64[ns, out_tz]; naive ones localised in the reader's zone."""
        import numpy as np

        pd = _pandas()
        naive = np.fromiter((d.tzinfo is None or d.utcoffset() is None for d in values), bool, len(values))
        if not naive.any():
            result = pd.Series(pd.to_datetime(values, utc=True).tz_convert(out_tz).as_unit("ns"), index=records.index)
            return result, pd.Series(False, index=records.index)
        if self.tz is None:
            warnings.warn(f"{self.source}: local times without a zone read as UTC (pass tz=...)",
                          LoopWarning, stacklevel=4)
        result = pd.Series(pd.NaT, index=records.index, dtype=pd.DatetimeTZDtype(unit="ns", tz=out_tz))
        if (~naive).any():
            result[~naive] = pd.to_datetime([d for d, n in zip(values, naive) if not n], utc=True).tz_convert(out_tz)
        local = pd.DatetimeIndex([d for d, n in zip(values, naive) if n])
        flags = np.asarray(daylight, dtype=bool)[naive] if daylight is not None else np.ones(naive.sum(), bool)
        result[naive] = local.tz_localize(out_tz, ambiguous=flags, nonexistent="NaT").tz_convert(out_tz)
        result = result.dt.as_unit("ns")
        nat = result.isna()
        for record, value in zip(records[nat], np.asarray(values, dtype=object)[nat.to_numpy()]):
            self.skip(record, field, value, f"local time does not exist in {out_tz} (skipped by the "
                                            "daylight-saving change)")
        return result, nat

    def _drop_duplicates(self, frame, keys: list, value_column: str, what: str):
        """Keep the first of rows sharing ``keys``; the others are skipped with the reason (the skipped
        value, its time and, when it differs, the kept value)."""
        dup = frame.duplicated(subset=keys, keep="first").to_numpy()
        if dup.any():
            dups = frame[dup]
            kept = dups[keys].merge(frame[~dup][keys + [value_column]], on=keys, how="left")[value_column]
            reason = f"duplicate {what} (same {', '.join(keys)}): the first is kept"
            self.skipped_rows.extend(
                (str(r), value_column, f"{v:g} at {t}" + ("" if v == k else f" (kept {k:g})"), reason)
                for r, v, k, t in zip(dups["record"], dups[value_column], kept, iso_times(dups[keys[0]])))
        return frame[~dup].sort_values(keys[0], kind="stable").reset_index(drop=True)

    def _cut_overlapping_basals(self, doses):
        """A temp basal or suspend that starts before the previous one ends cancels it (as on a pump)."""
        if doses.empty:
            return doses
        sub = doses[doses["type"].isin(["TEMP_BASAL", "SUSPEND"])]
        next_start = sub["start"].shift(-1)
        overlap = (next_start < sub["end"]).to_numpy()
        if overlap.any():
            idx = sub.index[overlap]
            self.skipped_rows.extend(
                (str(r), "end", f"{old} -> {new}", "cut short by the next temp basal or suspend")
                for r, old, new in zip(sub.loc[idx, "record"], iso_times(sub.loc[idx, "end"]), iso_times(next_start[overlap])))
            doses.loc[idx, "end"] = next_start[overlap].to_numpy()
        return doses

    def _drop_zero_length_basals(self, doses):
        """A temp basal of zero duration only ends the running one (Nightscout's cancel): not a dose."""
        zero = doses["type"].isin(BASAL_TYPES) & (doses["end"] <= doses["start"])
        self.skipped_rows.extend((str(r), "duration", "0", "zero-length basal (it only ends the running temp basal)")
                                 for r in doses.loc[zero, "record"])
        return doses[~zero].reset_index(drop=True)


def iso_times(times) -> list[str]:
    """ISO 8601 strings with the UTC offset of a tz-aware datetime Series (vectorised; exact to the ns)."""
    import numpy as np

    wall = times.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    minutes = ((wall - times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]"))
               // np.timedelta64(60, "s")).astype(int).tolist()
    whole = (wall.astype("int64") % 1_000_000_000 == 0).all()
    base = np.datetime_as_string(wall, unit="s" if whole else "ns").tolist()
    offsets = {m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in set(minutes)}
    return [b + offsets[m] for b, m in zip(base, minutes)]


__all__ = ["Collector", "ImportFormatError", "MMOL_TO_MG_DL", "number", "timestamp", "zone"]
