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

__all__ = ["is_stack_npz", "read_stack_npz", "write_stack_npz"]

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


def read_stack_npz(path) -> AFMStack:
    """Read a stack written by :func:`write_stack_npz` (or an experiment-like scan)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in REQUIRED if k not in z.files]
            if missing:
                raise FileFormatError(path, f"missing arrays {missing}; not an AFM stack .npz")
            arrays = {k: z[k] for k in z.files}
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise FileFormatError(path, f"cannot read the .npz archive ({e}); is it truncated?") from e
    units = json.loads(str(arrays["units_json"])) if "units_json" in arrays else dict(UNITS)
    if units.get("data", "Hz") not in ("Hz", "normalised"):
        raise FileFormatError(path, f"unsupported Δf unit {units.get('data')!r}")
    if units.get("heights_A", "angstrom") != "angstrom":
        raise FileFormatError(path, f"heights must be in angstrom, file says {units['heights_A']!r}")
    meta = json.loads(str(arrays["metadata_json"])) if "metadata_json" in arrays else {}
    meta.setdefault("source_file", str(path))
    meta.setdefault("source_format", "npz")
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
    except StackError as e:
        raise FileFormatError(path, str(e)) from e


def write_stack_npz(stack: AFMStack, path) -> Path:
    """Write ``stack`` atomically; refuses to overwrite a file that is not a stack .npz."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    check_overwrite(path, is_stack_npz)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **stack.to_dict())
    return path
