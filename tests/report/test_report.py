"""The report: AGP numbers, the PDF's pages and axes, the PNGs, mmol/L labels, the CLI."""
import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.text import Text  # noqa: E402

from pyloopkit.cli import main  # noqa: E402
from pyloopkit.errors import InvalidInputError, MissingDataError  # noqa: E402
from pyloopkit.io.history import History  # noqa: E402
from pyloopkit.metrics import MG_DL_PER_MMOL_L  # noqa: E402
from pyloopkit.report import agp_percentiles, prepare, simulated_history, write_pngs, write_report  # noqa: E402
from pyloopkit.report.pdf import build_pages  # noqa: E402
from pyloopkit.report.prediction import prediction_errors  # noqa: E402
from pyloopkit.report.units import glucose_units  # noqa: E402


@pytest.fixture(scope="module")
def history():
    return simulated_history(14, seed=5)


def _texts(figure):
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


def test_agp_percentiles_by_hand():
    """Bin 0 (00:00-00:15) holds 100, 110, 120, 130, 140; bin 1 holds 200; the other 94 bins are
    empty. Unsmoothed: bin 0's 5th percentile is 100 + 0.05 x 4 x 10 = 102, its median 120. Smoothed:
    bin 0 = (2 x 120 + 200) / 3 (its empty neighbour 23:45 is left out), bin 1 = (2 x 200 + 120) / 3."""
    t = np.array([0.0, 3.0, 6.0, 9.0, 14.0, 20.0])
    g = np.array([100.0, 110.0, 120.0, 130.0, 140.0, 200.0])
    centres, raw = agp_percentiles(t, g, smooth=False)
    assert centres[:2].tolist() == [7.5, 22.5] and centres.size == 96
    assert raw[0, 0] == pytest.approx(102.0) and raw[2, 0] == 120.0 and raw[2, 1] == 200.0
    assert np.isnan(raw[:, 2:]).all()
    _, smooth = agp_percentiles(t, g)
    assert smooth[2, 0] == pytest.approx((2 * 120 + 200) / 3)
    assert smooth[2, 1] == pytest.approx((2 * 200 + 120) / 3)
    with pytest.raises(InvalidInputError, match="1440"):
        agp_percentiles([1440.0], [100.0])


