"""Insulin action curves: the fraction of a dose's glucose-lowering effect still to come.

Two families, as in LoopKit / LoopAlgorithm:

* :class:`ExponentialInsulinModel`, the configurable exponential curve of
  Dragan Maksimovic (LoopKit ``ExponentialInsulinModel``) with presets for
  rapid-acting adult/child, Fiasp, Lyumjev and Afrezza (:data:`PRESETS`);
* :class:`WalshInsulinModel`, John Walsh's 4th-order polynomial IOB curves for
  3, 4, 5 and 6 hours (LoopKit ``WalshInsulinModel``).

Both models carry a ``delay`` *inside* the model, like current LoopKit and
LoopAlgorithm: the curve stays at 1 for ``delay_min`` minutes after the dose
starts, then runs for ``action_duration`` minutes; ``effect_duration_min`` is
their sum (6 h 10 min for the adult preset). Times are minutes since the start
of the dose; every function is vectorised over numpy arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import InvalidInputError, Problem
from .libm import exp

DEFAULT_DELAY_MIN = 10.0
"""LoopKit's default insulin delay (minutes)."""


def _positive(name: str, value: float, problems: list[Problem]) -> float:
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        problems.append(Problem(name, None, value, "must be a finite number > 0"))
    return v


def _delay(value: float, problems: list[Problem]) -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0:
        problems.append(Problem("delay_min", None, value, "must be a finite number >= 0"))
    return v


@dataclass(frozen=True)
class ExponentialInsulinModel:
    """LoopKit's exponential insulin curve.

    Parameters
    ----------
    action_duration_min : float
        Duration of insulin activity after the delay, minutes (``actionDuration``).
    peak_activity_min : float
        Time of peak activity after the delay, minutes; must be below half the action duration.
    delay_min : float
        Minutes after the dose start before any effect (LoopKit default 10).

    Notes
    -----
    With ``td`` the action duration and ``tp`` the peak time:
    ``tau = tp (1 - tp/td) / (1 - 2 tp/td)``, ``a = 2 tau / td``,
    ``S = 1 / (1 - a + (1 + a) exp(-td/tau))`` and, for ``0 < t < td`` minutes after the delay,
    ``remaining(t) = 1 - S (1 - a) ((t^2 / (tau td (1 - a)) - t/tau - 1) exp(-t/tau) + 1)``;
    1 before, 0 after (exactly, as in Swift). ``exp`` is :func:`pyloopkit.libm.exp` (the C library's,
    as in the compiled passes that evaluate the same curve).
    """

    action_duration_min: float
    peak_activity_min: float
    delay_min: float = DEFAULT_DELAY_MIN
    _tau: float = field(init=False, repr=False, compare=False)
    _a: float = field(init=False, repr=False, compare=False)
    _s: float = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        problems: list[Problem] = []
        td = _positive("action_duration_min", self.action_duration_min, problems)
        tp = _positive("peak_activity_min", self.peak_activity_min, problems)
        _delay(self.delay_min, problems)
        if not problems and tp >= td / 2.0:
            problems.append(Problem("peak_activity_min", None, self.peak_activity_min,
                                    f"must be below half the action duration ({td / 2.0:g} min)"))
        if problems:
            raise InvalidInputError(problems)
        tau = tp * (1.0 - tp / td) / (1.0 - 2.0 * tp / td)
        a = 2.0 * tau / td
        object.__setattr__(self, "_tau", tau)
        object.__setattr__(self, "_a", a)
        object.__setattr__(self, "_s", 1.0 / (1.0 - a + (1.0 + a) * float(exp(-td / tau))))

    @property
    def effect_duration_min(self) -> float:
        """Delay plus action duration, minutes: how long after its start a dose still acts."""
        return self.action_duration_min + self.delay_min

    def percent_effect_remaining(self, t_min) -> np.ndarray:
        """Fraction (0-1) of the effect still to come ``t_min`` minutes after the dose start (IOB fraction)."""
        t = np.asarray(t_min, dtype=float) - self.delay_min
        td, tau, a, s = self.action_duration_min, self._tau, self._a, self._s
        inside = (t > 0.0) & (t < td)
        ti = np.where(inside, t, 0.0)
        curve = 1.0 - s * (1.0 - a) * ((ti * ti / (tau * td * (1.0 - a)) - ti / tau - 1.0) * exp(-ti / tau) + 1.0)
        return np.where(inside, curve, np.where(t <= 0.0, 1.0, 0.0))

    def percent_activity(self, t_min) -> np.ndarray:
        """Activity, fraction of the dose absorbed per minute, ``t_min`` minutes after the dose start
        (the negative derivative of :meth:`percent_effect_remaining`): ``S/tau^2 t (1 - t/td) exp(-t/tau)``."""
        t = np.asarray(t_min, dtype=float) - self.delay_min
        td, tau, s = self.action_duration_min, self._tau, self._s
        inside = (t > 0.0) & (t < td)
        ti = np.where(inside, t, 0.0)
        return np.where(inside, s / (tau * tau) * ti * (1.0 - ti / td) * exp(-ti / tau), 0.0)


