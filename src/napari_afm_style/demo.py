"""The main job, headless: the whole pipeline on the bundled sample.

load → (backward style translation, when a strength is given; the default path predicts on the
raw scan) → structure prediction → ppafm re-simulation → tetrahedral order vs theory → XYZ
export, with timings, a summary and figures written to an output folder.
``afm-style demo -o OUT`` runs it; ``afm-style gui`` opens napari
with every widget docked on the same sample.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np

from .io._atomic import check_overwrite, is_figure_of_kind, save_figure, write_json_atomic
from .models.shipped import BEST_BACKWARD_STRENGTH, DEFAULT_MODEL

__all__ = ["run_demo", "DEFAULT_BACKWARD_STRENGTH"]

#: backward-translation strength of the default path: the one the default model reads best
#: (`models.shipped.BEST_BACKWARD_STRENGTH`; for `hybrid` 0, the raw scan: top-layer O F1 0.892
#: raw, 0.886 / 0.876 after translation at 0.5 / 1; docs/experiment.md). ``--strength`` runs
#: another path (the figure's middle panel then shows the translated scan).
DEFAULT_BACKWARD_STRENGTH = BEST_BACKWARD_STRENGTH[DEFAULT_MODEL]


@contextlib.contextmanager
def _timed(times: dict, name: str):
    """Record the wall time of the block in ``times[name]`` (s)."""
    t0 = time.perf_counter()
    yield
    times[name] = time.perf_counter() - t0


def _figure(stack, translated, simulated, atoms, dist, path, strength=1.0, scores=None):
    """The pipeline at a glance: three Δf panels (closest slice, each with its colourbar in
    Hz), the predicted atoms over the scan they were predicted on, and the S_k / S_g
    histograms of the prediction over theory with their Wasserstein distances W."""
    # a bare Figure (Agg when saved): the user's pyplot backend, e.g. napari's Qt, stays as it is
    from matplotlib.figure import Figure

    from .order import histogram_data, tetrahedral_order

    fig = Figure(figsize=(20, 4.6), layout="constrained")
    axes = fig.subplots(1, 5, gridspec_kw={"width_ratios": [1, 1, 1, 0.9, 0.9]})
    extent = (stack.x_A[0], stack.x_A[-1], stack.y_A[-1], stack.y_A[0])
    closest = int(np.argmin(stack.heights_A))
    z_label = f"{stack.heights_A[closest]:.2f} Å" + ("" if stack.heights_are_absolute else " (relative)")
    ncc = f", NCC {scores['ncc'][closest]:.2f}" if scores and "ncc" in scores else ""
    titles = (f"scan, closest slice z = {z_label}",
              f"predicted atoms on the scan\ntranslated backward, strength {strength:g}"
              if strength else "predicted atoms on the raw scan",
              f"re-simulated prediction (ppafm){ncc}")
    for ax, s, title in zip(axes[:3], (stack, translated, simulated), titles):
        im = ax.imshow(s.data[closest], cmap="gray", extent=extent)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x (Å)")
        ax.set_ylabel("y (Å)")
        units = s.metadata.get("data_units", "Hz")
        fig.colorbar(im, ax=ax, shrink=0.85, label=f"Δf ({units})" if units == "Hz" else units)
    symbols = np.array(atoms.get_chemical_symbols())
    for el, color in (("O", "red"), ("H", "white")):
        p = atoms.positions[symbols == el]
        axes[1].scatter(p[:, 0], p[:, 1], s=12 if el == "O" else 5, c=color, edgecolors="k",
                        linewidths=0.3, label=el)
    if len(atoms):
        axes[1].legend(fontsize=7, loc="lower right", framealpha=0.8)
    oxygen = atoms.positions[symbols == "O"]
    idx, sk, sg = tetrahedral_order(oxygen) if len(oxygen) else ([], [], [])
    for ax, key, name in zip(axes[3:], ("S_k", "S_g"), ("$S_k$ (translational order)", "$S_g$ (orientational order)")):
        if len(idx):
            h = histogram_data(sk, sg)[key]
            ax.stairs(h["reference"], h["edges"], fill=True, color="0.6", label="theory (reference)")
            ax.stairs(h["prediction"], h["edges"], color="C3", lw=1.6, label=f"prediction ({len(idx)} O centres)")
            ax.legend(fontsize=7, loc="upper left")
            ax.set_title(f"{name}\nW = {dist.get('wasserstein_' + key, float('nan')):.3g} to theory", fontsize=10)
        else:
            ax.set_title(f"{name}\n(no O with 4 neighbours)", fontsize=10)
        ax.set_xlabel("$" + key.replace("_", "_{") + "}$")
        ax.set_ylabel("probability density")
    fig.supxlabel("W: Wasserstein (earth mover's) distance between the prediction's and theory's distribution "
                  "of the parameter, in its units; 0 = identical", fontsize=8, color="0.3")
    save_figure(fig, path, dpi=110)


#: the demo's outputs, each with the test of whether an existing file may be replaced
def _demo_outputs() -> dict:
    from .io.npz import is_stack_npz
    from .io.xyz import is_xyz

    def is_demo_summary(path) -> bool:
        try:
            return "atoms_found" in json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            return False

    return {"predicted.xyz": is_xyz, "translated_backward.npz": is_stack_npz, "resimulated.npz": is_stack_npz,
            "pipeline.png": is_figure_of_kind, "summary.json": is_demo_summary}


def _check_outputs(out: Path) -> None:
    """Before any work: a re-run replaces an earlier demo's outputs, never other files."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; the demo writes into a folder")
    for name, ours in _demo_outputs().items():
        check_overwrite(out / name, ours)


