"""Everything the report shows, computed once from a History and a window."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyloopkit.errors import InvalidInputError, MissingDataError, Problem
from pyloopkit.metrics import cgm_summary, local_minutes
from pyloopkit.metrics.insulin import daily_insulin, history_zone, meal_patterns
from pyloopkit.report.units import GlucoseUnits, glucose_units

#: The CGM interval the window's end is rounded to [min].
STEP_MIN = 5
#: Fewer CGM readings than this in the window and the report is refused.
MIN_READINGS = 288


@dataclass
class ReportData:
    """The report's tables for the window ``[start, end)`` of a history (local times of ``zone``).

    Attributes
    ----------
    start, end : pandas.Timestamp
        The window (local, ``end`` exclusive).
    glucose : DataFrame
        CGM readings in the window: ``time`` (local), ``glucose_mg_dl``, ``day`` (date),
        ``minute_of_day`` (float).
    doses, carbs : DataFrame
        The history's doses starting and carbs dated in the window (local times).
    summary : dict
        :func:`pyloopkit.metrics.cgm_summary` of the window.
    insulin : DataFrame
        :func:`pyloopkit.metrics.insulin.daily_insulin` of the window's days.
    patterns : DataFrame
        :func:`pyloopkit.metrics.insulin.meal_patterns` of the window.
    units : GlucoseUnits
        The reader's unit.
    notes : list of str
        What the report leaves out and why.
    """

    start: object
    end: object
    zone: object
    glucose: object
    doses: object
    carbs: object
    summary: dict
    insulin: object
    patterns: object
    units: GlucoseUnits
    source: str = ""
    notes: list = field(default_factory=list)

    @property
    def days(self) -> list:
        """The local dates the window touches, in order."""
        import pandas as pd

        last = (self.end - pd.Timedelta(nanoseconds=1)).normalize()
        return list(pd.date_range(self.start.normalize(), last, freq="D").date)


def prepare(history, days: float = 14, units: str = "mg/dL", tz=None) -> ReportData:
    """The :class:`ReportData` of the last ``days`` days of ``history``.

    The window ends at the last CGM reading, rounded up to the next 5-minute mark (a reading
    exactly on a mark ends it 5 minutes later), and starts ``days`` days before on the local
    clock (so a week across a DST change lasts 167 or 169 hours).

    Raises
    ------
    MissingDataError
        Fewer than :data:`MIN_READINGS` CGM readings in the window.
    """
    import pandas as pd

    from pyloopkit.io.history import History
    from pyloopkit.metrics.insulin import _as_local

    unit = glucose_units(units)
    if not (isinstance(days, (int, float)) and np.isfinite(days) and days > 0):
        raise InvalidInputError([Problem("days", None, days, "must be a number of days > 0")])
    zone = history_zone(history, tz)
    cgm = history.glucose[history.glucose["kind"] == "cgm"]
    if cgm.empty:
        raise MissingDataError(f"{history.source or 'the history'} has no CGM readings")
    times = _as_local(cgm["time"], zone)
    end = times.max().floor(f"{STEP_MIN}min") + pd.Timedelta(minutes=STEP_MIN)
    whole = int(days)
    start = end - pd.DateOffset(days=whole) - pd.Timedelta(days=days - whole)  # calendar days on the local clock
    inside = ((times >= start) & (times < end)).to_numpy()
    glucose = pd.DataFrame({"time": times[inside].to_numpy(), "glucose_mg_dl": cgm["glucose_mg_dl"].to_numpy(float)[inside]})
    glucose["time"] = pd.DatetimeIndex(glucose["time"]).tz_convert(zone) if glucose["time"].dt.tz else glucose["time"]
    glucose = glucose.sort_values("time", kind="stable").reset_index(drop=True)
    notes = []
    repeated = glucose["time"].duplicated()
    if repeated.any():
        notes.append(f"{int(repeated.sum())} CGM reading(s) at an already-seen time were left out (the first kept)")
        glucose = glucose[~repeated].reset_index(drop=True)
    if len(glucose) < MIN_READINGS:
        raise MissingDataError(f"{len(glucose)} CGM readings between {start} and {end}; the report needs {MIN_READINGS}")
    glucose["day"] = glucose["time"].dt.date
    glucose["minute_of_day"] = (glucose["time"].dt.hour * 60 + glucose["time"].dt.minute
                                + glucose["time"].dt.second / 60.0)
    time_min = local_minutes(glucose["time"])
    first_midnight = glucose["time"].iloc[0].normalize()
    summary = cgm_summary(time_min, glucose["glucose_mg_dl"].to_numpy(),
                          start_min=(start - first_midnight).total_seconds() / 60.0,
                          end_min=(end - first_midnight).total_seconds() / 60.0)

    dose_start = _as_local(history.doses["start"], zone)
    dose_end = _as_local(history.doses["end"], zone)
    doses = history.doses[((dose_start < end) & (dose_end >= start)).to_numpy()]
    carb_time = _as_local(history.carbs["time"], zone)
    carbs = history.carbs[((carb_time >= start) & (carb_time < end)).to_numpy()]
    window = History(glucose=cgm[inside], doses=doses, carbs=carbs, settings=history.settings, source=history.source)
    insulin = daily_insulin(window, tz=zone)
    full_days = [d for d in insulin.index
                 if pd.Timestamp(d).tz_localize(zone) >= start and pd.Timestamp(d).tz_localize(zone) + pd.Timedelta(days=1) <= end]
    if full_days:
        insulin = insulin.loc[full_days]
    if history.doses.empty:
        notes.append("no insulin records: the insulin pages are empty")
    return ReportData(start=start, end=end, zone=zone, glucose=glucose, doses=doses, carbs=carbs, summary=summary,
                      insulin=insulin, patterns=meal_patterns(window, tz=zone), units=unit,
                      source=history.source, notes=notes)
