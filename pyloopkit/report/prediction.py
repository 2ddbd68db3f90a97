"""The Loop replay's prediction error over the report window, when the history allows it."""
from __future__ import annotations

def prediction_figure(history, data):
    """Placeholder replaced below."""
    return None
