"""Choosing a style translator on held-out stacks: a frozen domain distance (FID, MMD or
spectrum), the distances along the strength path, cycle errors, and the ranking of the
loss-weight grid."""

from __future__ import annotations

import numpy as np
import torch

from ..models.cyclegan import CycleGAN
from .._mmd import gaussian_mmd2, median_bandwidth
from ..resample import normalise_slices

__all__ = ["DomainDistance", "choose_metric", "evaluate_translator", "grid_point_score", "CONTENT_SIGMA_PX"]


class DomainDistance:
    """A fixed distance between sets of normalised canonical stacks.

    ``kind="fid"``: FID on the feature network (``feature_net`` path or loaded net).
    ``kind="mmd"``: unbiased MMD² on :func:`~napari_afm_style.metrics.style_descriptor`,
    with the standardisation and kernel bandwidth frozen on the untranslated reference
    sets, so values along a strength sweep or across runs are comparable.
    ``kind="spectrum"``: :func:`~napari_afm_style.metrics.spectrum_distance`.
    """

    def __init__(self, kind: str, reference_a: list, reference_b: list, feature_net=None):
        from . import metrics

        self.kind = kind
        self._m = metrics
        if kind == "fid":
            from ..models.feature_net import FeatureNet, load_feature_net

            self.net = feature_net if isinstance(feature_net, FeatureNet) else load_feature_net(feature_net)
            self.description = f"FID (feature net {self.net.info.get('path', 'given')})"
        elif kind == "mmd":
            pooled = np.concatenate([metrics.style_descriptor(reference_a), metrics.style_descriptor(reference_b)])
            self.mu = pooled.mean(0)
            sd = pooled.std(0)
            self.sd = np.where(sd > 1e-12, sd, 1.0)
            self.bandwidth = median_bandwidth((pooled - self.mu) / self.sd)
            self.description = "MMD² (style descriptor, frozen bandwidth)"
        elif kind == "spectrum":
            self.description = "spectrum distance (decades)"
        else:
            raise ValueError(f"unknown domain distance {kind!r}; use fid, mmd or spectrum")

    def features(self, arrays: list):
        if self.kind == "fid":
            return self.net.features(arrays)
        if self.kind == "mmd":
            return (self._m.style_descriptor(arrays) - self.mu) / self.sd
        return arrays

    def from_features(self, fa, fb) -> float:
        m = self._m
        if self.kind == "fid":
            return m.frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
        if self.kind == "mmd":
            return gaussian_mmd2(fa, fb, self.bandwidth)
        return m.spectrum_distance(list(fa), list(fb))

    def __call__(self, a: list, b: list) -> float:
        return self.from_features(self.features(a), self.features(b))


def choose_metric(kind: str, feature_net=None) -> str:
    """``auto`` → ``fid`` if feature-network weights can be loaded, else ``mmd``."""
    if kind != "auto":
        return kind
    from ..models.feature_net import FeatureNetNotAvailable, load_feature_net

    try:
        load_feature_net(feature_net)
        return "fid"
    except FeatureNetNotAvailable:
        return "mmd"


@torch.no_grad()
def _residuals(gen, arrays: list, device, batch: int = 8) -> list:
    gen.eval()
    out = []
    for s in range(0, len(arrays), batch):
        chunk = arrays[s:s + batch]
        if len({a.shape for a in chunk}) == 1:
            r = gen(torch.from_numpy(np.stack(chunk)).to(device)).cpu().numpy()
            out.extend(list(r))
        else:
            out.extend(gen(torch.from_numpy(a[None]).to(device))[0].cpu().numpy() for a in chunk)
    gen.train()
    return out