def run_demo(out_dir, sample: str = "experiment_like", model: str | None = None,
             threshold: float | None = None, strength: float = DEFAULT_BACKWARD_STRENGTH,
             quick: bool = False) -> dict:
    """Run the pipeline and write its outputs into ``out_dir``; returns the summary.

    ``quick`` crops the scan to its central 64×64 pixels (used by the test suite).
    """
    from ._sample_data import EXP_STACK, SIM_STACK, data_path
    from .io import read_stack, write_atoms, write_stack
    from .order import order_distances
    from .predict import predict
    from .resimulation import resimulate_prediction
    from .translate import translate

    model = DEFAULT_MODEL if model is None else model
    out = Path(out_dir)
    _check_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    with _timed(times, "load"):
        stack = read_stack(data_path(EXP_STACK if sample == "experiment_like" else SIM_STACK))
        if quick:
            c = stack.shape[1] // 2
            stack = stack.replace(data=stack.data[:, c - 32 : c + 32, c - 32 : c + 32],
                                  origin_A=stack.origin_A + (c - 32) * stack.pixel_size_A)
    if strength:
        with _timed(times, "translate_backward"):
            translated = translate(stack, direction="backward", strength=strength)
    else:  # the raw path: no translator is loaded, and no copy of the scan is written
        translated = stack
    with _timed(times, "predict"):
        atoms = predict(translated, model=model, threshold=threshold)
    with _timed(times, "resimulate"):
        # as the Re-simulate dock does: confident atoms only, the tip placed from them or
        # the stack's own height frame (one unsure atom above the rest must not set it)
        try:
            resim = resimulate_prediction(stack, atoms)
        except ValueError:  # nothing confident enough to simulate
            resim = None
        simulated = resim.simulated if resim is not None else stack.replace(data=np.zeros_like(stack.data))
        scores = resim.scores if resim is not None else {"ncc_mean": float("nan"), "ssim_mean": float("nan")}
    with _timed(times, "order"):
        n_o = int(np.sum(np.array(atoms.get_chemical_symbols()) == "O"))
        dist = order_distances(atoms) if n_o >= 5 else {}
    with _timed(times, "export"):
        write_atoms(atoms, out / "predicted.xyz")
        if strength:
            write_stack(translated, out / "translated_backward.npz")
        else:  # an earlier run's translated scan (checked to be ours above) is not this run's
            (out / "translated_backward.npz").unlink(missing_ok=True)
        write_stack(simulated, out / "resimulated.npz")
        _figure(stack, translated, simulated, atoms, dist, out / "pipeline.png", strength, scores)
    symbols = atoms.get_chemical_symbols()
    summary = {
        "sample": sample,
        "stack_shape": list(stack.shape),
        "atoms_found": {el: symbols.count(el) for el in sorted(set(symbols))},
        "model": model,
        "translation_strength": strength,
        "resim_ncc_mean": scores["ncc_mean"],
        "resim_ncc_closest": resim.closest_ncc if resim is not None else float("nan"),
        "resim_tip_placement": resim.placement["note"] if resim is not None else None,
        "resim_atoms_left_out": int(resim.placement["left_out"]) if resim is not None else len(atoms),
        "resim_ssim_mean": scores["ssim_mean"],
        "wasserstein_S_k": dist.get("wasserstein_S_k"),
        "wasserstein_S_g": dist.get("wasserstein_S_g"),
        "emd_2d": dist.get("emd_2d"),
        "n_order_centres": dist.get("n_centres"),
        "timings_s": {k: round(v, 3) for k, v in times.items()},
        "total_s": round(sum(times.values()), 3),
        "outputs": sorted(p.name for p in out.iterdir()),
    }
    write_json_atomic(out / "summary.json", summary, indent=2, default=float)
    return summary


