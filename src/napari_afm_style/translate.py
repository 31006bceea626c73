"""Style translation of Δf stacks: simulated ⇄ experimental (``afm-style translate``).

``forward`` adds the experimental style to a simulation (noise, drift, scan-line jumps,
misregistration between heights, tip variability); ``backward`` removes it from an
experimental stack so that it looks like a ppafm simulation.

The translator (:mod:`napari_afm_style.models.cyclegan`) works on the canonical grid:
the stack is adapted with :func:`~napari_afm_style.resample.to_canonical`, every slice
normalised (its mean and standard deviation kept), and the generator predicts a
residual ``r`` in those normalised units. The residual is brought back to the INPUT
grid (inverse lateral resampling with anti-aliasing, height interpolation, times the
input slice's standard deviation in Hz), so the output has exactly the input's shape,
heights, pixel size and origin:

    output = input + strength · residual_Hz

Strength 0 returns the input data exactly; changing the strength only rescales the
cached residual (:class:`Translation`), so a GUI slider never re-runs the network.

>>> from napari_afm_style.translate import prepare_translation   # doctest: +SKIP
>>> t = prepare_translation(stack, "backward")                     # doctest: +SKIP
>>> t.at(0.5)                                                      # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
from scipy import ndimage

from .models import weights
from .models.weights import generator_state_dicts
from .resample import DEFAULT_GRID, CanonicalGrid, interpolate_heights, resample_lateral, tile_slices, to_canonical
from .stack import AFMStack

__all__ = [
    "DIRECTIONS",
    "Translator",
    "TranslatorNotAvailable",
    "Translation",
    "load_translator",
    "default_translator_path",
    "prepare_translation",
    "prepare_translations",
    "translate",
    "translate_array",
    "translate_shards",
    "validate_strength",
]

DIRECTIONS = {"forward": "simulated → experimental", "backward": "experimental → simulated"}
DEFAULT_NAME = "translator.pt"
_EPS = 1e-6


class TranslatorNotAvailable(FileNotFoundError):
    """No translator weights (none shipped yet, or a wrong path)."""


def _check_direction(direction: str) -> str:
    if not isinstance(direction, str) or direction not in DIRECTIONS:
        raise ValueError(
            f"direction must be 'forward' (simulated → experimental) or 'backward' "
            f"(experimental → simulated), got {direction!r}"
        )
    return direction


# -- the loaded model ----------------------------------------------------------------------

@dataclass(eq=False)
class Translator:
    """The two generators of a trained CycleGAN plus their provenance.

    Build with :func:`load_translator` (files) or :meth:`from_model` (in memory).
    """

    forward_gen: object
    backward_gen: object
    name: str
    path: str | None = None
    sha256: str | None = None
    recommended_strength: dict | None = None
    grid: CanonicalGrid = DEFAULT_GRID
    info: dict = field(default_factory=dict)
    max_tile: int = 512
    #: network passes so far (the GUI and tests use it to check caching)
    n_network_calls: int = 0

    @classmethod
    def from_model(cls, model, name: str = "in-memory CycleGAN", recommended_strength=None) -> Translator:
        """Wrap a :class:`~napari_afm_style.models.cyclegan.CycleGAN` (e.g. during training)."""
        return cls(model.forward_gen, model.backward_gen, name, recommended_strength=recommended_strength)

    def generator(self, direction: str):
        return self.forward_gen if _check_direction(direction) == "forward" else self.backward_gen

    def to(self, device: str) -> Translator:
        """A copy whose generators run on ``device`` (this one is not moved)."""
        moved = copy.copy(self)
        moved.forward_gen = copy.deepcopy(self.forward_gen).to(device)
        moved.backward_gen = copy.deepcopy(self.backward_gen).to(device)
        return moved

    def residual(self, z: np.ndarray, direction: str) -> np.ndarray:
        """Residual (normalised units) of normalised canonical stacks ``(B, C, ny, nx)``
        or ``(C, ny, nx)``. Images larger than ``max_tile`` are done in overlapping tiles
        blended with linear ramps."""
        import torch

        gen = self.generator(direction)
        z = np.asarray(z, dtype=np.float32)
        single = z.ndim == 3
        zb = z[None] if single else z
        n_ch = getattr(getattr(gen, "config", None), "n_channels", zb.shape[1])
        if zb.shape[1] != n_ch:
            raise ValueError(f"the translator expects {n_ch} slices, got {zb.shape[1]}")
        gen.eval()
        dev = next(gen.parameters()).device  # a training run may have moved it to its GPU
        ny, nx = zb.shape[-2:]
        with torch.inference_mode():
            if max(ny, nx) <= self.max_tile:
                out = gen(torch.from_numpy(np.ascontiguousarray(zb)).to(dev)).cpu().numpy()
                self.n_network_calls += 1
            else:
                out = np.zeros_like(zb)
                wsum = np.zeros((ny, nx), np.float32)
                tile, overlap = self.max_tile // 2, 32
                for y0, y1 in tile_slices(ny, tile, overlap):
                    for x0, x1 in tile_slices(nx, tile, overlap):
                        part = zb[..., y0:y1, x0:x1]
                        r = gen(torch.from_numpy(np.ascontiguousarray(part)).to(dev)).cpu().numpy()
                        self.n_network_calls += 1
                        w = np.outer(_ramp(y1 - y0, y0 > 0, y1 < ny, overlap),
                                     _ramp(x1 - x0, x0 > 0, x1 < nx, overlap))
                        out[..., y0:y1, x0:x1] += r * w
                        wsum[y0:y1, x0:x1] += w
                out /= wsum
        return out[0] if single else out


def _ramp(n: int, ramp_start: bool, ramp_end: bool, overlap: int) -> np.ndarray:
    w = np.ones(n, np.float32)
    r = np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1)
    if ramp_start:
        w[:overlap] = np.minimum(w[:overlap], r)
    if ramp_end:
        w[-overlap:] = np.minimum(w[-overlap:], r[::-1])
    return w


def default_translator_path():
    """Where the shipped weights live (``napari_afm_style/models/translator.pt``)."""
    return files("napari_afm_style").joinpath("models", DEFAULT_NAME)


def load_translator(model=None) -> Translator:
    """Load a translator.

    Parameters
    ----------
    model : None, str, Path, Translator or CycleGAN
        None: the shipped default (``models/translator.pt``); a path: an exported
        translator file, a training checkpoint, or a training folder (its ``last.pt``).

    Raises
    ------
    TranslatorNotAvailable
        If no weights are shipped yet (None) or the path does not exist.
    """
    from .models.cyclegan import CycleGAN

    if isinstance(model, Translator):
        return model
    if isinstance(model, CycleGAN):
        return Translator.from_model(model)
    if model is None:
        res = default_translator_path()
        if not res.is_file():
            raise TranslatorNotAvailable(
                "no style-translator weights are shipped yet (napari_afm_style/models/translator.pt). "
                "Train them with `afm-style train-translator --sim SIM_DIR --exp EXP_DIR --out CKPT_DIR "
                "--export src/napari_afm_style/models/translator.pt`, or pass model=PATH to a "
                "checkpoint or exported translator"
            )
        with as_file(res) as p:
            return _load_file(Path(p), packaged=True)
    path = Path(model)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise TranslatorNotAvailable(f"{model}: no translator weights there (expected a .pt file or a training folder)")
    return _load_file(path, packaged=False)


def _load_file(path: Path, packaged: bool) -> Translator:
    return weights.CACHE.get_or_build(weights.CACHE.key(path, "translator", packaged),
                                      lambda: _read_translator(path, packaged))


def _read_translator(path: Path, packaged: bool) -> Translator:
    from .models.cyclegan import CycleGANConfig, ResidualGenerator

    try:
        payload = weights.load(path)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not ours"
        raise ValueError(f"{path}: cannot read translator weights ({e})") from e
    fmt = weights.format_of(payload)
    fwd, bwd = generator_state_dicts(payload, path)
    config = CycleGANConfig.from_dict(payload["config"])
    g, f = ResidualGenerator(config), ResidualGenerator(config)
    g.load_state_dict(fwd)
    f.load_state_dict(bwd)
    g.eval()
    f.eval()
    grid = CanonicalGrid(**payload["grid"]) if payload.get("grid") else DEFAULT_GRID
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    name = f"{path.name} ({'packaged' if packaged else path.parent}, step {payload.get('step')}, sha256 {sha[:12]})"
    return Translator(g, f, name, str(path), sha, payload.get("recommended_strength"), grid,
                      info={"format": fmt, "step": payload.get("step"), "finished": payload.get("finished"),
                            "heldout_ids": (payload.get("data") or {}).get("heldout_ids"),
                            "evaluation": payload.get("evaluation")})


def validate_strength(strength, recommended: float | None = None) -> float:
    """A strength in [0, 1]; ``"recommended"`` means the translator's held-out choice
    (``recommended``). The one check of a strength: the API, the GUI and the CLI use it."""
    if isinstance(strength, str):
        if strength != "recommended":
            raise ValueError(f"strength must be a number in [0, 1] or 'recommended', got {strength!r}")
        if recommended is None:
            raise ValueError("this translator stores no recommended strength (an unfinished or "
                             "older checkpoint); give a number in [0, 1]")
        return float(recommended)
    try:
        s = float(strength)
    except (TypeError, ValueError):
        raise ValueError(f"strength must be a number in [0, 1], got {strength!r}") from None
    if not (np.isfinite(s) and 0.0 <= s <= 1.0):
        raise ValueError(f"strength must be in [0, 1] (0 = input unchanged, 1 = full translation), got {strength!r}")
    return s


def translate_array(data_Hz, translator, direction: str = "forward", strength: float = 1.0) -> np.ndarray:
    """Translate a Δf array already on the translator's canonical grid (no resampling).

    The fast path for training on style-translated images: a crop of a canonical
    simulation is normalised per slice exactly as :func:`translate` does it, the
    generator's residual is scaled back to Hz and added with ``strength``.

    Parameters
    ----------
    data_Hz : array_like, shape (n_heights, ny, nx)
        Δf in Hz on the canonical grid (``translator.grid``: its heights and pixel size).
    translator : Translator
    direction : {"forward", "backward"}
    strength : float
        In [0, 1]; 0 returns the input unchanged.

    Returns
    -------
    numpy.ndarray
        float32, same shape, Hz.
    """
    s = validate_strength(strength)
    data = np.asarray(data_Hz, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"translate_array needs an (n_heights, ny, nx) array, got shape {data.shape}")
    if s == 0.0:
        return data.copy()
    z, std = _per_slice_normalised(data)
    r = translator.residual(z, _check_direction(direction))
    return (data + np.float32(s) * std * r).astype(np.float32)


# -- one translation ----------------------------------------------------------------------

@dataclass(eq=False)
class Translation:
    """A stack with its cached translation residual; :meth:`at` makes any strength.

    Attributes
    ----------
    source : AFMStack
        The input stack (not modified).
    residual_Hz : ndarray
        Full-strength residual on the input's grid, Hz.
    direction : str
    model : str
        Name (file, sha256) of the translator.
    resampling : dict
        What was done to fit the canonical grid and to come back.
    recommended_strength : float or None
        The translator's held-out choice for this direction, if it has one.
    """

    source: AFMStack
    residual_Hz: np.ndarray
    direction: str
    model: str
    resampling: dict
    recommended_strength: float | None = None
    model_sha256: str | None = None

    def at(self, strength=1.0) -> AFMStack:
        """The translated stack at ``strength`` ∈ [0, 1] (or ``"recommended"``); no
        network pass. Strength 0 returns the input data exactly."""
        s = validate_strength(strength, self.recommended_strength)
        data = self.source.data.copy() if s == 0.0 else self.source.data + np.float32(s) * self.residual_Hz
        record = {"step": "translate", "direction": self.direction,
                  "meaning": DIRECTIONS[self.direction], "strength": s, "model": self.model,
                  "model_sha256": self.model_sha256, "resampling": self.resampling}
        meta = copy.deepcopy(self.source.metadata)
        meta["translation"] = {k: v for k, v in record.items() if k != "step"}
        meta.setdefault("history", []).append(record)
        return self.source.replace(data=data, metadata=meta)



def _per_slice_normalised(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(normalised data, per-slice standard deviation): what the generators read, and the
    scale that brings their residual back to Hz."""
    mean = data.mean(axis=(1, 2), keepdims=True)
    std = np.maximum(data.std(axis=(1, 2), keepdims=True), _EPS)
    return ((data - mean) / std).astype(np.float32), std


