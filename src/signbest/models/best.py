"""BEST: per-part GCN embedding -> Transformer encoder -> masked unit modelling heads (paper 3.2-3.3).

Shapes: B clips, T frames, P = 3 parts (left hand, right hand, body), Dp = part_dim, D = 3 * Dp.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..pose.sequence import BODY_J, HAND_J, PART_SIZES, PARTS
from .dropout import use_fast_dropout
from .gcn import PartGCN
from .tokenizer import part_input

PART_NAMES = PARTS


@dataclass
class ModelConfig:
    part_dim: int = 512  # Dp: features per part; D = 3 * Dp (paper: 512 -> 1536)
    layers: int = 3  # Transformer blocks
    heads: int = 8  # attention heads
    ffn: int = 2048  # feed-forward width
    dropout: float = 0.1  # Transformer dropout
    gcn_dropout: float = 0.25  # dropout after the GCN embedding
    gcn_widths: tuple[int, ...] = (128, 128, 256)  # joint-level graph conv widths
    gcn_pooled_widths: tuple[int, ...] = (256, 512)  # part-level graph conv widths (last = GCN output)
    position_encoding: bool = True  # sinusoidal temporal encoding (paper); off relies on attention alone
    max_frames: int = 1024  # longest clip the position table covers
    hand_codes: int = 1000  # size of the tokenizer's hand vocabulary (MUM head W1)
    body_codes: int = 500  # size of the body vocabulary (MUM head W2)
    objective: str = "token"  # token (cross-entropy on tokenizer ids) | regression (masked coordinates, L1)
    norm_first: bool = False  # pre-LN blocks + a final LayerNorm (off: the paper's post-LN BERT blocks)

    def __post_init__(self):
        self.gcn_widths, self.gcn_pooled_widths = tuple(self.gcn_widths), tuple(self.gcn_pooled_widths)
        if (3 * self.part_dim) % self.heads:
            raise ValueError(f"model width 3 x {self.part_dim} must be divisible by heads={self.heads}")
        if self.objective not in ("token", "regression"):
            raise ValueError(f"objective must be token or regression, got '{self.objective}'")

    @property
    def dim(self) -> int:
        return 3 * self.part_dim


def sinusoidal_table(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe


class BESTEncoder(nn.Module):
    """Pose triplet units -> contextual features (B, T, D)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        dp = cfg.part_dim
        self.hand_gcn = PartGCN("hand", dp, cfg.gcn_widths, cfg.gcn_pooled_widths, cfg.gcn_dropout)  # both hands
        self.body_gcn = PartGCN("body", dp, cfg.gcn_widths, cfg.gcn_pooled_widths, cfg.gcn_dropout)
        self.mask_token = nn.Parameter(torch.randn(dp) * 0.02)  # e_mask, shared by the three parts
        self.missing_token = nn.Parameter(torch.randn(3, dp) * 0.02)  # a part the detector did not find
        self.input_norm = nn.LayerNorm(cfg.dim)
        self.register_buffer("position", sinusoidal_table(cfg.max_frames, cfg.dim), persistent=False)
        self.dropout = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.ffn, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=cfg.norm_first)
        # Pre-LN blocks leave their residual stream unnormalised: a final LayerNorm closes them.
        self.blocks = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False,
                                            norm=nn.LayerNorm(cfg.dim) if cfg.norm_first else None)
        # Export (ONNX) runs every part through the GCNs, present or not: one graph for any input.
        self.dense_embedding = False
        use_fast_dropout(self)  # the GCNs' and the blocks' dropouts too (attention-weight dropout stays torch's)

    def embed(self, batch: dict, joint_drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-part embeddings (B, T, 3, Dp) and part validity (B, T, 3). `joint_drop` (B, T, UNIT_JOINTS) hides
        raw joints (R-Mask) by clearing their validity before the GCN sees them."""
        b, t = batch["body"].shape[:2]
        masks = [batch[f"{p}_mask"] & batch["frame_mask"][..., None] for p in PART_NAMES]
        if joint_drop is not None:
            masks = [m & ~d for m, d in zip(masks, joint_drop.split([PART_SIZES[p] for p in PARTS], -1))]
        dtype = self.mask_token.dtype  # the weights decide: fp32 (autocast casts later) or a bf16 model
        feats = [part_input(batch[p].reshape(b * t, -1, 2).to(dtype), m.reshape(b * t, -1)).reshape(b * t, -1, 3)
                 for p, m in zip(PART_NAMES, masks)]
        valid = torch.stack([m.any(-1) for m in masks], -1)  # (B, T, 3)
        flat_valid = valid.reshape(b * t, 3)
        if self.dense_embedding:
            return self._embed_dense(feats, flat_valid).reshape(b, t, 3, -1), valid
        # The GCNs run only on parts that are present: missing hands (half of them on WLASL) and padding
        # frames get the missing token instead, so computing them would be wasted work.
        emb = self.missing_token.expand(b * t, 3, -1).clone()
        hand_in = torch.cat([feats[0][flat_valid[:, 0]], feats[1][flat_valid[:, 1]]])
        hand_out = self.hand_gcn(hand_in)  # one network for both hands
        n_left = int(flat_valid[:, 0].sum())
        emb = emb.to(hand_out.dtype)
        emb[flat_valid[:, 0], 0] = hand_out[:n_left]
        emb[flat_valid[:, 1], 1] = hand_out[n_left:]
        body_out = self.body_gcn(feats[2][flat_valid[:, 2]])
        emb[flat_valid[:, 2], 2] = body_out.to(emb.dtype)
        return emb.reshape(b, t, 3, -1), valid

    def _embed_dense(self, feats: list[torch.Tensor], flat_valid: torch.Tensor) -> torch.Tensor:
        """`embed`'s result computed on every frame, then the missing token where a part is absent:
        the same numbers (each GCN row is independent) without data-dependent shapes, for export."""
        hands = self.hand_gcn(torch.cat([feats[0], feats[1]]))  # (2 B*T, Dp)
        n = feats[0].shape[0]
        computed = torch.stack([hands[:n], hands[n:], self.body_gcn(feats[2]).to(hands.dtype)], 1)  # (B*T, 3, Dp)
        return torch.where(flat_valid[..., None], computed, self.missing_token.to(hands.dtype))

    def forward(self, batch: dict, part_mask: torch.Tensor | None = None,
                joint_drop: torch.Tensor | None = None) -> torch.Tensor:
        """batch: parts (B, T, J, 2) + masks; part_mask (B, T, 3) True = replace by the mask token."""
        emb, _ = self.embed(batch, joint_drop)
        if part_mask is not None:
            emb = torch.where(part_mask[..., None], self.mask_token.to(emb.dtype), emb)
        b, t = emb.shape[:2]
        x = self.input_norm(emb.reshape(b, t, -1))  # (B, T, D)
        if self.cfg.position_encoding:
            if not torch.jit.is_tracing() and t > self.cfg.max_frames:
                raise ValueError(f"clip of {t} frames is longer than max_frames={self.cfg.max_frames}")
            x = x + self.position[:t].to(x.dtype)
        x = self.dropout(x)
        return self.blocks(x, src_key_padding_mask=~batch["frame_mask"])


class BESTPretrainer(nn.Module):
    """Encoder + MUM prediction heads. The model owns its objective (`forward_loss`)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = BESTEncoder(cfg)
        dp = cfg.part_dim
        if cfg.objective == "token":
            self.hand_head = nn.Linear(dp, cfg.hand_codes)  # W1, shared by both hands
            self.body_head = nn.Linear(dp, cfg.body_codes)  # W2
        else:
            self.hand_head = nn.Linear(dp, HAND_J * 2)
            self.body_head = nn.Linear(dp, BODY_J * 2)

    def forward_heads(self, features: torch.Tensor, select: torch.Tensor) -> list[torch.Tensor]:
        """Run the heads only where `select` (B, T, 3) is True: a list of 3 (n_p, out) tensors."""
        parts = features.reshape(*features.shape[:2], 3, -1)  # (B, T, 3, Dp)
        heads = (self.hand_head, self.hand_head, self.body_head)
        return [heads[p](parts[..., p, :][select[..., p]]) for p in range(3)]

    def forward_loss(self, features: torch.Tensor, part_mask: torch.Tensor, targets: dict) -> tuple[torch.Tensor, dict]:
        """Loss over masked parts with a valid target only (labels taken at masked positions)."""
        if self.cfg.objective == "token":
            ids = torch.stack([targets["left"], targets["right"], targets["body"]], -1)  # (B, T, 3)
            select = part_mask & (ids >= 0)
            logits = self.forward_heads(features, select)
            labels = [ids[..., p][select[..., p]] for p in range(3)]
            n = sum(int(lb.numel()) for lb in labels)
            loss = sum(F.cross_entropy(lg.float(), lb, reduction="sum") for lg, lb in zip(logits, labels)) / max(n, 1)
            correct = sum(int((lg.argmax(-1) == lb).sum()) for lg, lb in zip(logits, labels))
            return loss, {"n_targets": n, "correct": correct}
        coords = torch.stack([targets["valid"][..., p] for p in range(3)], -1)  # parts present in the frame
        select = part_mask & coords
        preds = self.forward_heads(features, select)
        loss_sum, n = features.new_zeros(()), 0
        for p, name in enumerate(PART_NAMES):
            xy, m = targets[name][select[..., p]], targets[f"{name}_mask"][select[..., p]]  # (n, J, 2), (n, J)
            err = (preds[p].float().reshape(xy.shape) - xy.float()).abs().sum(-1) * m
            loss_sum, n = loss_sum + err.sum(), n + int(m.sum())
        return loss_sum / max(n, 1), {"n_targets": n, "correct": 0}

    def forward(self, batch: dict, targets: dict, part_mask: torch.Tensor, joint_drop: torch.Tensor | None = None):
        """Returns (loss, stats, part_mask)."""
        features = self.encoder(batch, None if joint_drop is not None else part_mask, joint_drop)
        loss, stats = self.forward_loss(features, part_mask, targets)
        return loss, stats, part_mask
