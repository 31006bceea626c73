"""Training of the structure-discovery network (``afm-style train-predictor``).

Regimes (what the network sees during training)
-----------------------------------------------
* ``pure``: simulated stacks (``--data``) as they are;
* ``handcrafted``: simulated stacks with random handcrafted perturbations
  (:func:`napari_afm_style.perturb.random_perturbation`, strength uniform in
  ``[0, perturb_strength]``);
* ``style``: style-translated stacks: translated forward on the fly by one of
  ``translators`` (default: the shipped one) at a strength drawn uniformly from
  ``style_strength`` per sample, or read from ``--style-data`` (written by
  ``afm-style translate``) when that is given;
* ``hybrid``: per sample, one of the kinds ``sim``, ``handcrafted``, ``style`` and
  ``style_handcrafted`` (translated forward, then perturbed by hand: the translator
  brings the tip and contrast, the perturbations the geometry of a scan — drift,
  misregistration, line jumps — that an image-to-image generator rarely learns) with the
  proportions of ``mix``.

Why a random strength and not the translator's single recommended one: the recommended
strength is where the translated simulations sit closest to the experimental set *on
average*, but real scans spread around that average (tips, noise levels); a strength
drawn per sample spreads the training images over the same range and keeps the model
from learning one generator's particular residual as the only look of an experiment.

Loss: per-voxel binary cross-entropy against Gaussian-blob targets, weighted by
``1 + pos_weight * target``. BCE on logits keeps strong gradients where a sparse map is
wrong (MSE's gradients vanish once the net predicts "empty" everywhere, which is what
sparse targets pull it towards), the weight balances the ~1 % of voxels near atoms against
the empty rest, and — because the weight depends only on the target — the optimum is still
``p = target`` per voxel, so a peak's height keeps meaning "probability-like confidence"
(≈ 1 at a clearly seen atom) and one threshold works across images.

``focal_beta > 0`` multiplies each voxel's term by ``|target − p|**focal_beta`` (the quality
focal loss of Li et al., NeurIPS 2020, made for soft targets like these blobs): voxels the
net already gets right stop dominating the sum, so the hard ones (weak, deep atoms) get a
larger share of the gradient. The optimum stays ``p = target``.

Reproducibility: every random choice is drawn from ``(seed, epoch, batch)``-derived
generators, so a run interrupted at any batch and resumed gives the same weights as an
uninterrupted one (on the same device and thread count). Checkpoints are written
atomically after every epoch, on Ctrl-C and when ``max_minutes`` is reached.

The module is about 800 lines because :func:`train` is one resumable loop whose
state (data order, regimes, validation, checkpoints) must stay together to resume
exactly; the command line lives in ``cli/train_predictor.py``, the mechanics of several
processes (``torchrun``) and of DataLoader workers in :mod:`.distributed`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .._device import resolve_device
from .._plain import plain
from ..io._atomic import write_json_atomic
from ..models import weights
from ..resample import normalise_slices

__all__ = ["TrainConfig", "train", "export_model", "heatmap_loss", "evaluate"]

log = logging.getLogger(__name__)

REGIMES = ("pure", "handcrafted", "style", "hybrid")
KINDS = ("sim", "handcrafted", "style", "style_handcrafted")
#: kinds whose images are style-translated
STYLE_KINDS = ("style", "style_handcrafted")
#: hybrid proportions when none are given (the shipped hybrid's)
DEFAULT_MIX = {"sim": 0.25, "handcrafted": 0.25, "style": 0.25, "style_handcrafted": 0.25}
#: thresholds tried on validation data; the best one becomes the model's default
THRESHOLDS = tuple(np.round(np.arange(0.1, 0.91, 0.05), 2).tolist())
#: epochs of a new run when none are given
DEFAULT_EPOCHS = 30


@dataclass
class TrainConfig:
    """Parameters of a training run (lengths in Å, sizes in pixels)."""

    #: training shard folder, or several read as one set (generated with different seeds)
    data: str | list
    out: str
    val_data: str | None = None
    val_fraction: float = 0.1
    regime: str = "pure"
    style_data: str | None = None
    mix: dict = field(default_factory=lambda: dict(DEFAULT_MIX))
    #: forward translators for on-the-fly style images (paths; None or [] = the shipped
    #: one), used when ``style_data`` is not given; one is drawn per sample
    translators: list | None = None
    #: forward-translation strength of on-the-fly style images, uniform in [min, max]
    style_strength: tuple = (0.0, 1.0)
    #: None: :data:`DEFAULT_EPOCHS` for a new run, the stored run's own when resuming (its
    #: learning-rate schedule spans them)
    epochs: int | None = None
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    seed: int = 0
    device: str = "cpu"
    max_minutes: float | None = None
    resume: bool = False
    crop_px: tuple = (96, 128)
    val_crop_px: int = 128
    val_max_samples: int = 512
    perturb_strength: float = 1.0
    pos_weight: float = 20.0
    #: 0: plain weighted BCE; > 0: quality-focal modulation (see the module docstring)
    focal_beta: float = 0.0
    cache_mb: float = 2048.0
    model: dict = field(default_factory=dict)
    max_steps: int | None = None
    num_threads: int | None = None
    #: DataLoader worker processes building the batches (0: on the training thread); the
    #: batches are the same either way
    loader_workers: int = 0
    progress: bool = True
    #: start a new run from another run's weights (fine-tuning, e.g. handcrafted from pure)
    init_from: str | None = None
    command: str = ""

    def __post_init__(self):
        if self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {REGIMES}, got {self.regime!r}")
        ss = tuple(float(v) for v in self.style_strength)
        if len(ss) != 2 or not 0.0 <= ss[0] <= ss[1] <= 1.0:
            raise ValueError(f"style_strength must be (min, max) with 0 ≤ min ≤ max ≤ 1, got {self.style_strength}")
        self.style_strength = ss
        if isinstance(self.translators, str):
            self.translators = [self.translators]
        mix = {k: float(v) for k, v in dict(self.mix).items()}
        if set(mix) - set(KINDS) or any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError(f"mix must give non-negative proportions of {KINDS}, got {self.mix}")
        self.mix = mix
        self.crop_px = tuple(int(c) for c in self.crop_px)
        if len(self.crop_px) != 2 or not 32 <= self.crop_px[0] <= self.crop_px[1]:
            raise ValueError("crop_px must be (min, max) with 32 ≤ min ≤ max")
        if self.focal_beta < 0:
            raise ValueError(f"focal_beta must be ≥ 0 (0: plain weighted BCE), got {self.focal_beta}")
        if (self.epochs is not None and self.epochs < 1) or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be ≥ 1")
        if self.loader_workers < 0:
            raise ValueError(f"loader_workers must be ≥ 0, got {self.loader_workers}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["crop_px"] = list(self.crop_px)
        d["style_strength"] = list(self.style_strength)
        return d


# -- pieces ------------------------------------------------------------------------------------

def heatmap_loss(logits, target, pos_weight: float = 20.0, focal_beta: float = 0.0, denominator=None):
    """Target-weighted BCE on logits, optionally quality-focal (see the module docstring).

    ``denominator``: divide the weighted sum by this instead of the summed weights of
    ``target`` (a rank's share of a global batch is divided by the weight of the whole
    batch, so the shares add up to the loss of the whole batch).
    """
    import torch
    from torch.nn import functional as F

    w = 1.0 + pos_weight * target
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if focal_beta > 0:
        bce = bce * (target - torch.sigmoid(logits)).abs() ** focal_beta
    return (w * bce).sum() / (w.sum() if denominator is None else denominator)


def _lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to 5 % (a pure function of the step: resumable)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def _save(path: Path, blob: dict) -> None:
    weights.save(blob, path)


@dataclass
class ValExample:
    """A validation window: normalised input, all atoms (pixels of the window, for the
    target maps) and the atoms inside it (Å, window frame, for the scores)."""

    x: np.ndarray
    numbers: np.ndarray
    atoms_px: np.ndarray
    truth_numbers: np.ndarray
    truth_positions_A: np.ndarray


class _Data:
    """The sample sources of a run and the deterministic plan of every epoch."""

    def __init__(self, cfg: TrainConfig, mcfg):
        from .dataset import ShardSet, split_by_fraction

        self.cfg, self.mcfg = cfg, mcfg
        self.sim = ShardSet(cfg.data, cfg.cache_mb)
        wants_style = cfg.regime == "style" or (cfg.regime == "hybrid"
                                                and any(cfg.mix.get(k, 0) > 0 for k in STYLE_KINDS))
        self.style = ShardSet(cfg.style_data, cfg.cache_mb) if wants_style and cfg.style_data else None
        self.translators = []
        if wants_style and self.style is None:
            from ..translate import load_translator

            self.translators = [load_translator(t) for t in (cfg.translators or [None])]
        if cfg.val_data:
            self.val_set = ShardSet(cfg.val_data, cfg.cache_mb)
            self.val_idx = np.arange(len(self.val_set))
            self.sim_train = np.arange(len(self.sim))
            self.style_train = np.arange(len(self.style)) if self.style is not None else None
        else:
            # hold out the same structures (by sample id) from every source
            self.val_set = self.sim
            self.sim_train, self.val_idx = split_by_fraction(self.sim, cfg.val_fraction, cfg.seed)
            self.style_train = None
            if self.style is not None:
                val_ids = {self.sim.sample_ids[i] for i in self.val_idx}
                keep = [i for i, sid in enumerate(self.style.sample_ids) if sid not in val_ids]
                self.style_train = np.array(keep, dtype=np.int64)
        if len(self.val_idx) == 0:
            raise ValueError("no validation samples: give --val-data or a --val-fraction > 0 with more data")
        self.val_idx = self.val_idx[: cfg.val_max_samples]
        if cfg.regime == "style" and self.style is not None:
            self.epoch_len = len(self.style_train)
        else:
            self.epoch_len = len(self.sim_train)
        if self.epoch_len == 0:
            raise ValueError("no training samples left after the validation split")

    def steps_per_epoch(self) -> int:
        return int(math.ceil(self.epoch_len / self.cfg.batch_size))

    def plan(self, epoch: int) -> list[tuple[int, list[tuple[str, int]]]]:
        """Batches of epoch ``epoch``: (crop size, [(kind, sample index), ...])."""
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, epoch, 1])
        n = self.epoch_len
        if cfg.regime == "pure":
            kinds = np.array(["sim"] * n)
        elif cfg.regime == "handcrafted":
            kinds = np.array(["handcrafted"] * n)
        elif cfg.regime == "style":
            kinds = np.array(["style"] * n)
        else:
            names = [k for k in KINDS if cfg.mix.get(k, 0) > 0]
            prob = np.array([cfg.mix[k] for k in names])
            kinds = rng.choice(names, size=n, p=prob / prob.sum())
        streams = {}
        if self.sim_train is not None and len(self.sim_train):
            streams["sim"] = self.sim.ordering(self.sim_train, rng)
        if self.style_train is not None and len(self.style_train):
            streams["style"] = self.style.ordering(self.style_train, rng)
        pos = {"sim": 0, "style": 0}
        items = []
        for k in kinds:
            src = "style" if k in STYLE_KINDS and self.style is not None else "sim"
            order = streams[src]
            items.append((str(k), int(order[pos[src] % len(order)])))
            pos[src] += 1
        sizes = np.arange(cfg.crop_px[0], cfg.crop_px[1] + 1, 8)
        batches = []
        for b in range(0, n, cfg.batch_size):
            batches.append((int(rng.choice(sizes)), items[b:b + cfg.batch_size]))
        return batches

    def batch(self, epoch: int, b: int, crop_px: int, items, keep=None):
        """Arrays (x, target) of one training batch, augmented deterministically.

        ``keep`` (positions in ``items``, e.g. a ``range``): return only those examples
        (one rank's share of a global batch), identical to the same rows of the whole
        batch. The random draws of the other examples are replayed so that the kept ones
        see the same generator state, but their style translation, the costly part, is
        skipped (no draw depends on the translated values).
        """
        from .dataset import make_example, prepare_sample

        rng = np.random.default_rng([self.cfg.seed, epoch, b, 2])
        keep = set(range(len(items))) if keep is None else set(keep)
        preps = []
        for kind, i in items:
            src = self.style if kind in STYLE_KINDS and self.style is not None else self.sim
            preps.append((kind, prepare_sample(src[i], self.mcfg)))
        size = min([crop_px] + [min(p.data.shape[-2:]) for _, p in preps])
        xs, ts = [], []
        for j, (kind, prep) in enumerate(preps):
            transform = None
            if kind in STYLE_KINDS and self.translators:
                transform = self._style_transform(rng)
            perturbed = kind in ("handcrafted", "style_handcrafted")
            strength = rng.uniform(0, self.cfg.perturb_strength) if perturbed else None
            x, t, _, _ = make_example(prep, self.mcfg, rng, crop_px=size, perturb_strength=strength,
                                      transform=transform if j in keep else None)
            if j in keep:
                xs.append(x)
                ts.append(t)
        if not xs:  # an empty share (a global batch smaller than the number of ranks)
            n_el, n_z = self.mcfg.n_elements, self.mcfg.n_zbins
            return (np.zeros((0, self.mcfg.n_heights, size, size), np.float32),
                    np.zeros((0, n_el, n_z, size, size), np.float32))
        return np.stack(xs), np.stack(ts)

    def _style_transform(self, rng):
        """Forward translation by a translator and strength drawn from ``rng``."""
        from ..translate import translate_array

        tr = self.translators[int(rng.integers(len(self.translators)))] if len(self.translators) > 1 \
            else self.translators[0]
        strength = float(rng.uniform(*self.cfg.style_strength))
        return lambda data: translate_array(data, tr, "forward", strength)

    def validation_examples(self) -> list[ValExample]:
        """Centre windows of the validation samples (no augmentation)."""
        from .dataset import crop, prepare_sample, truth_in_window

        out = []
        for i in self.val_idx:
            prep = prepare_sample(self.val_set[int(i)], self.mcfg)
            ny, nx = prep.data.shape[-2:]
            sy, sx = min(self.cfg.val_crop_px, ny), min(self.cfg.val_crop_px, nx)
            data, atoms = crop(prep.data, prep.atoms_px, (ny - sy) // 2, (nx - sx) // 2, sy, sx)
            numbers, positions = truth_in_window(prep.numbers, atoms, (sy, sx), prep.pixel_size_A)
            out.append(ValExample(normalise_slices(data), prep.numbers, atoms, numbers, positions))
        return out

    def provenance(self) -> dict:
        def one(s):
            if s is None:
                return None
            if len(s.folders) > 1:
                return {"folders": [str(f) for f in s.folders], "n_samples": len(s), "n_shards": len(s.paths),
                        "generation": [m.get("config", m) for m in s.manifests]}
            return {"folder": str(s.folder), "n_samples": len(s), "n_shards": len(s.paths),
                    "generation": s.manifest.get("config", s.manifest)}
        style_on_the_fly = None
        if self.translators:
            style_on_the_fly = {"translators": [{"name": t.name, "sha256": t.sha256} for t in self.translators],
                                "strength": list(self.cfg.style_strength)}
        return {"data": one(self.sim), "style_data": one(self.style), "style_on_the_fly": style_on_the_fly,
                "val_data": one(self.val_set) if self.cfg.val_data else "split of --data by sample id",
                "n_train": int(self.epoch_len), "n_val": int(len(self.val_idx))}


def _widenable(source, target) -> bool:
    """Whether ``target`` is ``source`` with a larger base width (and nothing else that
    changes the layers' inputs)."""
    same = ("depth", "n_heights", "norm")
    return (target.base_channels > source.base_channels and source.norm != "group"
            and all(getattr(source, k) == getattr(target, k) for k in same))


def best_threshold(f1_by_threshold: dict) -> float:
    """The threshold with the best F1; ties go to the one nearest 0.5."""
    return max(f1_by_threshold, key=lambda t: (f1_by_threshold[t], -abs(t - 0.5)))


def evaluate(net, examples, mcfg, device: str = "cpu", batch_size: int = 8, pos_weight: float = 20.0,
             thresholds=THRESHOLDS, focal_beta: float = 0.0) -> dict:
    """Validation loss and atom-level scores of ``net`` on prepared examples.

    Scores use :func:`napari_afm_style.predict.match_atoms` (0.5 Å lateral and 0.5 Å
    vertical tolerance), pooled over all examples, at every threshold of ``thresholds``;
    reported are the values at the threshold with the best O F1 (``best_threshold``)
    and at the model's default threshold (``*_at_default``).
    """
    import torch
    from ase.data import atomic_numbers

    from .dataset import render_targets
    from ..predict import PredictionMaps, match_atoms, pool_matches

    net.eval()
    loss_sum, n = 0.0, 0
    per_t = {t: {el: [] for el in mcfg.elements} for t in thresholds}
    default_t = mcfg.default_threshold
    per_default = {el: [] for el in mcfg.elements}
    groups: dict = {}
    for ex in examples:  # batch windows of equal shape together
        groups.setdefault(ex.x.shape, []).append(ex)
    with torch.inference_mode():
        for group in groups.values():
            for k in range(0, len(group), batch_size):
                chunk = group[k:k + batch_size]
                shape = chunk[0].x.shape[-2:]
                x = torch.from_numpy(np.stack([c.x for c in chunk])).to(device)
                t = torch.from_numpy(np.stack([render_targets(c.numbers, c.atoms_px, shape, mcfg)
                                               for c in chunk])).to(device)
                logits = net(x)
                loss_sum += float(heatmap_loss(logits, t, pos_weight, focal_beta)) * len(chunk)
                n += len(chunk)
                probs = torch.sigmoid(logits).float().cpu().numpy()
                for prob, c in zip(probs, chunk):
                    pm = PredictionMaps(prob, mcfg.elements, mcfg.z_centres_A, mcfg.pixel_size_A,
                                        np.zeros(2), 0.0, mcfg.min_separation_A, default_t)
                    for el in mcfg.elements:
                        true = c.truth_positions_A[c.truth_numbers == atomic_numbers[el]]
                        peaks = pm.peaks(el)
                        for thr in thresholds:
                            per_t[thr][el].append(match_atoms(peaks[peaks[:, 3] >= thr, :3], true))
                        per_default[el].append(match_atoms(peaks[peaks[:, 3] >= default_t, :3], true))
    first = mcfg.elements[0]
    pooled = {thr: {el: pool_matches(per_t[thr][el]) for el in mcfg.elements} for thr in thresholds}
    best_t = best_threshold({thr: pooled[thr][first]["f1"] for thr in thresholds})
    res = {"loss": loss_sum / max(n, 1), "n_images": n, "best_threshold": float(best_t)}
    for el in mcfg.elements:
        s = pooled[best_t][el]
        d = pool_matches(per_default[el])
        res.update({f"{el}_precision": s["precision"], f"{el}_recall": s["recall"], f"{el}_f1": s["f1"],
                    f"{el}_rmse_A": s["rmse_A"], f"{el}_f1_at_default": d["f1"]})
    res["f1_by_threshold"] = {str(thr): pooled[thr][first]["f1"] for thr in thresholds}
    return res


def format_val(v: dict, elements) -> str:
    parts = [f"val loss {v['loss']:.4f}"]
    for el in elements:
        rm = v.get(f"{el}_rmse_A")
        rm_s = f" rmse {rm:.3f} Å" if rm is not None and np.isfinite(rm) else ""
        parts.append(f"{el} P/R/F1 {v[f'{el}_precision']:.3f}/{v[f'{el}_recall']:.3f}/{v[f'{el}_f1']:.3f}{rm_s}")
    parts.append(f"@t={v['best_threshold']:.2f}")
    return "  ".join(parts)


# -- the loop --------------------------------------------------------------------------------

def _check_same_data(out: Path, stored: dict, now: dict) -> None:
    """Refuse to resume a run on data that changed under the same folder names: the
    epoch plans and the validation split would silently mean other samples."""
    fields = ("folder", "folders", "n_samples", "n_shards", "generation")

    def key(p):
        return {k: p.get(k) for k in fields} if isinstance(p, dict) else p

    def brief(p):
        return {k: p.get(k) for k in ("folder", "folders", "n_samples")} if isinstance(p, dict) else p

    changed = [n for n in ("data", "style_data", "val_data") if key(stored.get(n)) != key(now.get(n))]
    if changed:
        detail = "; ".join(f"{n}: {brief(stored.get(n))} → {brief(now.get(n))}" for n in changed)
        raise ValueError(f"{out}: the training data changed since this run's checkpoint ({detail}); resume it "
                         "with the data it was started on, or start a new run in another --out")


def _merge_resume(stored: dict, cfg: TrainConfig) -> TrainConfig:
    """Keep the stored run's definition; take only run-control settings from ``cfg``."""
    control = ("epochs", "device", "max_minutes", "resume", "max_steps", "num_threads", "progress",
               "cache_mb", "out", "val_max_samples", "loader_workers")
    merged = dict(stored)
    new = cfg.to_dict()
    changed = [k for k in new if k not in control and k != "command" and k in stored and new[k] != stored[k]]
    if changed:
        warnings.warn(f"resuming with the checkpoint's settings; ignoring changed {changed}", stacklevel=3)
    for k in control:
        if k == "epochs" and new[k] is None:
            continue  # not given: keep the stored run's
        merged[k] = new[k]
    merged["command"] = stored.get("command", "") + (" && " + cfg.command if cfg.command else "")
    return TrainConfig(**merged)


def train(config: TrainConfig | dict, callback=None) -> list[dict]:
    """Train (or resume training) a predictor; returns the per-epoch history.

    Files in ``config.out``: ``last.pt`` (full training state, every epoch and on
    interruption), ``best.pt`` (best validation O F1), ``history.json``.

    Parameters
    ----------
    config : TrainConfig or dict
    callback : callable, optional
        ``callback(epoch, batch, loss)`` after every optimiser step (progress hooks,
        tests); an exception raised there interrupts training like Ctrl-C would.

    Raises
    ------
    KeyboardInterrupt
        Re-raised after a loadable checkpoint has been written.
    FileExistsError
        ``out`` already holds a run and ``resume`` is not set.

    Notes
    -----
    Started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), every process trains
    a replica with DistributedDataParallel (:mod:`.distributed`): each takes its share of
    every global batch of ``batch_size`` samples, batch norms are synchronised, and only
    rank 0 writes files and prints. The result is the single-process run's up to
    floating-point summation order; a run can be resumed with another number of
    processes.
    """
    from .distributed import DistContext

    ctx = DistContext.from_env()
    try:
        return _train(config, callback, ctx)
    finally:
        ctx.close()


def _train(config, callback, ctx) -> list[dict]:
    import torch

    from ..models.predictor import AtomPredictor, PredictorConfig
    from .distributed import PlanBatches, all_reduce_sum, iterate_batches, state_digest, sync_batchnorm

    cfg = config if isinstance(config, TrainConfig) else TrainConfig(**config)
    main = ctx.is_main
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    ckpt = None
    if last_path.exists():
        if not cfg.resume:
            raise FileExistsError(f"{out} already holds a training run (last.pt); use --resume to continue "
                                  "it or choose another --out")
        ckpt = weights.load(last_path)
        cfg = _merge_resume(ckpt["train_config"], cfg)
    elif cfg.resume and main:
        log.warning(f"note: nothing to resume in {out}; starting a new run")
    if cfg.epochs is None:
        cfg = replace(cfg, epochs=DEFAULT_EPOCHS)
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    try:
        device = ctx.device(resolve_device(cfg.device))
    except ValueError as e:  # a training run reports an unusable device as a RuntimeError
        raise RuntimeError(str(e)) from None
    ctx.setup(device)
    torch.manual_seed(cfg.seed)
    src = None
    if ckpt:
        mcfg = PredictorConfig.from_dict(ckpt["model_config"])
    elif cfg.init_from:
        from ..predict import load_model

        src = load_model(cfg.init_from)  # a shipped name, weights, a checkpoint or a run folder
        # the source's architecture, with what this run asks for explicitly on top
        mcfg = PredictorConfig.from_dict({**src.config.to_dict(), **cfg.model})
    else:
        mcfg = PredictorConfig(**cfg.model)
    data = _Data(cfg, mcfg)  # targets follow the model's depth bins
    if device != "cpu" and not cfg.loader_workers:
        # on-the-fly style images: translate on the training GPU (copies: the translators
        # loaded for inference stay on the CPU); loader workers translate on the CPU
        data.translators = [t.to(device) for t in data.translators]
    net = AtomPredictor(mcfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history, epoch, step_in_epoch, global_step = [], 0, 0, 0
    running = {"loss_sum": 0.0, "n": 0}
    best = {"O_f1": -1.0, "epoch": None}
    elapsed_before = 0.0
    if ckpt:
        net.load_state_dict(ckpt["model_state"])
        opt.load_state_dict(ckpt["optimizer_state"])
        history = list(ckpt["history"])
        epoch, step_in_epoch, global_step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]
        running = dict(ckpt["running"])
        best = dict(ckpt["best"])
        elapsed_before = float(ckpt.get("time_s", 0.0))
        torch.set_rng_state(ckpt["torch_rng"])
        if main:
            log.info(f"resuming {out} at epoch {epoch + 1}, batch {step_in_epoch}")
    elif src is not None:
        source_net, how = src.net, ""
        if _widenable(src.config, mcfg):
            from ..models.predictor import widen

            # a wider net starts as the same function as the narrow one (Net2WiderNet)
            source_net = widen(src.net.float().cpu(), mcfg.base_channels, seed=cfg.seed)
            how = f" (widened {src.config.base_channels} → {mcfg.base_channels} channels)"
        own = net.state_dict()
        copied = {k: v for k, v in source_net.state_dict().items() if k in own and own[k].shape == v.shape}
        net.load_state_dict({**own, **copied})
        fresh = sorted(set(own) - set(copied))
        if main:
            log.info(f"initialised from {src.source}{how}"
                     + (f"; new (shape changed): {', '.join(fresh)}" if fresh else ""))
    model = net  # the replica that is trained, evaluated and saved
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        # every rank has read the same checkpoint (or none) before rank 0 writes anything
        ctx.barrier()
        net = sync_batchnorm(net, device)
        model = net
        net = DistributedDataParallel(net, device_ids=[device] if device.startswith("cuda") else None)
        if main:
            log.info(f"distributed: {ctx.world_size} processes ({'nccl' if device.startswith('cuda') else 'gloo'}), "
                     f"global batch {cfg.batch_size}")
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "train_config.json", cfg.to_dict(), indent=1)
    first_key = f"{mcfg.elements[0]}_f1"
    steps = data.steps_per_epoch()
    total_steps = steps * cfg.epochs
    t0 = time.monotonic()
    start_step = global_step
    provenance = data.provenance()
    if ckpt and ckpt.get("data"):
        _check_same_data(out, ckpt["data"], plain(provenance))

    def state(complete_epoch: bool) -> dict:
        return {
            "format": weights.PREDICTOR_CHECKPOINT, "version": 1,
            "model_config": mcfg.to_dict(), "train_config": cfg.to_dict(),
            "model_state": model.state_dict(), "optimizer_state": opt.state_dict(),
            "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
            "running": running, "history": history, "best": best,
            "best_threshold": best.get("threshold"),
            "torch_rng": torch.get_rng_state(), "time_s": elapsed_before + time.monotonic() - t0,
            "data": plain(provenance), "epoch_complete": complete_epoch,
            "world_size": ctx.world_size, "replica_digests": replica_digests,
        }

    def save(path, blob):
        if main:
            _save(path, blob)

    def write_history():
        if main:
            write_json_atomic(out / "history.json", plain(history), indent=1)

    replica_digests = None

    def check_replicas() -> None:
        """Compare the replicas (every rank must call it); they must all be equal."""
        nonlocal replica_digests
        replica_digests = ctx.gather_objects(state_digest(model))
        if len(set(replica_digests)) > 1:
            raise RuntimeError(f"the {ctx.world_size} model replicas diverged (digests {replica_digests})")

    val_examples = None
    stop_reason = None
    try:
        from tqdm.auto import tqdm

        while epoch < cfg.epochs and stop_reason is None:
            plan = data.plan(epoch)
            net.train()
            bar = tqdm(total=len(plan), initial=step_in_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       unit="batch", disable=not (cfg.progress and main), leave=False)
            batches = PlanBatches(data.batch, epoch, plan, step_in_epoch,
                                  ctx.share if ctx.distributed else None)
            for b, x, t, n_items in iterate_batches(batches, cfg.loader_workers):
                for g in opt.param_groups:
                    g["lr"] = _lr_at(global_step, total_steps, cfg)
                xt = torch.as_tensor(x).to(device)
                tt = torch.as_tensor(t).to(device)
                if ctx.distributed:
                    # this rank's share, over the weight of the whole global batch; the
                    # gradients DDP averages then add up to the single-process gradient
                    den = all_reduce_sum((1.0 + cfg.pos_weight * tt).sum().detach().double()).to(tt.dtype)
                    loss = heatmap_loss(net(xt), tt, cfg.pos_weight, cfg.focal_beta, denominator=den)
                else:
                    loss = heatmap_loss(net(xt), tt, cfg.pos_weight, cfg.focal_beta)
                opt.zero_grad(set_to_none=True)
                (loss * ctx.world_size if ctx.distributed else loss).backward()
                opt.step()
                too_long = cfg.max_minutes is not None and time.monotonic() - t0 > 60 * cfg.max_minutes
                if ctx.distributed:
                    # the global loss, and one decision to stop for all ranks
                    agreed = all_reduce_sum(torch.stack([loss.detach().double().cpu(),
                                                         torch.tensor(float(too_long), dtype=torch.float64)]))
                    lv, too_long = float(agreed[0]), bool(agreed[1] > 0)
                else:
                    lv = float(loss.detach())
                running["loss_sum"] += lv * n_items
                running["n"] += n_items
                step_in_epoch, global_step = b + 1, global_step + 1
                bar.update(1)
                bar.set_postfix(loss=f"{lv:.4f}")
                if callback is not None:
                    callback(epoch, b, lv)
                if too_long:
                    stop_reason = f"time limit of {cfg.max_minutes} min reached"
                elif cfg.max_steps is not None and global_step >= cfg.max_steps:
                    stop_reason = f"step limit of {cfg.max_steps} reached"
                if stop_reason:
                    break
            bar.close()
            if stop_reason and step_in_epoch < len(plan):
                break
            # end of epoch: validate, log, checkpoint (every rank validates: the same
            # weights, so the same history and best epoch everywhere)
            if ctx.distributed:
                check_replicas()
            if val_examples is None:
                val_examples = data.validation_examples()
            val = evaluate(model, val_examples, mcfg, device, pos_weight=cfg.pos_weight, focal_beta=cfg.focal_beta)
            entry = {"epoch": epoch + 1, "train_loss": running["loss_sum"] / max(running["n"], 1),
                     "lr": _lr_at(global_step - 1, total_steps, cfg), "steps": global_step,
                     "time_s": elapsed_before + time.monotonic() - t0, "val": val}
            history.append(plain(entry))
            if main:
                print(f"epoch {epoch + 1}/{cfg.epochs}: train loss {entry['train_loss']:.4f}  "
                      + format_val(val, mcfg.elements), flush=True)
            epoch, step_in_epoch = epoch + 1, 0
            running = {"loss_sum": 0.0, "n": 0}
            improved = val[first_key] > best["O_f1"]
            if improved:
                best = {"O_f1": float(val[first_key]), "epoch": epoch, "threshold": val["best_threshold"]}
            blob = state(True)
            save(last_path, blob)
            if improved:
                save(best_path, blob)
            write_history()
    except BaseException:
        # Ctrl-C or any failure mid-run: keep what was learnt (an atomic write, so the
        # previous checkpoint survives if this one is interrupted too)
        if global_step == start_step:
            raise
        save(last_path, state(False))
        write_history()
        if main:
            log.warning(f"training interrupted; checkpoint saved to {last_path} (continue with --resume)")
        raise
    if stop_reason:
        if ctx.distributed:
            check_replicas()
        save(last_path, state(step_in_epoch == 0))
        write_history()
        if main:
            log.warning(f"stopped: {stop_reason}; checkpoint saved to {last_path} (continue with --resume)")
    return history


# -- export ---------------------------------------------------------------------------------------

def export_model(checkpoint, path, name: str | None = None, command: str | None = None) -> Path:
    """Write shippable weights (fp16, ≤ a few MB) and a model card ``<path>.md``.

    Parameters
    ----------
    checkpoint : path
        A checkpoint file or a run folder (its ``best.pt``, else ``last.pt``).
    path : path
        Output ``.pt``, e.g. ``src/napari_afm_style/models/predictor_pure.pt``.
    name : str, optional
        Model name for the card (default: from the file name).
    command : str, optional
        The command that trained it (default: the one stored in the checkpoint).
    """
    from ..models.predictor import AtomPredictor, PredictorConfig
    from ..predict import save_weights

    ckpt_path = Path(checkpoint)
    if ckpt_path.is_dir():
        ckpt_path = ckpt_path / "best.pt" if (ckpt_path / "best.pt").is_file() else ckpt_path / "last.pt"
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"{ckpt_path}: no such checkpoint")
    ckpt = weights.load(ckpt_path)
    weights.require_format(ckpt, weights.PREDICTOR_CHECKPOINT, f"{ckpt_path} is not a predictor training checkpoint")
    mcfg = PredictorConfig.from_dict(ckpt["model_config"])
    net = AtomPredictor(mcfg)
    net.load_state_dict(ckpt["model_state"])
    tcfg = ckpt["train_config"]
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"{path}: weights are written as .pt")
    name = name or (path.stem[len("predictor_"):] if path.stem.startswith("predictor_") else path.stem)
    history = ckpt.get("history", [])
    # the weights in any checkpoint (best.pt or last.pt) are those after epoch ckpt["epoch"]
    best_epoch = ckpt.get("epoch")
    metrics = next((h["val"] for h in history if h["epoch"] == best_epoch), history[-1]["val"] if history else {})
    threshold = metrics.get("best_threshold") or ckpt.get("best_threshold") or mcfg.default_threshold
    card = {"name": name, "command": command or tcfg.get("command", ""), "seed": tcfg["seed"],
            "regime": tcfg["regime"], "data": ckpt.get("data", {}), "epochs_trained": ckpt["epoch"],
            "epoch_exported": best_epoch, "metrics": {k: v for k, v in metrics.items() if k != "f1_by_threshold"},
            "default_threshold": threshold, "model_config": mcfg.to_dict(),
            "n_parameters": int(sum(p.numel() for p in net.parameters())),
            "train_config": tcfg, "checkpoint": str(ckpt_path)}
    save_weights(net, mcfg, path, threshold, card)
    size_mb = path.stat().st_size / 2**20
    md = [f"# Structure-discovery model `{name}`", "",
          f"File: `{path.name}` ({size_mb:.1f} MB, fp16 weights, {card['n_parameters']} parameters); "
          f"use it with `afm-style predict STACK -o OUT.xyz --model {name}` or "
          f"`napari_afm_style.predict.predict(stack, model={name!r})`.", "",
          "## Training", "",
          f"* command: `{card['command'] or '(train() API)'}`",
          f"* regime: {tcfg['regime']}" + (f" (mix {tcfg['mix']})" if tcfg["regime"] == "hybrid" else ""),
          f"* seed: {tcfg['seed']}; epochs trained: {ckpt['epoch']}; exported epoch: {best_epoch}",
          f"* batch size {tcfg['batch_size']}, lr {tcfg['lr']}, crops {tcfg['crop_px']} px, "
          f"pos_weight {tcfg['pos_weight']}" + (f", focal β {tcfg['focal_beta']}" if tcfg.get("focal_beta") else ""),
          f"* data: `{json.dumps(card['data'])}`", "",
          "## Model", "",
          f"* elements {list(mcfg.elements)}; depth bins {mcfg.z_min_A} … {mcfg.z_max_A} Å every {mcfg.z_step_A} Å "
          "below the closest tip height",
          f"* U-Net base {mcfg.base_channels} channels, {mcfg.depth} downsamplings, {mcfg.norm} norm",
          f"* input: {mcfg.n_heights} heights {mcfg.height_step_A} Å apart, {mcfg.pixel_size_A} Å pixels, "
          "per-slice normalised", "",
          "## Validation metrics (0.5 Å lateral, 0.5 Å height tolerance)", "",
          f"* default threshold (best O F1 on validation): {threshold}"]
    for k, v in card["metrics"].items():
        md.append(f"* {k}: {v:.4f}" if isinstance(v, float) else f"* {k}: {v}")
    path.with_suffix(".md").write_text("\n".join(md) + "\n")
    return path


# -- CLI ----------------------------------------------------------------------------------------

def parse_mix(text: str) -> dict:
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        k, _, v = part.partition("=")
        if k.strip() not in KINDS or not v:
            raise argparse.ArgumentTypeError(f"--mix wants e.g. sim=0.4,handcrafted=0.3,style=0.3; got {text!r}")
        out[k.strip()] = float(v)
    return out
