"""Isolated sign recognition: the BEST encoder with a prediction head (paper 3.4).

Heads (config `head`):
- attention (default): after the authors' later code. Each hand step scores itself with a Linear(Dp, 1);
  the steps of both hands form one sequence, steps without a detected hand are masked out, and a
  softmax-weighted sum pools them; the body is pooled the same way over time with its own scorer. The
  pooled hand and body vectors are summed, then dropout and a Linear to the classes. Default because
  MediaPipe misses about half of the hands on WLASL: this head simply ignores missing steps, while
  mean pooling averages them in.
- mlp: the paper's "simple MLP" on the mean of the valid frames' features.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .best import BESTEncoder, ModelConfig
from .streams import STREAMS, stream_view


@dataclass
class HeadConfig:
    kind: str = "attention"  # attention | mlp
    dropout: float = 0.2  # before the final Linear
    stream: str = "joints"  # what the classifier reads: joints | bones | motion (models/streams.py)

    def __post_init__(self):
        if self.kind not in ("attention", "mlp"):
            raise ValueError(f"head kind must be attention or mlp, got '{self.kind}'")
        if self.stream not in STREAMS:
            raise ValueError(f"head stream must be one of {', '.join(STREAMS)}, got '{self.stream}'")


class SignClassifier(nn.Module):
    def __init__(self, cfg: ModelConfig, num_classes: int, head: HeadConfig | None = None):
        super().__init__()
        self.cfg = cfg
        self.head_cfg = head or HeadConfig()
        self.num_classes = num_classes
        self.encoder = BESTEncoder(cfg)
        dp = cfg.part_dim
        if self.head_cfg.kind == "attention":
            self.hand_score = nn.Linear(dp, 1)
            self.body_score = nn.Linear(dp, 1)
            self.classifier = nn.Sequential(nn.Dropout(self.head_cfg.dropout), nn.Linear(dp, num_classes))
        else:
            self.classifier = nn.Sequential(nn.Linear(cfg.dim, cfg.dim // 2), nn.GELU(),
                                            nn.Dropout(self.head_cfg.dropout), nn.Linear(cfg.dim // 2, num_classes))

    def head_keys(self) -> set[str]:
        return {k for k in self.state_dict() if not k.startswith("encoder.")}

    @staticmethod
    def _attend(x: torch.Tensor, scorer: nn.Linear, valid: torch.Tensor) -> torch.Tensor:
        """x (B, S, Dp), valid (B, S) -> (B, Dp); a clip with no valid step pools to zeros."""
        s = scorer(x).squeeze(-1).float().masked_fill(~valid, float("-inf"))
        # A row without a valid step is all -inf, whose softmax is NaN: those rows pool to zeros.
        w = torch.where(valid.any(-1, keepdim=True), torch.softmax(s, -1), 0.0)
        return torch.einsum("bs,bsd->bd", w.to(x.dtype), x)

    def forward_head(self, features: torch.Tensor, batch: dict, pre_logits: bool = False) -> torch.Tensor:
        b, t = features.shape[:2]
        frame = batch["frame_mask"]
        if self.head_cfg.kind == "attention":
            parts = features.reshape(b, t, 3, -1)
            hands = torch.cat([parts[:, :, 0], parts[:, :, 1]], 1)  # both hands along time: (B, 2T, Dp)
            hand_valid = torch.cat([batch["left_mask"].any(-1) & frame, batch["right_mask"].any(-1) & frame], 1)
            pooled = self._attend(hands, self.hand_score, hand_valid) + \
                self._attend(parts[:, :, 2], self.body_score, frame)
        else:
            w = frame.to(features.dtype)[..., None]
            pooled = (features * w).sum(1) / w.sum(1).clamp(min=1)
        return pooled if pre_logits else self.classifier(pooled)

    def forward(self, batch: dict) -> torch.Tensor:
        """-> logits (B, num_classes)."""
        view = stream_view(batch, self.head_cfg.stream)  # the head pools the steps its stream has
        return self.forward_head(self.encoder(view), view)

    def load_pretrained_encoder(self, weights: dict[str, torch.Tensor]) -> None:
        """Load a pre-trained checkpoint's encoder, dropping its MUM heads; exactly the new head must
        be missing afterwards (MAE-style check)."""
        encoder_weights = {k: v for k, v in weights.items() if k.startswith("encoder.")}
        if not encoder_weights:
            raise ValueError("the checkpoint holds no encoder weights (keys starting with 'encoder.')")
        missing, unexpected = self.load_state_dict(encoder_weights, strict=False)
        if unexpected:
            raise ValueError(f"pre-trained encoder has keys this model lacks: {sorted(unexpected)[:5]}")
        if set(missing) != self.head_keys():
            raise ValueError(f"after loading the encoder, missing keys {sorted(missing)} differ from the head's "
                             f"{sorted(self.head_keys())}: the pre-trained model has another architecture")
