"""Regularisers used only while fine-tuning: mixing clips in time (CutMix on sequences) and stochastic
depth (drop-path) over the encoder's Transformer blocks. Neither changes the model's weights or its
saved config, so a model trained with them predicts, exports and ensembles like any other.

Both draw from torch's global generator, which the engine seeds per epoch: a resumed run replays them.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def temporal_cutmix(batch: dict, prob: float) -> tuple[dict, torch.Tensor | None, torch.Tensor | None]:
    """With probability `prob`, mix the batch in time: each clip's frames in a random span (a uniform share
    of the T positions) are replaced by the same positions of another clip of the batch.

    -> (batch, partner (B,) index of the clip each one borrowed from, share (B,) of the mixed clip's valid
    frames that came from the partner), or (batch, None, None) when the batch is left alone. The label of a
    mixed clip is (1 - share) its own and share the partner's.
    """
    frame = batch["frame_mask"]  # (B, T)
    b, t = frame.shape
    if prob <= 0 or b < 2 or float(torch.rand(())) >= prob:
        return batch, None, None
    partner = torch.randperm(b, device=frame.device)
    length = torch.round(torch.rand(b, device=frame.device) * t).long()  # (B,) frames borrowed
    start = torch.floor(torch.rand(b, device=frame.device) * (t - length + 1)).long()
    pos = torch.arange(t, device=frame.device)
    span = (pos >= start[:, None]) & (pos < (start + length)[:, None])  # (B, T)
    mixed = {}
    for key, value in batch.items():  # every per-frame tensor: coordinates, joint masks, frame mask, noise
        if value.dim() >= 2 and value.shape[:2] == (b, t):
            mixed[key] = torch.where(span.view(b, t, *[1] * (value.dim() - 2)), value[partner], value)
        else:
            mixed[key] = value
    valid = mixed["frame_mask"]
    share = (span & valid).sum(1).float() / valid.sum(1).clamp(min=1).float()  # (B,)
    return mixed, partner, share


def mixed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, partner: torch.Tensor | None,
                        share: torch.Tensor | None, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of (B, C) logits; for a batch `temporal_cutmix` mixed, each clip's loss is
    (1 - share) that of its own label plus share that of its partner's."""
    if partner is None:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    own, other = (F.cross_entropy(logits, y, label_smoothing=label_smoothing, reduction="none")
                  for y in (labels, labels[partner]))
    return ((1 - share) * own + share * other).mean()


def add_drop_path(blocks: nn.ModuleList, rate: float) -> list:
    """Stochastic depth on residual blocks: in training, block i of L is skipped for each clip with
    probability rate * (i + 1) / L (deeper blocks more often, as in DeiT and BEiT), and when kept its change
    to the stream is scaled by 1 / keep probability so that the expectation is the full model. A block's two
    residual branches are dropped together (torch's layer adds both inside). In eval the blocks run whole.

    -> the hook handles (`handle.remove()` takes drop-path off)."""
    handles = []
    for i, block in enumerate(blocks):
        p = rate * (i + 1) / len(blocks)
        if p <= 0:
            continue

        def hook(module, args, output, p=p):
            if not module.training:
                return None
            x = args[0]  # (B, T, D) the block's input
            keep = (torch.rand(x.shape[0], 1, 1, device=x.device) >= p).to(output.dtype)
            return x + (output - x) * keep / (1.0 - p)

        handles.append(block.register_forward_hook(hook))
    return handles
