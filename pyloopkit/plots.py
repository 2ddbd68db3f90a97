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


LOW_PREDICTION_MG_DL = 40.0
"""Predictions below this (mg/dL) are marked: below what a CGM reports, a severe low."""


def _input_in_mg_dl(inputs: Mapping) -> Mapping:
    """``input_data`` with every glucose quantity in mg/dL (the output's unit)."""
    from .input_validation import convert_glucose_units

    return convert_glucose_units(dict(inputs)) if inputs else inputs


def _schedule_at(inputs: Mapping, start_key: str, value_keys: tuple, dates: list) -> np.ndarray | None:
    """Values of a daily schedule of ``input_data`` at ``dates`` (local time of each date), or None."""
    from .schedule import DailySchedule

    if not inputs.get(start_key) or any(inputs.get(k) is None for k in value_keys) or not dates:
        return None
    values = np.column_stack([np.asarray(inputs[k], dtype=float) for k in value_keys])
    schedule = DailySchedule.from_lists(inputs[start_key], values)
    local_s = [d.hour * 3600.0 + d.minute * 60.0 + d.second for d in dates]
    return schedule.at(np.asarray(local_s, dtype=float))


def _doses_in_window(inputs: Mapping, tz, start, end) -> tuple[list, list]:
    """Boluses ``[(date, U)]`` and temp basals ``[(start, end, U/h)]`` of ``input_data`` inside [start, end]."""
    from .dose import DoseType

    types = inputs.get("dose_types")
    if types is None or len(types) == 0:
        return [], []
    starts = _dates(inputs["dose_start_times"], tz)
    ends = _dates(inputs["dose_end_times"], tz)
    boluses, temps = [], []
    for kind, s, e, v in zip(types, starts, ends, inputs["dose_values"]):
        kind = DoseType.parse(kind)
        if e < start or s > end:
            continue
        if kind is DoseType.BOLUS:
            boluses.append((s, float(v)))
        elif kind in (DoseType.TEMP_BASAL, DoseType.SUSPEND):
            temps.append((s, e, 0.0 if kind is DoseType.SUSPEND else float(v)))
    return boluses, temps


def _carbs_in_window(inputs: Mapping, tz, start, end) -> list:
    if not inputs.get("carb_dates"):
        return []
    dates = _dates(inputs["carb_dates"], tz)
    return [(d, float(g)) for d, g in zip(dates, inputs["carb_values"]) if start <= d <= end]


def _cob_from_meals(output: Mapping, inputs: Mapping, tz, start) -> tuple[list, np.ndarray, str]:
    """COB (g) from the first meal shown (not only from the run time, like ``cob_timeline``): LoopKit's
    carbs on board over the input's carb entries with the run's counteraction effects.

    Returns dates, values and a label; the output's own ``cob_timeline`` when there is no meal in view."""
    from . import carb_store
    from .date import from_seconds, to_second, to_seconds
    from .loop_input import parse_input

    dates, values = _series(output, "cob_timeline", tz)
    meals = [d for d, _ in _carbs_in_window(inputs, tz, start, _dates([inputs["time_to_calculate_at"]], tz)[0])] \
        if inputs.get("time_to_calculate_at") else []
    if not meals or not output.get("counteraction_effect_start_times"):
        return dates, values, "carbs on board"
    inp = parse_input(inputs)
    counteraction = (to_seconds(output["counteraction_effect_start_times"]),
                     to_seconds(output["counteraction_effect_end_times"]),
                     np.asarray(output["counteraction_effect_values"], dtype=float))
    seconds, grams = carb_store.carbs_on_board(inp, counteraction, start_s=to_second(min(meals)))
    return _dates(from_seconds(seconds, tz), tz), np.asarray(grams, dtype=float), "carbs on board since the meal"



def _mark_events(ax, events, unit: str, y_marker: float, y_text: float, marker: str, color: str, label: str):
    """Markers at the top or bottom of the axes (axes fraction ``y_marker``) for ``(date, amount)``
    events, each labelled with its amount and ``unit`` at ``y_text``."""
    for d, amount in events:
        ax.annotate(f"{amount:g} {unit}", (d, y_text), xycoords=("data", "axes fraction"), ha="center",
                    fontsize=7, color=color)
    if events:
        ax.plot([d for d, _ in events], [y_marker] * len(events), marker, color=color, ms=7,
                transform=ax.get_xaxis_transform(), label=label)

def _glucose_panel(ax, inputs, tz, g_dates, g_values, p_dates, p_values, start, end) -> None:
    """CGM history, prediction, target range, suspend threshold, low predictions, and markers of the
    boluses and carb entries between ``start`` and ``end``."""
    shown = g_dates + p_dates
    if shown:
        grid = sorted(set(shown))
        target = _schedule_at(inputs, "target_range_start_times",
                              ("target_range_minimum_values", "target_range_maximum_values"), grid)
        if target is not None:
            ax.fill_between(grid, target[:, 0], target[:, 1], step="post", color="tab:green", alpha=0.15,
                            label="target range")
        suspend = (inputs.get("settings_dictionary") or {}).get("suspend_threshold")
        if suspend is not None:
            ax.axhline(float(suspend), color="tab:red", lw=1.0, ls="--", label=f"suspend threshold {suspend:g} mg/dL")
    if g_values.size:
        ax.plot(g_dates, g_values, "o", ms=2.5, color="0.35", label="CGM history")
    if p_values.size:
        ax.plot(p_dates, p_values, "-", lw=2.2, color="black", label="prediction")
        low = p_values < LOW_PREDICTION_MG_DL
        if low.any():
            ax.plot([d for d, k in zip(p_dates, low) if k], p_values[low], "v", color="red", ms=5,
                    label=f"prediction below {LOW_PREDICTION_MG_DL:g} mg/dL")
    if shown:
        boluses, _ = _doses_in_window(inputs, tz, start, end)
        carbs = _carbs_in_window(inputs, tz, start, end)
        _mark_events(ax, boluses, "U", 0.0, 0.02, "^", "tab:blue", "bolus")
        _mark_events(ax, carbs, "g", 1.0, 0.93, "v", "tab:orange", "carb entry")
    if not (g_values.size or p_values.size):
        _empty_note(ax, "no glucose data")
    ax.set_ylabel("glucose (mg/dL)")


