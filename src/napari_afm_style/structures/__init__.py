"""Theoretical water structures on Au(111): bilayer hexagonal ice fragments, ring defects,
small 3D clusters, ice-rule hydrogens, thermal jitter and a Au(111) slab.

The generator produces training / reference geometries (``ase.Atoms``, positions in Å) in
the same frame as the project's DFT structures (``../shared/data/theory_structures``):
the top Au layer at ``z = AU_TOP_Z_A`` (4.71 Å) and water above it.

Physical model
--------------
* **Bilayer hexagonal ice** (Ma et al., Nature 577, 60 (2020)): two flat honeycomb layers
  of O with in-layer O–O ≈ 2.78 Å, stacked AA so that every upper molecule sits straight
  above a lower one (vertical interlayer H-bond). An interior molecule then has three
  in-layer H-bonds and one interlayer H-bond.
* **Heights**, calibrated on the 60 DFT structures: the lower (first) layer O sit
  3.35 Å above the top Au layer (median; std 0.34 Å, neighbouring O buckled by ≈0.4 Å),
  the upper molecules ≈5.8 Å above Au (median).
* **Defects**: ragged edges (Eden growth of hexagonal rings with a tunable compactness,
  plus removal of edge molecules), vacancies, and 5-7 ring pairs made by Stone–Wales bond
  rotations in the lower layer followed by a relaxation of a simple spring network
  (bond lengths, next-nearest-neighbour distances, non-bonded repulsion). The upper layer
  copies the relaxed lower layer, so a defect goes through the bilayer. This is a
  pragmatic, geometric model of 5-7 defects, not a DFT relaxation.
* **3D clusters**: cyclic trimer/tetramer/pentamer/hexamer, prism hexamer (a cage-like
  hexamer with nine H-bonds), cubic octamer, and random compact aggregates for other
  sizes; they sit on Au or on the first water layer, settled so that their lowest O
  touch what is below at the H-bond distance.
* **Hydrogens** follow the Bernal–Fowler ice rules as far as the fragment allows: every
  O carries exactly two covalent H (O–H 0.98 Å, H–O–H 104.5°); every H-bond (O–O within
  3.2 Å) carries exactly one H; a molecule accepts at most two H. The assignment is an
  Euler orientation of the H-bond graph augmented with a "vacuum" node that takes the
  missing bonds of under-coordinated molecules (see :func:`assign_hydrogens`); those
  molecules get dangling H that point away from their neighbours, preferably upwards.
* **Thermal jitter**: rigid Gaussian displacement and a small rotation of each molecule
  plus a tiny internal noise, so O–H lengths and angles stay physical.

Every function is deterministic given its ``rng`` (a ``numpy.random.Generator`` or an
integer seed).

Layout: :mod:`.common` (constants, helpers), :mod:`.ice`, :mod:`.clusters`,
:mod:`.hydrogens`, :mod:`.substrate`, :mod:`.assembly`, :mod:`.builders` (one builder
per kind behind :func:`generate_structure`) and :mod:`.checks`.
"""

from .assembly import bilayer_ice, water_cluster
from .builders import STRUCTURE_BUILDERS, generate_structure, theory_reference_structures
from .checks import check_geometry, layer_rings, water_molecules
from .common import (
    AU_LATTICE_A,
    AU_NN_A,
    AU_TOP_Z_A,
    AUTO_KIND_WEIGHTS,
    HBOND_CUTOFF_A,
    HOH_ANGLE_DEG,
    KINDS,
    OH_BOND_A,
    OO_DISTANCE_A,
    TAG_CLUSTER,
    TAG_LOWER,
    TAG_SUBSTRATE,
    TAG_UPPER,
    WATER_HEIGHT_A,
)
from .hydrogens import assign_hydrogens
from .substrate import au111_slab

__all__ = [
    "water_molecules",
    "generate_structure",
    "bilayer_ice",
    "water_cluster",
    "au111_slab",
    "assign_hydrogens",
    "check_geometry",
    "layer_rings",
    "theory_reference_structures",
    "KINDS",
    "AUTO_KIND_WEIGHTS",
    "AU_LATTICE_A",
    "AU_NN_A",
    "AU_TOP_Z_A",
    "WATER_HEIGHT_A",
    "OO_DISTANCE_A",
    "OH_BOND_A",
    "HOH_ANGLE_DEG",
    "HBOND_CUTOFF_A",
    "TAG_SUBSTRATE",
    "TAG_LOWER",
    "TAG_UPPER",
    "TAG_CLUSTER",
    "STRUCTURE_BUILDERS",
]
