"""A trained tokenizer in use: loading it, the frames of datasets, its quality, id files, the token picture."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .checkpoint import atomic_write, load_state, load_weights
from .sections import section
from .outputs import claim_file, record
from .data import SignDataset
from .models.quantizer import codebook_stats
from .models.tokenizer import TokenizerConfig, flat_parts
from .models.tokenizers import build_tokenizer
from .models.vq_tokenizer import VQTokenizer
from .pose.sequence import PARTS
from .viz import show_tokens



def frame_pool(datasets: list[SignDataset], keep_empty: bool = False) -> dict[str, torch.Tensor]:
    """Every frame of the datasets' clips (no sampling), as flat tensors; frames with no part at all
    are dropped unless `keep_empty` (needed when ids must line up with clip offsets)."""
    chunks: dict[str, list] = {}
    for ds in datasets:
        for i in range(len(ds)):
            for k, v in ds.clip_arrays(i).items():
                chunks.setdefault(k, []).append(torch.from_numpy(v))
    frames = {k: torch.cat(v) for k, v in chunks.items()}
    if keep_empty:
        return frames
    keep = frames["body_mask"].any(-1) | frames["left_mask"].any(-1) | frames["right_mask"].any(-1)
    return {k: v[keep] for k, v in frames.items()}


def _batches(frames: dict[str, torch.Tensor], batch_size: int, order: torch.Tensor | None = None):
    n = frames["body"].shape[0]
    order = torch.arange(n) if order is None else order
    for s in range(0, n, batch_size):
        idx = order[s:s + batch_size]
        yield {k: v[idx] for k, v in frames.items()}


@torch.no_grad()
def evaluate_tokenizer(tok, frames: dict[str, torch.Tensor], batch_size: int = 4096) -> dict[str, float]:
    """Reconstruction error (mean joint distance in 256x256-crop pixels) per part, usage and perplexity
    per codebook, on the given frames."""
    tok.eval()
    err_sum = {p: 0.0 for p in PARTS}
    err_n = {p: 0 for p in PARTS}
    ids_all = {p: [] for p in PARTS}
    for batch in _batches(frames, batch_size):
        _, ids, _ = tok.encode(batch)  # batches of flat frames: ids (N,) and their decoding (N, J, 2) per part
        rec = tok.decode(ids)
        parts, _ = flat_parts(batch)
        for p in PARTS:
            m = parts[f"{p}_mask"] & (ids[p] >= 0)[:, None]
            dist = (rec[p].float() - parts[p]).norm(dim=-1) * 256
            err_sum[p] += float(dist[m].sum())
            err_n[p] += int(m.sum())
            ids_all[p].append(ids[p])
    out = {f"rec_px_{p}": err_sum[p] / max(err_n[p], 1) for p in PARTS}
    hand = codebook_stats(torch.cat(ids_all["left"] + ids_all["right"]), tok.codebook_sizes["left"])
    body = codebook_stats(torch.cat(ids_all["body"]), tok.codebook_sizes["body"])
    out.update({"hand_usage": hand["usage"], "hand_perplexity": hand["perplexity"],
                "body_usage": body["usage"], "body_perplexity": body["perplexity"]})
    return out


def load_tokenizer(folder: str | Path) -> torch.nn.Module:
    """A trained tokenizer from its folder (model.safetensors + config.json), in eval mode."""
    weights, cfg = load_weights(Path(folder))
    if cfg.get("stage") != "tokenizer":
        raise ValueError(f"{folder}: not a tokenizer folder (it holds a {cfg.get('stage') or 'unknown'} checkpoint); "
                         "give the folder that train-tokenizer wrote")
    tok = build_tokenizer(section(cfg, "tokenizer", TokenizerConfig))
    load_state(tok, weights, folder, "tokenizer")
    if isinstance(tok, VQTokenizer):
        tok.hand_quantizer.initialised.fill_(True)
        tok.body_quantizer.initialised.fill_(True)
    return tok.eval()




def dataset_ids(tokenizer_dir: Path, data: Path, split: str = "all"):
    """Every frame of every clip (none dropped, so clip offsets hold) with its three token ids."""
    tok = load_tokenizer(tokenizer_dir)
    ds = SignDataset(data, split=split)
    frames = frame_pool([ds], keep_empty=True)
    ids = {k: [] for k in PARTS}
    for s in range(0, frames["body"].shape[0], 8192):
        for k, v in zip(ids, tok.tokenize({k: v[s:s + 8192] for k, v in frames.items()})):
            ids[k].append(v.numpy())
    lengths = ds.data.lengths()[ds.rows]
    return ds, {k: v.numpy() for k, v in frames.items()}, {k: np.concatenate(v) for k, v in ids.items()}, lengths


def tokenize_dataset(tokenizer_dir: Path, data: Path, out: Path | None = None, split: str = "all") -> Path:
    """One .npz: clip_ids, offsets (N+1), and left/right/body ids over all frames (-1 = missing part)."""
    out = Path(out) if out else Path(tokenizer_dir) / f"tokens-{Path(data).stem}.npz"
    claim_file(out, [tokenizer_dir, data], own_kinds=("tokenizer",))  # before the work: never an input
    ds, _, ids, lengths = dataset_ids(tokenizer_dir, data, split)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name without .npz, numpy would append one
            np.savez(f, clip_ids=np.array([c.clip_id for c in ds.clips]), offsets=offsets, **ids)

    atomic_write(out, write)
    record(out)
    return out


def show_dataset_tokens(tokenizer_dir: Path, data: Path, out: Path, codes: int = 6, members: int = 6,
                        split: str = "all") -> Path:
    claim_file(out, [tokenizer_dir, data], own_kinds=("demo",))
    ds, frames, ids, lengths = dataset_ids(tokenizer_dir, data, split)
    signers = np.repeat(np.array([c.signer or "?" for c in ds.clips]), lengths)
    path = show_tokens(frames, ids, signers, Path(out), codes, members)
    record(path)
    return path
