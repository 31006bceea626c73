"""Data-parallel training (torchrun, gloo on the CPU) and batch loading in workers.

One ``torchrun --nproc_per_node 2`` launch (tests/ddp_worker.py) trains a fresh run and
resumes a single-process run; both must follow the single-process run with the same
global batch, and the two replicas must stay identical.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from test_train_predictor import NET, _cfg, write_shards

from napari_afm_style.models.predictor import PredictorConfig
from napari_afm_style.train_predictor import _Data, train
from napari_afm_style.training.distributed import DistContext, PlanBatches, iterate_batches, state_digest

torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("dist") / "sim", 24)


def test_loader_workers_give_the_same_batches_as_the_main_thread(shards, tmp_path):
    cfg = _cfg(shards, tmp_path / "x", regime="handcrafted", batch_size=5)
    data = _Data(cfg, PredictorConfig(**NET))
    plan = data.plan(1)
    inline = list(iterate_batches(PlanBatches(data.batch, 1, plan, start=1), workers=0))
    loaded = list(iterate_batches(PlanBatches(data.batch, 1, plan, start=1), workers=2))
    assert [b for b, *_ in loaded] == list(range(1, len(plan))) == [b for b, *_ in inline]
    for (_, x0, t0, n0), (_, x1, t1, n1) in zip(inline, loaded):
        assert n0 == n1 and np.array_equal(x0, x1.numpy()) and np.array_equal(t0, t1.numpy())


def test_rank_shares_are_the_rows_of_the_global_batch(shards, tmp_path):
    cfg = _cfg(shards, tmp_path / "x", regime="handcrafted", batch_size=5)
    data = _Data(cfg, PredictorConfig(**NET))
    crop_px, items = data.plan(0)[0]
    x, t = data.batch(0, 0, crop_px, items)
    rows = []
    for rank in range(3):
        share = DistContext(world_size=3, rank=rank).share(len(items))
        xs, ts = data.batch(0, 0, crop_px, items, keep=share)
        assert np.array_equal(xs, x[share.start:share.stop]) and np.array_equal(ts, t[share.start:share.stop])
        rows += list(share)
    assert rows == list(range(len(items)))
    empty = data.batch(0, 0, crop_px, items[:1], keep=range(1, 1))
    assert empty[0].shape[0] == 0 and empty[1].shape[0] == 0


def test_two_processes_follow_the_single_process_run(shards, tmp_path):
    # 20 training samples in global batches of 19 and 1: shares of 9 and 10, then an
    # empty one on rank 0 (which must still take part in the step)
    kw = dict(epochs=2, regime="handcrafted", batch_size=19)
    single = []
    train(_cfg(shards, tmp_path / "single", **kw), callback=lambda e, b, loss: single.append(loss))
    train(_cfg(shards, tmp_path / "part", max_steps=3, **kw))  # resumed below by two processes
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "ddp_worker.py"), str(shards), str(tmp_path)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"losses_rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # every rank sees the global loss
    assert ranks[0]["world_size"] == 2
    # the same global batches as the single process: the same losses, step by step
    assert len(single) == len(ranks[0]["fresh"]) == 4
    np.testing.assert_allclose(ranks[0]["fresh"], single, rtol=2e-4)
    np.testing.assert_allclose(ranks[0]["resumed"], single[3:], rtol=2e-4)
    ref = torch.load(tmp_path / "single" / "last.pt", weights_only=True)
    for name in ("ddp", "part"):
        ck = torch.load(tmp_path / name / "last.pt", weights_only=True)
        # the two replicas ended identical, and rank 0 saved that state
        assert ck["world_size"] == 2 and ck["epoch"] == 2
        assert ck["replica_digests"] == [state_digest(ck["model_state"])] * 2
        for k, v in ref["model_state"].items():
            if v.is_floating_point():
                torch.testing.assert_close(ck["model_state"][k], v, rtol=1e-3, atol=1e-4)
        for mine, theirs in zip(ck["history"], ref["history"], strict=True):
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=2e-4)
            assert mine["val"]["loss"] == pytest.approx(theirs["val"]["loss"], rel=1e-3)
    # only rank 0 wrote: no stray files from rank 1
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["best.pt", "history.json", "last.pt",
                                                                    "train_config.json"]
