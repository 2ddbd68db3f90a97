"""A History as a request to Tune (the Loop parameter-estimation service), wire format version 1.

Tune's timelines are indexed by Unix timestamps (whole seconds) and index, values and durations are
delta encoded (each entry is the difference from the previous one, the first from 0; Tune's own
``codec.py`` decodes durations this way too). Tune's README strikes run-length encoding out and its
``codec.py`` cannot read it, so runs are written ``[delta, count]`` only when asked for
(``run_length_encoding=True``; :mod:`pyloopkit.tune` reads both). The encoding itself is
:mod:`pyloopkit.tune.codec`'s. Units: basal rates in mU/h with durations in seconds, boluses in mU,
carbs in g, glucose in mg/dL; schedules are indexed by whole minutes after local midnight.
"""
from __future__ import annotations

import numpy as np

from .history import _pandas
from .settings import scheduled_rate_at, tune_schedule

DEFAULT_INSULIN_PARAMETERS = {"delay": 10.0, "peak": 75.0, "duration": 360.0}
"""Minutes; Loop's rapid-acting adult curve with its 10 min delay, used when the settings have no model."""
DEFAULT_CARB_PARAMETERS = {"delay": 10.0, "duration": 180.0}
"""Minutes; Loop's carb delay and medium absorption time."""


def encode(values, run_length_encoding: bool = False) -> list:
    """Delta-encode a sequence of numbers (then run-length encode it if asked).

    Whole numbers are written as ints; :func:`decode` gives floats back exactly (the running sum
    adds the deltas in the order they were taken).
    """
    from ..tune.codec import delta, run_length

    deltas = delta([_plain(v) for v in np.asarray(values, dtype=float)])
    return run_length(deltas) if run_length_encoding else deltas


def decode(encoded: list) -> list[float]:
    """Inverse of :func:`encode` (run-length pairs ``[delta, count]`` are expanded)."""
    from ..tune.codec import undelta

    deltas: list = []
    for item in encoded:
        deltas.extend([item[0]] * int(item[1]) if isinstance(item, list) else [item])
    return [float(v) for v in undelta(deltas)]


def _plain(x: float):
    return int(x) if float(x).is_integer() else float(x)


def _unix_s(times) -> np.ndarray:
    """Whole Unix seconds (floored) of a datetime64[ns, tz] column."""
    return times.dt.as_unit("ns").astype("int64").to_numpy() // 1_000_000_000


def basal_timeline(history, fill_scheduled: bool = True):
    """Basal deliveries as (start unix s, rate U/h, duration s), gaps filled with the scheduled rate.

    Gaps between basal-like doses (and before the first / after the last, within the glucose span)
    are filled from ``basal_rate_start_times``/``basal_rate_values`` when present, split at schedule
    changes and local midnight.
    """
    pd = _pandas()

    doses = history.doses[history.doses["type"].isin(["BASAL", "TEMP_BASAL", "SUSPEND"])].sort_values("start")
    starts, ends = _unix_s(doses["start"]), _unix_s(doses["end"])
    rates = np.where(doses["type"].to_numpy() == "SUSPEND", 0.0, doses["value"].to_numpy(dtype=float))
    rows = list(zip(starts, rates, ends - starts))
    if fill_scheduled and "basal_rate_start_times" in history.settings and not history.glucose.empty:
        span = (_unix_s(history.glucose["time"].iloc[[0]])[0], _unix_s(history.glucose["time"].iloc[[-1]])[0])
        edges = np.concatenate([[span[0]], np.stack([starts, ends], 1).ravel(), [span[1]]])
        tz = history.tz
        for gap_start, gap_end in edges.reshape(-1, 2):
            rows.extend(_scheduled_pieces(history.settings, gap_start, gap_end, tz, pd))
    rows.sort(key=lambda r: r[0])
    return [r for r in rows if r[2] > 0]


