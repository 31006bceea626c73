"""Scaling out on this machine: training with 1 and 2 processes (torchrun), generation with
1 and 2 workers, and the efficiencies, all measured in the same run.

    python benchmarks/bench_scaling.py [--steps 7] [--batch-size 16] [--n-gen 16]

Training: ``train-predictor`` on synthetic shards (Gaussian dips; the cost of a step does
not depend on the physics), the default network, handcrafted regime, crops of 64 px, one
torch thread per process, global batch ``--batch-size`` in every setting; samples/s over
the steps after the first (the first pays for start-up). Settings: 1 process; 1 process
with 1 DataLoader worker (``--loader-workers 1``); 2 processes (``torchrun
--nproc_per_node 2``, each computing half of every global batch).

Generation: ``generate_dataset`` of ``--n-gen`` stacks (16 Å windows of 0.25 Å pixels,
10 heights) with 1 and 2 local worker
processes, and as two ``--shards`` range jobs started together (what a SLURM array does)
into one folder. Kernel compilation is excluded by a warm-up run.

Efficiency = throughput(2) / (2 × throughput(1)).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_synthetic_shards(folder: Path, n: int, size_px: int = 64, shard_size: int = 32, seed: int = 0):
    """Shards in the project's format with Gaussian dips at random O/H atoms."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps({"format": "synthetic", "config": {"seed": seed}}))
    rng = np.random.default_rng(seed)
    pixel, closest = 0.125, 10.0
    heights = closest + 0.1 * np.arange(9, -1, -1)
    y, x = np.mgrid[0:size_px, 0:size_px] * pixel
    for s, start in enumerate(range(0, n, shard_size)):
        m = min(shard_size, n - start)
        df = np.zeros((m, 10, size_px, size_px), np.float32)
        numbers = np.zeros((m, 64), np.int16)
        positions = np.zeros((m, 64, 3), np.float32)
        for j in range(m):
            n_o = int(rng.integers(4, 12))
            o = np.column_stack([rng.uniform(0, size_px * pixel, (n_o, 2)), closest - rng.uniform(2.8, 4.5, n_o)])
            h = o.repeat(2, axis=0) + rng.normal(0, 0.6, (2 * n_o, 3)) * [1, 1, 0.3]
            pos, num = np.concatenate([o, h]), np.array([8] * n_o + [1] * (2 * n_o))
            for i, tip in enumerate(heights):
                for (ax, ay, az), z in zip(pos, num):
                    df[j, i] += -2.0 * np.exp(-(tip - az - 3.0)) * np.exp(-((x - ax) ** 2 + (y - ay) ** 2) / 0.2)
            numbers[j, :len(num)] = num
            positions[j, :len(num)] = pos
        np.savez(folder / f"shard_{s:05d}.npz", df=df, heights_A=np.tile(heights, (m, 1)),
                 pixel_size_A=np.full(m, pixel), origin_A=np.zeros((m, 2)), atom_numbers=numbers,
                 atom_positions_A=positions, seed=np.full(m, seed), sample_index=np.arange(start, start + m))


def train_worker(data: str, out: str, steps: int, batch_size: int, loader_workers: int) -> None:
    """One process of a training setting (run by torchrun); rank 0 writes its step times."""
    import torch

    from napari_afm_style.train_predictor import TrainConfig, train

    torch.set_num_threads(1)
    times = []
    cfg = TrainConfig(data=data, out=out, epochs=1, batch_size=batch_size, crop_px=(64, 64), val_fraction=0.05,
                      regime="handcrafted", max_steps=steps, progress=False, num_threads=1,
                      loader_workers=loader_workers)
    train(cfg, callback=lambda e, b, loss: times.append(time.perf_counter()))
    if int(os.environ.get("RANK", "0")) == 0:
        Path(out, "step_times.json").write_text(json.dumps(times))


