"""A fast, seeded subset of the hostile-file campaign (benchmarks/bench_fuzz.py runs it whole):
every mutated file reads as a valid result or a clean error naming the file, in time."""

import pytest

from fuzz_files import campaign


def test_mutated_files_of_every_format_fail_cleanly(tmp_path):
    res = campaign(tmp_path, n_cuts=10, n_flips=25, seed=1)
    assert set(res["table"]) == {"npz", "tiff_ours", "tiff_imagej", "gwy", "sxm", "xyz"}
    assert res["bad"] == [], "\n".join(map(str, res["bad"]))
    for name, counts in res["table"].items():
        assert counts["clean error"] > 0, name  # the mutations did reach the readers


@pytest.mark.parametrize("text, problem", [
    ("-1\ncomment\nO 0 0 0\nH 1 0 0\nH 0 1 0\n", "negative"),
    ("-3\ncomment\nO 0 0 0\nH 1 0 0\nH 0 1 0\n", "negative"),
    ("1\ncomment\nO 0 0 0\nH 1 0 0\n", "2 atom lines follow"),
    ("2\ncomment\n119 0 0 0\nO 1 0 0\n", "not an element"),
    ("1\ncomment\n999 0 0 0\n", "not an element"),
])
def test_xyz_counts_and_elements_are_checked(tmp_path, text, problem):
    from napari_afm_style.io import FileFormatError, read_atoms

    f = tmp_path / "bad.xyz"
    f.write_text(text)
    with pytest.raises(FileFormatError, match=f"bad.xyz.*{problem}"):
        read_atoms(f)


def test_gwy_string_without_terminator_fails_fast(tmp_path):
    from fuzz_files import base_files, read_once

    path, _ = base_files(tmp_path)["gwy"]
    data = bytearray(path.read_bytes())
    last_nul = data.rindex(0)
    data[last_nul] = ord("x")  # the last string loses its NUL: gwyfile alone loops forever
    bad = tmp_path / "lost_nul.gwy"
    bad.write_bytes(bytes(data))
    outcome, message = read_once(bad, "stack", timeout_s=10)
    assert outcome == "clean error" and "lost_nul.gwy" in message


def test_npz_header_declaring_petabytes_is_refused_before_allocation(tmp_path):
    import zipfile

    import numpy as np

    from napari_afm_style.io import FileFormatError, read_stack

    f = tmp_path / "huge.npz"
    np.savez(f, df=np.zeros((2, 4, 4), np.float32), heights_A=np.array([1.1, 1.0]), pixel_size_A=0.125)
    with zipfile.ZipFile(f) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = members["df.npy"]
    old, new = b"'shape': (2, 4, 4)", b"'shape': (100000, 100000, 100000)"
    assert old in header
    # same header length: the longer shape takes the place of padding spaces
    end = header.index(b"\n")
    text = header[:end].replace(old, new)
    text = text[:end] if text.endswith(b" " * (len(new) - len(old))) else None
    assert text is not None and len(text) == end
    members["df.npy"] = text + header[end:]
    with zipfile.ZipFile(f, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(FileFormatError, match="huge.npz.*declares"):
        read_stack(f)


@pytest.mark.parametrize("key, value, problem", [
    ("metadata_json", "[1, 2]", "JSON object"),
    ("units_json", "{not json", "not valid JSON"),
    ("pixel_size_A", [0.1, 0.2], "single number"),
])
def test_npz_fields_of_the_wrong_type_are_named(tmp_path, key, value, problem):
    import numpy as np

    from napari_afm_style.io import FileFormatError, read_stack

    arrays = {"df": np.zeros((2, 8, 8), np.float32), "heights_A": np.array([1.1, 1.0]), "pixel_size_A": 0.125}
    arrays[key] = np.array(value) if not isinstance(value, str) else np.array(value)
    f = tmp_path / "typed.npz"
    np.savez(f, **arrays)
    with pytest.raises(FileFormatError, match=f"typed.npz.*{problem}"):
        read_stack(f)
