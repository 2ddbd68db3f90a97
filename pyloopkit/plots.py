"""Figures of an :func:`pyloopkit.update` run and of effect timelines (matplotlib).

matplotlib is imported inside the functions, so ``import pyloopkit`` stays light. Figures are
built with ``matplotlib.figure.Figure`` (no pyplot state, no GUI backend; PNG through Agg), and
returned; they are also saved when a path is given.

Dates may be datetimes (naive or aware) or ISO 8601 strings. Time axes show the local time of
the first aware date found (the report's zone for :mod:`pyloopkit.pyloop_parser` input);
naive dates are taken to be in that zone.
"""
from __future__ import annotations

import datetime as _dt
from typing import Mapping, Sequence

import numpy as np

from .date import parse_datetime

EFFECT_KEYS = (
    ("insulin", "insulin_effect", "tab:blue"),
    ("carbs", "carb_effect", "tab:orange"),
    ("momentum", "momentum_effect", "tab:purple"),
    ("retrospective correction", "retrospective_effect", "tab:green"),
)
"""(label, output key prefix, colour) of the effects drawn alone in :func:`plot_update`."""


def _dates(values: Sequence, tz: _dt.tzinfo | None) -> list[_dt.datetime]:
    """Datetimes, naive ones placed in ``tz`` when it is given."""
    out = [parse_datetime(v) for v in values]
    if tz is None:
        return out
    return [d.replace(tzinfo=tz) if d.tzinfo is None else d for d in out]


def _first_zone(*date_lists) -> _dt.tzinfo | None:
    for dates in date_lists:
        for d in dates or []:
            tz = parse_datetime(d).tzinfo
            if tz is not None:
                return tz
    return None


def _series(output: Mapping, prefix: str, tz) -> tuple[list, np.ndarray]:
    dates = output.get(f"{prefix}_dates") or []
    values = output.get(f"{prefix}_values")
    values = np.asarray([] if values is None else values, dtype=float)
    if len(dates) != values.size:
        raise ValueError(f"{prefix}_dates has {len(dates)} items but {prefix}_values has {values.size}")
    return _dates(dates, tz), values


def effect_alone(start_date: _dt.datetime, start_glucose: float, dates: Sequence[_dt.datetime],
                 values: np.ndarray) -> tuple[list, np.ndarray]:
    """Glucose (mg/dL) predicted from one effect alone: the starting glucose plus the effect's change
    since the last effect point at or before the start (its first point when none is), from the start on.

    Loop sums effect *changes* after the starting glucose, so effects stored as glucose
    levels (Loop's retrospective effect) and as cumulative changes give the same curve.
    """
    if values.size == 0:
        return [], np.empty(0)
    at_or_before = [i for i, d in enumerate(dates) if d <= start_date]
    ref = values[at_or_before[-1]] if at_or_before else values[0]
    keep = [i for i, d in enumerate(dates) if d >= start_date]
    alone = np.concatenate(([start_glucose], start_glucose + values[keep] - ref))
    return [start_date] + [dates[i] for i in keep], alone


def _time_axis(ax, tz) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=tz, minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    name = "UTC" if tz is None else (_dt.datetime(2001, 1, 1, tzinfo=tz).tzname() or str(tz))
    ax.set_xlabel(f"local time ({name})")


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def _recommendation_text(output: Mapping) -> str:
    parts = []
    temp = output.get("recommended_temp_basal")
    if temp:
        parts.append(f"temp basal {float(temp[0]):.2f} U/h for {float(temp[1]):.0f} min")
    bolus = output.get("recommended_bolus")
    if bolus:
        parts.append(f"bolus {float(bolus[0]):.2f} U")
    return "recommended: " + ", ".join(parts) if parts else "no recommendation"


def _save(fig, path) -> None:
    if path is not None:
        fig.savefig(path, dpi=110)


