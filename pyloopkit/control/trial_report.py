"""Figures and Markdown tables of a population trial (``pyloopkit trial-report DIR``).

Per group (child, adolescent, adult) and controller: the mean fraction of the episodes
completed (bar chart, as in the deep-RL paper's survival figure), boxplots of the time
below 70, in 70-180 and above 180 mg/dL and of the risk index, LBGI and HBGI, and a
Markdown table of means.
"""
from __future__ import annotations

from pathlib import Path

GROUP_ORDER = ("child", "adolescent", "adult")
SUMMARY_COLUMNS = {"fraction_completed": "completed", "pct_in_70_180": "% 70-180", "pct_below_70": "% <70",
                   "pct_below_54": "% <54", "pct_above_180": "% >180", "risk_index": "RI", "lbgi": "LBGI",
                   "hbgi": "HBGI", "gri": "GRI"}
TIME_PANELS = (("pct_below_70", "% time < 70 mg/dL"), ("pct_in_70_180", "% time 70-180 mg/dL"),
               ("pct_above_180", "% time > 180 mg/dL"))
RISK_PANELS = (("risk_index", "risk index"), ("lbgi", "LBGI"), ("hbgi", "HBGI"))


def _groups(table) -> list[str]:
    present = list(dict.fromkeys(table["group"]))
    return [g for g in GROUP_ORDER if g in present] + [g for g in present if g not in GROUP_ORDER]


def group_summary(table):
    """Mean of :data:`SUMMARY_COLUMNS` per (group, controller), controllers in table order."""
    controllers = list(dict.fromkeys(table["controller"]))
    means = table.groupby(["group", "controller"], sort=False)[list(SUMMARY_COLUMNS)].mean()
    order = [(g, c) for g in _groups(table) for c in controllers if (g, c) in means.index]
    return means.loc[order]


def markdown(table) -> str:
    """One Markdown table per group: the means of :func:`group_summary` (metrics over completed time)."""
    summary = group_summary(table)
    lines = []
    for group in _groups(table):
        counts = table[table["group"] == group].groupby("controller", sort=False).size()
        lines += [f"### {group} ({counts.iloc[0]} episodes per controller)", "",
                  "| controller | " + " | ".join(SUMMARY_COLUMNS.values()) + " |",
                  "|---" * (len(SUMMARY_COLUMNS) + 1) + "|"]
        for (_, controller), row in summary.loc[[group]].iterrows():
            cells = [f"{row[c]:.2f}" if c != "fraction_completed" else f"{row[c]:.3f}" for c in SUMMARY_COLUMNS]
            lines.append(f"| {controller} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _boxplots(table, panels, path: Path, plt) -> None:
    groups, controllers = _groups(table), list(dict.fromkeys(table["controller"]))
    fig, axes = plt.subplots(len(panels), len(groups), figsize=(4 * len(groups), 3 * len(panels)), squeeze=False)
    for row, (column, label) in enumerate(panels):
        for col, group in enumerate(groups):
            ax = axes[row][col]
            part = table[table["group"] == group]
            data = [part.loc[part["controller"] == c, column].dropna().to_numpy() for c in controllers]
            ax.boxplot(data, showfliers=True)
            ax.set_xticks(range(1, len(controllers) + 1), controllers, rotation=30)
            ax.set_title(f"{group}" if row == 0 else "")
            ax.set_ylabel(label if col == 0 else "")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _completion(table, path: Path, plt) -> None:
    import numpy as np

    groups, controllers = _groups(table), list(dict.fromkeys(table["controller"]))
    means = table.groupby(["group", "controller"])["fraction_completed"].mean()
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(groups) * len(controllers) / 3, 3.5))
    width = 0.8 / len(controllers)
    for k, controller in enumerate(controllers):
        values = [means.get((g, controller), np.nan) for g in groups]
        ax.bar(np.arange(len(groups)) + k * width, values, width, label=controller)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)
    ax.set_ylabel("fraction of the episode completed")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(directory) -> dict:
    """Write ``figures/*.png`` and ``summary.md`` into ``directory`` (which holds the trial table).

    Returns the paths written (``completion``, ``time_in_ranges``, ``risk``, ``summary``).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pyloopkit.control.results import load_trial

    directory = Path(directory)
    table = load_trial(directory)
    figures = directory / "figures"
    figures.mkdir(exist_ok=True)
    paths = {"completion": figures / "fraction_completed.png", "time_in_ranges": figures / "time_in_ranges.png",
             "risk": figures / "risk.png", "summary": directory / "summary.md"}
    _completion(table, paths["completion"], plt)
    _boxplots(table, TIME_PANELS, paths["time_in_ranges"], plt)
    _boxplots(table, RISK_PANELS, paths["risk"], plt)
    paths["summary"].write_text("## Trial summary (means per group; metrics over the completed part)\n\n"
                                + markdown(table))
    return paths
