"""The two engines: :func:`simulate` (the fast path: the force field only over the volume
the probe visits, far atoms on a coarse grid) and :func:`simulate_straightforward` (the
plain ppafm call), with their checks and the metadata of the result."""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np

from ..stack import AFMStack
from .opencl import ENV, ENV_LOCK, afmulator, opencl_environment
from .parameters import SUBSTRATE_NUMBERS, EngineSettings, TipParameters, atoms_arrays
from .scan_plan import ScanPlan, box_lvec, distance_to_box, plan_scan

__all__ = ["simulate", "simulate_straightforward", "place_tip_over_prediction"]

def _configure(afm, plan: ScanPlan, tip: TipParameters, like: AFMStack, lvec: np.ndarray, ppa: float) -> None:
    from ppafm import common

    afm.iZPP = tip.probe_element
    afm.tipR0 = list(tip.r0_A)
    afm.f0Cantilever = like.f0_Hz
    afm.kCantilever = like.k_N_per_m
    afm.scanner.stiffness = np.array(tip.stiffness_vector(), dtype=np.float32) / -common.eVA_Nm
    qs, qzs = tip.point_charges()
    afm.setQs(qs, qzs)
    # setScanWindow also sets the Δf weights from f0 and k (Giessibl's formula, ppafm).
    afm.setScanWindow(plan.scan_window, plan.scan_dim, plan.df_steps)
    afm.setLvec(lvec, ppa)
    ff = afm.forcefield
    # as AFMulator.prepareFF: new device buffers when the grid size changed
    if (afm._old_nDim != ff.nDim).any() or ff.cl_FE is None:
        ff.tryReleaseBuffers()
        ff.prepareBuffers()
        afm._old_nDim = ff.nDim.copy()


