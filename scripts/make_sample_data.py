"""Make the bundled simulated sample: bilayer ice on Au(111), simulated with ppafm.

    python scripts/make_sample_data.py   # writes src/napari_afm_style/data/sample_water_sim.{npz,xyz}

Deterministic (structure seed 2024); the experiment-like sample is a copy of
../shared/data/experiment_like/scan_0000.npz (made for this project).
"""

from pathlib import Path

import numpy as np

from napari_afm_style.io import write_atoms, write_stack
from napari_afm_style.simulate import scan_like, simulate
from napari_afm_style.structures import generate_structure

OUT = Path(__file__).resolve().parents[1] / "src" / "napari_afm_style" / "data"


def main():
    atoms = generate_structure(2024, kind="bilayer", size_A=(16.0, 16.0), overhang_A=5.0)
    symbols = np.array(atoms.get_chemical_symbols())
    top = atoms.positions[symbols != "Au", 2].max()
    like = scan_like(atoms, n_heights=10, height_step_A=0.1, pixel_size_A=0.125, size_px=(128, 128),
                     closest_height_A=top + 3.1, center_xy_A=(0.0, 0.0), f0_Hz=30300.0,
                     k_N_per_m=1800.0, amplitude_A=1.0)
    stack = simulate(atoms, like)
    stack.metadata.update(sample="bilayer ice on Au(111), napari-afm-style generator seed 2024",
                          instrument="ppafm 0.4.1 probe-particle simulation, CO tip")
    for name in ("sample_water_sim.npz", "sample_water_sim.xyz"):
        (OUT / name).unlink(missing_ok=True)
    write_stack(stack, OUT / "sample_water_sim.npz")
    write_atoms(atoms, OUT / "sample_water_sim.xyz")
    print(stack)
    print(atoms)


if __name__ == "__main__":
    main()
