"""One device choice for every function that runs a network: ``"auto"``, ``"cpu"``,
``"cuda"`` or ``"cuda:N"``."""

from __future__ import annotations

__all__ = ["resolve_device"]


def resolve_device(name: str = "auto") -> str:
    """The torch device string for ``name``.

    ``"auto"`` is ``"cuda"`` when torch sees a GPU, else ``"cpu"``; a CUDA device that torch
    cannot see is refused with a message saying what to use instead.

    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    name = str(name).strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for but torch sees no CUDA GPU "
                             f"(torch {torch.__version__}); use 'cpu' or 'auto'")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: torch sees {torch.cuda.device_count()} GPU(s)")
        return name
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
