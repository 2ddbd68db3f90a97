"""The report's pages as matplotlib figures (object API, no pyplot state, Agg-friendly).

Every function takes a :class:`~pyloopkit.report.data.ReportData` and returns a
:class:`matplotlib.figure.Figure`; glucose is drawn and labelled in ``data.units``.
"""
from __future__ import annotations

import numpy as np

from pyloopkit.metrics import HIGH_MG_DL, LOW_MG_DL, VERY_HIGH_MG_DL, VERY_LOW_MG_DL
from pyloopkit.metrics.consensus import RANGE_BANDS
from pyloopkit.report.agp import AGP_PERCENTILES, agp_percentiles

PAGE_SIZE_IN = (11.69, 8.27)  # A4 landscape
#: Colours of the five ranges, very low to very high.
RANGE_COLOURS = ("#8b1a1a", "#e8463a", "#3aa757", "#f2c230", "#f28c28")
TARGET_FILL = "#3aa757"
#: The glucose axis of the charts [mg/dL].
GLUCOSE_AXIS_MG_DL = (40.0, 350.0)
#: Consensus targets per band (Battelino 2019), as printed beside the bar.
BAND_TARGETS = ("<1%", "<4%", ">70%", "<25%", "<5%")
HOUR_TICKS = np.arange(0, 25, 3)


def _figure(title: str, data):
    from matplotlib.figure import Figure

    figure = Figure(figsize=PAGE_SIZE_IN)
    figure.suptitle(title, x=0.03, y=0.975, ha="left", fontsize=15, fontweight="bold")
    period = f"{data.start:%d %b %Y %H:%M} - {data.end:%d %b %Y %H:%M} ({data.zone})"
    figure.text(0.03, 0.935, f"{data.source}   |   {period}", fontsize=9, color="#555555")
    return figure


def _band_label(data, index: int) -> str:
    u = data.units
    lows = ("<" + u.format(VERY_LOW_MG_DL), u.format(VERY_LOW_MG_DL) + "-" + u.format(LOW_MG_DL - (1 if u.decimals == 0 else 0.1 * u.mg_dl_per_unit)))
    labels = (lows[0], lows[1], f"{u.format(LOW_MG_DL)}-{u.format(HIGH_MG_DL)}",
              f"{u.format(HIGH_MG_DL + (1 if u.decimals == 0 else 0.1 * u.mg_dl_per_unit))}-{u.format(VERY_HIGH_MG_DL)}",
              ">" + u.format(VERY_HIGH_MG_DL))
    return f"{RANGE_BANDS[index][1]} ({labels[index]} {u.label})"


def _glucose_axis(ax, data, label: bool = True):
    u = data.units
    low, high = u.convert(np.array(GLUCOSE_AXIS_MG_DL))
    ax.set_ylim(low, high)
    ax.axhspan(u.convert(LOW_MG_DL), u.convert(HIGH_MG_DL), color=TARGET_FILL, alpha=0.12, lw=0)
    for level in (LOW_MG_DL, HIGH_MG_DL):
        ax.axhline(u.convert(level), color=TARGET_FILL, lw=0.8)
    if label:
        ax.set_ylabel(f"Glucose ({u.label})")


def _hours_axis(ax, label: bool = True):
    ax.set_xlim(0, 24)
    ax.set_xticks(HOUR_TICKS)
    ax.set_xticklabels([f"{h:02d}:00" for h in HOUR_TICKS])
    if label:
        ax.set_xlabel("Time of day")
    ax.grid(axis="x", color="#dddddd", lw=0.6)


