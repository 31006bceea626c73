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

This module holds the network, its weights file and its loader. Training (the pretext
task, the optimisation and the command) lives in :mod:`napari_afm_style.training.feature_net`::

    python -m napari_afm_style.training.feature_net --sim SIM_DIR --exp EXP_DIR \\
        --out src/napari_afm_style/models/feature_net.pt

(``python -m napari_afm_style.models.feature_net`` still runs it) writes the weights
(≈ 0.6 MB) and a model card ``feature_net.md`` beside them.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import asdict, dataclass
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._plain import plain
from . import weights

__all__ = [
    "FeatureNetConfig",
    "FeatureNet",
    "FeatureNetNotAvailable",
    "save_feature_net",
    "load_feature_net",
    "default_feature_net_path",
]

FORMAT = weights.FEATURE_NET_FORMAT
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
    weights.save(payload, path)
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


def load_feature_net(path=None) -> FeatureNet:
    """Load feature-network weights (default: the shipped ``models/feature_net.pt``)."""
    if path is None:
        res = default_feature_net_path()
        if not res.is_file():
            raise FeatureNetNotAvailable(
                "no feature-network weights are shipped yet (napari_afm_style/models/"
                f"{DEFAULT_NAME}); train them with `python -m napari_afm_style.training.feature_net "
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
    return weights.CACHE.get_or_build(weights.CACHE.key(path, "feature_net"), lambda: _read(path))


def _read(path: Path) -> FeatureNet:
    payload = weights.load(path)
    weights.require_format(payload, FORMAT, f"{path}: not a feature-network file of this project (format {FORMAT})")
    net = FeatureNet(FeatureNetConfig.from_dict(payload["config"]))
    net.load_state_dict(payload["state_dict"])
    net.info = dict(payload.get("info", {}))
    net.info["path"] = str(path)
    net.eval()
    return net


if __name__ == "__main__":  # pragma: no cover - the training command moved with the training code
    from napari_afm_style.training.feature_net import main

    sys.exit(main())
