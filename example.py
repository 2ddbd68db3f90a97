"""Run the Loop algorithm on a Loop issue report and plot the result.

    python example.py                      # the synthetic day shipped in example_files/
    python example.py REPORT.json [--at ISO_TIME] [--out FIGURE.png]

Prints the prediction and the recommendations, and saves a figure with the glucose
history, the prediction, the prediction from each effect alone, IOB and COB.
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
    parser.add_argument("--out", default="example_output.png", help="figure to save (PNG)")
    args = parser.parse_args()

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
    plot_update(output, args.out, title=Path(args.report).name)
    print(f"figure saved to {args.out}")


if __name__ == "__main__":
    main()
