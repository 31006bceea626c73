"""Gwyddion ``.gwy`` files → :class:`AFMStack`.

Parsed with the ``gwyfile`` package (a maintained, pure-Python reader of Gwyddion's
native serialisation). We open the file read-only ourselves and hand gwyfile the file
object, so the file is never written; before parsing we check the top-level object's
declared size against the file size, so a truncated file gives a clear error instead
of a parse failure deep inside gwyfile.

What is read
------------
* Channels ``/N/data`` (``GwyDataField``: ``xres``, ``yres``, ``xreal``, ``yreal``,
  ``xoff``, ``yoff`` and the units ``si_unit_xy``/``si_unit_z``), titles
  ``/N/data/title`` and per-channel metadata ``/N/meta``.
* Δf channels: z unit Hz, mHz or kHz (converted to Hz), or no z unit and a title
  naming a frequency shift ("freq", "df", "Δf"). Other channels (topography, current…)
  are ignored. Several Δf channels of the same size form the stack.
* Lateral: Gwyddion stores SI base units (metres); ``xoff``/``yoff`` are the top-left
  corner of the image, so ``origin_A = (xoff + dx/2, yoff + dy/2)``. Gwyddion's y axis
  runs down the image (row 0 at the top); rows are kept as stored, so our y is
  Gwyddion's y.
* Heights, in this order: a length in the channel title (``z=1.2 Å``, ``h: 30 pm``,
  ``dz = -0.05 nm``…), else a z entry in ``/N/meta`` (``Z-Controller>Z (m)`` as written
  by Gwyddion's Nanonis import, or ``Z (m)``). They are made relative (0 = closest
  channel) and sorted farthest first. When not every Δf channel has one, the heights
  are UNKNOWN: the channels are taken farthest first in channel order, with a 0.1 Å
  placeholder step, and ``metadata["heights_known"] = False`` says the user must set
  them.
* Cantilever parameters are not part of a ``.gwy`` file: f0 = 30300 Hz,
  k = 1800 N/m and amplitude 1 Å defaults, with ``*_source: "default"``.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from ..stack import AFMStack, StackError
from ._atomic import FileFormatError
from ._units import frequency_factor_Hz, length_factor_A

__all__ = ["sniff", "read", "PLACEHOLDER_STEP_A"]

MAGIC = b"GWYP"
PLACEHOLDER_STEP_A = 0.1
DEFAULT_F0_HZ = 30300.0
DEFAULT_K_N_PER_M = 1800.0
DEFAULT_AMPLITUDE_A = 1.0

_CHANNEL_KEY = re.compile(r"^/(\d+)/data$")
_DF_TITLE = re.compile(r"freq|(^|[^a-z])df([^a-z]|$)|δf|Δf|delta\s*f", re.IGNORECASE)
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_TITLE_HEIGHT = re.compile(
    r"(?:^|[^A-Za-z])(?:z|h|height|dz|Δz|delta\s*z)\s*[=:]\s*" + _NUMBER
    + r"\s*(pm|nm|Å|A|angstroms?|m)(?![A-Za-z])",
    re.IGNORECASE,
)
_META_Z_KEYS = ("Z-Controller>Z (m)", "Z (m)")


def sniff(path) -> bool:
    """True for a Gwyddion 2 ``.gwy`` file (magic ``GWYP``); cheap, never raises."""
    try:
        path = Path(path)
        if path.suffix.lower() != ".gwy" or not path.is_file():
            return False
        with open(path, "rb") as fh:
            return fh.read(4) == MAGIC
    except Exception:
        return False


def _load(path: Path):
    import gwyfile

    with open(path, "rb") as fh:
        if fh.read(4) != MAGIC:  # checked before the whole file is read
            raise FileFormatError(path, "not a Gwyddion 2 file (no 'GWYP' magic)")
        buf = MAGIC + fh.read()
    # Top level: NUL-terminated type name, then the uint32 little-endian byte size.
    nul = buf.find(b"\0", 4, 4 + 256)
    if nul < 0 or len(buf) < nul + 5:
        raise FileFormatError(path, "truncated Gwyddion file (no top-level object header)")
    (size,) = struct.unpack("<I", buf[nul + 1: nul + 5])
    if len(buf) < nul + 5 + size:
        raise FileFormatError(
            path, f"truncated Gwyddion file: the top-level object declares {size} bytes but "
            f"only {len(buf) - nul - 5} follow"
        )
    # gwyfile trusts every terminator and count: a string without its NUL, or a huge count,
    # makes it loop (practically) forever, so the structure is checked first
    problem = _structure_problem(buf, 4)
    if problem:
        raise FileFormatError(path, f"damaged Gwyddion file: {problem}")
    try:
        return gwyfile.objects.GwyObject.frombuffer(buf[4:])
    except Exception as e:  # gwyfile raises assorted errors on damaged data
        raise FileFormatError(path, f"cannot parse the Gwyddion file ({type(e).__name__}: {e})") from e


_FIXED = {"b": 1, "c": 1, "i": 4, "q": 8, "d": 8}
_ARRAY_ITEM = {"C": 1, "I": 4, "Q": 8, "D": 8}
_MAX_DEPTH = 64


def _cstring_end(buf: bytes, pos: int, end: int) -> int:
    """Index just after the NUL that ends the string at ``pos``, or -1 if none before ``end``."""
    nul = buf.find(b"\0", pos, end)
    return -1 if nul < 0 else nul + 1


def _checked_object(buf: bytes, pos: int, end: int, depth: int) -> tuple[str | None, int]:
    """(problem or None, index just after) of the nested object at ``pos``."""
    problem = _structure_problem(buf, pos, end, depth)
    if problem:
        return problem, pos
    after_name = _cstring_end(buf, pos, end)
    return None, after_name + 4 + struct.unpack("<I", buf[after_name:after_name + 4])[0]


def _structure_problem(buf: bytes, pos: int, end: int | None = None, depth: int = 0) -> str | None:
    """Walk a serialised GwyObject at ``pos`` without building it; return what is wrong
    (a missing terminator, a size or count past the end, an unknown type), or None.
    Every step advances, so the walk ends in time linear in the file size."""
    end = len(buf) if end is None else end
    if depth > _MAX_DEPTH:
        return "objects nested too deeply"
    after_name = _cstring_end(buf, pos, end)
    if after_name < 0 or after_name + 4 > end:
        return f"object name without its terminator at byte {pos}"
    (size,) = struct.unpack("<I", buf[after_name:after_name + 4])
    p, stop = after_name + 4, after_name + 4 + size
    if stop > end:
        return f"object at byte {pos} declares {size} bytes, past the end of its container"
    while p < stop:
        q = _cstring_end(buf, p, stop)
        if q < 0 or q >= stop:
            return f"component name without its terminator at byte {p}"
        t, q = chr(buf[q]), q + 1
        if t in _FIXED:
            q += _FIXED[t]
        elif t == "s":
            q = _cstring_end(buf, q, stop)
            if q < 0:
                return f"string without its terminator at byte {p}"
        elif t == "o":
            problem, q = _checked_object(buf, q, stop, depth + 1)
            if problem:
                return problem
        elif t in _ARRAY_ITEM or t in "SO":
            if q + 4 > stop:
                return f"array count past the end at byte {q}"
            (count,) = struct.unpack("<I", buf[q:q + 4])
            q += 4
            if t in _ARRAY_ITEM:
                q += count * _ARRAY_ITEM[t]
            elif count > stop - q:  # every item takes at least one byte
                return f"array of {count} items at byte {q} cannot fit in the file"
            else:
                for _ in range(count):
                    if t == "S":
                        q = _cstring_end(buf, q, stop)
                        if q < 0:
                            return f"string without its terminator in an array at byte {p}"
                    else:
                        problem, q = _checked_object(buf, q, stop, depth + 1)
                        if problem:
                            return problem
        else:
            return f"unknown component type {t!r} at byte {p}"
        if q > stop:
            return f"component at byte {p} runs past the end of its object"
        p = q
    return None


def _unit(obj) -> str | None:
    if obj is None:
        return None
    try:
        return str(obj["unitstr"])
    except (KeyError, TypeError):
        return None


def _title_height_A(title: str) -> float | None:
    m = _TITLE_HEIGHT.search(title or "")
    if not m:
        return None
    factor = length_factor_A(m.group(2))
    return None if factor is None else float(m.group(1)) * factor


def _meta_height_A(meta) -> tuple[float, str] | None:
    if meta is None or not hasattr(meta, "get"):
        return None
    for key in _META_Z_KEYS:
        value = meta.get(key)
        if value is None:
            continue
        parts = str(value).split()
        try:
            v = float(parts[0])
        except (ValueError, IndexError):
            continue
        # The key names metres; a unit in the value itself wins if present.
        factor = length_factor_A(parts[1]) if len(parts) > 1 else 1e10
        if factor is not None and np.isfinite(v):
            return v * factor, key
    return None


def read(path) -> AFMStack:
    """Read the Δf channels of a ``.gwy`` file as a stack (see the module docstring).

    Raises
    ------
    FileFormatError
        If the file is truncated or damaged, has no Δf channel, or its Δf channels do
        not share one grid.
    """
    path = Path(path)
    root = _load(path)
    if not hasattr(root, "items"):
        raise FileFormatError(path, "the Gwyddion file holds no container")
    channels = []
    all_titles = {}
    for key, field in root.items():
        m = _CHANNEL_KEY.match(str(key))
        if not m or getattr(field, "name", None) != "GwyDataField":
            continue
        n = int(m.group(1))
        title = str(root.get(f"/{n}/data/title", f"channel {n}"))
        all_titles[n] = title
        zunit = _unit(field.get("si_unit_z"))
        factor = frequency_factor_Hz(zunit)
        if factor is None:
            if zunit not in (None, "") or not _DF_TITLE.search(title):
                continue
            factor = 1.0  # unitless but titled as a frequency shift: assume Hz
        channels.append((n, title, field, factor, zunit))
    if not channels:
        raise FileFormatError(
            path, "no frequency-shift channel (z unit Hz/mHz/kHz, or a title with 'freq'/'df'); "
            f"channels found: {sorted(all_titles.items())}"
        )
    channels.sort(key=lambda c: c[0])

    grids = []
    for n, title, field, factor, zunit in channels:
        try:
            xres, yres = int(field["xres"]), int(field["yres"])
            values = np.asarray(field["data"], dtype=np.float64)
            xreal, yreal = float(field["xreal"]), float(field["yreal"])
        except (KeyError, TypeError, ValueError) as e:
            raise FileFormatError(path, f"channel {n} ({title!r}) lacks a data-field entry: {e}") from e
        if values.size != xres * yres or xres < 1 or yres < 1:
            raise FileFormatError(
                path, f"channel {n} ({title!r}) holds {values.size} values for {xres} × {yres} pixels"
            )
        lunit = _unit(field.get("si_unit_xy"))
        lfactor = length_factor_A(lunit if lunit else "m")
        if lfactor is None:
            raise FileFormatError(path, f"channel {n} ({title!r}) has lateral unit {lunit!r}, not a length")
        grids.append({
            "n": n,
            "title": title,
            "data": values.reshape(yres, xres) * factor,
            "dx": xreal / xres * lfactor,
            "dy": yreal / yres * lfactor,
            "xoff": float(field.get("xoff", 0.0)) * lfactor,
            "yoff": float(field.get("yoff", 0.0)) * lfactor,
            "unit": zunit if zunit else "(none; assumed Hz)",
            "meta": root.get(f"/{n}/meta"),
        })
    ref = grids[0]
    for g in grids[1:]:
        if g["data"].shape != ref["data"].shape or not np.allclose(
            [g["dx"], g["dy"], g["xoff"], g["yoff"]],
            [ref["dx"], ref["dy"], ref["xoff"], ref["yoff"]],
            rtol=1e-6, atol=1e-6 * ref["dx"],
        ):
            raise FileFormatError(
                path, f"Δf channel {g['n']} ({g['title']!r}) does not share the grid of channel "
                f"{ref['n']} ({ref['title']!r}); a stack needs one size and position for all heights"
            )
    if not (ref["dx"] > 0 and ref["dy"] > 0) or abs(ref["dx"] - ref["dy"]) > 1e-3 * max(ref["dx"], ref["dy"]):
        raise FileFormatError(
            path, f"pixels are not square ({ref['dx']:.5g} Å × {ref['dy']:.5g} Å); resample first"
        )
    px = 0.5 * (ref["dx"] + ref["dy"])

    found = []
    for g in grids:
        h = _title_height_A(g["title"])
        if h is not None:
            found.append((h, "channel title"))
            continue
        mh = _meta_height_A(g["meta"])
        found.append((mh[0], f"/{g['n']}/meta {mh[1]}") if mh else (None, None))
    meta = {"source_format": "gwy", "source_file": str(path)}
    if len(grids) == 1:
        heights = np.zeros(1)
        meta["height_frame"] = "relative: single channel at height 0"
        meta["heights_known"] = found[0][0] is not None
    elif all(h is not None for h, _ in found):
        kinds = {"title" if src == "channel title" else "metadata" for _, src in found}
        if len(kinds) > 1:  # titles give heights relative to the scan, metadata the piezo's z
            by = "; ".join(f"channel {g['n']}: {src}" for g, (_, src) in zip(grids, found))
            raise FileFormatError(
                path, f"the channels' heights come from different places ({by}), which need not share "
                "a zero; give every channel its height the same way (all in the titles, e.g. 'z=1.2 Å')"
            )
        order = sorted(range(len(grids)), key=lambda i: found[i][0], reverse=True)
        grids = [grids[i] for i in order]
        found = [found[i] for i in order]
        z = np.array([h for h, _ in found])
        if np.any(np.diff(z) >= 0):
            raise FileFormatError(path, f"two Δf channels have the same height ({np.round(z, 4).tolist()} Å)")
        heights = z - z.min()
        meta["height_frame"] = (
            "relative: 0 = closest channel, from the heights in the channel titles or metadata"
        )
        meta["heights_known"] = True
        meta["height_sources"] = [s for _, s in found]
    else:
        n = len(grids)
        heights = PLACEHOLDER_STEP_A * np.arange(n - 1, -1, -1, dtype=np.float64)
        meta["height_frame"] = (
            "relative placeholder: heights UNKNOWN (not in titles or metadata); channels taken "
            f"farthest first in channel order with a {PLACEHOLDER_STEP_A} Å step - set the real "
            "heights before use"
        )
        meta["heights_known"] = False
    meta.update({
        "channels": [g["n"] for g in grids],
        "channel_titles": [g["title"] for g in grids],
        "channel_unit": ref["unit"],
        "f0_source": "default",
        "k_source": "default",
        "amplitude_source": "default",
    })
    try:
        return AFMStack(
            data=np.stack([g["data"] for g in grids]),
            heights_A=heights,
            pixel_size_A=px,
            origin_A=(ref["xoff"] + ref["dx"] / 2, ref["yoff"] + ref["dy"] / 2),
            f0_Hz=DEFAULT_F0_HZ,
            k_N_per_m=DEFAULT_K_N_PER_M,
            amplitude_A=DEFAULT_AMPLITUDE_A,
            metadata=meta,
        )
    except StackError as e:
        raise FileFormatError(path, str(e)) from e
