"""Self-supervised feature network for FID between simulated and experimental Δf stacks.

FID needs features that respond to what a stack looks like without being trained to
tell the two domains apart (a domain classifier would call every translation "still
simulated" or exaggerate tiny cues). So the network learns a pretext task on BOTH
domains, balanced 50/50 in every batch, with no domain label:

* rotation: a 64 × 64 crop of a canonical stack is rotated by k·90°, k ∈ {0,1,2,3};
* height order: the slices are, with probability ½, given farthest-first (as always) or
  closest-first.

The network predicts the 8 combinations. Solving it needs the lateral shape of the
contrast (rotation: water hexagons are not 4-fold symmetric; scan lines run along x)
and how contrast changes with height (the repulsive sharpening towards the closest
slice) — the physics-laden content that style translation must keep or restyle.
Features are the 64 channel means of the last convolution.

Command line (no ``afm-style`` subcommand; it is a one-off step before FID)::

    python -m napari_afm_style.models.feature_net --sim SIM_DIR --exp EXP_DIR \\
        --out src/napari_afm_style/models/feature_net.pt

writes the weights (≈ 0.6 MB) and a model card ``feature_net.md`` beside them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import sys
import time
from dataclasses import asdict, dataclass
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._plain import plain

__all__ = [
    "FeatureNetConfig",
    "FeatureNet",
    "FeatureNetNotAvailable",
    "train_feature_net",
    "save_feature_net",
    "load_feature_net",
    "default_feature_net_path",
    "pretext_batch",
    "main",
]

FORMAT = "napari_afm_style.feature_net/1"
DEFAULT_NAME = "feature_net.pt"


class FeatureNetNotAvailable(FileNotFoundError):
    """No feature-network weights were found (none shipped, wrong path)."""


@dataclass(frozen=True)
class FeatureNetConfig:
    n_channels: int = 10
    widths: tuple[int, int, int, int] = (32, 48, 64, 96)
    n_features: int = 64
    tile: int = 64

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FeatureNetConfig:
        d = dict(d)
        d["widths"] = tuple(int(w) for w in d["widths"])
        return cls(**d)


def _block(c_in, c_out, stride):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.GroupNorm(8, c_out), nn.ReLU(inplace=True))


class FeatureNet(nn.Module):
    """Small CNN: four conv stages (1, ½, ¼, ⅛ resolution) → 64 features (channel means)
    → linear pretext head (8 classes)."""

    def __init__(self, config: FeatureNetConfig = FeatureNetConfig()):
        super().__init__()
        self.config = config
        w = config.widths
        self.body = nn.Sequential(
            _block(config.n_channels, w[0], 1),
            _block(w[0], w[1], 2),
            _block(w[1], w[2], 2),
            _block(w[2], w[3], 2),
            nn.Conv2d(w[3], config.n_features, 3, 1, 1),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(config.n_features, 8)
        self.info: dict = {}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_channels, ny, nx) → (B, n_features)."""
        return self.body(x).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    @torch.no_grad()
    def features(self, arrays: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Feature rows of normalised canonical stacks: one per ``tile`` × ``tile`` tile
        (non-overlapping where the size allows; ``tile_slices`` layout), in order."""
        from ..resample import tile_slices

        t = self.config.tile
        tiles = []
        for a in arrays:
            a = np.asarray(a, dtype=np.float32)
            if a.shape[0] != self.config.n_channels:
                raise ValueError(
                    f"the feature network takes {self.config.n_channels} slices, got {a.shape[0]}; "
                    "adapt the stack with resample.to_canonical first"
                )
            for y0, y1 in tile_slices(a.shape[1], t, 0):
                for x0, x1 in tile_slices(a.shape[2], t, 0):
                    tiles.append(a[:, y0:y1, x0:x1])
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = []
        try:
            # tiles can differ in size only if images are smaller than a tile
            groups: dict = {}
            for i, tl in enumerate(tiles):
                groups.setdefault(tl.shape, []).append(i)
            feats = [None] * len(tiles)
            for idx in groups.values():
                for s in range(0, len(idx), batch_size):
                    chunk = idx[s:s + batch_size]
                    x = torch.from_numpy(np.stack([tiles[i] for i in chunk])).to(device)
                    emb = self.embed(x).cpu().numpy()
                    for i, e in zip(chunk, emb):
                        feats[i] = e
            out = np.stack(feats) if feats else np.zeros((0, self.config.n_features))
        finally:
            self.train(was_training)
        return out.astype(np.float64)


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
    from ..train_translator import load_domain, sample_batch, split_holdout

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
    dev = _device(device)
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


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA GPU; use cpu or auto")
    return torch.device(device)


def _progress(total, enabled, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr)


# -- files -------------------------------------------------------------------------------

def save_feature_net(net: FeatureNet, path) -> Path:
    """Write weights (``path``, atomically) and a model card (``path`` with ``.md``)."""
    from ..io._atomic import atomic_path

    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"feature-network weights need a .pt name, got {path.name!r}")
    payload = {"format": FORMAT, "config": net.config.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
               "info": plain(net.info)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    info = net.info
    n_params = sum(p.numel() for p in net.parameters())
    card = [
        "# Feature network for FID (napari-afm-style)",
        "",
        f"- file: `{path.name}` ({path.stat().st_size / 1e6:.2f} MB, sha256 `{sha[:16]}…`)",
        f"- architecture: 4-stage CNN, widths {list(net.config.widths)}, "
        f"{net.config.n_features} features (channel means), {n_params} parameters",
        "- task: self-supervised (rotation k·90° × height order), both domains 50/50, no domain labels",
        f"- data: simulated `{info.get('sources', {}).get('sim')}` ({info.get('n_train', {}).get('sim')} train / "
        f"{info.get('n_heldout', {}).get('sim')} held out), experimental `{info.get('sources', {}).get('exp')}` "
        f"({info.get('n_train', {}).get('exp')} / {info.get('n_heldout', {}).get('exp')})",
        f"- training: {info.get('steps')} steps, batch {info.get('batch_size')}, lr {info.get('lr')}, "
        f"seed {info.get('seed')}, {info.get('train_seconds')} s, {info.get('date')}",
        f"- final training loss: {info.get('final_loss')}",
        f"- held-out pretext accuracy (chance 0.125): {info.get('heldout_pretext_accuracy')}",
        "",
        "Used by `napari_afm_style.metrics.fid` (features of 64 × 64 tiles of canonical, "
        "per-slice normalised stacks). FID values are only comparable between runs that "
        "use the same weights (same sha256).",
        "",
    ]
    with atomic_path(path.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(card), encoding="utf-8")
    return path


def default_feature_net_path():
    """The shipped weights' location (may not exist yet)."""
    return files("napari_afm_style").joinpath("models", DEFAULT_NAME)


_CACHE: dict = {}


def load_feature_net(path=None) -> FeatureNet:
    """Load feature-network weights (default: the shipped ``models/feature_net.pt``)."""
    if path is None:
        res = default_feature_net_path()
        if not res.is_file():
            raise FeatureNetNotAvailable(
                "no feature-network weights are shipped yet (napari_afm_style/models/"
                f"{DEFAULT_NAME}); train them with `python -m napari_afm_style.models.feature_net "
                "--sim SIM_DIR --exp EXP_DIR --out src/napari_afm_style/models/feature_net.pt`, or "
                "pass model=PATH, or give fid() a features= callable"
            )
        with as_file(res) as p:
            return _load(Path(p))
    path = Path(path)
    if not path.is_file():
        raise FeatureNetNotAvailable(f"{path}: no such feature-network weights file")
    return _load(path)


def _load(path: Path) -> FeatureNet:
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key in _CACHE:
        return _CACHE[key]
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a feature-network file of this project (format {FORMAT})")
    net = FeatureNet(FeatureNetConfig.from_dict(payload["config"]))
    net.load_state_dict(payload["state_dict"])
    net.info = dict(payload.get("info", {}))
    net.info["path"] = str(path)
    net.eval()
    _CACHE[key] = net
    return net


# -- command line -------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m napari_afm_style.models.feature_net",
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
    from ..train_translator import _choose_threads

    torch.set_num_threads(_choose_threads(args.threads))
    net = train_feature_net(args.sim, args.exp, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            seed=args.seed, device=args.device, max_stacks=args.max_stacks)
    out = save_feature_net(net, args.out)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    print(f"held-out pretext accuracy: {net.info['heldout_pretext_accuracy']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
