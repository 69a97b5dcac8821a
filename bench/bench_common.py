"""Shared by the benchmarks: synthetic batches (realistic shapes, 30% of left hands missing) and timing."""
from __future__ import annotations

import time

import torch

from signbest.models.masking import NOISE_DIM


def fake_clips(b: int, t: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {"body": torch.rand(b, t, 7, 2, generator=g), "left": torch.rand(b, t, 21, 2, generator=g),
             "right": torch.rand(b, t, 21, 2, generator=g), "body_mask": torch.ones(b, t, 7, dtype=torch.bool),
             "left_mask": (torch.rand(b, t, 1, generator=g) > 0.3).expand(b, t, 21).contiguous(),
             "right_mask": torch.ones(b, t, 21, dtype=torch.bool), "frame_mask": torch.ones(b, t, dtype=torch.bool),
             "noise": torch.rand(b, t, NOISE_DIM, generator=g)}
    return {k: v.to(device) for k, v in batch.items()}


def generated_training_set(num_frames: int = 32):
    """The training clips of a generated set (20 signs, 4 signers), loaded into memory as a SignDataset that
    draws MUM noise: real clip lengths and part presence for data-path benchmarks, no download."""
    import tempfile
    from pathlib import Path

    from signbest.data.dataset import SignDataset
    from signbest.data.synth import generate

    with tempfile.TemporaryDirectory() as tmp:  # the clips are preprocessed into memory before it goes
        generate(Path(tmp), classes=20, signers=4, per_class=16, seed=0, progress=False)
        return SignDataset(Path(tmp) / "manifest.csv", "train", num_frames=num_frames, train=True,
                           noise_dim=NOISE_DIM, progress=False)


def median_seconds(fn, repeats: int, warmup: int = 3) -> float:
    """The median wall time of `fn` over `repeats` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]
