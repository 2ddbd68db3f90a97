"""Speed of the meal parser.

    python benchmarks/bench_meals.py [--repeat 5]

Prints the time to load the food table (SR28 CSV and curated layer, with the imports) in a fresh
interpreter, the one-off time to build the SR28 word index (on the first food found only in SR28), and the time per sentence of ``parse`` over the project's sentence set
(tests/meals/sentences.csv) after the table is loaded: median, 95th percentile and maximum.
Targets: load < 0.5 s, parse < 5 ms per sentence.
"""
import argparse
import csv
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ROOT / "tests" / "meals" / "sentences.csv"

LOAD = """
import time
w, c = time.perf_counter(), time.process_time()
from pyloopkit.meals import load_table
from pyloopkit.meals.parser import _compounds, _sr_index
import rapidfuzz
table = load_table()
_compounds(table)
w1, c1 = time.perf_counter(), time.process_time()
_sr_index(table)
print(w1 - w, c1 - c, time.perf_counter() - w1, time.process_time() - c1)
"""


def load_seconds(runs: int) -> list[list[float]]:
    """Per fresh interpreter: load wall and CPU s (imports, table, curated names), then the SR28
    word index's wall and CPU s (built on the first food found only in SR28)."""
    return [[float(v) for v in subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                                              check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}).stdout.split()]
            for _ in range(runs)]


def parse_ms(texts: list[str], repeat: int) -> list[float]:
    """Milliseconds per parse of each text, the best of ``repeat`` runs."""
    from pyloopkit.errors import InvalidInputError
    from pyloopkit.meals import parse

    best = []
    for text in texts:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            try:
                parse(text)
            except InvalidInputError:
                pass
            times.append(time.perf_counter() - t)
        best.append(1e3 * min(times))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    runs = load_seconds(args.repeat)
    med = [statistics.median(r[k] for r in runs) for k in range(4)]
    print(f"table load (fresh interpreter, median of {args.repeat}): wall {med[0]:.3f} s, CPU {med[1]:.3f} s "
          f"(target < 0.5 s); SR28 word index on first use: wall {med[2]:.3f} s, CPU {med[3]:.3f} s")
    with open(SENTENCES, newline="") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    sys.path.insert(0, str(ROOT))
    from pyloopkit.meals import parse

    parse("kumquats")  # loads the table and builds the SR28 word index
    ms = sorted(parse_ms(texts, args.repeat))
    print(f"parse ({len(texts)} sentences, best of {args.repeat}): median {statistics.median(ms):.3f} ms, "
          f"p95 {ms[int(0.95 * len(ms))]:.3f} ms, max {ms[-1]:.3f} ms, mean {statistics.fmean(ms):.3f} ms "
          f"(target < 5 ms)")


if __name__ == "__main__":
    main()