def evaluate_translator(model: CycleGAN, sim_held: list, exp_held: list, distance: DomainDistance,
                        strengths=None, device="cpu", tolerance: float = 0.02) -> dict:
    """Held-out domain distances along the strength path, and cycle errors.

    Returns a dict with ``strengths``, ``forward_distance`` (d(forward_α(sim), exp)),
    ``backward_distance`` (d(backward_α(exp), sim)), ``baseline`` (d(sim, exp)),
    ``recommended_strength`` per direction (smallest α within ``tolerance`` × the closable
    gap of the minimum), ``remaining_gap`` at that α (fraction of the baseline), and
    ``cycle_error`` (mean |F(G(sim)) − sim| and |G(F(exp)) − exp| at α = 1, in units of
    the per-slice standard deviation).
    """
    strengths = np.round(np.linspace(0, 1, 11), 3) if strengths is None else np.asarray(strengths, float)
    device = torch.device(device)
    G, Fb = model.forward_gen, model.backward_gen
    r_f = _residuals(G, sim_held, device)
    r_b = _residuals(Fb, exp_held, device)
    f_sim, f_exp = distance.features(sim_held), distance.features(exp_held)
    baseline = distance.from_features(f_sim, f_exp)
    d_fwd, d_bwd = [], []
    for a in strengths:
        # re-normalised per slice, exactly as any consumer of the translated stack sees it
        fwd = [normalise_slices(s + a * r) for s, r in zip(sim_held, r_f)]
        bwd = [normalise_slices(e + a * r) for e, r in zip(exp_held, r_b)]
        d_fwd.append(distance.from_features(distance.features(fwd), f_exp))
        d_bwd.append(distance.from_features(distance.features(bwd), f_sim))
    rec, remaining = {}, {}
    for name, d in (("forward", np.array(d_fwd)), ("backward", np.array(d_bwd))):
        best = d.min()
        ok = np.flatnonzero(d <= best + tolerance * max(d[0] - best, 0.0))
        i = int(ok[0])
        rec[name] = float(strengths[i])
        remaining[name] = float(d[i] / baseline) if baseline > 0 else 0.0
    fwd1 = [s + r for s, r in zip(sim_held, r_f)]
    bwd1 = [e + r for e, r in zip(exp_held, r_b)]
    rec_sim = [f + r for f, r in zip(fwd1, _residuals(Fb, fwd1, device))]
    rec_exp = [b + r for b, r in zip(bwd1, _residuals(G, bwd1, device))]
    cyc = {"sim": _l1(rec_sim, sim_held), "exp": _l1(rec_exp, exp_held)}
    cyc_content = {"sim": _l1(rec_sim, sim_held, CONTENT_SIGMA_PX), "exp": _l1(rec_exp, exp_held, CONTENT_SIGMA_PX)}
    return {"metric": distance.description, "strengths": strengths.tolist(),
            "baseline": float(baseline), "forward_distance": [float(v) for v in d_fwd],
            "backward_distance": [float(v) for v in d_bwd], "recommended_strength": rec,
            "remaining_gap": remaining, "cycle_error": cyc, "content_cycle_error": cyc_content,
            "n_heldout": {"sim": len(sim_held), "exp": len(exp_held)}}


#: Gaussian σ (canonical px, 0.25 Å) of the low-pass that separates content (molecular
#: contrast, features ≥ 0.5 Å) from pixel noise in the content cycle error.
CONTENT_SIGMA_PX = 2.0


def _l1(a: list, b: list, sigma_px: float = 0.0) -> float:
    """Mean |a − b| over stacks (σ units), optionally after a lateral Gaussian low-pass."""
    from scipy import ndimage

    vals = []
    for x, y in zip(a, b):
        d = np.asarray(x, np.float64) - np.asarray(y, np.float64)
        if sigma_px > 0:
            d = ndimage.gaussian_filter(d, (0, sigma_px, sigma_px), mode="nearest")
        vals.append(np.mean(np.abs(d)))
    return float(np.mean(vals))


def grid_point_score(ev: dict, max_cycle_error: float) -> tuple:
    """Sort key of a grid point: feasible first (content cycle error ≤ the limit), then
    the mean remaining gap, then the content cycle error.

    The *content* cycle error (after a 0.25 Å low-pass) is used because the exp → sim →
    exp cycle cannot restore the experimental noise realisation that the backward
    translation rightly removes; only lost or invented structure should disqualify."""
    content = max(ev["content_cycle_error"].values())
    return (0 if content <= max_cycle_error else 1, float(np.mean(list(ev["remaining_gap"].values()))), content)
