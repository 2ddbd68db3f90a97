"""Generate the simglucose parity fixtures in fixtures/simglucose_parity/ (run once; needs simglucose 0.2.11).

Protocol, for each of the 30 virtual patients, starting from simglucose's default
initial state (``random_init_bg=False``), one ``T1DPatient.step`` per minute for
480 minutes with ``Action(CHO, insulin)``:

* insulin (U/min): the steady basal ``u2ss * BW / 6000`` every minute, plus a
  bolus ``CHO / CR`` (Quest.csv CR, g/U) delivered as a rate during the minute
  the meal is announced (like simglucose's own ``t1dpatient`` example);
* CHO (g/min): 50 g announced at minute 60 and 70 g at minute 300; simglucose's
  patient eats an announced meal at 5 g/min (10 and 14 minutes of eating);
* recorded: BG (``observation.Gsub``, mg/dL) and plasma glucose (state 4 / Vg,
  mg/dL) at minutes 0..480, and the inputs.

Output: ``fixtures/simglucose_parity/simglucose_0.2.11.npz`` with arrays ``names``,
``carbs_g_per_min`` and ``insulin_u_per_min`` (30, 480), ``bg`` and
``plasma_glucose`` (30, 481), and ``protocol`` (this text).
"""
from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path

import numpy as np
from simglucose.patient.t1dpatient import Action, T1DPatient

from pyloopkit.simulation.patients import load_patients

DURATION_MIN = 480
MEALS = ((60, 50.0), (300, 70.0))


def protocol_inputs(patients):
    """CHO (g/min) and insulin (U/min) arrays (n, DURATION_MIN) of the protocol."""
    carbs = np.zeros((patients.n, DURATION_MIN))
    insulin = np.repeat(patients.basal_u_per_min[:, None], DURATION_MIN, axis=1)
    for minute, grams in MEALS:
        carbs[:, minute] = grams
        insulin[:, minute] += grams / patients.CR
    return carbs, insulin


def run_simglucose(name, carbs, insulin):
    patient = T1DPatient.withName(name)
    vg = float(patient._params.Vg)
    bg, plasma = [patient.observation.Gsub], [patient.state[3] / vg]
    for cho, rate in zip(carbs, insulin):
        patient.step(Action(CHO=float(cho), insulin=float(rate)))
        bg.append(patient.observation.Gsub)
        plasma.append(patient.state[3] / vg)
    return np.array(bg), np.array(plasma)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_out = Path(__file__).resolve().parents[1] / "fixtures" / "simglucose_parity"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    version = importlib.metadata.version("simglucose")
    patients = load_patients("all")
    carbs, insulin = protocol_inputs(patients)
    traces = [run_simglucose(name, carbs[k], insulin[k]) for k, name in enumerate(patients.names)]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"simglucose_{version}.npz"
    np.savez_compressed(path, names=np.array(patients.names), carbs_g_per_min=carbs, insulin_u_per_min=insulin,
                        bg=np.stack([t[0] for t in traces]), plasma_glucose=np.stack([t[1] for t in traces]),
                        protocol=np.array(__doc__))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
