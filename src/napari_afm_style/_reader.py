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
    return None


def _read_stack(path):
    path = path[0] if isinstance(path, list) else path
    stack = read_stack(path)
    return [stack_layer_data(stack, name=f"Δf {Path(path).name}")]


def _read_sxm_frames(paths):
    stack = sxm.read([Path(p) for p in paths])
    return [stack_layer_data(stack, name=f"Δf {Path(paths[0]).parent.name} ({len(paths)} frames)")]


def _read_geometry(path):
    path = path[0] if isinstance(path, list) else path
    atoms = read_atoms(path)
    return [atoms_layer_data(atoms, name=Path(path).stem)]
