"""Weights files of every network of the project: one way to save, load, check and cache.

Every file is a ``torch.save`` of a plain dict whose ``"format"`` names what it holds:

=====================================  ===============================================
format                                 written by
=====================================  ===============================================
``PREDICTOR_WEIGHTS``                  :func:`napari_afm_style.predict.save_weights`
``PREDICTOR_CHECKPOINT``               ``afm-style train-predictor`` (``last.pt``, ``best.pt``)
``TRANSLATOR_FORMAT``                  ``afm-style train-translator --export``
``TRANSLATOR_CHECKPOINT``              ``afm-style train-translator`` (``last.pt``)
``FEATURE_NET_FORMAT``                 :func:`napari_afm_style.models.feature_net.save_feature_net`
=====================================  ===============================================

Files are loaded with ``weights_only=True`` (no code runs from a weights file), so the
dicts hold only tensors and plain Python data (see :func:`napari_afm_style._plain.plain`).
Writes are atomic and replace only a weights file of this project, never another file.
:data:`CACHE` keeps the networks built from recently loaded files, one
bounded cache for the predictor, the translator and the feature network alike.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

__all__ = [
    "PREDICTOR_WEIGHTS",
    "PREDICTOR_CHECKPOINT",
    "TRANSLATOR_FORMAT",
    "TRANSLATOR_CHECKPOINT",
    "FEATURE_NET_FORMAT",
    "FORMATS",
    "save",
    "load",
    "is_weights_file",
    "format_of",
    "require_format",
    "generator_state_dicts",
    "WeightsCache",
    "CACHE",
]

PREDICTOR_WEIGHTS = "napari-afm-style predictor weights"
PREDICTOR_CHECKPOINT = "napari-afm-style predictor checkpoint"
TRANSLATOR_FORMAT = "napari_afm_style.translator/1"
TRANSLATOR_CHECKPOINT = "napari_afm_style.translator-checkpoint/1"
FEATURE_NET_FORMAT = "napari_afm_style.feature_net/1"


def save(payload: dict, path) -> Path:
    """Write ``payload`` to ``path`` with ``torch.save``, atomically (a crash never
    leaves a half-written file; an existing file stays until the new one is complete)."""
    import torch

    from ..io._atomic import atomic_path, check_overwrite

    path = Path(path)
    check_overwrite(path, is_weights_file)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return path


#: every format this project writes into weights files
FORMATS = (PREDICTOR_WEIGHTS, PREDICTOR_CHECKPOINT, TRANSLATOR_FORMAT, TRANSLATOR_CHECKPOINT, FEATURE_NET_FORMAT)


def is_weights_file(path) -> bool:
    """Whether ``path`` is a weights file of this project (which :func:`save` may replace).

    Any other existing file (a user's data, a foreign checkpoint) is never overwritten.
    """
    import torch

    try:
        # memory-mapped: only the small dict is read, not the tensors (a checkpoint is
        # checked before every save of a training run)
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip-format torch file: read it the ordinary way
        try:
            payload = load(path)
        except Exception:  # unreadable, not a torch file, or not loadable with weights_only
            return False
    return format_of(payload) in FORMATS


def load(path):
    """The object stored in ``path``, on the CPU, with ``weights_only=True``."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def format_of(payload) -> str | None:
    """The ``"format"`` entry of a loaded payload (None when it is not one of ours)."""
    return payload.get("format") if isinstance(payload, dict) else None


def require_format(payload, formats, message: str) -> str:
    """``payload``'s format if it is one of ``formats``; else ValueError(``message``)."""
    fmt = format_of(payload)
    if fmt not in ((formats,) if isinstance(formats, str) else tuple(formats)):
        raise ValueError(message)
    return fmt


def generator_state_dicts(payload, source="weights") -> tuple[dict, dict]:
    """(forward, backward) generator state dicts of an exported translator or of a
    translator training checkpoint (``payload`` as loaded by :func:`load`)."""
    fmt = format_of(payload)
    if fmt == TRANSLATOR_FORMAT:
        return payload["forward"], payload["backward"]
    if fmt == TRANSLATOR_CHECKPOINT:
        ms = payload["model"]
        return ({k[len("forward_gen."):]: v for k, v in ms.items() if k.startswith("forward_gen.")},
                {k[len("backward_gen."):]: v for k, v in ms.items() if k.startswith("backward_gen.")})
    raise ValueError(f"{source}: not a style translator of this project (format {fmt!r})")


class WeightsCache:
    """Networks built from weights files, least recently used dropped beyond ``maxsize``.

    Keys name the file by its resolved path, modification time and size, so a file
    rewritten in place (a training run exporting again) is loaded afresh.
    """

    def __init__(self, maxsize: int = 8):
        self.maxsize = int(maxsize)
        self._items: OrderedDict = OrderedDict()

    @staticmethod
    def key(path, *extra) -> tuple:
        path = Path(path)
        st = path.stat()
        return (str(path.resolve()), st.st_mtime_ns, st.st_size, *extra)

    def get_or_build(self, key: tuple, build):
        """The cached object for ``key``, or ``build()``'s result (then cached)."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        obj = build()
        self._items[key] = obj
        while len(self._items) > self.maxsize:  # bounded: a GUI session may try many files
            self._items.popitem(last=False)
        return obj

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        return key in self._items


#: the one cache of loaded networks (predictors per device, translators, feature networks);
#: a predictor is about 8 MB, a translator 3 MB, the feature network 0.6 MB
CACHE = WeightsCache(maxsize=8)
