"""Nanonis ``.sxm`` constant-height frames → :class:`AFMStack`.

A constant-height Δf stack measured with a Nanonis controller is a set of ``.sxm``
files, one per tip height. :func:`read` takes one file, a folder of ``.sxm`` files, or
a list of files, and stacks their frequency-shift channel sorted farthest first.

Why our own parser and not nanonispy
------------------------------------
nanonispy (1.1, last released 2019) reads ``.sxm`` files, but it assumes that every
channel was recorded in both directions (``Direction`` ``both``), ignores
``SCAN_DIR`` (so "down" frames come out upside down), does no size check (a truncated
file raises a bare NumPy reshape error) and keys the data start on the end of the
``SCANIT_END`` line plus 4 bytes. The format is small and documented, so this module
parses it itself, byte for byte:

* The header is Latin-1 text made of ``:KEY:`` lines, each followed by its value
  lines, up to the ``:SCANIT_END:`` line.
* After ``:SCANIT_END:`` come line ends and the two-byte marker ``0x1A 0x04``; the
  binary data start right after the marker (located by search, so the number of
  line ends does not matter).
* ``SCANIT_TYPE`` gives the sample type; Nanonis writes ``FLOAT MSBFIRST``
  (big-endian float32). ``FLOAT LSBFIRST`` is accepted too.
* ``DATA_INFO`` is a tab-separated table (``Channel Name Unit Direction Calibration
  Offset``). The data hold, for each channel in table order, the forward image and
  then the backward image (only one of them when ``Direction`` is ``forward`` or
  ``backward``); each image is ``SCAN_PIXELS`` = (nx, ny) stored as ny rows of nx
  values in acquisition order. The file must hold exactly that many bytes.
* Acquisition order → our frame (``data[iy, ix]`` with y and x growing with the
  index): ``SCAN_DIR`` ``up`` scans start at the bottom (lowest y), so rows are kept;
  ``down`` scans start at the top, so rows are reversed. Backward images are recorded
  right to left, so their columns are reversed.
* ``SCAN_RANGE`` (width, height) and ``SCAN_OFFSET`` (x, y of the frame CENTRE) are in
  metres; ``SCAN_ANGLE`` in degrees. ``origin_A`` is the centre of pixel [0, 0]:
  ``offset − range/2 + pixel/2``. A non-zero angle is recorded and warned about: the
  coordinates are then those of the (rotated) scan frame, not of the piezo frame.

Heights
-------
Each frame's tip z is the header's ``Z-Controller>Z (m)`` (the z at which the
controller held the tip; falls back to a ``Z``/``Z (m)`` header entry, then to the
mean of the ``Z`` channel). Nanonis Z grows as the tip retracts, so the largest Z is
the farthest frame. Heights are relative: 0 = the closest frame.

Cantilever
----------
f0 from ``Oscillation Control>Center Frequency (Hz)`` and the amplitude (taken as
zero-to-peak, Nanonis' amplitude setpoint) from ``Oscillation Control>Amplitude
Setpoint (m)`` when present. The stiffness is never stored: 1800 N/m (qPlus) is used
and ``metadata["k_source"] = "default"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..stack import AFMStack, StackError
from ._atomic import FileFormatError
from ._units import frequency_factor_Hz

__all__ = [
    "sniff",
    "read",
    "read_frames",
    "read_sxm_header",
    "parse_data_info",
    "read_sxm_image",
    "find_df_channel",
    "DEFAULT_K_N_PER_M",
]

END_TAG = b":SCANIT_END:"
DATA_MARKER = b"\x1a\x04"
#: Largest header we look through for ``:SCANIT_END:`` (real headers are a few tens of kB).
MAX_HEADER_BYTES = 4 << 20
DEFAULT_K_N_PER_M = 1800.0  # qPlus sensor; Nanonis does not store k
DEFAULT_F0_HZ = 30300.0
DEFAULT_AMPLITUDE_A = 1.0
M_TO_A = 1e10

_F0_KEYS = (
    "Oscillation Control>Center Frequency (Hz)",
    "Oscillation Control>Centre Frequency (Hz)",
    "Oscillation Control>Resonance Frequency (Hz)",
)
_AMPLITUDE_KEYS = ("Oscillation Control>Amplitude Setpoint (m)",)
_Z_KEYS = ("Z-Controller>Z (m)", "Z (m)", "Z")
_KEY_LINE = re.compile(r"^:(.+):\s*$")
_FIRST_LINE = re.compile(rb"^:[A-Za-z0-9_ >()./\-]+:\r?\n")


# --------------------------------------------------------------------------- sniffing


def _looks_like_sxm_file(path: Path) -> bool:
    if path.suffix.lower() != ".sxm" or not path.is_file():
        return False
    with open(path, "rb") as fh:
        head = fh.read(256)
    return bool(_FIRST_LINE.match(head))


def sniff(path) -> bool:
    """True for a Nanonis ``.sxm`` file, or a folder holding at least one ``.sxm`` file.

    Cheap (reads at most 256 bytes) and never raises. A text file renamed ``.sxm``
    gives False: a real header starts with a ``:KEY:`` line.
    """
    try:
        path = Path(path)
        if path.is_dir():
            return any(p.suffix.lower() == ".sxm" and p.is_file() for p in path.iterdir())
        return _looks_like_sxm_file(path)
    except Exception:
        return False


# --------------------------------------------------------------------------- header


def read_sxm_header(path) -> tuple[dict[str, str], int]:
    """Parse the text header of an ``.sxm`` file.

    Returns
    -------
    header : dict
        ``KEY`` (without the colons) → value text (value lines joined by ``\\n``, each
        stripped of its line end).
    data_offset : int
        Byte offset of the first data value (just after ``0x1A 0x04``).

    Raises
    ------
    FileFormatError
        If the end tag or the data marker is missing.
    """
    path = Path(path)
    buf = b""
    with open(path, "rb") as fh:
        while END_TAG not in buf and len(buf) < MAX_HEADER_BYTES:
            block = fh.read(64 << 10)
            if not block:
                break
            buf += block
        end = buf.find(END_TAG)
        if end < 0:
            raise FileFormatError(
                path, "no ':SCANIT_END:' tag ending the Nanonis header; the file is truncated "
                "or not an .sxm scan"
            )
        # Between the end tag and the marker there are only line ends ("\n\n\n" in
        # Nanonis files); read a little more if the marker is beyond what we have.
        buf += fh.read(64)
    tail = buf[end + len(END_TAG): end + len(END_TAG) + 32]
    mark = tail.find(DATA_MARKER)
    if mark < 0 or tail[:mark].strip(b"\r\n ") != b"":
        raise FileFormatError(
            path, "the header's ':SCANIT_END:' is not followed by the data marker 0x1A 0x04; "
            "the file is truncated or damaged"
        )
    data_offset = end + len(END_TAG) + mark + len(DATA_MARKER)
    text = buf[:end].decode("latin-1")
    header: dict[str, str] = {}
    key = None
    lines: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        m = _KEY_LINE.match(line)
        if m:
            if key is not None:
                header[key] = "\n".join(lines)
            key, lines = m.group(1), []
        elif key is not None:
            lines.append(line)
    if key is not None:
        header[key] = "\n".join(lines)
    return header, data_offset


def _numbers(path, header, key, n, required=True):
    """``n`` floats from a header entry (first value line(s))."""
    if key not in header:
        if required:
            raise FileFormatError(path, f"the Nanonis header has no ':{key}:' entry")
        return None
    parts = header[key].split()
    try:
        values = [float(v) for v in parts[:n]]
    except ValueError:
        values = []
    if len(values) != n or not all(np.isfinite(values)):
        raise FileFormatError(path, f"header entry ':{key}:' should hold {n} numbers, got {header[key]!r}")
    return values


def _float_entry(header, keys):
    """First of ``keys`` present in the header whose value parses as a finite float."""
    for k in keys:
        if k in header:
            parts = header[k].split()
            if parts:
                try:
                    v = float(parts[0])
                except ValueError:
                    continue
                if np.isfinite(v):
                    return v, k
    return None, None


def parse_data_info(path, header) -> list[dict[str, str]]:
    """The ``DATA_INFO`` channel table as a list of dicts (``Name``, ``Unit``, ``Direction`` …)."""
    if "DATA_INFO" not in header:
        raise FileFormatError(path, "the Nanonis header has no ':DATA_INFO:' channel table")
    rows = [r.strip().split("\t") for r in header["DATA_INFO"].split("\n") if r.strip()]
    if len(rows) < 2:
        raise FileFormatError(path, "the ':DATA_INFO:' table lists no channels")
    columns = [c.strip() for c in rows[0]]
    for need in ("Name", "Unit", "Direction"):
        if need not in columns:
            raise FileFormatError(path, f"the ':DATA_INFO:' table has no '{need}' column ({columns})")
    channels = []
    for r in rows[1:]:
        if len(r) != len(columns):
            raise FileFormatError(path, f"malformed ':DATA_INFO:' row {r!r}")
        ch = {c: v.strip() for c, v in zip(columns, r)}
        ch["Direction"] = ch["Direction"].lower()
        if ch["Direction"] not in ("both", "forward", "backward"):
            raise FileFormatError(path, f"unknown scan direction {ch['Direction']!r} in ':DATA_INFO:'")
        channels.append(ch)
    return channels


def _normalise(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def find_df_channel(channels: Sequence[dict], channel: str | None = None) -> dict | None:
    """Pick the frequency-shift channel from a ``DATA_INFO`` table.

    With ``channel`` given, the entry whose name matches it (case, spaces and
    underscores ignored). Otherwise the first channel whose name contains "freq.
    shift"/"frequency shift"/"freq shift" or is "df"/"delta f", preferring the
    oscillation controller's "OC M1" channel. None when there is none.
    """
    if channel is not None:
        want = _normalise(channel)
        for ch in channels:
            if _normalise(ch["Name"]) == want:
                return ch
        return None
    candidates = []
    for ch in channels:
        n = _normalise(ch["Name"])
        if (
            "freq. shift" in n
            or "frequency shift" in n
            or "freq shift" in n
            or n in ("df", "delta f", "δf")
            or n.startswith("df ")
        ):
            candidates.append(ch)
    if not candidates:
        return None
    candidates.sort(key=lambda ch: 0 if "oc m1" in _normalise(ch["Name"]) else 1)
    return candidates[0]


# --------------------------------------------------------------------------- data


def _dtype(path, header):
    kind = " ".join(header.get("SCANIT_TYPE", "FLOAT MSBFIRST").split()).upper()
    if kind == "FLOAT MSBFIRST":
        return np.dtype(">f4")
    if kind == "FLOAT LSBFIRST":
        return np.dtype("<f4")
    raise FileFormatError(path, f"unsupported SCANIT_TYPE {kind!r} (expected 'FLOAT MSBFIRST')")


def _image_index(channels, wanted, direction):
    """Position of (channel, direction) among the stored images."""
    k = 0
    for ch in channels:
        dirs = ("forward", "backward") if ch["Direction"] == "both" else (ch["Direction"],)
        for d in dirs:
            if ch is wanted and d == direction:
                return k
            k += 1
    return None


def _n_images(channels):
    return sum(2 if ch["Direction"] == "both" else 1 for ch in channels)


def read_sxm_image(path, channel: dict, direction: str, header, data_offset) -> np.ndarray:
    """One image of an ``.sxm`` file in our frame (rows = y up, columns = x right)."""
    path = Path(path)
    nx, ny = (int(v) for v in _numbers(path, header, "SCAN_PIXELS", 2))
    if nx < 1 or ny < 1:
        raise FileFormatError(path, f"SCAN_PIXELS must be positive, got {nx} × {ny}")
    channels = parse_data_info(path, header)
    wanted = next((c for c in channels if c["Name"] == channel["Name"]), None)
    idx = _image_index(channels, wanted, direction)
    if idx is None:
        raise FileFormatError(path, f"channel {channel['Name']!r} has no {direction} image")
    dtype = _dtype(path, header)
    image_bytes = nx * ny * dtype.itemsize
    expected = _n_images(channels) * image_bytes
    size = path.stat().st_size - data_offset
    if size != expected:
        raise FileFormatError(
            path,
            f"data block holds {size} bytes but the header ({len(channels)} channels, "
            f"{nx} × {ny} pixels) needs {expected}; the file is truncated or damaged",
        )
    with open(path, "rb") as fh:
        fh.seek(data_offset + idx * image_bytes)
        raw = fh.read(image_bytes)
    img = np.frombuffer(raw, dtype=dtype).reshape(ny, nx).astype(np.float64)
    scan_dir = header.get("SCAN_DIR", "").strip().lower()
    if scan_dir not in ("up", "down"):
        raise FileFormatError(path, f"SCAN_DIR must be 'up' or 'down', got {header.get('SCAN_DIR')!r}")
    if scan_dir == "down":  # first recorded line is the top (largest y)
        img = img[::-1]
    if direction == "backward":  # recorded right to left
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


# --------------------------------------------------------------------------- frames


def _read_frame(path: Path, channel: str | None, direction: str) -> dict:
    """Everything we need from one file: Δf image (Hz), geometry, z, cantilever."""
    header, offset = read_sxm_header(path)
    channels = parse_data_info(path, header)
    ch = find_df_channel(channels, channel)
    if ch is None:
        names = [c["Name"] for c in channels]
        what = f"channel {channel!r}" if channel else "frequency-shift channel (e.g. 'OC M1 Freq. Shift')"
        raise FileFormatError(path, f"no {what} among the recorded channels {names}")
    factor = frequency_factor_Hz(ch["Unit"])
    if factor is None:
        raise FileFormatError(
            path, f"channel {ch['Name']!r} has unit {ch['Unit']!r}; expected Hz, mHz or kHz"
        )
    df = read_sxm_image(path, ch, direction, header, offset) * factor

    nx, ny = (int(v) for v in _numbers(path, header, "SCAN_PIXELS", 2))
    range_m = _numbers(path, header, "SCAN_RANGE", 2)
    offset_given = _numbers(path, header, "SCAN_OFFSET", 2, required=False)
    offset_m = offset_given if offset_given is not None else [0.0, 0.0]
    angle = _numbers(path, header, "SCAN_ANGLE", 1, required=False)
    angle_deg = angle[0] if angle is not None else 0.0
    px_x, px_y = range_m[0] / nx * M_TO_A, range_m[1] / ny * M_TO_A
    if not (px_x > 0 and px_y > 0):
        raise FileFormatError(path, f"SCAN_RANGE must be positive, got {range_m} m")
    if abs(px_x - px_y) > 1e-3 * max(px_x, px_y):
        raise FileFormatError(
            path, f"pixels are not square ({px_x:.5g} Å in x, {px_y:.5g} Å in y); resample the "
            "frames to square pixels before stacking"
        )
    warnings: list[str] = []

    z_m, z_key = _float_entry(header, _Z_KEYS)
    z_source = f"header {z_key}" if z_m is not None else None
    if z_m is None:
        zch = next((c for c in channels if _normalise(c["Name"]) == "z"), None)
        if zch is not None and zch["Direction"] in ("both", "forward"):
            zimg = read_sxm_image(path, zch, "forward", header, offset)
            if np.isfinite(zimg).any():
                z_m, z_source = float(np.nanmean(zimg)), "mean of the Z channel (forward)"
    feedback_on = False
    zc = header.get("Z-CONTROLLER", "")
    rows = [r.strip().split("\t") for r in zc.split("\n") if r.strip()]
    if len(rows) >= 2 and "on" in [c.strip() for c in rows[0]]:
        col = [c.strip() for c in rows[0]].index("on")
        feedback_on = len(rows[1]) > col and rows[1][col].strip() in ("1", "ON", "on", "TRUE")
    if header.get("Z-Controller>Controller status", "").strip().upper() == "ON":
        feedback_on = True
    if feedback_on:
        warnings.append("the z feedback was ON while recording: this is not a constant-height frame")
    if angle_deg != 0.0:
        warnings.append(
            f"SCAN_ANGLE is {angle_deg:g}°: x/y are those of the rotated scan frame, not the "
            "piezo frame"
        )
    nan_fraction = float(np.mean(~np.isfinite(df)))
    if nan_fraction > 0:
        warnings.append(f"{nan_fraction:.1%} of the Δf pixels are NaN (aborted scan?)")

    f0, f0_key = _float_entry(header, _F0_KEYS)
    amp_m, amp_key = _float_entry(header, _AMPLITUDE_KEYS)
    bias, _ = _float_entry(header, ("BIAS", "Bias>Bias (V)"))
    return {
        "path": path,
        "df_Hz": df,
        "shape": (ny, nx),
        "range_m": range_m,
        "offset_m": offset_m,
        "offset_in_header": offset_given is not None,
        "angle_deg": angle_deg,
        "pixel_size_A": 0.5 * (px_x + px_y),
        "z_m": z_m,
        "z_source": z_source,
        "f0_Hz": f0 if f0 is not None and f0 > 0 else None,
        "f0_key": f0_key,
        "amplitude_A": amp_m * M_TO_A if amp_m is not None and amp_m > 0 else None,
        "amplitude_key": amp_key,
        "bias_V": bias,
        "channel": ch["Name"],
        "unit": ch["Unit"],
        "scan_dir": header.get("SCAN_DIR", "").strip().lower(),
        "rec_date": header.get("REC_DATE", "").strip(),
        "rec_time": header.get("REC_TIME", "").strip(),
        "warnings": warnings,
    }


def _check_same_geometry(ref: dict, fr: dict) -> None:
    path = fr["path"]
    if fr["shape"] != ref["shape"]:
        raise FileFormatError(
            path, f"has {fr['shape'][1]} × {fr['shape'][0]} pixels but {ref['path'].name} has "
            f"{ref['shape'][1]} × {ref['shape'][0]}; all frames of a stack must share SCAN_PIXELS"
        )
    if not np.allclose(fr["range_m"], ref["range_m"], rtol=1e-6, atol=0):
        raise FileFormatError(
            path, f"SCAN_RANGE {fr['range_m']} m differs from {ref['path'].name} "
            f"({ref['range_m']} m); all frames of a stack must share the scan frame"
        )
    tol_m = 0.01 * ref["pixel_size_A"] / M_TO_A  # 1 % of a pixel
    if not np.allclose(fr["offset_m"], ref["offset_m"], rtol=0, atol=tol_m):
        raise FileFormatError(
            path, f"SCAN_OFFSET {fr['offset_m']} m differs from {ref['path'].name} "
            f"({ref['offset_m']} m); all frames of a stack must share the scan frame"
        )
    if abs(fr["angle_deg"] - ref["angle_deg"]) > 1e-6:
        raise FileFormatError(
            path, f"SCAN_ANGLE {fr['angle_deg']}° differs from {ref['path'].name} ({ref['angle_deg']}°)"
        )


def read_frames(paths: Sequence, *, channel: str | None = None, direction: str = "forward") -> AFMStack:
    """Stack several ``.sxm`` constant-height frames, farthest first.

    Parameters
    ----------
    paths : sequence of path-like
        One ``.sxm`` file per tip height (any order).
    channel : str, optional
        Name of the Δf channel; by default the frequency-shift channel is found by name.
    direction : {"forward", "backward"}
        Which scan direction to use.

    Raises
    ------
    FileFormatError
        If a file is broken, has no Δf channel, or does not share the scan frame
        (pixels, range, offset, angle) of the others; the message names that file.
    """
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no .sxm files given")
    frames = [_read_frame(p, channel, direction) for p in paths]
    ref = frames[0]
    for fr in frames[1:]:
        _check_same_geometry(ref, fr)

    if len(frames) > 1:
        for fr in frames:
            if fr["z_m"] is None:
                raise FileFormatError(
                    fr["path"], "no tip z position (no 'Z-Controller>Z (m)' header entry and no Z "
                    "channel), so the frames cannot be ordered by height"
                )
        frames.sort(key=lambda fr: fr["z_m"], reverse=True)  # larger Nanonis Z = farther
        z = np.array([fr["z_m"] for fr in frames])
        for a, b in zip(frames[:-1], frames[1:]):
            if not a["z_m"] - b["z_m"] > 1e-15:
                raise FileFormatError(
                    b["path"], f"has the same tip z ({b['z_m']:.6g} m) as {a['path'].name}; "
                    "two frames at one height cannot be stacked"
                )
        heights = (z - z.min()) * M_TO_A
        frame_text = (
            "relative: 0 = closest frame, from the Nanonis z positions (header "
            "'Z-Controller>Z (m)', else the mean of the Z channel); larger Nanonis Z = tip "
            "farther from the sample"
        )
    else:
        heights = np.zeros(1)
        z_txt = f" (Nanonis Z = {ref['z_m']:.6g} m)" if ref["z_m"] is not None else ""
        frame_text = f"relative: single frame at height 0{z_txt}"

    ref = frames[0]
    px = ref["pixel_size_A"]
    cx, cy = (v * M_TO_A for v in ref["offset_m"])
    w, h = (v * M_TO_A for v in ref["range_m"])
    origin = (cx - w / 2 + px / 2, cy - h / 2 + px / 2)

    def _common(key, default, name):
        vals = [fr[key] for fr in frames if fr[key] is not None]
        if not vals:
            return default, "default", []
        spread = (max(vals) - min(vals)) / max(abs(max(vals)), 1e-300)
        notes = []
        if spread > 1e-3:
            notes.append(f"{name} differs between frames ({min(vals):g} … {max(vals):g}); using the mean")
        return float(np.mean(vals)), "header", notes

    f0, f0_source, w1 = _common("f0_Hz", DEFAULT_F0_HZ, "f0")
    amp, amp_source, w2 = _common("amplitude_A", DEFAULT_AMPLITUDE_A, "amplitude")
    warnings = sorted({w for fr in frames for w in fr["warnings"]}) + w1 + w2
    if not ref["offset_in_header"]:
        warnings.append("no SCAN_OFFSET in the header: the frame is assumed centred on (0, 0)")
    meta = {
        "source_format": "sxm",
        "source_files": [str(fr["path"]) for fr in frames],
        "channel": ref["channel"],
        "channel_unit": ref["unit"],
        "direction": direction,
        "height_frame": frame_text,
        "z_positions_m": [fr["z_m"] for fr in frames],
        "z_source": [fr["z_source"] for fr in frames],
        "scan_dir": [fr["scan_dir"] for fr in frames],
        "scan_angle_deg": ref["angle_deg"],
        "scan_range_m": list(ref["range_m"]),
        "scan_offset_m": list(ref["offset_m"]),
        "bias_V": [fr["bias_V"] for fr in frames],
        "recorded": [f"{fr['rec_date']} {fr['rec_time']}".strip() for fr in frames],
        "f0_source": f0_source if f0_source == "default" else "header " + next(
            fr["f0_key"] for fr in frames if fr["f0_key"]
        ),
        "amplitude_source": amp_source if amp_source == "default" else "header " + next(
            fr["amplitude_key"] for fr in frames if fr["amplitude_key"]
        ) + ", taken as zero-to-peak",
        "k_source": "default",
    }
    if warnings:
        meta["warnings"] = warnings
    try:
        return AFMStack(
            data=np.stack([fr["df_Hz"] for fr in frames]),
            heights_A=heights,
            pixel_size_A=px,
            origin_A=origin,
            f0_Hz=f0,
            k_N_per_m=DEFAULT_K_N_PER_M,
            amplitude_A=amp,
            metadata=meta,
        )
    except StackError as e:
        raise FileFormatError(ref["path"], str(e)) from e


def read(path, *, channel: str | None = None, direction: str = "forward") -> AFMStack:
    """Read a Δf stack from one ``.sxm`` file, a folder of them, or a list of files.

    A folder contributes every ``*.sxm`` directly inside it (not sub-folders). The file
    is only read, never modified. See the module docstring for the frames used.
    """
    if isinstance(path, (list, tuple)):
        return read_frames(path, channel=channel, direction=direction)
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".sxm" and p.is_file())
        if not files:
            raise FileFormatError(path, "the folder holds no .sxm files")
        return read_frames(files, channel=channel, direction=direction)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return read_frames([path], channel=channel, direction=direction)
