"""UVA/Padova T1D model (simglucose 0.2.11 semantics): right-hand side and integrators.

The 13 states, as in simglucose's ``T1DPatient``:

===  ============================================  ========
 0   solid glucose in the stomach, Qsto1             mg
 1   liquid glucose in the stomach, Qsto2            mg
 2   glucose in the intestine, Qgut                  mg
 3   plasma glucose mass, Gp                         mg/kg
 4   tissue glucose mass, Gt                         mg/kg
 5   plasma insulin mass, Ip                         pmol/kg
 6   remote insulin action on utilisation, X         pmol/L
 7   delayed insulin signal, I1                      pmol/L
 8   delayed insulin action on production, Id        pmol/L
 9   liver insulin mass, Il                          pmol/kg
10   subcutaneous insulin, compartment 1, Isc1       pmol/kg
11   subcutaneous insulin, compartment 2, Isc2       pmol/kg
12   subcutaneous glucose mass, Gs                   mg/kg
===  ============================================  ========

BG (what simglucose calls BG and the CGM measures) is ``Gs / Vg`` and plasma
glucose is ``Gp / Vg`` (mg/dL). Inputs are given per minute, exactly like
simglucose's ``Action(CHO, insulin)``: ``CHO`` in g/min (an announced amount that
the patient eats at most ``EAT_RATE_G_PER_MIN`` = 5 g/min, the rest queued) and
``insulin`` in U/min, both held constant over the minute. The meal-size ``Dbar``
of the gastric-emptying rate is simglucose's bookkeeping: the stomach content
when eating starts plus every gram eaten since (in mg).

The two ``tanh`` of the gastric-emptying rate are evaluated as ``1 - 2 / (1 + exp(2 z))``
(the same value to ~1e-16, twice as fast). One source of truth: the right-hand side and
the per-minute update are written with element-wise operations only, so the same function runs on one patient's
scalars inside the numba kernels (which loop over patients and minutes) and on
whole ``(13, n)`` batches in the pure-numpy path (which loops over minutes).
"""
from __future__ import annotations

import types
import warnings
from dataclasses import dataclass

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem
from pyloopkit.simulation.patients import PatientParams

try:
    import numba

    HAVE_NUMBA = True
    jit = numba.njit(cache=True, error_model="numpy")
    #: For the small helpers of the kernels: inlined at numba-IR level (a call costs as much as the RHS).
    inline_jit = numba.njit(cache=True, error_model="numpy", inline="always")
except ImportError:  # pragma: no cover - exercised only without the `sim` extra
    HAVE_NUMBA = False

    def jit(function):
        return function

    inline_jit = jit


N_STATES = 13
EAT_RATE_G_PER_MIN = 5.0
#: Patient parameters the model uses, in the column order of the kernels' parameter matrix.
MODEL_PARAMS = ("BW", "kabs", "kmax", "kmin", "b", "d", "Vg", "Vi", "Vmx", "Km0", "k2", "k1", "p2u",
                "m1", "m2", "m4", "m30", "Ib", "ki", "kp1", "kp2", "kp3", "f", "ke1", "ke2", "Fsnc",
                "Vm0", "kd", "ksc", "ka1", "ka2")
(_BW, _KABS, _KMAX, _KMIN, _B, _D, _VG, _VI, _VMX, _KM0, _K2, _K1, _P2U, _M1, _M2, _M4, _M30, _IB,
 _KI, _KP1, _KP2, _KP3, _F, _KE1, _KE2, _FSNC, _VM0, _KD, _KSC, _KA1, _KA2) = range(len(MODEL_PARAMS))
#: Meal bookkeeping per patient: planned (queued) CHO g, CHO eaten in the last minute g/min,
#: eating flag (0/1), stomach content when eating started mg, CHO eaten since then g.
N_MEAL_STATE = 5
_PLANNED, _LAST_EAT, _EATING, _LAST_QSTO, _FOODTAKEN = range(N_MEAL_STATE)


