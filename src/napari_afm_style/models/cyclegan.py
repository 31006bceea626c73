"""CycleGAN for Δf stacks (Zhu, Park, Isola & Efros 2017), written for this project.

Two residual generators translate between the simulated domain (ppafm) and the
experimental domain; two PatchGAN discriminators judge each domain. The losses are the
paper's: least-squares adversarial loss, L1 cycle consistency and L1 identity, with a
history pool of 50 generated images for the discriminators.

Inputs are whole canonical stacks: ``n_heights`` per-slice normalised Δf slices as
channels (see :mod:`napari_afm_style.resample`), so the generators can learn the
inter-height part of the experimental style (lateral misregistration between heights,
noise that changes with height, tip changes during a stack) that a per-slice model
cannot see.

The generators predict a RESIDUAL: ``G(x) = x + α · r(x)``. Training uses α = 1; at
inference α ∈ [0, 1] is the translation strength. Because α only scales the cached
residual, a strength slider needs no new network pass, α = 0 is exactly the input, and
α walks the straight line in image space from the input to its full translation.

Everything here is torch only (no file I/O, no napari).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._plain import rng_state_from_plain, rng_state_to_plain
from . import weights

__all__ = [
    "CycleGANConfig",
    "ResidualGenerator",
    "PatchDiscriminator",
    "CycleGAN",
    "ImagePool",
    "lsgan_d_loss",
    "lsgan_g_loss",
    "cycle_loss",
    "identity_loss",
    "init_weights",
    "TRANSLATOR_FORMAT",
    "CHECKPOINT_FORMAT",
]

#: ``format`` field of an exported translator file (generators only, for inference).
TRANSLATOR_FORMAT = weights.TRANSLATOR_FORMAT
#: ``format`` field of a training checkpoint (all four networks, optimisers, RNG states).
CHECKPOINT_FORMAT = weights.TRANSLATOR_CHECKPOINT


@dataclass(frozen=True)
class CycleGANConfig:
    """Architecture of the translator (stored in every checkpoint and exported file).

    Attributes
    ----------
    n_channels : int
        Slices per canonical stack (input and output channels).
    gen_channels : tuple of int
        Generator widths at full, 1/2 and 1/4 resolution. (16, 32, 64) keeps a
        training step ≈ 3× cheaper than (32, 64, 96) on a CPU; the style residual
        (noise, stripes, blur, misregistration) is local texture and needs little width.
    n_res_blocks : int
        Residual blocks at 1/4 resolution (their receptive field, ~80 px = 10 Å,
        covers a water hexagon and its neighbours).
    disc_channels : tuple of int
        Discriminator widths; three stride-2 layers give ~46 px (5.8 Å) patches.
    disc_spectral_norm : bool
        Spectral normalisation of the discriminator convolutions (Miyato et al. 2018)
        instead of instance norm: bounds how sharply a discriminator can react to tiny
        differences, e.g. the last traces of noise in a translated stack compared with
        the perfectly clean simulations. In 800-step development runs (λ_cycle 1) it
        left 23 % instead of 44 % of the held-out MMD gap after forward translation and
        halved the content cycle error; FID with a briefly trained feature net was
        mixed (docs/style_translation.md). ``False`` gives Zhu et al.'s instance norm.
    """

    n_channels: int = 10
    gen_channels: tuple[int, int, int] = (16, 32, 64)
    n_res_blocks: int = 4
    disc_channels: tuple[int, int, int] = (32, 64, 128)
    disc_spectral_norm: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["gen_channels"] = list(self.gen_channels)
        d["disc_channels"] = list(self.disc_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CycleGANConfig:
        d = dict(d)
        d["gen_channels"] = tuple(int(c) for c in d["gen_channels"])
        d["disc_channels"] = tuple(int(c) for c in d["disc_channels"])
        d.setdefault("disc_spectral_norm", False)  # files from before the option had none
        return cls(**d)


def _conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    # reflect padding: Δf images are not periodic and zero padding would paint a frame
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, padding_mode="reflect"),
        nn.InstanceNorm2d(c_out, affine=True),
        nn.LeakyReLU(0.2, inplace=True),
    )


class _ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1, padding_mode="reflect"),
            nn.InstanceNorm2d(c, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, c, 3, 1, 1, padding_mode="reflect"),
            nn.InstanceNorm2d(c, affine=True),
        )

    def forward(self, x):
        return x + self.body(x)


class ResidualGenerator(nn.Module):
    """Small U-Net that predicts a style residual ``r(x)`` for a normalised stack.

    ``forward(x)`` returns the residual; :meth:`translate` returns ``x + α r(x)``.
    Any image size works: the input is reflect-padded to a multiple of 4 and the
    residual cropped back.
    """

    def __init__(self, config: CycleGANConfig = CycleGANConfig()):
        super().__init__()
        c0, c1, c2 = config.gen_channels
        n = config.n_channels
        self.config = config
        self.enc0 = _conv_block(n, c0)
        self.enc1 = _conv_block(c0, c1, stride=2)
        self.enc2 = _conv_block(c1, c2, stride=2)
        self.res = nn.Sequential(*[_ResBlock(c2) for _ in range(config.n_res_blocks)])
        # nearest upsampling + conv instead of transposed convs: no checkerboard pattern,
        # which would otherwise look exactly like a (fake) atomic-scale texture
        self.dec1 = _conv_block(c2 + c1, c1)
        self.dec0 = _conv_block(c1 + c0, c0)
        self.out = nn.Conv2d(c0, n, 3, 1, 1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ny, nx = x.shape[-2:]
        py, px = (-ny) % 4, (-nx) % 4
        if py or px:
            mode = "reflect" if min(ny, nx) > max(py, px) else "replicate"
            x = F.pad(x, (0, px, 0, py), mode=mode)
        a = self.enc0(x)
        b = self.enc1(a)
        c = self.res(self.enc2(b))
        c = F.interpolate(c, size=b.shape[-2:], mode="nearest")
        b = self.dec1(torch.cat([c, b], dim=1))
        b = F.interpolate(b, size=a.shape[-2:], mode="nearest")
        a = self.dec0(torch.cat([b, a], dim=1))
        return self.out(a)[..., :ny, :nx]

    def translate(self, x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """``x + strength · r(x)``: the translated stack."""
        return x + strength * self(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: one real/fake score per overlapping ~46-px patch (least-squares target)."""

    def __init__(self, config: CycleGANConfig = CycleGANConfig()):
        super().__init__()
        c0, c1, c2 = config.disc_channels
        sn = config.disc_spectral_norm

        def conv(ci, co, k, st, pad):
            c = nn.Conv2d(ci, co, k, st, pad)
            return nn.utils.parametrizations.spectral_norm(c) if sn else c

        def norm(c):
            return nn.Identity() if sn else nn.InstanceNorm2d(c, affine=True)

        self.net = nn.Sequential(
            conv(config.n_channels, c0, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            conv(c0, c1, 4, 2, 1),
            norm(c1),
            nn.LeakyReLU(0.2, inplace=True),
            conv(c1, c2, 4, 2, 1),
            norm(c2),
            nn.LeakyReLU(0.2, inplace=True),
            conv(c2, c2, 3, 1, 1),
            norm(c2),
            nn.LeakyReLU(0.2, inplace=True),
            conv(c2, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Zhu et al.'s initialisation: conv weights N(0, 0.02), biases 0, norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if nn.utils.parametrize.is_parametrized(m, "weight"):  # spectral norm: init the raw weight
                nn.init.normal_(m.parametrizations.weight.original, 0.0, std)
            else:
                nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class CycleGAN(nn.Module):
    """The four networks: ``forward_gen`` (G, sim→exp), ``backward_gen`` (F, exp→sim),
    ``disc_exp`` (judges experimental stacks) and ``disc_sim`` (judges simulated ones)."""

    def __init__(self, config: CycleGANConfig = CycleGANConfig(), seed: int | None = 0):
        super().__init__()
        self.config = config
        # seeded in a forked RNG so building a model never disturbs the caller's stream
        ctx = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
        with ctx:
            if seed is not None:
                torch.manual_seed(seed)
            self.forward_gen = ResidualGenerator(config)
            self.backward_gen = ResidualGenerator(config)
            self.disc_exp = PatchDiscriminator(config)
            self.disc_sim = PatchDiscriminator(config)
            init_weights(self)

    def generator(self, direction: str) -> ResidualGenerator:
        """``"forward"`` (sim→exp) or ``"backward"`` (exp→sim) generator."""
        if direction == "forward":
            return self.forward_gen
        if direction == "backward":
            return self.backward_gen
        raise ValueError(f"direction must be 'forward' (sim→exp) or 'backward' (exp→sim), got {direction!r}")


# -- losses -------------------------------------------------------------------------------

def lsgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss ``½[(D(real) − 1)² + D(fake)²]`` (patch means)."""
    return 0.5 * (torch.mean((d_real - 1.0) ** 2) + torch.mean(d_fake ** 2))


def lsgan_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss ``(D(G(x)) − 1)²`` (patch mean)."""
    return torch.mean((d_fake - 1.0) ** 2)


def cycle_loss(x: torch.Tensor, x_reconstructed: torch.Tensor) -> torch.Tensor:
    """L1 cycle consistency ``|F(G(x)) − x|`` (mean over pixels, slices and batch)."""
    return torch.mean(torch.abs(x_reconstructed - x))


def gaussian_lowpass(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Lateral Gaussian low-pass of ``(B, C, ny, nx)`` images, each slice on its own
    (replicate padding, kernel truncated at 3σ); ``sigma_px <= 0`` returns ``x``."""
    if sigma_px <= 0:
        return x
    radius = max(1, int(math.ceil(3.0 * sigma_px)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma_px) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="replicate")
    y = torch.nn.functional.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return torch.nn.functional.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def identity_loss(y: torch.Tensor, g_of_y: torch.Tensor) -> torch.Tensor:
    """L1 identity ``|G(y) − y|``: a target-domain stack should pass unchanged."""
    return torch.mean(torch.abs(g_of_y - y))


# -- image pool ---------------------------------------------------------------------------

@dataclass
class ImagePool:
    """History of generated images for the discriminators (Shrivastava et al. 2017).

    Until the pool is full every image is stored and returned; afterwards each image is,
    with probability ½, swapped for a random stored one (which it replaces). Stored
    images are kept on the CPU; the RNG is numpy's, seeded, so a run is reproducible
    and the pool survives a checkpoint (:meth:`state_dict`).
    """

    size: int = 50
    seed: int = 0
    images: list = field(default_factory=list)

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return batch
        out = []
        for img in batch.detach():
            if len(self.images) < self.size:
                self.images.append(img.cpu().clone())
                out.append(img)
            elif self._rng.random() < 0.5:
                j = int(self._rng.integers(len(self.images)))
                old = self.images[j]
                if old.shape != img.shape:  # a pool image from another crop size
                    out.append(img)
                    continue
                self.images[j] = img.cpu().clone()
                out.append(old.to(img.device))
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [t.clone() for t in self.images],
                "rng": rng_state_to_plain(self._rng)}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.images = [t.clone() for t in state["images"]]
        self._rng.bit_generator.state = rng_state_from_plain(state["rng"])
