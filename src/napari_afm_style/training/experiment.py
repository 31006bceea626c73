"""The poster's experiment: four training regimes compared on experiment-like scans.

``afm-style experiment`` trains the same structure model (same architecture, epochs,
batch size, learning-rate schedule and seed) in the four regimes of
:mod:`napari_afm_style.train_predictor` —

* ``pure``: ppafm simulations as generated;
* ``handcrafted``: the same simulations with random handcrafted perturbations
  (:func:`~napari_afm_style.perturb.random_perturbation`, strength U(0, 1) per sample);
* ``style``: the same simulations translated forward (sim → exp) by the style translator,
  on the fly at a strength drawn per sample from ``style_strength`` (or read from
  pre-translated ``--style`` shards);
* ``hybrid``: per sample one of the kinds sim / handcrafted / style / style_handcrafted
  (translated, then perturbed by hand), with the stated mix;

then, with every regime's final weights (the last epoch: no model selection that could
favour one regime),

1. predicts the structures of the unlabelled experiment-like scans and compares the
   tetrahedral order of the predicted O atoms (S_k, S_g; each scan on its own, pooled)
   with the theoretical distribution: Wasserstein-1 of S_k and of S_g, the joint 2-D EMD,
   with 95 % bootstrap intervals over scans and the paired difference to ``pure``;
2. measures the labelled accuracy (O/H precision, recall, F1, RMSE) on held-out simulated
   stacks translated forward (experiment-like images whose structures are known), and on
   the same stacks untranslated;
3. with ``labelled`` (a folder of labelled experiment-style scans,
   :mod:`napari_afm_style.labelled_scans`), the top-layer O F1 of every regime on them, with
   95 % bootstrap intervals and the paired interval of the difference to ``pure`` and to
   ``handcrafted`` (validation only: nothing is trained or chosen on them).

Several ``translator`` candidates (``--translator A.pt B.pt …``) are chosen between
automatically, before the regimes are trained, by a label-free criterion on the user's own
scans (:func:`choose_translator`): a short ``style``-regime probe is trained with each, and
the candidate whose probe is most decided on the scans (lowest mean entropy of its O heat
maps, :func:`~napari_afm_style.translation_criteria.prediction_entropy`) translates for the
style regimes and the held-out set. Between translators used alike, it and the re-simulation
agreement (``choice_criterion="resim_ncc"``, slower) ranked the models' labelled F1 best of
the label-free criteria measured, while the style distance (FID) ranked them backwards
(docs/experiment.md). No criterion measured ranks the *strengths* of one translator, so the
strength stays a range drawn per sample (``style_strength``).

Outputs in ``--out``: ``runs/<regime>/`` (checkpoints; an interrupted experiment resumes
where it stopped), ``models/predictor_<regime>.pt`` + card, ``results.json``,
``results.csv``, ``results.md`` and ``order_histograms.png``.
"""

from __future__ import annotations

import csv
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ..io._atomic import save_figure, write_json_atomic, write_text_atomic
from ..order import order_on_scans
from .train_predictor import DEFAULT_MIX


__all__ = ["ExperimentConfig", "run_experiment", "order_on_scans", "bootstrap_order_distances", "read_scans",
           "paired_difference_ci", "choose_translator", "translator_candidates"]

log = logging.getLogger(__name__)

REGIMES = ("pure", "handcrafted", "style", "hybrid")
#: label-free criteria for choosing a translator, and what they mean
CHOICE_CRITERIA = {
    "entropy": "lowest O-map entropy of a style-regime probe on the scans",
    "resim_ncc": "highest NCC between the scans and the ppafm re-simulation of a style-regime probe's prediction",
}


