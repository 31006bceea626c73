"""The hostile-file campaign in full: seeded truncations and byte flips of a small valid
file of every format, each read with a time bound (tests/fuzz_files.py).

    python benchmarks/bench_fuzz.py [--cuts 40] [--flips 200] [--seed 0]

Prints per format how many mutated files gave a valid result, a clean error naming the
file, an unexpected exception, a hang, a silent loss (a truncated file read as a smaller
valid one) or a changed input; the last four must be 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fuzz_files import OUTCOMES, campaign  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cuts", type=int, default=40)
    p.add_argument("--flips", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        res = campaign(Path(d), args.cuts, args.flips, args.seed)
    print(f"| format | tried | {' | '.join(OUTCOMES)} |")
    print("|---|---|" + "---|" * len(OUTCOMES))
    total = dict.fromkeys(OUTCOMES, 0)
    for name, counts in res["table"].items():
        print(f"| {name} | {sum(counts.values())} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")
        for o in OUTCOMES:
            total[o] += counts[o]
    print(f"| **all** | {sum(total.values())} | " + " | ".join(str(total[o]) for o in OUTCOMES) + " |")
    for b in res["bad"][:20]:
        print("  ", b)
    print(f"{time.time() - t0:.0f} s")
    return 1 if res["bad"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
