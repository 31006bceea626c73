"""Conversions between the API's objects and napari layer data tuples.

No napari import here: a LayerData tuple is ``(data, kwargs, layer_type)`` and napari
builds the layer. Points use world coordinates (z, y, x) in Å, the same frame as the
Image layer of a stack (see :meth:`AFMStack.layer_scale`).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from .stack import AFMStack

__all__ = [
    "stack_layer_data",
    "atoms_layer_data",
    "atoms_from_points",
    "stack_from_layer",
    "ELEMENT_COLORS",
    "ELEMENT_SIZES_A",
    "UNITS_3D",
]

#: CPK-like colours so O/H/Au are told apart over a grey Δf image.
ELEMENT_COLORS = {
    "H": "#f2f2f2",
    "C": "#404040",
    "N": "#3050f8",
    "O": "#ff2020",
    "Au": "#ffd123",
    "Cu": "#c88033",
    "Ag": "#c0c0c0",
    "X": "#ff00ff",
}
#: displayed point diameters (Å), roughly half the van der Waals diameter
ELEMENT_SIZES_A = {"H": 0.45, "O": 0.8, "C": 0.75, "N": 0.75, "Au": 1.2}
UNITS_3D = ("angstrom", "angstrom", "angstrom")
STACK_KEY = "afm_stack"


def stack_layer_data(stack: AFMStack, name: str | None = None, **kwargs) -> tuple:
    """Image LayerData for ``stack``: scale/translate in Å and the stack in metadata."""
    src = stack.metadata.get("source_file")
    layer_kwargs = dict(
        name=name or (f"Δf {src.rsplit('/', 1)[-1]}" if src else "Δf stack"),
        scale=stack.layer_scale(),
        translate=stack.layer_translate(),
        metadata={STACK_KEY: stack},
        colormap="gray",
        # one slice = one tip height; the thick slice used to draw atoms on every
        # height must not average the Δf slices together
        projection_mode="none",
        units=UNITS_3D,
        axis_labels=("z", "y", "x"),
    )
    layer_kwargs.update(kwargs)
    return (stack.data, layer_kwargs, "image")


def stack_from_layer(layer) -> AFMStack:
    """Recover the :class:`AFMStack` behind a napari Image layer (data as now shown).

    Layers created by this plugin carry the stack in ``layer.metadata``; an Image layer
    from elsewhere is refused with a message saying what to do.
    """
    stack = getattr(layer, "metadata", {}).get(STACK_KEY)
    if not isinstance(stack, AFMStack):
        raise ValueError(
            f"layer {getattr(layer, 'name', '?')!r} has no AFM stack parameters; open the file "
            "with the napari-afm-style reader (File ▸ Open with plugin) so heights, pixel size "
            "and cantilever parameters are known"
        )
    data = np.asarray(layer.data)
    if data.shape != stack.shape:
        raise ValueError(
            f"layer {layer.name!r} data shape {data.shape} no longer matches its stack {stack.shape}"
        )
    if data is stack.data:
        return stack
    return stack.replace(data=data)


def atoms_layer_data(atoms: Atoms, name: str = "atoms", **kwargs) -> tuple:
    """Points LayerData for ``atoms``: (z, y, x) in Å, coloured by element, features
    element / z_A / confidence, shown on every slice (projection_mode="all")."""
    symbols = np.array(atoms.get_chemical_symbols(), dtype=object)
    pos = atoms.get_positions()
    data = pos[:, ::-1].copy() if len(atoms) else np.zeros((0, 3))
    conf = (
        np.asarray(atoms.arrays["confidence"], dtype=float)
        if "confidence" in atoms.arrays
        else np.ones(len(atoms))
    )
    features = {"element": symbols.astype(str), "z_A": pos[:, 2] if len(atoms) else np.zeros(0),
                "confidence": conf}
    layer_kwargs = dict(
        name=name,
        features=features,
        face_color=[ELEMENT_COLORS.get(s, ELEMENT_COLORS["X"]) for s in symbols] or "red",
        border_color="black",
        border_width=0.05,
        size=[ELEMENT_SIZES_A.get(s, 0.7) for s in symbols] or 0.7,
        projection_mode="all",
        units=UNITS_3D,
        axis_labels=("z", "y", "x"),
        metadata={"atoms_info": {k: v for k, v in atoms.info.items()
                                 if isinstance(v, (int, float, str, bool))}},
    )
    layer_kwargs.update(kwargs)
    return (data, layer_kwargs, "points")


def atoms_from_points(data, features=None) -> Atoms:
    """ase.Atoms from Points data (N, 3) in (z, y, x) Å and features (element, confidence).

    Points without an element (e.g. added by hand before an element was chosen) become
    O, the majority species of the water systems this plugin targets; 2-D points get z=0.
    """
    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[1] not in (2, 3):
        raise ValueError(f"points must be (N, 2) or (N, 3) coordinates, got shape {data.shape}")
    if data.shape[1] == 2:
        data = np.column_stack([np.zeros(len(data)), data])
    n = len(data)
    elements = None
    if features is not None and "element" in features and len(features["element"]) == n:
        elements = [str(e) if str(e) in atomic_numbers else "O" for e in features["element"]]
    elements = elements or ["O"] * n
    atoms = Atoms(symbols=elements, positions=data[:, ::-1])
    if features is not None and "confidence" in features and len(features["confidence"]) == n:
        conf = np.asarray(features["confidence"], dtype=float)
        atoms.arrays["confidence"] = np.where(np.isfinite(conf), conf, 1.0)
    return atoms