class ExperimentConfig(dict):
    """Settings of one experiment (a plain dict, stored with the results)."""

    DEFAULTS = {
        "sim": None, "heldout": None, "exp": None, "out": None,
        "style": None, "heldout_style": None, "translator": None, "strength": "recommended",
        "style_strength": (0.0, 1.0), "labelled": None, "device": "cpu",
        "regimes": list(REGIMES), "epochs": 15, "batch_size": 16, "lr": 2e-3, "seed": 0,
        "mix": dict(DEFAULT_MIX), "jobs": 2,
        "val_fraction": 0.1,
        "max_exp_scans": None, "max_heldout": None, "bootstrap": 1000, "progress": True,
        # several translators: probe epochs per candidate and scans scored (label-free choice)
        "choice_epochs": 1, "choice_scans": 32, "choice_criterion": "entropy",
        # further TrainConfig fields shared by every regime (e.g. {"model": {"base_channels": 24}})
        "train_options": {},
    }

    def __init__(self, **kw):
        unknown = set(kw) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown experiment settings: {sorted(unknown)}")
        super().__init__({**self.DEFAULTS, **kw})
        for key in ("sim", "heldout", "exp", "out"):
            if not self[key]:
                raise ValueError(f"the experiment needs {key!r} (a folder)")
        bad = [r for r in self["regimes"] if r not in REGIMES]
        if bad:
            raise ValueError(f"unknown regime(s) {bad}; choose from {REGIMES}")
        if int(self["epochs"]) < 1 or int(self["jobs"]) < 1:
            raise ValueError("epochs and jobs must be ≥ 1")
        if int(self["choice_epochs"]) < 1 or int(self["choice_scans"]) < 1:
            raise ValueError("choice_epochs and choice_scans must be ≥ 1")
        if self["choice_criterion"] not in CHOICE_CRITERIA:
            raise ValueError(f"choice_criterion must be one of {sorted(CHOICE_CRITERIA)}")
        cands = translator_candidates(self)
        missing = [c for c in cands if c is not None and not Path(c).exists()]
        if missing:
            raise FileNotFoundError(f"translator weights not found: {missing}")
        if len(set(cands)) != len(cands):
            raise ValueError(f"the translator candidates repeat a file: {cands}")


def translator_candidates(cfg) -> list:
    """The forward translators of ``cfg`` as a list (``None``: the shipped one)."""
    t = cfg["translator"]
    if t is None or (isinstance(t, (list, tuple)) and len(t) == 0):
        return [None]
    return [str(x) for x in t] if isinstance(t, (list, tuple)) else [str(t)]


# -- order statistics on a set of scans -------------------------------------------------------

def bootstrap_order_distances(order: dict, n_scans: int, reference="theory", n_boot: int = 1000,
                              seed: int = 0, baseline: dict | None = None) -> dict:
    """95 % bootstrap intervals (resampling scans) of W1(S_k) and W1(S_g) to the reference,
    and, with ``baseline`` (another regime's :func:`order_on_scans` on the same scans), of
    the paired difference ``W(this) − W(baseline)`` (negative: closer to the reference)."""
    from scipy.stats import wasserstein_distance

    from ..order import reference_distribution

    ref_k, ref_g = reference_distribution(reference)
    rng = np.random.default_rng(seed)

    def w(o, idx):
        counts = np.bincount(idx, minlength=n_scans)
        weights = counts[o["scan_of"]].astype(float)
        if weights.sum() == 0:
            return np.nan, np.nan
        return (wasserstein_distance(o["S_k"], ref_k, u_weights=weights),
                wasserstein_distance(o["S_g"], ref_g, u_weights=weights))

    draws, diffs = [], []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, n_scans, n_scans)
        a = w(order, idx)
        draws.append(a)
        if baseline is not None:
            b = w(baseline, idx)
            diffs.append((a[0] - b[0], a[1] - b[1]))
    draws = np.array(draws, float)
    out = {"wasserstein_S_k_ci95": np.nanpercentile(draws[:, 0], [2.5, 97.5]).tolist(),
           "wasserstein_S_g_ci95": np.nanpercentile(draws[:, 1], [2.5, 97.5]).tolist()}
    if baseline is not None:
        diffs = np.array(diffs, float)
        out["delta_vs_pure_S_k_ci95"] = np.nanpercentile(diffs[:, 0], [2.5, 97.5]).tolist()
        out["delta_vs_pure_S_g_ci95"] = np.nanpercentile(diffs[:, 1], [2.5, 97.5]).tolist()
    return out


# -- steps --------------------------------------------------------------------------------------

def _log(msg: str) -> None:
    log.info(f"[{time.strftime('%H:%M:%S')}] {msg}")


def _train_one(train_kwargs: dict) -> str:
    """Worker: train (or resume) one regime; runs in its own process (1 torch thread)."""
    import contextlib
    import io

    from .train_predictor import TrainConfig, train

    log = Path(train_kwargs["out"]) / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(io.StringIO()):
        train(TrainConfig(**train_kwargs))
    return train_kwargs["regime"]


