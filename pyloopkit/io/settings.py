"""Settings found in a source, as the schedule keys of the PyLoopKit input dictionary.

Readers describe each schedule as start offsets (seconds after local midnight) and values;
:func:`schedule` turns that into the dictionary's keys (``basal_rate_start_times``, ...), with
start times as ``"HH:MM:SS"`` strings so that ``History.settings`` stays JSON-able.
"""
from __future__ import annotations

SCHEDULE_KEYS = {
    "basal": ("basal_rate_start_times", "basal_rate_values"),
    "carb_ratio": ("carb_ratio_start_times", "carb_ratio_values"),
    "sensitivity": ("sensitivity_ratio_start_times", "sensitivity_ratio_values"),
    "target": ("target_range_start_times", "target_range_minimum_values", "target_range_maximum_values"),
}
"""Schedule kind -> its keys in the input dictionary (start times first)."""


def time_of_day(seconds: float) -> str:
    """``"HH:MM:SS"`` for seconds after midnight (0 <= s < 86400, whole seconds)."""
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def schedule(kind: str, starts_s, *values) -> dict:
    """The dictionary keys of one schedule, sorted by start.

    Parameters
    ----------
    kind : str
        A key of :data:`SCHEDULE_KEYS`.
    starts_s : sequence of float
        Start of each item, seconds after local midnight.
    *values : sequences of float
        The values (one sequence; two for the target range: minimum, maximum).
    """
    keys = SCHEDULE_KEYS[kind]
    order = sorted(range(len(starts_s)), key=lambda i: starts_s[i])
    out = {keys[0]: [time_of_day(starts_s[i]) for i in order]}
    for key, column in zip(keys[1:], values):
        out[key] = [float(column[i]) for i in order]
    return out


def scheduled_rate_at(settings: dict, seconds_of_day):
    """The basal schedule's rate (U/h) at local seconds of day (numpy array in, array out)."""
    import numpy as np

    from ..date import parse_time_of_day

    starts = np.array([parse_time_of_day(t) for t in settings["basal_rate_start_times"]])
    values = np.asarray(settings["basal_rate_values"], dtype=float)
    idx = np.searchsorted(starts, np.asarray(seconds_of_day, dtype=float), side="right") - 1
    return values[idx]  # -1 (before the first start) is the last item, carried over from the day before


def tune_schedule(settings: dict, kind: str) -> dict | None:
    """A schedule as Tune's ``{"index": minutes after midnight, "values": [...]}`` (None if absent).

    Whole minutes are written as ints (Tune's schedules are indexed by whole minutes; a start
    with seconds stays a float, which :mod:`pyloopkit.tune` rejects by name)."""
    from ..date import parse_time_of_day

    keys = SCHEDULE_KEYS[kind]
    if keys[0] not in settings:
        return None
    minutes = [parse_time_of_day(t) / 60.0 for t in settings[keys[0]]]
    return {"index": [int(m) if m.is_integer() else m for m in minutes],
            "values": [float(v) for v in settings[keys[1]]]}
