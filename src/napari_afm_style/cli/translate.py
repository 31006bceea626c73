"""``afm-style translate``: style-translate a stack file or a training-set folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..translate import DIRECTIONS, validate_strength
from ._options import add_device_option, add_progress_option, int_at_least

__all__ = ["configure", "run"]


def _strength_arg(text: str):
    if text == "recommended":
        return text  # resolved against the translator once it is loaded
    try:
        value = float(text)
    except ValueError:
        value = text  # validate_strength says what a strength may be
    try:
        return validate_strength(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a stack file (any supported format) or a training-set folder of shards")
    p.add_argument("-o", "--output", required=True, help="output .npz (for a stack) or folder (for shards)")
    p.add_argument("--direction", choices=tuple(DIRECTIONS), default="backward",
                   help="forward: simulated → experimental; backward: experimental → simulated (default)")
    p.add_argument("--strength", type=_strength_arg, default=1.0,
                   help="0…1 (0 = unchanged) or 'recommended' (the training's held-out choice); default 1")
    p.add_argument("--model", default=None, help="translator .pt or training folder (default: shipped weights)")
    p.add_argument("--batch-size", type=int_at_least(1), default=8, help="stacks per forward pass of the generator (memory vs speed)")
    add_device_option(p, "the generator")
    add_progress_option(p)


def run(args) -> int:
    from ..io import write_stack
    from ..io.shards import ShardFolder
    from ..translate import translate, translate_shards
    from ._inputs import read_input_stack

    src = Path(args.input)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if ShardFolder.holds_shards(src):
        summary = translate_shards(src, args.output, args.direction, args.strength, args.model,
                                   progress=not args.no_progress, batch_size=args.batch_size, device=args.device)
        print(f"translated {summary['stacks']} stacks in {summary['shards_written']} shard(s) "
              f"({summary['shards_skipped']} already done) → {summary['out_dir']}")
        return 0
    stack = read_input_stack(src)
    out = translate(stack, args.direction, args.strength, args.model, args.device)
    path = write_stack(out, args.output)
    t = out.metadata["translation"]
    print(f"wrote {path} ({t['meaning']}, strength {t['strength']:g}, model {t['model']})")
    return 0
