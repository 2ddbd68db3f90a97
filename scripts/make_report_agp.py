"""Draw docs/report_agp.png: the AGP of 14 simulated days (adult#001, basal-bolus controller, seed 7).

Run from the project root: ``python scripts/make_report_agp.py``.
"""
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pyloopkit.report import prepare, simulated_history
from pyloopkit.report.figures import agp_axes

SEED = 7
DAYS = 14


def main() -> None:
    data = prepare(simulated_history(DAYS, seed=SEED), days=DAYS)
    figure = Figure(figsize=(8.0, 3.6))
    FigureCanvasAgg(figure)
    agp_axes(figure.add_axes((0.08, 0.14, 0.86, 0.74)), data)
    out = Path(__file__).resolve().parents[1] / "docs" / "report_agp.png"
    figure.savefig(out, dpi=80)
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
