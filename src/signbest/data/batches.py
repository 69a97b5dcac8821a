"""Batches: stacking items, the seeded order of an epoch, and each process's share of a global batch."""
from __future__ import annotations

import math
from typing import Iterator

import torch


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def epoch_order(n: int, epoch: int, seed: int, shuffle: bool) -> torch.Tensor:
    """The order of an epoch: depends only on (seed, epoch), so every rank agrees and a resume replays it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch)) if shuffle \
        else torch.arange(n)


def epoch_batches(dataset, batch_size: int, epoch: int, seed: int, shuffle: bool, info,
                  drop_last: bool = False, steps: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """This rank's share of each global batch of a dataset, moved to the rank's device. With `steps`, an
    epoch is that many batches (passes over the data joined end to end), whatever the data's size."""
    order = epoch_order(len(dataset), epoch, seed, shuffle)
    if steps:
        passes = -(-steps * batch_size // len(dataset))
        order = torch.cat([epoch_order(len(dataset), epoch * 1009 + k, seed, shuffle) if k else order
                           for k in range(passes)])
    for s in range(0, (steps or num_batches(len(dataset), batch_size, drop_last)) * batch_size, batch_size):
        idx = order[s:s + batch_size][info.rank::info.world]
        if len(idx):  # a DeviceBatches makes the whole batch on the device; a dataset item by item
            yield dataset.batch(idx, epoch) if hasattr(dataset, "batch") else \
                to_device(collate([dataset[int(i)] for i in idx]), info.device)


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
