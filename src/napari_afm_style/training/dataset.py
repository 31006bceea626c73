"""Training data for the structure-discovery network: shards → (input, target) pairs.

A training set is a folder of shards written by ``afm-style generate`` (see
docs/architecture.md). Every sample is put through the SAME preprocessing as inference
(:func:`napari_afm_style.resample.to_canonical`, then per-slice normalisation of the
window the network sees), and its atoms are turned into target maps on the fly:

* atom coordinates become pixel coordinates of the canonical grid (x → column, y → row)
  and a depth relative to the closest tip height;
* atoms of elements the model does not predict, and atoms deeper than the lowest depth
  bin, are dropped (the AFM cannot see them);
* each atom is a 3D Gaussian blob (``sigma_xy_A`` laterally, ``sigma_z_A`` in depth),
  blobs of one element are combined with ``max`` so that a peak keeps height 1;
* augmentation: random crops and the 8 symmetries of the square (the atom coordinates
  are transformed with the image), plus optional handcrafted perturbations of the Δf
  data (``napari_afm_style.perturb``) for the "handcrafted" training regime.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from ..io.shards import REQUIRED_KEYS, ShardFolder
from ..models.predictor import PredictorConfig
from ..perturb import perturbed_data
from ..resample import dihedral, normalise_slices, to_canonical
from ..stack import AFMStack

__all__ = [
    "Sample",
    "PreparedSample",
    "ShardSet",
    "prepare_sample",
    "render_targets",
    "truth_in_window",
    "crop",
    "dihedral",
    "random_crop_origin",
    "make_example",
    "split_by_fraction",
]



@dataclass
class Sample:
    """One stack of a shard with its visible atoms (absolute frame, Å)."""

    df: np.ndarray
    heights_A: np.ndarray
    pixel_size_A: float
    origin_A: np.ndarray
    numbers: np.ndarray
    positions_A: np.ndarray
    f0_Hz: float = 30300.0
    k_N_per_m: float = 1800.0
    amplitude_A: float = 1.0
    sample_id: str = ""
    #: the generator's structure kind ("bilayer", "theory:…", …) when the shard records it
    kind: str = ""

    def stack(self) -> AFMStack:
        return AFMStack(self.df, self.heights_A, self.pixel_size_A, self.origin_A, self.f0_Hz,
                        self.k_N_per_m, self.amplitude_A, {"sample_id": self.sample_id})


@dataclass
class PreparedSample:
    """A sample on the canonical grid.

    ``data`` is Δf in Hz (not yet normalised: normalisation is done on the window the
    network sees). ``atoms_px`` holds (x, y) in pixels of ``data`` and z in Å relative to
    the closest tip height, one row per atom of ``numbers``.
    """

    data: np.ndarray
    numbers: np.ndarray
    atoms_px: np.ndarray
    pixel_size_A: float


# -- shards --------------------------------------------------------------------------------

class ShardSet:
    """Random access to the samples of one or more shard folders, with an LRU cache of shards.

    Parameters
    ----------
    folder : path or sequence of paths
        A folder with ``dataset.json`` and ``shard_NNNNN.npz`` files, or several such
        folders read as one set (in the given order), e.g. a set generated with another
        seed or other options to add to an existing one.
    cache_mb : float
        Memory budget of decoded shards kept in memory.

    Raises
    ------
    FileNotFoundError
        A folder does not exist or holds no shards.
    ValueError
        ``dataset.json`` is missing, a shard lacks the arrays of the format, or two
        folders share sample ids (the same generation seed), which would put one
        structure on both sides of a validation split.
    """

    def __init__(self, folder, cache_mb: float = 2048.0):
        folders = [folder] if isinstance(folder, (str, Path)) else list(folder)
        if not folders:
            raise ValueError("no shard folder given")
        self.folders = [Path(f) for f in folders]
        self.folder = self.folders[0]
        self.manifests, self.paths, self._shard_folder = [], [], []
        for f in self.folders:
            manifest, paths = self._open_folder(f)
            self.manifests.append(manifest)
            self.paths += paths
            self._shard_folder += [f.name] * len(paths)
        self.manifest = self.manifests[0]
        counts, ids, self.shard_nbytes = [], [], []
        for path in self.paths:
            members = ShardFolder.members(path)
            missing = [k for k in REQUIRED_KEYS if k not in members]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}; not a training shard")
            with np.load(path, allow_pickle=False) as z:
                n = len(z["pixel_size_A"])
                seed = z["seed"] if "seed" in members else None
                index = z["sample_index"] if "sample_index" in members else None
            counts.append(n)
            for j in range(n):
                s = int(seed[j]) if seed is not None else -1
                i = int(index[j]) if index is not None else -1
                ids.append((s, i) if i >= 0 else (-1, len(ids)))
            self.shard_nbytes.append(0)
        if len(self.folders) > 1:
            known = [sid for sid in ids if sid[0] >= 0]
            if len(set(known)) != len(known):
                raise ValueError(
                    f"the folders {[str(f) for f in self.folders]} share sample ids (generated with the same "
                    "--seed?): give sets generated with different seeds")
        self.counts = np.array(counts, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        #: (seed, sample_index) of every sample: identical for a simulated set and its
        #: style-translated copy, which keeps validation structures out of training.
        self.sample_ids = ids
        self.cache_mb = float(cache_mb)
        self._cache: OrderedDict[int, dict] = OrderedDict()

    @staticmethod
    def _open_folder(folder: Path) -> tuple[dict, list[Path]]:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such training-set folder")
        shards = ShardFolder(folder)
        if not shards.manifest_path.is_file():
            raise ValueError(
                f"{folder} has no dataset.json; point to a folder written by "
                "`afm-style generate` (or `afm-style translate` for style data)"
            )
        paths = shards.shards()
        if not paths:
            raise FileNotFoundError(f"{folder} holds no shard_NNNNN.npz files (generation not run yet?)")
        return shards.manifest(), paths

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __repr__(self) -> str:
        names = str(self.folder) if len(self.folders) == 1 else [str(f) for f in self.folders]
        return f"ShardSet({names!r}, {len(self)} samples in {len(self.paths)} shards)"

    def locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range (0–{len(self) - 1})")
        shard = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return shard, int(index - self.offsets[shard])

    def shard_of(self, index: int) -> int:
        return self.locate(index)[0]

    def _load_shard(self, shard: int) -> dict:
        if shard in self._cache:
            self._cache.move_to_end(shard)
            return self._cache[shard]
        arrays = ShardFolder.read(self.paths[shard], REQUIRED_KEYS + ("f0_Hz", "k_N_per_m", "amplitude_A", "kind"))
        nbytes = sum(a.nbytes for a in arrays.values())
        self.shard_nbytes[shard] = nbytes
        self._cache[shard] = arrays
        while len(self._cache) > 1 and sum(a.nbytes for s in self._cache.values()
                                           for a in s.values()) > self.cache_mb * 2**20:
            self._cache.popitem(last=False)
        return arrays

    def shards_fitting_cache(self) -> int:
        """How many shards fit in half the cache (the rest is headroom)."""
        if not self.shard_nbytes[0]:
            self._load_shard(0)
        per = max(1, self.shard_nbytes[0])
        return max(1, int(0.5 * self.cache_mb * 2**20 // per))

    def __getitem__(self, index: int) -> Sample:
        shard, j = self.locate(int(index))
        a = self._load_shard(shard)
        numbers = a["atom_numbers"][j].astype(np.int64)
        real = numbers > 0
        seed, idx = self.sample_ids[int(index)]
        return Sample(
            df=a["df"][j],
            heights_A=a["heights_A"][j].astype(np.float64),
            pixel_size_A=float(a["pixel_size_A"][j]),
            origin_A=a["origin_A"][j].astype(np.float64),
            numbers=numbers[real],
            positions_A=a["atom_positions_A"][j][real].astype(np.float64),
            f0_Hz=float(a["f0_Hz"][j]) if "f0_Hz" in a else 30300.0,
            k_N_per_m=float(a["k_N_per_m"][j]) if "k_N_per_m" in a else 1800.0,
            amplitude_A=float(a["amplitude_A"][j]) if "amplitude_A" in a else 1.0,
            sample_id=f"{self._shard_folder[shard]}:{seed}:{idx}",
            kind=str(a["kind"][j]) if "kind" in a else "",
        )

    def ordering(self, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random order of ``indices`` that visits shards in windows that fit the cache.

        Shards are shuffled, grouped into windows of as many shards as fit in half the
        cache, and samples are shuffled within each window: a full shuffle when the data
        set fits in memory, and a bounded number of shard reads per epoch when it does not.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            return indices
        shard_of = np.searchsorted(self.offsets, indices, side="right") - 1
        shards = rng.permutation(np.unique(shard_of))
        window = self.shards_fitting_cache()
        out = []
        for k in range(0, len(shards), window):
            sel = indices[np.isin(shard_of, shards[k:k + window])]
            out.append(rng.permutation(sel))
        return np.concatenate(out)


def split_by_fraction(shards: ShardSet, fraction: float, salt: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) sample indices; a sample's side depends only on its (seed, index) id.

    Because a style-translated copy of a data set keeps the ids, the same structures are
    held out from both, so validation never sees a structure the model trained on.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val fraction must be in [0, 1), got {fraction}")
    u = np.array([np.random.default_rng([salt, s + 1, i + 1]).random() for s, i in shards.sample_ids])
    val = u < fraction
    if fraction > 0 and not val.any() and len(val) > 1:
        val[int(np.argmin(u))] = True
    idx = np.arange(len(shards))
    return idx[~val], idx[val]


# -- canonical samples and targets ---------------------------------------------------------

def prepare_sample(sample: Sample, config: PredictorConfig) -> PreparedSample:
    """Canonicalise the stack exactly as inference does and express atoms in its pixels.

    Atoms of other elements and atoms deeper than the lowest depth bin are dropped.
    """
    canon, _ = to_canonical(sample.stack(), config.grid)
    wanted = np.array([atomic_numbers[e] for e in config.elements])
    keep = np.isin(sample.numbers, wanted)
    pos = sample.positions_A[keep]
    z_rel = pos[:, 2] - float(canon.heights_A[-1])
    lo, hi = config.visible_z_range_A
    vis = (z_rel >= lo) & (z_rel <= hi)
    p = canon.pixel_size_A
    atoms_px = np.stack([(pos[vis, 0] - canon.origin_A[0]) / p,
                         (pos[vis, 1] - canon.origin_A[1]) / p,
                         z_rel[vis]], axis=1) if vis.any() else np.zeros((0, 3))
    return PreparedSample(canon.data, sample.numbers[keep][vis], atoms_px, p)


def render_targets(numbers: np.ndarray, atoms_px: np.ndarray, shape: tuple[int, int],
                   config: PredictorConfig) -> np.ndarray:
    """Target maps (n_elements, n_zbins, ny, nx) in [0, 1] for atoms at ``atoms_px``.

    Parameters
    ----------
    numbers : (n,) int
        Atomic numbers.
    atoms_px : (n, 3) float
        x, y in pixels (column, row of pixel centres) and z in Å relative to the closest
        tip height.
    shape : (ny, nx)
        Window size in pixels; atoms just outside still paint their blob's tail.
    """
    ny, nx = shape
    out = np.zeros((config.n_elements, config.n_zbins, ny, nx), dtype=np.float32)
    p = config.pixel_size_A
    sxy = config.sigma_xy_A / p  # in pixels
    sz = config.sigma_z_A
    r = int(np.ceil(3 * sxy))
    rz = int(np.ceil(3 * sz / config.z_step_A))
    zc = config.z_centres_A
    for e, sym in enumerate(config.elements):
        sel = np.asarray(numbers) == atomic_numbers[sym]
        for x, y, z in np.asarray(atoms_px)[sel]:
            ix, iy = int(round(x)), int(round(y))
            iz = int(round((z - zc[0]) / config.z_step_A))
            x0, x1 = max(ix - r, 0), min(ix + r + 1, nx)
            y0, y1 = max(iy - r, 0), min(iy + r + 1, ny)
            z0, z1 = max(iz - rz, 0), min(iz + rz + 1, config.n_zbins)
            if x0 >= x1 or y0 >= y1 or z0 >= z1:
                continue
            gx = np.exp(-0.5 * ((np.arange(x0, x1) - x) / sxy) ** 2)
            gy = np.exp(-0.5 * ((np.arange(y0, y1) - y) / sxy) ** 2)
            gz = np.exp(-0.5 * ((zc[z0:z1] - z) / sz) ** 2)
            blob = (gz[:, None, None] * gy[None, :, None] * gx[None, None, :]).astype(np.float32)
            view = out[e, z0:z1, y0:y1, x0:x1]
            np.maximum(view, blob, out=view)
    return out


def truth_in_window(numbers: np.ndarray, atoms_px: np.ndarray, shape: tuple[int, int],
                    pixel_size_A: float) -> tuple[np.ndarray, np.ndarray]:
    """The atoms inside the window, positions in Å of the window frame (pixel [0, 0] at
    the origin, z relative to the closest tip height): the reference for metrics."""
    ny, nx = shape
    a = np.asarray(atoms_px, dtype=np.float64).reshape(-1, 3)
    inside = (a[:, 0] >= -0.5) & (a[:, 0] <= nx - 0.5) & (a[:, 1] >= -0.5) & (a[:, 1] <= ny - 0.5)
    pos = a[inside].copy()
    pos[:, :2] *= pixel_size_A
    return np.asarray(numbers)[inside], pos


# -- augmentation ---------------------------------------------------------------------------

def crop(data: np.ndarray, atoms_px: np.ndarray, y0: int, x0: int, size_y: int, size_x: int):
    """Crop the window [y0:y0+size_y, x0:x0+size_x] and shift atom pixel coordinates."""
    out = data[..., y0:y0 + size_y, x0:x0 + size_x]
    a = np.array(atoms_px, dtype=np.float64).reshape(-1, 3)
    a[:, 0] -= x0
    a[:, 1] -= y0
    return out, a


def random_crop_origin(shape: tuple[int, int], size: int, rng: np.random.Generator) -> tuple[int, int]:
    ny, nx = shape
    return int(rng.integers(0, ny - min(size, ny) + 1)), int(rng.integers(0, nx - min(size, nx) + 1))


def make_example(prep: PreparedSample, config: PredictorConfig, rng: np.random.Generator | None,
                 crop_px: int | None = None, perturb_strength: float | None = None,
                 centre: bool = False, transform=None):
    """One network example from a prepared sample.

    Parameters
    ----------
    prep : PreparedSample
    config : PredictorConfig
    rng : numpy Generator or None
        Source of augmentation randomness; None means no random augmentation.
    crop_px : int, optional
        Square window size (clipped to the image); random position unless ``centre``.
    perturb_strength : float, optional
        If given, apply ``napari_afm_style.perturb.random_perturbation`` with this
        strength to the Δf window (Hz) before normalisation.
    centre : bool
        Centre crop (validation) instead of a random one.
    transform : callable, optional
        ``transform(data_Hz) -> data_Hz`` applied to the cropped window before the
        perturbations (e.g. a forward style translation); it must keep the shape and may
        not move the content laterally (the labels stay where they are).

    Returns
    -------
    x : (n_heights, s_y, s_x) float32
        Per-slice normalised input.
    target : (n_elements, n_zbins, s_y, s_x) float32
    numbers, positions : arrays
        Atoms inside the window (positions in Å of the window frame), for metrics.
    """
    data, atoms = prep.data, prep.atoms_px
    ny, nx = data.shape[-2:]
    if crop_px is not None:
        sy, sx = min(crop_px, ny), min(crop_px, nx)
        if centre or rng is None:
            y0, x0 = (ny - sy) // 2, (nx - sx) // 2
        else:
            y0, x0 = random_crop_origin((ny, nx), crop_px, rng)
        data, atoms = crop(data, atoms, y0, x0, sy, sx)
    if transform is not None:
        moved = np.asarray(transform(np.ascontiguousarray(data)), dtype=np.float32)
        if moved.shape != data.shape:
            raise RuntimeError(f"the transform changed the window's shape {data.shape} → {moved.shape}")
        data = moved
    if perturb_strength is not None:
        if rng is None:
            raise ValueError("perturbations need a random generator")
        data = perturbed_data(np.ascontiguousarray(data), rng, perturb_strength, prep.pixel_size_A)
    if rng is not None and not centre:
        data, atoms = dihedral(data, atoms, int(rng.integers(4)), bool(rng.integers(2)))
    shape = data.shape[-2:]
    x = normalise_slices(data)
    target = render_targets(prep.numbers, atoms, shape, config)
    numbers, positions = truth_in_window(prep.numbers, atoms, shape, prep.pixel_size_A)
    return x, target, numbers, positions