def _ff_eval(ff, pos: np.ndarray, numbers: np.ndarray, charges: np.ndarray, probe: int) -> np.ndarray:
    """ppafm's Lennard-Jones + point-charge force field of some atoms on the grid of the
    ``ForceField_LJC`` ``ff`` (flat float32 array in the device layout: x fastest, then y,
    z, and the 4 components Fx, Fy, Fz, E)."""
    from ppafm import common

    n = int(np.prod(ff.nDim[:3]))
    if len(pos) == 0:
        return np.zeros(n * 4, dtype=np.float32)
    reas = common.getAtomsREA(probe, numbers, ENV["type_params"], alphaFac=-1.0)
    clj = common.REA2LJ(reas)
    # The kernel reads atoms in blocks of its work-group size (32) without a bounds check:
    # pad with atoms that add exactly zero (no charge, no Lennard-Jones, far away).
    n_pad = -(-len(pos) // _WORK_GROUP) * _WORK_GROUP
    atoms4 = np.zeros((n_pad, 4), dtype=np.float32)
    atoms4[:, :3] = 1.0e4
    atoms4[: len(pos), :3] = pos
    atoms4[: len(pos), 3] = charges
    clj_pad = np.zeros((n_pad, 2), dtype=np.float32)
    clj_pad[: len(pos)] = clj
    ff.prepareBuffers(atoms4, clj_pad)
    ff.nAtoms = np.int32(len(pos))
    out = np.empty(n * 4, dtype=np.float32)
    # zero charges add exactly zero to the electrostatic terms of this kernel
    ff.run_evalLJC_QZs_noPos(FE=out, bCopy=True, bFinish=True)
    return out


def _linear_weights(x_fine: np.ndarray, origin: float, step: float, n: int) -> np.ndarray:
    """Matrix (len(x_fine), n) of linear-interpolation weights from a grid origin + k·step."""
    u = (x_fine - origin) / step
    k = np.clip(np.floor(u).astype(int), 0, n - 2)
    w = u - k
    W = np.zeros((x_fine.size, n), dtype=np.float64)
    rows = np.arange(x_fine.size)
    W[rows, k] = 1 - w
    W[rows, k + 1] = w
    return W


def _far_field(lvec: np.ndarray, ndim: tuple, pos, numbers, charges, tip: TipParameters,
               far_points_per_A: float) -> np.ndarray:
    """Force field of far atoms on a coarse grid, interpolated (trilinear) onto the fine
    grid ``lvec``/``ndim``; flat float32 in the device layout."""
    from ppafm.ocl import field as FFcl

    ff = ENV.get("ff_far")
    if ff is None:
        ff = ENV["ff_far"] = FFcl.ForceField_LJC()
        ff.nDim = None
        ff.cl_FE = None
    h_fine = np.array([lvec[1, 0], lvec[2, 1], lvec[3, 2]]) / np.asarray(ndim)
    x_fine = [lvec[0, i] + h_fine[i] * np.arange(ndim[i]) for i in range(3)]
    hc = 1.0 / far_points_per_A
    clvec, n = box_lvec(np.array([x[0] for x in x_fine]), np.array([x[-1] for x in x_fine]), far_points_per_A)
    n = np.asarray(n)
    lo = clvec[0]
    old = None if ff.nDim is None else tuple(int(v) for v in ff.nDim[:3])
    ff.initSampling(clvec, nDim=[int(v) for v in n])
    if old != tuple(int(v) for v in n) or ff.cl_FE is None:
        if ff.cl_FE is not None:
            ff.cl_FE.release()
        ff.cl_FE = None
        ff.prepareBuffers()
    qs, qzs = tip.point_charges()
    ff.setQs(qs, qzs)
    coarse = _ff_eval(ff, pos, numbers, charges, tip.probe_element).reshape(n[2], n[1], n[0], 4)
    Wx, Wy, Wz = (_linear_weights(x_fine[i], lo[i], hc, n[i]) for i in range(3))
    fine = np.einsum("zk,yj,xi,kjid->zyxd", Wz, Wy, Wx, coarse.astype(np.float64), optimize=True)
    return fine.astype(np.float32).reshape(-1)


def _scan(afm, ff_flat: np.ndarray) -> np.ndarray:
    """Relaxed scan + Δf conversion; returns ppafm's (nx, ny, n_fine) array."""
    import pyopencl as cl

    ff = afm.forcefield
    cl.enqueue_copy(ff.queue, ff.cl_FE, ff_flat)
    afm.prepareScanner()
    return afm.evalAFM()


def _probe_excursion(afm, plan: ScanPlan, lvec: np.ndarray, ndim: tuple) -> tuple[bool, np.ndarray]:
    """Whether the relaxed probe particle stayed inside the force-field grid, one cell
    away from its edges (ppafm's texture wraps around there), and how far (Å, per axis)
    it went beyond the unrelaxed probe volume."""
    paths = afm.scanner.downloadPaths().reshape(-1, 3)
    pmin, pmax = paths.min(axis=0), paths.max(axis=0)
    h = np.array([lvec[1, 0], lvec[2, 1], lvec[3, 2]]) / np.asarray(ndim)
    lo = lvec[0] + h
    hi = lvec[0] + (np.asarray(ndim) - 2) * h
    inside = bool(np.all(pmin >= lo) and np.all(pmax <= hi))
    beyond = np.maximum(np.maximum(plan.pp_lo - pmin, pmax - plan.pp_hi), 0.0)
    return inside, beyond


_WORK_GROUP = 32
_MAX_BOX_ATTEMPTS = 3


def _check_like(like) -> AFMStack:
    if not isinstance(like, AFMStack):
        raise ValueError(f"like must be an AFMStack (the scan to reproduce), got {type(like).__name__}")
    return like


def _resolve_height_offset(like: AFMStack, pos: np.ndarray, numbers: np.ndarray, height_offset_A):
    """Offset (Å) from ``like``'s height frame to the geometry's frame, and how it was chosen."""
    if height_offset_A is not None:
        off = float(height_offset_A)
        if not np.isfinite(off):
            raise ValueError(f"height_offset_A must be finite, got {height_offset_A!r}")
        return off, f"given: {off:+.3f} Å"
    if like.heights_are_absolute:
        return 0.0, "absolute (geometry frame)"
    top = _top_adsorbate_z(pos, numbers, like)
    off = top + 3.0 - float(like.heights_A.min())
    return off, (
        f"like's heights are relative ({like.height_frame}); closest slice placed 3.0 Å above "
        f"the topmost atom under the window (z = {top:.3f} Å): offset {off:+.3f} Å"
    )


def place_tip_over_prediction(atoms, like: AFMStack, min_confidence: float = 0.5, gap_A: float = 3.0,
                              atoms_height_frame: str | None = None) -> dict:
    """Height offset for re-simulating a predicted structure on a scan with relative heights.

    Robust to a stray, low-confidence atom above the rest: only atoms with confidence ≥
    ``min_confidence`` (``atoms.arrays["confidence"]``; all atoms when there is none), not
    substrate, under the window, are considered. When the atoms were predicted from a stack
    in ``like``'s own height frame (``atoms_height_frame == like.height_frame``, as
    :func:`napari_afm_style.predict.predict` records in ``atoms.info["height_frame"]``), their
    z already is in that frame: offset 0, unless that would put the closest slice less than
    ``gap_A − 1`` Å above the topmost confident atom. Otherwise the closest slice is placed
    ``gap_A`` above it. Absolute heights: offset 0.

    Returns a dict: ``height_offset_A`` (for :func:`simulate`), ``set_by`` (indices of the
    atoms that set it), ``confident`` (bool mask) and ``note`` (one line saying how).

    >>> from ase import Atoms
    >>> a = Atoms("OOH", positions=[[0, 0, -3.3], [1, 0, -3.2], [0, 1, -2.4]])
    >>> a.arrays["confidence"] = np.array([0.9, 0.8, 0.4])
    >>> like = AFMStack(np.zeros((2, 4, 4)), heights_A=[0.1, 0.0], pixel_size_A=0.5, origin_A=(0, 0),
    ...                 metadata={"height_frame": "relative"})
    >>> p = place_tip_over_prediction(a, like)
    >>> round(p["height_offset_A"], 2), p["set_by"]
    (-0.2, [1])
    """
    pos, numbers, _, _ = atoms_arrays(atoms)
    n = len(pos)
    conf = np.asarray(atoms.arrays["confidence"], dtype=float) if "confidence" in atoms.arrays else np.ones(n)
    if like.heights_are_absolute:
        return {"height_offset_A": 0.0, "set_by": [], "confident": conf >= min_confidence,
                "note": "absolute heights (the geometry's frame)"}
    ads = ~np.isin(numbers, SUBSTRATE_NUMBERS)
    inside = ((pos[:, 0] >= like.x_A[0] - 1) & (pos[:, 0] <= like.x_A[-1] + 1)
              & (pos[:, 1] >= like.y_A[0] - 1) & (pos[:, 1] <= like.y_A[-1] + 1))
    confident = conf >= min_confidence
    for sel in (ads & inside & confident, ads & inside, ads, np.ones(n, bool)):
        if sel.any():
            break
    top_i = int(np.flatnonzero(sel)[np.argmax(pos[sel, 2])])
    top = float(pos[top_i, 2])
    closest = float(like.heights_A.min())
    who = f"{atoms.get_chemical_symbols()[top_i]} #{top_i} (z = {top:.2f} Å, confidence {conf[top_i]:.2f})"
    if atoms_height_frame is not None and atoms_height_frame == like.height_frame and closest - top >= gap_A - 1.0:
        return {"height_offset_A": 0.0, "set_by": [], "confident": confident,
                "note": f"the stack's own height frame (atoms predicted from it); closest slice "
                        f"{closest - top:.2f} Å above the topmost confident atom, {who}"}
    off = top + gap_A - closest
    return {"height_offset_A": off, "set_by": [top_i], "confident": confident,
            "note": f"closest slice {gap_A:.1f} Å above the topmost atom of confidence ≥ "
                    f"{min_confidence:.2f}, {who}: offset {off:+.2f} Å"}


def _top_adsorbate_z(pos, numbers, like: AFMStack | None = None) -> float:
    ads = ~np.isin(numbers, SUBSTRATE_NUMBERS)
    sel = ads if ads.any() else np.ones_like(ads)
    if like is not None:
        inside = (
            (pos[:, 0] >= like.x_A[0] - 1) & (pos[:, 0] <= like.x_A[-1] + 1)
            & (pos[:, 1] >= like.y_A[0] - 1) & (pos[:, 1] <= like.y_A[-1] + 1)
        )
        if (sel & inside).any():
            sel = sel & inside
    return float(pos[sel, 2].max())


def _validate_geometry_vs_scan(pos, numbers, plan: ScanPlan, heights_geo: np.ndarray) -> None:
    d = distance_to_box(pos, plan.pp_lo, plan.pp_hi)
    if d.min() > 8.0:
        raise ValueError(
            f"the scan window of like (x {plan.pp_lo[0]:.2f}…{plan.pp_hi[0]:.2f} Å, "
            f"y {plan.pp_lo[1]:.2f}…{plan.pp_hi[1]:.2f} Å, heights {heights_geo[-1]:.2f}…"
            f"{heights_geo[0]:.2f} Å) is far from the atoms (nearest atom {d.min():.1f} Å away): "
            "the image would be empty. Check that the geometry and the stack share a frame "
            "(origin_A, heights_A), or give a height offset."
        )
    # atoms under the window, or within an atomic radius of its edge
    inside = (
        (pos[:, 0] >= plan.pp_lo[0] - 1.0) & (pos[:, 0] <= plan.pp_hi[0] + 1.0)
        & (pos[:, 1] >= plan.pp_lo[1] - 1.0) & (pos[:, 1] <= plan.pp_hi[1] + 1.0)
    )
    if inside.any():
        top = float(pos[inside, 2].max())
        if plan.pp_lo[2] < top + 0.5:
            raise ValueError(
                f"the closest tip height ({heights_geo[-1]:.2f} Å, lower turning point "
                f"{plan.pp_lo[2]:.2f} Å) reaches into the atoms under the window (topmost at "
                f"z = {top:.2f} Å): the probe would crash. Put the closest height at least "
                "~2 Å above the topmost atom (or correct the height offset)."
            )


def simulate(atoms, like: AFMStack, tip: TipParameters | None = None, *,
             settings: EngineSettings | None = None, height_offset_A: float | None = None) -> AFMStack:
    """Simulate a CO-tip Δf stack of ``atoms`` on exactly the scan of ``like``.

    Parameters
    ----------
    atoms : ase.Atoms
        Geometry in Å (same frame as ``like``). Charges come from
        ``atoms.get_initial_charges()``; if all are zero, ``DEFAULT_CHARGES_E`` is used
        (water point charges O −0.8 e, H +0.4 e; other elements neutral).
    like : AFMStack
        The scan to reproduce: heights, pixel size, origin, shape, amplitude, f0 and k are
        copied; its data is not used.
    tip : TipParameters, optional
        Probe parameters (default: ppafm's CO tip).
    settings : EngineSettings, optional
        Force-field evaluation (default: the fast path, see the module docstring).
    height_offset_A : float, optional
        Added to ``like.heights_A`` to get z in the geometry's frame. Default 0 for
        absolute heights; for relative heights the closest slice is placed 3 Å above the
        topmost atom under the window (recorded in the metadata).

    Returns
    -------
    AFMStack
        Δf in Hz (index 0 farthest) with ``like``'s geometry; the metadata records the tip,
        the engine settings, the ppafm scan window and timings.

    Raises
    ------
    ValueError
        Empty geometry, NaN positions, unknown elements, or a scan far from the atoms or
        reaching into them.
    """
    tip = TipParameters() if tip is None else tip
    if not isinstance(tip, TipParameters):
        raise ValueError(f"tip must be a TipParameters, got {type(tip).__name__}")
    settings = EngineSettings() if settings is None else settings
    like = _check_like(like)
    pos, numbers, charges, charge_source = atoms_arrays(atoms)
    offset, offset_note = _resolve_height_offset(like, pos, numbers, height_offset_A)
    plan = plan_scan(like, tip, offset, settings.max_scan_step_A)
    heights_geo = like.heights_A + offset
    _validate_geometry_vs_scan(pos, numbers, plan, heights_geo)

    t0 = time.perf_counter()
    opencl_environment()
    ppa = float(settings.points_per_A)
    pads = np.array([settings.lateral_pad_A, settings.lateral_pad_A, settings.z_pad_A])
    for attempt in range(_MAX_BOX_ATTEMPTS):
        lvec, ndim = _grid_box(plan, settings, pos, pads)
        if settings.near_cutoff_A is None:
            near = np.ones(len(pos), dtype=bool)
        else:
            # distance to the probe-particle volume grown by the one cell it interpolates in
            grow = 1.0 / ppa
            near = distance_to_box(pos, plan.pp_lo - grow, plan.pp_hi + grow) < float(settings.near_cutoff_A)
        with ENV_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            afm = afmulator()
            _configure(afm, plan, tip, like, lvec, ppa)
            t1 = time.perf_counter()
            ff_flat = _ff_eval(afm.forcefield, pos[near], numbers[near], charges[near], tip.probe_element)
            t2 = time.perf_counter()
            if not near.all():
                ff_flat += _far_field(lvec, ndim, pos[~near], numbers[~near], charges[~near], tip,
                                      settings.far_points_per_A)
            t3 = time.perf_counter()
            X = _scan(afm, ff_flat)
            inside, beyond = _probe_excursion(afm, plan, lvec, ndim)
            t4 = time.perf_counter()
        if inside or settings.box != "scan" or attempt == _MAX_BOX_ATTEMPTS - 1:
            break
        # The relaxed probe left the padded grid (a soft tip bent far at close range): redo
        # with pads that hold the excursion seen, plus margin (it may reach further once the
        # field beyond the old edge is there).
        pads = np.maximum(pads + 0.5, beyond + 2.0 / ppa + 0.5)
    timings = {"setup_s": t1 - t0, "near_field_s": t2 - t1, "far_field_s": t3 - t2, "scan_s": t4 - t3,
               "total_s": t4 - t0}
    data = _pick_slices(X, plan)
    return _result(like, data, tip, settings, plan, lvec, ndim, charge_source, offset, offset_note,
                   n_near=int(near.sum()), n_total=len(pos), timings=timings,
                   extra={"probe_inside_grid": inside, "grid_pads_A": pads.tolist(), "box_attempts": attempt + 1})


def _grid_box(plan: ScanPlan, settings: EngineSettings, pos: np.ndarray, pads: np.ndarray):
    if settings.box == "scan":
        return box_lvec(plan.pp_lo - pads, plan.pp_hi + pads, float(settings.points_per_A))
    lo = np.minimum(pos.min(axis=0), plan.pp_lo) - 3.0
    hi = np.maximum(pos.max(axis=0), plan.pp_hi) + 3.0
    return box_lvec(lo, hi, float(settings.points_per_A))


def simulate_straightforward(atoms, like: AFMStack, tip: TipParameters | None = None, *,
                             height_offset_A: float | None = None) -> AFMStack:
    """The plain ppafm call for the same scan: a fresh ``AFMulator`` at 10 points/Å over a
    box covering the whole structure, all atoms, ``AFMulator.__call__``. Slow; kept to
    verify :func:`simulate` and for the benchmark."""
    from ppafm.ocl.AFMulator import AFMulator

    tip = TipParameters() if tip is None else tip
    like = _check_like(like)
    settings = EngineSettings.straightforward()
    pos, numbers, charges, charge_source = atoms_arrays(atoms)
    offset, offset_note = _resolve_height_offset(like, pos, numbers, height_offset_A)
    plan = plan_scan(like, tip, offset, settings.max_scan_step_A)
    _validate_geometry_vs_scan(pos, numbers, plan, like.heights_A + offset)
    t0 = time.perf_counter()
    opencl_environment()
    lvec, ndim = _grid_box(plan, settings, pos, np.zeros(3))
    qs, qzs = tip.point_charges()
    with ENV_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        afm = AFMulator(
            pixPerAngstrome=int(settings.points_per_A),
            lvec=lvec,
            scan_dim=plan.scan_dim,
            scan_window=plan.scan_window,
            iZPP=tip.probe_element,
            QZs=qzs,
            Qs=qs,
            rho=None,
            df_steps=plan.df_steps,
            tipR0=list(tip.r0_A),
            tipStiffness=tip.stiffness_vector(),
            npbc=(0, 0, 0),
            f0Cantilever=like.f0_Hz,
            kCantilever=like.k_N_per_m,
        )
        X = afm(pos, numbers, charges)
        del afm
    timings = {"total_s": time.perf_counter() - t0}
    data = _pick_slices(X, plan)
    return _result(like, data, tip, settings, plan, lvec, ndim, charge_source, offset, offset_note,
                   n_near=len(pos), n_total=len(pos), timings=timings,
                   extra={"engine_call": "ppafm AFMulator(...)(xyzs, Zs, qs)"})


def _pick_slices(X: np.ndarray, plan: ScanPlan) -> np.ndarray:
    fine = np.asarray(X, dtype=np.float64).transpose(2, 1, 0)  # (n_fine, ny, nx), 0 = top
    out = np.empty((len(plan.slices),) + fine.shape[1:], dtype=np.float32)
    for i, (j0, j1, w) in enumerate(plan.slices):
        out[i] = fine[j0] if w == 0 else (1 - w) * fine[j0] + w * fine[j1]
    return out


def _result(like, data, tip, settings, plan, lvec, ndim, charge_source, offset, offset_note, *,
            n_near, n_total, timings, extra) -> AFMStack:
    import ppafm

    meta = copy.deepcopy(like.metadata)
    history = meta.pop("history", [])
    for key in ("instrument", "file", "channel", "source_file", "data_unit"):  # a simulation is in Hz
        meta.pop(key, None)
    meta.update(
        source="simulation (ppafm OpenCL, probe-particle model)",
        simulated_like=str(like.metadata.get("source", like.metadata.get("file", "stack"))),
        tip=tip.to_dict(),
        engine=dict(
            settings.to_dict(),
            ppafm_version=getattr(ppafm, "__version__", "unknown"),
            opencl=ENV.get("info", {}).get("platform", ""),
            force_field_box_A=[list(map(float, lvec[0])), [float(lvec[1, 0]), float(lvec[2, 1]), float(lvec[3, 2])]],
            force_field_grid=list(ndim),
            atoms_on_fine_grid=n_near,
            atoms_total=n_total,
            timings_s={k: round(v, 4) for k, v in timings.items()},
            **plan.to_dict(),
            **extra,
        ),
        charges=charge_source,
        height_offset_A=float(offset),
        height_placement=offset_note,
    )
    meta["history"] = history + [{"step": "simulate", "engine": settings.box, "points_per_A": settings.points_per_A}]
    return like.replace(data=data, metadata=meta)