def _effects_panel(ax, output, tz, g_dates, g_values) -> None:
    """Each effect's change of glucose from now (mg/dL), in its own panel so it cannot squash the glucose axis."""
    drawn = False
    if g_values.size:
        for label, prefix, colour in EFFECT_KEYS:
            e_dates, e_values = _series(output, prefix, tz)
            alone_dates, alone = effect_alone(g_dates[-1], float(g_values[-1]), e_dates, e_values)
            if alone.size > 1:
                ax.plot(alone_dates, alone - float(g_values[-1]), "-", lw=1.4, color=colour, label=f"{label}")
                drawn = True
    if drawn:
        ax.axhline(0.0, color="0.5", lw=0.6)
    else:
        _empty_note(ax, "no effect timelines")
    ax.set_ylabel("effect alone\n(mg/dL change)")


def _delivery_panel(ax, output, inputs, tz, start, end) -> None:
    """Insulin on board (U) with the temp basals (U/h, steps) and boluses (U, stems) that produced it."""
    dates, values = _series(output, "insulin_on_board_timeline", tz)
    if values.size:
        ax.plot(dates, values, "-", color="tab:blue", label="insulin on board (U)")
        ax.fill_between(dates, values, alpha=0.15, color="tab:blue")
    boluses, temps = _doses_in_window(inputs, tz, start, end) if start is not None else ([], [])
    for k, (s, e, rate) in enumerate(temps):
        ax.hlines(rate, s, e, color="tab:purple", lw=2.0, label="temp basal (U/h)" if k == 0 else None)
    if boluses:
        ax.vlines([d for d, _ in boluses], 0.0, [u for _, u in boluses], color="tab:cyan", lw=2.0, label="bolus (U)")
    if not (values.size or temps or boluses):
        _empty_note(ax, "no insulin timeline")
    ax.set_ylabel("insulin (U, U/h)")


def plot_update(output: Mapping, path: str | None = None, title: str | None = None,
                history_hours: float | None = 6.0):
    """Five panels of an :func:`update` output on one time axis, with a labelled "now":

    1. glucose (mg/dL): CGM history, the prediction (points below 40 mg/dL marked), the target
       range, the suspend threshold, bolus and carb entry markers;
    2. the prediction from each effect alone, as its change from the current glucose (mg/dL), in its
       own panel (those curves span hundreds of mg/dL and would hide the glucose otherwise);
    3. insulin: insulin on board (U), temp basals (U/h) and boluses (U);
    4. carbs on board (g) from the first meal shown (not only from the run time).

    Parameters
    ----------
    output : dict
        ``update()``'s output: ``predicted_glucose_dates/values``, the effect timelines
        (``insulin_effect``, ``carb_effect``, ``momentum_effect``, ``retrospective_effect``
        ``_dates/_values``), ``insulin_on_board_timeline_dates/values``,
        ``cob_timeline_dates/values``, the counteraction effects and ``input_data`` (glucose, doses,
        carbs, target range, settings); any of them may be missing or empty. Glucose declared in
        mmol/L in ``input_data`` is drawn in mg/dL.
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

    inputs = _input_in_mg_dl(output.get("input_data") or {})
    tz = _first_zone(inputs.get("glucose_dates"), output.get("predicted_glucose_dates"),
                     [inputs["time_to_calculate_at"]] if inputs.get("time_to_calculate_at") else None)
    g_dates, g_values = _series(inputs, "glucose", tz)
    p_dates, p_values = _series(output, "predicted_glucose", tz)
    now = _dates([inputs["time_to_calculate_at"]], tz)[0] if inputs.get("time_to_calculate_at") else None
    shown = g_dates + p_dates
    start = end = None
    if shown:
        end = max(shown)
        start = min(shown) if history_hours is None or not g_dates else max(
            g_dates[0], g_dates[-1] - _dt.timedelta(hours=history_hours))

    fig = Figure(figsize=(11, 11), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 1.2, 1.0]})
    _glucose_panel(axes[0], inputs, tz, g_dates, g_values, p_dates, p_values, start, end)
    _effects_panel(axes[1], output, tz, g_dates, g_values)
    _delivery_panel(axes[2], output, inputs, tz, start, end)
    cob_dates, cob, cob_label = _cob_from_meals(output, inputs, tz, start) if shown else ([], np.empty(0), "")
    if cob.size:
        axes[3].plot(cob_dates, cob, "-", color="tab:orange", label=cob_label)
        axes[3].fill_between(cob_dates, cob, alpha=0.2, color="tab:orange")
    else:
        _empty_note(axes[3], "no carbs on board timeline")
    axes[3].set_ylabel("carbs on board (g)")
    for ax in axes:
        ax.grid(alpha=0.3)
        if now is not None:
            ax.axvline(now, color="0.3", lw=1.0, ls=":")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=7, ncol=3)
    if now is not None:
        axes[0].annotate("now", (now, 0.06), xycoords=("data", "axes fraction"), xytext=(3, 0),
                         textcoords="offset points", fontsize=9, color="0.2")
    if start is not None:
        axes[0].set_xlim(start - _dt.timedelta(minutes=10), end + _dt.timedelta(minutes=10))
    if shown or any(a.has_data() for a in axes[2:]):
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
