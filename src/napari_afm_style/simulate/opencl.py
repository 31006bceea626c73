"""ppafm's OpenCL environment and its AFMulator, set up once per process.

``ENV`` holds the process-wide state (platform description, Lennard-Jones species, the
AFMulator and the far-field grid) and ``ENV_LOCK`` serialises its use.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from typing import Any

import numpy as np

__all__ = ["opencl_environment", "opencl_platforms", "opencl_ready", "afmulator", "ENV", "ENV_LOCK",
           "OPENCL_PLATFORM_ENV"]

#: environment variable naming the OpenCL platform index ppafm runs on (``--opencl-platform``)
OPENCL_PLATFORM_ENV = "NAPARI_AFM_STYLE_OPENCL_PLATFORM"

ENV_LOCK = threading.RLock()
ENV: dict[str, Any] = {}


def _platform_builds(platform) -> bool:
    import pyopencl as cl

    try:
        ctx = cl.Context(properties=[(cl.context_properties.PLATFORM, platform)])
        cl.Program(ctx, "__kernel void k(__global float* a){ a[get_global_id(0)] = 1.0f; }").build()
        return True
    except Exception:  # a platform that cannot compile for this CPU (e.g. old PoCL + new CPU)
        return False


def opencl_platforms(check_build: bool = True) -> list[dict]:
    """The OpenCL platforms this machine offers, for choosing one (``afm-style info --devices``).

    Returns
    -------
    list of dict
        ``index``, ``name`` (with version), ``devices`` and, with ``check_build``, ``builds``:
        whether the platform compiles a kernel here (an old PoCL may not know a new CPU).
        Empty when pyopencl finds no platform.
    """
    import pyopencl as cl

    try:
        platforms = cl.get_platforms()
    except Exception:  # no ICD loader or no platform at all
        return []
    out = []
    for i, p in enumerate(platforms):
        try:
            devices = [d.name.strip() for d in p.get_devices()]
        except Exception:
            devices = []
        entry = {"index": i, "name": f"{p.name} {p.version}".strip(), "devices": devices}
        if check_build:
            entry["builds"] = _platform_builds(p)
        out.append(entry)
    return out


def opencl_environment(platform: int | None = None, cache_dir=None) -> dict:
    """Set up ppafm's OpenCL environment once per process and describe it.

    Parameters
    ----------
    platform : int, optional
        OpenCL platform index (see :func:`opencl_platforms`). Default:
        ``$NAPARI_AFM_STYLE_OPENCL_PLATFORM`` (the CLI's ``--opencl-platform``) if set, else
        the first platform that can compile a kernel on this machine.
    cache_dir : path, optional
        Where PoCL keeps compiled kernels (sets ``POCL_CACHE_DIR`` before the first
        compilation; default PoCL's own, ``~/.cache/pocl/kcache``).

    Returns
    -------
    dict
        platform index, name and version, device names, kernel cache folder, seconds spent.
    """
    with ENV_LOCK:
        if ENV:
            return dict(ENV["info"])
        t0 = time.perf_counter()
        if cache_dir is not None:
            os.environ["POCL_CACHE_DIR"] = str(cache_dir)
        try:
            import pyopencl as cl
            from ppafm.ocl import oclUtils
        except ImportError as e:  # pragma: no cover - ppafm is a dependency
            raise RuntimeError(f"ppafm's OpenCL simulator is not importable ({e}); install ppafm, pyopencl and reikna") from e
        try:
            platforms = cl.get_platforms()
        except Exception as e:
            raise RuntimeError(
                "no OpenCL platform found; on a CPU-only machine install PoCL "
                "(Debian: apt-get install pocl-opencl-icd; or pip install pocl-binary-distribution)"
            ) from e
        if platform is None and os.environ.get(OPENCL_PLATFORM_ENV):
            try:
                platform = int(os.environ[OPENCL_PLATFORM_ENV])
            except ValueError:
                raise RuntimeError(f"{OPENCL_PLATFORM_ENV}={os.environ[OPENCL_PLATFORM_ENV]!r} is not a platform "
                                   "index; `afm-style info --devices` lists them") from None
        if platform is None:
            usable = [i for i, p in enumerate(platforms) if _platform_builds(p)]
            if not usable:
                raise RuntimeError(
                    "no OpenCL platform can compile kernels on this machine ("
                    + "; ".join(f"{p.name} {p.version}" for p in platforms)
                    + "). The PoCL bundled with pyopencl (LLVM 14) does not know recent CPUs "
                    "('unknown target CPU generic'): install Debian's pocl-opencl-icd or pick a "
                    "platform with NAPARI_AFM_STYLE_OPENCL_PLATFORM."
                )
            platform = usable[0]
        if not 0 <= platform < len(platforms):
            raise RuntimeError(f"OpenCL platform {platform} does not exist ({len(platforms)} found; "
                               "`afm-style info --devices` lists them)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            oclUtils.init_env(i_platform=platform)
        from ppafm import common

        p = platforms[platform]
        ENV["info"] = {
            "platform_index": platform,
            "platform": f"{p.name} {p.version}".strip(),
            "devices": [d.name for d in p.get_devices()],
            "pocl_cache_dir": os.environ.get("POCL_CACHE_DIR", os.path.expanduser("~/.cache/pocl/kcache")),
            "setup_s": round(time.perf_counter() - t0, 3),
        }
        ENV["type_params"] = common.loadSpecies(None)
        ENV["afmulator"] = None
        return dict(ENV["info"])


def opencl_ready() -> bool:
    """True once this process has set up OpenCL and its AFMulator (later calls are fast)."""
    return bool(ENV)


def afmulator():
    """The process-wide AFMulator (created on first use; reconfigured for every call)."""
    from ppafm.ocl.AFMulator import AFMulator

    if ENV.get("afmulator") is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ENV["afmulator"] = AFMulator(
                pixPerAngstrome=5,
                lvec=np.array([[0, 0, 0], [4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]]),
                scan_dim=(4, 4, 4),
                scan_window=((1.0, 1.0, 4.0), (2.0, 2.0, 5.0)),
                df_steps=2,
                rho=None,
                npbc=(0, 0, 0),
            )
    return ENV["afmulator"]
