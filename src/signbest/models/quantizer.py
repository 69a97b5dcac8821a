"""Vector quantizer with a straight-through estimator, a codebook / commitment loss and dead-code revival.

Contract (as in vector-quantize-pytorch): ``forward(z, valid) -> (quantized, indices, loss)`` and the
inverse ``indices_to_codes(indices)``. Invalid rows (a missing hand, padding) get index -1, a zero
vector, and contribute nothing to the loss or to the usage statistics.
"""
from __future__ import annotations

import torch
import torch.nn as nn

MISSING = -1  # reserved id of a part that is absent in a frame; pre-training ignores it


class VectorQuantizer(nn.Module):
    def __init__(self, num_codes: int, dim: int, beta_codebook: float = 1.0, beta_commit: float = 0.9):
        super().__init__()
        self.num_codes, self.dim = num_codes, dim
        self.beta_codebook, self.beta_commit = beta_codebook, beta_commit
        self.codebook = nn.Parameter(torch.randn(num_codes, dim) / dim ** 0.5)
        # Usage since the last revival; saved so that a resumed run revives exactly as an unbroken one.
        self.register_buffer("usage", torch.zeros(num_codes))
        self.register_buffer("initialised", torch.tensor(False))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) index of the nearest code in Euclidean distance."""
        cb = self.codebook.float()
        z = z.float()
        d = z.pow(2).sum(1, keepdim=True) - 2 * z @ cb.t() + cb.pow(2).sum(1)[None]
        return d.argmin(1)

    def forward(self, z: torch.Tensor, valid: torch.Tensor | None = None):
        """z (N, D), valid (N,) bool -> quantized (N, D), indices (N,), loss ()."""
        if valid is None:
            valid = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
        if self.training and not bool(self.initialised) and valid.any():
            self._init_from(z[valid].detach())
        idx = self.nearest(z)
        q = self.codebook[idx].to(z.dtype)
        v = valid[:, None].to(z.dtype)
        n = v.sum().clamp(min=1) * self.dim
        codebook_loss = (((q - z.detach()) ** 2) * v).sum() / n  # ||sg[z] - z_q||^2
        commit_loss = (((z - q.detach()) ** 2) * v).sum() / n  # ||sg[z_q] - z||^2
        loss = self.beta_codebook * codebook_loss + self.beta_commit * commit_loss
        q = z + (q - z).detach()  # straight-through: the decoder's gradient is copied to the encoder
        q = q * v
        idx = torch.where(valid, idx, torch.full_like(idx, MISSING))
        if self.training:
            self.usage += torch.bincount(idx[valid], minlength=self.num_codes).to(self.usage)
        return q, idx, loss

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(...,) ids -> (..., D) code vectors; MISSING ids give zero vectors, like forward does."""
        valid = indices >= 0
        codes = self.codebook[indices.clamp(min=0)]
        return codes * valid[..., None].to(codes.dtype)

    @torch.no_grad()
    def _init_from(self, z: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Start the codebook on encoder outputs (sampled with replacement if too few) so codes begin in use.
        A CPU `generator` makes the choice identical in every process of a distributed run."""
        pick = torch.randint(0, z.shape[0], (self.num_codes,), generator=generator).to(z.device)
        noise = torch.randn(self.codebook.shape, generator=generator).to(z.device)
        self.codebook.data.copy_(z[pick].float() + 0.01 * noise * z.float().std())
        self.initialised.fill_(True)

    @torch.no_grad()
    def revive_dead_codes(self, recent_z: torch.Tensor, generator: torch.Generator | None = None) -> int:
        """Re-seed codes unused since the last call from recent encoder outputs; returns how many."""
        dead = self.usage == 0
        n = int(dead.sum())
        if n and recent_z.shape[0]:
            pick = torch.randint(0, recent_z.shape[0], (n,), generator=generator).to(recent_z.device)
            noise = 0.01 * torch.randn(n, self.dim, generator=generator).to(recent_z.device) * recent_z.float().std()
            self.codebook.data[dead] = recent_z[pick].float() + noise
        self.usage.zero_()
        return n


def codebook_stats(indices: torch.Tensor, num_codes: int) -> dict[str, float]:
    """Usage (fraction of codes used at least once) and perplexity of the valid indices."""
    idx = indices[indices >= 0]
    if idx.numel() == 0:
        return {"usage": 0.0, "perplexity": 0.0}
    p = torch.bincount(idx, minlength=num_codes).float() / idx.numel()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"usage": float((p > 0).float().mean()), "perplexity": float(entropy.exp())}
