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
``app_output`` keeps what the source's own algorithm computed (a Loop report's prediction and
recommendations), JSON-able.

In ``settings``: the schedule keys of the PyLoopKit input dictionary (start times as ``"HH:MM:SS"``),
``settings_dictionary`` (limits, insulin model, ...) and ``timezone`` (IANA name of the source's zone);
the newest settings when the source kept several, all of them in ``timeline`` (a list of ``{"start":
ISO time, "settings": {...}}``, oldest first), which :meth:`History.settings_at` and
:meth:`History.to_input_dict` follow.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field, replace as _replace
from pathlib import Path

GLUCOSE_COLUMNS = ("time", "glucose_mg_dl", "source_unit", "kind")
DOSE_COLUMNS = ("start", "end", "type", "value", "unit")
CARB_COLUMNS = ("time", "grams", "absorption_min")
SKIPPED_COLUMNS = ("record", "field", "value", "reason")
_TEXT_COLUMNS = ("source_unit", "kind", "type", "unit")


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
    app_output: dict = field(default_factory=dict)

    def __post_init__(self):
        for name, columns in (("glucose", GLUCOSE_COLUMNS), ("doses", DOSE_COLUMNS),
                              ("carbs", CARB_COLUMNS), ("skipped", SKIPPED_COLUMNS)):
            missing = [c for c in columns if c not in getattr(self, name).columns]
            if missing:
                raise ValueError(f"History.{name} lacks the column(s) {missing}")

    def __repr__(self) -> str:
        return (f"History({self.source!r}: {len(self.glucose)} readings, {len(self.doses)} doses, "
                f"{len(self.carbs)} carb entries, {len(self.skipped)} skipped, zone {self.tz})")

    # ------------------------------------------------------------------ views
    @property
    def tz(self):
        """The tables' time zone (of the first non-empty table among glucose, doses, carbs; else UTC)."""
        for column in (self.glucose["time"], self.doses["start"], self.carbs["time"]):
            if len(column) and getattr(column.dt, "tz", None) is not None:
                return column.dt.tz
        return _dt.timezone.utc

    def _timestamp(self, value):
        """A pandas Timestamp in the tables' zone (naive values are local times there)."""
        pd = _pandas()
        t = pd.Timestamp(value)
        return t.tz_localize(self.tz) if t.tzinfo is None else t.tz_convert(self.tz)

    def slice(self, start=None, end=None) -> "History":
        """The data in ``[start, end)``: readings and carbs dated there, doses overlapping it
        (basal-like doses are clipped to the window; boluses are kept when they start inside).

        ``start``/``end``: datetimes or ISO strings (naive: local time in the tables' zone); None: open.
        """
        pd = _pandas()
        lo = self._timestamp(start) if start is not None else pd.Timestamp.min.tz_localize("UTC")
        hi = self._timestamp(end) if end is not None else pd.Timestamp.max.tz_localize("UTC")
        g = self.glucose[(self.glucose["time"] >= lo) & (self.glucose["time"] < hi)]
        c = self.carbs[(self.carbs["time"] >= lo) & (self.carbs["time"] < hi)]
        d = self.doses
        bolus = d["type"] == "BOLUS"
        keep = (bolus & (d["start"] >= lo) & (d["start"] < hi)) | (~bolus & (d["end"] > lo) & (d["start"] < hi))
        d = d[keep].copy()
        basal = d["type"] != "BOLUS"
        if start is not None:
            d.loc[basal & (d["start"] < lo), "start"] = lo
        if end is not None:
            d.loc[basal & (d["end"] > hi), "end"] = hi
        return _replace(self, glucose=g.reset_index(drop=True), carbs=c.reset_index(drop=True),
                        doses=d.reset_index(drop=True))

    def resample(self, minutes: float = 5.0) -> "History":
        """Glucose on a regular grid: each ``minutes``-long bin (aligned to the Unix epoch, which
        Loop's 5-minute grid shares) gets the mean of its CGM readings, dated at the bin start; empty
        bins stay absent (gaps are not filled). Finger sticks, doses and carbs are unchanged."""
        pd = _pandas()
        cgm = self.glucose[self.glucose["kind"] == "cgm"]
        if cgm.empty:
            return self
        binned = (cgm.set_index("time")["glucose_mg_dl"]
                  .resample(pd.Timedelta(minutes=minutes), origin="epoch").mean().dropna())
        units = cgm.set_index("time")["source_unit"].resample(pd.Timedelta(minutes=minutes), origin="epoch").first()
        grid = pd.DataFrame({"time": binned.index, "glucose_mg_dl": binned.to_numpy(),
                             "source_unit": units.reindex(binned.index).to_numpy(), "kind": "cgm"})
        glucose = pd.concat([grid, self.glucose[self.glucose["kind"] != "cgm"]], ignore_index=True)
        return _replace(self, glucose=glucose.sort_values("time", kind="stable").reset_index(drop=True))

    # ------------------------------------------------------------------ to the algorithm
    def to_input_dict(self, at=None, settings: dict | None = None, hours: float = 24.0) -> dict:
        """The PyLoopKit input dictionary for :func:`pyloopkit.update` at time ``at``.

        Parameters
        ----------
        at : datetime or ISO string, optional
            Time to calculate at (default: the last glucose reading). Naive: local in the tables' zone.
        settings : dict, optional
            Input-dictionary keys that override (or supply) the History's settings; its
            ``settings_dictionary`` is merged key by key.
        hours : float
            Hours of glucose and carbs before ``at`` to include; doses reach one insulin action duration
            further back (the settings' ``model[0]`` minutes, else 6 h). Loop uses 24 h.

        Returns
        -------
        dict
            Dates are datetimes in the fixed UTC offset of ``at`` (schedules are read in that offset).

        Raises
        ------
        MissingDataError
            No glucose before ``at``, or a schedule missing from both the History and ``settings``.
        """
        from ..dose import DoseType
        from ..errors import MissingDataError
        from ..input_validation import REQUIRED_KEYS

        pd = _pandas()
        if at is None:
            if self.glucose.empty:
                raise MissingDataError(f"{self.source}: no glucose readings, so no time to calculate at")
            at = self.glucose["time"].iloc[-1]
        at = self._timestamp(at)
        offset = _dt.timezone(at.utcoffset())
        window = pd.Timedelta(hours=hours)
        merged = {k: v for k, v in self.settings_at(at).items() if k not in ("timezone", "timeline")}
        merged.update({k: v for k, v in (settings or {}).items() if k != "settings_dictionary"})
        merged["settings_dictionary"] = {**self.settings.get("settings_dictionary", {}),
                                         **(settings or {}).get("settings_dictionary", {})}
        g = self.glucose[(self.glucose["time"] > at - window) & (self.glucose["time"] <= at)]
        if g.empty:
            raise MissingDataError(f"{self.source}: no glucose in the {hours:g} h before {at.isoformat()}")
        model = merged["settings_dictionary"].get("model") or [360.0]
        acting = pd.Timedelta(minutes=float(model[0]))
        d = self.doses[(self.doses["start"] <= at) & (self.doses["end"] > at - window - acting)]
        c = self.carbs[(self.carbs["time"] > at - window) & (self.carbs["time"] <= at)]

        def dates(column):
            return [t.to_pydatetime() for t in column.dt.tz_convert(offset)]

        out = dict(merged)
        out.update({
            "glucose_dates": dates(g["time"]), "glucose_values": g["glucose_mg_dl"].tolist(), "glucose_units": "mg/dL",
            "dose_types": [DoseType[t] for t in d["type"]], "dose_start_times": dates(d["start"]),
            "dose_end_times": dates(d["end"]), "dose_values": d["value"].tolist(),
            "carb_dates": dates(c["time"]), "carb_values": c["grams"].tolist(), "carb_value_units": "g",
            "carb_absorption_times": [None if a != a else a for a in c["absorption_min"].tolist()],
            "time_to_calculate_at": at.tz_convert(offset).to_pydatetime(),
        })
        running = d[(d["type"] == "TEMP_BASAL") & (d["end"] > at)]
        if not running.empty:
            last = running.iloc[-1]
            out["last_temporary_basal"] = [DoseType.TEMP_BASAL, last["start"].tz_convert(offset).to_pydatetime(),
                                           last["end"].tz_convert(offset).to_pydatetime(), float(last["value"])]
        missing = [k for k in REQUIRED_KEYS if k not in out]
        if missing:
            raise MissingDataError(f"{self.source}: settings missing {missing}; the source has no such schedule, "
                                   "pass them with settings={...}")
        return out

    def settings_at(self, at) -> dict:
        """The settings in effect at ``at``: with a ``settings["timeline"]`` (sources that keep every
        profile or pump-settings change), the last entry starting at or before ``at`` (the first entry
        before the timeline starts); else ``settings``."""
        timeline = self.settings.get("timeline")
        if not timeline:
            return self.settings
        pd = _pandas()
        t = self._timestamp(at)
        chosen = timeline[0]["settings"]
        for entry in timeline:
            if entry["start"] is not None and pd.Timestamp(entry["start"]) <= t:
                chosen = entry["settings"]
        return {**self.settings, **chosen}

    def to_tune_request(self, **kw) -> dict:
        """Tune's version-1 request (see :func:`pyloopkit.io.tune_request.request` for the options)."""
        from .tune_request import request

        return request(self, **kw)

    # ------------------------------------------------------------------ files
    def to_csv(self, folder) -> Path:
        """Write the tables (``glucose.csv``, ``doses.csv``, ``carbs.csv``, ``skipped.csv``) and
        ``meta.json`` (settings, source, zone, app output) into ``folder``; :meth:`from_csv` reads them back."""
        from ._build import iso_times

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("glucose", "doses", "carbs", "skipped"):
            table = getattr(self, name).copy()
            for c in ("time", "start", "end"):
                if c in table and len(table):
                    table[c] = iso_times(table[c])
            table.to_csv(folder / f"{name}.csv", index=False)
        meta = {"source": self.source, "tz": zone_name(self.tz), "settings": self.settings,
                "app_output": self.app_output}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def from_csv(cls, folder) -> "History":
        """Read a folder written by :meth:`to_csv`."""
        pd = _pandas()
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        tz = zone_from_name(meta["tz"])
        tables = {}
        for name, columns in (("glucose", GLUCOSE_COLUMNS), ("doses", DOSE_COLUMNS), ("carbs", CARB_COLUMNS),
                              ("skipped", SKIPPED_COLUMNS)):
            text = [c for c in columns if c in _TEXT_COLUMNS or name == "skipped"]
            frame = pd.read_csv(folder / f"{name}.csv", dtype={c: str for c in text}, keep_default_na=name != "skipped")
            for c in ("time", "start", "end"):
                if c in frame:
                    frame[c] = pd.to_datetime(frame[c], utc=True, format="ISO8601").dt.tz_convert(tz).dt.as_unit("ns")
            tables[name] = frame if len(frame) else empty_frame(columns)
        return cls(**tables, settings=meta["settings"], source=meta["source"], app_output=meta["app_output"])


def zone_name(tz) -> str:
    """A zone's name that :func:`zone_from_name` reads back (IANA key, or ``UTC+HH:MM`` for fixed offsets)."""
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if key:
        return key
    offset = _dt.datetime(2000, 1, 1, tzinfo=tz).utcoffset()
    minutes = int(offset.total_seconds() // 60)
    return f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone_from_name(name: str):
    if name.startswith("UTC") and len(name) == 9:
        sign = 1 if name[3] == "+" else -1
        return _dt.timezone(sign * _dt.timedelta(hours=int(name[4:6]), minutes=int(name[7:9])))
    from zoneinfo import ZoneInfo

    return ZoneInfo("UTC" if name == "UTC" else name)


def read(path, **_) -> History:
    """Read a History folder written by :meth:`History.to_csv` (the ``history`` format)."""
    return History.from_csv(path)


def replay(history: History, start=None, end=None, step_minutes: float = 5.0, chunk_days: float = 1.0,
           settings: dict | None = None):
    """Run the Loop algorithm every ``step_minutes`` over a History, in chunks of ``chunk_days``.

    Each chunk is one :func:`pyloopkit.loop_replay.replay` call on the chunk's data plus the 24 h
    before it (what Loop would have known), so months replay in bounded memory; the step times form
    one grid from ``start`` (default: one hour after the first glucose) to ``end`` (default: the
    last glucose). A chunk runs with the settings in effect at its last step (see
    :meth:`History.settings_at`). Returns a pandas DataFrame with :data:`pyloopkit.loop_replay.COLUMNS`.
    """
    from ..loop_replay import replay as replay_input

    pd = _pandas()
    if history.glucose.empty:
        from ..errors import MissingDataError

        raise MissingDataError(f"{history.source}: replay needs glucose readings")
    first = history._timestamp(start) if start is not None else history.glucose["time"].iloc[0] + pd.Timedelta(hours=1)
    last = history._timestamp(end) if end is not None else history.glucose["time"].iloc[-1]
    step = pd.Timedelta(minutes=step_minutes)
    n_steps = int((last - first) / step) + 1
    per_chunk = max(1, int(pd.Timedelta(days=chunk_days) / step))
    tables = []
    for k in range(0, n_steps, per_chunk):
        c0 = first + k * step
        c1 = first + (min(k + per_chunk, n_steps) - 1) * step
        d = history.to_input_dict(at=c1, settings=settings, hours=24.0 + (c1 - c0) / pd.Timedelta(hours=1))
        tables.append(replay_input(d, start=c0.to_pydatetime(), end=c1.to_pydatetime(), step_minutes=step_minutes,
                                   as_dataframe=True))
    return pd.concat(tables, ignore_index=True)
