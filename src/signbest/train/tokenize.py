"""Apply a trained tokenizer to whole datasets: id files, and the token picture."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import SignDataset
from ..viz import show_tokens
from .checkpoint import atomic_write
from .tokenizer import frame_pool, load_tokenizer


def dataset_ids(tokenizer_dir: Path, data: Path, split: str = "all"):
    """Every frame of every clip (none dropped, so clip offsets hold) with its three token ids."""
    tok = load_tokenizer(tokenizer_dir)
    ds = SignDataset(data, split=split)
    frames = frame_pool([ds], keep_empty=True)
    ids = {k: [] for k in ("left", "right", "body")}
    for s in range(0, frames["body"].shape[0], 8192):
        for k, v in zip(ids, tok.tokenize({k: v[s:s + 8192] for k, v in frames.items()})):
            ids[k].append(v.numpy())
    lengths = ds.data.lengths()[ds.rows]
    return ds, {k: v.numpy() for k, v in frames.items()}, {k: np.concatenate(v) for k, v in ids.items()}, lengths


def tokenize_dataset(tokenizer_dir: Path, data: Path, out: Path | None = None, split: str = "all") -> Path:
    """One .npz: clip_ids, offsets (N+1), and left/right/body ids over all frames (-1 = missing part)."""
    ds, _, ids, lengths = dataset_ids(tokenizer_dir, data, split)
    out = Path(out) if out else Path(tokenizer_dir) / f"tokens-{Path(data).stem}.npz"
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name without .npz, numpy would append one
            np.savez(f, clip_ids=np.array([c.clip_id for c in ds.clips]), offsets=offsets, **ids)

    atomic_write(out, write)
    return out


def show_dataset_tokens(tokenizer_dir: Path, data: Path, out: Path, codes: int = 6, members: int = 6,
                        split: str = "all") -> Path:
    ds, frames, ids, lengths = dataset_ids(tokenizer_dir, data, split)
    signers = np.repeat(np.array([c.signer or "?" for c in ds.clips]), lengths)
    return show_tokens(frames, ids, signers, Path(out), codes, members)
