"""npe2 reader contribution: Δf stacks → Image layer, geometries → Points layer."""

from __future__ import annotations

from pathlib import Path

from ._layers import atoms_layer_data, stack_layer_data
from .io import read_atoms, read_stack, stack_format
from .io import sxm, tiff
from .io.xyz import is_xyz


def napari_get_reader(path):
    """Return a reader for ``path`` if it is one of ours, else None (other plugins try)."""
    if isinstance(path, list):
        if len(path) == 1:
            path = path[0]
        elif all(Path(f).suffix.lower() == ".sxm" and sxm.sniff(f) for f in path):
            return _read_sxm_frames  # napari passes a list when asked to stack: frames of one stack
        else:
            return None
    p = Path(path)
    if is_xyz(p):
        return _read_geometry
    fmt = stack_format(p)
    if fmt == "tiff" and not tiff.looks_like_stack(p):
        return None  # a photograph or a colour image: another plugin's (napari would ask which reader)
    if fmt is not None:
        return _read_stack
    reason = broken_reason(p)
    if reason is not None:
        _notify(f"napari-afm-style cannot open {p.name}: {reason}")
    return None


#: suffixes no other kind of file uses: a file with one of them that our sniffers refuse is
#: ours but broken (say why); any other refused file is foreign (stay silent, let another
#: plugin try): a .tif photo, an .npz of other arrays, an .xsf crystal structure
_OURS_ONLY = {".sxm": "sxm", ".gwy": "gwy", ".xyz": None, ".extxyz": None}


#: files the sniffers refused are read to explain why only up to this size
BROKEN_CHECK_MAX_BYTES = 64 * 2**20


def broken_reason(path) -> str | None:
    """Why ``path``, a file of one of our own formats that the sniffers refused, cannot be
    read (the same message the CLI prints); None for a foreign or missing file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _OURS_ONLY or not p.is_file():
        return None
    size = p.stat().st_size
    if size > BROKEN_CHECK_MAX_BYTES:  # napari asks on its GUI thread: no full read of a huge file here
        return (f"not recognised, and at {size / 2**20:.0f} MB too large to examine while opening; "
                f"`afm-style info {p.name}` says what is wrong with it")
    import importlib

    try:
        if _OURS_ONLY[suffix] is None:
            read_atoms(p)
        else:
            importlib.import_module(f".io.{_OURS_ONLY[suffix]}", __package__).read(p)
    except Exception as e:  # noqa: BLE001 - the message is the point
        message = str(e)
        return message.split(": ", 1)[1] if message.startswith(str(p)) else message
    return None


def _notify(message: str) -> None:
    try:
        from napari.utils.notifications import show_warning
    except ImportError:  # used without napari (tests of the reader alone, scripts)
        return
    show_warning(message)


def _read_stack(path):
    path = path[0] if isinstance(path, list) else path
    stack = read_stack(path)
    from .io import reading_notes

    for note in reading_notes(stack):
        _notify(f"{Path(path).name}: {note}")
    return [stack_layer_data(stack, name=f"Δf {Path(path).name}")]


def _read_sxm_frames(paths):
    stack = sxm.read([Path(p) for p in paths])
    return [stack_layer_data(stack, name=f"Δf {Path(paths[0]).parent.name} ({len(paths)} frames)")]


def _read_geometry(path):
    path = path[0] if isinstance(path, list) else path
    atoms = read_atoms(path)
    return [atoms_layer_data(atoms, name=Path(path).stem)]
