"""Multi-page TIFF Δf stacks (read and write) via ``tifffile``.

One page per tip height, farthest first (unless our own metadata says otherwise).

Reading, in order of preference
-------------------------------
1. Our own metadata: the first page's ImageDescription holds JSON
   ``{"napari_afm_style": {...}}`` with every :class:`AFMStack` parameter and its units
   (written by :func:`write_stack_tiff`), so a TIFF round trip keeps units, heights,
   origin, cantilever and metadata exactly.
2. ImageJ metadata: ``unit`` with the XResolution tag (pixels per unit) gives the pixel
   size; ``spacing`` (same unit) gives the height step. Pages are taken farthest first;
   heights relative, 0 = last page.
3. Plain resolution tags (XResolution + ResolutionUnit centimetre/inch), used only when
   they give a pixel below 1 µm: most TIFFs carry a print resolution (72 dpi…) that says
   nothing about the scan.
4. Otherwise the pixel size is unknown: 0.125 Å is used and
   ``metadata["pixel_size_source"] = "default"`` says so; the height step is unknown too
   (0.1 Å placeholder, ``heights_known: False``).

Foreign TIFFs carry no Δf unit: values are taken as Hz (``data_unit: "assumed Hz"``).
Rows are kept as stored (row 0 first), as for every format.
"""

from __future__ import annotations

import logging

import json
from pathlib import Path

import numpy as np

from ..stack import UNITS, AFMStack, StackError
from ._atomic import FileFormatError, atomic_path, check_overwrite
from ._units import length_factor_A

__all__ = ["sniff", "read", "write_stack_tiff", "is_stack_tiff", "looks_like_stack", "DEFAULT_PIXEL_SIZE_A"]

TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
SUFFIXES = (".tif", ".tiff")
META_KEY = "napari_afm_style"
FORMAT_VERSION = 1
DEFAULT_PIXEL_SIZE_A = 0.125
PLACEHOLDER_STEP_A = 0.1
DEFAULT_F0_HZ = 30300.0
DEFAULT_K_N_PER_M = 1800.0
DEFAULT_AMPLITUDE_A = 1.0
_CM_TO_A = 1e8
_INCH_TO_A = 2.54e8
_MAX_PLAUSIBLE_PIXEL_A = 1e4  # 1 µm


def sniff(path) -> bool:
    """True for a ``.tif``/``.tiff`` file with a TIFF or BigTIFF magic; never raises."""
    try:
        path = Path(path)
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            return False
        with open(path, "rb") as fh:
            return fh.read(4) in TIFF_MAGICS
    except Exception:
        return False


def _our_metadata(description: str | None) -> dict | None:
    if not description or not description.lstrip().startswith("{"):
        return None
    try:
        doc = json.loads(description)
    except ValueError:
        return None
    meta = doc.get(META_KEY) if isinstance(doc, dict) else None
    return meta if isinstance(meta, dict) else None


def is_stack_tiff(path) -> bool:
    """True if ``path`` is a TIFF written by :func:`write_stack_tiff`."""
    if not sniff(path):
        return False
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return _our_metadata(tif.pages[0].description) is not None
    except Exception:
        return False


def looks_like_stack(path) -> bool:
    """True if a TIFF is plausibly a Δf stack: written by this project, or at least two
    single-channel floating-point pages of one size. Never raises.

    napari offers a reader for a file only when it claims it; claiming every TIFF would make
    napari ask which plugin should open a photograph. ``read`` itself still reads any
    grey-level TIFF a user names on purpose (and says why it refuses a colour one).
    """
    if not sniff(path):
        return False
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            pages = tif.pages
            if _our_metadata(pages[0].description) is not None:
                return True
            series = tif.series[0]
            if "S" in series.axes or len(series.shape) < 3 or series.dtype.kind != "f":
                return False
            return int(np.prod(series.shape[:-2])) >= 2
    except Exception:
        return False


