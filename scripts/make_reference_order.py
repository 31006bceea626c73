#!/usr/bin/env python
"""Make the shipped reference distributions of the tetrahedral order (S_k, S_g).

    python scripts/make_reference_order.py --theory-dir ../shared/data/theory_structures \
        --out src/napari_afm_style/data/reference_order.npz --seed 0

Writes an .npz with float32 samples

* ``theory_S_k``, ``theory_S_g``: the DFT-based structures (``N.xyz``), each copied
  ``--repeats`` times with Gaussian thermal jitter of ``--jitter-A`` Å (per Cartesian
  component) on the O atoms — the main reference;
* ``theory_static_S_k``, ``theory_static_S_g``: the same structures without jitter;
* ``generator_S_k``, ``generator_S_g``: structures of
  ``napari_afm_style.structures`` (``kind="auto"``, the training mix, with the
  generator's own thermal jitter), if that module is importable;

and ``metadata`` (a JSON string: how it was made, seed, cutoff, counts, the Wasserstein
distances between the sets). The zip entries carry a fixed timestamp, so the same
inputs and seed give a byte-identical file.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

from napari_afm_style.io import read_atoms
from napari_afm_style.order import DEFAULT_CUTOFF_A, emd_2d, order_of_structures


def _theory_files(theory_dir: Path) -> list[Path]:
    files = sorted(theory_dir.glob("*.xyz"), key=lambda p: (int(p.stem) if p.stem.isdigit() else 10**9, p.name))
    if not files:
        raise SystemExit(f"{theory_dir}: no .xyz files")
    return files


def _generator_structures(n: int, seed: int):
    """``n`` structures of the project's generator (its own thermal jitter, the training
    mix of kinds), or (None, reason) if the generator is not available."""
    try:
        from napari_afm_style import structures as st
    except ImportError as e:
        return None, f"napari_afm_style.structures not importable ({e})"
    if hasattr(st, "theory_reference_structures"):
        # Structure k is generate_structure(seeds[k], "auto") with seeds drawn from seed.
        out = st.theory_reference_structures(n, seed=seed, kind="auto", substrate=False)
        how = f"theory_reference_structures({n}, seed={seed}, kind='auto', substrate=False)"
    elif hasattr(st, "generate_structure"):
        out = [st.generate_structure(seed * 1_000_003 + i) for i in range(n)]
        how = f"generate_structure(seed * 1000003 + i) for i < {n}"
    else:
        return None, "napari_afm_style.structures has no generate_structure"
    kinds: dict = {}
    for a in out:
        k = str(a.info.get("kind", "?"))
        kinds[k] = kinds.get(k, 0) + 1
    sig = inspect.signature(st.generate_structure).parameters
    jitter = sig["jitter_A"].default if "jitter_A" in sig else None
    # The generator's output depends on its code: record which version made the set.
    src_sha = hashlib.sha256(Path(st.__file__).read_bytes()).hexdigest()
    return out, {"how": how, "kinds": dict(sorted(kinds.items())), "generator_jitter_A": jitter,
                 "structures_py_sha256": src_sha}


def _w(a_k, a_g, b_k, b_g) -> dict:
    """Distances between two sample sets (raw units; 2-D EMD in units of b's std)."""
    sk, sg = float(np.std(b_k)) or 1.0, float(np.std(b_g)) or 1.0
    emd, method = emd_2d(np.column_stack([a_k / sk, a_g / sg]), np.column_stack([b_k / sk, b_g / sg]),
                         max_points=1000, seed=0)
    return {"wasserstein_S_k": float(wasserstein_distance(a_k, b_k)),
            "wasserstein_S_g": float(wasserstein_distance(a_g, b_g)),
            "emd_2d_std_units": emd, "emd_2d_method": method}


def _stats(sk, sg, counts) -> dict:
    return {**counts, "S_k_mean": float(np.mean(sk)), "S_k_std": float(np.std(sk)),
            "S_g_mean": float(np.mean(sg)), "S_g_std": float(np.std(sg))}


def write_npz_deterministic(path: Path, arrays: dict) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps (byte-reproducible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--theory-dir", type=Path, required=True, help="folder of the DFT-based N.xyz structures")
    ap.add_argument("--out", type=Path, required=True, help="output .npz")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cutoff", type=float, default=DEFAULT_CUTOFF_A, help="O–O cutoff, Å")
    ap.add_argument("--jitter-A", type=float, default=0.07,
                    help="thermal jitter σ per component on O, Å (default 0.07)")
    ap.add_argument("--repeats", type=int, default=24, help="jittered copies of each theory structure")
    ap.add_argument("--generator-n", type=int, default=600, help="generator structures (0 = none)")
    args = ap.parse_args(argv)

    files = _theory_files(args.theory_dir)
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    theory = [read_atoms(f) for f in files]

    arrays: dict = {}
    meta: dict = {
        "description": "Tetrahedral order parameters S_k, S_g (Chau & Hardwick) over the four nearest O "
                       "neighbours within the cutoff; float32 samples, one per O centre with four neighbours.",
        "made_by": "scripts/make_reference_order.py",
        "cutoff_A": args.cutoff,
        "seed": args.seed,
        "sets": {},
    }

    sk, sg, c = order_of_structures(theory, args.cutoff, jitter_A=0.0, seed=args.seed)
    arrays["theory_static_S_k"], arrays["theory_static_S_g"] = sk.astype(np.float32), sg.astype(np.float32)
    meta["sets"]["theory_static"] = {
        "source": f"{len(files)} DFT-based structures of water on Au(111) ({args.theory_dir.name}/N.xyz, "
                  "from huangchieh/StructureMetrics BatchOutStructures/Label), O atoms only, no jitter",
        "theory_files_sha256": digest.hexdigest(), **_stats(sk, sg, c)}

    sk, sg, c = order_of_structures(theory, args.cutoff, jitter_A=args.jitter_A, repeats=args.repeats,
                                    seed=args.seed)
    arrays["theory_S_k"], arrays["theory_S_g"] = sk.astype(np.float32), sg.astype(np.float32)
    meta["sets"]["theory"] = {
        "source": f"the same {len(files)} structures, each {args.repeats} times with independent Gaussian "
                  f"thermal jitter sigma = {args.jitter_A} A per component on O (numpy default_rng(seed))",
        "jitter_A": args.jitter_A, "repeats": args.repeats, **_stats(sk, sg, c)}

    gen_note = "not requested"
    if args.generator_n > 0:
        structures, info = _generator_structures(args.generator_n, args.seed)
        if structures is None:
            gen_note = info
            print(f"generator set skipped: {info}", file=sys.stderr)
        else:
            # The generator already applies its own thermal motion (rigid molecules,
            # jitter_A default): no extra jitter here.
            gk, gg, gc = order_of_structures(structures, args.cutoff)
            arrays["generator_S_k"], arrays["generator_S_g"] = gk.astype(np.float32), gg.astype(np.float32)
            meta["sets"]["generator"] = {
                "source": f"{args.generator_n} structures of napari_afm_style.structures "
                          f"({info['how']}) with the generator's own thermal jitter "
                          f"(sigma = {info['generator_jitter_A']} A, rigid molecules), O atoms only",
                "kinds": info["kinds"], "jitter_A": info["generator_jitter_A"],
                "structures_py_sha256": info["structures_py_sha256"], **_stats(gk, gg, gc)}
            by_kind = {}
            for kind in info["kinds"]:
                sub = [a for a in structures if str(a.info.get("kind", "?")) == kind]
                kk, kg, kc = order_of_structures(sub, args.cutoff)
                by_kind[kind] = _stats(kk, kg, kc) if kk.size else kc
            meta["sets"]["generator"]["by_kind"] = by_kind
            gen_note = "included"
    meta["generator"] = gen_note

    # How the sets compare (raw-unit 1-D Wasserstein; 2-D EMD in units of the theory std).
    ref_k, ref_g = arrays["theory_S_k"].astype(float), arrays["theory_S_g"].astype(float)
    meta["comparisons_vs_theory"] = {
        name: _w(arrays[f"{name}_S_k"].astype(float), arrays[f"{name}_S_g"].astype(float), ref_k, ref_g)
        for name in ("theory_static", "generator") if f"{name}_S_k" in arrays}
    # Noise floor of the subsampled 2-D EMD: two disjoint random 1000-point draws from
    # the same (theory) distribution.
    perm = np.random.default_rng(args.seed).permutation(ref_k.size)
    h1, h2 = perm[:1000], perm[1000:2000]
    meta["comparisons_vs_theory"]["theory_random_half_noise_floor"] = _w(ref_k[h1], ref_g[h1], ref_k[h2], ref_g[h2])
    arrays["metadata"] = np.array(json.dumps(meta, indent=1, sort_keys=True))
    write_npz_deterministic(args.out, arrays)
    print(json.dumps(meta, indent=1, sort_keys=True))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
