"""Speed of the meal parser.

    python benchmarks/bench_meals.py [--repeat 5]

Prints the time to load the food table (SR28 CSV, curated layer, the SR word index) in a fresh
interpreter, and the time per sentence of ``parse`` over the project's sentence set
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
t = time.perf_counter()
from pyloopkit.meals import load_table
from pyloopkit.meals.parser import _index
import rapidfuzz
_index(load_table())
print(time.perf_counter() - t)
"""


def load_seconds(runs: int) -> list[float]:
    """Import + table load + index, each in a fresh interpreter."""
    return [float(subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, check=True,
                                 cwd=ROOT, env={"PYTHONPATH": str(ROOT)}).stdout) for _ in range(runs)]


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
    loads = load_seconds(args.repeat)
    print(f"table load (fresh interpreter, {args.repeat} runs): median {statistics.median(loads):.3f} s, "
          f"max {max(loads):.3f} s (target < 0.5 s)")
    with open(SENTENCES, newline="") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    sys.path.insert(0, str(ROOT))
    from pyloopkit.meals import parse

    parse("a banana")  # loads the table and the index
    ms = sorted(parse_ms(texts, args.repeat))
    print(f"parse ({len(texts)} sentences, best of {args.repeat}): median {statistics.median(ms):.3f} ms, "
          f"p95 {ms[int(0.95 * len(ms))]:.3f} ms, max {ms[-1]:.3f} ms, mean {statistics.fmean(ms):.3f} ms "
          f"(target < 5 ms)")


if __name__ == "__main__":
    main()
