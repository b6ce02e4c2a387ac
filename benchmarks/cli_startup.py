"""Wall time of `gml --help` and `gml plugins` against bare `python -c pass` (median of N runs).

    python benchmarks/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    base = median_seconds([py, "-c", "pass"], args.runs)
    print(f"python -c pass          median {base * 1000:7.1f} ms")
    for label, cmd in (("gml --help", [py, "-m", "gml_core", "--help"]),
                       ("gml plugins", [py, "-m", "gml_core", "plugins"])):
        t = median_seconds(cmd, args.runs)
        print(f"{label:<22}  median {t * 1000:7.1f} ms   (+{(t - base) * 1000:.1f} ms over bare Python)")


if __name__ == "__main__":
    main()
