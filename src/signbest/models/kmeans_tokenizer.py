"""The K-Means tokenizer (baseline, table 6): per-part clustering of normalised joints; the hands share
one set of centroids. Fitted by Lloyd's algorithm (`fit`), not by gradient descent."""
from __future__ import annotations

import torch

from ..pose.sequence import BODY_J, HAND_J, HANDS, PART_SIZES, PARTS
from .quantizer import MISSING
from .tokenizer import PoseTokenizer, TokenizerConfig, flat_parts


class KMeansTokenizer(PoseTokenizer):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("hand_centroids", torch.zeros(cfg.hand_codes, HAND_J * 2))
        self.register_buffer("body_centroids", torch.zeros(cfg.body_codes, BODY_J * 2))

    def centroids(self, part: str) -> torch.Tensor:
        return self.body_centroids if part == "body" else self.hand_centroids

    @staticmethod
    def _features(xy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (xy * mask[..., None].to(xy.dtype)).flatten(1)

    @staticmethod
    def _assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
        distance = x.pow(2).sum(1, keepdim=True) - 2 * x @ centroids.t() + centroids.pow(2).sum(1)[None]
        return distance.argmin(1)

    @torch.no_grad()
    def fit(self, frames: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, float]:
        """Lloyd's algorithm from random frames as seeds; empty clusters are re-seeded from far points."""
        hands = torch.cat([self._features(frames[p], frames[f"{p}_mask"])[frames[f"{p}_mask"].any(-1)]
                           for p in HANDS])
        body = self._features(frames["body"], frames["body_mask"])[frames["body_mask"].any(-1)]
        inertia = {}
        for name, x, centroids in (("hand", hands, self.hand_centroids), ("body", body, self.body_centroids)):
            if x.shape[0] == 0:
                raise ValueError(f"k-means: no valid {name} frames to cluster")
            k = centroids.shape[0]
            centroids.copy_(x[torch.randint(0, x.shape[0], (k,), generator=generator)])
            for _ in range(self.cfg.kmeans_iters):
                assigned = self._assign(x, centroids)
                counts = torch.bincount(assigned, minlength=k)
                sums = torch.zeros_like(centroids).index_add_(0, assigned, x)
                nonempty = counts > 0
                centroids[nonempty] = sums[nonempty] / counts[nonempty, None]
                if (~nonempty).any():  # re-seed empty clusters on the worst-fitted points
                    error = (x - centroids[assigned]).pow(2).sum(1)
                    far = error.topk(int((~nonempty).sum())).indices
                    centroids[~nonempty] = x[far]
            inertia[name] = float((x - centroids[self._assign(x, centroids)]).pow(2).sum(1).mean())
        return inertia

    def encode(self, batch: dict):
        """Codes are the centroids themselves (flattened joints, so D differs between hands and body);
        the loss is the mean squared distance of the present frames to their centroids."""
        frames, lead = flat_parts(batch)
        codes, indices, losses = {}, {}, []
        for p in PARTS:
            features = self._features(frames[p], frames[f"{p}_mask"])
            present = frames[f"{p}_mask"].any(-1)
            ids = self._assign(features, self.centroids(p))
            nearest = self.centroids(p)[ids] * present[:, None].to(features.dtype)
            losses.append(((features - nearest).pow(2).sum(1) * present).sum() / present.sum().clamp(min=1))
            codes[p] = nearest.reshape(*lead, -1)
            indices[p] = torch.where(present, ids, torch.full_like(ids, MISSING)).reshape(lead)
        return codes, indices, torch.stack(losses).mean()

    def decode(self, indices: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Centroid of each id, as joints: the K-Means counterpart of the d-VAE's decoder."""
        return {p: self.centroids(p)[indices[p].clamp(min=0)].reshape(*indices[p].shape, PART_SIZES[p], 2)
                for p in PARTS}
