"""Run under ``torchrun --nproc_per_node 2`` by tests/test_distributed.py (not a test itself).

``python ddp_worker.py DATA OUT``: on every rank, (1) a fresh distributed run in
``OUT/ddp`` and (2) the resumption, by two processes, of the single-process run that the
test stopped in ``OUT/part``; the per-step losses each rank saw go to
``OUT/losses_rank<R>.json``.
"""

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_train_predictor import _cfg  # noqa: E402

from napari_afm_style.train_predictor import train  # noqa: E402


def main(data, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # train() joins it and leaves it open for the second run
    rank = dist.get_rank()
    losses = {"fresh": [], "resumed": []}
    train(_cfg(data, out / "ddp", epochs=2, regime="handcrafted", batch_size=19, loader_workers=1),
          callback=lambda e, b, loss: losses["fresh"].append(loss))
    train(_cfg(data, out / "part", epochs=2, regime="handcrafted", batch_size=19, resume=True),
          callback=lambda e, b, loss: losses["resumed"].append(loss))
    (out / f"losses_rank{rank}.json").write_text(json.dumps({**losses, "world_size": int(os.environ["WORLD_SIZE"])}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
