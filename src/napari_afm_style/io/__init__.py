"""File formats: Δf stacks (our .npz, Nanonis .sxm, Gwyddion .gwy, multi-page TIFF,
ppafm .xsf/.npz) and geometries (XYZ / extended XYZ / ppafm XYZ).

``read_stack`` picks the reader from the file; each format module offers
``sniff(path) -> bool`` (cheap, never raises) and ``read(path) -> AFMStack``.
"""

from __future__ import annotations

import importlib
import zipfile
from pathlib import Path

from ..stack import AFMStack, StackError
from ._atomic import FileFormatError
from .npz import is_stack_npz, read_stack_npz, write_stack_npz
from ._notes import reading_notes
from .xyz import read_atoms, write_atoms

__all__ = [
    "FileFormatError",
    "read_stack",
    "write_stack",
    "read_atoms",
    "write_atoms",
    "stack_format",
    "STACK_FORMATS",
    "reading_notes",
]

#: (name, module) for every stack format, in the order they are tried.
STACK_FORMATS = (
    ("npz", ".npz"),
    ("sxm", ".sxm"),
    ("gwy", ".gwy"),
    ("tiff", ".tiff"),
    ("ppafm", ".ppafm"),
)






def stack_format(path) -> str | None:
    """Name of the stack format of ``path`` (file or folder), or None if none of ours."""
    path = Path(path)
    if path.suffix.lower() == ".npz" and path.is_file():
        if is_stack_npz(path) or not zipfile.is_zipfile(path):
            # an unreadable .npz is reported by our reader (truncated download, ...)
            return "npz"
    for name, modname in STACK_FORMATS[1:]:
        try:
            mod = importlib.import_module(modname, __name__)
            if mod.sniff(path):
                return name
        except Exception:  # a sniffer must never stop another reader from trying
            continue
    return None


def read_stack(path) -> AFMStack:
    """Read a Δf stack from any supported file or folder.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FileFormatError
        If ``path`` is not a supported stack, or is one but is broken (the message
        names the file and the problem).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    fmt = stack_format(path)
    if fmt is None:
        raise FileFormatError(
            path,
            "not a Δf stack in a supported format (.npz from this project or ppafm, Nanonis "
            ".sxm file or folder, Gwyddion .gwy, multi-page .tif/.tiff, ppafm .xsf)",
        )
    try:
        if fmt == "npz":
            return read_stack_npz(path)
        return importlib.import_module(dict(STACK_FORMATS)[fmt], __name__).read(path)
    except (FileFormatError, FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except StackError as e:
        raise FileFormatError(path, str(e)) from e
    except MemoryError as e:
        raise FileFormatError(path, "declares more data than fits in memory: the file is corrupt or "
                                    "not a Δf stack") from e
    except Exception as e:  # a damaged file must never escape as a parser's own exception
        raise FileFormatError(path, f"cannot be read as a {fmt} stack ({type(e).__name__}: {e}); "
                                    "the file may be damaged or truncated") from e


def write_stack(stack: AFMStack, path) -> Path:
    """Write ``stack`` by the name's suffix: ``.tif``/``.tiff`` as a float32 multi-page
    TIFF (parameters in the first page's description, readable by ImageJ/Fiji), ``.npz`` (or
    no suffix, which gets ``.npz``) as the project's ``.npz``; a suffix of another kind of
    file (``.xyz``, ``.png``, ``.sxm`` …) is refused rather than quietly extended. Atomic;
    never clobbers a file that is not a stack of ours.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name to write to, e.g. {path / 'stack.npz'}")
    # a word after the last dot names another kind of file; "scan.2024.05" just has dots
    if path.suffix[1:].isalpha() and path.suffix.lower() not in (".npz", ".tif", ".tiff"):
        raise ValueError(f"{path}: a Δf stack is written as .npz (the project's format, every parameter "
                         f"kept) or .tif/.tiff (ImageJ/Fiji), not as {path.suffix!r}")
    if path.suffix.lower() in (".tif", ".tiff"):
        from .tiff import write_stack_tiff

        return write_stack_tiff(stack, path)
    return write_stack_npz(stack, path)
