"""Training-set generation: simulated Δf stacks with their structures, in shards.

A data set is a folder with ``dataset.json`` (the parameters, the seed and the shard
plan) and ``shard_NNNNN.npz`` files (layout in docs/architecture.md). Sample ``i`` is
produced from the seed sequence ``(seed, i)`` alone, so the set is identical whatever
the number of workers or the order in which shards finish. A shard is written to a
temporary file and renamed, so an interrupted run leaves only complete shards; running
the same command again skips those and produces the rest.

Scaling out: ``shards=(i, j)`` makes only shards ``i … j-1`` of the set, so independent
jobs (a SLURM array) can each fill a disjoint range of the same folder on a shared file
system, with no scheduler; every job writes (or checks) the same ``dataset.json``, and the
set is complete when every range is (a run without a range fills what is missing).
Alternatively the shards become tasks of a Dask cluster (``scheduler`` address or
``scheduler_file``), resubmitted up to ``retries`` times when a worker fails.

Structures come from the project's water/ice generator and, optionally, from a folder
of theoretical structures (ppafm XYZ), randomly rotated and cropped to the window.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..io._atomic import write_json_atomic
from ..io.shards import ShardFolder

__all__ = ["GenerationConfig", "generate_dataset", "make_sample", "sample_setup", "load_shards", "shard_path",
           "parse_shard_range"]

ADSORBATE = ("H", "O")
MAX_ATOMS = 256


@dataclass
class GenerationConfig:
    """Parameters of a generated training set (all lengths in Å).

    ``closest_offset_A`` is the range of the closest tip height above the topmost
    adsorbate atom (probe-particle frame, see docs/architecture.md).
    """

    n_samples: int = 64
    seed: int = 0
    shard_size: int = 16
    size_px: int = 128
    pixel_size_A: float = 0.125
    n_heights: int = 10
    height_step_A: float = 0.1
    amplitude_A: float = 1.0
    f0_Hz: float = 30300.0
    k_N_per_m: float = 1800.0
    closest_offset_A: tuple = (2.8, 3.8)
    theory_dir: str | None = None
    theory_fraction: float = 0.3
    theory_subset: str = "all"
    #: mirror half of the theoretical structures (y → −y): new configurations, same physics
    theory_mirror: bool = False
    #: per theoretical structure, remove a fraction (uniform in this range) of the molecules
    #: above the contact layer, exposing the layer beneath in new places
    theory_remove_upper: tuple = (0.0, 0.0)
    kinds: tuple = ("bilayer", "bilayer_defects", "mixed", "cluster")
    #: islands may extend this far (Å, uniform range) past the window, as in real scans
    overhang_A: tuple = (0.0, 6.0)
    tip_k_xy_N_per_m: tuple = (0.2, 0.3)
    tip_charge_e: tuple = (-0.15, -0.05)
    #: magnitude range (Å) of the tip's tilt: the lateral offset of the probe particle from
    #: the anchor (ppafm ``tipR0`` x, y) in a uniformly random direction; (0, 0): upright
    tip_tilt_A: tuple = (0.0, 0.0)
    #: tip charge distributions drawn from, one per sample (ppafm 's', 'pz', 'dz2')
    tip_multipoles: tuple = ("dz2",)
    version: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def n_shards(self) -> int:
        return int(np.ceil(self.n_samples / self.shard_size))

    def to_json(self) -> dict:
        d = asdict(self)
        d["closest_offset_A"] = list(self.closest_offset_A)
        d["kinds"] = list(self.kinds)
        d["tip_k_xy_N_per_m"] = list(self.tip_k_xy_N_per_m)
        d["tip_charge_e"] = list(self.tip_charge_e)
        d["overhang_A"] = list(self.overhang_A)
        d["theory_remove_upper"] = list(self.theory_remove_upper)
        d["tip_tilt_A"] = list(self.tip_tilt_A)
        d["tip_multipoles"] = list(self.tip_multipoles)
        return d

    def __post_init__(self):
        from ..simulate import MULTIPOLES

        lo, hi = (float(v) for v in self.tip_tilt_A)
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"tip_tilt_A must be 0 ≤ MIN ≤ MAX ≤ 1 Å (a CO probe 3 Å below its anchor), "
                             f"got {self.tip_tilt_A!r}")
        self.tip_tilt_A = (lo, hi)
        self.tip_multipoles = tuple(self.tip_multipoles)
        bad = [m for m in self.tip_multipoles if m not in MULTIPOLES]
        if not self.tip_multipoles or bad:
            raise ValueError(f"tip_multipoles must be some of {sorted(MULTIPOLES)}, got {self.tip_multipoles!r}")


def shard_path(out_dir, index: int) -> Path:
    """Where shard number ``index`` of the set in ``out_dir`` lives."""
    return ShardFolder(out_dir).shard_path(index)


def _theory_files(config: GenerationConfig) -> list[Path]:
    if not config.theory_dir:
        return []
    files = sorted(Path(config.theory_dir).glob("*.xyz"), key=lambda p: (len(p.stem), p.stem))
    if not files:
        raise FileNotFoundError(f"no .xyz structures in {config.theory_dir}")
    # a fixed split keeps held-out sets free of structures seen in training
    n_train = max(1, int(round(len(files) * 5 / 6)))
    if config.theory_subset == "train":
        return files[:n_train]
    if config.theory_subset == "heldout":
        return files[n_train:] or files[-1:]
    return files


#: molecules whose O lies more than this above the lowest O sit on the contact layer
#: (the O heights of the theoretical structures have their minimum there)
UPPER_MOLECULE_GAP_A = 2.25


def remove_upper_molecules(atoms, fraction: float, rng: np.random.Generator):
    """``atoms`` without a random ``fraction`` of the water molecules above the contact
    layer (O more than :data:`UPPER_MOLECULE_GAP_A` above the lowest O); each removed
    molecule goes with its H atoms, the substrate and the contact layer stay."""
    from ..structures import water_molecules

    oi, hi, owner = water_molecules(atoms)
    if len(oi) == 0 or fraction <= 0:
        return atoms
    oz = atoms.positions[oi, 2]
    drop = (oz > oz.min() + UPPER_MOLECULE_GAP_A) & (rng.random(len(oi)) < fraction)
    keep = np.ones(len(atoms), bool)
    keep[oi[drop]] = False
    keep[hi[drop[owner]]] = False
    return atoms[keep]


def _theory_structure(path: Path, rng: np.random.Generator, window_A: float, mirror: bool = False,
                      remove_upper=(0.0, 0.0)):
    """A theoretical structure rotated about z and shifted so that a random water-covered
    point sits at the origin (the window is centred there); optionally mirrored and with
    part of its upper molecules removed (see :class:`GenerationConfig`)."""
    from ..io import read_atoms

    atoms = read_atoms(path)
    atoms.info.pop("ppafm_scan", None)
    symbols = np.array(atoms.get_chemical_symbols())
    water = atoms.positions[np.isin(symbols, ADSORBATE)]
    centre = water[rng.integers(len(water))].copy()
    atoms.positions -= [centre[0], centre[1], 0.0]
    atoms.rotate(float(rng.uniform(0, 360)), "z", center=(0, 0, 0))
    # keep what can influence the window: adsorbate and substrate within a margin
    keep = np.all(np.abs(atoms.positions[:, :2]) < window_A / 2 + 8.0, axis=1)
    atoms = atoms[keep]
    # the options draw from rng only when on, so sets made without them stay reproducible
    if mirror and rng.random() < 0.5:
        atoms.positions[:, 1] *= -1.0
    if remove_upper[1] > 0:
        atoms = remove_upper_molecules(atoms, float(rng.uniform(*remove_upper)), rng)
    atoms.info.update(source=str(path.name), kind="theory")
    return atoms


def sample_setup(config: GenerationConfig, index: int, theory_files=None):
    """The structure, scan template and tip of sample ``index`` (deterministic from
    (seed, index)), before simulation: ``(atoms, like, tip)``."""
    from ..simulate import TipParameters, scan_like
    from ..structures import generate_structure

    rng = np.random.default_rng([config.seed, index])
    window = config.size_px * config.pixel_size_A
    if theory_files and rng.random() < config.theory_fraction:
        atoms = _theory_structure(theory_files[rng.integers(len(theory_files))], rng, window,
                                  config.theory_mirror, config.theory_remove_upper)
    else:
        kind = str(rng.choice(config.kinds))
        atoms = generate_structure(int(rng.integers(2**31)), kind=kind, size_A=(window, window),
                                   overhang_A=float(rng.uniform(*config.overhang_A)))
    symbols = np.array(atoms.get_chemical_symbols())
    ads = np.isin(symbols, ADSORBATE)
    top = float(atoms.positions[ads, 2].max())
    closest = top + float(rng.uniform(*config.closest_offset_A))
    like = scan_like(
        atoms,
        n_heights=config.n_heights,
        height_step_A=config.height_step_A,
        pixel_size_A=config.pixel_size_A,
        size_px=(config.size_px, config.size_px),
        closest_height_A=closest,
        center_xy_A=(0.0, 0.0),
        f0_Hz=config.f0_Hz,
        k_N_per_m=config.k_N_per_m,
        amplitude_A=config.amplitude_A,
    )
    k_xy = float(rng.uniform(*config.tip_k_xy_N_per_m))
    charge = float(rng.uniform(*config.tip_charge_e))
    # drawn only when asked for, so that data sets made before these options stay identical
    r0 = (0.0, 0.0, 3.0)
    if config.tip_tilt_A[1] > 0:
        tilt, angle = float(rng.uniform(*config.tip_tilt_A)), float(rng.uniform(0.0, 2.0 * np.pi))
        r0 = (tilt * np.cos(angle), tilt * np.sin(angle), 3.0)
    multipole = config.tip_multipoles[0]
    if len(config.tip_multipoles) > 1:
        multipole = config.tip_multipoles[int(rng.integers(len(config.tip_multipoles)))]
    tip = TipParameters(k_xy_N_per_m=k_xy, charge_e=charge, r0_A=r0, multipole=multipole)
    return atoms, like, tip


def _simulate_with_fallback(atoms, like, tip, index: int):
    """Simulate; if the probe-particle relaxation runs away (ppafm gives Δf of ~1e7 Hz, e.g. an
    s-charged tip tilted by 0.37 Å over a theoretical structure) or OpenCL fails once, retry
    with the tip upright, then upright with the default dz2 charge. The tip used is returned
    (and recorded with the sample), so a data set never dies on one edge case of the model."""
    import dataclasses
    import logging

    from ..simulate import TipParameters, simulate

    tries = [tip]
    if tuple(tip.r0_A[:2]) != (0.0, 0.0):
        tries.append(dataclasses.replace(tip, r0_A=(0.0, 0.0, tip.r0_A[2])))
    if tip.multipole != TipParameters.multipole:
        tries.append(dataclasses.replace(tries[-1], multipole=TipParameters.multipole))
    if len(tries) == 1:
        tries.append(tip)  # a transient OpenCL failure: the same tip once more
    for attempt, t in enumerate(tries):
        try:
            return simulate(atoms, like, t), t
        except Exception as e:  # noqa: BLE001 - retried with a safer tip, re-raised at the end
            if attempt == len(tries) - 1:
                raise
            logging.getLogger(__name__).warning(
                f"sample {index}: the simulation failed with tip {t.multipole}, tilt "
                f"{np.hypot(*t.r0_A[:2]):.2f} Å ({e}); retrying with tip {tries[attempt + 1].multipole}, "
                f"tilt {np.hypot(*tries[attempt + 1].r0_A[:2]):.2f} Å")


def make_sample(config: GenerationConfig, index: int, theory_files=None) -> dict:
    """Simulate sample ``index`` of the data set (deterministic from (seed, index))."""
    atoms, like, tip = sample_setup(config, index, theory_files)
    ads = np.isin(np.array(atoms.get_chemical_symbols()), ADSORBATE)
    stack, tip = _simulate_with_fallback(atoms, like, tip, index)
    # labels: adsorbate atoms over the window (+ half an atom of margin)
    pos = atoms.positions
    lo = np.array([stack.x_A[0], stack.y_A[0]]) - 0.5
    hi = np.array([stack.x_A[-1], stack.y_A[-1]]) + 0.5
    inside = ads & np.all((pos[:, :2] >= lo) & (pos[:, :2] <= hi), axis=1)
    numbers = atoms.numbers[inside][:MAX_ATOMS]
    positions = pos[inside][:MAX_ATOMS]
    return {
        "df": stack.data,
        "heights_A": stack.heights_A,
        "pixel_size_A": stack.pixel_size_A,
        "origin_A": stack.origin_A,
        "f0_Hz": stack.f0_Hz,
        "k_N_per_m": stack.k_N_per_m,
        "amplitude_A": stack.amplitude_A,
        "atom_numbers": numbers,
        "atom_positions_A": positions,
        "kind": atoms.info.get("kind", "generated"),
        "tip": [tip.k_xy_N_per_m, tip.charge_e],
        "tip_r0_A": list(tip.r0_A),
        "tip_multipole": tip.multipole,
    }


def _write_shard(config: GenerationConfig, out_dir: str, index: int, progress=None) -> str:
    from ..io._atomic import atomic_path

    path = shard_path(out_dir, index)
    start = index * config.shard_size
    stop = min(start + config.shard_size, config.n_samples)
    theory = _theory_files(config)
    samples = []
    for i in range(start, stop):
        samples.append(make_sample(config, i, theory))
        if progress is not None:
            progress(1)
    n = len(samples)
    numbers = np.zeros((n, MAX_ATOMS), np.int16)
    positions = np.zeros((n, MAX_ATOMS, 3), np.float32)
    for j, s in enumerate(samples):
        numbers[j, : len(s["atom_numbers"])] = s["atom_numbers"]
        positions[j, : len(s["atom_numbers"])] = s["atom_positions_A"]
    arrays = {
        "df": np.stack([s["df"] for s in samples]).astype(np.float32),
        "heights_A": np.stack([s["heights_A"] for s in samples]),
        "pixel_size_A": np.array([s["pixel_size_A"] for s in samples]),
        "origin_A": np.stack([s["origin_A"] for s in samples]),
        "f0_Hz": np.array([s["f0_Hz"] for s in samples]),
        "k_N_per_m": np.array([s["k_N_per_m"] for s in samples]),
        "amplitude_A": np.array([s["amplitude_A"] for s in samples]),
        "atom_numbers": numbers,
        "atom_positions_A": positions,
        "kind": np.array([s["kind"] for s in samples]),
        "tip": np.array([s["tip"] for s in samples]),
        "tip_r0_A": np.array([s["tip_r0_A"] for s in samples]),
        "tip_multipole": np.array([s["tip_multipole"] for s in samples]),
        "sample_index": np.arange(start, stop),
        "seed": np.full(n, config.seed),
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return str(path)


def shard_is_complete(path: Path, expected: int) -> bool:
    """A shard counts as done if it is a readable archive with ``expected`` samples."""
    return ShardFolder.is_complete(path, expected)


def _check_or_write_manifest(config: GenerationConfig, out: Path) -> None:
    manifest = ShardFolder(out).manifest_path
    info = {"format": "napari-afm-style training shards", "config": config.to_json(),
            "n_shards": config.n_shards, "units": {"df": "Hz", "positions": "angstrom"}}

    def check(old: dict) -> None:
        # a field added since the set was made had its default value then
        if GenerationConfig().to_json() | old.get("config", {}) != info["config"]:
            raise ValueError(
                f"{out} holds a data set made with other parameters; resume it with the same "
                "arguments or choose another output folder"
            )

    if manifest.exists():
        check(json.loads(manifest.read_text()))
        return
    out.mkdir(parents=True, exist_ok=True)
    try:
        write_json_atomic(manifest, info, indent=2)
    except FileNotFoundError:
        # jobs starting together on other nodes write the same manifest; one of them may
        # have cleared our temporary file as an orphan (its process is not on that node)
        if not manifest.exists():
            raise
    check(json.loads(manifest.read_text()))  # whoever won the race wrote the same parameters


def parse_shard_range(text: str) -> tuple:
    """``"i:j"`` (shards i … j-1), ``"i:"`` (i to the end), ``":j"`` or ``"i"`` (one shard)
    as ``(start, stop)``, stop None for "to the end"."""
    t = str(text).strip()
    try:
        if ":" not in t:
            start = int(t)
            return start, start + 1
        a, b = t.split(":", 1)
        return (int(a) if a.strip() else 0), (int(b) if b.strip() else None)
    except ValueError:
        raise ValueError(f"a shard range is I:J (shards I … J-1), I: or I; got {text!r}") from None


def _shard_range(config: GenerationConfig, shards) -> range:
    if shards is None:
        return range(config.n_shards)
    if isinstance(shards, str):
        shards = parse_shard_range(shards)
    if isinstance(shards, range):
        start, stop = shards.start, shards.stop
    else:
        start, stop = shards
    stop = config.n_shards if stop is None else int(stop)
    if not 0 <= int(start) < stop <= config.n_shards:
        raise ValueError(f"shard range {start}:{stop} is not within the set's {config.n_shards} shards "
                         f"(0:{config.n_shards}; the stop is exclusive)")
    return range(int(start), stop)


def generate_dataset(out_dir, config: GenerationConfig, workers: int = 1,
                     scheduler: str | None = None, progress: bool = True, shards=None,
                     scheduler_file: str | None = None, retries: int = 2) -> dict:
    """Generate (or resume) the data set described by ``config`` into ``out_dir``.

    Parameters
    ----------
    workers : int
        Local processes (each with its own OpenCL context).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); shards become
        Dask tasks and each worker writes its shards to ``out_dir`` (which must be on a
        file system the workers share, at the same path).
    shards : (start, stop), range or "i:j", optional
        Make only shards ``start … stop-1`` (stop None: to the end) of the set: one job
        of several that fill the same folder (e.g. a SLURM array). Default: all.
    scheduler_file : path, optional
        Connect to the Dask cluster described by this file (``dask-scheduler
        --scheduler-file``) instead of an address.
    retries : int
        With Dask: resubmit a failed shard task up to this many times (a lost worker,
        a node failure); the shard is written again from its seed, so a retry gives the
        same shard.

    Returns a summary dict: shards written/skipped (within the range), samples, seconds,
    samples per second, the range, and the shards of the whole set still missing.
    """
    from tqdm.auto import tqdm

    if scheduler and scheduler_file:
        raise ValueError("give a Dask scheduler address or a scheduler file, not both")
    if retries < 0:
        raise ValueError(f"retries must be ≥ 0, got {retries}")
    out = Path(out_dir)
    selected = _shard_range(config, shards)
    _check_or_write_manifest(config, out)

    def n_in(k: int) -> int:
        return min(config.shard_size, config.n_samples - k * config.shard_size)

    folder = ShardFolder(out)
    todo = folder.incomplete({k: n_in(k) for k in selected})
    n_todo = sum(n_in(k) for k in todo)
    t0 = time.perf_counter()
    bar = tqdm(total=n_todo, desc="simulating", unit="stack", disable=not progress)
    try:
        if scheduler or scheduler_file:
            from dask.distributed import Client, as_completed

            client = Client(scheduler_file=str(scheduler_file)) if scheduler_file else Client(scheduler)
            with client:
                futures = {client.submit(_write_shard, config, str(out), k, pure=False, retries=retries): k
                           for k in todo}
                for fut in as_completed(futures):
                    fut.result()
                    k = futures[fut]
                    bar.update(min(config.shard_size, config.n_samples - k * config.shard_size))
        elif workers > 1 and len(todo) > 1:
            from concurrent.futures import ProcessPoolExecutor, as_completed as done
            import multiprocessing as mp

            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_write_shard, config, str(out), k): k for k in todo}
                for fut in done(futures):
                    fut.result()
                    k = futures[fut]
                    bar.update(min(config.shard_size, config.n_samples - k * config.shard_size))
        else:
            for k in todo:
                _write_shard(config, str(out), k, progress=bar.update)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    missing = folder.incomplete([n_in(k) for k in range(config.n_shards)]) if len(selected) < config.n_shards \
        else []
    return {"out_dir": str(out), "shards_written": len(todo),
            "shards_skipped": len(selected) - len(todo), "samples_simulated": n_todo,
            "seconds": seconds, "stacks_per_s": n_todo / seconds if seconds > 0 and n_todo else 0.0,
            "shards": [selected.start, selected.stop], "shards_missing_in_set": len(missing)}


def load_shards(data_dir) -> dict:
    """Concatenate all complete shards of a data set (for small sets and tests)."""
    paths = ShardFolder(data_dir).shards()
    if not paths:
        raise FileNotFoundError(f"no shard_*.npz files in {data_dir}")
    parts: dict[str, list] = {}
    for p in paths:
        for k, v in ShardFolder.read(p).items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}
