"""Run the Loop algorithm on a Loop issue report and plot the result.

    python example.py                      # the synthetic day shipped in example_files/ -> example_output.png
    python example.py REPORT.json [--at ISO_TIME] [--out FIGURE.png]   # default: REPORT_output.png

Prints the prediction and the recommendations, and saves a figure with the glucose
history, the prediction, target range and suspend threshold, doses and carb entries,
each effect alone, IOB and COB. The figure of a REPORT goes to ``--out``, or beside the
current directory as ``<report name>_output.png``: never over the shipped example figure.
"""
import argparse
from pathlib import Path

from pyloopkit.cli import load_input
from pyloopkit.loop_data_manager import update
from pyloopkit.plots import plot_update

HERE = Path(__file__).resolve().parent
DEFAULT_REPORT = HERE / "example_files" / "synthetic_issue_report.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", default=str(DEFAULT_REPORT), help="issue report JSON")
    parser.add_argument("--at", help="ISO time to run at (default: the report's own time)")
    parser.add_argument("--out", help="figure to save (PNG); default example_output.png for the shipped "
                                      "example, <report name>_output.png for a REPORT")
    args = parser.parse_args()
    out = args.out or default_figure_path(args.report)

    output = update(load_input(args.report, args.at))
    dates, values = output["predicted_glucose_dates"], output["predicted_glucose_values"]
    print(f"report: {args.report}")
    print(f"run at: {output['input_data']['time_to_calculate_at']}")
    print(f"glucose now {values[0]:.1f} mg/dL -> predicted {values[-1]:.1f} mg/dL at {dates[-1]:%H:%M}")
    print(f"insulin on board {output['insulin_on_board']:.2f} U, carbs on board {output['carbs_on_board']:.1f} g")
    print(f"recommended temp basal (U/h, min): {output['recommended_temp_basal']}")
    print(f"recommended bolus (U, pending U, notice): {output['recommended_bolus']}")
    for warning in output["warnings"]:
        print(f"warning: {warning}")
    plot_update(output, out, title=Path(args.report).name)
    print(f"figure saved to {out}")


def default_figure_path(report: str) -> str:
    """``example_output.png`` for the shipped example, else ``<report name>_output.png`` (current directory)."""
    if Path(report).resolve() == DEFAULT_REPORT:
        return "example_output.png"
    return f"{Path(report).stem}_output.png"


if __name__ == "__main__":
    main()