def _canonical_input(stack: AFMStack, grid: CanonicalGrid):
    canon, rec = to_canonical(stack, grid)
    z, std = _per_slice_normalised(canon.data)
    return canon, rec, z, std


def _residual_to_input(stack: AFMStack, canon: AFMStack, rec: dict, r: np.ndarray,
                       std_canon: np.ndarray, grid: CanonicalGrid) -> tuple[np.ndarray, dict]:
    """Bring a normalised canonical residual back to the input grid, in Hz."""
    lateral = bool(rec.get("lateral_resampled"))
    same_heights = (stack.n_heights == canon.n_heights
                    and np.allclose(stack.heights_A, canon.heights_A, rtol=0, atol=1e-6))
    to_can = {k: rec[k] for k in ("input_shape", "output_shape", "lateral_resampled", "input_pixel_size_A",
                                  "input_height_span_A", "n_heights_clamped", "warning") if k in rec}
    if not lateral and same_heights:
        # the stack already is on the canonical grid: exact inverse of the normalisation
        return (std_canon * r).astype(np.float32), {"to_canonical": to_can, "back_to_input": "none needed"}
    back: dict = {}
    if lateral:
        ratio = stack.pixel_size_A / grid.pixel_size_A  # > 1: the input is coarser
        if ratio > 1:
            # anti-aliasing before subsampling (σ as in skimage's rescale)
            sigma = 0.5 * (ratio - 1)
            r = ndimage.gaussian_filter(r, (0, sigma, sigma), mode="nearest")
            back["anti_alias_sigma_px"] = round(float(sigma), 3)
        r = resample_lateral(r, grid.pixel_size_A, stack.pixel_size_A)
        ny, nx = stack.shape[1:]
        # rounding of the pixel counts can leave one pixel too many or too few
        r = r[:, :ny, :nx]
        if r.shape[1:] != (ny, nx):
            r = np.pad(r, ((0, 0), (0, ny - r.shape[1]), (0, nx - r.shape[2])), mode="edge")
        back["lateral"] = f"resampled {grid.pixel_size_A} → {stack.pixel_size_A:g} Å"
    r_in, n_clamped = interpolate_heights(r, canon.heights_A, stack.heights_A)
    back["heights"] = f"interpolated {canon.n_heights} canonical → {stack.n_heights} input slices"
    back["n_heights_beyond_canonical"] = int(n_clamped)
    if n_clamped:
        back["note"] = (f"{n_clamped} input slice(s) lie beyond the {grid.span_A:.1f} Å canonical span; "
                        "they get the residual of the nearest canonical slice")
    std_in = np.maximum(stack.data.std(axis=(1, 2), keepdims=True), _EPS)
    back["scale"] = "residual × input slice standard deviation (Hz)"
    return (std_in * r_in).astype(np.float32), {"to_canonical": to_can, "back_to_input": back}


