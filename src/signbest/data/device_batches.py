"""Whole batches made on the device: the clips as contiguous tensors, sampling, augmentation and MUM noise
vectorised over the batch, no per-clip Python in the training loop.

The per-clip path (`SignDataset.__getitem__`, numpy, then a stack and a copy to the device) costs about a
millisecond per clip: on one H100 it held `paper` pre-training to 600-800 sequences/s. Here a batch is a
handful of tensor ops whatever its size. Without augmentation (evaluation) the frames, masks and padding
are exactly those of the per-clip path (tested); with it, the same distributions from another random
stream: the random numbers of a batch come from a generator seeded by (seed, epoch, the batch's first
clip), so a resumed epoch replays them. Enabled by `pretrain.device_batches`.
"""
from __future__ import annotations

import torch

from ..pose.sequence import BODY_FIRST
from .cache import ARRAYS
from .dataset import BODY_MIRROR, ConcatSets, SignDataset

PARTS = BODY_FIRST  # the dataset's order of parts (its random draws follow it)


class DeviceBatches:
    """The clips of a `SignDataset` (or `ConcatSets` of them) held on `device`; `batch(index, epoch)` makes
    the same dict as collating the dataset's items (body/left/right, their masks, frame_mask, label, index,
    noise when the dataset has a noise_dim)."""

    def __init__(self, dataset: SignDataset | ConcatSets, device: torch.device | str = "cpu"):
        sets = dataset.sets if isinstance(dataset, ConcatSets) else [dataset]
        first = sets[0]
        for s in sets[1:]:
            if (s.num_frames, s.train, s.sampling, s.crop, s.augment, s.noise_dim) != \
                    (first.num_frames, first.train, first.sampling, first.crop, first.augment, first.noise_dim):
                raise ValueError("DeviceBatches: the datasets differ in sampling or augmentation settings")
        self.device = torch.device(device)
        for name in ("num_frames", "train", "sampling", "crop", "augment", "noise_dim", "seed", "window"):
            setattr(self, name, getattr(first, name))  # the settings of the sets it batches (all alike)
        arrays, starts, lengths, labels, base = {k: [] for k in ARRAYS}, [], [], [], 0
        for s in sets:
            for k in ARRAYS:
                arrays[k].append(torch.from_numpy(s.data.arrays[k]))
            rows = torch.from_numpy(s.rows)
            starts.append(torch.from_numpy(s.data.offsets)[rows] + base)
            lengths.append(torch.from_numpy(s.data.lengths())[rows])
            labels.append(torch.from_numpy(s.labels))
            base += int(s.data.offsets[-1])
        self.arrays = {k: torch.cat(v).to(self.device) for k, v in arrays.items()}  # (sum T, J, ...) each
        self.starts, self.lengths = torch.cat(starts).to(self.device), torch.cat(lengths).to(self.device)  # (N,)
        self.labels = torch.cat(labels).to(self.device)

    def __len__(self) -> int:
        return len(self.starts)

    def frame_indices(self, lengths: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) frame indices within each clip and the (B, T) frame mask: `sample_frames`, vectorised."""
        t = self.num_frames
        steps = torch.arange(t, device=self.device, dtype=torch.float64)  # (T,)
        length = lengths.to(torch.float64)[:, None]  # (B, 1)
        uniform = lambda *shape: torch.rand(*shape, generator=gen, device=self.device, dtype=torch.float64)
        b = len(lengths)
        if self.sampling == "spread":
            seg = length / t
            if not self.train:
                idx = torch.floor(steps * seg + self.window * (seg - 1))
            elif self.crop >= 1:
                idx = torch.floor(steps * seg + uniform(b, 1) * (seg - 1))
            else:
                span = torch.maximum(torch.full_like(length, float(t)), (self.crop + (1 - self.crop) * uniform(b, 1)) * length)
                start = uniform(b, 1) * (length - span)
                idx = torch.minimum(torch.floor(start + (steps + uniform(b, t)) * (span / t)), length - 1)
        else:
            stride = torch.div(lengths, t, rounding_mode="floor")[:, None]  # (B, 1)
            room = lengths[:, None] - ((t - 1) * stride + 1)  # start positions beyond the first
            start = torch.floor(uniform(b, 1) * (room + 1)) if self.train else torch.floor(room * self.window)
            idx = start + stride * steps
        idx = idx.long()
        short = lengths[:, None] <= t  # every frame, then padding
        frames = torch.arange(t, device=self.device).expand(b, t)
        idx = torch.where(short, frames, idx)
        frame_mask = ~short | (frames < lengths[:, None])
        return torch.minimum(idx, lengths[:, None] - 1), frame_mask  # padding reads the last frame, masked

    def batch(self, index: torch.Tensor, epoch: int) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(index, device=self.device)
        b, t = len(index), self.num_frames
        gen = torch.Generator(self.device).manual_seed(self.seed * 1_000_003 + epoch * 10_007 + int(index[0]))
        idx, frame_mask = self.frame_indices(self.lengths[index], gen)  # (B, T)
        rows = self.starts[index][:, None] + idx  # (B, T) rows of the contiguous arrays
        out = {}
        for k in ARRAYS:
            v = self.arrays[k][rows]  # (B, T, J, ...)
            keep = frame_mask.view(b, t, *([1] * (v.dim() - 2)))
            out[k] = v & keep if v.dtype == torch.bool else torch.where(keep, v.float(), 0.0)
        if self.train and self.augment is not None:
            out = self._augment(out, gen)
        out["frame_mask"] = frame_mask
        out["label"], out["index"] = self.labels[index], index
        if self.noise_dim:
            out["noise"] = torch.rand(b, t, self.noise_dim, generator=gen, device=self.device)
        return out

    def _augment(self, out: dict, gen: torch.Generator) -> dict:
        """`mirror_clip` with probability swap_hands, then one random 2x2 perturbation and shift per part."""
        aug, b = self.augment, out["body"].shape[0]
        if aug.swap_hands > 0:
            flip = torch.rand(b, generator=gen, device=self.device) < aug.swap_hands  # (B,)
            f = flip.view(b, 1, 1)
            mirrored_body = out["body"][:, :, BODY_MIRROR]
            mirrored_body = torch.stack([1.0 - mirrored_body[..., 0], mirrored_body[..., 1]], -1)
            bmask = out["body_mask"][:, :, BODY_MIRROR]
            left, right = out["left"], out["right"]
            out["left"], out["right"] = torch.where(f[..., None], right, left), torch.where(f[..., None], left, right)
            lm, rm = out["left_mask"], out["right_mask"]
            out["left_mask"], out["right_mask"] = torch.where(f, rm, lm), torch.where(f, lm, rm)
            out["body"] = torch.where(f[..., None], torch.where(bmask[..., None], mirrored_body, 0.0), out["body"])
            out["body_mask"] = torch.where(f, bmask, out["body_mask"])
        for part in PARTS:
            u = torch.rand(b, 2, 2, generator=gen, device=self.device) * 2 - 1
            a = torch.eye(2, device=self.device) + aug.perturb * u  # (B, 2, 2)
            shift = (torch.rand(b, 1, 1, 2, generator=gen, device=self.device) * 2 - 1) * aug.shift
            moved = torch.einsum("btjc,bdc->btjd", out[part] - 0.5, a) + 0.5 + shift
            out[part] = torch.where(out[f"{part}_mask"][..., None], moved, 0.0)
        return out
