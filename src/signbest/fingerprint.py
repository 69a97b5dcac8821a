"""Run identity: what a stage's output folder was made from, so that a rerun never mixes settings or data.

A stage writes ``fingerprint.json`` into its folder before training: the resolved config, each manifest
(path, size, SHA-256 of its text), the fingerprints of the tokenizer and pre-trained folders it builds on,
the package version and the preprocessing version. Resuming or skipping a stage whose fingerprint
differs stops with a `FingerprintError` naming what differs; `overwrite=True` starts the folder again.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import __version__
from .pose.normalize import PREPROCESS_VERSION

FILE = "fingerprint.json"


class FingerprintError(ValueError):
    """A stage folder made from other settings or data than the run asks for."""


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_identity(path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in ("manifest.csv", "metadata.csv") if (path / n).exists()), path)
    if not path.is_file():
        return {"path": str(path), "missing": True}
    return {"path": str(path.resolve()), "size": path.stat().st_size, "sha256": file_digest(path)}


def digest(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True, default=str).encode()).hexdigest()[:16]


def folder_digest(folder) -> str | None:
    """The digest of the fingerprint in `folder` (a stage output or a checkpoint folder inside one)."""
    if folder is None:
        return None
    for f in (Path(folder) / FILE, Path(folder).parent / FILE):
        if f.exists():
            return digest(json.loads(f.read_text()))
    return "none (the folder has no run fingerprint)"


# The config sections a stage reads. The rest of a row's config (its description, the masking and
# fine-tuning recipes) does not change the stage's output, and rows must share it: every row of one
# tokenizer kind and seed reuses one tokenizer, and a fine-tuning recipe change reuses pre-training.
# A stage not listed records its whole config.
STAGE_SECTIONS = {"tokenizer": ("tokenizer", "split"),
                  "pretrain": ("tokenizer", "model", "masking", "pretrain", "split")}


# Config entries that name an upstream folder: its digest identifies it, wherever and however it is named.
UPSTREAM_PATHS = ("tokenizer_dir", "pretrained")


def scoped(fp: dict) -> dict:
    """`fp` with its config cut to the sections its stage reads (old runs recorded the whole config) and
    without the paths of the folders it builds on."""
    if not isinstance(fp.get("config"), dict):
        return fp
    keep = STAGE_SECTIONS.get(fp.get("stage"))
    return {**fp, "config": {k: v for k, v in fp["config"].items()
                             if (keep is None or k in keep) and k not in UPSTREAM_PATHS}}


def make(stage: str, config: dict, data: list, **upstream) -> dict:
    """A stage's fingerprint. `upstream` maps a name (tokenizer, pretrained) to a folder or None."""
    return scoped({"stage": stage, "config": config, "data": [manifest_identity(d) for d in data],
            **{k: folder_digest(v) for k, v in upstream.items()},
            "signbest": __version__, "preprocess_version": PREPROCESS_VERSION})


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, e.g. ['config.finetune.lr: 0.001 -> 0.0005']."""
    out = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {_short(a)} -> {_short(b)}")
    return out


def _short(v) -> str:
    s = json.dumps(v, default=str)
    return s if len(s) <= 80 else s[:77] + "..."


def claim(folder, fp: dict, overwrite: bool = False, inputs=()) -> None:
    """Make `folder` this run's: record `fp` in a new or emptied folder, accept a folder with the same
    fingerprint (resume / skip), and refuse one made from anything else. `overwrite` removes only what
    signbest wrote there, never a folder it did not make, nor one holding an input (`outputs`)."""
    from .atomic import atomic_write
    from .outputs import claim_folder

    folder = Path(folder)
    path = folder / FILE
    if path.exists() and not overwrite:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise FingerprintError(f"{path}: unreadable run fingerprint ({e}); use another output folder, or "
                                   "--overwrite to start this one again") from None
        diff = differences(scoped(old), json.loads(json.dumps(fp, default=str)))
        if diff:
            raise FingerprintError(f"{folder} holds a {old.get('stage', '')} run made with other settings or "
                                   f"data: {'; '.join(diff[:6])}{' ...' if len(diff) > 6 else ''}. Use another "
                                   "output folder, or --overwrite to start it again")
        return
    data = [d["path"] for d in fp.get("data", []) if isinstance(d, dict) and "path" in d]
    claim_folder(folder, fp.get("stage", "run"), [*data, *inputs], overwrite)
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(fp, indent=2, default=str)))