def _rational(tag) -> float | None:
    if tag is None:
        return None
    v = tag.value
    try:
        if isinstance(v, tuple):
            return float(v[0]) / float(v[1]) if v[1] else None
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _pages(path: Path, tif) -> np.ndarray:
    """All pages as (n, ny, nx); refuses colour and higher-dimensional images."""
    if len(tif.series) > 1:  # tifffile splits pages of another size or type into more series
        shapes = ", ".join(str(tuple(x.shape)) for x in tif.series)
        raise FileFormatError(
            path, f"pages of different sizes or types ({len(tif.series)} series: {shapes}); a Δf "
            "stack needs every height as a page of the same size: export the stack again"
        )
    series = tif.series[0]
    if any(a == "S" and n > 1 for a, n in zip(series.axes, series.shape)):
        raise FileFormatError(
            path, "a colour (RGB) image, not a Δf stack: Δf pages must be single-channel"
        )
    if series.axes[-2:] != "YX":
        raise FileFormatError(path, f"unexpected image axes {series.axes!r}; expected …YX pages")
    axes = "".join(a for a, n in zip(series.axes[:-2], series.shape[:-2]) if n > 1)  # beyond YX
    # one sequence of pages: ImageJ slices (Z), plain pages (I, Q), or a lone C/T axis in a
    # grayscale file (tifffile's ImageJ default for any 3-D array is "channels"); refused: two
    # sequences at once (channels × slices, a hyperstack) or channels shown as colours
    mode = str((tif.imagej_metadata or {}).get("mode", "grayscale")).lower()
    if len(axes) > 1 or (axes == "C" and mode in ("composite", "color", "colour")):
        names = {"C": "channels", "T": "time points", "Z": "slices"}
        what = " × ".join(names.get(a, f"axis {a!r}") for a in axes)
        raise FileFormatError(
            path, f"image axes {series.axes!r} with shape {series.shape} ({what}, ImageJ mode "
            f"{mode!r}): more than the heights; keep only the Δf channel, one page per height "
            "(e.g. Fiji: Image ▸ Hyperstacks ▸ Reduce Dimensionality)"
        )
    data = np.asarray(series.asarray())
    data = data.reshape(int(np.prod(series.shape[:-2], dtype=np.int64)), *series.shape[-2:])
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise FileFormatError(path, f"pages of dtype {data.dtype} are not real numbers")
    return data


