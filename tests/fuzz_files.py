"""Seeded fuzzing of every reader: truncations and byte flips of small valid files.

Every read must end within a time bound and give either a valid result or a
``FileFormatError`` that names the file; a truncated file must never come back as a
smaller valid stack (silent loss); the input files are never changed. Used by
``tests/test_fuzz_readers.py`` (a fast subset in CI) and ``benchmarks/bench_fuzz.py`` (the
full campaign with its outcome table).
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import numpy as np

OUTCOMES = ("valid", "clean error", "unexpected exception", "hang", "silent loss", "input changed")


def base_files(folder: Path) -> dict:
    """Small valid files of every format: {name: (path, reader kind)}."""
    import tifffile
    from gwyfile.objects import GwyContainer, GwyDataField, GwySIUnit

    from napari_afm_style._sample_data import EXP_STACK, SIM_GEOMETRY, data_path
    from napari_afm_style.io import read_atoms, read_stack, write_atoms, write_stack
    from napari_afm_style.io.tiff import write_stack_tiff
    from sxm_writer import write_sxm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    full = read_stack(data_path(EXP_STACK))
    small = full.replace(data=np.ascontiguousarray(full.data[:, :32, :32]))
    files = {"npz": (write_stack(small, folder / "stack.npz"), "stack"),
             "tiff_ours": (write_stack_tiff(small, folder / "stack.tif"), "stack")}
    ij = folder / "imagej.tif"
    tifffile.imwrite(ij, small.data, imagej=True, resolution=(8.0, 8.0), metadata={"spacing": 0.1, "unit": "angstrom"})
    files["tiff_imagej"] = (ij, "stack")
    c = GwyContainer()
    for i, z in enumerate((0.2, 0.1, 0.0)):
        c[f"/{i}/data"] = GwyDataField(small.data[i * 3].astype(np.float64), xreal=4e-10, yreal=4e-10,
                                       si_unit_xy=GwySIUnit(unitstr="m"), si_unit_z=GwySIUnit(unitstr="Hz"))
        c[f"/{i}/data/title"] = f"Frequency shift z={z:.1f} A"
    gwy = folder / "stack.gwy"
    c.tofile(str(gwy))
    files["gwy"] = (gwy, "stack")
    sxm = folder / "frame.sxm"
    img = small.data[-1].astype(np.float32)
    write_sxm(sxm, [{"name": "OC_M1_Freq._Shift", "unit": "Hz", "forward": img, "backward": img}],
              range_m=(32 * 0.125e-10, 32 * 0.125e-10))
    files["sxm"] = (sxm, "stack")
    geo = read_atoms(data_path(SIM_GEOMETRY))[:12]
    files["xyz"] = (write_atoms(geo, folder / "geometry.xyz"), "atoms")
    return files


def mutations(data: bytes, rng: np.random.Generator, n_cuts: int, n_flips: int):
    """(kind, description, mutated bytes): truncations at spread-out lengths, then single-byte flips."""
    n = len(data)
    for frac in np.linspace(0.02, 0.995, n_cuts):
        cut = int(frac * n)
        yield "truncation", f"cut at {cut}/{n}", data[:cut]
    for pos in rng.integers(0, n, n_flips):
        b = bytearray(data)
        b[int(pos)] ^= int(rng.integers(1, 256))
        yield "flip", f"byte {int(pos)} flipped", bytes(b)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def read_once(path: Path, kind: str, timeout_s: int = 10):
    """(outcome, result or message) of one read of ``path``."""
    from napari_afm_style.io import FileFormatError, read_atoms, read_stack

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        result = read_stack(path) if kind == "stack" else read_atoms(path)
        return "valid", result
    except _Timeout:
        return "hang", f"no answer within {timeout_s} s"
    except FileFormatError as e:
        return ("clean error", str(e)) if path.name in str(e) else ("unexpected exception", f"unnamed: {e}")
    except FileNotFoundError as e:
        return "clean error", str(e)
    except Exception as e:  # noqa: BLE001 - what the campaign looks for
        return "unexpected exception", f"{type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _size(result, kind):
    return result.data.shape if kind == "stack" else (len(result),)


def campaign(folder: Path, n_cuts: int = 12, n_flips: int = 30, seed: int = 0, formats=None) -> dict:
    """Run the mutations of every base file; returns {format: {outcome: count}} and the
    list of non-clean cases."""
    rng = np.random.default_rng(seed)
    files = base_files(Path(folder) / "base")
    work = Path(folder) / "mutated"
    work.mkdir(parents=True, exist_ok=True)
    table, bad = {}, []
    for name, (path, kind) in files.items():
        if formats and name not in formats:
            continue
        original = path.read_bytes()
        outcome, ref = read_once(path, kind)
        assert outcome == "valid", f"the base {name} file does not read: {ref}"
        counts = dict.fromkeys(OUTCOMES, 0)
        for i, (mkind, desc, data) in enumerate(mutations(original, rng, n_cuts, n_flips)):
            target = work / f"{name}_{i:04d}{path.suffix}"
            target.write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            outcome, got = read_once(target, kind)
            if outcome == "valid" and mkind == "truncation" and _size(got, kind) != _size(ref, kind):
                outcome = "silent loss"
            if hashlib.sha256(target.read_bytes()).hexdigest() != digest:
                outcome = "input changed"
            counts[outcome] += 1
            if outcome not in ("valid", "clean error"):
                bad.append((name, desc, outcome, str(got)[:200]))
        table[name] = counts
    return {"table": table, "bad": bad}
