"""Write the report: a multi-page PDF (matplotlib's PdfPages) or one PNG per page."""
from __future__ import annotations

from pathlib import Path

from pyloopkit.report.data import ReportData, prepare

#: Page names, in order, and the function drawing each.
PAGES = ("summary", "agp", "overlays", "insulin", "prediction")


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("pyloopkit.report needs matplotlib: pip install matplotlib") from e


def build_pages(data: ReportData, history=None, prediction: bool = True) -> dict:
    """The report's figures by page name (the prediction page only when the history allows it)."""
    _matplotlib()
    from pyloopkit.report import figures

    extra = None
    if prediction and history is not None:  # first: its notes go on the summary page
        from pyloopkit.report.prediction import prediction_figure

        extra = prediction_figure(history, data)
    pages = {
        "summary": figures.summary_figure,
        "agp": figures.agp_figure,
        "overlays": figures.overlay_figure,
        "insulin": figures.insulin_figure,
    }
    result = {name: draw(data) for name, draw in pages.items()}
    if extra is not None:
        result["prediction"] = extra
    return result


def write_report(history, path, days: float = 14, units: str = "mg/dL", tz=None, prediction: bool = True) -> dict:
    """Write the PDF report of the last ``days`` days of ``history`` to ``path``.

    Parameters
    ----------
    history : History
        Glucose (CGM), doses, carbs.
    path : str or Path
        The PDF file to write.
    days : float
        Length of the report window (days), ending at the last CGM reading.
    units : "mg/dL" or "mmol/L"
        Unit of every glucose value printed or drawn.
    tz : str or tzinfo, optional
        Zone of the clock (default: the history's glucose times' zone).
    prediction : bool
        Add the Loop replay's prediction-error page when the history allows it.

    Returns
    -------
    dict
        ``path``, ``pages`` (names in order), ``summary`` (the metrics) and ``notes`` (what was
        left out and why).
    """
    from matplotlib.backends.backend_pdf import PdfPages

    data = prepare(history, days=days, units=units, tz=tz)
    pages = build_pages(data, history, prediction)
    path = Path(path)
    with PdfPages(path, metadata={"Title": f"Glucose report: {data.source}", "Creator": "pyloopkit"}) as pdf:
        for figure in pages.values():
            pdf.savefig(figure)
    return {"path": str(path), "pages": list(pages), "summary": data.summary, "notes": data.notes}


def write_pngs(history, folder, days: float = 14, units: str = "mg/dL", tz=None, dpi: int = 110,
               prediction: bool = True) -> list[str]:
    """Write each report page as ``<folder>/<page>.png``; returns the paths in page order."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    data = prepare(history, days=days, units=units, tz=tz)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in build_pages(data, history, prediction).items():
        FigureCanvasAgg(figure)
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=dpi)
        paths.append(str(path))
    return paths