def _metric_rows(data) -> list[tuple[str, str, str]]:
    s, u = data.summary, data.units
    insulin = data.insulin
    rows = [
        ("Days / readings", f"{s['days']:.1f} d / {s['n_readings']}", ""),
        ("Time CGM active", f"{s['cgm_active_percent']:.1f} %", ">= 70 %"),
        ("Mean glucose", u.format(s["mean_mg_dl"], with_label=True), ""),
        ("GMI", f"{s['gmi_percent']:.1f} % ({s['gmi_mmol_mol']:.0f} mmol/mol)", ""),
        ("Glucose variability (CV)", f"{s['cv_percent']:.1f} %", "<= 36 %"),
        ("Standard deviation", u.format(s["sd_mg_dl"], with_label=True), ""),
        ("GRI (zone)", f"{s['gri']:.1f} ({s['gri_zone']})", "zone A-B"),
        ("LBGI / HBGI", f"{s['lbgi']:.2f} / {s['hbgi']:.2f}", "< 2.5 / < 9"),
        ("ADRR", f"{s['adrr']:.1f}", "< 20"),
        ("MAGE", u.format(s["mage_mg_dl"], with_label=True), ""),
        ("CONGA-1 / MODD", f"{u.format(s['conga1_mg_dl'])} / {u.format(s['modd_mg_dl'])} {u.label}", ""),
        ("J-index", f"{s['j_index']:.1f}", ""),
    ]
    if len(insulin):
        rows += [
            ("Total daily insulin", f"{insulin['total_u'].mean():.1f} U/day", ""),
            ("Basal / bolus", f"{insulin['basal_u'].mean():.1f} / {insulin['bolus_u'].mean():.1f} U/day "
                              f"({np.nanmean(insulin['basal_percent']):.0f} % basal)", ""),
        ]
    rows.append(("Carbohydrate entries", f"{data.patterns['carbs_g_per_day'].sum():.0f} g/day, "
                                        f"{data.patterns['meals_per_day'].sum():.1f} meals/day", ""))
    return rows


def summary_figure(data):
    """Page 1: the metrics table and the time-in-ranges bar."""
    figure = _figure("Glucose report: summary", data)
    table = figure.add_axes((0.03, 0.08, 0.50, 0.82))
    table.axis("off")
    table.text(0.0, 1.0, "Metric", fontweight="bold", va="top", fontsize=11)
    table.text(0.50, 1.0, "Value", fontweight="bold", va="top", fontsize=11)
    table.text(0.88, 1.0, "Target", fontweight="bold", va="top", fontsize=11)
    rows = _metric_rows(data)
    step = 0.92 / max(len(rows), 1)
    for i, (name, value, target) in enumerate(rows):
        y = 0.93 - i * step
        if i % 2 == 0:
            table.axhspan(y - step * 0.55, y + step * 0.45, color="#f2f2f2", lw=0)
        table.text(0.0, y, name, va="center", fontsize=10.5)
        table.text(0.50, y, value, va="center", fontsize=10.5)
        table.text(0.88, y, target, va="center", fontsize=9.5, color="#555555")
    table.set_ylim(0, 1.02)
    notes = data.notes
    if notes:
        figure.text(0.03, 0.02, "Notes: " + "; ".join(notes), fontsize=8, color="#555555", wrap=True)
    bar = figure.add_axes((0.58, 0.08, 0.07, 0.8))
    time_in_ranges_bar(bar, data)
    return figure


def _spread(centres, low: float, high: float, gap: float) -> np.ndarray:
    """Label positions near ``centres`` (increasing), at least ``gap`` apart, within [low, high]."""
    y = np.array(centres, dtype=float)
    for i in range(1, y.size):
        y[i] = max(y[i], y[i - 1] + gap)
    y[-1] = min(y[-1], high)
    for i in range(y.size - 2, -1, -1):
        y[i] = min(y[i], y[i + 1] - gap)
    return np.maximum(y, low + gap * np.arange(y.size))


