"""Timing helper shared by the benchmarks (run them from the repository root)."""

import statistics
import time


def median_time(fn, repeats: int) -> float:
    """Median wall time (s) of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