def plot_update(output: Mapping, path: str | None = None, title: str | None = None,
                history_hours: float | None = 6.0):
    """Three panels of an :func:`update` output: glucose history with the prediction and the
    prediction from each effect alone (mg/dL), insulin on board (U) and carbs on board (g).

    Parameters
    ----------
    output : dict
        ``update()``'s output: ``predicted_glucose_dates/values``, the effect timelines
        (``insulin_effect``, ``carb_effect``, ``momentum_effect``, ``retrospective_effect``
        ``_dates/_values``), ``insulin_on_board_timeline_dates/values``,
        ``cob_timeline_dates/values`` and ``input_data`` with ``glucose_dates/values``
        (any of them may be missing or empty).
    path : str, optional
        Where to save the figure (format from the extension, e.g. PNG).
    title : str, optional
        Figure title; the recommendations are added below it.
    history_hours : float or None
        Hours of history shown before the last glucose value (None: all of it).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    inputs = output.get("input_data") or {}
    tz = _first_zone(inputs.get("glucose_dates"), output.get("predicted_glucose_dates"),
                     [inputs["time_to_calculate_at"]] if inputs.get("time_to_calculate_at") else None)
    g_dates, g_values = _series(inputs, "glucose", tz)
    p_dates, p_values = _series(output, "predicted_glucose", tz)

    fig = Figure(figsize=(11, 9), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1.2]})
    ax = axes[0]
    if g_values.size:
        ax.plot(g_dates, g_values, "o", ms=2.5, color="0.35", label="CGM history")
    if p_values.size:
        ax.plot(p_dates, p_values, "-", lw=2.2, color="black", label="prediction (all effects)")
    if g_values.size:
        for label, prefix, colour in EFFECT_KEYS:
            e_dates, e_values = _series(output, f"{prefix}", tz)
            alone_dates, alone = effect_alone(g_dates[-1], float(g_values[-1]), e_dates, e_values)
            if alone.size > 1:
                ax.plot(alone_dates, alone, "--", lw=1.3, color=colour, label=f"{label} alone")
    if not (g_values.size or p_values.size):
        _empty_note(ax, "no glucose data")
    ax.set_ylabel("glucose (mg/dL)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8, ncol=2)

    for ax, prefix, label, colour in ((axes[1], "insulin_on_board_timeline", "insulin on board (U)", "tab:blue"),
                                      (axes[2], "cob_timeline", "carbs on board (g)", "tab:orange")):
        dates, values = _series(output, prefix, tz)
        if values.size:
            ax.plot(dates, values, "-", color=colour)
            ax.fill_between(dates, values, alpha=0.2, color=colour)
        else:
            _empty_note(ax, f"no {label.split(' (')[0]} timeline")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if inputs.get("time_to_calculate_at"):
        now = _dates([inputs["time_to_calculate_at"]], tz)[0]
        for ax in axes:
            ax.axvline(now, color="0.5", lw=0.8, ls=":")
    if history_hours is not None and g_values.size:
        end = max([g_dates[-1]] + p_dates[-1:])
        start = max(g_dates[0], g_dates[-1] - _dt.timedelta(hours=history_hours))
        axes[0].set_xlim(start - _dt.timedelta(minutes=10), end + _dt.timedelta(minutes=10))
    if g_values.size or p_values.size or any(a.has_data() for a in axes[1:]):
        _time_axis(axes[-1], tz)
    fig.suptitle((title + "\n" if title else "") + _recommendation_text(output), fontsize=11)
    _save(fig, path)
    return fig


def _unit_for(name: str) -> str:
    """Axis unit guessed from a series name (IOB in U, COB in g, effects in mg/dL)."""
    key = name.lower()
    if "iob" in key or "insulin on board" in key:
        return "U"
    if "cob" in key or "carbs on board" in key:
        return "g"
    if "effect" in key or "glucose" in key:
        return "mg/dL"
    return ""


def plot_effects(dates: Sequence, values_by_name: Mapping, path: str | None = None, title: str | None = None):
    """One panel per named series over shared times, e.g. the insulin effect and IOB of a dose
    history, or the carb effect and COB of a meal.

    Parameters
    ----------
    dates : sequence
        Datetimes / ISO strings, or numbers (minutes) for relative time.
    values_by_name : mapping
        ``name -> values`` or ``name -> (values, unit)``; without a unit it is guessed from the
        name (``IOB`` -> U, ``COB`` -> g, ``... effect`` -> mg/dL).
    path : str, optional
        Where to save the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if not values_by_name:
        raise ValueError("values_by_name is empty: nothing to plot")
    numeric = len(dates) > 0 and all(isinstance(d, (int, float, np.integer, np.floating)) for d in dates)
    tz = None if numeric else _first_zone(dates)
    x = np.asarray(dates, dtype=float) if numeric else _dates(dates, tz)
    fig = Figure(figsize=(10, 2.6 * len(values_by_name) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(values_by_name), 1, sharex=True, squeeze=False)[:, 0])
    for ax, (name, series) in zip(axes, values_by_name.items()):
        values, unit = series if isinstance(series, tuple) else (series, _unit_for(name))
        values = np.asarray(values, dtype=float)
        if values.size != len(x):
            raise ValueError(f"{name}: {values.size} values for {len(x)} dates")
        ax.plot(x, values, "-", lw=1.8)
        ax.set_ylabel(f"{name} ({unit})" if unit else name)
        ax.grid(alpha=0.3)
    if numeric:
        axes[-1].set_xlabel("time (minutes)")
    else:
        _time_axis(axes[-1], tz)
    if title:
        fig.suptitle(title, fontsize=11)
    _save(fig, path)
    return fig