def time_in_ranges_bar(ax, data):
    """The five ranges as one stacked bar, labelled with percent, range and consensus target."""
    s = data.summary
    shares = np.array([s[key] for key, *_ in RANGE_BANDS])
    tops = np.cumsum(shares)
    centres = tops - shares / 2
    for i in range(len(shares)):
        ax.bar(0, shares[i], bottom=tops[i] - shares[i], width=1.0, color=RANGE_COLOURS[i], edgecolor="white", lw=1.0)
    labels = _spread(centres, 2.0, 98.0, 9.0)
    for i, (centre, y) in enumerate(zip(centres, labels)):
        ax.plot([0.55, 0.95, 1.25], [centre, y, y], color="#999999", lw=0.6)
        ax.text(1.35, y, f"{shares[i]:.1f} %", va="center", ha="left", fontsize=12, fontweight="bold",
                color=RANGE_COLOURS[i] if i != 3 else "#b38b00")
        ax.text(3.5, y, f"{_band_label(data, i)}\ntarget {BAND_TARGETS[i]}", va="center", ha="left", fontsize=9)
    ax.set_xlim(-0.6, 0.6)
    ax.set_ylim(0, 100)
    ax.axis("off")
    ax.set_title("Time in ranges", fontsize=12, loc="left", fontweight="bold")


def agp_figure(data):
    """Page 2: the AGP (5-95 % bands by time of day) and the daily mini-profiles."""
    figure = _figure("Ambulatory glucose profile (AGP)", data)
    ax = figure.add_axes((0.07, 0.42, 0.88, 0.46))
    agp_axes(ax, data)
    daily_profiles(figure, data, (0.07, 0.03, 0.88, 0.31))
    return figure


def agp_axes(ax, data):
    """Draw the AGP on ``ax``: 5-95 % and 25-75 % bands, the median, the target range."""
    u = data.units
    centres, values = agp_percentiles(data.glucose["minute_of_day"].to_numpy(), data.glucose["glucose_mg_dl"].to_numpy())
    hours = np.r_[centres[-1] / 60.0 - 24.0, centres / 60.0, centres[0] / 60.0 + 24.0]
    values = u.convert(np.concatenate([values[:, -1:], values, values[:, :1]], axis=1))
    _glucose_axis(ax, data)
    p = dict(zip(AGP_PERCENTILES, values))
    ax.fill_between(hours, p[5], p[95], color="#7aa6d6", alpha=0.35, lw=0, label="5-95 %")
    ax.fill_between(hours, p[25], p[75], color="#2f6fb3", alpha=0.55, lw=0, label="25-75 %")
    ax.plot(hours, p[50], color="#0b3d77", lw=2.2, label="median")
    for q in (5, 95):
        ax.plot(hours, p[q], color="#7aa6d6", lw=0.8, ls="--")
    right = 24.15
    for q in AGP_PERCENTILES:
        y = values[AGP_PERCENTILES.index(q), -2]
        if np.isfinite(y):
            ax.text(right, y, f"{q}%", va="center", fontsize=8, color="#333333")
    _hours_axis(ax)
    ax.legend(loc="upper left", fontsize=8, ncol=3, frameon=False)
    ax.set_title(f"{len(data.days)} days pooled, 15-minute bins; target {u.format(LOW_MG_DL)}-{u.format(HIGH_MG_DL)} {u.label}",
                 fontsize=9, loc="left", color="#555555")


