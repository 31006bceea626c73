"""Every headless `afm-style` subcommand that no other test file drives, run as a user would."""

import json

import numpy as np
import pytest

from napari_afm_style import __version__
from napari_afm_style._sample_data import EXP_STACK, data_path
from napari_afm_style.cli import main
from napari_afm_style.io import read_stack


def test_version_names_the_program(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"afm-style (napari-afm-style) {__version__}"


def test_info_prints_the_parameters_with_units(capsys):
    assert main(["info", str(data_path(EXP_STACK))]) == 0
    out = capsys.readouterr().out
    assert "10 × 128 × 128" in out and "0.125 Å" in out and "relative" in out and "Hz" in out


def test_info_on_a_foreign_file_is_a_clean_error(tmp_path, capsys):
    f = tmp_path / "notes.npz"
    f.write_bytes(b"not a zip at all")
    assert main(["info", str(f)]) != 0
    err = capsys.readouterr().err
    assert "notes.npz" in err and "Traceback" not in err


def test_convert_tiff_to_npz_with_a_height_offset(tmp_path, capsys):
    from napari_afm_style.io.tiff import write_stack_tiff

    scan = read_stack(data_path(EXP_STACK))
    tif = write_stack_tiff(scan, tmp_path / "scan.tif")
    out = tmp_path / "scan.npz"
    assert main(["convert", str(tif), "-o", str(out), "--height-offset", "5.5"]) == 0
    got = read_stack(out)
    np.testing.assert_allclose(got.heights_A, scan.heights_A + 5.5)
    np.testing.assert_array_equal(got.data, scan.data)
    assert got.pixel_size_A == scan.pixel_size_A


def test_demo_writes_every_output_with_the_default_path(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "hybrid" and summary["translation_strength"] == 0.0
    assert summary["atoms_found"]["O"] >= 10
    assert summary["resim_ncc_closest"] >= 0.7  # the default path's prediction re-simulates like the scan
    for name in ("predicted.xyz", "resimulated.npz", "pipeline.png", "summary.json"):
        assert (out / name).stat().st_size > 0


@pytest.mark.parametrize("args", [
    ["predict"], ["translate", "x.npz"], ["generate"],
    # out-of-range values are usage errors, refused before any file is read
    ["translate", "x.npz", "-o", "y.npz", "--batch-size", "0"],
    ["translate", "x.npz", "-o", "y.npz", "--batch-size", "-2"],
    ["predict", "x.npz", "-o", "y.xyz", "--threshold", "5"],
    ["predict", "x.npz", "-o", "y.xyz", "--threshold", "nan"],
    ["predict", "x.npz", "-o", "y.xyz", "--device", "tpu"],
    ["order", "x.xyz", "--cutoff", "-1"],
    ["order", "x.xyz", "--max-points", "0"],
])
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_convert_to_an_existing_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["convert", str(data_path(EXP_STACK)), "-o", str(folder)]) != 0
    assert "is a folder" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()


def test_output_into_a_missing_folder_is_refused_not_created(tmp_path, capsys):
    out = tmp_path / "no" / "such" / "scan.npz"
    assert main(["convert", str(data_path(EXP_STACK)), "-o", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_runtime_errors_exit_1_with_one_line_and_verbose_adds_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "missing.npz")
    assert main(["info", missing]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"afm-style info: error: {missing}: no such file or folder"
    assert main(["info", "-v", missing]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "FileNotFoundError" in err


def test_quiet_hides_messages_but_not_errors(tmp_path, capsys):
    stack = str(data_path(EXP_STACK))
    assert main(["-q", "translate", stack, "-o", str(tmp_path / "b.npz")]) == 0
    assert capsys.readouterr().err == ""
    assert main(["-q", "info", str(tmp_path / "missing.npz")]) == 1
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["info", "-q", "-v", stack])
    assert e.value.code == 2


def test_convert_writes_a_tiff_that_reads_back_identically(tmp_path, capsys):
    src = read_stack(data_path(EXP_STACK))
    out = tmp_path / "scan.tif"
    assert main(["convert", str(data_path(EXP_STACK)), "-o", str(out)]) == 0
    back = read_stack(out)
    np.testing.assert_array_equal(back.data, src.data)
    np.testing.assert_allclose(back.heights_A, src.heights_A)
    assert back.pixel_size_A == src.pixel_size_A and back.height_frame == src.height_frame


def test_info_lists_the_devices_for_networks_and_simulation(capsys):
    assert main(["info", "--devices"]) == 0
    out = capsys.readouterr().out
    assert "cpu" in out and "--opencl-platform" in out
    assert "PoCL" in out or "Portable Computing Language" in out or "OpenCL" in out
    assert main(["info"]) == 2


def test_opencl_platforms_lists_one_that_compiles_here():
    from napari_afm_style.simulate.opencl import opencl_platforms

    platforms = opencl_platforms()
    assert platforms and any(p["builds"] for p in platforms)
    assert all(isinstance(p["devices"], list) for p in platforms)


def test_the_cli_reference_in_docs_is_what_the_cli_prints():
    """docs/cli.md is generated from --help; a changed option without a regenerated page fails."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "cli_reference.py"
    r = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_resim_of_a_prediction_goes_the_docks_way_and_reports_the_agreement(tmp_path, capsys):
    from napari_afm_style.io import read_stack

    stack = str(data_path(EXP_STACK))
    assert main(["predict", stack, "-o", str(tmp_path / "p.xyz")]) == 0
    assert main(["resim", str(tmp_path / "p.xyz"), "--like", stack, "-o", str(tmp_path / "r.npz")]) == 0
    out = capsys.readouterr().out
    assert "closest-slice NCC" in out and "left out" in out
    note = read_stack(tmp_path / "r.npz").metadata["resimulation"]
    assert note["closest_slice_ncc"] >= 0.7  # as the demo and the Re-simulate dock get on this sample
    assert note["left_out"] > 0 and note["min_confidence"] == 0.5


def test_refusals_of_a_stacks_content_name_the_file_and_csv_folders_are_not_made(tmp_path, capsys):
    import numpy as np

    from napari_afm_style.io import write_stack
    from napari_afm_style.stack import AFMStack

    one = write_stack(AFMStack(np.random.default_rng(0).random((1, 64, 64)), [0.0], 0.125, (0, 0)),
                      tmp_path / "one_height.npz")
    assert main(["predict", str(one), "-o", str(tmp_path / "x.xyz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"error: {one}: the stack has 1 height" in err[0]
    assert main(["order", "x.xyz", "--csv", str(tmp_path / "missing" / "o.csv")]) == 1
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "missing").exists()


def test_predict_shows_a_progress_bar_unless_told_not_to(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    stack = str(data_path(EXP_STACK))
    assert main(["predict", stack, "-o", str(tmp_path / "a.xyz")]) == 0
    assert "predicting" in capsys.readouterr().err
    assert main(["predict", stack, "-o", str(tmp_path / "b.xyz"), "--no-progress"]) == 0
    assert "predicting" not in capsys.readouterr().err
