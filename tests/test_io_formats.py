"""Readers of instrument/simulator stack formats: Nanonis .sxm, Gwyddion .gwy, TIFF, ppafm.

Every fixture is written at test time by the format's own writer (gwyfile, tifffile,
ppafm.io) or, for .sxm, by the byte-exact writer in ``tests/sxm_writer.py``.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

import numpy as np
import pytest
from sxm_writer import write_sxm

from napari_afm_style.io import FileFormatError, gwy, ppafm, read_stack, sxm, stack_format, tiff
from napari_afm_style.io.npz import write_stack_npz

# --------------------------------------------------------------------------- helpers


def sha(path):
    h = hashlib.sha256()
    for p in sorted(path.iterdir()) if path.is_dir() else [path]:
        h.update(p.read_bytes())
    return h.hexdigest()


def pattern(ny, nx, shift=0.0):
    """Asymmetric in x and y, so any flip or transpose is caught."""
    y, x = np.mgrid[0:ny, 0:nx]
    return (-4.0 + 0.11 * x + 0.7 * y + 0.013 * x * y + shift).astype(np.float32)


def write_png(path, ny=4, nx=5):
    """A real (tiny, greyscale) PNG file, built from its chunk specification."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(range(i, i + nx)) for i in range(ny))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", nx, ny, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    path.write_bytes(png)
    return path


def sxm_frame(path, df, z_m=None, **kw):
    ny, nx = df.shape
    zimg = np.full((ny, nx), z_m if z_m is not None else 0.0, dtype=np.float32)
    channels = [
        {"name": "Z", "unit": "m", "forward": zimg, "backward": zimg},
        {"name": "Current", "unit": "A", "forward": np.ones((ny, nx)), "backward": np.ones((ny, nx))},
        {"name": "OC_M1_Freq._Shift", "unit": kw.pop("unit", "Hz"), "forward": df, "backward": df + 50.0},
    ]
    kw.setdefault("range_m", (nx * 1e-10, ny * 1e-10))
    kw.setdefault("offset_m", (2e-9, -1e-9))
    return write_sxm(path, channels, z_m=z_m, **kw)


# --------------------------------------------------------------------------- .sxm


def test_sxm_single_frame_geometry_units_and_cantilever(tmp_path):
    df = pattern(6, 8)
    f = sxm_frame(tmp_path / "a.sxm", df, z_m=-1.2e-9, range_m=(8e-10, 6e-10), offset_m=(1e-9, 2e-9),
                  f0_Hz=29000.0, amplitude_m=50e-12, scan_dir="down")
    assert sxm.sniff(f) and stack_format(f) == "sxm"
    s = read_stack(f)
    assert s.shape == (1, 6, 8)
    np.testing.assert_allclose(s.data[0], df, rtol=0, atol=1e-6)
    assert s.pixel_size_A == pytest.approx(1.0)
    # SCAN_OFFSET is the frame centre: 10 Å − 8/2 Å + 0.5 Å, 20 Å − 6/2 Å + 0.5 Å
    np.testing.assert_allclose(s.origin_A, [6.5, 17.5])
    assert s.heights_A.tolist() == [0.0]
    assert s.f0_Hz == pytest.approx(29000.0)
    assert s.amplitude_A == pytest.approx(0.5)
    assert s.k_N_per_m == 1800.0 and s.metadata["k_source"] == "default"
    assert s.metadata["channel"] == "OC_M1_Freq._Shift"
    assert s.metadata["z_positions_m"] == [pytest.approx(-1.2e-9)]
    assert not s.heights_are_absolute and "relative" in s.height_frame
    assert "warnings" not in s.metadata