def _epochs_done(run_dir: Path) -> int:
    try:
        return len(json.loads((run_dir / "history.json").read_text()))
    except (OSError, ValueError):
        return 0


def _regime_kwargs(cfg: ExperimentConfig, regime: str, run_dir: Path, style_dir: Path | None,
                   translator: str | None, epochs: int) -> dict:
    """TrainConfig keywords of one regime run (every run of an experiment shares the recipe)."""
    sim = [str(f) for f in cfg["sim"]] if isinstance(cfg["sim"], (list, tuple)) else str(cfg["sim"])
    on_the_fly = regime in ("style", "hybrid") and style_dir is None
    return {**dict(
        data=sim, out=str(run_dir), val_fraction=cfg["val_fraction"], regime=regime,
        style_data=str(style_dir) if regime in ("style", "hybrid") and style_dir is not None else None,
        mix=cfg["mix"], translators=[str(translator)] if on_the_fly and translator else None,
        style_strength=tuple(cfg["style_strength"]), device=cfg["device"],
        epochs=int(epochs), batch_size=int(cfg["batch_size"]), lr=float(cfg["lr"]),
        seed=int(cfg["seed"]), resume=True, progress=False,
        num_threads=1 if int(cfg["jobs"]) > 1 else None,
        command=f"afm-style experiment (regime {regime}, {epochs} epochs, seed {cfg['seed']})"),
        **cfg["train_options"]}


def _train_runs(runs: dict, jobs: int, progress: bool, desc: str) -> float:
    """Train (or resume) every run of ``runs`` (name → TrainConfig keywords), ``jobs`` processes
    at a time; returns minutes spent."""
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp

    def done(name):
        return min(_epochs_done(Path(runs[name]["out"])), int(runs[name]["epochs"]))

    todo = [n for n in runs if done(n) < int(runs[n]["epochs"])]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(int(k["epochs"]) for k in runs.values()), desc=desc, unit="epoch", file=sys.stderr)
    t0 = time.time()
    if todo:
        _log(f"{desc}: {', '.join(todo)} ({jobs} at a time)")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {n: pool.submit(_train_one, runs[n]) for n in todo}
            while not all(f.done() for f in futures.values()):
                time.sleep(5)
                if bar is not None:
                    bar.n = sum(done(n) for n in runs)
                    bar.refresh()
            for n, f in futures.items():
                f.result()
                _log(f"{n} trained")
    if bar is not None:
        bar.n = sum(done(n) for n in runs)
        bar.close()
    return (time.time() - t0) / 60


def train_regimes(cfg: ExperimentConfig, style_dir: Path | None, translator: str | None = None) -> dict:
    """Train every regime (in parallel processes when ``jobs`` > 1); resumable."""
    out = Path(cfg["out"])
    if translator is None:
        translator = translator_candidates(cfg)[0]
    runs = {r: _regime_kwargs(cfg, r, out / "runs" / r, style_dir, translator, int(cfg["epochs"]))
            for r in cfg["regimes"]}
    minutes = _train_runs(runs, int(cfg["jobs"]), cfg["progress"], "training regimes")
    return {"train_minutes": minutes, "runs": {r: str(out / "runs" / r) for r in cfg["regimes"]}}


