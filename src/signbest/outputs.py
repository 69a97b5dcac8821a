"""Write-safety, the one rule every writing command follows: signbest never deletes or replaces a file it
did not make, and never writes over one of the command's own inputs.

- A **run folder** (a stage's output, an evaluation report, the demo, `signbest train`'s folder, a
  synthetic set, an extraction) carries a marker file, written when signbest makes the folder. A
  non-empty folder without it is never written into, and never deleted, with or without `--overwrite`.
  `--overwrite` removes only the entries of a marked folder that signbest writes (`OWNED`); anything else
  a user put there is kept and named.
- A **file output** (a predictions CSV, a manifest, a token file, a picture) may replace an existing file
  only when signbest wrote that file and it is unchanged since: every such write is recorded (path,
  size, modification time) in the user's cache folder. A file a user made or edited is refused.
- An output that *is* one of the command's inputs, or a folder that holds one of them and would be
  cleared, is refused before any work is done, naming both paths.

Errors are `OutputError` (a ValueError: the CLI prints one line and exits with status 2).
"""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
from pathlib import Path

from .runtime import cache_dir

MARKER = ".signbest-run"  # present in every folder signbest made; holds what made it
# What signbest writes into a run folder: the only entries `--overwrite` removes.
OWNED = (MARKER, "fingerprint.json", "checkpoint", "checkpoint.old", "selected", "selected.old", ".partial-*",
         "*_metrics.csv", "*_metrics.png", "eval-*", "tensorboard", "tokens-*.npz", "tokens.png", "results.md",
         "results.json", "results.png", "per_class.csv", "confusion.png", "reliability.png", "summary.json",
         "data", "poses", "manifest.csv", "failures.csv", "synth.json", "tokenizer", "tokenizer-*", "pretrain",
         "pretrain-*", "finetune", "finetune-*", "splits.csv", "train.json", "extract")
# Names a checkpoint folder is recognised by: never written by another command into a run folder.
CHECKPOINT_FILES = ("model.safetensors", "config.json", "optimizer.safetensors", "state.json")
# Folders signbest writes inside a run folder without marking them (everything else it makes is marked).
UNMARKED_DIRS = ("checkpoint", "checkpoint.old", "selected", "selected.old", "tensorboard", "poses", ".partial-*")
REGISTRY = "written.jsonl"  # in the cache folder: one line per file output signbest wrote


class OutputError(ValueError):
    """An output that would destroy something signbest did not make, or one of the command's inputs."""


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(child: Path, folder: Path) -> bool:
    try:
        child.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def refuse_inputs(output: Path, inputs, *, contains: bool = False) -> None:
    """An output equal to an input (or, with `contains`, a folder holding one) is refused, naming both."""
    output = Path(output)
    for given in inputs or ():
        if given is None:
            continue
        given = Path(given)
        if _same(output, given) or output.resolve() == given.resolve():
            raise OutputError(f"{output}: is also an input of this command ({given}); the output must be another path")
        if contains and _inside(given, output):
            raise OutputError(f"{output}: holds an input of this command ({given}); use another output folder")


def is_marked(folder: Path) -> bool:
    """A folder signbest made (runs made before the marker existed are recognised by their fingerprint)."""
    folder = Path(folder)
    return (folder / MARKER).is_file() or (folder / "fingerprint.json").is_file()


def marked_kind(folder: Path) -> str | None:
    """What made a marked folder (tokenizer, pretrain, finetune, eval, demo, train, synth, extract), if known."""
    folder = Path(folder)
    for name, key in ((MARKER, "kind"), ("fingerprint.json", "stage")):
        try:
            return json.loads((folder / name).read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
    return None


def mark(folder: Path, kind: str) -> None:
    from . import __version__

    folder = Path(folder)
    if marked_kind(folder) != kind or not (folder / MARKER).exists():
        (folder / MARKER).write_text(json.dumps({"made_by": "signbest", "version": __version__, "kind": kind}) + "\n")


def claim_folder(folder: Path, kind: str, inputs=(), overwrite: bool = False) -> list[str]:
    """Make `folder` an output folder of this command: create and mark it when new or empty, accept it
    when signbest made it, refuse it otherwise. With `overwrite`, first remove what signbest wrote
    there. Returns the names of entries kept because signbest did not write them."""
    from .atomic import check_output_folder

    folder = Path(folder)
    check_folder(folder, kind, inputs, overwrite)
    kept = clear(folder, inputs) if overwrite and folder.is_dir() else []
    check_output_folder(folder)
    mark(folder, kind)
    return kept


def check_folder(folder: Path, kind: str, inputs=(), overwrite: bool = False) -> None:
    """The checks of `claim_folder`, changing nothing: commands call it before their work starts."""
    folder = Path(folder)
    refuse_inputs(folder, inputs, contains=overwrite)
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"{folder}: cannot be an output folder, {p} is a file")
            break
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not is_marked(folder):
        names = sorted(p.name for p in folder.iterdir())
        raise OutputError(f"{folder}: is not empty and was not made by signbest (it holds {', '.join(names[:4])}"
                          f"{' ...' if len(names) > 4 else ''}); signbest writes only into new or empty folders "
                          "and its own run folders, even with --overwrite: give another output folder")
    if not overwrite and marked_kind(folder) not in (kind, None):
        raise OutputError(f"{folder}: holds a signbest {marked_kind(folder)} run, not a {kind} run; give another "
                          "output folder (or --overwrite to remove what signbest wrote there)")