def test_sxm_byte_layout_matches_nanonispy2(tmp_path):
    """An independent parser (nanonispy2, the maintained fork of nanonispy) finds the same
    data offset and channel/direction order."""
    from nanonispy2.read import Scan

    df = pattern(5, 7)
    f = sxm_frame(tmp_path / "b.sxm", df, z_m=-1e-9, scan_dir="down")
    scan = Scan(str(f))
    stored = scan.signals["OC_M1_Freq._Shift"]
    # nanonispy returns acquisition order: "down" → first row is the top; backward mirrored.
    np.testing.assert_array_equal(stored["forward"], df[::-1])
    np.testing.assert_array_equal(stored["backward"], (df + 50.0)[::-1, ::-1])
    assert list(scan.header["scan_pixels"]) == [7, 5]


@pytest.mark.parametrize("scan_dir", ["up", "down"])
@pytest.mark.parametrize("byte_order", ["MSBFIRST", "LSBFIRST"])
def test_sxm_scan_direction_and_byte_order_give_the_physical_image(tmp_path, scan_dir, byte_order):
    df = pattern(4, 6)
    f = sxm_frame(tmp_path / "c.sxm", df, z_m=-1e-9, scan_dir=scan_dir, byte_order=byte_order)
    np.testing.assert_allclose(sxm.read(f).data[0], df, atol=1e-6)
    back = sxm.read(f, direction="backward")
    np.testing.assert_allclose(back.data[0], df + 50.0, atol=1e-5)


def test_sxm_unit_conversion_and_warnings(tmp_path):
    df = pattern(4, 4)
    f = sxm_frame(tmp_path / "m.sxm", df * 1000, z_m=-1e-9, unit="mHz", angle_deg=15.0,
                  z_controller_on=True)
    s = sxm.read(f)
    np.testing.assert_allclose(s.data[0], df, rtol=1e-6)
    text = " ".join(s.metadata["warnings"])
    assert "SCAN_ANGLE is 15" in text and "feedback was ON" in text
    assert s.metadata["scan_angle_deg"] == 15.0
    assert s.metadata["f0_source"] == "default" and s.metadata["amplitude_source"] == "default"


def test_sxm_folder_is_stacked_farthest_first(tmp_path):
    folder = tmp_path / "stack"
    folder.mkdir()
    # file names deliberately out of height order; Nanonis Z grows away from the sample
    zs = {"scan_001.sxm": -1.00e-9, "scan_002.sxm": -0.98e-9, "scan_003.sxm": -0.99e-9}
    for i, (name, z) in enumerate(zs.items()):
        sxm_frame(folder / name, pattern(5, 6, shift=10 * i), z_m=z, f0_Hz=25000.0)
    (folder / "notes.txt").write_text("not a scan")
    # the Z channel is the fallback when the header has no Z-Controller>Z entry
    sxm_frame(folder / "scan_004.sxm", pattern(5, 6, shift=30), z_m=-1.01e-9,
              omit=("Z-Controller>Z (m)",))
    assert sxm.sniff(folder) and stack_format(folder) == "sxm"
    before = sha(folder)
    s = read_stack(folder)
    assert sha(folder) == before
    assert [p.rsplit("/", 1)[-1] for p in s.metadata["source_files"]] == [
        "scan_002.sxm", "scan_003.sxm", "scan_001.sxm", "scan_004.sxm"]
    np.testing.assert_allclose(s.heights_A, [0.3, 0.2, 0.1, 0.0], atol=1e-6)
    np.testing.assert_allclose(s.data[0], pattern(5, 6, shift=10), atol=1e-5)
    np.testing.assert_allclose(s.data[3], pattern(5, 6, shift=30), atol=1e-5)
    assert s.metadata["z_source"][3] == "mean of the Z channel (forward)"
    assert s.f0_Hz == pytest.approx(25000.0)
    assert s.height_frame.startswith("relative: 0 = closest frame")
    # a list of files gives the same stack
    t = sxm.read(sorted(folder.glob("*.sxm"), reverse=True))
    np.testing.assert_array_equal(t.data, s.data)