_ON_DEVICE: dict = {}


def _translator_on(tr: Translator, device: str) -> Translator:
    """``tr`` with its generators on ``device`` (a cached copy; the CPU one stays as is)."""
    from ._device import resolve_device

    dev = resolve_device(device)
    if dev == "cpu":
        return tr
    key = (id(tr), dev)
    if key not in _ON_DEVICE:
        _ON_DEVICE[key] = tr.to(dev)
    return _ON_DEVICE[key]


def prepare_translations(stacks: list, direction: str = "backward", model=None,
                         batch_size: int = 8, device: str = "auto") -> list[Translation]:
    """:func:`prepare_translation` for many stacks, batching equal-shaped ones."""
    _check_direction(direction)
    tr = _translator_on(load_translator(model), device)
    prepared = [_canonical_input(s, tr.grid) for s in stacks]
    residuals: list = [None] * len(stacks)
    groups: dict = {}
    for i, (_, _, z, _) in enumerate(prepared):
        groups.setdefault(z.shape, []).append(i)
    for idx in groups.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            r = tr.residual(np.stack([prepared[i][2] for i in chunk]), direction)
            for i, ri in zip(chunk, r):
                residuals[i] = ri
    out = []
    rec_strength = (tr.recommended_strength or {}).get(direction)
    for s, (canon, rec, _, std), r in zip(stacks, prepared, residuals):
        res_Hz, resampling = _residual_to_input(s, canon, rec, r, std, tr.grid)
        out.append(Translation(s, res_Hz, direction, tr.name, resampling, rec_strength, tr.sha256))
    return out


