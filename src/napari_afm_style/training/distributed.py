"""Data-parallel training across processes (``torchrun``) and batch loading in workers.

A run started by ``torchrun`` (or any launcher that sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``) trains one model replica per process with
:class:`torch.nn.parallel.DistributedDataParallel`: gloo on the CPU, NCCL on CUDA (one GPU
per process, ``cuda:LOCAL_RANK``). The *global* batch stays the one of a single-process
run: every rank computes the same epoch plan and takes a contiguous share of each batch
(:meth:`DistContext.share`), and the loss is normalised by the weight summed over the
whole global batch (:func:`all_reduce_sum`), so the averaged gradient is the gradient of
the single-process loss. Batch normalisation is synchronised across the ranks (torch's
:class:`~torch.nn.SyncBatchNorm` on CUDA, :class:`CpuSyncBatchNorm` on the CPU, where
torch's own refuses to run), so the statistics are those of the global batch too: the
run follows the single-process one up to floating-point summation order, and a run can
be resumed with another number of processes.

:class:`PlanBatches` serves the batches of an epoch plan to a
:class:`torch.utils.data.DataLoader`; each batch is a pure function of
``(seed, epoch, batch)``, so worker processes produce the same batches, in the same
order, as the main thread.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["DistContext", "CpuSyncBatchNorm", "sync_batchnorm", "all_reduce_sum", "PlanBatches",
           "iterate_batches", "state_digest", "is_main_process"]


def is_main_process() -> bool:
    """True unless this process is a non-zero rank of a distributed launch."""
    return int(os.environ.get("RANK", "0") or 0) == 0


@dataclass
class DistContext:
    """Where this process sits in a distributed run (a single process: world size 1)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    #: whether :meth:`setup` initialised the process group (and :meth:`close` ends it)
    owns_group: bool = False

    @classmethod
    def from_env(cls) -> DistContext:
        """The context from ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (set by ``torchrun``)."""
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        rank = int(os.environ.get("RANK", "0") or 0)
        local = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
        if world < 1 or not 0 <= rank < world:
            raise RuntimeError(f"inconsistent distributed environment: RANK={rank}, WORLD_SIZE={world}")
        return cls(world, rank, local)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> str:
        """This rank's device for the run's ``device`` (``cuda`` → ``cuda:LOCAL_RANK``)."""
        if self.distributed and device == "cuda":
            return f"cuda:{self.local_rank}"
        return device

    def setup(self, device: str) -> None:
        """Join the process group (gloo on the CPU, NCCL on CUDA) unless already in one."""
        if not self.distributed:
            return
        import torch.distributed as dist

        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
            self.owns_group = True
        if dist.get_world_size() != self.world_size:
            raise RuntimeError(f"process group has {dist.get_world_size()} ranks, WORLD_SIZE says {self.world_size}")

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False

    def share(self, n: int) -> range:
        """The positions ``0 … n-1`` of a global batch that this rank computes (contiguous,
        sizes differ by at most one; empty on some ranks when ``n < world_size``)."""
        return range(self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size)

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def gather_objects(self, obj) -> list:
        """``obj`` of every rank, in rank order (``[obj]`` in a single process)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks whose backward sums the gradients over the ranks as well."""

    @staticmethod
    def forward(ctx, tensor):
        import torch.distributed as dist

        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(tensor: torch.Tensor, differentiable: bool = False) -> torch.Tensor:
    """``tensor`` summed over all ranks (itself outside a distributed run)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    if differentiable:
        return _AllReduceSum.apply(tensor)
    out = tensor.detach().clone()
    dist.all_reduce(out)
    return out


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """:class:`~torch.nn.BatchNorm2d` whose training statistics are those of the samples
    of *all* ranks (torch's ``SyncBatchNorm`` runs on GPUs only).

    The per-channel count, sum and sum of squares are summed across the ranks with an
    all-reduce whose backward sums the gradients across the ranks, so autograd gives the
    exact gradient of the global-batch normalisation. Running statistics follow
    ``BatchNorm2d`` (unbiased variance, momentum) with the global values, so they stay
    identical on every rank. The state dict is a ``BatchNorm2d``'s. In evaluation mode,
    or outside a distributed run, it is a plain ``BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        n_local = x.new_tensor([x.numel() / c if c else 0.0])
        stats = torch.cat([n_local, x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3))])
        stats = all_reduce_sum(stats, differentiable=True)
        count = stats[0]
        mean = stats[1:1 + c] / count
        var = (stats[1 + c:] / count - mean * mean).clamp_min(0.0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var.detach() * (count / (count - 1).clamp_min(1.0))
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * unbiased)
        shape = (1, c, 1, 1)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batchnorm(module: nn.Module, device: str) -> nn.Module:
    """``module`` with its 2-D batch norms synchronised across the ranks (in place where it
    can: the parameters and buffers are the same tensors)."""
    if str(device).startswith("cuda"):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if type(module) is nn.BatchNorm2d:
        module.__class__ = CpuSyncBatchNorm  # same attributes, state dict and tensors
        return module
    for name, child in module.named_children():
        setattr(module, name, sync_batchnorm(child, device))
    return module


def state_digest(module) -> str:
    """SHA-256 of every parameter and buffer of a module or a state dict (names, dtypes,
    shapes, bytes): equal on all ranks exactly when the replicas are identical."""
    h = hashlib.sha256()
    state = module.state_dict() if isinstance(module, nn.Module) else module
    for name, t in sorted(state.items()):
        a = t.detach().cpu().contiguous()
        h.update(f"{name}:{a.dtype}:{tuple(a.shape)}".encode())
        h.update(a.numpy().tobytes() if a.dtype != torch.bfloat16 else a.float().numpy().tobytes())
    return h.hexdigest()


class PlanBatches(torch.utils.data.Dataset):
    """Batches ``start …`` of an epoch plan as a map-style dataset (one item = one batch).

    ``make(epoch, b, crop_px, items, keep)`` builds batch ``b``; ``share(n)`` says which
    positions of an ``n``-item global batch this process computes (all of them in a
    single process). Items are ``(b, x, target, n_global)``.
    """

    def __init__(self, make, epoch: int, plan: list, start: int = 0, share=None):
        self.make, self.epoch, self.plan, self.start = make, epoch, plan, start
        self.share = share

    def __len__(self) -> int:
        return max(0, len(self.plan) - self.start)

    def __getitem__(self, k: int):
        b = self.start + k
        crop_px, items = self.plan[b]
        keep = None if self.share is None else self.share(len(items))
        x, t = self.make(self.epoch, b, crop_px, items, keep=keep)
        return b, x, t, len(items)


def iterate_batches(dataset: PlanBatches, workers: int = 0):
    """Iterate ``dataset`` in order: on this thread (``workers`` 0) or with a
    :class:`~torch.utils.data.DataLoader` of ``workers`` processes (same batches, same
    order; two batches prefetched per worker)."""
    if workers <= 0:
        for k in range(len(dataset)):
            yield dataset[k]
        return
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=int(workers),
                                         collate_fn=_to_tensors, prefetch_factor=2, persistent_workers=False)
    yield from loader


def _to_tensors(item):
    """Arrays of a batch as tensors, in the worker: they travel in shared memory."""
    b, x, t, n = item
    return b, torch.from_numpy(x), torch.from_numpy(t), n
