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
