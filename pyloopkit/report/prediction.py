"""The Loop replay's prediction error over the report window, when the history allows it.

The history must offer ``to_input_dict(at=...)`` (pyloopkit.io's History does) with the
settings ``update()`` needs. ``pyloopkit.io.replay`` (chunked, over the whole window) runs Loop
every ``step_min`` minutes, or, without it, :func:`pyloopkit.loop_replay.replay` on
``to_input_dict(at=last reading)`` and each prediction 30, 60 and 120 minutes ahead is compared with the CGM
reading at that time.
"""
from __future__ import annotations

import numpy as np

from pyloopkit.loop_replay import HORIZONS_MIN

#: Replay step [min]: one Loop run per hour keeps a 14-day replay to a few hundred runs.
REPLAY_STEP_MIN = 60.0
#: A prediction is scored only where CGM readings lie within this many minutes on both sides.
MAX_READING_DISTANCE_MIN = 10.0


def prediction_errors(step_time_ns, predictions: dict, glucose_time_ns, glucose_mg_dl) -> dict:
    """Errors (predicted - measured, mg/dL) of the predictions at each horizon.

    Parameters
    ----------
    step_time_ns : array_like (s,)
        Times of the Loop runs [ns since the epoch].
    predictions : dict
        ``{horizon_min: array (s,)}`` predicted glucose [mg/dL] (NaN where none was made).
    glucose_time_ns, glucose_mg_dl : array_like (m,)
        CGM readings, in time order.

    Returns
    -------
    dict
        ``{horizon_min: {"predicted", "measured", "error"}}`` arrays over the scored runs (a run is
        scored when the measurement, interpolated between readings at most
        :data:`MAX_READING_DISTANCE_MIN` away on each side, and the prediction exist).
    """
    from pyloopkit.metrics.insulin import _glucose_at

    steps = np.asarray(step_time_ns, dtype=np.int64)
    t = np.asarray(glucose_time_ns, dtype=np.int64)
    g = np.asarray(glucose_mg_dl, dtype=float)
    result = {}
    for horizon, predicted in predictions.items():
        predicted = np.asarray(predicted, dtype=float)
        measured = _glucose_at(t, g, steps + int(horizon * 60e9), MAX_READING_DISTANCE_MIN * 60e9)
        scored = np.isfinite(predicted) & np.isfinite(measured)
        result[horizon] = {"predicted": predicted[scored], "measured": measured[scored],
                           "error": predicted[scored] - measured[scored]}
    return result


def replay_errors(history, data, step_min: float = REPLAY_STEP_MIN):
    """``(errors, reason)``: the prediction errors over the window, or None and why not."""
    import pandas as pd

    from pyloopkit.errors import InvalidInputError, MissingDataError
    from pyloopkit.loop_replay import replay

    if not hasattr(history, "to_input_dict"):
        return None, "Loop prediction error left out: this History has no to_input_dict() (pyloopkit.io is needed)"
    try:
        from pyloopkit.io import replay as history_replay  # chunked replay over the whole window
    except ImportError:
        history_replay = None
    at = data.glucose["time"].iloc[-1]
    start = max(data.start, data.glucose["time"].iloc[0] + pd.Timedelta(hours=1))
    try:
        if history_replay is not None:
            table = history_replay(history, start=start, end=at, step_minutes=step_min)
        else:
            table = replay(history.to_input_dict(at=at.to_pydatetime()), end=at.to_pydatetime(),
                           step_minutes=step_min, as_dataframe=True)
    except (InvalidInputError, MissingDataError, ValueError, KeyError, TypeError) as e:
        first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
        return None, f"Loop prediction error left out: the replay could not run ({first_line})"
    times = pd.to_datetime(table["time"], utc=True)
    inside = ((times >= data.start) & (times < data.end)).to_numpy()
    if not inside.any():
        return None, "Loop prediction error left out: no replay step falls in the report window"
    predictions = {h: pd.to_numeric(table[f"predicted_{h}"], errors="coerce").to_numpy(float)[inside] for h in HORIZONS_MIN}
    glucose_ns = data.glucose["time"].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()
    errors = prediction_errors(times[inside].dt.as_unit("ns").astype("int64").to_numpy(), predictions,
                               glucose_ns, data.glucose["glucose_mg_dl"].to_numpy())
    return errors, None


def prediction_figure(history, data):
    """The prediction-error page, or None (the reason is added to ``data.notes``)."""
    errors, reason = replay_errors(history, data)
    if errors is None:
        data.notes.append(reason)
        return None
    from pyloopkit.report.figures import _figure

    u = data.units
    figure = _figure("Loop prediction error (replay)", data)
    scatter = figure.add_axes((0.07, 0.1, 0.4, 0.75))
    limits = u.convert(np.array([40.0, 400.0]))
    scatter.plot(limits, limits, color="#999999", lw=0.8)
    for horizon, colour in zip(HORIZONS_MIN, ("#2f6fb3", "#e39b4c", "#8b1a1a")):
        e = errors[horizon]
        scatter.scatter(u.convert(e["measured"]), u.convert(e["predicted"]), s=6, color=colour, alpha=0.6,
                        label=f"{horizon} min", rasterized=True)
    scatter.set_xlim(*limits)
    scatter.set_ylim(*limits)
    scatter.set_xlabel(f"Measured ({u.label})")
    scatter.set_ylabel(f"Predicted ({u.label})")
    scatter.legend(frameon=False)
    text = figure.add_axes((0.55, 0.62, 0.4, 0.23))
    text.axis("off")
    lines = [f"{'horizon':>8} {'runs':>6} {'MAE':>8} {'RMSE':>8} {'bias':>8}   ({u.label})"]
    for horizon in HORIZONS_MIN:
        e = u.convert(errors[horizon]["error"])
        if e.size:
            lines.append(f"{horizon:>5} min {e.size:>6} {np.mean(np.abs(e)):>8.{u.decimals + 1}f} "
                         f"{np.sqrt(np.mean(e ** 2)):>8.{u.decimals + 1}f} {np.mean(e):>8.{u.decimals + 1}f}")
    lines += ["", f"Loop replayed every {REPLAY_STEP_MIN:g} min; error = predicted - CGM reading",
              "at the horizon (bias > 0: Loop predicted too high)."]
    text.text(0.0, 1.0, "\n".join(lines), family="monospace", va="top", fontsize=9.5)
    histogram = figure.add_axes((0.57, 0.1, 0.38, 0.42))
    spread = max((np.percentile(np.abs(u.convert(errors[h]["error"])), 99) for h in HORIZONS_MIN
                  if errors[h]["error"].size), default=1.0)
    bins = np.linspace(-spread, spread, 41)
    for horizon, colour in zip(HORIZONS_MIN, ("#2f6fb3", "#e39b4c", "#8b1a1a")):
        histogram.hist(u.convert(errors[horizon]["error"]), bins=bins, histtype="step", color=colour, lw=1.5,
                       label=f"{horizon} min")
    histogram.axvline(0.0, color="#999999", lw=0.8)
    histogram.set_xlabel(f"Prediction error ({u.label})")
    histogram.set_ylabel("Loop runs")
    histogram.legend(frameon=False, fontsize=8)
    return figure
