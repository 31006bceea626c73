"""ppafm Δf grids (``.xsf`` and ``.npz``) → :class:`AFMStack`.

ppafm's ``ppafm-plot-results --save_df`` writes the Δf volume with
``ppafm.io.save_scal_field(…/df, dfs, lvec_df, data_format)``:

* ``.xsf`` (``saveXSFData``): a ``BEGIN_DATAGRID_3D`` block with the point counts, the
  grid origin and three lattice vectors (``lvec``, 4 × 3, Å), then the values with x
  varying fastest, then y, then z. ppafm writes one extra point per axis (a copy of the
  first: "the first and the last cube in XSF in every direction is the same") and its
  ``loadXSFData`` drops it again.
* ``.npz`` (``saveNpy``): arrays ``data`` in ppafm's in-memory order ``[x, y, z]`` —
  the order ``load_scal_field`` returns for both formats and that ``Fz2df`` convolves
  along axis 2 — and ``lvec``, plus ``atoms`` and ``lvec0``.

Geometry (as in ``ppafm.common.prepareScanGrids``): ``lvec[0]`` is the position of the
first grid point and ``lvec[1..3]`` span from the first to the LAST point of a scan
axis (``scanMax − scanMin``), so the step is ``|lvec[k]| / (n_k − 1)``. The z axis runs
upwards (index 0 = closest); the stack is flipped to farthest first. Tilted
(non-diagonal) lattice vectors and non-square pixels are refused.

Height frame: heights are the grid z as stored (``lvec[0][2] + k·dz``); this reader
adds no tipR0 or amplitude offset of its own. What that z means depends on the writer:
``ppafm-plot-results`` stores ``scanMin_z − r0Probe_z + Amplitude/2`` — the unrelaxed
probe-particle z at the centre of the oscillation, i.e. this project's absolute frame —
and saves it as ``df`` in a folder named ``Amp<peak-to-peak amplitude>``. When the file
is such a ``df`` file, the heights are marked absolute and the amplitude is taken from
the folder name (ppafm amplitudes are peak-to-peak; ``amplitude_A`` is half of it).
Otherwise ``metadata["height_frame"]`` starts with "ppafm file frame" and says that
offsets may be missing (``OutFz`` grids, the GUI export, hand-made files).

Why not ppafm's own loaders: ``loadXSFData`` reads the numbers in C
(``ReadNumsUpTo_C``), which exits the whole process when it cannot open the file,
prints to stdout, changes the process locale, and silently leaves zeros when the file
is truncated; ``loadNpy`` needs the ``atoms``/``lvec0`` keys and a path without
extension. The XSF data-grid layout is simple, so it is parsed here with NumPy
(same conventions, byte-for-byte the same numbers), and broken files raise
:class:`FileFormatError`. f0 and k are not stored: ppafm's defaults (30300 Hz,
1800 N/m) are used with ``*_source: "default"``.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from ..stack import HEIGHT_FRAME_ABSOLUTE, AFMStack, StackError
from ._atomic import FileFormatError

__all__ = ["sniff", "read", "read_xsf_grid", "is_ppafm_npz"]

DEFAULT_F0_HZ = 30300.0  # ppafm's f0Cantilever default
DEFAULT_K_N_PER_M = 1800.0  # ppafm's kCantilever default
DEFAULT_AMPLITUDE_A = 1.0
_SNIFF_BYTES = 8 << 20  # atoms blocks can be long; the grid header comes after them
_AMP_DIR = re.compile(r"^Amp(\d+(?:\.\d+)?)$")


# --------------------------------------------------------------------------- sniffing


def _npz_keys(path) -> set[str] | None:
    try:
        with zipfile.ZipFile(path) as z:
            return {n[:-4] if n.endswith(".npy") else n for n in z.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def is_ppafm_npz(path) -> bool:
    """True for an ``.npz`` with ppafm's ``data`` + ``lvec`` arrays (not our stack npz)."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    keys = _npz_keys(path)
    return keys is not None and {"data", "lvec"} <= keys and not {"df", "heights_A"} <= keys