def choose_translator(cfg: ExperimentConfig, scans: list) -> dict:
    """Choose the forward translator among ``cfg``'s candidates without labels.

    A ``style``-regime probe (the experiment's recipe, ``choice_epochs`` epochs) is trained
    with each candidate in ``OUT/translator_choice/<i>/``; each probe predicts the first
    ``choice_scans`` of the user's ``scans`` and the candidate whose probe's O heat maps have
    the lowest mean binary entropy wins (``choice_criterion="entropy"``; or, with
    ``"resim_ncc"``, whose predictions re-simulated by ppafm agree best with the scans); ties:
    the first given. Resumable; returns ``{"chosen", "criterion", "candidates":
    [{"translator", "entropy", "mean_confidence"[, "resim_ncc"]}]}``.
    """
    from ..predict import load_model
    from .translation_criteria import prediction_entropy, resimulation_agreement

    cands = translator_candidates(cfg)
    if len(cands) == 1:
        return {"chosen": cands[0], "criterion": "single candidate", "candidates": []}
    if not scans:
        raise ValueError("choosing a translator needs the user's scans (--exp)")
    root = Path(cfg["out"]) / "translator_choice"
    runs = {f"probe {i} ({Path(c).name})": _regime_kwargs(cfg, "style", root / str(i), None, c,
                                                          int(cfg["choice_epochs"]))
            for i, c in enumerate(cands)}
    minutes = _train_runs(runs, int(cfg["jobs"]), cfg["progress"], "translator probes")
    subset = scans[: int(cfg["choice_scans"])]
    criterion = cfg["choice_criterion"]
    rows = []
    for i, c in enumerate(cands):
        probe = load_model(str(root / str(i) / "last.pt"))
        ent = prediction_entropy(probe, subset)
        row = {"translator": c, "entropy": ent["entropy"], "mean_confidence": ent["mean_confidence"]}
        if criterion == "resim_ncc":
            row["resim_ncc"] = resimulation_agreement(probe, subset, predictions=ent["atoms"])["ncc"]
        rows.append(row)
        _log(f"translator {c}: probe O-map entropy {ent['entropy']:.5f}"
             + (f", re-simulation NCC {row['resim_ncc']:.3f}" if "resim_ncc" in row else "") + f" on {len(subset)} scans")
    key = (lambda i: (rows[i]["entropy"], i)) if criterion == "entropy" else (lambda i: (-rows[i]["resim_ncc"], i))
    best = min(range(len(rows)), key=key)
    choice = {"chosen": cands[best], "criterion": CHOICE_CRITERIA[criterion],
              "probe_epochs": int(cfg["choice_epochs"]), "n_scans": len(subset), "probe_minutes": minutes,
              "candidates": rows}
    write_json_atomic(root / "choice.json", choice, indent=1, default=float)
    _log(f"chosen translator: {cands[best]}")
    return choice


def _scan_files(folder, limit: int | None) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--exp {folder}: no such folder of scans")
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in (".npz", ".sxm", ".gwy", ".tif", ".tiff") and p.is_file())
    if limit:
        files = files[: int(limit)]
    if not files:
        raise ValueError(f"{folder}: no scans (.npz, .sxm, .gwy, .tif) to predict on")
    return files


def read_scans(folder, limit: int | None = None) -> tuple[list[Path], list]:
    """(files, stacks) of the scans in ``folder`` (.npz, .sxm, .gwy, .tif), sorted by name,
    at most ``limit``; raises if the folder is missing or holds none."""
    from ..io import read_stack

    files = _scan_files(folder, limit)
    return files, [read_stack(p) for p in files]


