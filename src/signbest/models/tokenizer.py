"""Pose tokenizers: frame-wise triplet unit -> (left id, right id, body id) (paper 3.1, eq. 1-3).

- coupled (BEST): a hand encoder shared by both (mirrored) hands and a body encoder give z_l, z_r, z_b;
  ONE hand codebook quantizes both hands, a body codebook the body; one decoder reconstructs all three
  parts from Concat(h_kl, h_kr, d_kb), so hand and body codes are learned jointly.
- separate (VQ baseline, table 6): the same encoders and codebooks, but each part is decoded from its
  own code alone, so hand and body tokenizers train independently.
- kmeans (baseline, table 6): per-part clustering of normalised poses; see `KMeansTokenizer`.
All expose `tokenize(batch) -> (left_ids, right_ids, body_ids)`; a missing part gets id MISSING (-1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..pose.sequence import BODY_J, HAND_J, HANDS, PARTS
from .quantizer import MISSING, VectorQuantizer


@dataclass
class TokenizerConfig:
    kind: str = "coupled"  # coupled | separate | kmeans
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
        if self.kind not in ("coupled", "separate", "kmeans"):
            raise ValueError(f"tokenizer kind must be coupled, separate or kmeans, got '{self.kind}'")
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
    for p, j in (("body", BODY_J), ("left", HAND_J), ("right", HAND_J)):
        mask = batch[f"{p}_mask"]
        if "frame_mask" in batch:
            mask = mask & batch["frame_mask"][..., None]
        out[p], out[f"{p}_mask"] = batch[p].reshape(-1, j, 2).float(), mask.reshape(-1, j)
    return out, lead


class VQTokenizer(nn.Module):
    """The d-VAE tokenizer, coupled or separate (cfg.kind)."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        d, h = cfg.code_dim, cfg.hidden
        self.hand_encoder = mlp(HAND_J * 3, h, d)  # shared by both hands
        self.body_encoder = mlp(BODY_J * 3, h, d)
        self.hand_quantizer = VectorQuantizer(cfg.hand_codes, d, cfg.beta_codebook, cfg.beta_commit)
        self.body_quantizer = VectorQuantizer(cfg.body_codes, d, cfg.beta_codebook, cfg.beta_commit)
        if cfg.kind == "coupled":
            self.decoder = mlp(3 * d, 2 * h, (2 * HAND_J + BODY_J) * 2)
        else:
            self.hand_decoder = mlp(d, h, HAND_J * 2)
            self.body_decoder = mlp(d, h, BODY_J * 2)

    def encode(self, parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Frames -> latent z per part: (N, D) each."""
        hands = torch.cat([part_input(parts["left"], parts["left_mask"]),
                           part_input(parts["right"], parts["right_mask"])])
        zl, zr = self.hand_encoder(hands).chunk(2)
        return {"left": zl, "right": zr, "body": self.body_encoder(part_input(parts["body"], parts["body_mask"]))}

    def quantize(self, z: dict[str, torch.Tensor], parts: dict[str, torch.Tensor]):
        valid = {p: parts[f"{p}_mask"].any(-1) for p in PARTS}
        qh, ih, lh = self.hand_quantizer(torch.cat([z["left"], z["right"]]), torch.cat([valid["left"], valid["right"]]))
        qb, ib, lb = self.body_quantizer(z["body"], valid["body"])
        (ql, qr), (il, ir) = qh.chunk(2), ih.chunk(2)
        return {"left": ql, "right": qr, "body": qb}, {"left": il, "right": ir, "body": ib}, lh + lb

    def decode(self, q: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Quantized vectors -> reconstructed normalised joints per part."""
        n = q["body"].shape[0]
        if self.cfg.kind == "coupled":
            out = self.decoder(torch.cat([q["left"], q["right"], q["body"]], -1))
            l, r, b = out.split([HAND_J * 2, HAND_J * 2, BODY_J * 2], -1)
        else:
            l, r = self.hand_decoder(torch.cat([q["left"], q["right"]])).chunk(2)
            b = self.body_decoder(q["body"])
        return {"left": l.reshape(n, HAND_J, 2), "right": r.reshape(n, HAND_J, 2), "body": b.reshape(n, BODY_J, 2)}

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Returns the d-VAE loss (eq. 3) and a dict with reconstructions, ids and per-part errors."""
        parts, _ = flat_parts(batch)
        z = self.encode(parts)
        q, ids, vq_loss = self.quantize(z, parts)
        rec = self.decode(q)
        err = {}
        for p in PARTS:
            m = parts[f"{p}_mask"].to(rec[p].dtype)
            err[p] = ((rec[p].float() - parts[p]).abs().sum(-1) * m).sum() / m.sum().clamp(min=1)  # L1 per joint
        loss = err["left"] + err["right"] + self.cfg.beta_body * err["body"] + vq_loss
        return loss, {"rec": rec, "ids": ids, "z": z, "parts": parts, "vq_loss": vq_loss}

    @torch.no_grad()
    def tokenize(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(…, J, 2) parts with masks -> (left_ids, right_ids, body_ids), each shaped like the leading dims."""
        was = self.training
        self.eval()
        parts, lead = flat_parts(batch)
        _, ids, _ = self.quantize(self.encode(parts), parts)
        self.train(was)
        return tuple(ids[p].reshape(lead) for p in PARTS)


class KMeansTokenizer(nn.Module):
    """Per-part k-means on normalised joints (hands pooled: the left hand is stored mirrored)."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("hand_centroids", torch.zeros(cfg.hand_codes, HAND_J * 2))
        self.register_buffer("body_centroids", torch.zeros(cfg.body_codes, BODY_J * 2))

    @staticmethod
    def _features(xy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (xy * mask[..., None].to(xy.dtype)).flatten(1)

    @staticmethod
    def _assign(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        d = x.pow(2).sum(1, keepdim=True) - 2 * x @ c.t() + c.pow(2).sum(1)[None]
        return d.argmin(1)

    @torch.no_grad()
    def fit(self, parts: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, float]:
        """Lloyd's algorithm from k-means++-style seeds; empty clusters are re-seeded from far points."""
        hands = torch.cat([self._features(parts[p], parts[f"{p}_mask"])[parts[f"{p}_mask"].any(-1)]
                           for p in HANDS])
        body = self._features(parts["body"], parts["body_mask"])[parts["body_mask"].any(-1)]
        inertia = {}
        for name, x, c in (("hand", hands, self.hand_centroids), ("body", body, self.body_centroids)):
            if x.shape[0] == 0:
                raise ValueError(f"k-means: no valid {name} frames to cluster")
            k = c.shape[0]
            c.copy_(x[torch.randint(0, x.shape[0], (k,), generator=generator)])
            for _ in range(self.cfg.kmeans_iters):
                a = self._assign(x, c)
                counts = torch.bincount(a, minlength=k)
                sums = torch.zeros_like(c).index_add_(0, a, x)
                nonempty = counts > 0
                c[nonempty] = sums[nonempty] / counts[nonempty, None]
                if (~nonempty).any():  # re-seed empty clusters on the worst-fitted points
                    err = (x - c[a]).pow(2).sum(1)
                    far = err.topk(int((~nonempty).sum())).indices
                    c[~nonempty] = x[far]
            inertia[name] = float((x - c[self._assign(x, c)]).pow(2).sum(1).mean())
        return inertia

    @torch.no_grad()
    def tokenize(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        parts, lead = flat_parts(batch)
        out = []
        for p, c in (("left", self.hand_centroids), ("right", self.hand_centroids), ("body", self.body_centroids)):
            ids = self._assign(self._features(parts[p], parts[f"{p}_mask"]), c)
            out.append(torch.where(parts[f"{p}_mask"].any(-1), ids, torch.full_like(ids, MISSING)).reshape(lead))
        return tuple(out)

    def reconstruct(self, ids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Centroid of each id, as joints: the K-Means counterpart of the d-VAE's decoder."""
        out = {}
        for p, c, j in (("left", self.hand_centroids, HAND_J), ("right", self.hand_centroids, HAND_J),
                        ("body", self.body_centroids, BODY_J)):
            out[p] = c[ids[p].clamp(min=0)].reshape(-1, j, 2)
        return out


def build_tokenizer(cfg: TokenizerConfig) -> nn.Module:
    return KMeansTokenizer(cfg) if cfg.kind == "kmeans" else VQTokenizer(cfg)
