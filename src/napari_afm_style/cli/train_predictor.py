"""``afm-style train-predictor``: train the structure-discovery model."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..training.train_predictor import (
    DEFAULT_EPOCHS,
    DEFAULT_MIX,
    REGIMES,
    TrainConfig,
    export_model,
    format_val,
    parse_mix,
    train,
)
from ._options import add_device_option

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, nargs="+",
                   help="training shards: a folder written by `afm-style generate`, or several (different "
                        "seeds) read as one set")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--val-data", help="held-out shards for validation")
    g.add_argument("--val-fraction", type=float, default=0.1,
                   help="fraction of --data held out (by sample id) when --val-data is not given")
    p.add_argument("--regime", choices=REGIMES, default="pure", help="training regime (see the docs)")
    p.add_argument("--style-data", help="style-translated shards (`afm-style translate`) for style/hybrid; "
                                        "default: translate forward on the fly (--translator, --style-strength)")
    p.add_argument("--translator", nargs="+", default=None, metavar="WEIGHTS",
                   help="forward translator(s) for on-the-fly style images, one drawn per sample "
                        "(default: the shipped one)")
    p.add_argument("--style-strength", type=float, nargs=2, default=(0.0, 1.0), metavar=("MIN", "MAX"),
                   help="forward-translation strength, uniform per sample (default 0 1, the range that "
                        "measured best: docs/experiment.md)")
    p.add_argument("--mix", type=parse_mix, default=dict(DEFAULT_MIX),
                   help="hybrid proportions of sim, handcrafted, style and style_handcrafted (translated, "
                        "then perturbed), e.g. sim=0.25,handcrafted=0.25,style=0.25,style_handcrafted=0.25")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs of the run (default {DEFAULT_EPOCHS}; with --resume: the stored run's, unless given)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="samples per optimiser step (default 16); under torchrun the global batch, split "
                        "across the processes")
    p.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (warm-up, then cosine decay)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, batches, crops and perturbations")
    p.add_argument("--out", required=True, help="checkpoint folder (last.pt, best.pt, history.json)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_device_option(p, "training")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    p.add_argument("--max-steps", type=int, default=None, help="stop (with a checkpoint) after this many batches")
    p.add_argument("--base-channels", type=int, default=None,
                   help="U-Net width (new runs; default 16, or the --init-from model's; 24–32 on a GPU)")
    p.add_argument("--depth", type=int, default=None, help="U-Net downsamplings (new runs; default 3)")
    p.add_argument("--z-min-A", type=float, default=None,
                   help="deepest depth bin, Å relative to the closest tip height (default -6; new runs)")
    p.add_argument("--crop-px", type=int, nargs=2, default=(96, 128), metavar=("MIN", "MAX"),
                   help="random square crop size range, pixels")
    p.add_argument("--perturb-strength", type=float, default=1.0, help="max handcrafted perturbation strength")
    p.add_argument("--pos-weight", type=float, default=20.0, help="weight of atom voxels in the heat-map loss (atoms are rare)")
    p.add_argument("--focal-beta", type=float, default=0.0,
                   help="quality-focal modulation |target − p|^β of the loss (0: off; 2 is the usual choice)")
    p.add_argument("--val-max-samples", type=int, default=512, help="validate on at most this many samples per epoch")
    p.add_argument("--num-threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--loader-workers", type=int, default=0, metavar="N",
                   help="DataLoader worker processes that build the batches (default 0: on the training "
                        "thread); the batches are the same for any N. Under torchrun: per process")
    p.add_argument("--init-from", default=None,
                   help="start from the weights of another run (checkpoint or run folder): fine-tuning")
    p.add_argument("--export", default=None, help="after training, export weights (+ model card) to this .pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    cfg = TrainConfig(
        data=args.data[0] if len(args.data) == 1 else list(args.data), out=args.out, val_data=args.val_data,
        val_fraction=args.val_fraction, regime=args.regime, style_data=args.style_data, mix=args.mix,
        translators=args.translator, style_strength=tuple(args.style_strength),
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
        max_minutes=args.max_minutes, resume=args.resume, crop_px=tuple(args.crop_px),
        perturb_strength=args.perturb_strength, pos_weight=args.pos_weight, focal_beta=args.focal_beta,
        val_max_samples=args.val_max_samples, max_steps=args.max_steps, num_threads=args.num_threads,
        loader_workers=args.loader_workers,
        model={k: v for k, v in (("base_channels", args.base_channels), ("depth", args.depth),
                                 ("z_min_A", args.z_min_A)) if v is not None},
        init_from=args.init_from, progress=not args.no_progress, command="afm-style " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    from ..training.distributed import is_main_process

    history = train(cfg)
    if not is_main_process():  # a torchrun rank other than 0: rank 0 reports and exports
        return 0
    if history:
        print(f"done: {len(history)} epoch(s) in {args.out}; last: {format_val(history[-1]['val'], ('O', 'H'))}"
              if "O_f1" in history[-1]["val"] else f"done: {len(history)} epoch(s)")
    if args.export:
        path = export_model(args.out, args.export)
        print(f"exported {path} and {path.with_suffix('.md')}")
    return 0
