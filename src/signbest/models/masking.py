"""Masking for pre-training, as vectorised callables driven by per-sample noise.

The noise comes with each dataset item (uniform numbers drawn from a generator seeded by seed, epoch
and clip index), so a clip is masked the same way whichever process or batch it lands in: runs are
reproducible, resumable, and a torchrun run matches a single process.

Every strategy is a callable `(frame_mask (B, T), noise (B, T, NOISE_DIM), present (B, T, 3)) -> Masks`.
Part order everywhere: 0 = left hand, 1 = right hand, 2 = body. Masks: True = masked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..pose.sequence import PART_SIZES, PARTS, UNIT_JOINTS

NOISE_DIM = 4 + UNIT_JOINTS + 1  # frame choice, 3 part draws, one draw per joint, 1 mode draw


@dataclass
class MaskingConfig:
    strategy: str = "mum"  # mum (paper) | random (SignBERT's R-Mask on the raw joints) | none
    alpha: float = 0.5  # fraction of a clip's valid frames chosen for masking
    part_prob: float = 0.5  # MUM: each part of a chosen frame is masked with this probability
    parts: str = "both"  # both | hand | body: which parts may be masked (table 7)
    joint_prob: float = 0.5  # R-Mask: share of a chosen frame's joints dropped in joint masking
    clip_prob: float = 1 / 3  # R-Mask: chance that a clip masks one contiguous run instead of scattered frames
    present_only: bool = True  # MUM: mask only parts the detector found (False: the pre-0.2 behaviour,
    #   where ~30% of masked parts were missing hands with no target to predict)

    def __post_init__(self):
        if self.strategy not in (*MASKINGS, "none"):
            raise ValueError(f"masking strategy must be one of {', '.join(MASKINGS)} or none, got '{self.strategy}'")
        if self.parts not in ("both", "hand", "body"):
            raise ValueError(f"masking parts must be both, hand or body, got '{self.parts}'")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"masking alpha must be in (0, 1], got {self.alpha}")


class Masks(NamedTuple):
    """What a masking strategy decides for a batch."""

    part_mask: torch.Tensor  # (B, T, 3): parts replaced by the mask token, where the loss applies
    joint_drop: torch.Tensor | None  # (B, T, UNIT_JOINTS): raw joints hidden before the GCN (R-Mask), or None


def _allowed(parts: str, device) -> torch.Tensor:
    return torch.tensor({"both": [1, 1, 1], "hand": [1, 1, 0], "body": [0, 0, 1]}[parts], dtype=torch.bool, device=device)


def choose_frames(frame_mask: torch.Tensor, score: torch.Tensor, alpha: float) -> torch.Tensor:
    """(B, T) bool: the round(alpha * n_valid) valid frames with the lowest scores, per clip."""
    score = torch.where(frame_mask, score, torch.full_like(score, 2.0))
    rank = score.argsort(1).argsort(1)
    k = (alpha * frame_mask.sum(1, keepdim=True)).round().clamp(min=1)
    return (rank < k) & frame_mask


class MUMMasking:
    """Masked unit modelling (paper 3.3): choose alpha*T frames; in each, mask each allowed part with
    probability part_prob, and at least one of them, giving hand-only, body-only and hand-body cases."""

    def __init__(self, cfg: MaskingConfig):
        self.cfg = cfg

    def __repr__(self) -> str:
        return f"MUMMasking(alpha={self.cfg.alpha}, part_prob={self.cfg.part_prob}, parts={self.cfg.parts})"

    def __call__(self, frame_mask: torch.Tensor, noise: torch.Tensor,
                 present: torch.Tensor | None = None) -> Masks:
        """frame_mask (B, T), noise (B, T, NOISE_DIM), present (B, T, 3) parts found -> Masks (no joint drop).

        With `present` (and cfg.present_only), frames are chosen among those with a maskable part that
        is present, and only present parts are masked, so every masked part has a target."""
        allowed = _allowed(self.cfg.parts, noise.device).expand(*frame_mask.shape, 3)
        if present is not None and self.cfg.present_only:
            allowed = allowed & present
            frame_mask = frame_mask & allowed.any(-1)
        chosen = choose_frames(frame_mask, noise[..., 0], self.cfg.alpha)
        draws = noise[..., 1:4]
        parts = (draws < self.cfg.part_prob) & allowed
        # Frames whose draws masked nothing mask their allowed part with the lowest draw instead.
        fallback = torch.where(allowed, draws, torch.full_like(draws, 2.0)).argmin(-1)
        none = ~parts.any(-1, keepdim=True)
        parts = parts | (none & torch.nn.functional.one_hot(fallback, 3).bool())
        return Masks(chosen[..., None] & parts, None)


class RandomMasking:
    """SignBERT-style R-Mask on the raw input: in chosen frames drop some joints (joint masking) or all
    joints (frame masking); with probability clip_prob the chosen frames form one contiguous clip.
    Masks: the parts the dropped joints touch (B, T, 3), where losses apply, and the dropped joints."""

    def __init__(self, cfg: MaskingConfig):
        self.cfg = cfg

    def __repr__(self) -> str:
        return f"RandomMasking(alpha={self.cfg.alpha}, joint_prob={self.cfg.joint_prob}, clip_prob={self.cfg.clip_prob})"

    def __call__(self, frame_mask: torch.Tensor, noise: torch.Tensor, present: torch.Tensor | None = None) -> Masks:
        """As MUM's call; `present` is not used: R-Mask hides raw joints whether or not they were found."""
        b, t = frame_mask.shape
        scattered = choose_frames(frame_mask, noise[..., 0], self.cfg.alpha)
        n = frame_mask.sum(1, keepdim=True)
        k = (self.cfg.alpha * n).round().clamp(min=1)
        start = (noise[:, :1, -1] * (n - k + 1).clamp(min=1)).floor()
        pos = torch.arange(t, device=noise.device)[None]
        clip = (pos >= start) & (pos < start + k) & frame_mask
        use_clip = noise[:, 1:2, -1] < self.cfg.clip_prob
        chosen = torch.where(use_clip, clip, scattered)
        whole_frame = noise[..., 1] < 0.5  # frame masking, else joint masking
        joints = noise[..., 4:4 + UNIT_JOINTS] < self.cfg.joint_prob
        allowed = _allowed(self.cfg.parts, noise.device)
        joint_part = torch.cat([torch.full((PART_SIZES[p],), k, dtype=torch.long)
                                for k, p in enumerate(PARTS)]).to(noise.device)
        drop = chosen[..., None] & (whole_frame[..., None] | joints) & allowed[joint_part]
        parts = torch.stack([drop[..., joint_part == p].any(-1) for p in range(3)], -1)
        return Masks(parts, drop)


MASKINGS = {"mum": MUMMasking, "random": RandomMasking}  # MaskingConfig.strategy -> class ("none": no masking)


def build_masking(cfg: MaskingConfig) -> MUMMasking | RandomMasking | None:
    return MASKINGS[cfg.strategy](cfg) if cfg.strategy in MASKINGS else None