def param_matrix(patients: PatientParams) -> np.ndarray:
    """Model parameters as a C-contiguous ``(n, len(MODEL_PARAMS))`` float64 matrix."""
    return np.ascontiguousarray(np.stack([getattr(patients, key) for key in MODEL_PARAMS], axis=1),
                                dtype=np.float64)


def initial_meal_state(x0: np.ndarray) -> np.ndarray:
    """Meal bookkeeping at reset for initial states ``x0`` (n, 13): nothing queued, not eating."""
    meal = np.zeros((x0.shape[0], N_MEAL_STATE))
    meal[:, _LAST_QSTO] = x0[:, 0] + x0[:, 1]
    return meal


@inline_jit
def _tanh(z):
    """tanh as ``1 - 2 / (1 + exp(2 z))`` (exp is twice as fast as tanh; same value to ~1e-16 absolute)."""
    return 1.0 - 2.0 / (1.0 + np.exp(np.minimum(2.0 * z, 700.0)))


@inline_jit
def _rhs(x, p, cho_mg_per_min, insulin_pmol_per_kg_min, dbar_mg, out):
    """dx/dt of the UVA/Padova model (per minute) into ``out``; element-wise in every argument."""
    kmax = p[_KMAX]
    kmin = p[_KMIN]
    b = p[_B]
    d = p[_D]
    qsto = x[0] + x[1]
    has_meal = 1.0 * (dbar_mg > 0)
    dbar = dbar_mg + (1.0 - has_meal)
    aa = 5.0 / (2.0 * dbar * (1.0 - b))
    cc = 5.0 / (2.0 * dbar * d)
    kgut_meal = kmin + (kmax - kmin) / 2.0 * (_tanh(aa * (qsto - b * dbar)) - _tanh(cc * (qsto - d * dbar)) + 2.0)
    kgut = has_meal * kgut_meal + (1.0 - has_meal) * kmax
    out[0] = -kmax * x[0] + cho_mg_per_min
    out[1] = kmax * x[0] - x[1] * kgut
    out[2] = kgut * x[1] - p[_KABS] * x[2]
    rate_of_appearance = p[_F] * p[_KABS] * x[2] / p[_BW]
    production = p[_KP1] - p[_KP2] * x[3] - p[_KP3] * x[8]
    renal = p[_KE1] * np.maximum(x[3] - p[_KE2], 0.0)
    out[3] = (1.0 * (x[3] >= 0)) * (np.maximum(production, 0.0) + rate_of_appearance - p[_FSNC] - renal
                                    - p[_K1] * x[3] + p[_K2] * x[4])
    utilisation = (p[_VM0] + p[_VMX] * x[6]) * x[4] / (p[_KM0] + x[4])
    out[4] = (1.0 * (x[4] >= 0)) * (-utilisation + p[_K1] * x[3] - p[_K2] * x[4])
    out[5] = (1.0 * (x[5] >= 0)) * (-(p[_M2] + p[_M4]) * x[5] + p[_M1] * x[9] + p[_KA1] * x[10]
                                    + p[_KA2] * x[11])
    plasma_insulin = x[5] / p[_VI]
    out[6] = -p[_P2U] * x[6] + p[_P2U] * (plasma_insulin - p[_IB])
    out[7] = -p[_KI] * (x[7] - plasma_insulin)
    out[8] = -p[_KI] * (x[8] - x[7])
    out[9] = (1.0 * (x[9] >= 0)) * (-(p[_M1] + p[_M30]) * x[9] + p[_M2] * x[5])
    out[10] = (1.0 * (x[10] >= 0)) * (insulin_pmol_per_kg_min - (p[_KA1] + p[_KD]) * x[10])
    out[11] = (1.0 * (x[11] >= 0)) * (p[_KD] * x[10] - p[_KA2] * x[11])
    out[12] = (1.0 * (x[12] >= 0)) * (-p[_KSC] * x[12] + p[_KSC] * x[3])


