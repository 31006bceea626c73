import hashlib

import numpy as np
import pytest
from ase import Atoms

from napari_afm_style.io import FileFormatError, read_atoms, read_stack, write_atoms, write_stack


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_stack_round_trip_keeps_units_and_metadata(small_stack, tmp_path):
    path = write_stack(small_stack, tmp_path / "s.npz")
    before = _digest(path)
    back = read_stack(path)
    assert _digest(path) == before  # reading never modifies the file
    assert np.array_equal(back.data, small_stack.data)
    assert np.allclose(back.heights_A, small_stack.heights_A)
    assert back.pixel_size_A == small_stack.pixel_size_A
    assert np.allclose(back.origin_A, small_stack.origin_A)
    assert (back.f0_Hz, back.k_N_per_m, back.amplitude_A) == (30300.0, 1800.0, 0.8)
    assert back.metadata["source"] == "test"
    with np.load(path) as z:
        assert '"data": "Hz"' in str(z["units_json"])


def test_truncated_npz_names_file(small_stack, tmp_path):
    path = write_stack(small_stack, tmp_path / "s.npz")
    raw = path.read_bytes()
    bad = tmp_path / "broken.npz"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FileFormatError, match="broken.npz"):
        read_stack(bad)


def test_foreign_files_are_refused(tmp_path):
    foreign = tmp_path / "other.npz"
    np.savez(foreign, image=np.zeros((4, 4)))
    with pytest.raises(FileFormatError, match="not a Δf stack"):
        read_stack(foreign)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(FileFormatError):
        read_stack(text)


def test_write_refuses_to_clobber_other_files(small_stack, tmp_path):
    precious = tmp_path / "data.npz"
    np.savez(precious, image=np.ones(3))
    before = _digest(precious)
    with pytest.raises(FileExistsError):
        write_stack(small_stack, precious)
    assert _digest(precious) == before
    notxyz = tmp_path / "notes.xyz"
    notxyz.write_text("my lab notes, not a geometry\n")
    with pytest.raises(FileExistsError):
        write_atoms(Atoms("H"), notxyz)
    assert notxyz.read_text().startswith("my lab notes")


def test_atoms_round_trip_with_confidence(tmp_path):
    atoms = Atoms("OH2", positions=[[1.0, 2.0, 3.0], [1.96, 2.0, 3.0], [0.76, 2.93, 3.0]])
    atoms.arrays["confidence"] = np.array([0.9, 0.5, 0.25])
    atoms.set_initial_charges([-0.8, 0.4, 0.4])
    path = write_atoms(atoms, tmp_path / "w.xyz")
    back = read_atoms(path)
    assert back.get_chemical_symbols() == ["O", "H", "H"]
    assert np.allclose(back.positions, atoms.positions)
    assert np.allclose(back.arrays["confidence"], [0.9, 0.5, 0.25])
    assert np.allclose(back.get_initial_charges(), [-0.8, 0.4, 0.4])


PPAFM_XYZ = """3
Scan window: [[ 2.5 -6.5 16.9], [34.6 25.0 19.5]], Amplitude: 1.2, tip R0: [0.18, 0.13, 3], kxy: -0.026
8\t16.0\t7.6\t10.8\t-0.8\t
1\t16.9\t7.6\t10.8\t0.4\t
79\t14.0\t14.0\t4.7\t0.0\t
"""


def test_reads_ppafm_xyz_variant(tmp_path):
    path = tmp_path / "1.xyz"
    path.write_text(PPAFM_XYZ)
    atoms = read_atoms(path)
    assert atoms.get_chemical_symbols() == ["O", "H", "Au"]
    assert np.allclose(atoms.get_initial_charges(), [-0.8, 0.4, 0.0])
    scan = atoms.info["ppafm_scan"]
    assert scan["scan_window_A"] == [[2.5, -6.5, 16.9], [34.6, 25.0, 19.5]]
    assert scan["amplitude_A"] == pytest.approx(1.2)
    assert scan["tipR0_A"] == [0.18, 0.13, 3.0]


def test_truncated_xyz_is_reported(tmp_path):
    path = tmp_path / "cut.xyz"
    path.write_text("\n".join(PPAFM_XYZ.splitlines()[:3]) + "\n")
    with pytest.raises(FileFormatError, match="cut.xyz.*3 atoms"):
        read_atoms(path)


