"""Geometries: XYZ / extended XYZ via ASE, plus the ppafm XYZ variant.

The ppafm variant (used by ppafm and by the theoretical structures of this project) has
atomic numbers instead of symbols, a fifth column with charges (e) and, in the comment
line, the scan parameters, e.g.::

    477
    Scan window: [[x0 y0 z0], [x1 y1 z1]], Amplitude: 1.2, tip R0: [0.18, 0.13, 3], kxy: -0.03
    1  16.869  7.625  10.814  0.0

Those scan parameters are kept in ``atoms.info["ppafm_scan"]`` (Å; z values are ppafm's
tip-anchor scan window).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ._atomic import FileFormatError, atomic_path, check_overwrite

__all__ = ["read_atoms", "write_atoms", "is_xyz", "parse_ppafm_comment"]

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_ppafm_comment(comment: str) -> dict:
    """Scan parameters from a ppafm XYZ comment line (empty dict if there are none)."""
    out: dict = {}
    m = re.search(r"Scan window:\s*\[\[(.*?)\],\s*\[(.*?)\]\]", comment)
    if m:
        lo = [float(v) for v in re.findall(_NUM, m.group(1))]
        hi = [float(v) for v in re.findall(_NUM, m.group(2))]
        if len(lo) == 3 and len(hi) == 3:
            out["scan_window_A"] = [lo, hi]
    for key, name in (("Amplitude", "amplitude_A"), ("kxy", "kxy")):
        m = re.search(rf"{key}:\s*({_NUM})", comment)
        if m:
            out[name] = float(m.group(1))
    m = re.search(r"tip R0:\s*\[(.*?)\]", comment)
    if m:
        out["tipR0_A"] = [float(v) for v in re.findall(_NUM, m.group(1))]
    return out


def is_xyz(path) -> bool:
    """True if ``path`` looks like an XYZ file (count line, comment, atom lines)."""
    path = Path(path)
    if path.suffix.lower() not in (".xyz", ".extxyz") or not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8", errors="strict") as fh:
            first = fh.readline(64).strip()  # bounded: a huge file without newlines is not read whole
        return first.isdigit()
    except (OSError, UnicodeDecodeError):
        return False


def _read_plain_xyz(path: Path, lines: list[str]) -> Atoms:
    """Plain / ppafm XYZ: symbol or atomic number, x, y, z[, charge]."""
    try:
        n = int(lines[0].split()[0])
    except (IndexError, ValueError) as e:
        raise FileFormatError(path, "first line must be the number of atoms") from e
    if n < 0:
        raise FileFormatError(path, f"the atom count on the first line is negative ({n})")
    extra = [ln for ln in lines[2 + n:] if ln.strip()]
    if extra:
        raise FileFormatError(path, f"header says {n} atoms but {n + len(extra)} atom lines follow; "
                                    "fix the count on the first line")
    body = [ln for ln in lines[2 : 2 + n]]
    if len(body) < n or any(not ln.strip() for ln in body):
        raise FileFormatError(path, f"header says {n} atoms but only {len([b for b in body if b.strip()])} atom lines follow (truncated?)")
    numbers, positions, charges = [], [], []
    for i, ln in enumerate(body):
        parts = ln.split()
        if len(parts) < 4:
            raise FileFormatError(path, f"atom line {i + 3} has fewer than 4 columns: {ln.strip()!r}")
        tag = parts[0]
        try:
            z = int(tag) if tag.isdigit() else chemical_symbols.index(tag.capitalize())
            xyz = [float(v) for v in parts[1:4]]
            q = float(parts[4]) if len(parts) > 4 else 0.0
        except ValueError as e:
            raise FileFormatError(path, f"cannot parse atom line {i + 3}: {ln.strip()!r}") from e
        if not 1 <= z < len(chemical_symbols):
            raise FileFormatError(path, f"atom line {i + 3}: atomic number {z} is not an element (1–{len(chemical_symbols) - 1})")
        numbers.append(z)
        positions.append(xyz)
        charges.append(q)
    pos = np.array(positions, dtype=float)
    if not np.all(np.isfinite(pos)):
        raise FileFormatError(path, "atom positions contain NaN or infinity")
    atoms = Atoms(numbers=numbers, positions=pos)
    atoms.set_initial_charges(charges)
    scan = parse_ppafm_comment(lines[1] if len(lines) > 1 else "")
    if scan:
        atoms.info["ppafm_scan"] = scan
    atoms.info["comment"] = lines[1].strip() if len(lines) > 1 else ""
    return atoms


def _check_elements(path: Path, atoms: Atoms) -> Atoms:
    bad = [int(z) for z in atoms.numbers if not 1 <= int(z) < len(chemical_symbols)]
    if bad:
        raise FileFormatError(path, f"atomic number(s) {sorted(set(bad))} are not elements")
    return atoms


def read_atoms(path) -> Atoms:
    """Read a geometry (XYZ, extended XYZ, ppafm XYZ, or any format ASE reads).

    Positions are in Å. Per-atom columns of extended XYZ (e.g. ``confidence``) end up
    in ``atoms.arrays``; ppafm charges in ``atoms.get_initial_charges()``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in (".xyz", ".extxyz"):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise FileFormatError(path, "not a text file; an XYZ file must be plain text") from e
        lines = text.splitlines()
        if not lines:
            raise FileFormatError(path, "the file is empty")
        comment = lines[1] if len(lines) > 1 else ""
        if "Properties=" in comment or "Lattice=" in comment:
            import ase.io

            try:
                frames = ase.io.read(path, format="extxyz", index=":")
            except Exception as e:  # ASE raises assorted errors on broken files
                raise FileFormatError(path, f"broken extended XYZ: {e}") from e
            return _check_positions(path, _one_frame(path, frames))
        return _read_plain_xyz(path, lines)
    import ase.io

    try:
        frames = ase.io.read(path, index=":")
    except Exception as e:
        raise FileFormatError(path, f"ASE cannot read this geometry: {e}") from e
    return _check_positions(path, _one_frame(path, frames))


def _one_frame(path: Path, frames) -> Atoms:
    """The only structure of a file; a trajectory is refused rather than cut to one frame."""
    frames = frames if isinstance(frames, list) else [frames]
    if len(frames) != 1:
        raise FileFormatError(path, f"{len(frames)} structures (a trajectory); save the one to use "
                                    "as its own file (e.g. ase.io.write(out, ase.io.read(path, index=-1)))")
    return frames[0]


def _check_positions(path: Path, atoms: Atoms) -> Atoms:
    if not np.all(np.isfinite(atoms.positions)):
        raise FileFormatError(path, "positions contain NaN or infinite values")
    return _check_elements(path, atoms)


def write_atoms(atoms: Atoms, path) -> Path:
    """Write ``atoms`` as extended XYZ (atomically), keeping per-atom arrays such as
    ``confidence`` and the charges. Refuses to overwrite a non-XYZ file."""
    import ase.io

    path = Path(path)
    if path.suffix.lower() not in (".xyz", ".extxyz"):
        raise ValueError(f"{path}: geometries are written as .xyz / .extxyz")
    if not np.all(np.isfinite(atoms.positions)):
        raise ValueError(f"{path}: positions contain NaN or infinite values; nothing written")
    check_overwrite(path, is_xyz)
    atoms = atoms.copy()
    # ASE's extxyz writer cannot serialise nested dicts; keep scalars and strings.
    atoms.info = {k: v for k, v in atoms.info.items() if isinstance(v, (int, float, str, bool))}
    with atomic_path(path) as tmp:
        ase.io.write(tmp, atoms, format="extxyz")
    return path
