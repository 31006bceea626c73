"""Reader, writer and sample data inside a real (headless, Xvfb) napari viewer."""

import numpy as np
import pytest

from napari_afm_style._layers import stack_from_layer
from napari_afm_style._reader import napari_get_reader
from napari_afm_style.io import read_atoms, write_atoms, write_stack


def test_get_reader_returns_none_for_foreign_files(tmp_path):
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    other = tmp_path / "arrays.npz"
    np.savez(other, a=np.zeros(3))
    assert napari_get_reader(str(png)) is None
    assert napari_get_reader(str(other)) is None
    assert napari_get_reader(str(tmp_path / "missing.xyz")) is None


def test_stack_opens_with_scale_and_metadata(make_napari_viewer, small_stack, tmp_path):
    path = write_stack(small_stack, tmp_path / "s.npz")
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-afm-style")
    layer = layers[0]
    assert layer._type_string == "image"
    assert np.allclose(layer.scale, small_stack.layer_scale())
    assert np.allclose(layer.translate, small_stack.layer_translate())
    back = stack_from_layer(layer)
    assert np.allclose(back.heights_A, small_stack.heights_A)
    assert back.f0_Hz == small_stack.f0_Hz
    # world coordinate of a pixel centre is its position in Å
    assert np.allclose(layer.data_to_world((0, 3, 4)), (15.0, -2.0 + 3 * 0.2, 1.5 + 4 * 0.2))


def test_points_xyz_round_trip_keeps_elements(make_napari_viewer, tmp_path):
    from ase import Atoms

    atoms = Atoms("OH2Au", positions=[[1, 2, 9], [1.9, 2, 9.2], [0.7, 2.9, 9.2], [0, 0, 5]])
    atoms.arrays["confidence"] = np.array([0.9, 0.8, 0.7, 1.0])
    src = write_atoms(atoms, tmp_path / "in.xyz")
    viewer = make_napari_viewer()
    layer = viewer.open(str(src), plugin="napari-afm-style")[0]
    assert list(layer.features["element"]) == ["O", "H", "H", "Au"]
    assert layer.projection_mode == "all"
    out = tmp_path / "out.xyz"
    viewer.layers.save(str(out), selected=True, plugin="napari-afm-style")
    back = read_atoms(out)
    assert back.get_chemical_symbols() == ["O", "H", "H", "Au"]
    assert np.allclose(back.positions, atoms.positions)
    assert np.allclose(back.arrays["confidence"], [0.9, 0.8, 0.7, 1.0])


def test_experiment_like_sample_opens(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-afm-style", "water_experiment_like")
    stack = stack_from_layer(layers[0])
    assert stack.shape == (10, 128, 128)
    assert np.allclose(layers[0].scale[1:], 0.125)
    assert "relative" in stack.height_frame


def test_simulated_sample_opens_with_true_atoms(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-afm-style", "water_sim")
    image, points = layers
    stack = stack_from_layer(image)
    assert stack.heights_are_absolute
    assert np.allclose(image.scale[1:], stack.pixel_size_A)
    elements = set(points.features["element"])
    assert elements == {"O", "H"}
    # the atoms lie under the scanned window, in the same frame
    zyx = np.asarray(points.data)
    assert stack.x_A[0] - 1 <= zyx[:, 2].mean() <= stack.x_A[-1] + 1
    assert zyx[:, 0].max() < stack.heights_A[-1] - 2.0


def test_broken_file_raises_clear_error(make_napari_viewer, tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match="broken.npz"):
        viewer.open(str(bad), plugin="napari-afm-style")


def test_our_but_broken_files_say_why_and_foreign_files_stay_silent(tmp_path):
    from napari.utils.notifications import notification_manager

    from napari_afm_style._reader import broken_reason

    sxm = tmp_path / "scan.sxm"
    sxm.write_text("hello\nthis is not a Nanonis header\n")
    xyz = tmp_path / "atoms.xyz"
    xyz.write_text("two atoms\ncomment\nO 0 0 0\n")
    photo = tmp_path / "photo.tif"
    photo.write_text("just text")
    other = tmp_path / "crystal.xsf"
    other.write_text("CRYSTAL\n")
    seen = []
    notification_manager.notification_ready.connect(seen.append)
    try:
        assert napari_get_reader(str(sxm)) is None
        assert napari_get_reader(str(xyz)) is None
        assert napari_get_reader(str(photo)) is None
        assert napari_get_reader(str(other)) is None
    finally:
        notification_manager.notification_ready.disconnect(seen.append)
    messages = [str(n.message) for n in seen]
    assert len(messages) == 2, messages
    assert "scan.sxm" in messages[0] and "SCANIT_END" in messages[0]
    assert "atoms.xyz" in messages[1] and "number of atoms" in messages[1]
    assert broken_reason(photo) is None and broken_reason(other) is None
