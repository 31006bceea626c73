"""Style-translation benchmark: domain gap before/after translation, cycle error, timing.

On held-out stacks (the model's own held-out lists when it carries them and the same
folders are given; otherwise every stack found) it prints

* FID (if feature-network weights exist), MMD² (style descriptor) and spectrum distance
  of simulated vs experimental, forward(sim) vs experimental (gap reduction %), and
  backward(exp) vs simulated (% moved toward the simulated domain);
* the cycle reconstruction error F(G(sim)) vs sim and G(F(exp)) vs exp (per-slice σ
  units, and relative to the mean |x|);
* the time of a plain generator forward pass on a 10 × 128 × 128 stack, of a whole
  ``translate()`` call (forward and backward), and of a strength change
  (``Translation.at``), with their ratios to the plain pass measured in the same run.

    python benchmarks/bench_translate.py --sim SIM_DIR --exp EXP_DIR --model PATH \\
        [--feature-net PATH] [--strength 1|recommended] [--max-stacks 200] [--threads N]

``--model random`` times an untrained translator of the default architecture (the
distances are then meaningless; timing is valid).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_afm_style import AFMStack, metrics
from napari_afm_style.models.cyclegan import CycleGAN, CycleGANConfig
from napari_afm_style.resample import DEFAULT_GRID
from napari_afm_style.train_translator import load_domain
from napari_afm_style.translate import Translator, load_translator, prepare_translation, translate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time  # noqa: E402


def _heldout(domain, ids):
    if not ids:
        return domain, "all stacks given"
    keep = [i for i, sid in enumerate(domain.ids) if sid in set(ids)]
    if not keep:
        return domain, "all stacks given (the model's held-out ids are not in this folder)"
    return domain.subset(keep), f"the model's {len(keep)} held-out stacks"


def _apply(tr: Translator, arrays, direction, strength):
    out = []
    for a in arrays:
        out.append(a + strength * tr.residual(a, direction))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sim", required=True, help="simulated stacks (shard folder or stack files)")
    p.add_argument("--exp", required=True, help="experimental stacks")
    p.add_argument("--model", default=None, help="translator .pt / training folder; 'random' = untrained")
    p.add_argument("--feature-net", default=None, help="feature-network weights for FID (default: shipped)")
    p.add_argument("--strength", default="1.0", help="strength for the gap numbers, or 'recommended'")
    p.add_argument("--max-stacks", type=int, default=200, help="at most this many stacks per domain")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model == "random":
        tr = Translator.from_model(CycleGAN(CycleGANConfig(), seed=0), name="untrained default architecture")
        print("model: UNTRAINED default architecture (distances meaningless; timing valid)")
    else:
        tr = load_translator(args.model)
        print(f"model: {tr.name}")
    ids = tr.info.get("heldout_ids") or {}
    sim_all = load_domain(args.sim, max_stacks=None if ids else args.max_stacks, seed=0)
    exp_all = load_domain(args.exp, max_stacks=None if ids else args.max_stacks, seed=0)
    sim, sim_note = _heldout(sim_all, ids.get("sim"))
    exp, exp_note = _heldout(exp_all, ids.get("exp"))
    if len(sim) > args.max_stacks:
        sim = sim.subset(range(args.max_stacks))
    if len(exp) > args.max_stacks:
        exp = exp.subset(range(args.max_stacks))
    print(f"simulated: {len(sim)} stacks ({sim_note}) from {args.sim}")
    print(f"experimental: {len(exp)} stacks ({exp_note}) from {args.exp}")
    print(f"torch threads: {torch.get_num_threads()}")

    rec = tr.recommended_strength or {}
    strengths = {}
    for d in ("forward", "backward"):
        if args.strength == "recommended":
            if d not in rec:
                print("the model stores no recommended strength; use a number", file=sys.stderr)
                return 2
            strengths[d] = float(rec[d])
        else:
            strengths[d] = float(args.strength)
    print(f"strength: forward {strengths['forward']:g}, backward {strengths['backward']:g}"
          + (f" (recommended {rec})" if rec else ""))

    t0 = time.perf_counter()
    fwd = _apply(tr, sim.arrays, "forward", strengths["forward"])
    bwd = _apply(tr, exp.arrays, "backward", strengths["backward"])
    cyc_sim = _apply(tr, _apply(tr, sim.arrays, "forward", 1.0), "backward", 1.0)
    cyc_exp = _apply(tr, _apply(tr, exp.arrays, "backward", 1.0), "forward", 1.0)
    t_translate_all = time.perf_counter() - t0

    results: dict = {"n_sim": len(sim), "n_exp": len(exp), "strength": strengths, "metrics": {}}
    metric_fns = {"MMD² (descriptor)": lambda a, b: metrics.mmd(a, b),
                  "spectrum distance (decades)": metrics.spectrum_distance}
    try:
        from napari_afm_style.models.feature_net import load_feature_net

        net = load_feature_net(args.feature_net)
        metric_fns = {"FID (feature net)": lambda a, b: metrics.fid(a, b, model=net), **metric_fns}
    except FileNotFoundError as e:
        print(f"FID: not computed ({e})")
    print()
    header = (f"{'metric':30s} {'sim vs exp':>11s} {'fwd(sim) vs exp':>16s} {'gap closed':>11s} "
              f"{'bwd(exp) vs sim':>16s} {'moved to sim':>13s}")
    print(header)
    print("-" * len(header))
    for name, fn in metric_fns.items():
        base = fn(sim.arrays, exp.arrays)
        d_f = fn(fwd, exp.arrays)
        d_b = fn(bwd, sim.arrays)
        red_f = 100.0 * (1.0 - d_f / base) if base > 0 else float("nan")
        red_b = 100.0 * (1.0 - d_b / base) if base > 0 else float("nan")
        print(f"{name:30s} {base:11.4g} {d_f:16.4g} {red_f:10.1f}% {d_b:16.4g} {red_b:12.1f}%")
        results["metrics"][name] = {"sim_vs_exp": base, "forward_vs_exp": d_f, "gap_reduction_pct": red_f,
                                    "backward_vs_sim": d_b, "moved_toward_sim_pct": red_b}
    err_s = float(np.mean([np.mean(np.abs(a - b)) for a, b in zip(cyc_sim, sim.arrays)]))
    err_e = float(np.mean([np.mean(np.abs(a - b)) for a, b in zip(cyc_exp, exp.arrays)]))
    mag_s = float(np.mean([np.mean(np.abs(a)) for a in sim.arrays]))
    mag_e = float(np.mean([np.mean(np.abs(a)) for a in exp.arrays]))
    print()
    print(f"cycle error |F(G(sim)) − sim|: {err_s:.4f} σ ({100 * err_s / mag_s:.1f} % of mean |sim|)")
    print(f"cycle error |G(F(exp)) − exp|: {err_e:.4f} σ ({100 * err_e / mag_e:.1f} % of mean |exp|)")
    results["cycle_error"] = {"sim": err_s, "exp": err_e, "sim_rel": err_s / mag_s, "exp_rel": err_e / mag_e}
    print(f"(translating {len(sim) + len(exp)} stacks 3× took {t_translate_all:.1f} s)")

    # -- timing on a 10 × 128 × 128 stack --
    rng = np.random.default_rng(0)
    shape = (DEFAULT_GRID.n_heights, 128, 128)
    stack = AFMStack((rng.normal(size=shape) - 2.0).astype(np.float32),
                     DEFAULT_GRID.relative_heights(), DEFAULT_GRID.pixel_size_A, (0.0, 0.0))
    x = torch.from_numpy(np.ascontiguousarray(rng.normal(size=(1, *shape)).astype(np.float32)))
    gen = tr.forward_gen.eval()

    def plain():
        with torch.inference_mode():
            gen(x)

    t_plain = median_time(plain, args.repeats)
    t_fwd = median_time(lambda: translate(stack, "forward", 1.0, tr), args.repeats)
    t_bwd = median_time(lambda: translate(stack, "backward", 1.0, tr), args.repeats)
    prepared = prepare_translation(stack, "forward", tr)
    values = iter(np.linspace(0.05, 0.95, 10 * (args.repeats + 2)))
    t_at = median_time(lambda: prepared.at(float(next(values))), args.repeats)
    print()
    print(f"timing, 10 × 128 × 128, median of {args.repeats} (torch threads {torch.get_num_threads()}):")
    print(f"  plain generator forward pass:   {1e3 * t_plain:8.2f} ms  (1.00×)")
    print(f"  translate(..., 'forward'):      {1e3 * t_fwd:8.2f} ms  ({t_fwd / t_plain:.2f}×)  budget 100 ms")
    print(f"  translate(..., 'backward'):     {1e3 * t_bwd:8.2f} ms  ({t_bwd / t_plain:.2f}×)  budget 100 ms")
    print(f"  strength change (Translation.at): {1e3 * t_at:6.2f} ms  ({t_at / t_plain:.3f}×)  budget 16 ms")
    results["timing_ms"] = {"plain_forward_pass": 1e3 * t_plain, "translate_forward": 1e3 * t_fwd,
                            "translate_backward": 1e3 * t_bwd, "strength_change": 1e3 * t_at,
                            "threads": torch.get_num_threads()}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
