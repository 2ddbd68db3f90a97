"""Nightscout: ``entries``, ``treatments`` and ``profile`` JSON (exported files, a folder of them, or a site's REST API).

Read from ``entries``: ``sgv`` (CGM, mg/dL) and ``mbg`` (meter, mg/dL) records, dated by ``date``
(Unix ms) or ``dateString``. From ``treatments`` (dated by ``created_at``, ``timestamp`` or ``mills``):
``Temp Basal`` (``absolute`` or ``rate`` U/h for ``duration`` min; one of 0 min cancels the running one),
``Suspend Pump`` (for ``duration`` min), boluses (``insulin`` U; ``Combo Bolus`` adds ``relative`` U/h
for ``duration`` min as an extended bolus), ``carbs`` (g, ``absorptionTime`` min) on any event, and
``BG Check`` (``glucose`` in ``units``). From ``profile``: the newest document's default profile
(``basal``, ``carbratio``, ``sens``, ``target_low``/``target_high``, ``dia``, ``units``, ``timezone``)
and Loop's ``loopSettings`` (maximum basal rate and bolus, suspend threshold); with several profile
documents, all of them by ``startDate`` in ``settings["timeline"]``. Everything else is listed in
``History.skipped``.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ._build import MMOL_TO_MG_DL, Collector, ImportFormatError, number, timestamp, zone
from .history import _pandas
from .settings import schedule

BOLUS_EVENTS = ("Bolus", "Correction Bolus", "Meal Bolus", "Snack Bolus", "SMB", "Combo Bolus")
NOT_IMPORTED_EVENTS = ("Note", "Announcement", "Question", "Site Change", "Sensor Start", "Sensor Change",
                       "Insulin Change", "Pump Battery Change", "Temporary Target", "Temporary Override",
                       "Profile Switch", "Exercise", "OpenAPS Offline", "Resume Pump")
DEFAULT_PEAK_MIN = 75.0
"""Peak of the exponential insulin curve used with the profile's ``dia`` (Loop's rapid-acting adult)."""
PAGE = 10000
"""Records per REST request; the reader pages back in time while a page comes back full."""


def looks_like(head: str) -> bool:
    """A JSON export of entries, treatments or profiles."""
    text = head.lstrip()
    return text[:1] in ("[", "{") and any(k in text for k in ('"sgv"', '"eventType"', '"defaultProfile"',
                                                              '"mbg"'))


def read(path_or_url, tz=None, token: str | None = None, days: float | None = None, now=None, **_):
    """Read a Nightscout export file, a folder of exports, or a site (``https://...``).

    Parameters
    ----------
    path_or_url : str or Path
        A JSON file (entries, treatments or profiles), a folder with ``entries.json``,
        ``treatments.json`` and/or ``profile.json``, or a site URL.
    tz : str, optional
        Zone of the tables (default: the profile's ``timezone``, else UTC).
    token : str, optional
        A site's access token (sent as the ``token`` query parameter).
    days : float, optional
        For a site: how many days back from ``now`` to fetch (default 14).
    now : datetime, optional
        For a site: the end of the period (default: the current time).
    """
    text = str(path_or_url)
    if text.startswith(("http://", "https://")):
        docs = fetch(text, token, 14.0 if days is None else days, now)
    else:
        docs = load(Path(text))
    return parse(docs, text, tz)


def load(path: Path) -> dict:
    """``{"entries": [...], "treatments": [...], "profile": [...]}`` from a file or a folder."""
    docs = {"entries": [], "treatments": [], "profile": []}
    files = [path / f"{k}.json" for k in docs] if path.is_dir() else [path]
    for f in files:
        if not f.exists():
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as e:
            raise ImportFormatError(str(f), f"line {e.lineno}", "json", e.msg, "not valid JSON (truncated file?)") from None
        items = data if isinstance(data, list) else [data]
        docs[_collection(items, f.stem)].extend(items)
    return docs


def _collection(items: list, stem: str) -> str:
    if stem in ("entries", "treatments", "profile"):
        return stem
    first = items[0] if items and isinstance(items[0], dict) else {}
    if "store" in first or "defaultProfile" in first:
        return "profile"
    return "treatments" if "eventType" in first else "entries"


def fetch(url: str, token: str | None, days: float, now=None) -> dict:
    """The three collections of a site over the last ``days`` (REST API v1, paged)."""
    end = now or _dt.datetime.now(_dt.timezone.utc)
    since = end - _dt.timedelta(days=days)
    base = url.rstrip("/")
    entries = _fetch_all(base, "entries", "date", int(since.timestamp() * 1000), token, lambda e: e.get("date"))
    treatments = _fetch_all(base, "treatments", "created_at", since.strftime("%Y-%m-%dT%H:%M:%S.000Z"), token,
                            lambda t: t.get("created_at"))
    profile = _get_json(f"{base}/api/v1/profile.json", token, {})
    return {"entries": entries, "treatments": treatments, "profile": profile if isinstance(profile, list) else [profile]}


def _fetch_all(base: str, collection: str, field: str, since, token, key) -> list:
    out: list = []
    upper = None
    while True:
        query = {f"find[{field}][$gte]": since, "count": PAGE}
        if upper is not None:
            query[f"find[{field}][$lt]"] = upper
        page = _get_json(f"{base}/api/v1/{collection}.json", token, query)
        out.extend(page)
        if len(page) < PAGE:
            return out
        upper = min(key(p) for p in page)


def _get_json(url: str, token, query: dict):
    if token:
        query = {**query, "token": token}
    full = url + ("?" + urllib.parse.urlencode(query) if query else "")
    try:
        with urllib.request.urlopen(full, timeout=60) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        reason = "unauthorized: check the token" if e.code in (401, 403) else e.reason
        raise ImportFormatError(url, f"HTTP {e.code}", "response", e.code, reason) from None
    except json.JSONDecodeError as e:
        raise ImportFormatError(url, f"line {e.lineno}", "json", e.msg, "the site did not answer JSON") from None


# ------------------------------------------------------------------------------------------ parsing

def parse(docs: dict, source: str, tz=None):
    """A History from the three collections (lists of dicts)."""
    c = Collector(source, tz)
    _profile(c, docs.get("profile", []))
    entries, treatments = docs.get("entries", []), docs.get("treatments", [])
    for i in fast_entries(c, entries):
        _entry(c, f"entries[{i}]", entries[i])
    for i in fast_temp_basals(c, treatments):
        _treatment(c, f"treatments[{i}]", treatments[i])
    return c.history()


def _columns(records: list, names: list):
    """The named fields of a list of dicts as a DataFrame (None when an item is not a dict)."""
    if not all(type(r) is dict for r in records):
        return None
    pd = _pandas()

    return pd.DataFrame(records, columns=names)


def fast_entries(c: Collector, entries: list) -> list[int]:
    """Read the plain ``sgv``/``mbg`` entries (numeric value and ``date``) at once; return the indices of
    the others, which :func:`_entry` reads one by one (and reports)."""
    import numpy as np
    pd = _pandas()

    df = _columns(entries, ["type", "sgv", "mbg", "date"]) if entries else None
    if df is None:
        return list(range(len(entries)))
    kind = df["type"].where(df["type"].notna() | df["sgv"].isna(), "sgv").to_numpy(dtype=object)
    value = np.where(kind == "sgv", pd.to_numeric(df["sgv"], errors="coerce"),
                     np.where(kind == "mbg", pd.to_numeric(df["mbg"], errors="coerce"), np.nan))
    date = pd.to_numeric(df["date"], errors="coerce").to_numpy(dtype=float)
    fast = np.isfinite(value) & np.isfinite(date)
    idx = np.flatnonzero(fast)
    c.glucose_many(np.array([f"entries[{i}]" for i in idx], dtype=object),
                   pd.DatetimeIndex(pd.to_datetime(date[fast], unit="ms", utc=True)), value[fast], "mg/dL",
                   np.where(kind[fast] == "sgv", "cgm", "smbg"))
    return np.flatnonzero(~fast).tolist()


def fast_temp_basals(c: Collector, treatments: list) -> list[int]:
    """Read the plain ``Temp Basal`` treatments (ISO ``created_at``, numeric ``absolute`` and ``duration``,
    no carbs) at once; return the indices of the others, which :func:`_treatment` reads one by one."""
    import numpy as np
    pd = _pandas()

    df = _columns(treatments, ["eventType", "created_at", "absolute", "duration", "carbs"]) if treatments else None
    if df is None:
        return list(range(len(treatments)))
    rate = pd.to_numeric(df["absolute"], errors="coerce").to_numpy(dtype=float)
    minutes = pd.to_numeric(df["duration"], errors="coerce").to_numpy(dtype=float)
    text = df["created_at"].where(df["created_at"].map(type) == str)
    start = pd.DatetimeIndex(pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce"))
    fast = ((df["eventType"] == "Temp Basal").to_numpy() & np.isfinite(rate) & np.isfinite(minutes)
            & ~start.isna() & df["carbs"].isna().to_numpy())
    idx = np.flatnonzero(fast)
    starts = start[fast]
    c.doses_many(np.array([f"treatments[{i}]" for i in idx], dtype=object), starts,
                 starts + pd.to_timedelta(minutes[fast], unit="min"), "TEMP_BASAL", rate[fast])
    return np.flatnonzero(~fast).tolist()


def _entry(c: Collector, record: str, e: dict) -> None:
    kind = e.get("type", "sgv" if "sgv" in e else None)
    if kind not in ("sgv", "mbg"):
        c.skip(record, "type", kind, "entry type not imported (only sgv and mbg)")
        return
    if kind not in e:
        c.skip(record, kind, None, f"{kind} entry without a value")
        return
    when = e.get("date", e.get("dateString"))
    time = timestamp(when, c.source, record, "date")
    c.glucose(record, time, number(e[kind], c.source, record, kind), "mg/dL", "cgm" if kind == "sgv" else "smbg")


def _treatment_time(c: Collector, record: str, t: dict) -> _dt.datetime:
    for key in ("created_at", "timestamp", "mills"):
        if t.get(key) not in (None, ""):
            return timestamp(t[key], c.source, record, key)
    raise ImportFormatError(c.source, record, "created_at", None, "treatment without a time")


def _minutes(c: Collector, record: str, t: dict, key: str = "duration") -> float:
    return number(t.get(key, 0.0) or 0.0, c.source, record, key)


def _treatment(c: Collector, record: str, t: dict) -> None:
    event = t.get("eventType")
    time = _treatment_time(c, record, t)
    used = False
    if event == "Temp Basal":
        rate = t.get("absolute", t.get("rate"))
        if rate is None:
            c.skip(record, "absolute", t.get("percent"), "temp basal given only as a percent")
        else:
            end = _dt.timedelta(minutes=_minutes(c, record, t))
            c.dose(record, time, end, "TEMP_BASAL", number(rate, c.source, record, "absolute"))
        used = True
    elif event == "Suspend Pump":
        minutes = _minutes(c, record, t)
        if minutes > 0:
            c.dose(record, time, _dt.timedelta(minutes=minutes), "SUSPEND", 0.0)
        else:
            c.skip(record, "duration", t.get("duration"), "suspend without a duration")
        used = True
    elif event in BOLUS_EVENTS or (t.get("insulin") not in (None, "", 0) and event not in NOT_IMPORTED_EVENTS):
        _bolus(c, record, t, time, event)
        used = True
    elif event == "BG Check" and t.get("glucose") not in (None, ""):
        unit = str(t.get("units", "mg/dl")).lower()
        factor = MMOL_TO_MG_DL if unit.startswith("mmol") else 1.0
        c.glucose(record, time, number(t["glucose"], c.source, record, "glucose") * factor,
                  "mmol/L" if factor != 1.0 else "mg/dL", "smbg")
        used = True
    if t.get("carbs") not in (None, "", 0):
        absorption = t.get("absorptionTime")
        c.carb(record, time, number(t["carbs"], c.source, record, "carbs"),
               math.nan if absorption in (None, "") else number(absorption, c.source, record, "absorptionTime"))
        used = True
    if not used:
        c.skip(record, "eventType", event, "event type not imported" if event in NOT_IMPORTED_EVENTS
               else "unknown event type")


def _bolus(c: Collector, record: str, t: dict, time, event) -> None:
    insulin = t.get("insulin")
    if insulin not in (None, ""):
        amount = number(insulin, c.source, record, "insulin")
        minutes = 0.0 if event == "Combo Bolus" else _minutes(c, record, t)
        if amount > 0:
            c.dose(record, time, _dt.timedelta(minutes=minutes), "BOLUS", amount)
        elif t.get("carbs") in (None, "", 0):
            c.skip(record, "insulin", insulin, "zero-unit bolus")
    if event == "Combo Bolus" and t.get("relative") not in (None, "", 0):
        minutes = _minutes(c, record, t)
        rate = number(t["relative"], c.source, record, "relative")
        c.dose(record, time, _dt.timedelta(minutes=minutes), "BOLUS", rate * minutes / 60.0)


def _profile(c: Collector, profiles: list) -> None:
    """The newest profile document is ``settings``; with several, ``settings["timeline"]`` has them all."""
    timeline = []
    for i, doc in enumerate(profiles):
        if not (isinstance(doc, dict) and isinstance(doc.get("store"), dict)):
            c.skip(f"profile[{i}]", "store", None, "profile document without a store")
            continue
        start = doc.get("startDate") or doc.get("created_at") or doc.get("mills")
        when = timestamp(start, c.source, f"profile[{i}]", "startDate") if start not in (None, "") else None
        timeline.append((when, _profile_settings(c, doc, f"profile[{i}]")))
    if not timeline:
        return
    timeline.sort(key=lambda item: item[0] or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc))
    c.settings = dict(timeline[-1][1])
    if len(timeline) > 1:
        c.settings["timeline"] = [{"start": when.isoformat() if when else None, "settings": settings}
                                  for when, settings in timeline]
    zone_name = c.settings.get("timezone")
    if zone_name and c.tz is None:
        c.tz = zone(zone_name)


def _profile_settings(c: Collector, doc: dict, record: str) -> dict:
    """One profile document's default profile as input-dictionary settings."""
    name = doc.get("defaultProfile") or next(iter(doc["store"]), None)
    if name not in doc["store"]:
        raise ImportFormatError(c.source, record, "defaultProfile", name, "not a profile of the store")
    prof = doc["store"][name]
    where = f"{record}.store[{name!r}]"
    factor = MMOL_TO_MG_DL if str(prof.get("units", doc.get("units", "mg/dl"))).lower().startswith("mmol") else 1.0
    settings: dict = {}
    for kind, key, scale in (("basal", "basal", 1.0), ("carb_ratio", "carbratio", 1.0), ("sensitivity", "sens", factor)):
        if prof.get(key):
            starts, values = _items(c, where, key, prof[key])
            settings.update(schedule(kind, starts, [v * scale for v in values]))
    if prof.get("target_low") and prof.get("target_high"):
        lo_s, lo = _items(c, where, "target_low", prof["target_low"])
        hi_s, hi = _items(c, where, "target_high", prof["target_high"])
        if lo_s != hi_s:
            raise ImportFormatError(c.source, where, "target_high", hi_s, "target_low and target_high start at different times")
        settings.update(schedule("target", lo_s, [v * factor for v in lo], [v * factor for v in hi]))
    sd: dict = {}
    if prof.get("dia") not in (None, ""):
        sd["model"] = [number(prof["dia"], c.source, where, "dia") * 60.0, DEFAULT_PEAK_MIN]
    loop = doc.get("loopSettings") or {}
    for src, dst in (("maximumBasalRatePerHour", "max_basal_rate"), ("maximumBolus", "max_bolus"),
                     ("minimumBGGuard", "suspend_threshold")):
        if loop.get(src) is not None:
            sd[dst] = number(loop[src], c.source, record, f"loopSettings.{src}") * (factor if dst == "suspend_threshold" else 1.0)
    if sd:
        settings["settings_dictionary"] = sd
    zone_name = prof.get("timezone") or doc.get("timezone")
    if zone_name:
        settings["timezone"] = zone_name
    return settings


def _items(c: Collector, where: str, key: str, items) -> tuple[list, list]:
    starts, values = [], []
    for j, item in enumerate(items):
        rec = f"{where}.{key}[{j}]"
        if not isinstance(item, dict) or "value" not in item:
            raise ImportFormatError(c.source, rec, "value", item, "schedule item without a value")
        if item.get("timeAsSeconds") is not None:
            starts.append(number(item["timeAsSeconds"], c.source, rec, "timeAsSeconds"))
        else:
            text = str(item.get("time", ""))
            try:
                h, m = text.split(":")[:2]
                starts.append(int(h) * 3600.0 + int(m) * 60.0)
            except ValueError:
                raise ImportFormatError(c.source, rec, "time", text, "not HH:MM") from None
        values.append(number(item["value"], c.source, rec, "value"))
    return starts, values