def daily_profiles(figure, data, box, per_row: int = 7):
    """One small profile per local day, drawn as panels of a single axes in ``box``.

    One axes with a few collections instead of an axes per day keeps the page fast to draw.
    A reading beyond the glucose axis is drawn at the panel's edge (the data are unchanged).
    """
    from matplotlib.collections import PolyCollection

    u = data.units
    days = data.days
    rows = max(int(np.ceil(len(days) / per_row)), 1)
    low, high = u.convert(np.array(GLUCOSE_AXIS_MG_DL))
    height, width = high - low, 24.0
    cell_w, cell_h = width * 1.06, height * 1.28
    ax = figure.add_axes(box)
    ax.set_xlim(-0.5, per_row * cell_w)
    ax.set_ylim(-0.03 * height, rows * cell_h)
    ax.axis("off")
    by_day = dict(tuple(data.glucose.groupby("day")))
    frames, bands, xs, ys = [], [], [], []
    target = u.convert(np.array([LOW_MG_DL, HIGH_MG_DL])) - low
    for i, day in enumerate(days):
        r, c = divmod(i, per_row)
        x0, y0 = c * cell_w, (rows - 1 - r) * cell_h
        frames.append([(x0, y0), (x0 + width, y0), (x0 + width, y0 + height), (x0, y0 + height)])
        bands.append([(x0, y0 + target[0]), (x0 + width, y0 + target[0]), (x0 + width, y0 + target[1]),
                      (x0, y0 + target[1])])
        ax.text(x0, y0 + height * 1.04, f"{day:%a %d %b}", fontsize=7, va="bottom")
        if c == 0:
            for level in (LOW_MG_DL, HIGH_MG_DL):
                ax.text(x0 - 0.4, y0 + u.convert(level) - low, u.format(level), fontsize=6, ha="right", va="center")
        if day in by_day:
            g = by_day[day]
            x = g["minute_of_day"].to_numpy() / 60.0
            y = np.clip(u.convert(g["glucose_mg_dl"].to_numpy()), low, high) - low
            breaks = np.flatnonzero(np.diff(x) > 0.5) + 1  # no line across a CGM gap of > 30 min
            xs.append(np.r_[np.insert(x, breaks, np.nan) + x0, np.nan])
            ys.append(np.r_[np.insert(y, breaks, np.nan) + y0, np.nan])
    ax.add_collection(PolyCollection(bands, facecolors=TARGET_FILL, alpha=0.15, edgecolors="none"))
    ax.add_collection(PolyCollection(frames, facecolors="none", edgecolors="#888888", linewidths=0.6))
    if xs:
        ax.plot(np.concatenate(xs), np.concatenate(ys), color="#0b3d77", lw=0.7)
    figure.text(box[0], box[1] + box[3] + 0.012, f"Daily profiles (glucose {u.format(LOW_MG_DL)}-{u.format(HIGH_MG_DL)} "
                f"{u.label} shaded; axis {u.format(GLUCOSE_AXIS_MG_DL[0])}-{u.format(GLUCOSE_AXIS_MG_DL[1])} {u.label})",
                fontsize=10, fontweight="bold")
    return ax


def overlay_figure(data):
    """Page 3: every day's glucose, basal rate and boluses overlaid by time of day."""
    from pyloopkit.metrics.insulin import basal_segments

    figure = _figure("Day overlays", data)
    u = data.units
    days = data.days
    colours = _day_colours(len(days))
    colour_of = dict(zip(days, colours))
    ax = figure.add_axes((0.07, 0.50, 0.80, 0.38))
    _glucose_axis(ax, data)
    for day, g in data.glucose.groupby("day"):
        x = g["minute_of_day"].to_numpy() / 60.0
        y = u.convert(g["glucose_mg_dl"].to_numpy())
        breaks = np.flatnonzero(np.diff(x) > 0.5) + 1
        ax.plot(np.insert(x, breaks, np.nan), np.insert(y, breaks, np.nan), color=colour_of[day], lw=0.8, alpha=0.8)
    _hours_axis(ax, label=False)
    ax.set_title("Glucose, one line per day", fontsize=10, loc="left")

    basal_ax = figure.add_axes((0.07, 0.29, 0.80, 0.15))
    segments = basal_segments(data.doses, data.zone) if len(data.doses) else None
    if segments is not None and len(segments):
        for _, piece in segments.iterrows():
            day = piece["start"].date()
            if day not in colour_of:
                continue
            h0 = piece["start"].hour + piece["start"].minute / 60.0
            h1 = h0 + (piece["end"] - piece["start"]).total_seconds() / 3600.0
            basal_ax.plot([h0, h1], [piece["rate_u_per_h"]] * 2, color=colour_of[day], lw=1.2, alpha=0.8)
        basal_ax.set_ylim(0, max(segments["rate_u_per_h"].max() * 1.2, 0.1))
    basal_ax.set_ylabel("Basal (U/h)")
    _hours_axis(basal_ax, label=False)

    bolus_ax = figure.add_axes((0.07, 0.07, 0.80, 0.17))
    boluses = data.doses[data.doses["type"] == "BOLUS"]
    if len(boluses):
        from pyloopkit.metrics.insulin import _as_local

        when = _as_local(boluses["start"], data.zone)
        hours = (when.dt.hour + when.dt.minute / 60.0).to_numpy()
        bolus_ax.vlines(hours, 0, boluses["value"].to_numpy(float), colors=[colour_of.get(d, "#999999") for d in when.dt.date],
                        lw=1.5)
        bolus_ax.set_ylim(0, boluses["value"].max() * 1.15)
    bolus_ax.set_ylabel("Bolus (U)")
    _hours_axis(bolus_ax)

    legend_ax = figure.add_axes((0.885, 0.07, 0.1, 0.81))
    legend_ax.axis("off")
    for i, day in enumerate(days):
        legend_ax.plot([0, 0.25], [1 - i / max(len(days), 1)] * 2, color=colours[i], lw=2)
        legend_ax.text(0.32, 1 - i / max(len(days), 1), f"{day:%a %d %b}", va="center", fontsize=7.5)
    legend_ax.set_xlim(0, 1)
    legend_ax.set_ylim(-0.05, 1.05)
    return figure


