"""The population protocol: controllers x patients x seeds, run in chunks on one of three backends.

:func:`run_population_trial` runs every controller on every (patient, seed) episode for
``days`` days and returns a tidy table, one row per controller x patient x seed. An
episode terminates early when the true BG leaves ``[low, high]`` (10-1000 mg/dL by
default); its metrics are those of the 5-minute BG readings before that, and
``fraction_completed`` is the simulated time until then over the episode length.

Work is split into independent chunks (one controller, all patients, a group of seeds),
each a :class:`~pyloopkit.simulation.Simulator` batch whose members are given their
episode numbers explicitly, so a member's meals, sensor noise and conditions depend only
on (trial seed, patient, seed) and every backend gives the same table bit for bit:
``"local"`` (in this process), ``"processes"`` (``workers`` local processes) or ``"ray"``
(a Ray cluster at ``address``; extra ``cluster``).

Controllers are names (:data:`CONTROLLERS`: ``bb``, ``bb-cd``, ``pid``, ``pid-if``,
``loop``) or ``{name: factory}`` with ``factory(simulator)`` (the chunk's
:class:`~pyloopkit.simulation.Simulator`; its batch is ``simulator.patients``) returning any
object with ``act(step) -> (basal_u_per_h, bolus_u)`` (and optionally ``reset()``); with
the processes and Ray backends a factory must be picklable (a module-level function or class).
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np

from pyloopkit import metrics
from pyloopkit.errors import InvalidInputError, Problem

DEFAULT_BOUNDS_MG_DL = (10.0, 1000.0)
BACKENDS = ("local", "processes", "ray")
METRIC_COLUMNS = {  # column -> (metrics.summary key, scale)
    "pct_below_54": ("time_below_54", 100.0), "pct_below_70": ("time_below_70", 100.0),
    "pct_in_70_180": ("time_in_70_180", 100.0), "pct_above_180": ("time_above_180", 100.0),
    "pct_above_250": ("time_above_250", 100.0), "mean_mg_dl": ("mean_mg_dl", 1.0), "cv": ("cv", 1.0),
    "gmi_percent": ("gmi_percent", 1.0), "lbgi": ("lbgi", 1.0), "hbgi": ("hbgi", 1.0),
    "risk_index": ("risk_index", 1.0), "gri": ("gri", 1.0),
}
COLUMNS = ("controller", "patient", "group", "seed", "fraction_completed", "terminated") + tuple(METRIC_COLUMNS)


def _bb(simulator):
    from pyloopkit.control.basal_bolus import BasalBolusController
    return BasalBolusController(simulator.patients)


def _bb_cd(simulator):
    from pyloopkit.control.basal_bolus import CooldownBasalBolusController
    return CooldownBasalBolusController(simulator.patients)


def _pid(simulator):
    from pyloopkit.control.pid import PIDController
    return PIDController(simulator.patients)


def _pid_if(simulator):
    from pyloopkit.control.pid import PIDIFController
    return PIDIFController(simulator.patients)


def _loop(simulator):
    from pyloopkit.control.loop_controller import LoopController
    return LoopController.for_simulator(simulator)


def _loop_ab(simulator):
    from pyloopkit.control.loop_controller import LoopController
    return LoopController.for_simulator(simulator, dosing_strategy="automatic_bolus")


CONTROLLERS = {"bb": _bb, "bb-cd": _bb_cd, "pid": _pid, "pid-if": _pid_if, "loop": _loop, "loop-ab": _loop_ab}
"""Controller names and their factories ``factory(simulator) -> controller`` with default settings
(Loop: :meth:`LoopController.for_simulator`, its defaults with the simulator's sensor and pump;
``loop`` doses by temp basal, ``loop-ab`` by Loop 3's automatic bolus)."""


@dataclass(frozen=True)
class Chunk:
    """One unit of work: a controller on ``patients`` x ``seeds`` (a :class:`Simulator` batch)."""

    controller: str
    factory: object
    patients: tuple[str, ...]
    seeds: tuple[int, ...]
    days: float
    options: dict = field(default_factory=dict)

    @property
    def patient_days(self) -> float:
        return len(self.patients) * len(self.seeds) * self.days


def run_episodes(simulator, controller, steps: int, step_minutes: int = 5, conditions=None,
                 bounds_mg_dl=DEFAULT_BOUNDS_MG_DL, seed: int | None = None) -> dict:
    """Run ``steps`` decisions of closed loop with early termination.

    Parameters
    ----------
    simulator : Simulator
        The batch (n members); it is reset with ``seed`` (``None``: the constructor's or the next episodes).
    controller : object
        ``act(step) -> (basal_u_per_h, bolus_u)``; ``reset()`` is called first if it has one.
    steps, step_minutes : int
        Number of decisions and minutes between them.
    conditions : ConditionState or None
        Applied to what the controller sees and to its boluses (:mod:`pyloopkit.simulation.conditions`).
    bounds_mg_dl : (float, float)
        A member terminates at the first reading with BG outside ``[low, high]`` (or not finite);
        from then on it gets its steady-state basal and the controller sees its last reading.

    Returns
    -------
    dict
        ``bg`` (n, steps + 1) mg/dL at the decisions (the first at the reset); ``readings`` (n,):
        readings before termination (``steps + 1`` if none); ``fraction_completed`` (n,).
    """
    low, high = bounds_mg_dl
    n = simulator.n
    bg = np.empty((n, steps + 1))
    readings = np.full(n, steps + 1)
    alive = np.ones(n, dtype=bool)
    fallback_basal = simulator.patients.basal_u_per_min * 60.0
    step = simulator.reset(seed)
    if hasattr(controller, "reset"):
        controller.reset()
    bg[:, 0] = step.bg
    last_cgm = step.cgm.copy()
    with np.errstate(all="ignore"):
        for k in range(steps):
            if conditions is not None:
                scale = conditions.insulin_sensitivity(k)
                if scale is not None:
                    simulator.set_insulin_sensitivity(scale)
            seen = step if conditions is None else conditions.view(step, k)
            if not alive.all():
                seen = _with_cgm(seen, np.where(alive, seen.cgm, last_cgm))
            last_cgm = seen.cgm
            basal, bolus = controller.act(seen)
            if conditions is not None:
                bolus = conditions.bolus(bolus, seen, k)
            basal = np.where(alive, basal, fallback_basal)
            bolus = np.where(alive, bolus, 0.0)
            step = simulator.step(basal, bolus, minutes=step_minutes)
            bg[:, k + 1] = step.bg
            out = alive & ~((step.bg >= low) & (step.bg <= high))
            readings[out] = k + 1
            alive &= ~out
    return {"bg": bg, "readings": readings, "fraction_completed": np.minimum(readings, steps) / steps}


def _with_cgm(step, cgm):
    return dataclasses.replace(step, cgm=cgm)


def episode_metrics(bg: np.ndarray, readings: np.ndarray) -> dict:
    """:data:`METRIC_COLUMNS` of each row's first ``readings[i]`` values, as (n,) arrays (NaN below 2 readings).

    Rows are summarised one by one, so a member's numbers do not depend on the batch it ran in.
    """
    out = {name: np.full(bg.shape[0], np.nan) for name in METRIC_COLUMNS}
    for i, count in enumerate(readings):
        if count < 2:
            continue
        summary = metrics.summary(np.ascontiguousarray(bg[i, :count]))
        for name, (key, scale) in METRIC_COLUMNS.items():
            out[name][i] = summary[key] * scale
    return out


def run_chunk(chunk: Chunk) -> list[dict]:
    """Rows of the table for one chunk (see :func:`run_population_trial` for ``chunk.options``)."""
    from pyloopkit.simulation import Simulator, load_patients

    o = chunk.options
    names = [name for _ in chunk.seeds for name in chunk.patients]
    episodes = np.array([s for s in chunk.seeds for _ in chunk.patients], dtype=np.int64)
    simulator = Simulator(load_patients(names), sensor=o.get("sensor", "Dexcom"), pump=o.get("pump", "Insulet"),
                          scenario=o.get("scenario", "random"), seed=o.get("seed", 0), episodes=episodes)
    step_minutes = o.get("step_minutes", 5)
    steps = int(round(chunk.days * 1440 / step_minutes))
    conditions = o.get("conditions")
    state = (conditions.start(names, episodes, o.get("seed", 0), steps, step_minutes)
             if conditions is not None else None)
    controller = chunk.factory(simulator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = run_episodes(simulator, controller, steps, step_minutes, state,
                              o.get("bounds_mg_dl", DEFAULT_BOUNDS_MG_DL), seed=o.get("seed", 0))
    table = episode_metrics(result["bg"], result["readings"])
    groups = simulator.patients.groups
    return [{"controller": chunk.controller, "patient": names[i], "group": groups[i], "seed": int(episodes[i]),
             "fraction_completed": float(result["fraction_completed"][i]),
             "terminated": bool(result["readings"][i] <= steps),
             **{name: float(values[i]) for name, values in table.items()}} for i in range(len(names))]


def _controller_factories(controllers) -> dict:
    if isinstance(controllers, str):
        controllers = [c.strip() for c in controllers.split(",") if c.strip()]
    if isinstance(controllers, dict):
        return dict(controllers)
    unknown = [Problem("controllers", i, c, f"must be one of {sorted(CONTROLLERS)}")
               for i, c in enumerate(controllers) if c not in CONTROLLERS]
    if unknown:
        raise InvalidInputError(unknown)
    return {c: CONTROLLERS[c] for c in controllers}


def make_chunks(controllers, patients, seeds, days, chunk_seeds: int, options: dict) -> list[Chunk]:
    """The chunks of a trial: for each controller, all patients x ``chunk_seeds`` seeds at a time."""
    return [Chunk(name, factory, tuple(patients), tuple(seeds[i:i + chunk_seeds]), days, options)
            for name, factory in controllers.items() for i in range(0, len(seeds), chunk_seeds)]


def run_population_trial(controllers, patients="all", seeds=20, days: float = 10, *, seed: int = 0,
                         conditions=None, bounds_mg_dl=DEFAULT_BOUNDS_MG_DL, backend: str = "local",
                         workers: int | None = None, address: str | None = None, chunk_seeds: int | None = None,
                         sensor="Dexcom", pump="Insulet", scenario="random", step_minutes: int = 5,
                         progress: bool = True):
    """Run the protocol and return the tidy table (pandas DataFrame, columns :data:`COLUMNS`).

    Parameters
    ----------
    controllers : str, list of str or dict
        ``"bb,pid"``, ``["bb", "pid"]`` (:data:`CONTROLLERS`) or ``{name: factory(simulator)}``.
    patients : str or list of str
        Patients or groups (``"all"``, ``"child"``, ``"adolescent#003"``, ...), as a list or one
        comma-separated string (``"child#001,adult#002"``).
    seeds : int or list of int
        Episode seeds: ``k`` for ``range(k)``, or the seeds themselves (integers >= 0).
    days : float
        Episode length (days), a whole number of decision steps.
    seed : int
        Trial seed: with (patient, episode seed) it fixes meals, sensor noise and conditions.
    conditions : Conditions or None
        Scenario conditions (:class:`pyloopkit.simulation.conditions.Conditions`).
    bounds_mg_dl : (float, float)
        Early termination below / above these BG values (mg/dL).
    backend : "local", "processes" or "ray"
    workers : int or None
        Local processes (``processes``; default: CPU count).
    address : str or None
        Ray cluster address (``ray``; ``None``: a running or new local runtime).
    chunk_seeds : int or None
        Seeds per chunk (batch = patients x chunk_seeds); default all seeds locally, 1 otherwise.
    sensor, pump, scenario, step_minutes
        As :class:`~pyloopkit.simulation.Simulator` and the decision interval (min).
    progress : bool
        Show a tqdm progress bar (patient-days).
    """
    import pandas as pd
    from pyloopkit.simulation import patient_names

    factories = _controller_factories(controllers)
    names = _patient_list(patients, patient_names)
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    problems = [Problem("seeds", i, s, "must be an integer >= 0") for i, s in enumerate(seed_list) if s < 0]
    if backend not in BACKENDS:
        problems.append(Problem("backend", None, backend, f"must be one of {BACKENDS}"))
    low, high = bounds_mg_dl
    if not low < high:
        problems.append(Problem("bounds_mg_dl", None, bounds_mg_dl, "must be (low, high) with low < high"))
    steps = float(days) * 1440.0 / step_minutes
    if not (np.isfinite(steps) and steps >= 1 and steps.is_integer()):
        problems.append(Problem("days", None, days, f"must be a whole number of {step_minutes}-minute steps"))
    if not seed_list or not factories:
        problems.append(Problem("seeds" if not seed_list else "controllers", None, [], "must not be empty"))
    if problems:
        raise InvalidInputError(problems)
    if chunk_seeds is None:
        chunk_seeds = len(seed_list) if backend == "local" else 1
    options = {"seed": int(seed), "conditions": conditions, "bounds_mg_dl": (float(low), float(high)),
               "sensor": sensor, "pump": pump, "scenario": scenario, "step_minutes": step_minutes}
    chunks = make_chunks(factories, names, seed_list, float(days), int(chunk_seeds), options)
    runner = {"local": _run_local, "processes": _run_processes, "ray": _run_ray}[backend]
    from tqdm.auto import tqdm
    with tqdm(total=sum(c.patient_days for c in chunks), unit="patient-day", disable=not progress) as bar:
        rows = runner(chunks, bar, workers=workers, address=address)
    order = {name: i for i, name in enumerate(factories)}
    position = {name: i for i, name in enumerate(names)}
    rows.sort(key=lambda r: (order[r["controller"]], position[r["patient"]], r["seed"]))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _patient_list(patients, patient_names) -> list[str]:
    """Distinct patient names, in order, from names and groups (a list, or one comma-separated string);
    unknown names are refused here, once, not in every chunk."""
    from pyloopkit.simulation import load_patients

    specs = [s.strip() for s in patients.split(",")] if isinstance(patients, str) else list(patients)
    names = []
    for spec in specs:
        for name in (patient_names(spec) if "#" not in spec else [spec]):
            if name not in names:
                names.append(name)
    load_patients(names)
    return names


def _run_local(chunks, bar, **_):
    rows = []
    for chunk in chunks:
        rows.extend(run_chunk(chunk))
        bar.update(chunk.patient_days)
    return rows


def _run_processes(chunks, bar, workers=None, **_):
    rows = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_chunk, chunk): chunk for chunk in chunks}
        for future in as_completed(futures):
            rows.extend(future.result())
            bar.update(futures[future].patient_days)
    return rows


def _run_ray(chunks, bar, address=None, **_):
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise ImportError("the Ray backend needs ray: pip install 'pyloopkit[cluster]'") from exc
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(run_chunk)
    pending = {remote.remote(chunk): chunk for chunk in chunks}
    rows = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            rows.extend(ray.get(ref))
            bar.update(pending.pop(ref).patient_days)
    return rows
