"""Atomic writes: a file, or a folder of files, appears under its final name only once it is complete.

Shared by checkpoints, token files and extracted poses. Kept free of torch so that extraction workers
start fast. Temporaries are named `.partial-*` beside the target, so a batch job can remove what a
killed run left behind (`remove_partials`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PARTIAL_PREFIX = ".partial-"


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path) on a temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    check_output_file(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{PARTIAL_PREFIX}{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; the result gets the user's usual mode
        os.replace(tmp, path)
    except OSError as e:
        if e.filename in (None, tmp) and e.strerror:  # name the user's file, never the temporary one
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_output_file(path: Path) -> None:
    """Refuse, naming the user's path, an output file that is a folder or whose folder is a file; create
    its folder. Called before any work is done where possible, and by every atomic write."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; the output here is a file (give a file name)")
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{path}: cannot be written, {parent} is a file, not a folder")
            break
    path.parent.mkdir(parents=True, exist_ok=True)


def check_output_folder(folder: Path) -> None:
    """Refuse an output folder that exists as a file (or below one); create it."""
    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise ValueError(f"{folder}: cannot be an output folder, {p} is a file")
            break
    folder.mkdir(parents=True, exist_ok=True)


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


def fault_point(folder: Path, step: str) -> None:
    """Called at each step of a folder commit; tests replace it to simulate a kill there."""


def atomic_folder(folder: Path, write) -> None:
    """Call write(tmp_folder) to fill a temporary folder beside `folder`, then swap it in: a reader (or a
    run resumed after a kill at any step) sees the old folder or the new one, never a mix."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(folder)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f"{PARTIAL_PREFIX}{folder.name}."))
    write(tmp)
    os.chmod(tmp, 0o777 & ~umask())
    fault_point(folder, "written")
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(folder, old)  # killed after this line: recover_folder puts `old` back
        fault_point(folder, "old moved aside")
    os.rename(tmp, folder)
    fault_point(folder, "new in place")
    shutil.rmtree(old, ignore_errors=True)


def committed(folder: Path) -> Path | None:
    """The readable version of a committed folder, changing nothing: the folder itself, or its previous
    version while a commit is between its two renames (a kill there leaves only `<name>.old`). Readers use
    this; only the writer's next commit (`recover_folder`) tidies up, so a reader never races a writer."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    old = folder.with_name(folder.name + ".old")
    return old if old.is_dir() else None


def recover_folder(folder: Path) -> None:
    """Finish or undo a folder commit that a kill interrupted, and drop abandoned temporaries."""
    folder = Path(folder)
    old = folder.with_name(folder.name + ".old")
    if not folder.parent.exists():
        return
    if old.exists():
        if folder.exists():
            shutil.rmtree(old)
        else:
            os.rename(old, folder)
    for p in folder.parent.glob(f"{PARTIAL_PREFIX}{folder.name}.*"):
        shutil.rmtree(p, ignore_errors=True)
