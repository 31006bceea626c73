"""Training of the self-supervised feature network (:mod:`napari_afm_style.models.feature_net`).

The pretext task: a 64 × 64 crop of a canonical stack of either domain (50/50 in every
batch, no domain label) is rotated by k·90° and, with probability ½, its slices are
reversed; the network predicts the 8 combinations. Command line (no ``afm-style``
subcommand; a one-off step before FID)::

    python -m napari_afm_style.training.feature_net --sim SIM_DIR --exp EXP_DIR \\
        --out src/napari_afm_style/models/feature_net.pt
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .._device import choose_threads, resolve_device
from ..models.feature_net import FeatureNet, FeatureNetConfig, save_feature_net
from .domains import load_domain, sample_batch, split_holdout

__all__ = ["pretext_batch", "train_feature_net", "main"]


# -- pretext task --------------------------------------------------------------------------

def pretext_batch(crops: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a random (rotation, height order) to each crop; labels ``k + 4 · reversed``."""
    xs, labels = [], []
    for c in crops:
        k = int(rng.integers(4))
        rev = int(rng.integers(2))
        if rev:
            c = torch.flip(c, dims=(0,))
        xs.append(torch.rot90(c, k, dims=(1, 2)))
        labels.append(k + 4 * rev)
    return torch.stack(xs), torch.tensor(labels, dtype=torch.long)


def train_feature_net(sim, exp, steps: int = 3000, batch_size: int = 32, lr: float = 1e-3,
                      seed: int = 0, device: str = "cpu", holdout_fraction: float = 0.1,
                      config: FeatureNetConfig = FeatureNetConfig(), progress: bool = True,
                      max_stacks: int | None = 2000) -> FeatureNet:
    """Train the feature network on the (rotation × height order) pretext task.

    Parameters
    ----------
    sim, exp : str or Path or list of ndarray
        Simulated / experimental stacks: folders (anything
        :func:`napari_afm_style.train_translator.load_domain` reads) or lists of
        normalised canonical arrays ``(n_heights, ny, nx)``.
    steps, batch_size, lr, seed, device
        Optimisation (Adam, cosine decay). Each batch is half simulated, half experimental.
    holdout_fraction : float
        Stacks of each domain kept out of training to report pretext accuracy per domain
        (stored in ``net.info`` and the model card).

    Returns
    -------
    FeatureNet
        In eval mode, on the CPU, with ``info`` describing the run.
    """
    t0 = time.time()
    sources = {}
    domains = {}
    for name, src in (("sim", sim), ("exp", exp)):
        if isinstance(src, (str, Path)):
            dom = load_domain(src, max_stacks=max_stacks, seed=seed, min_size=config.tile)
            domains[name], sources[name] = dom.arrays, str(src)
        else:
            domains[name], sources[name] = [np.asarray(a, dtype=np.float32) for a in src], "arrays"
        if len(domains[name]) < 2:
            raise ValueError(f"the {name} set needs at least 2 stacks, got {len(domains[name])}")
        small = [a.shape for a in domains[name] if min(a.shape[1:]) < config.tile]
        if small:
            raise ValueError(f"{len(small)} {name} stack(s) are smaller than the {config.tile}-px crop")
    train, held = {}, {}
    for name, arrs in domains.items():
        tr, ho = split_holdout(len(arrs), holdout_fraction, seed)
        train[name] = [arrs[i] for i in tr]
        held[name] = [arrs[i] for i in ho] or train[name][:1]
    dev = torch.device(resolve_device(device))
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FeatureNet(config).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    half = max(batch_size // 2, 1)
    bar = _progress(steps, progress, "feature net")
    losses = []
    net.train()
    for step in range(steps):
        crops = torch.cat([sample_batch(train["sim"], half, config.tile, rng, rot90=False),
                           sample_batch(train["exp"], batch_size - half, config.tile, rng, rot90=False)])
        x, y = pretext_batch(crops, rng)
        loss = F.cross_entropy(net(x.to(dev)), y.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss))
        if bar is not None:
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    if bar is not None:
        bar.close()
    net = net.cpu().eval()
    eval_rng = np.random.default_rng(seed + 1)
    acc = {}
    with torch.no_grad():
        for name in ("sim", "exp"):
            crops = sample_batch(held[name], 256, config.tile, eval_rng, rot90=False)
            x, y = pretext_batch(crops, eval_rng)
            acc[name] = float((net(x).argmax(1) == y).float().mean())
    net.info = {
        "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "n_train": {k: len(v) for k, v in train.items()},
        "n_heldout": {k: len(v) for k, v in held.items()},
        "sources": sources,
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "heldout_pretext_accuracy": acc,
        "train_seconds": round(time.time() - t0, 1),
        "date": _dt.date.today().isoformat(),
    }
    return net


def _progress(total, enabled, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr)


# -- command line -------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m napari_afm_style.training.feature_net",
        description="Train the self-supervised feature network used by metrics.fid.",
    )
    p.add_argument("--sim", required=True, help="simulated stacks: shard folder(s) or folder of stack files")
    p.add_argument("--exp", required=True, help="experimental stacks: folder of stack files")
    p.add_argument("--out", required=True, help="output weights (.pt); a .md model card is written beside it")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    p.add_argument("--max-stacks", type=int, default=2000, help="at most this many stacks per domain")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: 1 if the machine is already busy)")
    args = p.parse_args(argv)
    torch.set_num_threads(choose_threads(args.threads))
    net = train_feature_net(args.sim, args.exp, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            seed=args.seed, device=args.device, max_stacks=args.max_stacks)
    out = save_feature_net(net, args.out)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    print(f"held-out pretext accuracy: {net.info['heldout_pretext_accuracy']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