def clear(folder: Path, inputs=()) -> list[str]:
    """Remove what signbest wrote in a marked folder (marked sub-folders are cleared the same way);
    returns the names kept. An input inside the folder stops the clearing before anything is removed."""
    folder = Path(folder)
    refuse_inputs(folder, inputs, contains=True)
    kept = []
    for entry in sorted(folder.iterdir()):
        if entry.name == MARKER:
            continue  # the folder stays signbest's, whatever it keeps
        if not any(fnmatch.fnmatch(entry.name, pattern) for pattern in OWNED):
            kept.append(entry.name)
        elif entry.is_dir() and not entry.is_symlink():
            if (entry / MARKER).exists():
                if clear(entry, inputs):
                    kept.append(entry.name)  # a run folder inside holding a user's file stays, with that file
                else:
                    shutil.rmtree(entry)
            elif any(fnmatch.fnmatch(entry.name, pattern) for pattern in UNMARKED_DIRS):
                shutil.rmtree(entry)
            else:
                kept.append(entry.name)  # a folder under an owned name that signbest did not mark: not ours
        else:
            entry.unlink()
    return kept


def _registry() -> Path:
    return cache_dir() / REGISTRY


def _identity(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def record(path: Path) -> None:
    """Note that signbest just wrote `path` (so that a later run may replace it)."""
    reg = _registry()
    try:
        reg.parent.mkdir(parents=True, exist_ok=True)
        with open(reg, "a") as f:  # one short line per append: whole lines even with concurrent writers
            f.write(json.dumps(_identity(Path(path))) + "\n")
    except OSError:
        pass  # an unwritable cache only means the file cannot be replaced later without removing it


def made_by_signbest(path: Path) -> bool:
    """`path` is a file signbest wrote and nobody changed since."""
    path = Path(path)
    try:
        me = _identity(path)
        lines = _registry().read_text().splitlines()
    except OSError:
        return False
    for line in reversed(lines):
        try:
            if json.loads(line) == me:
                return True
        except json.JSONDecodeError:
            continue
    return False


def claim_file(path: Path, inputs=(), own_kinds: tuple[str, ...] = ()) -> Path:
    """Check a file output before any work: not an input, not a folder, and if it exists, a file that
    signbest wrote and nobody changed since, or one of the fixed names (`OWNED`) that this command writes
    into its own kind of run folder (`own_kinds`: e.g. the demo's tokens.png). A manifest that `synth` wrote
    is never replaced by `predict --csv`: the folder's kind is not the command's."""
    from .atomic import check_output_file

    path = Path(path)
    refuse_inputs(path, inputs)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; the output here is a file (give a file name)")
    reserved = any(fnmatch.fnmatch(path.name, p) for p in (*OWNED, *CHECKPOINT_FILES))
    if reserved and is_marked(path.parent) and marked_kind(path.parent) not in own_kinds:
        raise OutputError(f"{path}: {path.name} is a name signbest reserves in its {marked_kind(path.parent)} run "
                          "folders (a file there under that name would change what the folder holds): give another name")
    if path.exists() or path.is_symlink():
        own_folder = (marked_kind(path.parent) in own_kinds and is_marked(path.parent)
                      and any(fnmatch.fnmatch(path.name, p) for p in OWNED))
        if path.is_symlink() or not (own_folder or made_by_signbest(path)):
            raise OutputError(f"{path}: exists and was not written by signbest (or was changed since); signbest "
                              "never replaces such a file: give another output name, or move it away yourself")
    check_output_file(path)
    return path
