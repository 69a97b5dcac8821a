"""Signer-independent re-split: no signer appears in both train and val."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .manifest import Clip, Manifest


def split_by_signer(manifest: Manifest, val_fraction: float = 0.2, seed: int = 0,
                    pool: tuple[str, ...] = ("train", "val")) -> tuple[list[Clip], dict]:
    """Pool the clips of `pool` splits, shuffle their signers with `seed`, and give whole signers to
    val until it holds `val_fraction` of the clips. Clips without a signer id each count as their own
    signer. Returns the new clips and a summary (counts, classes missing from train)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    clips = [c for c in manifest.clips if c.split in pool]
    if not clips:
        raise ValueError(f"{manifest.path}: no clips in splits {pool}")
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        groups.setdefault(c.signer or f"<clip {c.clip_id}>", []).append(i)
    order = sorted(groups)
    np.random.default_rng(seed).shuffle(order)
    val, target = set(), val_fraction * len(clips)
    for s in order:
        if len(val) >= target:
            break
        val.update(groups[s])
    out = [replace(c, split="val" if i in val else "train") for i, c in enumerate(clips)]
    train_labels = {c.label for c in out if c.split == "train"}
    val_signers = {c.signer for c in out if c.split == "val"}
    summary = {"train": len(clips) - len(val), "val": len(val), "val_signers": len(val_signers),
               "train_signers": len(groups) - len(val_signers),
               "val_classes_unseen_in_train": sorted({c.label for c in out if c.split == "val"} - train_labels)}
    return out, summary
