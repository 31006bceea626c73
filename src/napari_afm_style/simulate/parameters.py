"""The probe (:class:`TipParameters`), the force-field evaluation (:class:`EngineSettings`),
the default charges and the validation of a geometry for ppafm."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "TipParameters",
    "EngineSettings",
    "DEFAULT_CHARGES_E",
    "SUBSTRATE_NUMBERS",
    "EVA2_PER_N_PER_M",
    "DEFAULT_CLOSEST_GAP_A",
    "MULTIPOLES",
    "default_charges",
    "atoms_arrays",
]

#: Point charges (e) used when a geometry carries none: a point-charge model of water
#: (O −0.8 e, H +0.4 e, neutral molecules, close to TIP3P's −0.834/+0.417); every other
#: element (Au, ...) is neutral.
DEFAULT_CHARGES_E = {8: -0.8, 1: 0.4}

#: Atomic numbers treated as substrate (metal slabs): their force field is cached between
#: calls, and :func:`scan_like` centres and places the scan on the other atoms.
SUBSTRATE_NUMBERS = (13, 26, 27, 28, 29, 45, 46, 47, 77, 78, 79)

#: ppafm's conversion from eV/Å² to N/m (its internal stiffness unit).
EVA2_PER_N_PER_M = 16.0217662

#: The gap (Å) between the topmost adsorbate atom and the closest slice when nothing else
#: says where a scan sits: the closest height of the theory scans of water on Au(111) is
#: 1.6–2.8 Å above their topmost atom (a dangling H), ≈ 2.9 Å above their topmost O;
#: 2.5 Å gives the sharp, partly repulsive CO-tip contrast of those scans.
DEFAULT_CLOSEST_GAP_A = 2.5

#: the tip charge multipoles ppafm offers
MULTIPOLES = ("s", "pz", "dz2")


@dataclass(frozen=True)
class TipParameters:
    """The probe (CO tip) of ppafm's probe-particle model.

    The defaults are ppafm's CO tip (AFMulator defaults): lateral stiffness 0.25 N/m,
    radial stiffness 30 N/m, probe 3 Å below the anchor, a ``dz2`` quadrupole of −0.1 e.

    Parameters
    ----------
    k_xy_N_per_m : float
        Lateral (bending) stiffness of the probe particle in N/m (ppafm ``klat``;
        ``tipStiffness[0:2]``; ppafm's XYZ comments store it as ``kxy`` in −eV/Å²).
    k_radial_N_per_m : float
        Radial (bond-length) stiffness in N/m (ppafm ``krad``, ``tipStiffness[3]``).
    r0_A : tuple of 3 floats
        ppafm's ``tipR0``: lateral equilibrium offset (x, y) of the probe particle from
        the anchor (a tilted tip) and the anchor–probe bond length (Å). The probe hangs
        ``sqrt(r0_z² − r0_x² − r0_y²)`` below the anchor.
    multipole : {'s', 'pz', 'dz2'}
        Tip charge distribution, realised as ppafm's point charges on the z axis
        (s: one charge; pz: ±10q at ±0.1 Å; dz2: q·(100, −200, 100) at +0.1, 0, −0.1 Å).
    charge_e : float
        Multipole strength in e (ppafm ``charge``).
    probe_element : int
        Atomic number of the probe particle (8: the O of CO), for its Lennard-Jones
        parameters.
    """

    k_xy_N_per_m: float = 0.25
    k_radial_N_per_m: float = 30.0
    r0_A: tuple = (0.0, 0.0, 3.0)
    multipole: str = "dz2"
    charge_e: float = -0.1
    probe_element: int = 8

    def __post_init__(self):
        for name in ("k_xy_N_per_m", "k_radial_N_per_m"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"TipParameters.{name} must be a positive stiffness in N/m, got {v!r}")
            object.__setattr__(self, name, v)
        r0 = tuple(float(v) for v in np.asarray(self.r0_A, dtype=float).reshape(-1))
        if len(r0) != 3 or not np.all(np.isfinite(r0)):
            raise ValueError(f"TipParameters.r0_A must be (x, y, bond length) in Å, got {self.r0_A!r}")
        if r0[2] <= 0 or r0[0] ** 2 + r0[1] ** 2 >= r0[2] ** 2:
            raise ValueError(
                "TipParameters.r0_A: the bond length r0_A[2] must be positive and longer than "
                f"the lateral offset hypot(r0_A[0], r0_A[1]); got {r0}"
            )
        object.__setattr__(self, "r0_A", r0)
        if self.multipole not in MULTIPOLES:
            raise ValueError(f"TipParameters.multipole must be one of {MULTIPOLES}, got {self.multipole!r}")
        q = float(self.charge_e)
        if not np.isfinite(q):
            raise ValueError(f"TipParameters.charge_e must be finite, got {q!r}")
        object.__setattr__(self, "charge_e", q)
        object.__setattr__(self, "probe_element", int(self.probe_element))

    @classmethod
    def co_tip(cls) -> TipParameters:
        """ppafm's CO tip (the default)."""
        return cls()

    @property
    def probe_depth_A(self) -> float:
        """How far (Å) the probe particle hangs below the anchor at equilibrium."""
        x, y, r = self.r0_A
        return math.sqrt(r * r - x * x - y * y)

    def point_charges(self) -> tuple[list[float], list[float]]:
        """ppafm's ``Qs`` (e) and ``QZs`` (Å above the probe particle)."""
        q = self.charge_e
        if self.multipole == "s":
            return [q, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]
        if self.multipole == "pz":
            return [10 * q, -10 * q, 0.0, 0.0], [0.1, -0.1, 0.0, 0.0]
        return [100 * q, -200 * q, 100 * q, 0.0], [0.1, 0.0, -0.1, 0.0]

    def stiffness_vector(self) -> list[float]:
        """ppafm's ``tipStiffness`` (x, y, z, radial) in N/m."""
        return [self.k_xy_N_per_m, self.k_xy_N_per_m, 0.0, self.k_radial_N_per_m]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["r0_A"] = list(self.r0_A)
        return d


@dataclass(frozen=True)
class EngineSettings:
    """How the force field is evaluated (the physics stays ppafm's).

    Parameters
    ----------
    points_per_A : float
        Density (points per Å, in x, y and z) of the force-field grid that the probe
        particle is relaxed in; 10 is ppafm's default.
    box : {'scan', 'structure'}
        'scan': the grid covers only the volume the probe particle visits, padded by
        ``lateral_pad_A`` and ``z_pad_A``; 'structure': it covers every atom and the scan,
        padded by 3 Å (the straightforward call).
    near_cutoff_A : float or None
        Atoms closer than this to the probe-particle volume are evaluated on the fine grid;
        the others (their field is smooth there) on a coarse grid of ``far_points_per_A``,
        interpolated onto the fine one. None: every atom on the fine grid.
    far_points_per_A : float
        Density of the coarse grid of the far atoms.
    max_scan_step_A : float
        Largest z step of the approach (ppafm's ``dz``); smaller steps are chosen so that
        the heights of ``like`` fall on the grid.
    """

    points_per_A: float = 10.0
    box: str = "scan"
    lateral_pad_A: float = 0.8
    z_pad_A: float = 0.4
    near_cutoff_A: float | None = 4.5
    far_points_per_A: float = 2.0
    max_scan_step_A: float = 0.1

    def __post_init__(self):
        if self.box not in ("scan", "structure"):
            raise ValueError(f"EngineSettings.box must be 'scan' or 'structure', got {self.box!r}")
        for name in ("points_per_A", "far_points_per_A"):
            v = float(getattr(self, name))
            if not (0 < v <= 40):
                raise ValueError(f"EngineSettings.{name} must be in (0, 40] points per Å, got {v!r}")
        for name in ("lateral_pad_A", "z_pad_A"):
            v = float(getattr(self, name))
            if not (v >= 0 and np.isfinite(v)):
                raise ValueError(f"EngineSettings.{name} must be ≥ 0 Å, got {v!r}")
        if self.near_cutoff_A is not None and not float(self.near_cutoff_A) > 0:
            raise ValueError(f"EngineSettings.near_cutoff_A must be positive or None, got {self.near_cutoff_A!r}")
        if not (0.005 <= float(self.max_scan_step_A) <= 0.5):
            raise ValueError(f"EngineSettings.max_scan_step_A must be in [0.005, 0.5] Å, got {self.max_scan_step_A!r}")

    @classmethod
    def straightforward(cls) -> EngineSettings:
        """ppafm's default resolution (10 points/Å) over a box covering the whole
        structure, every atom on that grid."""
        return cls(points_per_A=10.0, box="structure", near_cutoff_A=None)

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------------
# Charges and validation
# ----------------------------------------------------------------------------------------
def default_charges(numbers) -> np.ndarray:
    """Point charges (e) for atomic numbers: ``DEFAULT_CHARGES_E``, 0 for other elements."""
    numbers = np.asarray(numbers, dtype=int)
    q = np.zeros(numbers.shape, dtype=np.float64)
    for z, value in DEFAULT_CHARGES_E.items():
        q[numbers == z] = value
    return q


def atoms_arrays(atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(positions, numbers, charges, charge source) of ``atoms``, validated."""
    if atoms is None or not hasattr(atoms, "get_positions"):
        raise ValueError(f"atoms must be an ase.Atoms geometry, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise ValueError("the geometry has no atoms; nothing to simulate")
    pos = np.asarray(atoms.get_positions(), dtype=np.float64)
    if not np.all(np.isfinite(pos)):
        bad = int(np.sum(~np.all(np.isfinite(pos), axis=1)))
        raise ValueError(f"{bad} atom position(s) are NaN or infinite; fix or drop those atoms")
    numbers = np.asarray(atoms.numbers, dtype=int)
    n_types = _n_atom_types()
    unknown = sorted({int(z) for z in numbers if z < 1 or z > n_types})
    if unknown:
        raise ValueError(
            f"atomic numbers {unknown} have no Lennard-Jones parameters in ppafm (1–{n_types})"
        )
    charges = np.asarray(atoms.get_initial_charges(), dtype=np.float64)
    if not np.all(np.isfinite(charges)):
        raise ValueError("atom charges contain NaN or infinite values")
    if np.any(charges != 0):
        source = "geometry (atoms.get_initial_charges())"
    else:
        charges = default_charges(numbers)
        source = "default point charges " + ", ".join(
            f"Z={z}: {q:+g} e" for z, q in DEFAULT_CHARGES_E.items()
        ) + ", others 0"
    return pos, numbers, charges, source


_N_TYPES: int | None = None


def _n_atom_types() -> int:
    global _N_TYPES
    if _N_TYPES is None:
        from importlib import resources

        text = resources.files("ppafm").joinpath("defaults/atomtypes.ini").read_text()
        _N_TYPES = sum(1 for ln in text.splitlines() if len(ln.split()) >= 5)
    return _N_TYPES