@inline_jit
def _rk4_step(x, p, cho_mg_per_min, insulin_pmol_per_kg_min, dbar_mg, h, work):
    """Advance ``x`` in place by one classical RK4 step of ``h`` minutes; ``work`` is (5, 13, ...)."""
    k1, k2, k3, k4, tmp = work[0], work[1], work[2], work[3], work[4]
    _rhs(x, p, cho_mg_per_min, insulin_pmol_per_kg_min, dbar_mg, k1)
    for k in range(N_STATES):
        tmp[k] = x[k] + 0.5 * h * k1[k]
    _rhs(tmp, p, cho_mg_per_min, insulin_pmol_per_kg_min, dbar_mg, k2)
    for k in range(N_STATES):
        tmp[k] = x[k] + 0.5 * h * k2[k]
    _rhs(tmp, p, cho_mg_per_min, insulin_pmol_per_kg_min, dbar_mg, k3)
    for k in range(N_STATES):
        tmp[k] = x[k] + h * k3[k]
    _rhs(tmp, p, cho_mg_per_min, insulin_pmol_per_kg_min, dbar_mg, k4)
    for k in range(N_STATES):
        # Every state is a mass or a concentration: a step that overshoots below 0 (extreme insulin, which the
        # model's own (x >= 0) gates cannot stop within one RK4 step) ends at 0, so glucose stays physical.
        x[k] = np.maximum(x[k] + h / 6.0 * (k1[k] + 2.0 * k2[k] + 2.0 * k3[k] + k4[k]), 0.0)


@inline_jit
def _eat(x, meal, cho_g_per_min):
    """simglucose's per-minute meal bookkeeping; returns (CHO eaten this minute g/min, Dbar mg)."""
    planned = meal[_PLANNED] + cho_g_per_min
    eaten = np.minimum(EAT_RATE_G_PER_MIN, planned) * (1.0 * (planned > 0))
    meal[_PLANNED] = np.maximum(planned - eaten, 0.0)
    starts = (1.0 * (eaten > 0)) * (1.0 * (meal[_LAST_EAT] <= 0))
    stops = (1.0 * (eaten <= 0)) * (1.0 * (meal[_LAST_EAT] > 0))
    meal[_LAST_QSTO] = starts * (x[0] + x[1]) + (1.0 - starts) * meal[_LAST_QSTO]
    eating = np.maximum(meal[_EATING], starts)
    meal[_FOODTAKEN] = (1.0 - starts) * meal[_FOODTAKEN] + eating * eaten
    meal[_EATING] = eating * (1.0 - stops)
    meal[_LAST_EAT] = eaten
    return eaten, meal[_LAST_QSTO] + meal[_FOODTAKEN] * 1000.0


@inline_jit
def _minute(x, p, meal, cho_g_per_min, insulin_u_per_min, n_sub, work):
    """Advance one minute (``n_sub`` RK4 steps) with inputs held constant; returns CHO eaten (g)."""
    eaten, dbar = _eat(x, meal, cho_g_per_min)
    insulin_pmol = insulin_u_per_min * 6000.0 / p[_BW]
    h = 1.0 / n_sub
    for _ in range(n_sub):
        _rk4_step(x, p, eaten * 1000.0, insulin_pmol, dbar, h, work)
    return eaten


def _pure_python(*functions):
    """Pure-Python versions of jitted ``functions`` that call each other, not the compiled ones.

    The numpy path runs the very same source on ``(13, n)`` batch arrays; this
    rebinds the functions' globals so that nested calls stay in Python.
    """
    namespace = dict(globals())
    for function in functions:
        source = getattr(function, "py_func", function)
        namespace[source.__name__] = types.FunctionType(source.__code__, namespace, source.__name__)
    return types.SimpleNamespace(**{f.__name__: namespace[f.__name__] for f in functions})


numpy_model = _pure_python(_tanh, _rhs, _rk4_step, _eat, _minute)


# The open-loop kernels write Gp and Gs of every minute into ``glucose`` (n, m + 1, 2) and the
# states into ``states[:, minute * record]``: every minute (record=1) or only the last (record=0).