def _day_colours(n: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.9, max(n, 1))][:n]


def insulin_figure(data):
    """Page 4: insulin per day (basal and bolus) and the meal / correction patterns by time of day."""
    figure = _figure("Insulin and meals", data)
    ax = figure.add_axes((0.07, 0.52, 0.88, 0.34))
    table = data.insulin
    if len(table):
        x = np.arange(len(table))
        ax.bar(x, table["basal_u"], color="#6a8caf", label="basal")
        ax.bar(x, table["bolus_u"], bottom=table["basal_u"], color="#e39b4c", label="bolus")
        for xi, total in zip(x, table["total_u"]):
            ax.text(xi, total, f"{total:.0f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{d:%a\n%d %b}" for d in table.index], fontsize=7)
        ax.set_ylim(0, table["total_u"].max() * 1.15)
        ax.legend(loc="upper right", fontsize=8, ncol=2, frameon=False)
    else:
        ax.text(0.5, 0.5, "no insulin records", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("Insulin (U/day)")
    ax.set_title("Total daily insulin (full days of the window)", fontsize=10, loc="left")

    patterns_table(figure.add_axes((0.07, 0.05, 0.88, 0.38)), data)
    return figure


def patterns_table(ax, data):
    """The meal and correction patterns by time of day as a table."""
    u = data.units
    p = data.patterns
    ax.axis("off")
    columns = ["Period", "Meals\nper day", "Carbs\ng/day", "Meal bolus\nU/day", "Corrections\nper day",
               "Corrections\nU/day", f"Mean glucose\n({u.label})", f"Rise 2 h after\nmeals ({u.label})"]
    cells = []
    for name, row in p.iterrows():
        cells.append([f"{name} ({row['hours']} h)", f"{row['meals_per_day']:.1f}", f"{row['carbs_g_per_day']:.0f}",
                      f"{row['meal_bolus_u_per_day']:.1f}", f"{row['corrections_per_day']:.1f}",
                      f"{row['correction_u_per_day']:.1f}",
                      u.format(row["mean_glucose_mg_dl"]), u.format(row["post_meal_rise_mg_dl"])])
    table = ax.table(cellText=cells, colLabels=columns, loc="upper center", cellLoc="center",
                     colWidths=[0.19] + [0.115] * 7)
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(1.0, 1.6)
    for (r, _c), cell in table.get_celld().items():
        cell.set_edgecolor("#cccccc")
        if r == 0:
            cell.set_height(cell.get_height() * 1.8)
            cell.set_facecolor("#e8eef5")
            cell.set_text_props(fontweight="bold")
    ax.set_title("Meals and corrections by time of day (a bolus within 30 min of a carb entry is a meal bolus)",
                 fontsize=10, loc="left")
