"""OhioT1DM-style XML: ``<patient>`` with one element per data stream, each a list of ``<event>``.

Read: ``glucose_level`` (``ts``, ``value`` mg/dL, CGM), ``finger_stick`` (meter), ``basal`` (the scheduled
rate ``value`` U/h from ``ts`` until the next ``basal`` event; the last one until the last glucose
reading), ``temp_basal`` (``ts_begin``, ``ts_end``, ``value`` U/h; 0 U/h is a suspension), ``bolus``
(``ts_begin``, ``ts_end``, ``dose`` U, ``type`` normal / square / normal dual / square dual: a bolus over
[ts_begin, ts_end]), ``meal`` (``ts``, ``carbs`` g). Timestamps are ``DD-MM-YYYY HH:MM:SS`` local time
without zone (pass ``tz``). Other streams (exercise, sleep, heart rate, ...) are listed in
``History.skipped``, one row per stream with its event count.
"""
from __future__ import annotations

import datetime as _dt
import xml.etree.ElementTree as ET

from ._build import Collector, ImportFormatError, number

TIME_FORMAT = "%d-%m-%Y %H:%M:%S"
STREAMS = ("glucose_level", "finger_stick", "basal", "temp_basal", "bolus", "meal")


def looks_like(head: str) -> bool:
    """An XML document with a ``<patient>`` root and OhioT1DM streams."""
    return head.lstrip().startswith("<") and "<patient" in head and any(f"<{s}" in head for s in STREAMS)


def read(path, tz=None, **_):
    """Read an OhioT1DM-style XML file (see the module docstring)."""
    source = str(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        line, column = e.position
        raise ImportFormatError(source, f"line {line}", "xml", f"column {column}", f"not well-formed XML ({e.msg if hasattr(e, 'msg') else e})") from None
    if root.tag != "patient":
        raise ImportFormatError(source, "root", "tag", root.tag, "expected <patient>")
    c = Collector(source, tz)
    basal_events = []
    for stream in root:
        events = list(stream)
        if stream.tag not in STREAMS:
            c.skip(stream.tag, "stream", len(events), "stream not imported")
            continue
        for k, event in enumerate(events):
            record = f"{stream.tag}[{k}]"
            if stream.tag in ("glucose_level", "finger_stick"):
                c.glucose(record, _time(c, record, event, "ts"), _num(c, record, event, "value"), "mg/dL",
                          "cgm" if stream.tag == "glucose_level" else "smbg")
            elif stream.tag == "basal":
                basal_events.append((record, _time(c, record, event, "ts"), _num(c, record, event, "value")))
            elif stream.tag == "temp_basal":
                value = _num(c, record, event, "value")
                c.dose(record, _time(c, record, event, "ts_begin"), _time(c, record, event, "ts_end"),
                       "SUSPEND" if value == 0 else "TEMP_BASAL", value)
            elif stream.tag == "bolus":
                c.dose(record, _time(c, record, event, "ts_begin"), _time(c, record, event, "ts_end"), "BOLUS",
                       _num(c, record, event, "dose"))
            else:
                c.carb(record, _time(c, record, event, "ts"), _num(c, record, event, "carbs"))
    _basal_segments(c, basal_events)
    return c.history()


def _time(c: Collector, record: str, event, name: str) -> _dt.datetime:
    text = event.get(name)
    try:
        return _dt.datetime.strptime(text or "", TIME_FORMAT)
    except ValueError:
        raise ImportFormatError(c.source, record, name, text, f"not a {TIME_FORMAT} time") from None


def _num(c: Collector, record: str, event, name: str) -> float:
    if event.get(name) is None:
        raise ImportFormatError(c.source, record, name, None, "missing attribute")
    return number(event.get(name), c.source, record, name)


def _basal_segments(c: Collector, events: list) -> None:
    """Each scheduled rate lasts until the next one; the last until the last glucose reading."""
    events.sort(key=lambda e: e[1])
    last_glucose = max((row[2] for row in c.glucose_rows), default=None)
    for (record, start, rate), nxt in zip(events, events[1:] + [None]):
        end = nxt[1] if nxt is not None else last_glucose
        if end is None or end <= start:
            c.skip(record, "ts", start.isoformat(), "last basal rate with no later data to end it")
            continue
        c.dose(record, start, end, "BASAL", rate)