def _xsf_has_grid(path: Path) -> bool:
    with open(path, "rb") as fh:
        seen = 0
        tail = b""
        while seen < _SNIFF_BYTES:
            block = fh.read(1 << 20)
            if not block:
                return False
            if b"BEGIN_DATAGRID_3D" in tail + block:
                return True
            tail = block[-32:]
            seen += len(block)
    return False


def sniff(path) -> bool:
    """True for an ``.xsf`` with a 3-D data grid or a ppafm ``.npz`` grid; never raises."""
    try:
        path = Path(path)
        if not path.is_file():
            return False
        if path.suffix.lower() == ".xsf":
            return _xsf_has_grid(path)
        return is_ppafm_npz(path)
    except Exception:
        return False


# --------------------------------------------------------------------------- XSF


def read_xsf_grid(path) -> tuple[np.ndarray, np.ndarray, str]:
    """The first 3-D data grid of an XSF file.

    Returns
    -------
    data : ndarray, shape (nx, ny, nz)
        Values in ppafm's ``[x, y, z]`` order, with ppafm's duplicated last point per
        axis removed (when the last plane repeats the first, as ppafm writes it).
    lvec : ndarray, shape (4, 3)
        Grid origin and the three spanning vectors, Å.
    layout : str
        ``"ppafm (periodic copy dropped)"`` or ``"plain XSF (all points kept)"``.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        text = fh.read().decode("latin-1")
    start = re.search(r"^[ \t]*BEGIN_DATAGRID_3D\S*[ \t]*\r?$", text, re.MULTILINE)
    if start is None:
        raise FileFormatError(path, "no BEGIN_DATAGRID_3D block; not an XSF data grid")
    end = text.find("END_DATAGRID_3D", start.end())
    if end < 0:
        raise FileFormatError(path, "no END_DATAGRID_3D after the data; the file is truncated")
    tokens = text[start.end():end].split()
    try:
        counts = [int(t) for t in tokens[:3]]
        lvec = np.array([float(t) for t in tokens[3:15]], dtype=np.float64).reshape(4, 3)
        values = np.array(tokens[15:], dtype=np.float64)
    except ValueError as e:
        raise FileFormatError(path, f"malformed XSF data grid header or values ({e})") from e
    if len(counts) != 3 or min(counts) < 1:
        raise FileFormatError(path, f"bad XSF grid point counts {counts}")
    n_xsf = counts[0] * counts[1] * counts[2]  # Python ints: no overflow for absurd counts
    if values.size != n_xsf:
        raise FileFormatError(
            path, f"XSF grid {counts[0]} × {counts[1]} × {counts[2]} needs {n_xsf} values, the "
            f"file holds {values.size}; it is truncated or damaged"
        )
    # x fastest, then y, then z → C order [z, y, x]; transpose to ppafm's [x, y, z].
    grid = values.reshape(counts[2], counts[1], counts[0]).transpose(2, 1, 0)
    # ppafm copies the first plane verbatim (same text), so compare exactly.
    periodic = all(
        grid.shape[a] > 1
        and np.array_equal(np.take(grid, 0, axis=a), np.take(grid, -1, axis=a), equal_nan=True)
        for a in range(3)
    )
    if periodic:
        return np.ascontiguousarray(grid[:-1, :-1, :-1]), lvec, "ppafm (periodic copy dropped)"
    return np.ascontiguousarray(grid), lvec, "plain XSF (all points kept)"


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "data" not in z.files or "lvec" not in z.files:
                raise FileFormatError(path, "not a ppafm grid .npz (needs 'data' and 'lvec' arrays)")
            data = np.asarray(z["data"], dtype=np.float64)
            lvec = np.asarray(z["lvec"], dtype=np.float64)
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise FileFormatError(path, f"cannot read the .npz archive ({e}); is it truncated?") from e
    if data.ndim != 3:
        raise FileFormatError(path, f"'data' has shape {data.shape}; a ppafm scalar grid is 3-D [x, y, z]")
    if lvec.shape != (4, 3):
        raise FileFormatError(path, f"'lvec' has shape {lvec.shape}; expected (4, 3)")
    return data, lvec


# --------------------------------------------------------------------------- stack


def _axis_step(path, lvec, axis, n) -> float:
    vec = lvec[axis + 1]
    others = np.delete(vec, axis)
    length = float(vec[axis])
    if np.any(np.abs(others) > 1e-6 * max(abs(length), 1e-12)):
        raise FileFormatError(
            path, f"lattice vector {axis + 1} = {vec.tolist()} is not along {'xyz'[axis]}: tilted "
            "or rotated grids are not supported"
        )
    if n < 2:
        return 0.0
    if length <= 0:
        raise FileFormatError(path, f"lattice vector {axis + 1} has non-positive length {length}")
    return length / (n - 1)


def read(path) -> AFMStack:
    """Read a ppafm Δf grid (``.xsf`` or ``.npz``) as a stack, farthest first.

    See the module docstring for the grid conventions and the height frame.

    Raises
    ------
    FileFormatError
        If the file is truncated or damaged, or the grid is tilted or has non-square
        pixels.
    """
    path = Path(path)
    if path.suffix.lower() == ".xsf":
        grid, lvec, layout = read_xsf_grid(path)
        fmt = "ppafm-xsf"
    else:
        grid, lvec = _read_npz(path)
        layout = "ppafm npz [x, y, z]"
        fmt = "ppafm-npz"
    if not np.all(np.isfinite(lvec)):
        raise FileFormatError(path, "lattice vectors contain NaN or infinite values")
    nx, ny, nz = grid.shape
    dx = _axis_step(path, lvec, 0, nx)
    dy = _axis_step(path, lvec, 1, ny)
    dz = _axis_step(path, lvec, 2, nz)
    if nx < 2 and ny < 2:
        raise FileFormatError(path, "the grid has a single lateral point; no pixel size")
    dx = dx or dy
    dy = dy or dx
    if abs(dx - dy) > 1e-3 * max(dx, dy):
        raise FileFormatError(path, f"pixels are not square ({dx:.5g} × {dy:.5g} Å); resample first")
    if nz > 1 and dz <= 0:
        raise FileFormatError(path, "the z lattice vector is zero; heights cannot be built")

    z = lvec[0, 2] + dz * np.arange(nz)
    data = grid.transpose(2, 1, 0)[::-1]  # [x, y, z] → [z, y, x], farthest first
    heights = z[::-1]

    meta = {
        "source_format": fmt,
        "source_file": str(path),
        "grid_layout": layout,
        "lvec": lvec.tolist(),
        "f0_source": "default (ppafm f0Cantilever; not stored in the file)",
        "k_source": "default (ppafm kCantilever; not stored in the file)",
    }
    amp = _AMP_DIR.match(path.parent.name)
    if amp and path.stem == "df":
        a_pp = float(amp.group(1))
        amplitude = a_pp / 2 if a_pp > 0 else DEFAULT_AMPLITUDE_A
        meta["amplitude_source"] = f"ppafm folder name {path.parent.name!r} (peak-to-peak {a_pp} Å)"
        meta["height_frame"] = HEIGHT_FRAME_ABSOLUTE
        meta["height_frame_note"] = (
            "ppafm-plot-results df file: lvec z already = scanMin z - r0Probe z + Amplitude/2"
        )
    else:
        amplitude = DEFAULT_AMPLITUDE_A
        meta["amplitude_source"] = "default (not stored in the file)"
        meta["height_frame"] = (
            "ppafm file frame: grid z as stored in the lattice vectors (lvec[0] z + k·dz); no "
            "tipR0 or amplitude offset applied by the reader. For a ppafm-plot-results df file "
            "this is the unrelaxed probe-particle z at the oscillation centre; for other ppafm "
            "outputs (OutFz, GUI export) offsets may be missing"
        )
        if not path.stem.lower().startswith("df"):
            meta["warnings"] = [
                f"file name {path.name!r} does not look like a ppafm df output; values taken as Δf in Hz"
            ]
    try:
        return AFMStack(
            data=data,
            heights_A=heights,
            pixel_size_A=0.5 * (dx + dy),
            origin_A=(lvec[0, 0], lvec[0, 1]),
            f0_Hz=DEFAULT_F0_HZ,
            k_N_per_m=DEFAULT_K_N_PER_M,
            amplitude_A=amplitude,
            metadata=meta,
        )
    except StackError as e:
        raise FileFormatError(path, str(e)) from e
