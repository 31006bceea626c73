"""Figure: how close the tip is decides the look of a Δf image more than any "style".

    python scripts/figure_imaging_distance.py   # writes docs/images/imaging_distance.png

Top row: one generated bilayer-ice island on Au(111) (seed 3), simulated with the default
CO tip at closest tip heights 2.0–3.8 Å above its topmost atom (the training sets use
2.8–3.8 Å). Bottom row: the closest slices of five experiment-like scans. Their sharp
bright lines between dark pores (the CO tip tilting over the H-bond network) appear in the
simulations only below ≈ 2.8 Å.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from napari_afm_style.io import read_stack  # noqa: E402
from napari_afm_style.simulate import scan_like, simulate  # noqa: E402
from napari_afm_style.structures import generate_structure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCANS = ROOT.parent / "shared" / "data" / "experiment_like"
OFFSETS_A = (2.0, 2.4, 2.8, 3.3, 3.8)


def main():
    atoms = generate_structure(3, kind="bilayer", size_A=(16.0, 16.0))
    top = atoms.positions[np.isin(atoms.numbers, (1, 8)), 2].max()
    fig, ax = plt.subplots(2, len(OFFSETS_A), figsize=(3.0 * len(OFFSETS_A), 6.4))
    for i, off in enumerate(OFFSETS_A):
        like = scan_like(atoms, closest_height_A=top + off, center_xy_A=(0.0, 0.0), amplitude_A=1.0)
        s = simulate(atoms, like)
        ax[0, i].imshow(s.data[-1], cmap="gray", origin="lower")
        ax[0, i].set_title(f"simulation, tip {off:.1f} Å above top", fontsize=9)
    for i, name in enumerate(("scan_0007.npz", "scan_0011.npz", "scan_0023.npz", "scan_0042.npz", "scan_0077.npz")):
        e = read_stack(SCANS / name)
        ax[1, i].imshow(e.data[-1], cmap="gray", origin="lower")
        ax[1, i].set_title(f"experiment-like {name[5:9]}", fontsize=9)
    for a in ax.ravel():
        a.axis("off")
    fig.tight_layout()
    out = ROOT / "docs" / "images" / "imaging_distance.png"
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