WALSH_COEFFICIENTS = {
    # nearest modelled duration (h): coefficients of minutes^4 .. minutes^0 (LoopKit / GlucoDyn fits)
    3: (-3.2030e-9, 1.354e-6, -1.759e-4, 9.255e-4, 0.99951),
    4: (-3.310e-10, 2.530e-7, -5.510e-5, -9.086e-4, 0.99950),
    5: (-2.950e-10, 2.320e-7, -5.550e-5, 4.490e-4, 0.99300),
    6: (-1.493e-10, 1.413e-7, -4.095e-5, 6.365e-4, 0.99700),
}


@dataclass(frozen=True)
class WalshInsulinModel:
    """John Walsh's IOB curves as fitted in GlucoDyn and used by LoopKit's ``WalshInsulinModel``.

    Parameters
    ----------
    action_duration_h : float
        Duration of insulin action (DIA) in hours, > 0.
    delay_min : float
        Minutes after the dose start before any effect (LoopKit default 10).

    Notes
    -----
    Polynomials exist only for 3, 4, 5 and 6 h. Like LoopKit, another DIA uses the curve of the
    nearest modelled duration -- ``round(DIA)`` (half away from zero) clamped to 3..6 h -- stretched
    in time to end at the requested DIA: ``minutes = t * nearest / DIA``. So a 2 h DIA is the 3 h
    curve compressed, 7 h the 6 h curve stretched (LoopKit's own tests use 2 to 7 h). Inside the
    action window the polynomial is returned unclipped (it starts at 0.9995, not 1), as in Swift.
    """

    action_duration_h: float
    delay_min: float = DEFAULT_DELAY_MIN

    def __post_init__(self):
        problems: list[Problem] = []
        _positive("action_duration_h", self.action_duration_h, problems)
        _delay(self.delay_min, problems)
        if problems:
            raise InvalidInputError(problems)

    @property
    def action_duration_min(self) -> float:
        return self.action_duration_h * 60.0

    @property
    def effect_duration_min(self) -> float:
        """Delay plus action duration, minutes."""
        return self.action_duration_min + self.delay_min

    @property
    def nearest_modeled_duration_h(self) -> int:
        """The modelled DIA (3-6 h) whose curve is used."""
        return int(min(6.0, max(3.0, np.floor(self.action_duration_h + 0.5))))

    def percent_effect_remaining(self, t_min) -> np.ndarray:
        """Fraction (0-1) of the effect still to come ``t_min`` minutes after the dose start."""
        t = np.asarray(t_min, dtype=float) - self.delay_min
        td = self.action_duration_min
        nearest = self.nearest_modeled_duration_h
        inside = (t > 0.0) & (t < td)
        minutes = np.where(inside, t, 0.0) * (nearest / self.action_duration_h)
        curve = np.polyval(WALSH_COEFFICIENTS[nearest], minutes)
        return np.where(inside, curve, np.where(t <= 0.0, 1.0, 0.0))

    def percent_activity(self, t_min) -> np.ndarray:
        """Fraction of the dose absorbed per minute (negative derivative of the remaining fraction)."""
        t = np.asarray(t_min, dtype=float) - self.delay_min
        td = self.action_duration_min
        nearest = self.nearest_modeled_duration_h
        scale = nearest / self.action_duration_h
        inside = (t > 0.0) & (t < td)
        minutes = np.where(inside, t, 0.0) * scale
        slope = np.polyval(np.polyder(WALSH_COEFFICIENTS[nearest]), minutes) * scale
        return np.where(inside, -slope, 0.0)


PRESETS: dict[str, ExponentialInsulinModel] = {
    "adult": ExponentialInsulinModel(360.0, 75.0, DEFAULT_DELAY_MIN),
    "child": ExponentialInsulinModel(360.0, 65.0, DEFAULT_DELAY_MIN),
    "fiasp": ExponentialInsulinModel(360.0, 55.0, DEFAULT_DELAY_MIN),
    "lyumjev": ExponentialInsulinModel(360.0, 55.0, DEFAULT_DELAY_MIN),
    "afrezza": ExponentialInsulinModel(300.0, 29.0, DEFAULT_DELAY_MIN),
}
"""LoopAlgorithm ``ExponentialInsulinModelPreset`` values (action duration, peak, delay in minutes)."""


def model_from_setting(model: Sequence[float], delay_min: float = DEFAULT_DELAY_MIN):
    """Insulin model from PyLoopKit's ``model`` setting.

    Parameters
    ----------
    model : sequence of float
        ``[DIA hours]`` for a Walsh curve, ``[action duration min, peak activity min]`` for an
        exponential curve (PyLoopKit's ``[360, 75]`` is the adult preset).
    delay_min : float
        Insulin delay in minutes (PyLoopKit setting ``insulin_delay``, default 10).
    """
    values = list(model) if model is not None else []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise InvalidInputError([Problem("model", i, v, "must be a finite number")])
    if len(values) == 1:
        return WalshInsulinModel(float(values[0]), delay_min)
    if len(values) == 2:
        return ExponentialInsulinModel(float(values[0]), float(values[1]), delay_min)
    raise InvalidInputError([Problem("model", None, model,
                                     "expected [DIA hours] (Walsh) or [action duration min, peak min] (exponential)")])
