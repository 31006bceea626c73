"""The Au(111) slab under the water."""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms

from .common import AU_LATTICE_A, AU_TOP_Z_A, TAG_SUBSTRATE, window_from_size


def au111_slab(
    size_A=(28.0, 28.0),
    layers: int = 2,
    *,
    a_A: float = AU_LATTICE_A,
    top_z_A: float = AU_TOP_Z_A,
    center_A=(0.0, 0.0),
    offset_A=(0.0, 0.0),
) -> Atoms:
    """A Au(111) slab (fcc, lattice constant ``a_A``) covering at least ``size_A``.

    Parameters
    ----------
    size_A : (float, float)
        Lateral extent (x, y) in Å to cover; the slab is the smallest orthogonal
        fcc(111) supercell at least this large.
    layers : int
        Number of Au layers (ABC stacking, interlayer spacing a/√3 = 2.354 Å).
    a_A : float
        fcc lattice constant (Å); nearest-neighbour distance a/√2 = 2.884 Å for Au.
    top_z_A : float
        z of the top layer (Å); the default is the frame of the DFT structures.
    center_A : (float, float)
        Where the centre of the slab's cell lies (Å).
    offset_A : (float, float)
        Extra lateral shift (Å), e.g. a random registry of the adsorbate on the lattice.

    Returns
    -------
    ase.Atoms
        Au atoms with tag 0; ``atoms.cell`` is the slab's periodic cell in x, y (the
        returned Atoms are not periodic: pbc is False, the slab is finite).
    """
    from ase.build import fcc111

    sx, sy = window_from_size(size_A)
    if int(layers) != layers or layers < 1:
        raise ValueError(f"layers must be a positive integer, got {layers}")
    nn = a_A / math.sqrt(2.0)
    nx = max(1, int(math.ceil(sx / nn - 1e-9)))
    ny = max(2, int(math.ceil(sy / (nn * math.sqrt(3) / 2) - 1e-9)))
    ny += ny % 2  # an orthogonal fcc(111) cell needs an even number of rows
    slab = fcc111("Au", size=(nx, ny, int(layers)), a=a_A, orthogonal=True)
    cell = np.array(slab.cell)
    shift = np.array([*center_A, 0.0]) + np.array([*offset_A, 0.0]) - (cell[0] + cell[1]) / 2
    pos = slab.positions + shift
    pos[:, 2] += top_z_A - pos[:, 2].max()
    out = Atoms(["Au"] * len(slab), positions=pos, cell=[cell[0], cell[1], [0, 0, 0]], pbc=False)
    out.set_tags(np.full(len(out), TAG_SUBSTRATE))
    out.info.update({"substrate": "Au(111)", "au_layers": int(layers), "au_top_z_A": float(top_z_A)})
    return out