def _scheduled_pieces(settings: dict, start_s: float, end_s: float, tz, pd) -> list[tuple]:
    """(start, scheduled rate, duration) pieces covering [start_s, end_s), split at schedule changes."""
    if end_s <= start_s:
        return []
    from ..date import parse_time_of_day

    day_starts = sorted(parse_time_of_day(t) for t in settings["basal_rate_start_times"])
    first = pd.Timestamp(start_s, unit="s", tz="UTC").tz_convert(tz)
    midnight = first.normalize()
    cuts = [start_s]
    for day in pd.date_range(midnight, pd.Timestamp(end_s, unit="s", tz="UTC").tz_convert(tz), freq="D"):
        for offset in day_starts:
            t = (day + pd.Timedelta(seconds=offset)).timestamp()
            if start_s < t < end_s:
                cuts.append(t)
    cuts = np.array(sorted(cuts) + [end_s])
    local = pd.to_datetime(cuts[:-1], unit="s", utc=True).tz_convert(tz)
    seconds_of_day = (local - local.normalize()).total_seconds().to_numpy()
    rates = scheduled_rate_at(settings, seconds_of_day)
    return list(zip(cuts[:-1], rates, np.diff(cuts)))


def _tune_zone(name: str) -> str:
    """An IANA name as is; a fixed offset ``UTC-05:00`` in the ``GMT-0500`` form Tune (iOS) uses."""
    if name.startswith("UTC") and len(name) == 9:
        return f"GMT{name[3]}{name[4:6]}{name[7:9]}"
    return name


def request(history, timezone: str | None = None, insulin_parameters: dict | None = None,
            carb_parameters: dict | None = None, fill_scheduled: bool = True, run_length_encoding: bool = False,
            **options) -> dict:
    """Tune's version-1 request for ``history`` (see the module docstring).

    Parameters
    ----------
    timezone : str, optional
        IANA zone of the data (default: the History's ``settings["timezone"]``, else its tables' zone).
    insulin_parameters, carb_parameters : dict, optional
        ``delay``/``peak``/``duration`` (min) of the insulin curve (default: from the settings' model,
        else :data:`DEFAULT_INSULIN_PARAMETERS`) and ``delay``/``duration`` of carbs.
    fill_scheduled : bool
        Fill basal gaps with the scheduled rate (see :func:`basal_timeline`).
    run_length_encoding : bool
        Also write runs of equal deltas as ``[delta, count]`` (smaller; read by :mod:`pyloopkit.tune`
        but not by Tune's own service, whose README strikes that option out).
    **options
        Passed through at the top level (``tuning_limit``, ``minimum_time_interval``, ...).
    """
    settings = history.settings
    model = settings.get("settings_dictionary", {}).get("model")
    insulin = dict(insulin_parameters or (
        {"delay": float(settings.get("settings_dictionary", {}).get("insulin_delay", 10.0)),
         "peak": float(model[1]), "duration": float(model[0])} if model and len(model) == 2
        else DEFAULT_INSULIN_PARAMETERS))
    carbs = dict(carb_parameters or DEFAULT_CARB_PARAMETERS)
    out = {"version": 1, "timezone": timezone or _tune_zone(settings.get("timezone") or str(history.tz))}
    for kind, name in (("sensitivity", "insulin_sensitivity_schedule"), ("carb_ratio", "carb_ratio_schedule"),
                       ("basal", "basal_rate_schedule")):
        sched = tune_schedule(settings, kind)
        if sched is not None:
            out[name] = sched
    out.update(options)
    basal = basal_timeline(history, fill_scheduled)
    rle = run_length_encoding
    bolus = history.doses[history.doses["type"] == "BOLUS"]
    out["timelines"] = [
        {"type": "basal", "parameters": insulin,
         "index": encode([r[0] for r in basal], rle), "values": encode([r[1] * 1000.0 for r in basal], rle),
         "durations": encode([r[2] for r in basal], rle)},
        {"type": "insulin", "parameters": insulin,
         "index": encode(_unix_s(bolus["start"]), rle), "values": encode(bolus["value"].to_numpy() * 1000.0, rle)},
        {"type": "carb", "parameters": carbs,
         "index": encode(_unix_s(history.carbs["time"]), rle), "values": encode(history.carbs["grams"], rle)},
        {"type": "glucose", "index": encode(_unix_s(history.glucose["time"]), rle),
         "values": encode(history.glucose["glucose_mg_dl"], rle)},
    ]
    return out