class _Complaints(logging.Handler):
    """Collects what tifffile logs while reading: it reports a broken page chain (a
    truncated file) by logging and returning the pages it could read."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _check_complete(path: Path, tif, data: np.ndarray, ij, ours, complaints: list) -> None:
    """Refuse a stack with fewer pages than the file declares, or whose page data lie
    past the end of the file (a truncated download or copy)."""
    size = path.stat().st_size
    for i, page in enumerate(tif.pages):
        for off, count in zip(getattr(page, "dataoffsets", ()), getattr(page, "databytecounts", ())):
            if off + count > size:
                raise FileFormatError(path, f"page {i + 1} needs bytes up to {off + count} but the file has "
                                            f"{size}: truncated")
    broken = [m for m in complaints if "invalid" in m or "corrupt" in m or "truncat" in m]
    if broken:
        raise FileFormatError(path, f"the page chain is broken ({broken[0]}); the file is truncated or "
                                    f"damaged, and only {data.shape[0]} page(s) could be read")
    declared = None
    if ij and ij.get("images"):
        declared = int(ij["images"])
    elif ours and ours.get("heights_A") is not None:
        declared = len(ours["heights_A"])
    if declared is not None and declared != data.shape[0]:
        raise FileFormatError(path, f"the file declares {declared} pages but {data.shape[0]} could be read: "
                                    "truncated or damaged")


def read(path) -> AFMStack:
    """Read a multi-page TIFF Δf stack (see the module docstring for the metadata used).

    Raises
    ------
    FileFormatError
        If the file is truncated, damaged, a colour image, or its stored parameters are
        invalid.
    """
    import tifffile

    path = Path(path)
    complaints = _Complaints()
    log = logging.getLogger("tifffile")
    log.addHandler(complaints)
    try:
        with tifffile.TiffFile(path) as tif:
            first = tif.pages[0]
            ours = _our_metadata(first.description)
            ij = tif.imagej_metadata if tif.is_imagej else None
            xres = _rational(first.tags.get("XResolution"))
            yres = _rational(first.tags.get("YResolution"))
            runit = first.tags.get("ResolutionUnit")
            runit = int(runit.value) if runit is not None else 2
            data = _pages(path, tif)
            _check_complete(path, tif, data, ij, ours, complaints.messages)
    except FileFormatError:
        raise
    except Exception as e:  # tifffile/numpy raise assorted errors on damaged files
        raise FileFormatError(
            path, f"cannot read the TIFF ({type(e).__name__}: {e}); is it truncated?"
        ) from e
    finally:
        log.removeHandler(complaints)

    if ours is not None:
        return _from_ours(path, data, ours)

    meta: dict = {"source_format": "tiff", "source_file": str(path), "data_unit": "assumed Hz"}
    px = None
    step = None
    if ij:
        unit = ij.get("unit")
        factor = length_factor_A(unit) if unit else None
        if factor is not None and xres:
            px = factor / xres
            meta["pixel_size_source"] = f"ImageJ metadata (unit {unit!r}, XResolution)"
            yunit = ij.get("yunit", unit)  # ImageJ: the y unit is the x unit unless given
            yfactor = length_factor_A(yunit)
            if yfactor is None:  # only an explicit yunit can be unknown here
                raise FileFormatError(path, f"ImageJ y unit {yunit!r} is not a length unit this reader knows")
            if yres and abs(yfactor / yres - px) > 1e-3 * px:
                meta.setdefault("warnings", []).append(
                    f"non-square pixels in the ImageJ metadata ({px:g} × {yfactor / yres:g} Å); using x"
                )
        spacing = ij.get("spacing")
        zunit = ij.get("zunit", unit)  # ImageJ: the z unit is the x unit unless given
        zfactor = length_factor_A(zunit) if zunit else None
        if spacing and "zunit" in ij and zfactor is None:  # an unknown x unit: spacing unused, as before
            raise FileFormatError(path, f"ImageJ z unit {zunit!r} of the slice spacing is not a length "
                                        "unit this reader knows (use m, nm, pm or Å)")
        if zfactor is not None and spacing:
            step = abs(float(spacing)) * zfactor
            meta["height_step_source"] = f"ImageJ spacing ({spacing} {zunit})"
    if px is None and xres and runit in (2, 3):
        candidate = (_INCH_TO_A if runit == 2 else _CM_TO_A) / xres
        if candidate < _MAX_PLAUSIBLE_PIXEL_A:
            px = candidate
            meta["pixel_size_source"] = "TIFF resolution tags"
        else:
            meta["resolution_tags_ignored"] = (
                f"XResolution {xres:g} per {'inch' if runit == 2 else 'cm'} is a print "
                "resolution, not a scan pixel size"
            )
    if px is None or not np.isfinite(px) or px <= 0:
        px = DEFAULT_PIXEL_SIZE_A
        meta["pixel_size_source"] = "default"
        meta["pixel_size_note"] = (
            f"pixel size UNKNOWN (no metadata); {DEFAULT_PIXEL_SIZE_A} Å used - set the real value"
        )
    n = data.shape[0]
    if step is not None and step > 0:
        heights = step * np.arange(n - 1, -1, -1, dtype=np.float64)
        meta["height_frame"] = "relative: 0 = last page (closest); pages taken farthest first"
        meta["heights_known"] = True
    else:
        heights = PLACEHOLDER_STEP_A * np.arange(n - 1, -1, -1, dtype=np.float64)
        meta["height_frame"] = (
            "relative placeholder: heights UNKNOWN; pages taken farthest first with a "
            f"{PLACEHOLDER_STEP_A} Å step - set the real heights before use"
        )
        meta["heights_known"] = n == 1
    meta.update({"f0_source": "default", "k_source": "default", "amplitude_source": "default"})
    try:
        return AFMStack(data, heights, px, (0.0, 0.0), DEFAULT_F0_HZ, DEFAULT_K_N_PER_M,
                        DEFAULT_AMPLITUDE_A, metadata=meta)
    except StackError as e:
        raise FileFormatError(path, str(e)) from e


def _from_ours(path: Path, data: np.ndarray, ours: dict) -> AFMStack:
    units = ours.get("units", UNITS)
    for key in ("heights_A", "pixel_size_A", "origin_A", "amplitude_A"):
        if units.get(key, "angstrom") != "angstrom":
            raise FileFormatError(path, f"{key} stored in {units.get(key)!r}; expected angstrom")
    if units.get("data", "Hz") != "Hz" or units.get("f0_Hz", "Hz") != "Hz":
        raise FileFormatError(path, f"Δf/f0 stored in {units.get('data')!r}; expected Hz")
    try:
        heights = np.asarray(ours["heights_A"], dtype=np.float64)
        if ours.get("page_order", "farthest_first") == "closest_first":
            data, heights = data[::-1], heights[::-1]
        meta = dict(ours.get("metadata") or {})
        meta.setdefault("source_format", "tiff")
        meta["source_file"] = str(path)
        return AFMStack(
            data=data,
            heights_A=heights,
            pixel_size_A=float(ours["pixel_size_A"]),
            origin_A=ours.get("origin_A", (0.0, 0.0)),
            f0_Hz=float(ours.get("f0_Hz", DEFAULT_F0_HZ)),
            k_N_per_m=float(ours.get("k_N_per_m", DEFAULT_K_N_PER_M)),
            amplitude_A=float(ours.get("amplitude_A", DEFAULT_AMPLITUDE_A)),
            metadata=meta,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise FileFormatError(path, f"invalid napari_afm_style metadata in the TIFF: {e}") from e


def write_stack_tiff(stack: AFMStack, path) -> Path:
    """Write ``stack`` as a float32 multi-page TIFF (one page per height, farthest first).

    All parameters go into the first page's ImageDescription as JSON, so
    :func:`read` restores them exactly. The write is atomic and refuses to overwrite a
    file that is not a stack TIFF of ours.
    """
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        path = path.with_name(path.name + ".tif")
    check_overwrite(path, is_stack_tiff)
    description = json.dumps({
        META_KEY: {
            "format_version": FORMAT_VERSION,
            "page_order": "farthest_first",
            "heights_A": stack.heights_A.tolist(),
            "pixel_size_A": stack.pixel_size_A,
            "origin_A": stack.origin_A.tolist(),
            "f0_Hz": stack.f0_Hz,
            "k_N_per_m": stack.k_N_per_m,
            "amplitude_A": stack.amplitude_A,
            "units": UNITS,
            "metadata": stack.metadata,
        }
    })
    with atomic_path(path) as tmp:
        # photometric="minisblack": otherwise a 3-page stack is taken for one RGB image.
        tifffile.imwrite(tmp, stack.data, photometric="minisblack", description=description,
                         metadata=None)
    return path
