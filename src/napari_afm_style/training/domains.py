"""The two domains of unpaired style training: every stack of a folder (shards or stack
files) as a normalised canonical array, seeded held-out splits and random crops."""

from __future__ import annotations

import logging
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..io.shards import STACK_KEYS, ShardFolder, shard_stack
from ..resample import DEFAULT_GRID, CanonicalGrid, normalise_slices, to_canonical


__all__ = ["Domain", "load_domain", "split_holdout", "sample_batch"]

log = logging.getLogger(__name__)


@dataclass
class Domain:
    """Normalised canonical stacks of one domain (float32 ``(n_heights, ny, nx)``)."""

    arrays: list
    ids: list
    source: str
    n_skipped: int = 0

    def subset(self, idx) -> Domain:
        return Domain([self.arrays[i] for i in idx], [self.ids[i] for i in idx], self.source, 0)

    def __len__(self) -> int:
        return len(self.arrays)


def _enumerate_sources(path: Path) -> tuple[list, int]:
    """(kind, path, index) entries: ("shard", shard, i) or ("file", path, None)."""
    from ..io import stack_format

    entries, skipped = [], 0

    def add_shards(folder: Path):
        for sp in ShardFolder(folder).shards():
            try:
                n = ShardFolder.n_samples(sp)
            except (KeyError, OSError, ValueError, zipfile.BadZipFile):
                nonlocal skipped
                skipped += 1
                continue
            entries.extend(("shard", sp, i) for i in range(n))

    if path.is_file():
        entries.append(("file", path, None))
    elif ShardFolder.holds_shards(path):
        add_shards(path)
    elif stack_format(path) is not None:  # e.g. a folder of .sxm slices is one stack
        entries.append(("file", path, None))
    else:
        for child in sorted(path.iterdir()):
            if child.name.startswith("."):
                continue
            if ShardFolder.holds_shards(child):
                add_shards(child)
            elif stack_format(child) is not None:
                entries.append(("file", child, None))
            elif child.is_file() and child.name not in ("dataset.json",) and child.suffix.lower() not in (
                    ".md", ".txt", ".json", ".xyz", ".png", ".jpg"):
                skipped += 1
    return entries, skipped


def load_domain(path, max_stacks: int | None = None, seed: int = 0, min_size: int = 0,
                grid: CanonicalGrid = DEFAULT_GRID, progress: bool = False) -> Domain:
    """Read every stack under ``path`` as a normalised canonical array.

    Parameters
    ----------
    path : str or Path
        A shard folder (``shard_*.npz``), a folder of shard folders and/or stack files
        (any format :func:`napari_afm_style.io.read_stack` takes), or one stack file.
    max_stacks : int, optional
        Keep at most this many, chosen at random with ``seed`` (same choice every time).
    min_size : int
        Stacks narrower than this many canonical pixels (the training crop) are skipped.

    Raises
    ------
    ValueError
        If ``path`` holds no readable stack.
    """
    from ..io import read_stack

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    entries, skipped = _enumerate_sources(path)
    if not entries:
        raise ValueError(
            f"{path} holds no Δf stacks (expected shard_*.npz from `afm-style generate` or stack "
            "files .npz/.sxm/.gwy/.tif)"
        )
    order = np.arange(len(entries))
    if max_stacks is not None and len(entries) > max_stacks:
        order = np.sort(np.random.default_rng(seed).choice(len(entries), max_stacks, replace=False))
    arrays, ids = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(order), desc=f"reading {path.name}", unit="stack", file=sys.stderr)
    open_shard: tuple = (None, None)
    for j in order:
        kind, p, i = entries[j]
        try:
            if kind == "shard":
                if open_shard[0] != p:
                    open_shard = (p, ShardFolder.read(p, STACK_KEYS))
                stack = shard_stack(open_shard[1], i, {"source_file": str(p)})
                sid = f"{p.parent.name}/{p.name}#{i}"
            else:
                stack = read_stack(p)
                sid = p.name
            canon, _ = to_canonical(stack, grid)
        except (ValueError, OSError, KeyError) as e:  # a broken file must not stop training
            skipped += 1
            log.warning(f"skipping {p}{'' if i is None else f'#{i}'}: {e}")
            continue
        finally:
            if bar is not None:
                bar.update(1)
        if min(canon.data.shape[1:]) < min_size:
            skipped += 1
            continue
        arrays.append(normalise_slices(canon.data))
        ids.append(sid)
    if bar is not None:
        bar.close()
    if not arrays:
        raise ValueError(f"no usable stack in {path} ({skipped} skipped; each must be ≥ {min_size} px)")
    return Domain(arrays, ids, str(path), skipped)


def split_holdout(n: int, fraction: float, seed: int, max_heldout: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, held-out) index split; at least 2 held out when ``fraction`` > 0 and
    ``n`` ≥ 4 (metrics need two samples), never all of them."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {fraction}")
    perm = np.random.default_rng(seed + 7919).permutation(n)
    k = int(round(fraction * n))
    if fraction > 0 and n >= 4:
        k = max(k, 2)
    k = min(k, max_heldout, n - 1) if n > 1 else 0
    return np.sort(perm[k:]), np.sort(perm[:k])


def sample_batch(arrays: list, batch_size: int, crop: int, rng: np.random.Generator,
                 rot90: bool = True) -> torch.Tensor:
    """Random ``crop`` × ``crop`` windows with random flips (and rot90 if ``rot90``).

    Experimental stacks should not be rotated by 90°: their scan lines run along x,
    which is part of the style the forward generator must learn.
    """
    out = []
    for _ in range(batch_size):
        a = arrays[int(rng.integers(len(arrays)))]
        ny, nx = a.shape[1:]
        y0 = int(rng.integers(ny - crop + 1))
        x0 = int(rng.integers(nx - crop + 1))
        c = a[:, y0:y0 + crop, x0:x0 + crop]
        if rng.random() < 0.5:
            c = c[:, :, ::-1]
        if rng.random() < 0.5:
            c = c[:, ::-1, :]
        if rot90:
            c = np.rot90(c, int(rng.integers(4)), axes=(1, 2))
        out.append(np.ascontiguousarray(c, dtype=np.float32))
    return torch.from_numpy(np.stack(out))