def test_window_is_the_last_days_ending_at_the_last_reading(history):
    data = prepare(history, days=14)
    assert (data.start, data.end) == (pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-15", tz="UTC"))
    assert len(data.days) == 14 and len(data.insulin) == 14
    assert data.summary["days"] == pytest.approx(14.0)
    assert data.summary["n_readings"] == len(history.glucose)
    # the simulated basal runs all day: 24 h x the controller's rate every full day
    assert data.insulin["basal_u"].to_numpy() == pytest.approx(24 * history.settings["basal_rate_values"][0])
    week = prepare(history, days=7)
    assert week.start == pd.Timestamp("2024-01-08", tz="UTC") and len(week.insulin) == 7


def test_pdf_has_the_pages_and_axes(history, tmp_path):
    result = write_report(history, tmp_path / "report.pdf")
    assert result["pages"][:4] == ["summary", "agp", "overlays", "insulin"]
    if hasattr(history, "to_input_dict"):  # pyloopkit.io's History: the simulated settings let Loop replay
        assert result["pages"][4:] == ["prediction"]
    else:
        assert result["pages"][4:] == [] and any("to_input_dict" in note for note in result["notes"])
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type /Page\b", pdf)) == len(result["pages"])
    pages = build_pages(prepare(history), history, prediction=False)
    assert [len(f.axes) for f in pages.values()] == [2, 2, 4, 2]
    agp = pages["agp"].axes[0]
    assert agp.get_ylabel() == "Glucose (mg/dL)" and agp.get_ylim() == (40.0, 350.0)
    assert len(agp.collections) >= 2 and len(agp.lines) >= 3  # two bands, the median and the 5/95 % edges
    summary_text = " ".join(_texts(pages["summary"]))
    assert "Time in ranges" in summary_text and "70-180 mg/dL" in summary_text


def test_mmol_l_everywhere_a_user_reads_glucose(history, tmp_path):
    data = prepare(history, units="mmol/L")
    pages = build_pages(data, history)
    for name, figure in pages.items():
        assert not any("mg/dL" in text for text in _texts(figure)), name
    agp = pages["agp"].axes[0]
    assert agp.get_ylabel() == "Glucose (mmol/L)"
    assert agp.get_ylim() == pytest.approx((40.0 / MG_DL_PER_MMOL_L, 350.0 / MG_DL_PER_MMOL_L))
    summary = " ".join(_texts(pages["summary"]))
    assert "3.9-10.0 mmol/L" in summary
    assert f"{data.summary['mean_mg_dl'] / MG_DL_PER_MMOL_L:.1f} mmol/L" in summary
    paths = write_pngs(history, tmp_path / "png", units="mmol/L", dpi=60)
    names = [p.rsplit("/", 1)[1] for p in paths]
    assert names[:4] == ["summary.png", "agp.png", "overlays.png", "insulin.png"] and names[4:] in ([], ["prediction.png"])
    from matplotlib.image import imread

    for path in paths:
        assert imread(path).shape[:2] == (round(8.27 * 60), round(11.69 * 60))


def test_units_and_missing_data_are_checked(history):
    with pytest.raises(InvalidInputError, match="units"):
        glucose_units("mmol")
    short = History(glucose=history.glucose.iloc[:100], doses=history.doses, carbs=history.carbs)
    with pytest.raises(MissingDataError, match="100 CGM readings"):
        prepare(short)


def test_prediction_errors_by_hand():
    """Runs at 0 and 5 min; readings at 25 and 35 min (100, 120): the measurement 30 min after
    the first run is 110, so a prediction of 115 errs by +5; the second run has no prediction."""
    minute = 60_000_000_000
    errors = prediction_errors([0, 5 * minute], {30: [115.0, np.nan]}, [25 * minute, 35 * minute], [100.0, 120.0])
    assert errors[30]["measured"].tolist() == [110.0]
    assert errors[30]["error"].tolist() == [5.0]


class _HistoryWithInput(History):
    """A History that can give update()'s input dictionary (what pyloopkit.io's History offers)."""

    input_dict: dict = None

    def to_input_dict(self, at=None, **_):
        return self.input_dict


def test_prediction_page_from_the_loop_replay(tmp_path):
    from pyloopkit.cli import load_input

    d = load_input("example_files/synthetic_issue_report.json")
    glucose = pd.DataFrame({"time": pd.to_datetime(d["glucose_dates"], utc=True), "glucose_mg_dl": d["glucose_values"],
                            "source_unit": "mg/dL", "kind": "cgm"})
    history = _HistoryWithInput(glucose=glucose, source="example issue report")
    history.input_dict = d
    result = write_report(history, tmp_path / "loop.pdf", days=1)
    assert result["pages"][-1] == "prediction"
    from pyloopkit.report.prediction import replay_errors

    errors, reason = replay_errors(history, prepare(history, days=1))
    assert reason is None and errors[30]["error"].size >= 10
    assert np.all(np.isfinite(errors[60]["error"]))


def test_cli_report(tmp_path, capsys):
    pdf = tmp_path / "cli.pdf"
    assert main(["report", "--simulated", "2", "--days", "2", "--pdf", str(pdf), "--units", "mmol/L"]) == 0
    out = capsys.readouterr().out
    assert pdf.exists() and re.search(r"[45] pages \(summary, agp, overlays, insulin", out) and "mmol/L" in out
    assert main(["report", str(tmp_path / "missing.json"), "--pdf", str(pdf)]) == 4
    assert "no such file" in capsys.readouterr().err
    assert main(["report", "--pdf", str(pdf)]) == 2
    assert main(["report", "--simulated", "0.5", "--pdf", str(pdf)]) == 4
    assert re.search(r"error: the simulated history: \d+ CGM readings .*the report needs 288", capsys.readouterr().err)


def test_glucose_only_history_across_a_dst_change(tmp_path):
    """Berlin springs forward on 31 March 2024: that local day has 23 h (276 five-minute slots), and
    the local week from 27 March to 3 April 167 h. A history of glucose alone still gives every
    page; the insulin page says there is none."""
    full = simulated_history(167 / 24, seed=2, start="2024-03-27T00:00:00", tz="Europe/Berlin")
    history = History(glucose=full.glucose, source="glucose only")
    data = prepare(history, days=7)
    assert (data.start, data.end) == (pd.Timestamp("2024-03-27", tz="Europe/Berlin"),
                                      pd.Timestamp("2024-04-03", tz="Europe/Berlin"))
    assert data.summary["days"] == pytest.approx(167 / 24)
    assert len(data.days) == 7 and data.insulin.empty
    assert any("no insulin records" in note for note in data.notes)
    per_day = data.glucose.groupby("day").size()
    assert per_day[pd.Timestamp("2024-03-31").date()] <= 276 < per_day[pd.Timestamp("2024-03-30").date()]
    result = write_report(history, tmp_path / "dst.pdf", days=7)
    assert result["pages"] == ["summary", "agp", "overlays", "insulin"]


def test_cli_report_reads_an_export_folder_as_well_as_a_history_folder(tmp_path, capsys):
    """A folder with ``meta.json`` is a saved History; any other folder (a Nightscout export) goes to io.read."""
    pytest.importorskip("pyloopkit.io.nightscout")
    import json

    from pyloopkit.report import simulated_history

    history = simulated_history(days=2, seed=5, dropout_per_day=0.0)
    saved = tmp_path / "saved"
    history.to_csv(saved)
    export = tmp_path / "export"
    export.mkdir()
    entries = [{"type": "sgv", "sgv": float(v), "date": int(t.timestamp() * 1000), "dateString": t.isoformat()}
               for t, v in zip(history.glucose["time"], history.glucose["glucose_mg_dl"])]
    (export / "entries.json").write_text(json.dumps(entries))
    for folder in (saved, export):
        pdf = tmp_path / f"{folder.name}.pdf"
        assert main(["report", str(folder), "--days", "2", "--pdf", str(pdf), "--no-prediction"]) == 0, \
            capsys.readouterr().err
        assert pdf.exists()
