"""The project's own stack format: a NumPy ``.npz`` without pickles, units stored inside.

Keys: ``df`` (n_heights, ny, nx) float32 Hz; ``heights_A``; ``pixel_size_A``;
``scan_origin_A`` (x, y of pixel [0, 0]'s centre); ``f0_Hz``; ``k_N_per_m``;
``amplitude_A``; ``metadata_json``; ``units_json``. The experiment-like scans of this
project use the same layout (without ``units_json``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..stack import UNITS, AFMStack, StackError
from ._atomic import FileFormatError, atomic_path, check_overwrite

__all__ = ["is_stack_npz", "read_stack_npz", "write_stack_npz", "read_npy_header", "npz_member_shape"]

REQUIRED = ("df", "heights_A", "pixel_size_A")


def _keys(path) -> list[str] | None:
    try:
        with zipfile.ZipFile(path) as z:
            return [n[:-4] if n.endswith(".npy") else n for n in z.namelist()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def is_stack_npz(path) -> bool:
    """True if ``path`` is an .npz holding a Δf stack in our layout."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    keys = _keys(path)
    return keys is not None and "df" in keys and "heights_A" in keys


def read_npy_header(fh) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``fh``, read from its header only."""
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(fh)


def npz_member_shape(path, key: str) -> tuple:
    """Shape of the array ``key`` of the ``.npz`` archive ``path``, without reading its data.

    Raises OSError, KeyError, ValueError or zipfile.BadZipFile for a missing, damaged
    or foreign file.
    """
    with zipfile.ZipFile(path) as z, z.open(f"{key}.npy") as fh:
        return tuple(read_npy_header(fh)[0])


def _check_member_sizes(path: Path) -> None:
    """Refuse members whose .npy header declares more data than the member holds (a
    corrupt header would otherwise make NumPy allocate it: 1e5³ floats are 3.5 PiB)."""
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as fh:
                    shape, _, dtype = read_npy_header(fh)
                    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if declared > info.file_size:
                        raise FileFormatError(path, f"array {info.filename[:-4]!r} declares {declared} bytes "
                                                    f"(shape {shape}) but holds {info.file_size}: corrupt header")
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise FileFormatError(path, f"cannot read the .npz archive ({type(e).__name__}: {e}); is it truncated?") from e


def _json_dict(path: Path, arrays: dict, key: str) -> dict | None:
    if key not in arrays:
        return None
    try:
        value = json.loads(str(arrays[key]))
    except ValueError as e:
        raise FileFormatError(path, f"{key} is not valid JSON ({e})") from e
    if not isinstance(value, dict):
        raise FileFormatError(path, f"{key} must hold a JSON object, got {type(value).__name__}")
    return value


def read_stack_npz(path) -> AFMStack:
    """Read a stack written by :func:`write_stack_npz` (or an experiment-like scan)."""
    path = Path(path)
    _check_member_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in REQUIRED if k not in z.files]
            if missing:
                raise FileFormatError(path, f"missing arrays {missing}; not an AFM stack .npz")
            arrays = {k: z[k] for k in z.files}
    except FileFormatError:
        raise
    except Exception as e:  # zlib.error, tokenize errors of a damaged header, ...
        raise FileFormatError(path, f"cannot read the .npz archive ({type(e).__name__}: {e}); "
                                    "is it truncated or damaged?") from e
    units = _json_dict(path, arrays, "units_json") or dict(UNITS)
    if units.get("data", "Hz") not in ("Hz", "normalised"):
        raise FileFormatError(path, f"unsupported Δf unit {units.get('data')!r}")
    for key, unit in UNITS.items():  # every field in the unit this project stores it in
        if key != "data" and units.get(key, unit) != unit:
            raise FileFormatError(path, f"{key} stored in {units[key]!r}; this format keeps it in {unit!r} "
                                        "(convert it, or write the stack with write_stack)")
    meta = _json_dict(path, arrays, "metadata_json") or {}
    meta.setdefault("source_file", str(path))
    meta.setdefault("source_format", "npz")
    if units.get("data") == "normalised":
        meta["data_unit"] = "normalised"  # kept, so that no later step calls these numbers Hz
    for key, name in (("f0_Hz", "f0_source"), ("k_N_per_m", "k_source"), ("amplitude_A", "amplitude_source")):
        if key not in arrays:
            meta.setdefault(name, "default")
    heights = np.asarray(arrays["heights_A"], dtype=float).ravel()
    if "height_frame" not in meta and heights.size and np.isfinite(heights).all() and heights.min() == 0.0:
        # a bare file whose closest slice is at 0 uses the relative frame of experimental
        # scans; taking it as absolute would put the sample 0 Å under the tip
        meta["height_frame"] = ("relative: 0 = closest slice, positive = farther (assumed: the file names "
                                "no height frame and its closest slice is at 0 Å)")
    for key in ("pixel_size_A", "f0_Hz", "k_N_per_m", "amplitude_A"):
        if key in arrays and np.size(arrays[key]) != 1:
            raise FileFormatError(path, f"{key} must be a single number, got an array of shape {np.shape(arrays[key])}")
    try:
        return AFMStack(
            data=arrays["df"],
            heights_A=arrays["heights_A"],
            pixel_size_A=float(arrays["pixel_size_A"]),
            origin_A=arrays.get("scan_origin_A", np.zeros(2)),
            f0_Hz=float(arrays.get("f0_Hz", 30300.0)),
            k_N_per_m=float(arrays.get("k_N_per_m", 1800.0)),
            amplitude_A=float(arrays.get("amplitude_A", 1.0)),
            metadata=meta,
        )
    except (StackError, TypeError, ValueError) as e:
        raise FileFormatError(path, str(e)) from e


def write_stack_npz(stack: AFMStack, path) -> Path:
    """Write ``stack`` atomically; refuses to overwrite a file that is not a stack .npz."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name to write to, e.g. {path / 'stack.npz'}")
    if path.suffix.lower() != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    check_overwrite(path, is_stack_npz)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **stack.to_dict())
    return path
