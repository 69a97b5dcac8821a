"""Atomic file writes: a file appears under its final name only once it is complete.

Shared by checkpoints, token files and extracted poses. Kept free of torch so that extraction workers
start fast. Temporaries are named `.partial-*` beside the target, so a batch job can remove what a
killed run left behind (`remove_partials`).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PARTIAL_PREFIX = ".partial-"


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path) on a temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{PARTIAL_PREFIX}{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; the result gets the user's usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_partials(folder: Path) -> int:
    """Delete temporary files a killed run left in `folder`; returns how many."""
    n = 0
    for p in Path(folder).glob(f"{PARTIAL_PREFIX}*"):
        p.unlink(missing_ok=True)
        n += 1
    return n
