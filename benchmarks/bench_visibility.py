"""How deep can an O atom lie and still leave a mark in the Δf stack?

For held-out samples of a generated set, every chosen water molecule is deleted in turn
(O with its H atoms) and the structure is re-simulated with the sample's own scan and tip
(``napari_afm_style.simulate``). The molecule's *imprint* is the largest |Δf change| over
all heights within 1 Å (laterally) of its O atom, after removing the slice mean (a
molecule's long-range attraction shifts a whole slice; what a structure model can use is
local contrast). Printed per depth below the closest tip height, next to the white-noise
level of the experiment-like scans (docs/structures_and_perturbations.md): an imprint
below the noise cannot be told from it in a single scan.

    python benchmarks/bench_visibility.py --data HELDOUT_DIR [--samples 8] [--per-sample 10]
        [--kinds theory cluster mixed] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_afm_style.generate import GenerationConfig, _theory_files, sample_setup
from napari_afm_style.simulate import simulate


def molecule_indices(atoms, o_index: int, oh_max_A: float = 1.25) -> list[int]:
    d = np.linalg.norm(atoms.positions - atoms.positions[o_index], axis=1)
    h = np.flatnonzero((atoms.numbers == 1) & (d < oh_max_A))
    return [o_index, *h.tolist()]


def imprint_Hz(base: np.ndarray, without: np.ndarray, stack, xy_A, radius_A: float = 1.0) -> float:
    diff = (base - base.mean(axis=(1, 2), keepdims=True)) - (without - without.mean(axis=(1, 2), keepdims=True))
    yy, xx = np.meshgrid(stack.y_A, stack.x_A, indexing="ij")
    near = (xx - xy_A[0]) ** 2 + (yy - xy_A[1]) ** 2 <= radius_A**2
    if not near.any():
        return float("nan")
    return float(np.abs(diff[:, near]).max())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="generated set (its dataset.json gives the configuration)")
    p.add_argument("--samples", type=int, default=8, help="samples to study")
    p.add_argument("--per-sample", type=int, default=10, help="molecules deleted per sample (spread in depth)")
    p.add_argument("--kinds", nargs="+", default=["theory", "cluster", "mixed"],
                   help="structure kinds to study (3D ones are where depth matters)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    meta = json.loads((Path(args.data) / "dataset.json").read_text())["config"]
    cfg = GenerationConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()
                              if k in GenerationConfig.__dataclass_fields__})
    theory = _theory_files(cfg) if cfg.theory_dir and Path(cfg.theory_dir).is_dir() else None
    rows = []
    studied = 0
    for index in range(cfg.n_samples):
        if studied >= args.samples:
            break
        atoms, like, tip = sample_setup(cfg, index, theory)
        kind = str(atoms.info.get("kind", "generated"))
        if kind.split(":")[0] not in args.kinds:
            continue
        studied += 1
        base = simulate(atoms, like, tip)
        closest = float(like.heights_A[-1])
        x0, y0 = like.x_A[0], like.y_A[0]
        x1, y1 = like.x_A[-1], like.y_A[-1]
        o = np.flatnonzero(atoms.numbers == 8)
        pos = atoms.positions[o]
        inside = (pos[:, 0] > x0 + 1) & (pos[:, 0] < x1 - 1) & (pos[:, 1] > y0 + 1) & (pos[:, 1] < y1 - 1)
        depth = closest - pos[:, 2]
        cand = o[inside & (depth <= 7.5)]
        if len(cand) == 0:
            continue
        order = cand[np.argsort(closest - atoms.positions[cand, 2])]
        pick = order[np.unique(np.linspace(0, len(order) - 1, min(args.per_sample, len(order))).round().astype(int))]
        for i in pick:
            keep = np.setdiff1d(np.arange(len(atoms)), molecule_indices(atoms, int(i)))
            without = simulate(atoms[keep], like, tip)
            d = float(closest - atoms.positions[i, 2])
            val = imprint_Hz(base.data, without.data, base, atoms.positions[i, :2])
            rows.append({"sample": index, "kind": kind, "depth_A": d, "imprint_Hz": val})
            print(f"sample {index:3d} ({kind}): O {d:.2f} Å below the closest tip height → imprint {val:.3f} Hz",
                  flush=True)
    if not rows:
        print("no molecules studied (no samples of the chosen kinds)")
        return 1
    depth = np.array([r["depth_A"] for r in rows])
    val = np.array([r["imprint_Hz"] for r in rows])
    print("\ndepth below closest tip height | molecules | median imprint | 10th percentile")
    for lo in np.arange(np.floor(depth.min() * 2) / 2, depth.max() + 0.5, 0.5):
        m = (depth >= lo) & (depth < lo + 0.5)
        if m.any():
            print(f"{lo:4.1f}–{lo + 0.5:4.1f} Å | {m.sum():3d} | {np.median(val[m]):7.3f} Hz | "
                  f"{np.percentile(val[m], 10):7.3f} Hz")
    from napari_afm_style.perturb import EXPERIMENT_LIKE_STATS

    w = EXPERIMENT_LIKE_STATS["white_noise_Hz"]
    print(f"white noise of the experiment-like scans: {w['p5']}–{w['p95']} Hz rms (5th–95th percentile), "
          f"median {w['median']} Hz")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
