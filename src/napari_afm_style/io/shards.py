"""The training-set format: a folder of ``shard_NNNNN.npz`` files and a ``dataset.json``.

This module owns the format. ``afm-style generate`` writes shards, ``afm-style translate``
copies them with translated ``df``, and the training code reads them; all of them find,
count, check and read shards here.

A shard holds ``n`` samples: ``df`` (n, n_heights, ny, nx) float32 Hz, ``heights_A``,
``pixel_size_A``, ``origin_A`` and the atoms (``atom_numbers``, ``atom_positions_A``,
zero-padded); optionally ``f0_Hz``, ``k_N_per_m``, ``amplitude_A``, ``kind``, ``tip``,
``sample_index`` and ``seed`` (layout in docs/architecture.md). A shard is written to a
temporary file and renamed, so a shard that exists is complete unless it was damaged;
:meth:`ShardFolder.is_complete` is the one check of that.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..stack import AFMStack
from .npz import npz_member_shape

__all__ = ["ShardFolder", "SHARD_PATTERN", "MANIFEST", "REQUIRED_KEYS", "STACK_KEYS", "shard_stack"]

SHARD_PATTERN = "shard_*.npz"
MANIFEST = "dataset.json"
#: arrays every training shard holds
REQUIRED_KEYS = ("df", "heights_A", "pixel_size_A", "origin_A", "atom_numbers", "atom_positions_A")
#: arrays that describe the Δf stacks (the rest are labels and provenance)
STACK_KEYS = ("df", "heights_A", "pixel_size_A", "origin_A", "f0_Hz", "k_N_per_m", "amplitude_A")
#: errors that mean "not a readable shard"
_UNREADABLE = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile)


class ShardFolder:
    """One training-set folder: its shards, its manifest, their lengths and contents.

    >>> folder = ShardFolder("data/train")     # doctest: +SKIP
    >>> len(folder), folder.shards()[:1]       # doctest: +SKIP
    """

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ShardFolder({str(self.path)!r})"

    @staticmethod
    def holds_shards(path) -> bool:
        """True if ``path`` is a folder with at least one shard."""
        path = Path(path)
        return path.is_dir() and any(path.glob(SHARD_PATTERN))

    def shard_path(self, index: int) -> Path:
        """Where shard number ``index`` lives (``shard_00007.npz``)."""
        return self.path / f"shard_{index:05d}.npz"

    def shards(self) -> list[Path]:
        """The shard files, sorted by name (= by index)."""
        return sorted(self.path.glob(SHARD_PATTERN))

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def manifest(self) -> dict | None:
        """``dataset.json`` as a dict, or None when the folder has none."""
        p = self.manifest_path
        return json.loads(p.read_text()) if p.exists() else None

    @staticmethod
    def members(shard) -> list[str]:
        """Names of the arrays stored in a shard file."""
        with zipfile.ZipFile(shard) as z:
            return [n[:-4] for n in z.namelist() if n.endswith(".npy")]

    @staticmethod
    def n_samples(shard, key: str = "df") -> int:
        """Number of samples in a shard file, read from the ``.npy`` header only."""
        return int(npz_member_shape(shard, key)[0])

    @classmethod
    def is_complete(cls, shard, expected: int) -> bool:
        """True if ``shard`` is a readable shard with ``expected`` samples (headers only)."""
        try:
            return cls.n_samples(shard) == expected
        except _UNREADABLE:
            return False

    def incomplete(self, expected) -> list[int]:
        """Indices of the shards that are missing or incomplete, where ``expected[k]`` is
        the number of samples shard ``k`` must hold (a sequence, or a mapping from shard
        index to count for part of a set)."""
        items = expected.items() if isinstance(expected, dict) else enumerate(expected)
        return [int(k) for k, n in items if not self.is_complete(self.shard_path(int(k)), int(n))]

    def lengths(self) -> list[int]:
        """Samples per shard, in :meth:`shards` order."""
        return [self.n_samples(p) for p in self.shards()]

    def __len__(self) -> int:
        return int(sum(self.lengths()))

    @staticmethod
    def read(shard, keys=None) -> dict:
        """The arrays of a shard file (all, or those of ``keys`` that it holds)."""
        with np.load(shard, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if keys is None or k in keys}

    @staticmethod
    def stack(arrays: dict, i: int, metadata: dict | None = None) -> AFMStack:
        """Sample ``i`` of a shard's ``arrays`` as an :class:`~napari_afm_style.stack.AFMStack`."""
        return shard_stack(arrays, i, metadata)


def shard_stack(arrays: dict, i: int, metadata: dict | None = None) -> AFMStack:
    """Sample ``i`` of a shard's ``arrays`` as an AFMStack (per-sample or shared parameters;
    defaults for parameters the shard does not store)."""
    n = arrays["df"].shape[0]

    def pick(key, default):
        if key not in arrays:
            return default
        v = np.asarray(arrays[key])
        return v[i] if v.ndim and v.shape[0] == n else v

    return AFMStack(arrays["df"][i], pick("heights_A", None), float(pick("pixel_size_A", 0.125)),
                    pick("origin_A", np.zeros(2)), float(pick("f0_Hz", 30300.0)),
                    float(pick("k_N_per_m", 1800.0)), float(pick("amplitude_A", 1.0)),
                    {} if metadata is None else metadata)
