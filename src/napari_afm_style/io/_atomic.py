"""Atomic, non-destructive file writing shared by every writer."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "check_overwrite", "FileFormatError"]


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


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    A crash or an exception while writing leaves any existing file untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
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
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