def _fmt_ci(ci) -> str:
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def write_report(results: dict, out: Path) -> dict:
    """results.csv, results.md and order_histograms.png from the results dict."""
    out = Path(out)
    rows = []
    for r, res in results["regimes"].items():
        o, lab, clean = res["order"], res["labelled_translated"], res["labelled_clean"]
        rows.append({
            "regime": r,
            "W1_S_k": o["wasserstein_S_k"], "W1_S_g": o["wasserstein_S_g"], "EMD_2d_joint": o["emd_2d"],
            "W1_S_k_ci_low": o["wasserstein_S_k_ci95"][0], "W1_S_k_ci_high": o["wasserstein_S_k_ci95"][1],
            "W1_S_g_ci_low": o["wasserstein_S_g_ci95"][0], "W1_S_g_ci_high": o["wasserstein_S_g_ci95"][1],
            "n_O_total": res["atoms"]["n_O_total"], "n_O_per_scan": res["atoms"]["n_O_per_scan"],
            "n_H_per_scan": res["atoms"]["n_H_per_scan"], "n_centres": o["n_samples"],
            "O_f1_translated": lab["O"]["f1"], "O_precision_translated": lab["O"]["precision"],
            "O_recall_translated": lab["O"]["recall"], "O_rmse_A_translated": lab["O"]["rmse_A"],
            "H_f1_translated": lab["H"]["f1"], "O_f1_clean": clean["O"]["f1"], "O_rmse_A_clean": clean["O"]["rmse_A"],
        })
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for row in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    cfg = results["config"]
    md = ["# Four training regimes on experiment-like scans", "",
          f"Command: `{results['command']}`  ", f"Run: {results['date']}, {results['timing']['total_minutes']:.0f} min "
          f"on {results['machine']} (training {results['timing']['train_minutes']:.0f} min).", "",
          f"Same model (U-Net heatmaps), {cfg['epochs']} epochs, batch {cfg['batch_size']}, lr {cfg['lr']}, seed "
          f"{cfg['seed']} for every regime"
          + (f", each started from `{cfg['train_options']['init_from']}`" if cfg["train_options"].get("init_from") else
             ", from scratch")
          + "; final-epoch weights. Hybrid mix: "
          + ", ".join(f"{k} {v:.2f}" for k, v in cfg["mix"].items()) + ".", "",
          f"## Structures predicted on {results['n_exp_scans']} experiment-like scans vs theory", "",
          f"Wasserstein-1 distances of the predictions' S_k and S_g to the theoretical distribution "
          f"({results['reference']}); 95 % bootstrap intervals over scans; Δ vs pure is the paired bootstrap "
          "interval of W(regime) − W(pure) (negative = closer to theory).", "",
          "| regime | W1(S_k) | W1(S_g) | joint EMD | Δ W1(S_g) vs pure | O found (per scan) | H per scan | centres |",
          "|---|---|---|---|---|---|---|---|"]
    for r, res in results["regimes"].items():
        o, a = res["order"], res["atoms"]
        delta = _fmt_ci(o["delta_vs_pure_S_g_ci95"]) if "delta_vs_pure_S_g_ci95" in o else "—"
        md.append(f"| {r} | {o['wasserstein_S_k']:.4f} {_fmt_ci(o['wasserstein_S_k_ci95'])} | "
                  f"{o['wasserstein_S_g']:.4f} {_fmt_ci(o['wasserstein_S_g_ci95'])} | {o['emd_2d']:.3f} | {delta} | "
                  f"{a['n_O_total']} ({a['n_O_per_scan']:.1f}) | {a['n_H_per_scan']:.1f} | {o['n_samples']} |")
    md += ["", f"## Labelled accuracy on {results['n_heldout']} held-out simulated stacks", "",
           "Forward-translated by the shipped translator (experiment-like images of known structures), and "
           "untranslated (clean). Match within 0.5 Å laterally and 0.5 Å in height.", "",
           "| regime | O P / R / F1 (translated) | O RMSE Å | H F1 | O F1 (clean) | O RMSE Å (clean) |",
           "|---|---|---|---|---|---|"]
    for r, res in results["regimes"].items():
        lab, clean = res["labelled_translated"], res["labelled_clean"]
        md.append(f"| {r} | {lab['O']['precision']:.3f} / {lab['O']['recall']:.3f} / **{lab['O']['f1']:.3f}** | "
                  f"{lab['O']['rmse_A']:.3f} | {lab['H']['f1']:.3f} | {clean['O']['f1']:.3f} | "
                  f"{clean['O']['rmse_A']:.3f} |")
    if all("labelled_scans" in res for res in results["regimes"].values()):
        md += ["", f"## Labelled experiment-style scans ({cfg['labelled']})", "",
               "Top-layer O F1 (napari_afm_style.labelled_scans: 0.5 Å lateral, recall over the top 1.2 Å, "
               "lower-layer O forgiven), mean over scans with its 95 % bootstrap interval, and the paired "
               "95 % interval of the difference to pure and to handcrafted (positive: better).", "",
               "| regime | O F1 [95 %] | Δ vs pure | Δ vs handcrafted |", "|---|---|---|---|"]
        for r, res in results["regimes"].items():
            ls = res["labelled_scans"]
            dp, dh = ls.get("delta_vs_pure_ci95"), ls.get("delta_vs_handcrafted_ci95")
            md.append(f"| {r} | **{ls['mean_f1']:.3f}** {_fmt_ci(ls['ci95'])} | "
                      f"{_fmt_ci(dp) if dp else '—'} | {_fmt_ci(dh) if dh else '—'} |")
    choice = results.get("translator_choice") or {}
    if choice.get("candidates"):
        md += ["", "## Forward translator, chosen without labels", "",
               f"Criterion: {choice['criterion']} ({choice['probe_epochs']} epoch(s) per probe, "
               f"{choice['n_scans']} scans). Chosen: `{Path(choice['chosen']).name}`.", "",
               "| translator | O-map entropy (nats/voxel) | mean O confidence | re-simulation NCC |",
               "|---|---|---|---|"]
        for row in choice["candidates"]:
            ncc = f"{row['resim_ncc']:.3f}" if "resim_ncc" in row else "—"
            md.append(f"| {Path(row['translator']).name} | {row['entropy']:.5f} | {row['mean_confidence']:.3f} | {ncc} |")
    md += ["", "![S_k and S_g of the predictions per regime against theory](order_histograms.png)", ""]
    write_text_atomic(out / "results.md", "\n".join(md) + "\n")
    _figure(results, out / "order_histograms.png")
    return {"csv": str(out / "results.csv"), "md": str(out / "results.md"), "figure": str(out / "order_histograms.png")}


