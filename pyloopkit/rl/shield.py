"""Loop's guardrails on a proposed dose: max basal, max bolus, suspend threshold, pump rounding.

:class:`Shield` is applied to a batch of proposals (arrays over members):

1. a basal rate is clipped to ``[0, max_basal_u_per_h]`` and a bolus to ``[0, max_bolus_u]``;
2. when the predicted glucose (Loop's prediction, or a controller's own
   projection) falls below ``suspend_threshold_mg_dl`` anywhere, delivery is zero
   (rate and bolus), as Loop suspends;
3. the rate is floored to the pump's ``basal_increment_u_per_h`` and the bolus to
   ``bolus_increment_u`` (flooring can only lower a dose, so it never breaks 1 or 2).

Each rule reports whether it changed something, so that a caller can show
which guardrails were applied.

In simulation (the training env's ``shield`` option and the trial controller's)
there is no Loop prediction: :func:`projected_min_mg_dl` stands in for it, the
lower of the last CGM and its 30-minute linear projection.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem


@dataclass(frozen=True)
class Shield:
    """Guardrail limits (U/h, U, mg/dL).

    Attributes
    ----------
    max_basal_u_per_h : float
    max_bolus_u : float
        Limits; ``inf`` for none.
    suspend_threshold_mg_dl : float
    basal_increment_u_per_h, bolus_increment_u : float
        Pump resolution; 0 delivers any amount.
    """

    max_basal_u_per_h: float
    max_bolus_u: float = 0.0
    suspend_threshold_mg_dl: float = 70.0
    basal_increment_u_per_h: float = 0.05
    bolus_increment_u: float = 0.05

    def __post_init__(self):
        problems = [Problem(name, None, getattr(self, name), "must be >= 0 (inf: no limit)")
                    for name in ("max_basal_u_per_h", "max_bolus_u") if not getattr(self, name) >= 0]
        problems += [Problem(name, None, getattr(self, name), "must be finite and >= 0")
                     for name in ("suspend_threshold_mg_dl", "basal_increment_u_per_h", "bolus_increment_u")
                     if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0)]
        if problems:
            raise InvalidInputError(problems)

    def apply(self, basal_u_per_h, bolus_u, predicted_min_mg_dl) -> tuple[np.ndarray, np.ndarray, dict]:
        """Guarded ``(basal_u_per_h, bolus_u)`` and the rules that changed them.

        Parameters
        ----------
        basal_u_per_h, bolus_u : array_like (n,)
            Proposed rate (U/h) and bolus (U); must be finite.
        predicted_min_mg_dl : array_like (n,)
            Lowest predicted glucose (mg/dL) over the prediction horizon.

        Returns
        -------
        basal_u_per_h, bolus_u : ndarray (n,)
        applied : dict of ndarray (n,) bool
            ``max_basal``, ``max_bolus``, ``suspend``, ``rounding``.
        """
        basal = np.asarray(basal_u_per_h, dtype=np.float64)
        bolus = np.asarray(bolus_u, dtype=np.float64)
        predicted = np.asarray(predicted_min_mg_dl, dtype=np.float64)
        problems = [Problem(name, int(i), float(values.flat[i]), "must be finite")
                    for name, values in (("basal_u_per_h", basal), ("bolus_u", bolus),
                                         ("predicted_min_mg_dl", predicted))
                    for i in np.flatnonzero(~np.isfinite(values))[:10]]
        if problems:
            raise InvalidInputError(problems)
        clipped_basal = np.clip(basal, 0.0, self.max_basal_u_per_h)
        clipped_bolus = np.clip(bolus, 0.0, self.max_bolus_u)
        suspend = predicted < self.suspend_threshold_mg_dl
        guarded_basal = np.where(suspend, 0.0, clipped_basal)
        guarded_bolus = np.where(suspend, 0.0, clipped_bolus)
        rounded_basal = _floor_to(guarded_basal, self.basal_increment_u_per_h)
        rounded_bolus = _floor_to(guarded_bolus, self.bolus_increment_u)
        applied = {"max_basal": basal > self.max_basal_u_per_h, "max_bolus": bolus > self.max_bolus_u,
                   "suspend": suspend & ((clipped_basal > 0) | (clipped_bolus > 0)),
                   "rounding": (rounded_basal != guarded_basal) | (rounded_bolus != guarded_bolus)}
        return rounded_basal, rounded_bolus, applied


#: Horizon (min) of the CGM projection that stands in for Loop's prediction in simulation.
PROJECTION_MIN = 30.0
#: Max bolus (U) of :func:`default_shield` for a policy that boluses (Loop's default setting).
DEFAULT_MAX_BOLUS_U = 10.0


def projected_min_mg_dl(cgm_window: np.ndarray, interval_min: float) -> np.ndarray:
    """The lower of the last CGM (mg/dL) and its :data:`PROJECTION_MIN` linear projection, from the CGM at
    the last two decisions ``(n, 2)`` taken ``interval_min`` apart."""
    cgm = cgm_window[:, -1]
    trend = (cgm - cgm_window[:, 0]) / interval_min
    return np.minimum(cgm, cgm + trend * PROJECTION_MIN)


def default_shield(max_basal_u_per_h: float, boluses: bool) -> Shield:
    """The simulation shield: max basal ``max_basal_u_per_h``, max bolus :data:`DEFAULT_MAX_BOLUS_U` if the
    policy ``boluses`` (else 0), suspend below 70 mg/dL, Insulet's 0.05 U/h and 0.05 U increments."""
    return Shield(max_basal_u_per_h=float(max_basal_u_per_h), max_bolus_u=DEFAULT_MAX_BOLUS_U if boluses else 0.0)


def _floor_to(values: np.ndarray, increment: float) -> np.ndarray:
    """``values`` floored to a multiple of ``increment`` (a tolerance of 1e-9 increments absorbs
    binary representation error, e.g. 0.3 / 0.05, and the result never exceeds the value:
    0.3 stays 0.3, not 6 * 0.05 = 0.30000000000000004); ``increment`` 0 returns them unchanged."""
    if increment <= 0:
        return values
    return np.minimum(np.floor(values / increment + 1e-9) * increment, values)
