"""npe2 writer contributions: Points → .xyz (elements kept), Image → stack .npz."""

from __future__ import annotations

from ._layers import STACK_KEY, atoms_from_points
from .io import write_atoms, write_stack
from .stack import AFMStack


def write_points_xyz(path: str, data, meta: dict) -> list[str]:
    """Write a Points layer as extended XYZ with elements and confidences."""
    atoms = atoms_from_points(data, meta.get("features"))
    return [str(write_atoms(atoms, path))]


def write_image_npz(path: str, data, meta: dict) -> list[str]:
    """Write an Image layer that holds an AFM stack to the project's .npz."""
    stack = (meta.get("metadata") or {}).get(STACK_KEY)
    if not isinstance(stack, AFMStack):
        raise ValueError(
            "this image layer carries no AFM stack parameters (heights, pixel size, "
            "cantilever); only stacks opened or produced by napari-afm-style can be saved as .npz"
        )
    return [str(write_stack(stack.replace(data=data), path))]
