"""Importers for the formats people have, and one :class:`History` object (extra ``io``).

``read(path_or_url, format=None, **kw)`` detects the format (see :data:`FORMATS`) and returns a
:class:`History`; what a reader did not import is listed in ``History.skipped``. See docs/data.md.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from ._build import ImportFormatError
from .history import History, replay

FORMATS = {
    "loop_report": "pyloopkit.io.loop_report",
    "nightscout": "pyloopkit.io.nightscout",
    "tidepool": "pyloopkit.io.tidepool",
    "tidepool_sheets": "pyloopkit.io.tidepool_sheets",
    "clarity": "pyloopkit.io.clarity",
    "libreview": "pyloopkit.io.libreview",
    "ohio": "pyloopkit.io.ohio",
    "csv": "pyloopkit.io.plain_csv",
    "history": "pyloopkit.io.history",
}
"""Format name -> reader module (each has ``read(path, **kw)`` and ``looks_like(head)``)."""

_DETECT_ORDER = ("loop_report", "ohio", "clarity", "libreview", "tidepool_sheets", "csv", "tidepool", "nightscout")
_HEAD_CHARS = 4096


def detect(path_or_url) -> str:
    """The format name of a file, a folder or a URL (http(s) URLs are Nightscout sites)."""
    text = str(path_or_url)
    if text.startswith(("http://", "https://")):
        return "nightscout"
    path = Path(text)
    if path.is_dir():
        if (path / "glucose.csv").exists():
            return "history"
        if any((path / f"{name}.json").exists() for name in ("entries", "treatments", "profile")):
            return "nightscout"
        raise ImportFormatError(text, "folder", "format", path.name,
                                "not a History folder (glucose.csv) nor a Nightscout export (entries.json ...)")
    with open(path, "rb") as f:
        head = f.read(_HEAD_CHARS).decode("utf-8-sig", errors="replace")
    for name in _DETECT_ORDER:
        if importlib.import_module(FORMATS[name]).looks_like(head):
            return name
    raise ImportFormatError(text, "line 1", "format", head.splitlines()[0] if head.strip() else "",
                            f"unknown format; pass format= one of {', '.join(FORMATS)}")


def read(path_or_url, format: str | None = None, **kw) -> History:
    """Read a file, a folder or a Nightscout site into a :class:`History`.

    Parameters
    ----------
    path_or_url : str or Path
        A file, a Nightscout export folder (``entries.json``, ``treatments.json``, ``profile.json``),
        a History folder written by :meth:`History.to_csv`, or a Nightscout site URL.
    format : str, optional
        One of :data:`FORMATS`; detected from the content when omitted.
    **kw
        Passed to the reader: ``tz`` (IANA zone of local times without an offset, and of the
        tables), Nightscout's ``token`` and ``days``, Clarity/LibreView ``low_high``, ...
    """
    name = format or detect(path_or_url)
    if name not in FORMATS:
        raise ImportFormatError(str(path_or_url), "argument", "format", name,
                                f"unknown format; expected one of {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[name]).read(path_or_url, **kw)


__all__ = ["FORMATS", "History", "ImportFormatError", "detect", "read", "replay"]
