"""The 30 UVA/Padova virtual patients shipped with simglucose, as a struct of arrays.

The parameters are read at run time from the installed ``simglucose`` package
(``params/vpatient_params.csv`` and ``params/Quest.csv``), located with
:func:`importlib.util.find_spec` rather than :mod:`importlib.resources`, which would
run simglucose's ``__init__`` (it imports the deprecated ``gym``); nothing of
simglucose is copied into this project.
A patient is named as in simglucose (``"adolescent#001"``, ``"adult#010"``,
``"child#005"``); the groups ``"child"``, ``"adolescent"``, ``"adult"`` and
``"all"`` select ten, ten, ten and thirty patients.
"""
from __future__ import annotations

import csv
import functools
import importlib.util
import io
from pathlib import Path
from dataclasses import dataclass, fields, replace

import numpy as np

from pyloopkit.errors import InvalidInputError, Problem

GROUPS = ("child", "adolescent", "adult")

#: Unit of every column of ``vpatient_params.csv`` used by the model (UVA/Padova 2008
#: notation as used by simglucose); per kg means per kg of body weight.
PARAMETER_UNITS = {
    "BW": "kg", "EGPb": "mg/kg/min", "Gb": "mg/dL", "Ib": "pmol/L",
    "kabs": "1/min", "kmax": "1/min", "kmin": "1/min", "b": "-", "d": "-",
    "Vg": "dL/kg", "Vi": "L/kg", "Ipb": "pmol/kg", "Vmx": "mg/kg/min per pmol/L",
    "Km0": "mg/kg", "k2": "1/min", "k1": "1/min", "p2u": "1/min", "m1": "1/min",
    "m5": "min*kg/pmol", "CL": "L/min", "HEb": "-", "m2": "1/min", "m4": "1/min",
    "m30": "1/min", "Ilb": "pmol/kg", "ki": "1/min", "kp2": "1/min",
    "kp3": "mg/kg/min per pmol/L", "f": "-", "Gpb": "mg/kg", "ke1": "1/min",
    "ke2": "mg/kg", "Fsnc": "mg/kg/min", "Gtb": "mg/kg", "Vm0": "mg/kg/min",
    "Rdb": "mg/kg/min", "PCRb": "1/min", "kd": "1/min", "ksc": "1/min",
    "ka1": "1/min", "ka2": "1/min", "dosekempt": "mg", "u2ss": "pmol/kg/min",
    "isc1ss": "pmol/kg", "isc2ss": "pmol/kg", "kp1": "mg/kg/min",
}


@dataclass(frozen=True)
class PatientParams:
    """Parameters of a batch of virtual patients, one array element per patient.

    Every column of simglucose's ``vpatient_params.csv`` is an ``(n,)`` float array
    under its CSV name (units in :data:`PARAMETER_UNITS`); ``x0`` is the ``(n, 13)``
    initial state (columns ``x0_ 1`` .. ``x0_13``); ``CR`` (g/U), ``CF`` (mg/dL/U),
    ``TDI`` (U/day) and ``age`` (years) come from ``Quest.csv``.
    """

    names: list[str]
    i: np.ndarray
    x0: np.ndarray
    BW: np.ndarray
    EGPb: np.ndarray
    Gb: np.ndarray
    Ib: np.ndarray
    kabs: np.ndarray
    kmax: np.ndarray
    kmin: np.ndarray
    b: np.ndarray
    d: np.ndarray
    Vg: np.ndarray
    Vi: np.ndarray
    Ipb: np.ndarray
    Vmx: np.ndarray
    Km0: np.ndarray
    k2: np.ndarray
    k1: np.ndarray
    p2u: np.ndarray
    m1: np.ndarray
    m5: np.ndarray
    CL: np.ndarray
    HEb: np.ndarray
    m2: np.ndarray
    m4: np.ndarray
    m30: np.ndarray
    Ilb: np.ndarray
    ki: np.ndarray
    kp2: np.ndarray
    kp3: np.ndarray
    f: np.ndarray
    Gpb: np.ndarray
    ke1: np.ndarray
    ke2: np.ndarray
    Fsnc: np.ndarray
    Gtb: np.ndarray
    Vm0: np.ndarray
    Rdb: np.ndarray
    PCRb: np.ndarray
    kd: np.ndarray
    ksc: np.ndarray
    ka1: np.ndarray
    ka2: np.ndarray
    dosekempt: np.ndarray
    u2ss: np.ndarray
    isc1ss: np.ndarray
    isc2ss: np.ndarray
    kp1: np.ndarray
    patient_history: np.ndarray
    CR: np.ndarray
    CF: np.ndarray
    TDI: np.ndarray
    age: np.ndarray

    @property
    def n(self) -> int:
        """Number of patients in the batch."""
        return len(self.names)

    @property
    def groups(self) -> list[str]:
        """Group of each patient (``"child"``, ``"adolescent"`` or ``"adult"``)."""
        return [name.split("#")[0] for name in self.names]

    @property
    def basal_u_per_min(self) -> np.ndarray:
        """Steady-state basal insulin rate ``u2ss * BW / 6000`` (U/min), shape (n,)."""
        return self.u2ss * self.BW / 6000.0

    def take(self, indices) -> "PatientParams":
        """The patients at ``indices`` (any integer index array, repeats allowed)."""
        idx = np.asarray(indices, dtype=np.intp)
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            values[field.name] = [value[k] for k in idx] if field.name == "names" else value[idx]
        return replace(self, **values)