def _figure(results: dict, path: Path) -> None:
    # a bare Figure (Agg when saved), as the demo's: the caller's pyplot backend stays as it is
    from matplotlib.figure import Figure

    from ..order import histogram_data

    regimes = list(results["regimes"])
    fig = Figure(figsize=(3.2 * len(regimes), 5.2))
    axes = fig.subplots(2, len(regimes), squeeze=False)
    for j, r in enumerate(regimes):
        o = results["regimes"][r]["order"]
        h = histogram_data(np.asarray(o["S_k_values"]), np.asarray(o["S_g_values"]), results["reference"], bins=30)
        for i, key in enumerate(("S_k", "S_g")):
            ax = axes[i, j]
            d = h[key]
            width = np.diff(d["edges"])
            ax.bar(d["centres"], d["reference"], width=width, color="0.75", label="theory")
            ax.step(d["centres"], d["prediction"], where="mid", color="C0" if key == "S_k" else "C3",
                    label="predicted")
            w = o[f"wasserstein_{key}"]
            ax.set_title(f"{r}: W1({key}) = {w:.4f}", fontsize=9)
            ax.set_xlabel(key)
            if j == 0:
                ax.set_ylabel("density")
                ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def run_experiment(config: ExperimentConfig | dict) -> dict:
    """Run (or resume) the whole experiment; returns the results dict (also written)."""
    import platform

    import torch

    from .evaluation import accuracy_on_shards
    from ..order import distribution_distances
    from ..predict import load_model, predict
    from .train_predictor import export_model
    from ..translate import translate_shards

    cfg = config if isinstance(config, ExperimentConfig) else ExperimentConfig(**config)
    command = ("afm-style " + " ".join(shlex.quote(a) for a in sys.argv[1:])
               if sys.argv[1:2] == ["experiment"] else "napari_afm_style.experiment.run_experiment()")
    t_start = time.time()
    # check every input before an hour of training, not after it
    from .dataset import ShardSet

    for key in ("sim", "heldout"):
        ShardSet(list(cfg[key]) if isinstance(cfg[key], (list, tuple)) else cfg[key])  # raises naming the folder
    _scan_files(cfg["exp"], cfg["max_exp_scans"])
    out = Path(cfg["out"])
    out.mkdir(parents=True, exist_ok=True)
    timing = {}
    # 0. several translators: choose one on the user's scans, without labels
    t0 = time.time()
    choice = choose_translator(cfg, read_scans(cfg["exp"], cfg["max_exp_scans"])[1]
                               if len(translator_candidates(cfg)) > 1 else [])
    translator = choice["chosen"]
    timing["choice_minutes"] = (time.time() - t0) / 60
    # 1. forward-translated training and held-out sets
    # pre-translated training shards only when given; otherwise the style kinds are
    # translated on the fly at a strength drawn per sample
    style_dir = Path(cfg["style"]) if cfg["style"] else None
    heldout_style = Path(cfg["heldout_style"]) if cfg["heldout_style"] else out / "heldout_style"
    t0 = time.time()
    if not cfg["heldout_style"]:
        _log(f"forward translation {cfg['heldout']} → {heldout_style}")
        translate_shards(cfg["heldout"], heldout_style, "forward", cfg["strength"], translator,
                         progress=cfg["progress"])
    timing["translate_minutes"] = (time.time() - t0) / 60
    labelled = None
    if cfg["labelled"]:
        from .labelled_scans import read_labelled_scans

        labelled = read_labelled_scans(cfg["labelled"])
    # 2. training
    tr = train_regimes(cfg, style_dir, translator)
    timing["train_minutes"] = tr["train_minutes"]
    # 3. evaluation with each regime's final weights
    t0 = time.time()
    from .._device import choose_threads

    # two torch threads on a machine whose cores are taken run many times slower than one
    threads = choose_threads(None)
    torch.set_num_threads(threads)
    files, scans = read_scans(cfg["exp"], cfg["max_exp_scans"])
    models_dir = out / "models"
    models_dir.mkdir(exist_ok=True)
    results = {"regimes": {}}
    orders = {}
    # pure first: the other regimes' paired differences are taken against it
    for regime in sorted(cfg["regimes"], key=lambda r: r != "pure"):
        weights = export_model(out / "runs" / regime / "last.pt", models_dir / f"predictor_{regime}.pt",
                               name=regime, command=f"{command}  # regime {regime}, final epoch")
        _log(f"{regime}: predicting {len(scans)} experiment-like scans")
        model = load_model(str(weights))
        preds = [predict(s, model=model) for s in scans]
        o = order_on_scans(preds)
        orders[regime] = o
        d = distribution_distances(o["S_k"], o["S_g"], "theory", seed=int(cfg["seed"]))
        d.update(bootstrap_order_distances(o, len(scans), "theory", int(cfg["bootstrap"]), int(cfg["seed"]),
                                           orders.get("pure") if regime != "pure" else None))
        d["S_k_values"], d["S_g_values"] = o["S_k"].tolist(), o["S_g"].tolist()
        atoms = {"n_O_total": int(o["n_O"].sum()), "n_O_per_scan": float(o["n_O"].mean()),
                 "n_H_per_scan": float(o["n_H"].mean()), "n_scans_without_centres": int(
                     len(scans) - len(np.unique(o["scan_of"])))}
        _log(f"{regime}: W1(S_k) {d['wasserstein_S_k']:.4f}, W1(S_g) {d['wasserstein_S_g']:.4f}, "
             f"{atoms['n_O_total']} O; labelled accuracy on {cfg['heldout']} (translated and clean)")
        lab = accuracy_on_shards(model, heldout_style, max_samples=cfg["max_heldout"])
        clean = accuracy_on_shards(model, cfg["heldout"], max_samples=cfg["max_heldout"])
        results["regimes"][regime] = {"weights": str(weights), "order": d, "atoms": atoms,
                                      "labelled_translated": lab["elements"], "labelled_clean": clean["elements"],
                                      "threshold": lab["threshold"]}
        if labelled is not None:
            from .labelled_scans import score_labelled_scans

            results["regimes"][regime]["labelled_scans"] = score_labelled_scans(model, labelled, seed=int(cfg["seed"]))
            _log(f"{regime}: labelled experiment-style scans, mean O F1 "
                 f"{results['regimes'][regime]['labelled_scans']['mean_f1']:.3f}")
    if labelled is not None:
        _paired_labelled(results["regimes"], int(cfg["bootstrap"]), int(cfg["seed"]))
    n_heldout = clean["n_samples"]
    timing["evaluate_minutes"] = (time.time() - t0) / 60
    timing["total_minutes"] = (time.time() - t_start) / 60
    results.update({
        "config": {k: v for k, v in cfg.items() if k != "progress"},
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {_cpu_count()} CPU cores, "
        f"torch {torch.__version__} ({threads} threads for evaluation)",
        "timing": timing, "n_exp_scans": len(scans), "exp_files": [p.name for p in files],
        "translator_choice": choice,
        "n_heldout": n_heldout, "reference": "theory",
    })
    write_json_atomic(out / "results.json", results, indent=1, default=float)
    results["files"] = write_report(results, out)
    _log(f"done in {timing['total_minutes']:.1f} min: {results['files']['md']}")
    return results


def paired_difference_ci(a, b, n_boot: int = 2000, seed: int = 0) -> list:
    """95 % bootstrap interval (resampling scans) of mean(a) − mean(b) for per-scan scores
    of two models on the same scans.

    >>> lo, hi = paired_difference_ci([1.0, 0.9, 0.8], [1.0, 0.9, 0.8])
    >>> (lo, hi)
    (0.0, 0.0)
    """
    from .labelled_scans import bootstrap_mean_ci

    return bootstrap_mean_ci(np.asarray(a, float) - np.asarray(b, float), n_boot, seed)


def _paired_labelled(regimes: dict, n_boot: int, seed: int) -> None:
    for base in ("pure", "handcrafted"):
        if base not in regimes:
            continue
        ref = regimes[base]["labelled_scans"]["per_scan"]
        for r, res in regimes.items():
            if r != base:
                res["labelled_scans"][f"delta_vs_{base}_ci95"] = paired_difference_ci(
                    res["labelled_scans"]["per_scan"], ref, n_boot, seed)


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1
