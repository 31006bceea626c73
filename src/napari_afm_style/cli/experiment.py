"""``afm-style experiment``: the four-regime training experiment."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training.experiment import CHOICE_CRITERIA, REGIMES, ExperimentConfig, run_experiment
from ..training.train_predictor import parse_mix
from ._options import add_device_option, add_progress_option, add_seed_option

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    d = ExperimentConfig.DEFAULTS
    p.add_argument("--sim", required=True, nargs="+",
                   help="simulated training shards (`afm-style generate`): one folder or several read as one set")
    p.add_argument("--heldout", required=True, help="held-out simulated shards (structures never trained on)")
    p.add_argument("--exp", required=True, help="folder of unlabelled experiment(-like) scans")
    p.add_argument("--out", required=True, help="experiment folder (checkpoints, models, results)")
    p.add_argument("--style", help="forward-translated --sim shards (default: translate on the fly, "
                                   "strength drawn per sample from --style-strength)")
    p.add_argument("--style-strength", type=float, nargs=2, default=d["style_strength"], metavar=("MIN", "MAX"),
                   help="on-the-fly forward-translation strength range of the style kinds")
    p.add_argument("--labelled", default=None,
                   help="folder of labelled experiment-style scans (atoms_Z, atoms_xyz) to score every regime "
                        "on (validation only)")
    add_device_option(p, "training and prediction")
    p.add_argument("--heldout-style", help="forward-translated --heldout shards (default: made in OUT/heldout_style)")
    p.add_argument("--translator", nargs="+", default=None, metavar="WEIGHTS",
                   help="forward translator weights (default: shipped); several: the one whose short style-regime "
                        "probe is most decided on --exp (lowest O-map entropy) is chosen, without labels")
    p.add_argument("--choice-epochs", type=int, default=d["choice_epochs"],
                   help="epochs of each translator probe (several --translator)")
    p.add_argument("--choice-scans", type=int, default=d["choice_scans"],
                   help="scans of --exp the probes are scored on (several --translator)")
    p.add_argument("--choice-criterion", choices=sorted(CHOICE_CRITERIA), default=d["choice_criterion"],
                   help="label-free criterion for several --translator: entropy (fast) or resim_ncc (ppafm "
                        "re-simulation; ranked translators as well in docs/experiment.md)")
    p.add_argument("--strength", default=d["strength"], help="forward translation strength or 'recommended'")
    p.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES), help="which training regimes to run")
    p.add_argument("--epochs", type=int, default=d["epochs"], help="training epochs of every regime")
    p.add_argument("--batch-size", type=int, default=d["batch_size"], help="training batch of every regime")
    p.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate of every regime")
    add_seed_option(p, d["seed"], "training, translation strengths and bootstraps (the same for every regime)")
    p.add_argument("--mix", type=parse_mix, default=d["mix"],
                   help="hybrid proportions of sim, handcrafted, style, style_handcrafted "
                        "(default 0.25 each)")
    p.add_argument("--jobs", type=int, default=d["jobs"], help="regimes trained at once (1 torch thread each when > 1)")
    p.add_argument("--max-exp-scans", type=int, default=None, help="evaluate on at most this many experiment-like scans (default: all)")
    p.add_argument("--max-heldout", type=int, default=None, help="evaluate on at most this many held-out simulations (default: all)")
    p.add_argument("--bootstrap", type=int, default=d["bootstrap"], help="bootstrap resamples over scans")
    p.add_argument("--init-from", default=None,
                   help="start every regime from these weights (a shipped name, weights or checkpoint): "
                        "the regimes then differ only in the images of the fine-tuning")
    add_progress_option(p)


def run(args) -> int:
    strength = args.strength if args.strength == "recommended" else float(args.strength)
    cfg = ExperimentConfig(sim=args.sim[0] if len(args.sim) == 1 else list(args.sim), heldout=args.heldout,
                           exp=args.exp, out=args.out, style=args.style,
                           style_strength=tuple(args.style_strength), labelled=args.labelled, device=args.device,
                           heldout_style=args.heldout_style, strength=strength,
                           translator=(args.translator[0] if args.translator and len(args.translator) == 1
                                       else args.translator),
                           choice_epochs=args.choice_epochs, choice_scans=args.choice_scans,
                           choice_criterion=args.choice_criterion,
                           regimes=args.regimes, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           seed=args.seed, mix=args.mix, jobs=args.jobs, max_exp_scans=args.max_exp_scans,
                           max_heldout=args.max_heldout, bootstrap=args.bootstrap, progress=not args.no_progress,
                           train_options={"init_from": args.init_from} if args.init_from else {})
    res = run_experiment(cfg)
    print(Path(res["files"]["md"]).read_text())
    return 0
