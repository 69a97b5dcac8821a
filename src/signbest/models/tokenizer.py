"""Pose tokenizers: frame-wise triplet unit -> (left id, right id, body id) (paper 3.1, eq. 1-3).

One interface, as in vector-quantize-pytorch (`PoseTokenizer`):
- `encode(batch) -> (codes, indices, loss)`: per part, the code vectors (..., D), the ids (...) with
  MISSING (-1) where the part is absent or the frame is padding, and the tokenizer's own loss;
- `decode(indices) -> joints`: the inverse, ids back to normalised joints (..., J, 2) per part;
- `codebook_sizes`: the number of ids per part; `tokenize(batch)`: the ids alone, frozen, as a tuple.

Kinds (`TokenizerConfig.kind`, registry in `models/tokenizers.py`):
- coupled (BEST) and separate (the VQ baseline of table 6): `models/vq_tokenizer.py`;
- kmeans (baseline, table 6): `models/kmeans_tokenizer.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..pose.sequence import PART_SIZES, PARTS


@dataclass
class TokenizerConfig:
    kind: str = "coupled"  # a name in models/tokenizers.py: coupled | separate | kmeans
    hand_codes: int = 1000  # M1, shared by both hands
    body_codes: int = 500  # M2
    code_dim: int = 512  # dimension of each code word
    hidden: int = 512  # width of encoder and decoder MLPs
    beta_body: float = 0.1  # b1: weight of the body reconstruction loss
    beta_codebook: float = 1.0  # b2: ||sg[z] - z_q||^2
    beta_commit: float = 0.9  # b3: ||sg[z_q] - z||^2
    lr: float = 1e-3  # Adam learning rate
    lr_step_epochs: int = 10  # multiply the lr by lr_gamma every this many epochs
    lr_gamma: float = 0.1
    epochs: int = 30  # upper bound; time_budget_s may stop earlier
    time_budget_s: float = 0.0  # stop after this many seconds of training (0 = no limit)
    batch_size: int = 1024  # frames per step
    revive_every: int = 20  # steps between dead-code revivals (0 = never)
    kmeans_iters: int = 25  # Lloyd iterations for the kmeans kind
    data_fraction: float = 1.0  # share of the labelled train clips trained on (table 8, with pretrain's); pools whole
    seed: int = 0

    def __post_init__(self):
        from .tokenizers import TOKENIZERS  # the registry imports the kinds, which import this file

        if self.kind not in TOKENIZERS:
            raise ValueError(f"tokenizer kind must be one of {', '.join(TOKENIZERS)}, got '{self.kind}'")
        for name in ("hand_codes", "body_codes", "code_dim", "hidden", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"tokenizer {name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.data_fraction <= 1:
            raise ValueError(f"tokenizer data_fraction must be in (0, 1], got {self.data_fraction}")


def part_input(xy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, J, 2) coords + (N, J) joint mask -> (N, 3J) features; masked joints are (0, 0, 0)."""
    m = mask.to(xy.dtype)[..., None]
    return torch.cat([xy * m, m], -1).flatten(1)


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.LayerNorm(hidden),
                         nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden), nn.Linear(hidden, n_out))


def flat_parts(batch: dict) -> tuple[dict[str, torch.Tensor], tuple[int, ...]]:
    """Flatten any leading (B, T) dims of a batch to frames; a frame_mask (if any) masks padding."""
    lead = batch["body"].shape[:-2]
    out = {}
    for p in PARTS:
        j = PART_SIZES[p]
        mask = batch[f"{p}_mask"]
        if "frame_mask" in batch:
            mask = mask & batch["frame_mask"][..., None]
        out[p], out[f"{p}_mask"] = batch[p].reshape(-1, j, 2).float(), mask.reshape(-1, j)
    return out, lead


class PoseTokenizer(nn.Module):
    """What every tokenizer offers; subclasses implement `encode`, `decode` and `codebook_sizes`."""

    cfg: TokenizerConfig

    @property
    def codebook_sizes(self) -> dict[str, int]:
        """Ids per part: both hands share the hand codebook."""
        return {"left": self.cfg.hand_codes, "right": self.cfg.hand_codes, "body": self.cfg.body_codes}

    def encode(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
        """Parts (..., J, 2) with masks -> codes (..., D), indices (...) per part, and a scalar loss."""
        raise NotImplementedError

    def decode(self, indices: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Indices (...) per part -> joints (..., J, 2) per part (MISSING ids decode to something; ignore them)."""
        raise NotImplementedError

    @torch.no_grad()
    def tokenize(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(left_ids, right_ids, body_ids), each shaped like the batch's leading dims; eval mode, no gradient."""
        was = self.training
        self.eval()
        _, indices, _ = self.encode(batch)
        self.train(was)
        return tuple(indices[p] for p in PARTS)
