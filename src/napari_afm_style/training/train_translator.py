"""Unpaired training of the CycleGAN style translator (``afm-style train-translator``).

Data: a folder of simulated stacks (``afm-style generate`` shard folders, or stack files)
and a folder of experimental stacks (any format :func:`napari_afm_style.io.read_stack`
reads). Every stack goes through :func:`~napari_afm_style.resample.to_canonical` and
per-slice normalisation, exactly as at inference. A seeded fraction of each domain is
held out: it is never trained on and is used to choose the translator's parameters.

Choosing the parameters (the poster's "finding the right parameter for style
translation takes time"): the command

1. trains a short run for every (λ_cycle, λ_identity) of a small grid and keeps the one
   that closes the held-out domain gap best, among those that still reconstruct the
   held-out stacks (content cycle error below ``--max-cycle-error``);
2. continues that run to the full length;
3. sweeps the strength α ∈ [0, 1] on the held-out sets and records, per direction, the
   smallest α whose domain distance is within 2 % (of the closable gap) of the best
   one: ``recommended_strength`` in the checkpoint, exported file and model card.

The domain distance is FID on the project's feature network when its weights exist
(``--feature-net`` or shipped), otherwise MMD on the weight-free style descriptor of
:mod:`napari_afm_style.metrics`; the report says which.

The data (:mod:`.domains`) and the held-out choices (:mod:`.translator_selection`) live
in their own modules; this one holds the optimisation, the checkpoints, the export and
the command.

Checkpoints (``OUT/last.pt``, and ``OUT/search/*.pt`` for the grid) are written
atomically every ``--checkpoint-every`` steps, on Ctrl-C and when ``--max-minutes`` runs
out; ``--resume`` continues exactly (weights, optimisers, image pools, RNG states).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..models.cyclegan import (
    CHECKPOINT_FORMAT,
    TRANSLATOR_FORMAT,
    CycleGAN,
    CycleGANConfig,
    ImagePool,
    cycle_loss,
    gaussian_lowpass,
    identity_loss,
    lsgan_d_loss,
    lsgan_g_loss,
)
from .._device import choose_threads, resolve_device
from .._plain import rng_state_from_plain, rng_state_to_plain
from ..models import weights
from ..resample import DEFAULT_GRID
from .domains import Domain, load_domain, sample_batch, split_holdout
from .translator_selection import (
    DomainDistance,
    choose_metric,
    evaluate_translator,
    grid_point_score,
)

__all__ = [
    "TrainConfig",
    "Domain",
    "load_domain",
    "split_holdout",
    "sample_batch",
    "CycleGANTrainer",
    "DomainDistance",
    "evaluate_translator",
    "save_checkpoint",
    "load_checkpoint",
    "export_translator",
    "configure_train_translator_parser",
    "run_train_translator",
]

log = logging.getLogger(__name__)


# -- training ----------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """Optimisation settings of one run (stored in the checkpoint).

    Loss: ``L_G = adv(G) + adv(F) + λ_cycle (cyc_sim + cyc_exp) + λ_identity (id_sim + id_exp)``
    with absolute weights. Zhu et al. use λ_cycle = 10, λ_identity = 5; here that froze
    both generators at the identity in development runs: the exp → sim → exp cycle
    cannot restore the experimental noise (≈ 0.11 σ mean |high-pass|), so at λ = 10
    removing it costs more than fooling the discriminator gains. The default grid of
    the command is λ_cycle ∈ {0.5, 1, 3}, λ_identity = ½ λ_cycle.
    The learning rate is constant, then decays linearly to 0 from ``decay_from`` × steps.

    ``exp_cycle_sigma_px`` > 0 compares the exp → sim → exp cycle after a lateral Gaussian
    low-pass of that σ (canonical pixels): experimental pixel noise is random, so no
    forward generator can restore it, and a full-resolution cycle loss forces the
    backward generator to keep (hide) the noise instead of removing it. The
    sim → exp → sim cycle stays at full resolution: simulations are noise-free.
    ``freeze_forward`` trains only the backward generator and the simulated-domain
    discriminator, with the forward generator fixed (e.g. the shipped one), so that data
    already translated forward stays valid while the backward direction improves.
    """

    steps: int = 10000
    batch_size: int = 4
    crop: int = 80
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_cycle: float = 1.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    decay_from: float = 0.5
    seed: int = 0
    rot90_exp: bool = False
    exp_cycle_sigma_px: float = 0.0
    freeze_forward: bool = False

    def validate(self) -> None:
        if self.crop % 8 or not 32 <= self.crop <= 256:
            raise ValueError(f"the crop must be a multiple of 8 between 32 and 256 px, got {self.crop}")
        if self.batch_size < 1 or self.steps < 1 or self.lr <= 0:
            raise ValueError("batch size, steps and learning rate must be positive")
        if self.lambda_cycle < 0 or self.lambda_identity < 0:
            raise ValueError("loss weights must be ≥ 0")
        if not 0 <= self.exp_cycle_sigma_px <= 16:
            raise ValueError(f"the exp-cycle low-pass σ must be between 0 and 16 px, got {self.exp_cycle_sigma_px}")


class CycleGANTrainer:
    """One CycleGAN optimisation: Adam (β1 0.5) for the generator pair and for the
    discriminator pair, image pools of generated stacks, LSGAN losses."""

    def __init__(self, model: CycleGAN, cfg: TrainConfig, device="cpu"):
        cfg.validate()
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = model.to(self.device)
        if cfg.freeze_forward:
            model.forward_gen.requires_grad_(False)
            model.disc_exp.requires_grad_(False)
            gens = list(model.backward_gen.parameters())
            discs = list(model.disc_sim.parameters())
        else:
            gens = list(model.forward_gen.parameters()) + list(model.backward_gen.parameters())
            discs = list(model.disc_exp.parameters()) + list(model.disc_sim.parameters())
        self.opt_g = torch.optim.Adam(gens, lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.opt_d = torch.optim.Adam(discs, lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.pool_exp = ImagePool(cfg.pool_size, seed=cfg.seed + 1)
        self.pool_sim = ImagePool(cfg.pool_size, seed=cfg.seed + 2)
        self.rng = np.random.default_rng(cfg.seed + 3)
        self.step = 0
        self.history: list = []
        self.elapsed_s = 0.0

    def lr_at(self, step: int) -> float:
        start = self.cfg.decay_from * self.cfg.steps
        if step < start:
            return self.cfg.lr
        return self.cfg.lr * max(0.0, 1.0 - (step - start) / max(self.cfg.steps - start, 1.0))

    def train_step(self, sim: torch.Tensor, exp: torch.Tensor) -> dict:
        """One generator update and one discriminator update; returns the loss terms."""
        m, cfg = self.model, self.cfg
        lr = self.lr_at(self.step)
        for opt in (self.opt_g, self.opt_d):
            for g in opt.param_groups:
                g["lr"] = lr
        sim, exp = sim.to(self.device), exp.to(self.device)
        G, Fb = m.forward_gen, m.backward_gen
        frozen = cfg.freeze_forward
        discs = (m.disc_sim,) if frozen else (m.disc_exp, m.disc_sim)
        for d in discs:
            d.requires_grad_(False)
        with torch.no_grad() if frozen else contextlib.nullcontext():
            fake_exp = G.translate(sim)
        fake_sim = Fb.translate(exp)
        adv = lsgan_g_loss(m.disc_sim(fake_sim))
        if not frozen:
            adv = adv + lsgan_g_loss(m.disc_exp(fake_exp))
        low = cfg.exp_cycle_sigma_px
        cyc = (cycle_loss(sim, Fb.translate(fake_exp))
               + cycle_loss(gaussian_lowpass(exp, low), gaussian_lowpass(G.translate(fake_sim), low)))
        loss_g = adv + cfg.lambda_cycle * cyc
        if cfg.lambda_identity > 0:
            idt = identity_loss(sim, Fb.translate(sim))
            if not frozen:
                idt = idt + identity_loss(exp, G.translate(exp))
            loss_g = loss_g + cfg.lambda_identity * idt
        else:
            idt = torch.zeros(())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for d in discs:
            d.requires_grad_(True)
        pooled_sim = self.pool_sim.query(fake_sim.detach())
        d_sim = lsgan_d_loss(m.disc_sim(sim), m.disc_sim(pooled_sim))
        if frozen:
            d_exp = torch.zeros(())
            d_total = d_sim
        else:
            pooled_exp = self.pool_exp.query(fake_exp.detach())
            d_exp = lsgan_d_loss(m.disc_exp(exp), m.disc_exp(pooled_exp))
            d_total = d_exp + d_sim
        self.opt_d.zero_grad(set_to_none=True)
        d_total.backward()
        self.opt_d.step()
        self.step += 1
        return {"g_adv": adv.item(), "cycle": cyc.item(), "identity": idt.item(),
                "g_total": loss_g.item(), "d_exp": d_exp.item(), "d_sim": d_sim.item(), "lr": lr}

    def next_batches(self, sim_arrays: list, exp_arrays: list) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        return (sample_batch(sim_arrays, c.batch_size, c.crop, self.rng, rot90=True),
                sample_batch(exp_arrays, c.batch_size, c.crop, self.rng, rot90=c.rot90_exp))

    # -- state --
    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.model.config.to_dict(),
            "train_config": asdict(self.cfg),
            "step": self.step,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "opt_g": _to_cpu(self.opt_g.state_dict()),
            "opt_d": _to_cpu(self.opt_d.state_dict()),
            "pools": {"exp": self.pool_exp.state_dict(), "sim": self.pool_sim.state_dict()},
            "rng": {"numpy": rng_state_to_plain(self.rng), "torch": torch.get_rng_state()},
            "history": copy.deepcopy(self.history),
            "elapsed_s": float(self.elapsed_s),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.pool_exp.load_state_dict(state["pools"]["exp"])
        self.pool_sim.load_state_dict(state["pools"]["sim"])
        self.rng.bit_generator.state = rng_state_from_plain(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        self.step = int(state["step"])
        self.history = list(state.get("history", []))
        self.elapsed_s = float(state.get("elapsed_s", 0.0))

    @classmethod
    def from_state(cls, state: dict, device="cpu", steps: int | None = None) -> CycleGANTrainer:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a translator training checkpoint of this project")
        cfg = TrainConfig(**state["train_config"])
        if steps is not None:
            cfg.steps = int(steps)
        tr = cls(CycleGAN(CycleGANConfig.from_dict(state["config"]), seed=None), cfg, device)
        tr.load_state_dict(state)
        return tr


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def save_checkpoint(state: dict, path) -> Path:
    """Write a checkpoint atomically (a crash never leaves a half-written file)."""
    return weights.save(state, path)


def load_checkpoint(path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no translator checkpoint there")
    state = weights.load(path)
    weights.require_format(state, (CHECKPOINT_FORMAT, TRANSLATOR_FORMAT),
                           f"{path}: not a translator checkpoint of this project")
    return state


class _Stop(Exception):
    pass


def run_training(trainer: CycleGANTrainer, sim: list, exp: list, ckpt_path, extra: dict | None = None,
                 deadline: float | None = None, checkpoint_every: int = 500,
                 progress: bool = True, desc: str = "train") -> str:
    """Train until ``trainer.cfg.steps``; returns ``"done"``, ``"time"`` (deadline) —
    after saving the checkpoint either way. Ctrl-C saves, then re-raises."""
    extra = dict(extra or {})
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=trainer.cfg.steps, initial=trainer.step, desc=desc, unit="step", file=sys.stderr)
    window: list = []

    def save():
        st = trainer.state_dict()
        st.update(extra)
        save_checkpoint(st, ckpt_path)

    status = "done"
    t_last = time.perf_counter()
    try:
        while trainer.step < trainer.cfg.steps:
            if deadline is not None and time.time() >= deadline:
                status = "time"
                break
            losses = trainer.train_step(*trainer.next_batches(sim, exp))
            now = time.perf_counter()
            trainer.elapsed_s += now - t_last
            t_last = now
            window.append(losses)
            if bar is not None:
                bar.update(1)
                if trainer.step % 10 == 0:
                    bar.set_postfix({k: f"{np.mean([w[k] for w in window[-50:]]):.3f}"
                                     for k in ("g_adv", "cycle", "d_exp", "d_sim")})
            if trainer.step % checkpoint_every == 0 or trainer.step == trainer.cfg.steps:
                trainer.history.append({"step": trainer.step, **{
                    k: float(np.mean([w[k] for w in window])) for k in window[0]}})
                window = []
                save()
    except KeyboardInterrupt:
        save()
        if bar is not None:
            bar.close()
        log.warning(f"interrupted at step {trainer.step}; checkpoint saved to {ckpt_path} (use --resume)")
        raise
    if window:
        trainer.history.append({"step": trainer.step, **{
            k: float(np.mean([w[k] for w in window])) for k in window[0]}})
    save()
    if bar is not None:
        bar.close()
    return status


# -- export ------------------------------------------------------------------------------

def export_translator(ckpt, path, max_mb: float = 20.0) -> Path:
    """Write the shipped translator (generators only, ≤ ``max_mb``) and its model card.

    Parameters
    ----------
    ckpt : path or dict
        A training checkpoint (file or the training folder, which means its ``last.pt``).
    path : path
        Output ``.pt``; the model card is written beside it as ``.md``.
    """
    from ..io._atomic import atomic_path

    state = ckpt if isinstance(ckpt, dict) else load_checkpoint(ckpt)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("export_translator needs a training checkpoint (format "
                         f"{CHECKPOINT_FORMAT}); got {state.get('format')}")
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"the exported translator needs a .pt name, got {path.name!r}")
    model_state = state["model"]
    payload = {
        "format": TRANSLATOR_FORMAT,
        "config": state["config"],
        "grid": asdict(DEFAULT_GRID),
        "forward": {k[len("forward_gen."):]: v.clone() for k, v in model_state.items() if k.startswith("forward_gen.")},
        "backward": {k[len("backward_gen."):]: v.clone() for k, v in model_state.items() if k.startswith("backward_gen.")},
        "recommended_strength": state.get("recommended_strength"),
        "evaluation": state.get("evaluation"),
        "selection": state.get("selection"),
        "data": state.get("data"),
        "train_config": state.get("train_config"),
        "step": int(state["step"]),
        "finished": bool(state.get("finished", False)),
    }
    weights.save(payload, path)
    size_mb = path.stat().st_size / 1e6
    if size_mb > max_mb:
        path.unlink()
        raise ValueError(f"the exported translator would be {size_mb:.1f} MB, over the {max_mb} MB limit")
    with atomic_path(path.with_suffix(".md")) as tmp:
        tmp.write_text(model_card(payload, path), encoding="utf-8")
    return path


def model_card(payload: dict, path: Path) -> str:
    import hashlib

    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    cfg = payload["config"]
    tc = payload.get("train_config") or {}
    data = payload.get("data") or {}
    ev = payload.get("evaluation") or {}
    sel = payload.get("selection") or {}
    n_params = sum(v.numel() for v in payload["forward"].values())
    lines = [
        "# Style translator (CycleGAN) — napari-afm-style",
        "",
        f"- file: `{Path(path).name}` ({Path(path).stat().st_size / 1e6:.2f} MB, sha256 `{sha[:16]}…`)",
        f"- architecture: residual U-Net generators (widths {cfg['gen_channels']}, "
        f"{cfg['n_res_blocks']} residual blocks, {n_params} parameters each), PatchGAN "
        "discriminators (not shipped); input = canonical 10-slice stack as channels, per-slice normalised",
        "- directions: forward = simulated → experimental, backward = experimental → simulated",
        f"- training: {payload.get('step')} steps{' (finished)' if payload.get('finished') else ' (NOT finished)'}, "
        f"batch {tc.get('batch_size')}, crop {tc.get('crop')} px, lr {tc.get('lr')}, seed {tc.get('seed')}, "
        f"λ_cycle {tc.get('lambda_cycle')}, λ_identity {tc.get('lambda_identity')}"
        + (f", exp-cycle low-pass σ {tc['exp_cycle_sigma_px']:g} px" if tc.get("exp_cycle_sigma_px") else "")
        + (", forward generator frozen" if tc.get("freeze_forward") else "")
        + (f", generators initialised from `{data['init_from']}`" if data.get("init_from") else ""),
        f"- data: simulated `{data.get('sim')}` ({data.get('n_train', {}).get('sim')} train / "
        f"{data.get('n_heldout', {}).get('sim')} held out), experimental `{data.get('exp')}` "
        f"({data.get('n_train', {}).get('exp')} / {data.get('n_heldout', {}).get('exp')})",
        f"- command: `{data.get('command', 'afm-style train-translator …')}`",
        "",
        "## Recommended strength",
        "",
        f"{payload.get('recommended_strength')} — the smallest strength whose held-out domain "
        f"distance ({ev.get('metric')}) is within 2 % of the best along α ∈ [0, 1]. "
        "`translate()` keeps strength = 1.0 as its default; pass this value for the "
        "measured best match.",
        "",
    ]
    if ev:
        lines += ["## Held-out evaluation", "",
                  f"baseline distance sim vs exp: {ev.get('baseline'):.4g}", "",
                  "| strength | forward(sim) vs exp | backward(exp) vs sim |", "|---|---|---|"]
        for a, f, b in zip(ev["strengths"], ev["forward_distance"], ev["backward_distance"]):
            lines.append(f"| {a:.1f} | {f:.4g} | {b:.4g} |")
        lines += ["", f"cycle reconstruction error (per-slice σ units): {ev.get('cycle_error')}; "
                  f"content (0.25 Å low-pass): {ev.get('content_cycle_error')}", ""]
    if sel.get("grid"):
        lines += ["## Loss-weight search (short runs, held-out)", "",
                  "| λ_cycle | λ_identity | steps | remaining gap fwd | remaining gap bwd | cycle error | content cycle error |",
                  "|---|---|---|---|---|---|---|"]
        for g in sel["grid"]:
            e = g["evaluation"]
            lines.append(f"| {g['lambda_cycle']} | {g['lambda_identity']} | {g['steps']} | "
                         f"{e['remaining_gap']['forward']:.3f} | {e['remaining_gap']['backward']:.3f} | "
                         f"{max(e['cycle_error'].values()):.3f} | {max(e['content_cycle_error'].values()):.3f} |")
        lines += ["", f"chosen: λ_cycle {sel.get('chosen', {}).get('lambda_cycle')}, "
                  f"λ_identity {sel.get('chosen', {}).get('lambda_identity')}", ""]
    lines += ["## Intended use and limits", "",
              "Translate ppafm simulations of water on Au(111) (CO tip, 0.125 Å pixels, 10 heights "
              "0.1 Å apart from the closest) towards the experimental style and back. The "
              "generators add or remove a residual only; they cannot correct a wrong structure. "
              "Outside the training distribution (other molecules, other pixel sizes far from "
              "0.125 Å, spans far from 0.9 Å) the residual is not validated.", ""]
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------------

def configure_train_translator_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sim", required=True, help="simulated stacks: shard folder(s) from `afm-style generate` or stack files")
    p.add_argument("--exp", required=True, help="experimental stacks: folder of stack files (any supported format)")
    p.add_argument("--out", required=True, help="checkpoint folder (last.pt, search/, report.json)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, default=None, help="total optimisation steps, grid-search steps of the chosen point included (default 10000)")
    g.add_argument("--epochs", type=float, default=None,
                   help="alternatively: passes over the larger training domain (steps = epochs × stacks / batch)")
    p.add_argument("--batch-size", type=int, default=4, help="stacks per domain per step")
    p.add_argument("--crop", type=int, default=80, help="random crop size in canonical pixels (multiple of 8)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate of generators and discriminators")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, crops and the held-out split")
    p.add_argument("--lambda-cycle", type=float, nargs="+", default=[2.0],
                   help="cycle-loss weight(s) (default 2: of λ_cycle 0.5, 1, 2, 5 and 10 trained alike, 1 and 2 "
                        "gave the best structure models, docs/experiment.md); several values are searched with short "
                        "runs and chosen by the held-out style distance, which does NOT rank translators by the "
                        "structure models they make: to choose without labels, export one translator per setting and "
                        "give them all to `afm-style experiment --translator`")
    p.add_argument("--lambda-identity", type=float, nargs="+", default=[0.5],
                   help="identity-loss weight(s) AS A FRACTION of λ_cycle (Zhu et al.: 0.5)")
    p.add_argument("--search-steps", type=int, default=1000, help="steps of each short grid run")
    p.add_argument("--max-cycle-error", type=float, default=0.15,
                   help="grid points whose held-out content cycle error (0.25 Å low-pass, per-slice σ units) "
                        "exceeds this are not chosen")
    p.add_argument("--select-metric", choices=("auto", "fid", "mmd", "spectrum"), default="auto",
                   help="held-out domain distance for the choices (auto: fid if a feature net exists, else mmd)")
    p.add_argument("--feature-net", default=None, help="feature-network weights for fid (default: shipped)")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction of each domain held out")
    p.add_argument("--max-stacks", type=int, default=2000, help="at most this many stacks per domain")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (also on Ctrl-C and --max-minutes)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    p.add_argument("--resume", action="store_true", help="continue from OUT (grid results and last.pt)")
    p.add_argument("--device", default="auto", help="where training runs: auto (a GPU if torch sees one, else the CPU), cpu, cuda or cuda:N; `afm-style info --devices` lists them")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: 1 if the machine is already busy, else torch's default)")
    p.add_argument("--gen-channels", type=int, nargs=3, default=list(CycleGANConfig.gen_channels),
                   help="generator widths at 1, 1/2, 1/4 resolution")
    p.add_argument("--res-blocks", type=int, default=CycleGANConfig.n_res_blocks, help="residual blocks per generator")
    p.add_argument("--disc-channels", type=int, nargs=3, default=list(CycleGANConfig.disc_channels),
                   help="channels of the three discriminator stages")
    p.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction, default=CycleGANConfig.disc_spectral_norm,
                   help="spectral normalisation in the discriminators")
    p.add_argument("--exp-cycle-lowpass-A", type=float, default=0.0,
                   help="compare the exp→sim→exp cycle after a lateral Gaussian low-pass of this σ (Å): "
                        "random pixel noise cannot be restored, so a full-resolution cycle makes the backward "
                        "generator keep it (0: full resolution)")
    p.add_argument("--init-from", default=None,
                   help="start both generators from this translator (.pt export or checkpoint); new discriminators")
    p.add_argument("--freeze-forward", action="store_true",
                   help="train only the backward generator (and the simulated-domain discriminator); the forward "
                        "generator stays as initialised, so data already translated forward stays valid")
    p.add_argument("--export", default=None, help="after training, export the generators + model card to this .pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (-q hides it too)")


def _write_json(path: Path, obj) -> None:
    from ..io._atomic import write_json_atomic

    write_json_atomic(path, obj, indent=2)


def run_train_translator(args) -> int:
    t_start = time.time()
    deadline = t_start + 60 * args.max_minutes if args.max_minutes else None
    threads = choose_threads(args.threads)
    torch.set_num_threads(threads)
    device = torch.device(resolve_device(args.device))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for checkpoints")
    last = out / "last.pt"
    if last.exists() and not args.resume:
        raise FileExistsError(f"{last} exists; add --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress

    if args.freeze_forward and not args.init_from:
        raise ValueError("--freeze-forward keeps a trained forward generator: give it with --init-from TRANSLATOR.pt")
    base = TrainConfig(batch_size=args.batch_size, crop=args.crop, lr=args.lr, seed=args.seed,
                       exp_cycle_sigma_px=args.exp_cycle_lowpass_A / DEFAULT_GRID.pixel_size_A,
                       freeze_forward=bool(args.freeze_forward))
    base.validate()
    init = _init_generators(args.init_from) if args.init_from else None
    sim = load_domain(args.sim, args.max_stacks, args.seed, base.crop, progress=progress)
    exp = load_domain(args.exp, args.max_stacks, args.seed, base.crop, progress=progress)
    tr_s, ho_s = split_holdout(len(sim), args.holdout, args.seed)
    tr_e, ho_e = split_holdout(len(exp), args.holdout, args.seed)
    sim_tr, sim_ho, exp_tr, exp_ho = sim.subset(tr_s), sim.subset(ho_s), exp.subset(tr_e), exp.subset(ho_e)
    if len(sim_ho) < 2 or len(exp_ho) < 2:
        raise ValueError("each domain needs ≥ 4 stacks so that ≥ 2 can be held out for the choices "
                         f"(sim {len(sim)}, exp {len(exp)})")
    if args.steps is not None:
        total = args.steps
    elif args.epochs is not None:
        total = int(math.ceil(args.epochs * max(len(sim_tr), len(exp_tr)) / base.batch_size))
    else:
        total = TrainConfig.steps
    arch = CycleGANConfig(gen_channels=tuple(args.gen_channels), n_res_blocks=args.res_blocks,
                          disc_channels=tuple(args.disc_channels), disc_spectral_norm=args.spectral_norm)
    if init is not None:  # the generators' architecture comes with their weights
        arch = CycleGANConfig.from_dict({**arch.to_dict(), **{k: v for k, v in init["config"].items()
                                                                if not k.startswith("disc")}})
    metric = choose_metric(args.select_metric, args.feature_net)
    distance = DomainDistance(metric, sim_ho.arrays, exp_ho.arrays, args.feature_net)
    print(f"simulated: {len(sim_tr)} train / {len(sim_ho)} held out ({sim.n_skipped} skipped) from {sim.source}")
    print(f"experimental: {len(exp_tr)} train / {len(exp_ho)} held out ({exp.n_skipped} skipped) from {exp.source}")
    print(f"held-out domain distance: {distance.description}; {total} steps on {device}"
          + (f" ({threads} CPU thread{'s' if threads > 1 else ''})" if device.type == "cpu" else ""))
    data_info = {"sim": sim.source, "exp": exp.source,
                 "n_train": {"sim": len(sim_tr), "exp": len(exp_tr)},
                 "n_heldout": {"sim": len(sim_ho), "exp": len(exp_ho)},
                 "heldout_ids": {"sim": sim_ho.ids, "exp": exp_ho.ids},
                 "init_from": init["path"] if init else None,
                 "command": "afm-style train-translator " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["train-translator"] else None}

    # -- 1. short runs over the loss-weight grid --
    grid = [(lc, lc * li) for lc, li in itertools.product(args.lambda_cycle, args.lambda_identity)]
    selection = {"metric": distance.description, "grid": []}
    search_json = out / "search.json"
    chosen_state = None
    if last.exists():
        state = load_checkpoint(last)
        stored = (state.get("data") or {}).get("heldout_ids")
        if stored is not None and stored != data_info["heldout_ids"]:
            raise ValueError(f"{last}: the run held out other stacks than --sim/--exp/--holdout/--seed give now "
                             "(files added or removed, or another split); resuming would train on stacks it chose "
                             "its settings on. Resume with the run's data, or start a new --out")
        selection = state.get("selection", selection)
    elif len(grid) > 1 and args.search_steps > 0:
        done = json.loads(search_json.read_text()) if (args.resume and search_json.exists()) else {"grid": []}
        results = {(g["lambda_cycle"], g["lambda_identity"]): g for g in done["grid"]}
        (out / "search").mkdir(exist_ok=True)
        for lc, lid in grid:
            if (lc, lid) in results:
                continue
            cpath = out / "search" / f"lc{lc:g}_li{lid:g}.pt"
            cfg = replace_cfg(base, steps=args.search_steps, lambda_cycle=lc, lambda_identity=lid,
                              decay_from=1.0)
            if args.resume and cpath.exists():
                trainer = CycleGANTrainer.from_state(load_checkpoint(cpath), device)
            else:
                trainer = CycleGANTrainer(_new_model(arch, args.seed, init), cfg, device)
            status = run_training(trainer, sim_tr.arrays, exp_tr.arrays, cpath, {"data": data_info},
                                  deadline, args.checkpoint_every, progress, desc=f"search λc={lc:g} λi={lid:g}")
            if status == "time":
                log.warning("--max-minutes reached during the grid search; run again with --resume")
                return 0
            ev = evaluate_translator(trainer.model, sim_ho.arrays, exp_ho.arrays, distance, device=device)
            results[(lc, lid)] = {"lambda_cycle": lc, "lambda_identity": lid, "steps": trainer.step,
                                  "evaluation": ev, "checkpoint": str(cpath)}
            _write_json(search_json, {"grid": list(results.values())})
            print(f"λ_cycle {lc:g}, λ_identity {lid:g}: remaining gap fwd {ev['remaining_gap']['forward']:.3f}, "
                  f"bwd {ev['remaining_gap']['backward']:.3f}, cycle error {max(ev['cycle_error'].values()):.3f}, "
                  f"content cycle error {max(ev['content_cycle_error'].values()):.3f}")
        ordered = sorted(results.values(), key=lambda g: grid_point_score(g["evaluation"], args.max_cycle_error))
        best = ordered[0]
        if grid_point_score(best["evaluation"], args.max_cycle_error)[0]:
            log.warning(f"warning: no grid point kept the held-out content cycle error below {args.max_cycle_error}; "
                        "chose the smallest remaining gap anyway")
        selection["grid"] = list(results.values())
        selection["chosen"] = {"lambda_cycle": best["lambda_cycle"], "lambda_identity": best["lambda_identity"]}
        selection["rule"] = (f"smallest mean remaining held-out gap among points with content cycle error ≤ "
                             f"{args.max_cycle_error}")
        chosen_state = load_checkpoint(best["checkpoint"])
        print(f"chosen: λ_cycle {best['lambda_cycle']:g}, λ_identity {best['lambda_identity']:g}")
    else:
        lc, lid = grid[0]
        selection["chosen"] = {"lambda_cycle": lc, "lambda_identity": lid}
        selection["rule"] = "single grid point given"

    # -- 2. the full run --
    if last.exists():
        trainer = CycleGANTrainer.from_state(load_checkpoint(last), device,
                                             steps=args.steps if args.steps is not None else None)
    else:
        lc, lid = selection["chosen"]["lambda_cycle"], selection["chosen"]["lambda_identity"]
        cfg = replace_cfg(base, steps=total, lambda_cycle=lc, lambda_identity=lid)
        trainer = CycleGANTrainer(_new_model(arch, args.seed, init), cfg, device)
        if chosen_state is not None:  # continue the chosen short run instead of starting over
            st = dict(chosen_state)
            st["train_config"] = asdict(cfg)
            trainer.load_state_dict(st)
    extra = {"data": data_info, "selection": selection, "finished": False}
    status = run_training(trainer, sim_tr.arrays, exp_tr.arrays, last, extra, deadline,
                          args.checkpoint_every, progress, desc="train")
    if status == "time":
        print(f"--max-minutes reached at step {trainer.step}/{trainer.cfg.steps}; checkpoint {last} "
              "(continue with --resume)")
        return 0

    # -- 3. strength along the residual path, on held-out stacks --
    ev = evaluate_translator(trainer.model, sim_ho.arrays, exp_ho.arrays, distance, device=device)
    state = trainer.state_dict()
    state.update(extra, finished=True, evaluation=ev, recommended_strength=ev["recommended_strength"])
    save_checkpoint(state, last)
    report = {"steps": trainer.step, "train_seconds": trainer.elapsed_s, "selection": selection,
              "evaluation": ev, "data": {k: v for k, v in data_info.items() if k != "heldout_ids"}}
    _write_json(out / "report.json", report)
    print(f"finished {trainer.step} steps in {trainer.elapsed_s / 60:.1f} min of training")
    print(f"held-out {ev['metric']}: baseline sim vs exp {ev['baseline']:.4g}")
    for d in ("forward", "backward"):
        print(f"  {d}: recommended strength {ev['recommended_strength'][d]:.1f}, "
              f"remaining gap {100 * ev['remaining_gap'][d]:.1f} %")
        if ev["recommended_strength"][d] == 0.0:
            log.warning(f"  warning: the {d} translation does not bring held-out stacks closer to the other "
                        "domain at any strength; train longer or with other loss weights")
    print(f"  cycle error (σ units): {ev['cycle_error']}; content (0.25 Å low-pass): {ev['content_cycle_error']}")
    if args.export:
        path = export_translator(state, args.export)
        print(f"exported {path} and {path.with_suffix('.md')}")
    return 0


def _init_generators(path) -> dict:
    """Generator weights and architecture of ``--init-from`` (export or checkpoint)."""
    from ..models.weights import generator_state_dicts

    path = Path(path)
    payload = load_checkpoint(path)  # an exported translator or a training checkpoint (file or folder)
    fwd, bwd = generator_state_dicts(payload, path)
    return {"forward": fwd, "backward": bwd, "config": payload["config"],
            "path": str(path / "last.pt" if path.is_dir() else path)}


def _new_model(arch: CycleGANConfig, seed: int, init: dict | None) -> CycleGAN:
    model = CycleGAN(arch, seed=seed)
    if init is not None:
        model.forward_gen.load_state_dict(init["forward"])
        model.backward_gen.load_state_dict(init["backward"])
    return model


def replace_cfg(cfg: TrainConfig, **changes) -> TrainConfig:
    d = asdict(cfg)
    d.update(changes)
    return TrainConfig(**d)
