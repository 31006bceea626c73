"""napari opens every stack format this project reads, through its reader contribution,
with the physical scale the file states (one test per format; files written at test time by
each format's own writer, as in test_io_formats)."""

import numpy as np
import pytest

from napari_afm_style._reader import napari_get_reader
from napari_afm_style.io import read_stack, write_atoms

from test_io_formats import gwy_field, pattern, ppafm_grid, sxm_frame


def _open(path):
    """The layer data tuples napari gets from our reader, or None if it is refused."""
    reader = napari_get_reader(str(path))
    return None if reader is None else reader(str(path))


def _stack_layer(layers, path):
    assert layers is not None, f"napari's reader refused {path}"
    (data, kwargs, kind), = layers
    assert kind == "image"
    return np.asarray(data), kwargs


def test_sxm_folder_opens_as_one_stack(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, z in enumerate((-1.00e-9, -0.98e-9, -0.99e-9)):
        sxm_frame(folder / f"scan_{i:03d}.sxm", pattern(5, 6, shift=10 * i), z_m=z)
    data, kw = _stack_layer(_open(folder), folder)
    assert data.shape == (3, 5, 6)
    np.testing.assert_allclose(data, read_stack(folder).data)
    assert kw["scale"][-1] == pytest.approx(read_stack(folder).pixel_size_A)


def test_gwy_opens(tmp_path):
    from gwyfile.objects import GwyContainer

    c = GwyContainer()
    for n in range(3):
        c[f"/{n}/data"] = gwy_field(pattern(6, 8, shift=n), xreal=1.6e-9)
        c[f"/{n}/data/title"] = f"Frequency shift z={0.1 * (n + 1):.2f} Å"
    f = tmp_path / "stack.gwy"
    c.tofile(str(f))
    data, kw = _stack_layer(_open(f), f)
    assert data.shape == (3, 6, 8) and kw["scale"][-1] == pytest.approx(2.0)


def test_tif_stack_opens_and_a_photograph_is_left_to_others(tmp_path, small_stack):
    import tifffile

    from napari_afm_style.io import tiff

    f = tiff.write_stack_tiff(small_stack, tmp_path / "stack.tif")
    data, kw = _stack_layer(_open(f), f)
    np.testing.assert_allclose(data, small_stack.data)
    assert kw["scale"][-1] == pytest.approx(small_stack.pixel_size_A)
    photo = tmp_path / "photo.tif"
    tifffile.imwrite(photo, np.zeros((16, 16, 3), np.uint8))
    assert napari_get_reader(str(photo)) is None


def test_ppafm_xsf_grid_opens(tmp_path):
    from ppafm import io as pio

    df, lvec = ppafm_grid()
    folder = tmp_path / "Q0.00K0.25" / "Amp1.00"
    folder.mkdir(parents=True)
    pio.save_scal_field(str(folder / "df"), df, lvec, data_format="xsf")
    data, kw = _stack_layer(_open(folder / "df.xsf"), folder / "df.xsf")
    assert data.shape == (4, 5, 7) and kw["scale"][-1] == pytest.approx(0.2)


def test_extxyz_geometry_opens_as_points(tmp_path):
    from ase import Atoms

    atoms = Atoms("OH2", positions=[[1.0, 2.0, 3.0], [1.8, 2.0, 3.5], [0.4, 2.6, 3.5]])
    f = tmp_path / "water.extxyz"
    write_atoms(atoms, f)
    layers = _open(f)
    assert layers is not None
    (data, kwargs, kind), = layers
    assert kind == "points" and len(data) == 3


def test_several_sxm_frames_stacked_by_napari_open_as_one_stack(make_napari_viewer, tmp_path):
    files = []
    for i, z in enumerate((-1.00e-9, -0.98e-9, -0.99e-9)):
        files.append(str(sxm_frame(tmp_path / f"scan_{i:03d}.sxm", pattern(5, 6, shift=10 * i), z_m=z)))
    viewer = make_napari_viewer()
    layers = viewer.open(files, stack=True, plugin="napari-afm-style")
    assert len(layers) == 1 and layers[0].data.shape == (3, 5, 6)
    np.testing.assert_allclose(layers[0].data, read_stack(tmp_path).data)
    assert napari_get_reader(files[:2] + [str(tmp_path / "notes.txt")]) is None


def test_what_the_reader_assumed_is_told_to_the_person(tmp_path, monkeypatch):
    import tifffile

    import napari_afm_style._reader as reader_module

    told = []
    monkeypatch.setattr(reader_module, "_notify", told.append)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.ones((4, 16, 16), np.float32), photometric="minisblack", metadata=None)
    assert _open(plain) is not None
    assert any("plain.tif" in t and "no pixel size" in t for t in told)
    assert any("no tip heights" in t for t in told)


def test_a_huge_unrecognised_file_is_not_read_whole_to_explain_it(tmp_path, monkeypatch):
    import napari_afm_style._reader as reader_module
    from napari_afm_style._reader import broken_reason

    big = tmp_path / "big.xyz"
    with open(big, "wb") as fh:  # sparse: 200 MB of nothing, no newline
        fh.truncate(200 * 2**20)
    monkeypatch.setattr(reader_module, "read_atoms", lambda p: (_ for _ in ()).throw(AssertionError("read")))
    assert "too large to examine" in broken_reason(big)
    told = []
    monkeypatch.setattr(reader_module, "_notify", told.append)
    assert napari_get_reader(str(big)) is None  # refused without reading it (read_atoms would raise)
    assert told and "too large to examine" in told[0]
