"""File-system helpers: the one temp-then-rename of every writer (audio, .uad, PNG, checkpoints)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


def umask_mode() -> int:
    """0o666 less the process umask: the mode a newly created file would get (mkstemp gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def replacing(path: Path, force: bool = True) -> Iterator[str]:
    """Yield the name of a new temp file beside ``path`` (same file system, so the rename is atomic,
    with the mode a plain open() would give); when the block ends it is renamed over ``path``. A file
    that appeared at ``path`` meanwhile is refused unless ``force``. On any failure, Ctrl-C
    included, the temp file is removed and nothing appears at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, umask_mode())
        yield tmp
        if path.exists() and not force:
            raise UserError(f"{path}: exists; use --force to overwrite")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
