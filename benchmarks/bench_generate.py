"""Generation throughput with 1 and 2 workers (local processes and a local Dask cluster).

    python benchmarks/bench_generate.py [--n 16] [--size-px 128]

Prints stacks/s for each setting and the scaling efficiency = throughput(2) / (2 ×
throughput(1)), measured in the same run. Kernel compilation is excluded by a warm-up
run (PoCL caches compiled kernels on disk).
"""

import argparse
import tempfile
from pathlib import Path

from napari_afm_style.generate import GenerationConfig, generate_dataset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--size-px", type=int, default=128)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_generate_"))
    cfg = GenerationConfig(n_samples=args.n, shard_size=max(1, args.n // 8), size_px=args.size_px,
                           seed=123)
    generate_dataset(tmp / "warmup", GenerationConfig(n_samples=1, shard_size=1, size_px=args.size_px),
                     progress=False)
    one = generate_dataset(tmp / "w1", cfg, workers=1, progress=False)
    two = generate_dataset(tmp / "w2", cfg, workers=2, progress=False)
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        dask2 = generate_dataset(tmp / "dask2", cfg, scheduler=c.scheduler_address, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        dask1 = generate_dataset(tmp / "dask1", cfg, scheduler=c.scheduler_address, progress=False)
    print(f"{args.n} stacks of {args.size_px}x{args.size_px}x10")
    for name, r in (("local, 1 worker", one), ("local, 2 workers", two),
                    ("dask, 1 worker", dask1), ("dask, 2 workers", dask2)):
        print(f"  {name:18s} {r['stacks_per_s']:.3f} stacks/s  ({r['seconds']:.1f} s)")
    print(f"scaling efficiency local: {two['stacks_per_s'] / (2 * one['stacks_per_s']):.2f}")
    print(f"scaling efficiency dask:  {dask2['stacks_per_s'] / (2 * dask1['stacks_per_s']):.2f}")


if __name__ == "__main__":
    main()