def prepare_translation(stack: AFMStack, direction: str = "backward", model=None,
                        device: str = "auto") -> Translation:
    """Run the translator once on ``stack``; the result makes any strength quickly.

    Parameters
    ----------
    stack : AFMStack
        Any grid: it is adapted to the translator's canonical grid and the residual is
        mapped back to the stack's own grid.
    direction : {"backward", "forward"}
        "forward" simulated → experimental, "backward" experimental → simulated.
    model : None, path, Translator or CycleGAN
        None = the shipped default.
    device : {"auto", "cpu", "cuda", "cuda:N"}
        Where the generator runs ("auto": a GPU when torch sees one).
    """
    if not isinstance(stack, AFMStack):
        raise ValueError(f"translate needs an AFMStack, got {type(stack).__name__}; read files with io.read_stack")
    return prepare_translations([stack], direction, model, device=device)[0]


def translate(stack: AFMStack, direction: str = "backward", strength=1.0, model=None,
              device: str = "auto") -> AFMStack:
    """Style-translate ``stack``.

    Parameters
    ----------
    stack : AFMStack
    direction : {"backward", "forward"}
        "forward": simulated → experimental style; "backward": experimental → simulated.
    strength : float in [0, 1] or "recommended"
        Fraction of the translation residual added; 0 returns the input exactly.
        "recommended" uses the strength the training chose on held-out data.
    model : None, path, Translator or CycleGAN
        None = the shipped default (``models/translator.pt``).
    device : {"auto", "cpu", "cuda", "cuda:N"}
        Where the generator runs ("auto": a GPU when torch sees one).

    Returns
    -------
    AFMStack
        Same shape, heights, pixel size and origin as ``stack``;
        ``metadata["translation"]`` records direction, strength, model and resampling.
    """
    _check_direction(direction)
    if not isinstance(strength, str):
        validate_strength(strength)  # fail before the network runs
    return prepare_translation(stack, direction, model, device).at(strength)


