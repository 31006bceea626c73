"""Atomic, non-destructive file writing shared by every writer."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "check_overwrite", "remove_orphans", "write_text_atomic", "write_json_atomic",
           "save_figure", "is_figure_of_kind", "FileFormatError"]


class FileFormatError(ValueError):
    """A file that claims one of our formats but cannot be read; names file and problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def check_overwrite(path: Path, is_same_type) -> None:
    """Refuse to replace an existing file that is not of the type we are writing.

    ``is_same_type(path) -> bool`` says whether the existing file is one of ours; if it
    is not, the user's data is protected and a clear error is raised.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a file name to write to")
    if path.exists() and not is_same_type(path):
        raise FileExistsError(
            f"{path} exists and is not a file of the kind being written; refusing to "
            "overwrite it. Choose another name or remove the file first."
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_orphans(path) -> list[Path]:
    """Delete the temporary files that writers of ``path`` left when they were killed
    (``.NAME.PID.XXXX.SUFFIX`` whose process no longer runs); returns what was removed."""
    import glob
    import re

    path = Path(path)
    removed = []
    # exactly what atomic_path makes: mkstemp's 8 random characters after the writer's pid
    ours = re.compile(re.escape(f".{path.name}.") + r"(\d+)\.[a-z0-9_]{8}(\.[^.]*)?")
    with contextlib.suppress(OSError):
        for tmp in path.parent.glob(f".{glob.escape(path.name)}.*"):
            match = ours.fullmatch(tmp.name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed.append(tmp)
    return removed


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    A crash or an exception while writing leaves any existing file untouched; the data
    and the rename are flushed to disk (fsync of the file and of its folder) before the
    context ends, and temporaries left by killed writers of the same file are removed
    first (:func:`remove_orphans`).
    """
    path = Path(path)
    if path.is_file() and (not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222):
        raise PermissionError(f"{path}: the file is write-protected (or not yours to change); "
                              "refusing to replace it: choose another name or change its permissions")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix or path.suffix,
                                   dir=path.parent)
    except PermissionError as e:
        raise PermissionError(f"{path}: cannot write in {path.parent} (permission denied)") from e
    os.close(fd)
    # mkstemp makes the file private (0600); give it the mode a normal write would
    if path.exists():
        mode = path.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: readers see the old or the new file, never
    half of one (bookkeeping that a resumed run trusts: histories, manifests, results)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(path, obj, **dumps_kw) -> Path:
    """:func:`write_text_atomic` of ``json.dumps(obj, **dumps_kw)``."""
    import json

    return write_text_atomic(path, json.dumps(obj, **dumps_kw))


#: leading bytes of the figure formats a user saves plots in
_FIGURE_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".pdf": (b"%PDF",), ".svg": (b"<?xml", b"<svg"),
                 ".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",), ".tif": (b"II*\x00", b"MM\x00*"),
                 ".tiff": (b"II*\x00", b"MM\x00*"), ".eps": (b"%!PS",)}


def is_figure_of_kind(path) -> bool:
    """Whether ``path`` holds a figure in the format its suffix names (a PNG named .png, …)."""
    path = Path(path)
    magic = _FIGURE_MAGIC.get(path.suffix.lower())
    if magic is None:
        return False
    with open(path, "rb") as fh:
        head = fh.read(16).lstrip()
    return head.startswith(magic)


def save_figure(fig, path, **savefig_kw) -> Path:
    """Save a matplotlib figure atomically, by the suffix's format (.png, .pdf, .svg, …).

    An existing figure of the same format is replaced (saving again is what a re-run or
    "Save figure…" means); any other existing file is refused with FileExistsError, so a
    mistyped name never destroys data.
    """
    path = Path(path)
    if path.suffix.lower() not in _FIGURE_MAGIC:
        raise ValueError(f"{path}: choose a figure file name ending in "
                         + ", ".join(sorted(_FIGURE_MAGIC)))
    check_overwrite(path, is_figure_of_kind)
    with atomic_path(path) as tmp:
        suffix = path.suffix.lower().lstrip(".")
        fig.savefig(tmp, format={"jpg": "jpeg", "tif": "tiff"}.get(suffix, suffix), **savefig_kw)
    return path