def simglucose_params_file(name: str) -> str:
    """Text of ``simglucose/params/<name>`` from the installed simglucose (without importing it)."""
    spec = importlib.util.find_spec("simglucose")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pyloopkit.simulation needs simglucose for the patient, sensor and pump parameters: "
                          "pip install 'pyloopkit[sim]'")
    return (Path(list(spec.submodule_search_locations)[0]) / "params" / name).read_text()


@functools.lru_cache(maxsize=1)
def _all_patients() -> PatientParams:
    rows = list(csv.DictReader(io.StringIO(simglucose_params_file("vpatient_params.csv"))))
    quest = {row["Name"]: row for row in csv.DictReader(io.StringIO(simglucose_params_file("Quest.csv")))}
    names = [row["Name"] for row in rows]

    def column(key, table=None):
        return np.array([float((table[name] if table else row)[key]) for name, row in zip(names, rows)])

    values = {"names": names}
    x0_keys = [f"x0_{k:2d}" for k in range(1, 14)]
    values["x0"] = np.stack([column(key) for key in x0_keys], axis=1)
    for field in fields(PatientParams):
        if field.name in {"names", "x0"}:
            continue
        if field.name in {"CR", "CF", "TDI"}:
            values[field.name] = column(field.name, quest)
        elif field.name == "age":
            values[field.name] = column("Age", quest)
        else:
            values[field.name] = column(field.name)
    for value in values.values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return PatientParams(**values)


def patient_names(group: str = "all") -> list[str]:
    """Names of the patients of ``group`` (``"child"``, ``"adolescent"``, ``"adult"``, ``"all"``)."""
    names = _all_patients().names
    if group == "all":
        return list(names)
    if group not in GROUPS:
        raise InvalidInputError([Problem("group", None, group, f"must be one of {GROUPS + ('all',)}")])
    return [name for name in names if name.split("#")[0] == group]


def load_patients(spec: str | list[str]) -> PatientParams:
    """Load virtual patients by name or group.

    Parameters
    ----------
    spec : str or list of str
        A patient name (``"adult#001"``), a group (``"child"``, ``"adolescent"``,
        ``"adult"``, ``"all"``) or a list of names and groups, in the order wanted.

    Returns
    -------
    PatientParams
        One row per patient, in the order of ``spec`` (groups expand in
        simglucose's file order).
    """
    everyone = _all_patients()
    if not isinstance(spec, (str, list, tuple)):
        raise InvalidInputError([Problem("patients", None, spec, "expected a patient name, a group or a list of them")])
    items = [spec] if isinstance(spec, str) else list(spec)
    if not items:
        raise InvalidInputError([Problem("patients", None, spec, "no patient given")])
    position = {name: k for k, name in enumerate(everyone.names)}
    indices, problems = [], []
    for k, item in enumerate(items):
        if item == "all" or item in GROUPS:
            indices.extend(position[name] for name in patient_names(item))
        elif isinstance(item, str) and item in position:
            indices.append(position[item])
        else:
            problems.append(Problem("patients", k, item, "unknown patient name or group; expected e.g. "
                                    "'adult#001' or one of 'child', 'adolescent', 'adult', 'all'"))
    if problems:
        raise InvalidInputError(problems)
    return everyone.take(indices)