def configure_demo_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="demo_output", help="output folder")
    p.add_argument("--sample", choices=("experiment_like", "simulated"), default="experiment_like",
                   help="bundled stack to run on: experiment-like scan, or a simulation with its known atoms")
    p.add_argument("--model", default=None, help="structure model (shipped name or checkpoint; default: "
                                                 "predict.DEFAULT_MODEL)")
    p.add_argument("--threshold", type=float, default=None, help="O/H heat-map threshold (default: the model's calibrated one)")
    p.add_argument("--strength", type=float, default=DEFAULT_BACKWARD_STRENGTH,
                   help="backward translation strength 0–1 before prediction (default 0: the raw scan, "
                        "the path that measured best for the default model)")


def run_demo_command(args) -> int:
    summary = run_demo(args.output, sample=args.sample, model=args.model, threshold=args.threshold,
                       strength=args.strength)
    print("napari-afm-style demo: load → translate (backward) → predict → re-simulate → order → XYZ")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    print(f"outputs in {Path(args.output).resolve()}")
    return 0


def configure_gui_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sample", choices=("experiment_like", "simulated"), default="experiment_like",
                   help="bundled stack to open: experiment-like scan, or a simulation with its known atoms")


#: share of the screen's free area the `afm-style gui` window takes
GUI_SCREEN_FRACTION = 0.9


def build_gui(viewer, sample: str | None = "experiment_like") -> dict:
    """Dock the four widgets in the order of the path (translate → predict → re-simulate →
    order) as tabs, open ``sample`` (None: nothing), size the window to most of the screen
    and put the first step (Style translation) in front. Returns the widgets by role."""
    from qtpy.QtWidgets import QApplication

    from ._qt.order_widget import OrderWidget
    from ._qt.predict_widget import PredictWidget
    from ._qt.resim_widget import ResimWidget
    from ._qt.translate_widget import TranslateWidget

    if sample is not None:
        key = "water_experiment_like" if sample == "experiment_like" else "water_sim"
        viewer.open_sample("napari-afm-style", key)
    widgets, docks = {}, {}
    for role, widget, name in (("translate", TranslateWidget, "Style translation"),
                               ("predict", PredictWidget, "Predict atoms"),
                               ("resim", ResimWidget, "Re-simulate structure"),
                               ("order", OrderWidget, "Tetrahedral order")):
        widgets[role] = widget(viewer)
        docks[role] = viewer.window.add_dock_widget(widgets[role], name=name, area="right", tabify=True)
    # the first step in front, not the (still empty) order plot; Qt makes the tab bar when
    # the window shows, so raise again once the event loop has run
    from qtpy.QtCore import QTimer

    docks["translate"].raise_()
    QTimer.singleShot(0, docks["translate"].raise_)
    screen = QApplication.primaryScreen()
    if screen is not None:
        geo = screen.availableGeometry()
        w, h = int(geo.width() * GUI_SCREEN_FRACTION), int(geo.height() * GUI_SCREEN_FRACTION)
        viewer.window.set_geometry(geo.x() + (geo.width() - w) // 2, geo.y() + (geo.height() - h) // 2, w, h)
    widgets["docks"] = docks
    return widgets


def run_gui(args) -> int:
    import napari

    viewer = napari.Viewer(title="napari-afm-style")
    build_gui(viewer, args.sample)
    napari.run()
    return 0