def test_sxm_frames_must_share_the_scan_frame(tmp_path):
    sxm_frame(tmp_path / "a.sxm", pattern(4, 4), z_m=-1.0e-9)
    sxm_frame(tmp_path / "b.sxm", pattern(4, 4), z_m=-0.9e-9, offset_m=(3e-9, -1e-9))
    with pytest.raises(FileFormatError, match=r"b\.sxm.*SCAN_OFFSET"):
        read_stack(tmp_path)
    (tmp_path / "b.sxm").unlink()
    sxm_frame(tmp_path / "c.sxm", pattern(4, 5), z_m=-0.9e-9)
    with pytest.raises(FileFormatError, match=r"c\.sxm.*SCAN_PIXELS"):
        read_stack(tmp_path)
    (tmp_path / "c.sxm").unlink()
    sxm_frame(tmp_path / "d.sxm", pattern(4, 4), z_m=-1.0e-9)
    with pytest.raises(FileFormatError, match="same tip z"):
        read_stack(tmp_path)


def test_sxm_broken_files_raise_naming_the_file(tmp_path):
    f = sxm_frame(tmp_path / "full.sxm", pattern(6, 6), z_m=-1e-9)
    raw = f.read_bytes()
    cut = tmp_path / "cut_data.sxm"
    cut.write_bytes(raw[:-10])
    with pytest.raises(FileFormatError, match=r"cut_data\.sxm.*truncated"):
        read_stack(cut)
    head = tmp_path / "cut_header.sxm"
    head.write_bytes(raw[: raw.index(b":SCANIT_END:") - 5])
    assert sxm.sniff(head)
    with pytest.raises(FileFormatError, match=r"cut_header\.sxm.*SCANIT_END"):
        read_stack(head)
    no_df = write_sxm(tmp_path / "topo.sxm", [{"name": "Z", "unit": "m", "forward": pattern(3, 3),
                                               "backward": None}])
    with pytest.raises(FileFormatError, match=r"topo\.sxm.*frequency-shift channel"):
        read_stack(no_df)


# --------------------------------------------------------------------------- .gwy


def gwy_field(data, unit_z="Hz", xreal=2e-9, yreal=None, xoff=0.0, yoff=0.0):
    from gwyfile.objects import GwyDataField, GwySIUnit

    ny, nx = data.shape
    yreal = yreal if yreal is not None else xreal * ny / nx
    return GwyDataField(np.asarray(data, dtype=np.float64), xreal=xreal, yreal=yreal, xoff=xoff,
                        yoff=yoff, si_unit_xy=GwySIUnit(unitstr="m"),
                        si_unit_z=GwySIUnit(unitstr=unit_z) if unit_z is not None else None)


def test_gwy_stack_with_heights_in_titles(tmp_path):
    from gwyfile.objects import GwyContainer

    c = GwyContainer()
    titles = {0: "Frequency shift z=0.10 Å", 1: "Frequency shift z=0.30 Å", 3: "Frequency shift z=0.20 Å"}
    for n, title in titles.items():
        c[f"/{n}/data"] = gwy_field(pattern(6, 8, shift=n), xreal=1.6e-9, xoff=1e-9, yoff=-5e-10)
        c[f"/{n}/data/title"] = title
    c["/2/data"] = gwy_field(pattern(6, 8) * 1e-10, unit_z="m")  # topography: not Δf
    c["/2/data/title"] = "Z"
    f = tmp_path / "stack.gwy"
    c.tofile(str(f))
    assert gwy.sniff(f) and stack_format(f) == "gwy"
    before = sha(f)
    s = read_stack(f)
    assert sha(f) == before
    assert s.metadata["channels"] == [1, 3, 0]
    np.testing.assert_allclose(s.heights_A, [0.2, 0.1, 0.0], atol=1e-9)
    np.testing.assert_allclose(s.data[0], pattern(6, 8, shift=1), atol=1e-6)
    assert s.pixel_size_A == pytest.approx(2.0)
    np.testing.assert_allclose(s.origin_A, [11.0, -4.0])
    assert s.metadata["heights_known"] is True


