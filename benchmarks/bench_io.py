"""Import speed: a simulated 90-day Nightscout export read by ``pyloopkit.io.read``.

The history is generated here (no data files): one virtual patient (simglucose's adolescent#001)
under the basal-bolus controller with random meals, seed 1, CGM every 5 min. It is written as a
Nightscout export folder: ``entries.json`` (one ``sgv`` per 5 min), ``treatments.json`` (a ``Temp
Basal`` of 30 min every 5 min, each cancelling the previous one as Loop's do, a ``Meal Bolus`` with insulin and carbs per meal) and ``profile.json``.

Run: ``PYTHONPATH=. python benchmarks/bench_io.py [--days 90] [--repeat 3]``; prints the record counts
and the best read time.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import tempfile
import time
from pathlib import Path

import numpy as np

START = _dt.datetime(2026, 1, 5, tzinfo=_dt.timezone.utc)


def simulate_nightscout(folder: Path, days: int, seed: int = 1, patient: str = "adolescent#001") -> dict:
    """Write a Nightscout export of ``days`` simulated days into ``folder``; returns record counts."""
    from pyloopkit.control.basal_bolus import BasalBolusController
    from pyloopkit.simulation import Simulator

    sim = Simulator(patient, scenario="random", seed=seed)
    controller = BasalBolusController(sim.patients)
    step = sim.reset(seed)
    entries, treatments = [], []
    for k in range(days * 288):
        t = START + _dt.timedelta(minutes=5 * k)
        ms = int(t.timestamp() * 1000)
        entries.append({"type": "sgv", "sgv": round(float(step.cgm[0]), 1), "date": ms,
                        "dateString": t.isoformat().replace("+00:00", "Z"), "device": "simulator"})
        basal, bolus = controller.act(step)
        iso = t.isoformat().replace("+00:00", "Z")
        treatments.append({"eventType": "Temp Basal", "created_at": iso, "absolute": float(basal[0]),
                           "rate": float(basal[0]), "duration": 30})
        if bolus[0] > 0 or step.meal_announcement_g[0] > 0:
            treatments.append({"eventType": "Meal Bolus", "created_at": iso, "insulin": float(bolus[0]),
                               "carbs": float(step.meal_announcement_g[0]), "absorptionTime": 180})
        step = sim.step(basal, bolus, minutes=5)
    profile = [{"defaultProfile": "Default", "startDate": START.isoformat(), "store": {"Default": {
        "dia": 6, "units": "mg/dl", "timezone": "UTC",
        "basal": [{"time": "00:00", "value": float(controller.basal_u_per_h[0])}],
        "carbratio": [{"time": "00:00", "value": float(controller.carb_ratio_g_per_u[0])}],
        "sens": [{"time": "00:00", "value": float(controller.correction_factor_mg_dl_per_u[0])}],
        "target_low": [{"time": "00:00", "value": 100}], "target_high": [{"time": "00:00", "value": 120}]}},
        "loopSettings": {"maximumBasalRatePerHour": 5.0, "maximumBolus": 15.0}}]
    for name, docs in (("entries", entries[::-1]), ("treatments", treatments[::-1]), ("profile", profile)):
        (folder / f"{name}.json").write_text(json.dumps(docs))
    return {"entries": len(entries), "treatments": len(treatments)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    from pyloopkit.io import read

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        counts = simulate_nightscout(folder, args.days)
        sim_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            h = read(folder)
            times.append(time.perf_counter() - t0)
        print(f"{args.days} days simulated in {sim_s:.1f} s: {counts['entries']} entries, "
              f"{counts['treatments']} treatments, {size_mb:.1f} MB of JSON")
        print(f"read(): best {min(times):.2f} s of {args.repeat} (median {np.median(times):.2f} s); "
              f"{len(h.glucose)} readings, {len(h.doses)} doses, {len(h.carbs)} carb entries, "
              f"{len(h.skipped)} skipped")
        t0 = time.perf_counter()
        request = h.to_tune_request()
        t1 = time.perf_counter()
        back = type(h).from_csv(h.to_csv(folder / "history"))
        t2 = time.perf_counter()
        from pyloopkit.loop_data_manager import update

        out = update(h.to_input_dict())
        t3 = time.perf_counter()
        print(f"to_tune_request(): {t1 - t0:.2f} s ({len(json.dumps(request)) / 1e6:.1f} MB of JSON); "
              f"to_csv + from_csv: {t2 - t1:.2f} s ({len(back.doses)} doses back); "
              f"to_input_dict() + update(): {t3 - t2:.2f} s (IOB {out['insulin_on_board']:.2f} U)")


if __name__ == "__main__":
    main()
