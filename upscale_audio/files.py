"""Small file-system helpers shared by audio and checkpoint writers."""

from __future__ import annotations

import os


def umask_mode() -> int:
    """0o666 less the process umask: the mode a newly created file would get (mkstemp gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