def test_a_killed_writer_leaves_the_old_file_and_its_orphan_is_removed_by_the_next_write(tmp_path):
    """kill -9 in the middle of a write: the target keeps its old content; the temporary
    file the dead writer left is removed by the next write to the same file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from napari_afm_style.io import read_stack, write_stack
    from napari_afm_style.stack import AFMStack

    target = tmp_path / "scan.npz"
    old = AFMStack(np.zeros((2, 8, 8), np.float32), [1.1, 1.0], 0.125, (0, 0))
    write_stack(old, target)
    before = target.read_bytes()
    code = (
        "import sys, time, numpy as np\n"
        "from napari_afm_style.io._atomic import atomic_path\n"
        f"with atomic_path({str(target)!r}) as tmp:\n"
        "    open(tmp, 'wb').write(b'partial data')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    orphans = [p for p in tmp_path.iterdir() if p.name.startswith(".scan.npz.")]
    assert len(orphans) == 1 and target.read_bytes() == before  # the old file is intact
    time.sleep(0.01)
    new = AFMStack(np.ones((2, 8, 8), np.float32), [1.1, 1.0], 0.125, (0, 0))
    write_stack(new, target)
    assert [p.name for p in tmp_path.iterdir()] == ["scan.npz"]  # orphan gone, nothing else left
    assert read_stack(target).data.max() == 1.0


def test_xyz_with_non_finite_positions_or_several_frames_is_refused(tmp_path):
    from ase import Atoms

    from napari_afm_style.io import FileFormatError, read_atoms, write_atoms

    nan = tmp_path / "nan.xyz"
    nan.write_text("2\nProperties=species:S:1:pos:R:3\nO nan 0 0\nH inf 0 1\n")
    with pytest.raises(FileFormatError, match=r"nan\.xyz.*NaN"):
        read_atoms(nan)
    two = tmp_path / "two.xyz"
    frame = 'Lattice="10 0 0 0 10 0 0 0 10" Properties=species:S:1:pos:R:3'
    two.write_text(f"1\n{frame}\nO 0 0 0\n1\n{frame}\nO 1 0 0\n")
    with pytest.raises(FileFormatError, match=r"two\.xyz.*2 structures"):
        read_atoms(two)
    with pytest.raises(ValueError, match="NaN"):
        write_atoms(Atoms("O", positions=[[np.nan, 0, 0]]), tmp_path / "out.xyz")
    assert not (tmp_path / "out.xyz").exists()


def test_writers_keep_read_only_files_and_other_peoples_temporaries(tmp_path, small_stack):
    target = tmp_path / "scan[1].npz"
    write_stack(small_stack, target)
    target.chmod(0o444)  # marked read-only by its owner
    with pytest.raises(PermissionError, match=r"scan\[1\]\.npz.*write-protected"):
        write_stack(small_stack, target)
    target.chmod(0o644)
    # files that only look like a killed writer's temporary are the user's: kept
    backup = tmp_path / ".scan[1].npz.20240101.bak"
    backup.write_text("x")
    lookalike = tmp_path / ".scan1.npz.99999999.abcdefgh.npz"
    lookalike.write_text("x")
    write_stack(small_stack, target)
    assert backup.exists() and lookalike.exists()


def test_npz_units_table_is_honoured(tmp_path):
    import json

    from napari_afm_style.stack import UNITS, AFMStack

    s = AFMStack(np.random.default_rng(1).random((3, 8, 8)), [0.2, 0.1, 0.0], 0.1, (0, 0))
    # a bare file (no metadata): closest slice at 0 → the relative frame, defaults recorded
    np.savez(tmp_path / "bare.npz", df=s.data, heights_A=s.heights_A, pixel_size_A=0.125)
    bare = read_stack(tmp_path / "bare.npz")
    assert not bare.heights_are_absolute and bare.metadata["f0_source"] == "default"
    # every unit is checked, not only the data's and the heights'
    d = s.to_dict()
    d["units_json"] = np.str_(json.dumps(dict(UNITS, pixel_size_A="nm")))
    np.savez(tmp_path / "nm.npz", **d)
    with pytest.raises(FileFormatError, match=r"nm\.npz.*pixel_size_A stored in 'nm'"):
        read_stack(tmp_path / "nm.npz")
    # per-slice normalised data stays labelled so through a round trip
    d = s.to_dict()
    d["units_json"] = np.str_(json.dumps(dict(UNITS, data="normalised")))
    np.savez(tmp_path / "norm.npz", **d)
    again = read_stack(write_stack(read_stack(tmp_path / "norm.npz"), tmp_path / "norm2.npz"))
    assert again.data_unit == "normalised"


def test_a_stack_is_not_written_under_another_kind_of_files_suffix(tmp_path, small_stack):
    with pytest.raises(ValueError, match=r"c\.xyz.*\.npz.*\.tif"):
        write_stack(small_stack, tmp_path / "c.xyz")
    assert list(tmp_path.iterdir()) == []
    assert write_stack(small_stack, tmp_path / "scan").name == "scan.npz"
    assert write_stack(small_stack, tmp_path / "scan.2024.05").name == "scan.2024.05.npz"
