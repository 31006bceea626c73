"""``afm-style generate``: a simulated training set in shards."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..training.generate import GenerationConfig, generate_dataset, parse_shard_range
from ._options import add_progress_option

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output folder (created; an existing one is resumed)")
    p.add_argument("-n", "--n-samples", type=int, default=64, help="stacks in the whole set")
    p.add_argument("--seed", type=int, default=0, help="seed of the set: sample i is drawn from (seed, i), whatever the workers")
    p.add_argument("--shard-size", type=int, default=16, help="stacks per shard file (the unit of resume and of --shards)")
    p.add_argument("--size-px", type=int, default=128, help="image size in pixels (square)")
    p.add_argument("--pixel-size", type=float, default=0.125, help="Å")
    p.add_argument("--n-heights", type=int, default=10, help="tip heights per stack")
    p.add_argument("--height-step", type=float, default=0.1, help="Å")
    p.add_argument("--amplitude", type=float, default=1.0, help="oscillation amplitude, Å")
    p.add_argument("--theory-dir", default=None,
                   help="folder of theoretical structures (ppafm XYZ) mixed in with the generator's")
    p.add_argument("--theory-fraction", type=float, default=0.3,
                   help="fraction of samples taken from --theory-dir structures (the rest generated)")
    p.add_argument("--theory-subset", choices=("all", "train", "heldout"), default="all",
                   help="use the first 5/6 (train) or last 1/6 (heldout) of the sorted theory files")
    p.add_argument("--theory-mirror", action="store_true",
                   help="mirror half of the theoretical structures (y → −y)")
    p.add_argument("--theory-remove-upper", type=float, nargs=2, default=[0.0, 0.0], metavar=("MIN", "MAX"),
                   help="remove this fraction (uniform per structure) of the theoretical structures' molecules "
                        "above the contact layer")
    p.add_argument("--closest-offset", type=float, nargs=2, default=list(GenerationConfig.closest_offset_A),
                   metavar=("MIN", "MAX"),
                   help="closest tip height above the topmost adsorbate atom, Å (uniform per sample); "
                        "closer tips give the sharp-line contrast of close-approach scans")
    p.add_argument("--tip-k-xy", type=float, nargs=2, default=list(GenerationConfig.tip_k_xy_N_per_m),
                   metavar=("MIN", "MAX"), help="lateral stiffness of the CO tip, N/m (uniform per sample)")
    p.add_argument("--tip-tilt", type=float, nargs=2, default=list(GenerationConfig.tip_tilt_A), metavar=("MIN", "MAX"),
                   help="tilt of the CO tip: lateral offset of the probe particle from its anchor, Å (magnitude "
                        "uniform per sample, direction random; 0 0: upright)")
    p.add_argument("--tip-multipoles", nargs="+", default=list(GenerationConfig.tip_multipoles),
                   choices=("s", "pz", "dz2"), help="tip charge distributions, one drawn per sample")
    p.add_argument("--workers", type=int, default=1, help="local processes (default 1)")
    p.add_argument("--shards", default=None, metavar="I:J",
                   help="make only shards I … J-1 of the set (also I: or I), e.g. one range per SLURM array "
                        "task, all writing into the same folder; default: all shards")
    dask = p.add_mutually_exclusive_group()
    dask.add_argument("--scheduler", default=None,
                      help="Dask scheduler address, e.g. tcp://host:8786 (default: no Dask)")
    dask.add_argument("--scheduler-file", default=None, metavar="FILE",
                      help="connect to the Dask cluster described by FILE (`dask scheduler --scheduler-file FILE`); "
                           "the workers must see OUT at the same path (default: no Dask)")
    p.add_argument("--retries", type=int, default=2,
                   help="with Dask: resubmit a failed shard task up to this many times (default 2)")
    add_progress_option(p)


def run(args) -> int:
    if args.n_samples < 1 or args.shard_size < 1:
        raise ValueError("--n-samples and --shard-size must be positive")
    if not 16 <= args.size_px <= 1024:
        raise ValueError("--size-px must be between 16 and 1024")
    lo, hi = args.closest_offset
    if not 1.0 <= lo <= hi <= 8.0:
        raise ValueError(f"--closest-offset needs 1 ≤ MIN ≤ MAX ≤ 8 Å (a tip closer than 1 Å above the top "
                         f"atom crashes into it), got {lo} {hi}")
    klo, khi = args.tip_k_xy
    if not 0.05 <= klo <= khi <= 5.0:
        raise ValueError(f"--tip-k-xy needs 0.05 ≤ MIN ≤ MAX ≤ 5 N/m, got {klo} {khi}")
    rlo, rhi = args.theory_remove_upper
    if not 0.0 <= rlo <= rhi <= 1.0:
        raise ValueError(f"--theory-remove-upper needs 0 ≤ MIN ≤ MAX ≤ 1 (fractions), got {rlo} {rhi}")
    config = GenerationConfig(
        n_samples=args.n_samples, seed=args.seed, shard_size=args.shard_size,
        size_px=args.size_px, pixel_size_A=args.pixel_size, n_heights=args.n_heights,
        height_step_A=args.height_step, amplitude_A=args.amplitude,
        theory_dir=str(Path(args.theory_dir).resolve()) if args.theory_dir else None,
        theory_fraction=args.theory_fraction, theory_subset=args.theory_subset,
        closest_offset_A=(lo, hi), tip_k_xy_N_per_m=(klo, khi),
        theory_mirror=args.theory_mirror, theory_remove_upper=(rlo, rhi),
        tip_tilt_A=tuple(args.tip_tilt), tip_multipoles=tuple(args.tip_multipoles),
    )
    summary = generate_dataset(args.out, config, workers=args.workers, scheduler=args.scheduler,
                               progress=not args.no_progress,
                               shards=parse_shard_range(args.shards) if args.shards else None,
                               scheduler_file=args.scheduler_file, retries=args.retries)
    print(json.dumps(summary, indent=2))
    return 0
