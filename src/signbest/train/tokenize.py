"""Apply a trained tokenizer to whole datasets: id files, and the token picture."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import SignDataset
from ..viz import show_tokens
from .checkpoint import _atomic
from .tokenizer import load_tokenizer


def dataset_ids(tokenizer_dir: Path, data: Path, split: str = "all"):
    tok = load_tokenizer(tokenizer_dir)
    ds = SignDataset(data, split=split)
    frames = {k: torch.from_numpy(np.concatenate([ds.clip_arrays(i)[k] for i in range(len(ds))]))
              for k in ds.clip_arrays(0)}
    ids = {k: [] for k in ("left", "right", "body")}
    n = frames["body"].shape[0]
    for s in range(0, n, 8192):
        out = tok.tokenize({k: v[s:s + 8192] for k, v in frames.items()})
        for k, v in zip(("left", "right", "body"), out):
            ids[k].append(v.numpy())
    lengths = [len(ds.clip_arrays(i)["body"]) for i in range(len(ds))]
    return ds, {k: v.numpy() for k, v in frames.items()}, {k: np.concatenate(v) for k, v in ids.items()}, lengths


def tokenize_dataset(tokenizer_dir: Path, data: Path, out: Path | None = None, split: str = "all") -> Path:
    """One .npz: clip_ids, offsets (N+1), and left/right/body ids over all frames (-1 = missing part)."""
    ds, _, ids, lengths = dataset_ids(tokenizer_dir, data, split)
    out = Path(out) if out else Path(tokenizer_dir) / f"tokens-{Path(data).stem}.npz"
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    _atomic(out, lambda tmp: np.savez(open(tmp, "wb"), clip_ids=np.array([c.clip_id for c in ds.clips]),
                                      offsets=offsets, **ids))
    return out


def show_dataset_tokens(tokenizer_dir: Path, data: Path, out: Path, codes: int = 6, members: int = 6,
                        split: str = "all") -> Path:
    ds, frames, ids, lengths = dataset_ids(tokenizer_dir, data, split)
    signers = np.repeat(np.array([c.signer or "?" for c in ds.clips]), lengths)
    return show_tokens(frames, ids, signers, Path(out), codes, members)
