"""Glycaemic risk and outcome metrics on arrays of glucose readings.

Every function takes glucose in mg/dL as an array of shape ``(m,)`` or
``(n, m)`` (``n`` traces of ``m`` readings) and works along the last axis:
point-wise functions return an array of the input's shape, summary functions
reduce the last axis and return a float for ``(m,)`` input or an ``(n,)``
array for ``(n, m)`` input.

Glucose must be finite and strictly positive, and at least 1 mg/dL for the
risk functions (they raise ``ln(G)`` to a fractional power); anything else raises :class:`~pyloopkit.errors.InvalidInputError`
naming the metric, the position and the value. Nothing is clipped.

References
----------
- Kovatchev B.P. et al., "Symmetrization of the blood glucose measurement
  scale and its applications", Diabetes Care 20(11), 1997: the symmetrised
  scale ``f(G) = 1.509 (ln(G)^1.084 - 5.381)`` (zero at 112.5 mg/dL, +-10 at
  the extremes 20 and 600 mg/dL) and the risk ``r = 10 f^2``.
- Kovatchev B.P. et al., Diabetes Technol Ther 2(2), 2000 / Diabetes Care
  29(11), 2006: LBGI and HBGI, the means over *all* readings of the low and
  high branches of ``r`` (a reading on the other side contributes 0).
- Magni L. et al., "Model predictive control of type 1 diabetes: an in silico
  trial", J Diabetes Sci Technol 1(6), 2007: ``r(G) = 10 (c0 (ln(G)^c1 - c2))^2``
  with c0 = 3.35506, c1 = 0.8353, c2 = 3.7932 (zero near 138.9 mg/dL), the
  cost used by Fox et al. 2020 and later RL work on the UVA/Padova simulator.
- Battelino T. et al., "Clinical targets for CGM data interpretation:
  recommendations from the International Consensus on Time in Range",
  Diabetes Care 42(8), 2019: the ranges <54, <70, 70-180 (inclusive), >180,
  >250 mg/dL.
- Bergenstal R.M. et al., "Glucose Management Indicator (GMI)", Diabetes Care
  41(11), 2018: ``GMI [%] = 3.31 + 0.02392 x mean glucose [mg/dL]``.
- Klonoff D.C. et al., "A Glycemia Risk Index (GRI) of hypoglycemia and
  hyperglycemia for continuous glucose monitoring validated by clinician
  ratings", J Diabetes Sci Technol 2022: ``GRI = 3.0 VLow + 2.4 Low + 1.6 VHigh
  + 0.8 High`` in percent of readings (VLow < 54, 54 <= Low < 70,
  180 < High <= 250, VHigh > 250 mg/dL), capped at 100.

Note on simglucose: ``simglucose.analysis.risk.risk_index`` averages the low
branch over the low readings only (and the high branch over the high
readings only). That equals the definition above for a single reading (the
way simglucose's environment calls it) or when all readings are on one side
of 112.5 mg/dL, but not for mixed traces; this module follows Kovatchev.
"""
from __future__ import annotations

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem

KOVATCHEV_ALPHA = 1.084
KOVATCHEV_BETA = 5.381
KOVATCHEV_GAMMA = 1.509
MAGNI_C0 = 3.35506
MAGNI_C1 = 0.8353
MAGNI_C2 = 3.7932

VERY_LOW_MG_DL = 54.0
LOW_MG_DL = 70.0
HIGH_MG_DL = 180.0
VERY_HIGH_MG_DL = 250.0

#: The risk scales raise ln(G) to a fractional power: defined for G >= 1 mg/dL.
RISK_MINIMUM_MG_DL = 1.0

_MAX_PROBLEMS_LISTED = 10


