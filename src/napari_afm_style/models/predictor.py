"""Structure-discovery network: Δf stack → per-element, z-binned atom-presence maps.

The input is a canonical stack (``n_heights`` slices of
:data:`napari_afm_style.resample.DEFAULT_GRID`, each slice normalised to zero mean and
unit variance) read as ``n_heights`` image channels of a 2D fully convolutional U-Net.
The output holds, for every element and every depth bin, a full-resolution map of
atom-presence logits: channel ``(e, k)`` at pixel ``(y, x)`` says whether an atom of
element ``e`` sits at that lateral position at depth ``z_centres_A[k]`` below the closest
tip height. Depth bins are needed because bilayer ice has O atoms almost on top of each
other; a single 2D map per element would merge them.

The network is kept small (≈ 0.5 M parameters at the default width) so that inference on
a 10 × 128 × 128 stack takes a fraction of a second on a laptop CPU.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..resample import CanonicalGrid

__all__ = ["PredictorConfig", "AtomPredictor", "DEFAULT_MIN_SEPARATION_A", "widen"]

#: Smallest distance (lateral, vertical) in Å between two extracted atoms of an element.
#: O–O in water is ≥ 2.5 Å; H–H ≥ 1.5 Å (within a molecule), so half of that keeps real
#: neighbours apart while merging duplicate maxima of one blob.
DEFAULT_MIN_SEPARATION_A = {"O": (1.8, 1.8), "H": (1.0, 1.0)}


@dataclass(frozen=True)
class PredictorConfig:
    """Everything that defines a predictor: input grid, output bins, target shape, net.

    Parameters
    ----------
    elements : tuple of str
        Chemical symbols predicted, one group of output channels each.
    n_heights, height_step_A, pixel_size_A : int, float, float
        The canonical input grid (see :class:`napari_afm_style.resample.CanonicalGrid`).
    z_min_A, z_max_A, z_step_A : float
        Centres of the depth bins, in Å relative to the closest tip height (negative:
        below the tip). Atoms deeper than ``z_min_A - z_step_A / 2`` are invisible to the
        model (dropped from the targets).
    sigma_xy_A, sigma_z_A : float
        Widths of the Gaussian blobs that mark atoms in the target maps.
    min_separation_A : tuple of (float, float)
        Per element, the (lateral, vertical) distance in Å within which a weaker peak is
        suppressed by a stronger one during atom extraction.
    base_channels, depth : int
        U-Net width at full resolution and number of 2× downsamplings.
    norm : {"batch", "group", "none"}
        Normalisation layer after each convolution.
    default_threshold : float
        Peak probability above which an atom is reported when no threshold is given
        (training stores the one with the best validation O F1 here).
    """

    elements: tuple = ("O", "H")
    n_heights: int = 10
    height_step_A: float = 0.1
    pixel_size_A: float = 0.125
    z_min_A: float = -6.0
    z_max_A: float = -1.5
    z_step_A: float = 0.25
    sigma_xy_A: float = 0.25
    sigma_z_A: float = 0.25
    min_separation_A: tuple = field(default=None)
    base_channels: int = 16
    depth: int = 3
    norm: str = "batch"
    default_threshold: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "elements", tuple(str(e) for e in self.elements))
        if not self.elements:
            raise ValueError("a predictor needs at least one element")
        if self.min_separation_A is None:
            seps = tuple(DEFAULT_MIN_SEPARATION_A.get(e, (1.0, 1.0)) for e in self.elements)
        else:
            seps = tuple(tuple(float(v) for v in s) for s in self.min_separation_A)
        if len(seps) != len(self.elements) or any(len(s) != 2 for s in seps):
            raise ValueError("min_separation_A needs one (lateral, vertical) pair per element")
        object.__setattr__(self, "min_separation_A", seps)
        if self.z_step_A <= 0 or self.z_max_A < self.z_min_A:
            raise ValueError("depth bins need z_step_A > 0 and z_max_A >= z_min_A")
        if self.norm not in ("batch", "group", "none"):
            raise ValueError(f"norm must be 'batch', 'group' or 'none', got {self.norm!r}")
        if self.base_channels < 1 or self.depth < 0:
            raise ValueError("base_channels must be ≥ 1 and depth ≥ 0")

    # -- derived quantities ---------------------------------------------------------------
    @property
    def n_zbins(self) -> int:
        return int(round((self.z_max_A - self.z_min_A) / self.z_step_A)) + 1

    @property
    def z_centres_A(self) -> np.ndarray:
        """Depth-bin centres (Å, relative to the closest tip height), deepest first."""
        return self.z_min_A + self.z_step_A * np.arange(self.n_zbins)

    @property
    def visible_z_range_A(self) -> tuple[float, float]:
        """Relative depths covered by the bins (edges, Å)."""
        return (self.z_min_A - 0.5 * self.z_step_A, self.z_max_A + 0.5 * self.z_step_A)

    @property
    def n_elements(self) -> int:
        return len(self.elements)

    @property
    def out_channels(self) -> int:
        return self.n_elements * self.n_zbins

    @property
    def grid(self) -> CanonicalGrid:
        return CanonicalGrid(n_heights=self.n_heights, height_step_A=self.height_step_A,
                             pixel_size_A=self.pixel_size_A)

    # -- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["elements"] = list(self.elements)
        d["min_separation_A"] = [list(s) for s in self.min_separation_A]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PredictorConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown predictor config fields {sorted(unknown)}; "
                             "the file was written by a newer version of napari-afm-style?")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str):
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias), _norm(norm, cout), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias), _norm(norm, cout), nn.LeakyReLU(0.1, inplace=True),
        )


class AtomPredictor(nn.Module):
    """U-Net: (B, n_heights, H, W) normalised slices → (B, n_elements, n_zbins, H, W) logits.

    Any H, W work: the input is padded (edge values) to a multiple of ``2**depth`` and the
    output cropped back, so predictions align pixel by pixel with the input.

    Examples
    --------
    >>> net = AtomPredictor(PredictorConfig(base_channels=4, depth=2))
    >>> net(torch.zeros(1, 10, 37, 50)).shape
    torch.Size([1, 2, 19, 37, 50])
    """

    def __init__(self, config: PredictorConfig | None = None):
        super().__init__()
        self.config = config or PredictorConfig()
        c = self.config
        widths = [c.base_channels * 2**i for i in range(c.depth + 1)]
        self.inc = _DoubleConv(c.n_heights, widths[0], c.norm)
        self.down = nn.ModuleList(_DoubleConv(widths[i], widths[i + 1], c.norm) for i in range(c.depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(c.depth))
        )
        self.dec = nn.ModuleList(_DoubleConv(2 * widths[i], widths[i], c.norm) for i in reversed(range(c.depth)))
        self.head = nn.Conv2d(widths[0], c.out_channels, 1)
        # Start from a low prior probability (≈ 1 %) of atoms: most voxels are empty, so
        # this avoids a large early loss spike and an untrained net reports no atoms.
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, math.log(0.01 / 0.99))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.n_heights:
            raise ValueError(
                f"expected input of shape (batch, {self.config.n_heights}, ny, nx); got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        m = 2**self.config.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = []
        y = self.inc(x)
        for block in self.down:
            skips.append(y)
            y = block(F.max_pool2d(y, 2))
        for up, dec in zip(self.up, self.dec):
            y = dec(torch.cat([skips.pop(), up(y)], dim=1))
        y = self.head(y)[..., :h, :w]
        c = self.config
        return y.reshape(y.shape[0], c.n_elements, c.n_zbins, h, w)


def widen(net: AtomPredictor, base_channels: int, noise: float = 1e-3, seed: int = 0) -> AtomPredictor:
    """A wider copy of ``net`` that computes the same function (Net2WiderNet).

    Every new channel of a layer copies a randomly chosen old channel (the old channels keep
    their place), and the weights that read a copied channel are shared among its copies, so
    the wider network's output equals the narrow one's; training then goes on from there
    instead of from scratch. ``noise`` (relative to each tensor's standard deviation) breaks
    the symmetry between copies, which would otherwise get identical gradients forever.

    Parameters
    ----------
    net : AtomPredictor
        The trained network (batch or no normalisation; group norm is not channel-separable).
    base_channels : int
        New width of the first level (≥ the old one); deeper levels double it as usual.
    noise : float
        Relative σ of the symmetry-breaking noise (0: the exact same function).
    seed : int
        Seed of the channel choice and the noise.

    Examples
    --------
    >>> small = AtomPredictor(PredictorConfig(base_channels=4, depth=2)).eval()
    >>> big = widen(small, 6, noise=0.0).eval()
    >>> x = torch.randn(1, 10, 32, 32)
    >>> bool(torch.allclose(small(x), big(x), atol=1e-5))
    True
    """
    old_cfg = net.config
    if old_cfg.norm == "group":
        raise ValueError("widen() needs batch or no normalisation (group norm mixes channels)")
    if base_channels < old_cfg.base_channels:
        raise ValueError(f"base_channels must be ≥ the network's {old_cfg.base_channels}, got {base_channels}")
    new_cfg = PredictorConfig.from_dict({**old_cfg.to_dict(), "base_channels": int(base_channels)})
    wide = AtomPredictor(new_cfg)
    gen = torch.Generator().manual_seed(int(seed))

    def mapping(n_old: int, n_new: int) -> torch.Tensor:
        extra = torch.randint(0, n_old, (n_new - n_old,), generator=gen)
        return torch.cat([torch.arange(n_old), extra])

    def fan_in_share(m: torch.Tensor) -> torch.Tensor:
        """1 / (number of copies) of each new input channel's source."""
        counts = torch.bincount(m)
        return 1.0 / counts[m].to(torch.float32)

    def jitter(t: torch.Tensor) -> torch.Tensor:
        if noise <= 0 or t.numel() < 2:
            return t
        return t + noise * t.std() * torch.randn(t.shape, generator=gen)

    def conv(old: nn.Conv2d, new: nn.Conv2d, m_in: torch.Tensor, m_out: torch.Tensor) -> None:
        w = old.weight.detach()[m_out][:, m_in] * fan_in_share(m_in)[None, :, None, None]
        new.weight.data.copy_(jitter(w))
        if old.bias is not None:
            new.bias.data.copy_(old.bias.detach()[m_out])

    def norm(old: nn.Module, new: nn.Module, m: torch.Tensor) -> None:
        if isinstance(old, nn.BatchNorm2d):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(new, name).data.copy_(getattr(old, name).detach()[m])
            new.num_batches_tracked.data.copy_(old.num_batches_tracked)

    def double_conv(old: _DoubleConv, new: _DoubleConv, m_in: torch.Tensor, n_old: int, n_new: int) -> torch.Tensor:
        m1 = mapping(n_old, n_new)
        conv(old[0], new[0], m_in, m1)
        norm(old[1], new[1], m1)
        m2 = mapping(n_old, n_new)
        conv(old[3], new[3], m1, m2)
        norm(old[4], new[4], m2)
        return m2

    depth = old_cfg.depth
    w_old = [old_cfg.base_channels * 2**i for i in range(depth + 1)]
    w_new = [new_cfg.base_channels * 2**i for i in range(depth + 1)]
    with torch.no_grad():
        m = double_conv(net.inc, wide.inc, torch.arange(old_cfg.n_heights), w_old[0], w_new[0])
        skips = []
        for i in range(depth):
            skips.append(m)
            m = double_conv(net.down[i], wide.down[i], m, w_old[i + 1], w_new[i + 1])
        for j, i in enumerate(reversed(range(depth))):
            up_old, up_new = net.up[j], wide.up[j]
            m_up = mapping(w_old[i], w_new[i])
            # ConvTranspose2d weights are (in, out, kh, kw)
            w = up_old.weight.detach()[m][:, m_up] * fan_in_share(m)[:, None, None, None]
            up_new.weight.data.copy_(jitter(w))
            up_new.bias.data.copy_(up_old.bias.detach()[m_up])
            m_cat = torch.cat([skips.pop(), m_up + w_old[i]])
            m = double_conv(net.dec[j], wide.dec[j], m_cat, w_old[i], w_new[i])
        conv(net.head, wide.head, m, torch.arange(old_cfg.out_channels))
    return wide.to(next(net.parameters()).device)
