"""Glucose as the reader wants it: mg/dL or mmol/L (everything is computed in mg/dL)."""
from __future__ import annotations

from dataclasses import dataclass

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.metrics import MG_DL_PER_MMOL_L


@dataclass(frozen=True)
class GlucoseUnits:
    """A display unit: its label, the mg/dL in one unit and the decimals to print."""

    label: str
    mg_dl_per_unit: float
    decimals: int

    def convert(self, mg_dl):
        """Glucose [mg/dL] (scalar or array) in this unit."""
        return mg_dl / self.mg_dl_per_unit

    def format(self, mg_dl, with_label: bool = False) -> str:
        """``mg_dl`` converted and rounded for printing (``"7.8"`` or ``"140"``; ``"n/a"`` for NaN)."""
        value = self.convert(float(mg_dl))
        text = f"{value:.{self.decimals}f}" if value == value else "n/a"
        return f"{text} {self.label}" if with_label else text


MG_DL = GlucoseUnits("mg/dL", 1.0, 0)
MMOL_L = GlucoseUnits("mmol/L", MG_DL_PER_MMOL_L, 1)


def glucose_units(units: str) -> GlucoseUnits:
    """``"mg/dL"`` or ``"mmol/L"`` (case-insensitive) as a :class:`GlucoseUnits`."""
    for candidate in (MG_DL, MMOL_L):
        if str(units).strip().lower() == candidate.label.lower():
            return candidate
    raise InvalidInputError([Problem("units", None, units, 'expected "mg/dL" or "mmol/L"')])