def validate_glucose(glucose_mg_dl, metric: str, minimum_mg_dl: float | None = None) -> np.ndarray:
    """Return ``glucose_mg_dl`` as a float array after checking it.

    Parameters
    ----------
    glucose_mg_dl : array_like, shape (m,) or (n, m)
        Glucose readings [mg/dL].
    metric : str
        Name of the metric asking, used in the error message.
    minimum_mg_dl : float or None
        Smallest value allowed (inclusive); ``None``: any value > 0.

    Raises
    ------
    InvalidInputError
        When the array is empty, has more than two dimensions, or holds a
        non-finite value or one out of range (the first ten are listed, each
        with its flat index, and the total count is given).
    """
    glucose = np.asarray(glucose_mg_dl, dtype=float)
    field = f"glucose_mg_dl (for {metric})"
    if glucose.ndim not in (1, 2) or glucose.shape[-1] == 0:
        raise InvalidInputError([Problem(field, None, glucose.shape, "expected a non-empty array of shape (m,) or (n, m)")])
    if minimum_mg_dl is None:
        bad = ~(np.isfinite(glucose) & (glucose > 0.0))
        reason = "glucose must be finite and > 0 mg/dL"
    else:
        bad = ~(np.isfinite(glucose) & (glucose >= minimum_mg_dl))
        reason = f"glucose must be finite and >= {minimum_mg_dl:g} mg/dL (ln(G) >= 0 on the risk scale)"
    if bad.any():
        flat_bad = np.flatnonzero(bad)
        problems = [
            Problem(field, int(i), float(glucose.flat[i]), reason)
            for i in flat_bad[:_MAX_PROBLEMS_LISTED]
        ]
        if flat_bad.size > _MAX_PROBLEMS_LISTED:
            problems.append(Problem(field, None, int(flat_bad.size), "invalid readings in total"))
        raise InvalidInputError(problems)
    return glucose


def _as_output(value):
    """A float for a reduced ``(m,)`` input, the ``(n,)`` array otherwise."""
    return float(value) if np.ndim(value) == 0 else value


def _mean_last(values: np.ndarray):
    return _as_output(values.mean(axis=-1))


def _kovatchev_scale(glucose: np.ndarray) -> np.ndarray:
    return KOVATCHEV_GAMMA * (np.log(glucose) ** KOVATCHEV_ALPHA - KOVATCHEV_BETA)


