"""The AFM stack model: a constant-height frequency-shift (Δf) stack with its physics.

Every step of the pipeline (readers, simulation, translation, prediction, widgets)
passes an :class:`AFMStack` around, so the scan geometry and the cantilever
parameters are never lost between steps.

Frame conventions
-----------------
* ``data[i, iy, ix]`` is Δf in Hz at height index ``i``, row ``iy`` (y), column ``ix`` (x).
* Index 0 is the FARTHEST tip height; heights decrease with the index (ppafm order).
* Lateral coordinates are Å of pixel centres: pixel ``(iy, ix)`` sits at
  ``(origin_A[0] + ix * pixel_size_A, origin_A[1] + iy * pixel_size_A)``.
* ``heights_A`` are the z (Å), in the geometry's frame, of the probe particle (the O of
  the CO tip) at the centre of its oscillation, before relaxation (ppafm's scan z minus
  the tip's R0 z plus the amplitude). For experimental stacks the absolute height is
  unknown: ``metadata["height_frame"]`` says which frame the heights use, and
  :meth:`AFMStack.with_height_offset` moves them.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AFMStack", "StackError", "UNITS"]

#: Units of every physical field, stored alongside the data in every file we write.
UNITS = {
    "data": "Hz",
    "heights_A": "angstrom",
    "pixel_size_A": "angstrom",
    "origin_A": "angstrom",
    "f0_Hz": "Hz",
    "k_N_per_m": "N/m",
    "amplitude_A": "angstrom",
}

HEIGHT_FRAME_ABSOLUTE = "absolute: probe-particle z (Å) at oscillation centre, geometry frame"


class StackError(ValueError):
    """Raised when stack data or parameters are physically or structurally invalid."""


#: plausible ranges of the parameters of an NC-AFM Δf stack (inclusive); values outside
#: are refused before any work, since they come from corrupt files or unit mix-ups
PLAUSIBLE = {
    "pixel_size_A": (1e-3, 10.0),     # 0.001 Å … 1 nm per pixel
    "f0_Hz": (1.0, 1e8),
    "k_N_per_m": (1e-3, 1e6),
    "amplitude_A": (1e-3, 1e3),       # oscillation amplitudes of 0.001 Å … 100 nm
    "abs_heights_A": 1e5,
    "abs_df_Hz": 1e6,                  # a few Hz to a few hundred in practice
}


def _positive_finite(name: str, value: float) -> float:
    try:
        if np.size(value) != 1:
            raise TypeError
        value = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError):
        raise StackError(f"{name} must be a single number, got {value!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise StackError(f"{name} must be a positive finite number, got {value!r}")
    lo, hi = PLAUSIBLE.get(name, (0.0, np.inf))
    if not lo <= value <= hi:
        raise StackError(f"{name} = {value:g} is outside the plausible range [{lo:g}, {hi:g}]; "
                         "check the file's units (is it corrupt?)")
    return value


@dataclass(eq=False)
class AFMStack:
    """Constant-height Δf stack with scan geometry and cantilever parameters.

    Parameters
    ----------
    data : array_like, shape (n_heights, ny, nx)
        Frequency shift in Hz (stored as float32). Index 0 is the farthest height.
    heights_A : array_like, shape (n_heights,)
        Tip height of each slice in Å (see the module docstring for the frame); must
        decrease strictly with the index.
    pixel_size_A : float
        Lateral pixel size in Å (square pixels).
    origin_A : array_like, shape (2,)
        (x, y) in Å of the centre of pixel ``[0, 0]``.
    f0_Hz : float
        Cantilever resonance frequency in Hz.
    k_N_per_m : float
        Cantilever stiffness in N/m.
    amplitude_A : float
        Oscillation amplitude (zero to peak) in Å.
    metadata : dict, optional
        Free, JSON-serialisable information about the source (instrument, file,
        height frame, processing history...).

    Examples
    --------
    >>> import numpy as np
    >>> s = AFMStack(np.zeros((3, 4, 5)), [10.2, 10.1, 10.0], 0.125, (0.0, 0.0),
    ...              f0_Hz=30300, k_N_per_m=1800, amplitude_A=1.0)
    >>> s.shape, s.extent_A
    ((3, 4, 5), (0.625, 0.5))
    """

    data: np.ndarray
    heights_A: np.ndarray
    pixel_size_A: float
    origin_A: np.ndarray
    f0_Hz: float = 30300.0
    k_N_per_m: float = 1800.0
    amplitude_A: float = 1.0
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        data = np.asarray(self.data)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise StackError(
                f"Δf data must have shape (n_heights, ny, nx); got an array with shape {data.shape}"
            )
        if min(data.shape) < 1:
            raise StackError(f"Δf data is empty (shape {data.shape})")
        if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
            raise StackError(f"Δf data must be real numbers, got dtype {data.dtype}")
        # judged before the cast to float32, which would turn values beyond its range into inf
        finite = data[np.isfinite(data)]
        if finite.size and float(np.abs(finite).max()) > PLAUSIBLE["abs_df_Hz"]:
            raise StackError(f"Δf values up to {float(np.abs(finite).max()):.3g} Hz are not plausible "
                             f"(more than {PLAUSIBLE['abs_df_Hz']:g} Hz): wrong byte order or units?")
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        heights = np.atleast_1d(np.asarray(self.heights_A, dtype=np.float64))
        if heights.shape != (data.shape[0],):
            raise StackError(
                f"heights_A has {heights.size} values but the data has {data.shape[0]} heights"
            )
        if not np.all(np.isfinite(heights)):
            raise StackError("heights_A contains NaN or infinite values")
        if np.abs(heights).max() > PLAUSIBLE["abs_heights_A"]:
            raise StackError(f"heights_A up to {np.abs(heights).max():.3g} Å are not plausible; check the units")
        if heights.size > 1 and not np.all(np.diff(heights) < 0):
            raise StackError(
                "heights_A must decrease strictly with the index (index 0 is the farthest "
                f"tip height); got {np.round(heights, 4).tolist()}"
            )
        self.heights_A = heights
        self.pixel_size_A = _positive_finite("pixel_size_A", self.pixel_size_A)
        origin = np.asarray(self.origin_A, dtype=np.float64).reshape(-1)
        if origin.shape != (2,) or not np.all(np.isfinite(origin)):
            raise StackError(f"origin_A must be a finite (x, y) pair in Å, got {self.origin_A!r}")
        self.origin_A = origin
        self.f0_Hz = _positive_finite("f0_Hz", self.f0_Hz)
        self.k_N_per_m = _positive_finite("k_N_per_m", self.k_N_per_m)
        self.amplitude_A = _positive_finite("amplitude_A", self.amplitude_A)
        self.metadata = dict(self.metadata or {})
        try:
            json.dumps(self.metadata)
        except TypeError as e:
            raise StackError(f"metadata must be JSON-serialisable: {e}") from e

    # -- geometry -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)

    @property
    def n_heights(self) -> int:
        return self.data.shape[0]

    @property
    def extent_A(self) -> tuple[float, float]:
        """(width x, height y) of the scanned area in Å (pixel count × pixel size)."""
        ny, nx = self.data.shape[1:]
        return (nx * self.pixel_size_A, ny * self.pixel_size_A)

    @property
    def height_step_A(self) -> float:
        """Mean spacing between heights in Å (0 for a single slice)."""
        if self.n_heights < 2:
            return 0.0
        return float(np.mean(-np.diff(self.heights_A)))

    @property
    def x_A(self) -> np.ndarray:
        """x (Å) of the pixel-centre columns."""
        return self.origin_A[0] + np.arange(self.data.shape[2]) * self.pixel_size_A

    @property
    def y_A(self) -> np.ndarray:
        """y (Å) of the pixel-centre rows."""
        return self.origin_A[1] + np.arange(self.data.shape[1]) * self.pixel_size_A

    @property
    def height_frame(self) -> str:
        return str(self.metadata.get("height_frame", HEIGHT_FRAME_ABSOLUTE))

    @property
    def data_unit(self) -> str:
        """``"Hz"``, or ``"normalised"`` for Δf already normalised per slice (unitless)."""
        return "normalised" if self.metadata.get("data_unit") == "normalised" else "Hz"

    @property
    def heights_are_absolute(self) -> bool:
        return self.height_frame.startswith("absolute")

    # -- napari layer geometry (pure numbers; no napari import) ---------------------------
    def layer_scale(self) -> tuple[float, float, float]:
        """Scale (z, y, x) in Å for a napari Image layer of ``data``.

        The height axis runs towards the sample, so its scale is the negative mean step:
        world z of slice ``i`` is then ``heights_A[0] - i * step`` ≈ ``heights_A[i]``.
        """
        step = self.height_step_A or 1.0
        return (-step, self.pixel_size_A, self.pixel_size_A)

    def layer_translate(self) -> tuple[float, float, float]:
        """Translate (z, y, x) in Å of pixel centre [0, 0, 0] for napari."""
        return (float(self.heights_A[0]), float(self.origin_A[1]), float(self.origin_A[0]))

    # -- transforms ------------------------------------------------------------------------
    def replace(self, **changes) -> AFMStack:
        """A new stack with some fields replaced (the rest deep-copied)."""
        fields = dict(
            data=self.data.copy(),
            heights_A=self.heights_A.copy(),
            pixel_size_A=self.pixel_size_A,
            origin_A=self.origin_A.copy(),
            f0_Hz=self.f0_Hz,
            k_N_per_m=self.k_N_per_m,
            amplitude_A=self.amplitude_A,
            metadata=copy.deepcopy(self.metadata),
        )
        fields.update(changes)
        return AFMStack(**fields)

    def with_history(self, step: str, **details) -> AFMStack:
        """A copy whose ``metadata["history"]`` records a processing step."""
        meta = copy.deepcopy(self.metadata)
        meta.setdefault("history", []).append({"step": step, **details})
        return self.replace(metadata=meta)

    def with_height_offset(self, offset_A: float, frame: str | None = None) -> AFMStack:
        """Shift all heights by ``offset_A`` Å, e.g. to place a relative experimental
        stack in the frame of a geometry. ``frame`` describes the new height frame."""
        meta = copy.deepcopy(self.metadata)
        meta["height_frame"] = frame or (
            f"{self.height_frame} shifted by {float(offset_A):+.3f} Å"
        )
        meta.setdefault("history", []).append({"step": "height_offset", "offset_A": float(offset_A)})
        return self.replace(heights_A=self.heights_A + float(offset_A), metadata=meta)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain arrays and numbers (with a units table) for .npz files and layer metadata."""
        return {
            "df": self.data,
            "heights_A": self.heights_A,
            "pixel_size_A": np.float64(self.pixel_size_A),
            "scan_origin_A": self.origin_A,
            "f0_Hz": np.float64(self.f0_Hz),
            "k_N_per_m": np.float64(self.k_N_per_m),
            "amplitude_A": np.float64(self.amplitude_A),
            "metadata_json": np.str_(json.dumps(self.metadata)),
            "units_json": np.str_(json.dumps(dict(UNITS, data=self.data_unit))),
        }

    def __repr__(self) -> str:
        return (
            f"AFMStack(shape={self.shape}, heights_A=[{self.heights_A[0]:.3f} … "
            f"{self.heights_A[-1]:.3f}], pixel_size_A={self.pixel_size_A:g}, "
            f"origin_A=({self.origin_A[0]:g}, {self.origin_A[1]:g}), f0_Hz={self.f0_Hz:g}, "
            f"k_N_per_m={self.k_N_per_m:g}, amplitude_A={self.amplitude_A:g})"
        )

    def summary(self) -> str:
        """Human-readable multi-line description with units (used by ``afm-style info``)."""
        nh, ny, nx = self.shape
        w, h = self.extent_A
        d = self.data
        lines = [
            f"shape (heights, y, x): {nh} × {ny} × {nx}",
            f"pixel size: {self.pixel_size_A:.4g} Å   window: {w:.3f} × {h:.3f} Å",
            f"origin (pixel [0,0] centre): x = {self.origin_A[0]:.3f} Å, y = {self.origin_A[1]:.3f} Å",
            "heights (index 0 = farthest): "
            + ", ".join(f"{z:.3f}" for z in self.heights_A)
            + " Å",
            f"height frame: {self.height_frame}",
            f"cantilever: f0 = {self.f0_Hz:g} Hz, k = {self.k_N_per_m:g} N/m, "
            f"amplitude = {self.amplitude_A:g} Å",
            f"Δf range: {np.nanmin(d):.4g} … {np.nanmax(d):.4g} Hz"
            + ("   (contains NaN)" if np.isnan(d).any() else ""),
        ]
        for key, value in self.metadata.items():
            if key not in ("height_frame", "history"):
                lines.append(f"{key}: {value}")
        for step in self.metadata.get("history", []):
            lines.append(f"history: {step}")
        return "\n".join(lines)
