"""Plain Python data for JSON files and ``torch.load(weights_only=True)`` blobs."""

from __future__ import annotations

import numpy as np


def plain(obj):
    """``obj`` with NumPy scalars and arrays turned into Python numbers and lists.

    Dict keys become strings, tuples lists, and non-finite floats ``None`` (JSON has no
    NaN), so the result can be written by :func:`json.dumps` and stored in a weights file
    that loads with ``weights_only=True``.

    Examples
    --------
    >>> plain({1: (np.float32(0.5), np.arange(2)), "x": float("nan"), "ok": np.bool_(True)})
    {'1': [0.5, [0, 1]], 'x': None, 'ok': True}
    """
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def rng_state_to_plain(rng: np.random.Generator) -> dict:
    """The state of ``rng`` as plain data (for a ``weights_only=True`` checkpoint)."""
    # numpy's state holds Python ints only; stored as strings so torch.load(weights_only)
    # never meets an integer wider than 64 bits
    st = rng.bit_generator.state
    return {"bit_generator": st["bit_generator"],
            "state": {k: str(v) for k, v in st["state"].items()},
            "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}


def rng_state_from_plain(plain: dict) -> dict:
    """Inverse of :func:`rng_state_to_plain`: a ``bit_generator.state`` dict."""
    return {"bit_generator": plain["bit_generator"],
            "state": {k: int(v) for k, v in plain["state"].items()},
            "has_uint32": plain["has_uint32"], "uinteger": plain["uinteger"]}