# -- shard folders ---------------------------------------------------------------------------

def translate_shards(in_dir, out_dir, direction: str = "forward", strength=1.0, model=None,
                     progress: bool = True, batch_size: int = 8, device: str = "auto") -> dict:
    """Translate every ``df`` of a training-set folder into a new folder.

    All other arrays are copied unchanged (atoms stay the labels of the translated
    images); ``dataset.json`` is copied with a ``translation`` entry. Shards already
    written (complete) are skipped, so an interrupted run resumes.
    """
    from .io._atomic import atomic_path
    from .io.shards import ShardFolder

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    source, target = ShardFolder(in_dir), ShardFolder(out_dir)
    shards = source.shards()
    if not shards:
        raise ValueError(f"{in_dir} holds no shard_*.npz files (see docs/architecture.md)")
    if out_dir.resolve() == in_dir.resolve():
        raise ValueError("the output folder must differ from the input folder")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number ≥ 1; got {batch_size!r}")
    tr = load_translator(model)
    s_value = validate_strength(strength, (tr.recommended_strength or {}).get(_check_direction(direction)))
    note = {"direction": direction, "meaning": DIRECTIONS[direction], "strength": s_value,
            "model": tr.name, "model_sha256": tr.sha256, "source": str(in_dir)}
    manifest = dict(source.manifest() or {}, translation=note)
    out_dir.mkdir(parents=True, exist_ok=True)
    mpath = target.manifest_path
    old = target.manifest()
    if old is not None:
        if old.get("translation") != note:
            raise ValueError(f"{out_dir} holds a translation with other settings ({old.get('translation')}); "
                             "choose another output folder")
    else:
        with atomic_path(mpath) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    counts = [source.n_samples(p) for p in shards]
    todo = [(p, n) for p, n in zip(shards, counts) if not target.is_complete(out_dir / p.name, n)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(n for _, n in todo), desc=f"translating ({direction})", unit="stack", file=sys.stderr)
    try:
        for p, n in todo:
            arrays = source.read(p)
            df = arrays["df"].copy()
            for s in range(0, n, batch_size):
                idx = range(s, min(s + batch_size, n))
                stacks = [source.stack(arrays, i, {}) for i in idx]
                for i, t in zip(idx, prepare_translations(stacks, direction, tr, batch_size, device)):
                    df[i] = t.at(s_value).data
                if bar is not None:
                    bar.update(len(idx))
            arrays["df"] = df.astype(np.float32)
            with atomic_path(out_dir / p.name) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **arrays)
    finally:
        if bar is not None:
            bar.close()
    return {"out_dir": str(out_dir), "shards_written": len(todo), "shards_skipped": len(shards) - len(todo),
            "stacks": int(sum(n for _, n in todo)), "translation": note}