def test_gwy_heights_from_metadata_and_mhz(tmp_path):
    from gwyfile.objects import GwyContainer

    c = GwyContainer()
    for n, z in enumerate([-1.00e-9, -0.95e-9]):
        c[f"/{n}/data"] = gwy_field(1000 * pattern(4, 4, shift=n), unit_z="mHz")
        c[f"/{n}/data/title"] = "OC M1 Freq. Shift"
        meta = GwyContainer()
        meta["Z-Controller>Z (m)"] = f"{z:.6E}"
        c[f"/{n}/meta"] = meta
    f = tmp_path / "meta.gwy"
    c.tofile(str(f))
    s = gwy.read(f)
    np.testing.assert_allclose(s.heights_A, [0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(s.data[0], pattern(4, 4, shift=1), rtol=1e-6)
    assert s.metadata["height_sources"][0] == "/1/meta Z-Controller>Z (m)"


def test_gwy_unknown_heights_get_a_marked_placeholder(tmp_path):
    from gwyfile.objects import GwyContainer

    c = GwyContainer()
    for n in range(3):
        c[f"/{n}/data"] = gwy_field(pattern(4, 5, shift=n), unit_z=None)
        c[f"/{n}/data/title"] = f"df {n}"
    f = tmp_path / "unknown.gwy"
    c.tofile(str(f))
    s = gwy.read(f)
    np.testing.assert_allclose(s.heights_A, [0.2, 0.1, 0.0])
    assert s.metadata["heights_known"] is False and "UNKNOWN" in s.height_frame
    np.testing.assert_allclose(s.data[2], pattern(4, 5, shift=2), atol=1e-6)


def test_gwy_broken_files(tmp_path):
    from gwyfile.objects import GwyContainer

    c = GwyContainer()
    c["/0/data"] = gwy_field(pattern(8, 8))
    c["/0/data/title"] = "Frequency shift"
    f = tmp_path / "ok.gwy"
    c.tofile(str(f))
    cut = tmp_path / "cut.gwy"
    cut.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(FileFormatError, match=r"cut\.gwy.*truncated"):
        read_stack(cut)
    topo = GwyContainer()
    topo["/0/data"] = gwy_field(pattern(4, 4), unit_z="m")
    topo["/0/data/title"] = "Topography"
    t = tmp_path / "topo.gwy"
    topo.tofile(str(t))
    with pytest.raises(FileFormatError, match=r"topo\.gwy.*no frequency-shift channel"):
        read_stack(t)


# --------------------------------------------------------------------------- TIFF


def test_tiff_round_trip_keeps_every_parameter(tmp_path, small_stack):
    f = tiff.write_stack_tiff(small_stack, tmp_path / "s.tif")
    assert tiff.sniff(f) and tiff.is_stack_tiff(f) and stack_format(f) == "tiff"
    before = sha(f)
    s = read_stack(f)
    assert sha(f) == before
    np.testing.assert_array_equal(s.data, small_stack.data)
    np.testing.assert_array_equal(s.heights_A, small_stack.heights_A)
    np.testing.assert_array_equal(s.origin_A, small_stack.origin_A)
    assert (s.pixel_size_A, s.f0_Hz, s.k_N_per_m, s.amplitude_A) == (
        small_stack.pixel_size_A, small_stack.f0_Hz, small_stack.k_N_per_m, small_stack.amplitude_A)
    assert s.metadata["source"] == "test"
    # overwriting our own TIFF is fine, a foreign file is protected
    tiff.write_stack_tiff(small_stack.replace(amplitude_A=0.5), f)
    assert tiff.read(f).amplitude_A == 0.5
    foreign = tmp_path / "notes.tif"
    foreign.write_text("my notes")
    with pytest.raises(FileExistsError):
        tiff.write_stack_tiff(small_stack, foreign)
    assert foreign.read_text() == "my notes"


def test_tiff_imagej_metadata_gives_pixel_size_and_spacing(tmp_path):
    import tifffile

    data = np.stack([pattern(6, 7, shift=i) for i in range(3)])
    f = tmp_path / "ij.tif"
    tifffile.imwrite(f, data, imagej=True, resolution=(1 / 0.05, 1 / 0.05),
                     metadata={"spacing": 0.01, "unit": "nm", "axes": "ZYX"})
    s = read_stack(f)
    assert s.pixel_size_A == pytest.approx(0.5)
    np.testing.assert_allclose(s.heights_A, [0.2, 0.1, 0.0])
    np.testing.assert_array_equal(s.data, data)
    assert "ImageJ" in s.metadata["pixel_size_source"]


def test_tiff_without_metadata_uses_marked_defaults(tmp_path):
    import tifffile

    data = np.stack([pattern(5, 5, shift=i) for i in range(2)])
    f = tmp_path / "plain.tiff"
    tifffile.imwrite(f, data, photometric="minisblack", metadata=None)
    s = read_stack(f)
    assert s.pixel_size_A == 0.125 and s.metadata["pixel_size_source"] == "default"
    assert s.metadata["heights_known"] is False
    np.testing.assert_array_equal(s.data, data)


def test_tiff_broken_and_colour_files(tmp_path, small_stack):
    import tifffile

    f = tiff.write_stack_tiff(small_stack, tmp_path / "s.tif")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(FileFormatError, match=r"cut\.tif"):
        read_stack(cut)
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(FileFormatError, match=r"rgb\.tif.*colour"):
        read_stack(rgb)


# --------------------------------------------------------------------------- ppafm


def ppafm_grid():
    """An analytic Δf-like field in ppafm's [x, y, z] order with its lattice vectors."""
    nx, ny, nz, d, dz = 7, 5, 4, 0.2, 0.1
    x, y, z = 1.0 + d * np.arange(nx), -2.0 + d * np.arange(ny), 7.5 + dz * np.arange(nz)
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    df = -3.0 * np.exp(-((X - 1.6) ** 2) - (Y + 1.6) ** 2 - (Z - 7.5)) + 0.01 * X - 0.02 * Y
    lvec = np.array([[x[0], y[0], z[0]], [x[-1] - x[0], 0, 0], [0, y[-1] - y[0], 0],
                     [0, 0, z[-1] - z[0]]])
    return df, lvec


@pytest.mark.parametrize("fmt", ["xsf", "npy"])
def test_ppafm_df_grid_from_plot_results_layout(tmp_path, fmt):
    from ppafm import io as pio

    df, lvec = ppafm_grid()
    folder = tmp_path / "Q0.00K0.25" / "Amp1.00"  # ppafm-plot-results' output folders
    folder.mkdir(parents=True)
    pio.save_scal_field(str(folder / "df"), df, lvec, data_format=fmt)
    f = folder / ("df.xsf" if fmt == "xsf" else "df.npz")
    assert ppafm.sniff(f) and stack_format(f) == "ppafm"
    before = sha(f)
    s = read_stack(f)
    assert sha(f) == before
    assert s.shape == (4, 5, 7)
    # [x, y, z] → [z, y, x] with z reversed (farthest first); XSF keeps 6 significant digits
    np.testing.assert_allclose(s.data, df.transpose(2, 1, 0)[::-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.heights_A, [7.8, 7.7, 7.6, 7.5], atol=1e-9)
    assert s.pixel_size_A == pytest.approx(0.2)
    np.testing.assert_allclose(s.origin_A, [1.0, -2.0])
    assert s.heights_are_absolute and s.amplitude_A == pytest.approx(0.5)
    if fmt == "xsf":  # agrees with ppafm's own loader
        back, _, _, _ = pio.load_scal_field(str(folder / "df"), data_format="xsf")
        np.testing.assert_array_equal(s.data, back.transpose(2, 1, 0)[::-1].astype(np.float32))


def test_ppafm_other_xsf_keeps_file_frame(tmp_path):
    from ppafm import io as pio

    df, lvec = ppafm_grid()
    pio.save_scal_field(str(tmp_path / "sim"), df, lvec, data_format="xsf")
    s = read_stack(tmp_path / "sim.xsf")
    assert s.height_frame.startswith("ppafm file frame") and not s.heights_are_absolute
    np.testing.assert_allclose(s.heights_A, [7.8, 7.7, 7.6, 7.5], atol=1e-9)
    assert s.amplitude_A == 1.0 and "default" in s.metadata["amplitude_source"]


def test_ppafm_broken_and_unsupported_grids(tmp_path):
    from ppafm import io as pio

    df, lvec = ppafm_grid()
    pio.save_scal_field(str(tmp_path / "df"), df, lvec, data_format="xsf")
    text = (tmp_path / "df.xsf").read_text()
    cut = tmp_path / "cut.xsf"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(FileFormatError, match=r"cut\.xsf.*truncated"):
        read_stack(cut)
    lost = tmp_path / "lost.xsf"
    lost.write_text(text.replace("END_DATAGRID_3D", "", 1).rsplit("\n", 40)[0])
    with pytest.raises(FileFormatError, match=r"lost\.xsf"):
        read_stack(lost)
    tilted = lvec.copy()
    tilted[3] = [0.05, 0.0, 0.3]
    pio.save_scal_field(str(tmp_path / "tilt"), df, tilted, data_format="xsf")
    with pytest.raises(FileFormatError, match=r"tilt\.xsf.*tilted"):
        read_stack(tmp_path / "tilt.xsf")
    geom = tmp_path / "geom.xsf"  # an XSF with atoms only is not a stack
    geom.write_text("ATOMS\n 1 0.0 0.0 0.0\n")
    assert not ppafm.sniff(geom)


def test_npz_kinds_are_told_apart(tmp_path, small_stack):
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.arange(3), b=np.ones((2, 2)))
    assert not ppafm.sniff(plain) and stack_format(plain) is None
    with pytest.raises(FileFormatError, match=r"plain\.npz"):
        read_stack(plain)
    ours = write_stack_npz(small_stack, tmp_path / "ours.npz")
    assert not ppafm.sniff(ours) and stack_format(ours) == "npz"


# --------------------------------------------------------------------------- foreign files


@pytest.mark.parametrize("suffix", [".sxm", ".gwy", ".tif", ".xsf", ".npz"])
@pytest.mark.parametrize("kind", ["text", "png"])
def test_foreign_files_are_not_sniffed(tmp_path, suffix, kind):
    f = tmp_path / f"foreign{suffix}"
    if kind == "text":
        f.write_text("hello, this is not a scan\n" * 3)
    else:
        write_png(f)
    for mod in (sxm, gwy, tiff, ppafm):
        assert not mod.sniff(f), (mod.__name__, f.name)
    if suffix != ".npz":  # a damaged .npz goes to the project's npz reader, which reports it
        assert stack_format(f) is None
    before = sha(f)
    with pytest.raises(FileFormatError, match="foreign"):
        read_stack(f)
    assert sha(f) == before


def test_sniffers_never_raise_on_odd_paths(tmp_path):
    for mod in (sxm, gwy, tiff, ppafm):
        assert mod.sniff(tmp_path / "missing.sxm") is False
        assert mod.sniff(tmp_path / "missing.xsf") is False
    assert not gwy.sniff(tmp_path) and not tiff.sniff(tmp_path) and not ppafm.sniff(tmp_path)
    assert not sxm.sniff(tmp_path)  # empty folder: no .sxm inside


def test_tiff_claimed_for_napari_only_when_it_looks_like_a_stack(tmp_path, small_stack):
    import tifffile

    ours = tiff.write_stack_tiff(small_stack, tmp_path / "ours.tif")
    floats = tmp_path / "floats.tif"
    tifffile.imwrite(floats, np.random.default_rng(0).normal(size=(5, 16, 16)).astype(np.float32),
                     photometric="minisblack")
    photo = tmp_path / "photo.tif"
    tifffile.imwrite(photo, np.zeros((16, 16, 3), np.uint8))
    grey_ints = tmp_path / "grey.tif"
    tifffile.imwrite(grey_ints, np.zeros((5, 16, 16), np.uint16), photometric="minisblack")
    single = tmp_path / "single.tif"
    tifffile.imwrite(single, np.zeros((16, 16), np.float32))
    assert tiff.looks_like_stack(ours) and tiff.looks_like_stack(floats)
    assert not any(tiff.looks_like_stack(f) for f in (photo, grey_ints, single, tmp_path / "missing.tif"))
    # read() still reads a grey-level stack a user names on purpose
    assert read_stack(grey_ints).data.shape == (5, 16, 16)


def test_tiff_structures_that_would_mislabel_heights_are_refused_or_read_right(tmp_path):
    import tifffile

    from napari_afm_style.stack import AFMStack

    # a page of another size: tifffile splits the file; reading one part would drop a height
    odd = tmp_path / "odd.tif"
    with tifffile.TiffWriter(odd) as w:
        for i in range(5):
            w.write(np.ones((8, 9 if i == 2 else 8), np.float32), photometric="minisblack", metadata=None)
    with pytest.raises(FileFormatError, match=r"odd\.tif.*different sizes"):
        read_stack(odd)
    # the ImageJ z unit is the spacing's unit (50 pm = 0.5 Å steps), escaped units are decoded
    z = tmp_path / "z.tif"
    tifffile.imwrite(z, np.ones((3, 8, 8), np.float32), resolution=(5.0, 5.0), resolutionunit=1, metadata=None,
                     photometric="minisblack",
                     description="ImageJ=1.54f\nimages=3\nslices=3\nunit=\\u00C5\nzunit=pm\nspacing=50\n")
    s = read_stack(z)
    assert s.pixel_size_A == pytest.approx(0.2)
    assert np.allclose(np.diff(s.heights_A), -0.5)
    # two channels shown as colours (Δf and current) are not two heights
    c = tmp_path / "channels.tif"
    tifffile.imwrite(c, np.ones((2, 8, 8), np.float32), imagej=True, resolution=(50.0, 50.0),
                     metadata={"axes": "CYX", "unit": "nm", "spacing": 0.05, "mode": "composite"})
    with pytest.raises(FileFormatError, match=r"channels\.tif.*channels"):
        read_stack(c)
    # pages one pixel wide or tall come back as written
    for shape in [(3, 1, 5), (3, 5, 1)]:
        line = AFMStack(np.arange(15.0).reshape(shape), [3.0, 2.0, 1.0], 0.1, (0, 0))
        back = read_stack(tiff.write_stack_tiff(line, tmp_path / f"line{shape[1]}.tif"))
        assert back.shape == shape and np.array_equal(back.data, line.data)


def test_gwy_channels_with_heights_from_titles_and_from_metadata_are_refused(tmp_path):
    from gwyfile.objects import GwyContainer, GwyDataField, GwySIUnit

    def field():
        return GwyDataField(np.random.default_rng(0).random((8, 8)), xreal=2e-9, yreal=2e-9,
                            si_unit_xy=GwySIUnit(unitstr="m"), si_unit_z=GwySIUnit(unitstr="Hz"))

    c = GwyContainer()
    c["/0/data"], c["/0/data/title"] = field(), "Frequency shift z=2 Å"
    c["/1/data"], c["/1/data/title"] = field(), "Frequency shift"
    meta = GwyContainer()
    meta["Z-Controller>Z (m)"] = "5.000E-9"
    c["/1/meta"] = meta
    c["/2/data"], c["/2/data/title"] = field(), "Frequency shift z=1 Å"
    c.tofile(str(tmp_path / "mixed.gwy"))
    with pytest.raises(FileFormatError, match=r"mixed\.gwy.*different places"):
        read_stack(tmp_path / "mixed.gwy")
