"""Do the shipped models still read labelled experiment-style scans when they come untidy?

Each labelled scan is also given at 0.1 Å pixels (160 × 160, resampled), as 15 heights 0.06 Å
apart (interpolated), and normalised per slice (no Hz) — the atoms stay where they are — and
every model's top-layer O F1 (napari_afm_style.labelled_scans) is printed for each version.

    python benchmarks/bench_untidy_scans.py --labelled ../shared/data/experiment_like_labelled \\
        [--models handcrafted hybrid style pure]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage


def finer_pixels(st, pixel_A: float = 0.1):
    z = st.pixel_size_A / pixel_A
    d = ndimage.zoom(st.data, (1, z, z), order=1).astype(np.float32)
    # pixel centres: the window keeps its edges
    origin = st.origin_A - 0.5 * st.pixel_size_A + 0.5 * pixel_A
    return st.replace(data=d, pixel_size_A=pixel_A, origin_A=origin)


def more_heights(st, n: int = 15, step_A: float = 0.06):
    h = st.heights_A
    new = h[-1] + step_A * np.arange(n - 1, -1, -1)
    idx = np.interp(new, h[::-1], np.arange(len(h))[::-1])
    lo = np.floor(idx).astype(int)
    hi = np.minimum(lo + 1, len(h) - 1)
    w = (idx - lo)[:, None, None]
    return st.replace(data=((1 - w) * st.data[lo] + w * st.data[hi]).astype(np.float32), heights_A=new)


def normalised(st):
    d = st.data
    return st.replace(data=((d - d.mean(axis=(1, 2), keepdims=True)) / d.std(axis=(1, 2), keepdims=True)).astype(np.float32))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labelled", required=True)
    p.add_argument("--models", nargs="+", default=["handcrafted", "hybrid", "style", "pure"])
    args = p.parse_args(argv)
    from napari_afm_style.labelled_scans import read_labelled_scans, score_labelled_scans

    scans = read_labelled_scans(args.labelled)
    versions = (("as recorded", None), ("0.1 Å pixels", finer_pixels), ("15 heights, 0.06 Å", more_heights),
                ("normalised per slice", normalised))
    print("| model | " + " | ".join(v for v, _ in versions) + " |")
    print("|---|" + "---|" * len(versions))
    for m in args.models:
        f1 = [score_labelled_scans(m, scans, transform=tf, bootstrap=10)["mean_f1"] for _, tf in versions]
        print(f"| {m} | " + " | ".join(f"{v:.3f}" for v in f1) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
