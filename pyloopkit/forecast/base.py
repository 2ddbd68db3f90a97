"""The forecaster interface: one PyLoopKit input dictionary in, 4 hours of glucose out.

Every forecaster implements :meth:`Forecaster.predict_rows` over :class:`ForecastRows` (arrays,
so evaluation is batched); :meth:`Forecaster.predict` and :meth:`Forecaster.predict_many` wrap
it for ``update()`` input dictionaries.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..date import from_seconds, tzinfo_of
from .features import HORIZONS_MIN, ForecastRows, rows_from_inputs


class Forecaster(ABC):
    """Predicts glucose (mg/dL) at 5, 10, ..., 240 min after the input's ``time_to_calculate_at``."""

    #: Short name used in evaluation tables.
    name = "forecaster"

    @abstractmethod
    def predict_rows(self, rows: ForecastRows) -> np.ndarray:
        """Forecasts for every row: array (N, 48) of mg/dL at the horizons ``HORIZONS_MIN``."""

    def predict_many(self, input_dicts: list[dict]) -> np.ndarray:
        """Forecasts (N, 48) mg/dL for PyLoopKit input dictionaries (Loop's effects computed once each)."""
        return self.predict_rows(rows_from_inputs(list(input_dicts)))

    def predict(self, input_dict: dict) -> dict:
        """``{"dates": [48 datetimes], "values": [48 floats, mg/dL]}`` after ``time_to_calculate_at``.

        The dates carry the zone of ``time_to_calculate_at`` (naive when it is naive).
        """
        rows = rows_from_inputs([input_dict])
        values = self.predict_rows(rows)[0]
        dates = from_seconds(rows.origin[0] + 60.0 * HORIZONS_MIN, tzinfo_of(input_dict["time_to_calculate_at"]))
        return {"dates": dates, "values": [float(v) for v in values]}
