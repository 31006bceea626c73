"""Byte-exact Nanonis ``.sxm`` writer, for making test fixtures only.

It follows the points of the format that the reader relies on (and that independent
parsers such as nanonispy and Gwyddion rely on):

* Latin-1 header of ``:KEY:`` lines each followed by value lines, ``\\n`` line ends,
  beginning with ``:NANONIS_VERSION:`` and ending with ``:SCANIT_END:``;
* then ``\\n\\n`` and the two-byte marker ``0x1A 0x04`` (so the data start 4 bytes after
  the end of the ``:SCANIT_END:`` line);
* ``SCANIT_TYPE`` ``FLOAT MSBFIRST`` → big-endian float32 data (``LSBFIRST`` on
  request, little-endian);
* ``SCAN_PIXELS`` (nx ny), ``SCAN_RANGE`` (m), ``SCAN_OFFSET`` (m, frame centre),
  ``SCAN_ANGLE`` (deg), ``SCAN_DIR`` (up/down), ``BIAS`` (V), a tab-separated
  ``Z-CONTROLLER`` table, module entries such as ``Z-Controller>Z (m)`` and
  ``Oscillation Control>…``, and the tab-separated ``DATA_INFO`` table (``Channel Name
  Unit Direction Calibration Offset``) closed by an empty line;
* data: per channel in table order, forward image then backward image (one only when
  the direction is ``forward``/``backward``), each ny rows × nx values in acquisition
  order: for ``up`` the first row is the bottom (lowest y), for ``down`` the top; the
  backward rows run right to left.

Images are given in the physical frame (row index = y up, column index = x right) and
converted to acquisition order here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _e(v: float) -> str:
    return f"{v:.6E}"


def write_sxm(
    path,
    channels,
    *,
    range_m=(1e-9, 1e-9),
    offset_m=(0.0, 0.0),
    angle_deg=0.0,
    scan_dir="down",
    bias_V=0.1,
    z_m=None,
    z_controller_on=False,
    f0_Hz=None,
    amplitude_m=None,
    byte_order="MSBFIRST",
    omit=(),
) -> Path:
    """Write an ``.sxm`` file.

    Parameters
    ----------
    channels : list of dict
        Each ``{"name": str, "unit": str, "forward": (ny, nx) array or None,
        "backward": (ny, nx) array or None}`` in the physical frame.
    z_m, f0_Hz, amplitude_m : float, optional
        Written as ``Z-Controller>Z (m)``, ``Oscillation Control>Center Frequency (Hz)``
        and ``Oscillation Control>Amplitude Setpoint (m)`` when given.
    omit : iterable of str
        Header keys to leave out (to make broken files).
    """
    path = Path(path)
    first = next(c[d] for c in channels for d in ("forward", "backward") if c.get(d) is not None)
    ny, nx = np.shape(first)
    entries: list[tuple[str, list[str]]] = [
        ("NANONIS_VERSION", ["2"]),
        ("SCANIT_TYPE", [f"              FLOAT            {byte_order}"]),
        ("REC_DATE", [" 01.02.2024"]),
        ("REC_TIME", ["12:00:00"]),
        ("REC_TEMP", ["      4.8000000000"]),
        ("ACQ_TIME", ["       100.0"]),
        ("SCAN_PIXELS", [f"       {nx}       {ny}"]),
        ("SCAN_FILE", [f"C:\\data\\{path.name}"]),
        ("SCAN_TIME", ["             1.000E+0             1.000E+0"]),
        ("SCAN_RANGE", [f"           {_e(range_m[0])}           {_e(range_m[1])}"]),
        ("SCAN_OFFSET", [f"             {_e(offset_m[0])}         {_e(offset_m[1])}"]),
        ("SCAN_ANGLE", [f"            {angle_deg:.3E}"]),
        ("SCAN_DIR", [scan_dir]),
        ("BIAS", [f"            {bias_V:.3E}"]),
        ("Z-CONTROLLER", [
            "\tName\ton\tSetpoint\tP-gain\tI-gain\tT-const",
            f"\tlog Current\t{1 if z_controller_on else 0}\t1.000E-11 A\t1.000E-12 m"
            "\t1.000E-9 m/s\t1.000E-3 s",
        ]),
        ("COMMENT", [""]),
        ("Bias>Bias (V)", [f"{bias_V:.6E}"]),
    ]
    if z_m is not None:
        entries.append(("Z-Controller>Z (m)", [_e(z_m)]))
    entries.append(("Z-Controller>Controller status", ["ON" if z_controller_on else "OFF"]))
    if f0_Hz is not None:
        entries.append(("Oscillation Control>Center Frequency (Hz)", [_e(f0_Hz)]))
    if amplitude_m is not None:
        entries.append(("Oscillation Control>Amplitude Setpoint (m)", [_e(amplitude_m)]))
    entries.append(("Scan>channels", [";".join(c["name"].replace("_", " ") for c in channels)]))
    info = ["\tChannel\tName\tUnit\tDirection\tCalibration\tOffset"]
    blocks = []
    for i, c in enumerate(channels):
        fwd, bwd = c.get("forward"), c.get("backward")
        if fwd is not None and bwd is not None:
            direction = "both"
        else:
            direction = "forward" if fwd is not None else "backward"
        info.append(f"\t{i}\t{c['name']}\t{c['unit']}\t{direction}\t1.000E+0\t0.000E+0")
        for img, backward in ((fwd, False), (bwd, True)):
            if img is None:
                continue
            img = np.asarray(img, dtype=np.float64)
            if img.shape != (ny, nx):
                raise ValueError(f"channel {c['name']} image has shape {img.shape}, expected {(ny, nx)}")
            stored = img[::-1] if scan_dir == "down" else img  # first stored row = first scanned line
            if backward:
                stored = stored[:, ::-1]  # backward lines are recorded right to left
            blocks.append(stored)
    info.append("")
    entries.append(("DATA_INFO", info))
    lines = []
    for key, values in entries:
        if key in omit:
            continue
        lines.append(f":{key}:")
        lines.extend(values)
    header = "\n".join(lines) + "\n:SCANIT_END:\n"
    dtype = ">f4" if byte_order == "MSBFIRST" else "<f4"
    data = b"".join(np.ascontiguousarray(b, dtype=dtype).tobytes() for b in blocks)
    path.write_bytes(header.encode("latin-1") + b"\n\n" + b"\x1a\x04" + data)
    return path