@jit
def _open_loop_kernel(x0, params, meal0, cho, insulin, n_sub, record, states, glucose):
    n, m = cho.shape
    work = np.empty((5, N_STATES))
    for i in range(n):
        x = x0[i].copy()
        meal = meal0[i].copy()
        states[i, 0, :] = x
        glucose[i, 0, 0], glucose[i, 0, 1] = x[3], x[12]
        for j in range(m):
            _minute(x, params[i], meal, cho[i, j], insulin[i, j], n_sub, work)
            states[i, (j + 1) * record, :] = x
            glucose[i, j + 1, 0], glucose[i, j + 1, 1] = x[3], x[12]


def _open_loop_numpy(x0, params, meal0, cho, insulin, n_sub, record, states, glucose):
    n, m = cho.shape
    x = x0.T.copy()
    meal = meal0.T.copy()
    p = params.T
    work = np.empty((5, N_STATES, n))
    states[:, 0, :] = x.T
    glucose[:, 0, 0], glucose[:, 0, 1] = x[3], x[12]
    for j in range(m):
        numpy_model._minute(x, p, meal, cho[:, j], insulin[:, j], n_sub, work)
        states[:, (j + 1) * record, :] = x.T
        glucose[:, j + 1, 0], glucose[:, j + 1, 1] = x[3], x[12]


def _open_loop_solve_ivp(x0, params, meal0, cho, insulin, n_sub, record, states, glucose):
    """Reference: scipy's DOP853 (rtol 1e-10, atol 1e-8) minute by minute, same bookkeeping."""
    from scipy.integrate import solve_ivp

    n, m = cho.shape
    x = x0.T.copy()
    meal = meal0.T.copy()
    p = params.T
    states[:, 0, :] = x.T
    glucose[:, 0, 0], glucose[:, 0, 1] = x[3], x[12]
    derivative = np.empty((N_STATES, n))
    for j in range(m):
        eaten, dbar = numpy_model._eat(x, meal, cho[:, j])
        insulin_pmol = insulin[:, j] * 6000.0 / p[_BW]

        def rhs(_t, y):
            numpy_model._rhs(y.reshape(N_STATES, n), p, eaten * 1000.0, insulin_pmol, dbar, derivative)
            return derivative.ravel().copy()

        solution = solve_ivp(rhs, (0.0, 1.0), x.ravel(), method="DOP853", rtol=1e-10, atol=1e-8)
        x = solution.y[:, -1].reshape(N_STATES, n).copy()
        states[:, (j + 1) * record, :] = x.T
        glucose[:, j + 1, 0], glucose[:, j + 1, 1] = x[3], x[12]


@dataclass
class OpenLoopResult:
    """Trajectories of :func:`simulate_open_loop`.

    Attributes
    ----------
    patients : PatientParams
    time_min : ndarray (m + 1,)
        Minutes since the start.
    states : ndarray (n, m + 1, 13), or (n, 1, 13)
        Model states at each minute (units in the module docstring); only the final
        state when simulated with ``record_states=False``.
    bg : ndarray (n, m + 1)
        Subcutaneous glucose ``Gs / Vg`` (mg/dL), simglucose's BG.
    plasma_glucose : ndarray (n, m + 1)
        ``Gp / Vg`` (mg/dL).
    """

    patients: PatientParams
    time_min: np.ndarray
    states: np.ndarray
    bg: np.ndarray
    plasma_glucose: np.ndarray

    def to_dataframe(self):
        """Long-format ``pandas.DataFrame``: patient, time_min, bg, plasma_glucose (mg/dL)."""
        import pandas as pd

        n, width = self.bg.shape
        return pd.DataFrame({
            "patient": np.repeat(np.asarray(self.patients.names, dtype=object), width),
            "time_min": np.tile(self.time_min, n),
            "bg": self.bg.ravel(),
            "plasma_glucose": self.plasma_glucose.ravel(),
        })


def _rate_problems(name: str, values: np.ndarray) -> list[Problem]:
    bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0)))
    return [Problem(name, int(k), float(values.flat[k]),
                    f"(patient {k // values.shape[1]}, minute {k % values.shape[1]}) must be finite and >= 0")
            for k in bad[:10]]