def train_setting(tmp: Path, name: str, nproc: int, loader_workers: int, args) -> float:
    out = tmp / f"train_{name}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           __file__, "--train-worker", str(tmp / "shards"), str(out), str(args.steps), str(args.batch_size),
           str(loader_workers)]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    times = json.loads((out / "step_times.json").read_text())
    return args.batch_size * (len(times) - 1) / (times[-1] - times[0])


def generation(tmp: Path, args) -> dict:
    from napari_afm_style.generate import GenerationConfig, generate_dataset

    size = args.gen_size_px
    cfg = GenerationConfig(n_samples=args.n_gen, shard_size=1, size_px=size, pixel_size_A=0.25, seed=123)
    generate_dataset(tmp / "gen_warmup", GenerationConfig(n_samples=1, shard_size=1, size_px=size,
                                                          pixel_size_A=0.25), progress=False)
    res = {"1 worker": generate_dataset(tmp / "gen_w1", cfg, workers=1, progress=False)["stacks_per_s"],
           "2 workers": generate_dataset(tmp / "gen_w2", cfg, workers=2, progress=False)["stacks_per_s"]}
    # two range jobs started together into one folder, as a SLURM array would
    half = args.n_gen // 2
    common = ["generate", str(tmp / "gen_ranges"), "-n", str(args.n_gen), "--shard-size", "1",
              "--size-px", str(size), "--pixel-size", "0.25", "--seed", "123", "--no-progress"]
    t0 = time.perf_counter()
    jobs = [subprocess.Popen([sys.executable, "-m", "napari_afm_style.cli", *common, "--shards", r],
                             stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
            for r in (f"0:{half}", f"{half}:")]
    if any(j.wait() for j in jobs):
        raise RuntimeError("a range job failed")
    res["2 range jobs"] = args.n_gen / (time.perf_counter() - t0)  # includes their start-up
    same = all((tmp / "gen_ranges" / p.name).read_bytes() == p.read_bytes()
               for p in sorted((tmp / "gen_w1").glob("shard_*.npz")))
    return res, same


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=7, help="training steps per setting (default 7)")
    ap.add_argument("--batch-size", type=int, default=16, help="global batch (default 16)")
    ap.add_argument("--n-gen", type=int, default=16, help="stacks generated per setting (default 16)")
    ap.add_argument("--gen-size-px", type=int, default=64,
                    help="generated image size, 0.25 Å pixels (default 64: a 16 Å window)")
    ap.add_argument("--train-worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.train_worker:
        data, out, steps, batch, workers = args.train_worker
        train_worker(data, out, int(steps), int(batch), int(workers))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench_scaling_"))
    n_train = int(np.ceil((args.steps + 1) * args.batch_size / 0.95))
    write_synthetic_shards(tmp / "shards", n_train)
    print(f"cpu cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"training: default U-Net, handcrafted regime, 64 px crops, global batch {args.batch_size}, "
          f"{args.steps} steps, 1 torch thread per process")
    t1 = train_setting(tmp, "p1", 1, 0, args)
    t1w = train_setting(tmp, "p1_w1", 1, 1, args)
    t2 = train_setting(tmp, "p2", 2, 0, args)
    for name, v in (("1 process", t1), ("1 process + 1 loader worker", t1w), ("2 processes (torchrun)", t2)):
        print(f"  {name:30s} {v:7.2f} samples/s")
    print(f"  training scaling efficiency (2 processes): {t2 / (2 * t1):.2f}  (speed-up {t2 / t1:.2f}x)")
    gen, same = generation(tmp, args)
    print(f"generation: {args.n_gen} stacks of {args.gen_size_px}x{args.gen_size_px}x10 (0.25 Å pixels), "
          "one shard each")
    for name, v in gen.items():
        print(f"  {name:30s} {v:7.3f} stacks/s")
    print(f"  generation scaling efficiency (2 workers): {gen['2 workers'] / (2 * gen['1 worker']):.2f}")
    print(f"  generation scaling efficiency (2 range jobs, start-up included): "
          f"{gen['2 range jobs'] / (2 * gen['1 worker']):.2f}")
    print(f"  range jobs' shards identical to the 1-worker set: {same}")


if __name__ == "__main__":
    main()