def _low_high_risk(glucose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = _kovatchev_scale(glucose)
    risk = 10.0 * f**2
    return np.where(f < 0.0, risk, 0.0), np.where(f > 0.0, risk, 0.0)


def kovatchev_scale(glucose_mg_dl) -> np.ndarray:
    """Kovatchev's symmetrised glucose ``f(G) = 1.509 (ln(G)^1.084 - 5.381)`` (unitless, point-wise)."""
    return _kovatchev_scale(validate_glucose(glucose_mg_dl, "kovatchev_scale", RISK_MINIMUM_MG_DL))


def kovatchev_risk(glucose_mg_dl) -> np.ndarray:
    """Point-wise Kovatchev risk ``r(G) = 10 f(G)^2`` (0 at 112.5 mg/dL, about 100 at 20 and 600 mg/dL)."""
    return 10.0 * _kovatchev_scale(validate_glucose(glucose_mg_dl, "kovatchev_risk", RISK_MINIMUM_MG_DL)) ** 2


def low_high_risk(glucose_mg_dl) -> tuple[np.ndarray, np.ndarray]:
    """Point-wise low and high branches ``(rl, rh)`` of the Kovatchev risk.

    ``rl = r`` where ``f < 0`` (glucose below 112.5 mg/dL) and 0 elsewhere;
    ``rh = r`` where ``f > 0`` and 0 elsewhere; ``rl + rh = r``.
    """
    return _low_high_risk(validate_glucose(glucose_mg_dl, "low_high_risk", RISK_MINIMUM_MG_DL))


def lbgi(glucose_mg_dl):
    """Low blood glucose index: mean over all readings of the low risk branch ``rl``."""
    return _mean_last(_low_high_risk(validate_glucose(glucose_mg_dl, "lbgi", RISK_MINIMUM_MG_DL))[0])


def hbgi(glucose_mg_dl):
    """High blood glucose index: mean over all readings of the high risk branch ``rh``."""
    return _mean_last(_low_high_risk(validate_glucose(glucose_mg_dl, "hbgi", RISK_MINIMUM_MG_DL))[1])


def risk_index(glucose_mg_dl):
    """Kovatchev blood glucose risk index ``BGRI = LBGI + HBGI`` (mean of ``r``)."""
    return _mean_last(10.0 * _kovatchev_scale(validate_glucose(glucose_mg_dl, "risk_index", RISK_MINIMUM_MG_DL)) ** 2)


def _magni_risk(glucose: np.ndarray) -> np.ndarray:
    return 10.0 * (MAGNI_C0 * (np.log(glucose) ** MAGNI_C1 - MAGNI_C2)) ** 2


def magni_risk(glucose_mg_dl) -> np.ndarray:
    """Point-wise Magni risk ``10 (3.35506 (ln(G)^0.8353 - 3.7932))^2`` (zero near 138.9 mg/dL)."""
    return _magni_risk(validate_glucose(glucose_mg_dl, "magni_risk", RISK_MINIMUM_MG_DL))


def _time_in_ranges(glucose: np.ndarray, percent: bool) -> dict:
    scale = 100.0 if percent else 1.0
    masks = {
        "below_54": glucose < VERY_LOW_MG_DL,
        "below_70": glucose < LOW_MG_DL,
        "in_70_180": (glucose >= LOW_MG_DL) & (glucose <= HIGH_MG_DL),
        "above_180": glucose > HIGH_MG_DL,
        "above_250": glucose > VERY_HIGH_MG_DL,
    }
    return {name: _mean_last(mask * scale) for name, mask in masks.items()}


def _sd(glucose: np.ndarray, metric: str):
    if glucose.shape[-1] < 2:
        raise InvalidInputError([Problem(f"glucose_mg_dl (for {metric})", None, glucose.shape, "at least two readings are needed")])
    return _as_output(glucose.std(axis=-1, ddof=1))


def _gri(glucose: np.ndarray):
    ranges = _time_in_ranges(glucose, percent=True)
    very_low = ranges["below_54"]
    low = ranges["below_70"] - very_low
    very_high = ranges["above_250"]
    high = ranges["above_180"] - very_high
    return _as_output(np.minimum(3.0 * very_low + 2.4 * low + 1.6 * very_high + 0.8 * high, 100.0))


def time_in_ranges(glucose_mg_dl, percent: bool = False) -> dict:
    """Fractions (or percentages) of readings in the consensus ranges.

    Returns
    -------
    dict
        ``below_54`` (G < 54), ``below_70`` (G < 70), ``in_70_180``
        (70 <= G <= 180), ``above_180`` (G > 180), ``above_250`` (G > 250),
        each a float for ``(m,)`` input or an ``(n,)`` array, in [0, 1] (or
        [0, 100] with ``percent=True``). ``below_70 + in_70_180 + above_180 = 1``.
    """
    return _time_in_ranges(validate_glucose(glucose_mg_dl, "time_in_ranges"), percent)


def mean_glucose(glucose_mg_dl):
    """Mean glucose [mg/dL] over the last axis."""
    return _mean_last(validate_glucose(glucose_mg_dl, "mean_glucose"))


def glucose_sd(glucose_mg_dl):
    """Sample standard deviation (ddof=1) of glucose [mg/dL]; needs at least two readings."""
    return _sd(validate_glucose(glucose_mg_dl, "glucose_sd"), "glucose_sd")


def glucose_cv(glucose_mg_dl):
    """Coefficient of variation ``SD / mean`` (a fraction; the consensus target is <= 0.36)."""
    glucose = validate_glucose(glucose_mg_dl, "glucose_cv")
    return _sd(glucose, "glucose_cv") / _mean_last(glucose)


def gmi(glucose_mg_dl):
    """Glucose management indicator [%]: ``3.31 + 0.02392 x mean glucose [mg/dL]``."""
    return 3.31 + 0.02392 * _mean_last(validate_glucose(glucose_mg_dl, "gmi"))


def gri(glucose_mg_dl):
    """Glycemia risk index (0-100): ``3.0 VLow + 2.4 Low + 1.6 VHigh + 0.8 High`` in percent, capped at 100.

    VLow = %<54, Low = %54-<70, VHigh = %>250, High = %>180-250 mg/dL.
    """
    return _gri(validate_glucose(glucose_mg_dl, "gri"))


def summary(glucose_mg_dl) -> dict:
    """All the outcome metrics of this module for one trace ``(m,)`` or a batch ``(n, m)``.

    Keys: ``mean_mg_dl``, ``sd_mg_dl``, ``cv``, ``gmi_percent``, ``lbgi``, ``hbgi``,
    ``risk_index``, ``magni_risk`` (mean), ``gri``, and the time-in-range
    fractions of :func:`time_in_ranges` prefixed ``time_``; needs at least two readings.
    """
    glucose = validate_glucose(glucose_mg_dl, "summary", RISK_MINIMUM_MG_DL)
    mean = _mean_last(glucose)
    sd = _sd(glucose, "summary")
    low, high = _low_high_risk(glucose)
    result = {
        "mean_mg_dl": mean,
        "sd_mg_dl": sd,
        "cv": sd / mean,
        "gmi_percent": 3.31 + 0.02392 * mean,
        "lbgi": _mean_last(low),
        "hbgi": _mean_last(high),
        "risk_index": _mean_last(low + high),
        "magni_risk": _mean_last(_magni_risk(glucose)),
        "gri": _gri(glucose),
    }
    result.update({f"time_{name}": value for name, value in _time_in_ranges(glucose, percent=False).items()})
    return result


#: Bergenstal 2018: GMI [mmol/mol] = 12.71 + 4.70587 x mean glucose [mmol/L].
GMI_MMOL_MOL_INTERCEPT = 12.71
GMI_MMOL_MOL_SLOPE = 4.70587
#: mg/dL per mmol/L of glucose (molar mass 180.156 g/mol), the project's conversion.
MG_DL_PER_MMOL_L = 18.01559
#: Klonoff 2022: GRI zones A-E, each 20 GRI units wide (upper bounds inclusive).
GRI_ZONES = ("A", "B", "C", "D", "E")


def gmi_mmol_mol(glucose_mg_dl):
    """Glucose management indicator in IFCC units [mmol/mol]: ``12.71 + 4.70587 x mean glucose [mmol/L]``.

    The mean in mg/dL is divided by :data:`MG_DL_PER_MMOL_L` (18.01559).
    """
    mean = _mean_last(validate_glucose(glucose_mg_dl, "gmi_mmol_mol"))
    return GMI_MMOL_MOL_INTERCEPT + GMI_MMOL_MOL_SLOPE * mean / MG_DL_PER_MMOL_L


def gri_zone(gri_value) -> str:
    """The GRI zone: "A" for 0 <= GRI <= 20, "B" for 20 < GRI <= 40, ... "E" for 80 < GRI <= 100."""
    value = float(gri_value)
    if not (np.isfinite(value) and 0.0 <= value <= 100.0):
        raise InvalidInputError([Problem("gri_value", None, value, "GRI must be in [0, 100]")])
    return GRI_ZONES[max(int(np.ceil(value / 20.0)) - 1, 0)]


def j_index(glucose_mg_dl):
    """J-index (Wojcicki 1995): ``0.001 (mean + SD)^2`` with glucose in mg/dL (SD with ddof=1)."""
    glucose = validate_glucose(glucose_mg_dl, "j_index")
    return 0.001 * (_mean_last(glucose) + _sd(glucose, "j_index")) ** 2


from pyloopkit.metrics.series import (adrr, cgm_active_percent, conga, grid_glucose, local_minutes,  # noqa: E402
                                      mage, modd)
from pyloopkit.metrics.consensus import cgm_summary  # noqa: E402