def substeps_per_minute(dt_min: float) -> int:
    """Number of RK4 steps per minute for a step of ``dt_min`` minutes (1/dt must be an integer)."""
    n_sub = int(round(1.0 / dt_min)) if dt_min > 0 else 0
    if n_sub < 1 or abs(n_sub * dt_min - 1.0) > 1e-12:
        raise InvalidInputError([Problem("dt_min", None, dt_min, "must be 1/k minutes for an integer k >= 1")])
    return n_sub


def simulate_open_loop(patients, carbs_g_per_min, insulin_u_per_min, dt_min: float = 1.0,
                       method: str = "rk4", record_states: bool = True) -> OpenLoopResult:
    """Simulate patients under given per-minute CHO and insulin inputs.

    Parameters
    ----------
    patients : PatientParams, str or list of str
        Patients (see :func:`~pyloopkit.simulation.patients.load_patients`).
    carbs_g_per_min : array (n, m)
        CHO announced to the patient in each minute (g/min), like simglucose's
        ``Action.CHO``: eaten at up to 5 g/min, any excess queued for the next minutes.
    insulin_u_per_min : array (n, m)
        Insulin delivery rate in each minute (U/min), like ``Action.insulin``.
    dt_min : float
        RK4 step (minutes): 1.0 or 1/k (0.5 selectable). Ignored by ``"solve_ivp"``.
    method : {"rk4", "numpy", "solve_ivp"}
        ``"rk4"``: compiled numba kernel (numpy path when numba is missing);
        ``"numpy"``: the same RK4 vectorised over the batch in numpy;
        ``"solve_ivp"``: adaptive DOP853 reference, minute by minute.
    record_states : bool
        Keep all 13 states of every minute (memory 13 x 8 bytes per patient-minute);
        ``False`` keeps only the final state (BG and plasma glucose are always kept).

    Returns
    -------
    OpenLoopResult
        With ``bg`` and ``plasma_glucose`` of shape (n, m + 1), starting at the
        patients' initial states.
    """
    from pyloopkit.simulation.patients import load_patients

    if not isinstance(patients, PatientParams):
        patients = load_patients(patients)
    cho = np.ascontiguousarray(carbs_g_per_min, dtype=np.float64)
    insulin = np.ascontiguousarray(insulin_u_per_min, dtype=np.float64)
    problems = []
    for name, values in (("carbs_g_per_min", cho), ("insulin_u_per_min", insulin)):
        if values.ndim != 2 or values.shape[0] != patients.n:
            problems.append(Problem(name, None, values.shape, f"must have shape (n_patients={patients.n}, n_minutes)"))
    if not problems and cho.shape != insulin.shape:
        problems.append(Problem("insulin_u_per_min", None, insulin.shape, f"must match carbs shape {cho.shape}"))
    if not problems:
        problems += _rate_problems("carbs_g_per_min", cho) + _rate_problems("insulin_u_per_min", insulin)
    kernels = {"rk4": _open_loop_kernel if HAVE_NUMBA else _open_loop_numpy, "numpy": _open_loop_numpy,
               "solve_ivp": _open_loop_solve_ivp}
    if method not in kernels:
        problems.append(Problem("method", None, method, f"must be one of {sorted(kernels)}"))
    if problems:
        raise InvalidInputError(problems)
    n_sub = substeps_per_minute(dt_min)
    if method == "rk4" and not HAVE_NUMBA:
        warnings.warn("numba is not installed (extra `sim`): using the slower numpy path", RuntimeWarning,
                      stacklevel=2)
    n, m = cho.shape
    x0 = np.ascontiguousarray(patients.x0, dtype=np.float64)
    states = np.empty((n, m + 1 if record_states else 1, N_STATES))
    glucose = np.empty((n, m + 1, 2))
    kernels[method](x0, param_matrix(patients), initial_meal_state(x0), cho, insulin, n_sub, int(record_states),
                    states, glucose)
    vg = patients.Vg[:, None]
    return OpenLoopResult(patients=patients, time_min=np.arange(m + 1, dtype=np.float64), states=states,
                          bg=glucose[:, :, 1] / vg, plasma_glucose=glucose[:, :, 0] / vg)
