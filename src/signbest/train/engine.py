"""Batches, epochs and learning-rate schedules shared by pre-training and fine-tuning."""
from __future__ import annotations

import math
from typing import Iterator

import torch

from ..data import SignDataset
from .distributed import DistInfo


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


class ConcatSets:
    """Several SignDatasets read as one (the paper pre-trains on all training splits pooled)."""

    def __init__(self, sets: list[SignDataset]):
        self.sets = sets
        self.starts = [0]
        for s in sets:
            self.starts.append(self.starts[-1] + len(s))

    def __len__(self) -> int:
        return self.starts[-1]

    def set_epoch(self, epoch: int) -> None:
        for s in self.sets:
            s.set_epoch(epoch)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        k = next(j for j in range(len(self.sets)) if i < self.starts[j + 1])
        item = self.sets[k][i - self.starts[k]]
        item["index"] = torch.tensor(i)
        return item


def epoch_batches(dataset, batch_size: int, epoch: int, seed: int, shuffle: bool, info: DistInfo,
                  drop_last: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """This rank's share of each global batch. The order depends only on (seed, epoch), so every rank
    agrees on it and a resumed run replays it."""
    n = len(dataset)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch)) if shuffle \
        else torch.arange(n)
    stop = (n // batch_size) * batch_size if drop_last and n >= batch_size else n
    for s in range(0, stop, batch_size):
        idx = order[s:s + batch_size][info.rank::info.world]
        if len(idx):
            yield collate([dataset[int(i)] for i in idx])


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)


def warmup_linear(optimizer, warmup_steps: int, total_steps: int, budget=None):
    """Linear warm-up to the base lr, then linear decay to zero (paper: pre-training schedule).

    With a time budget (a TimeBudget with seconds > 0), the decay follows whichever comes first, the
    step count or the clock, so a run stopped by its budget still ends at a low learning rate."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        if budget is not None and budget.seconds > 0:
            progress = max(progress, budget.elapsed / budget.seconds)
        return max(0.0, 1.0 - progress)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_adam(params, lr: float, weight_decay: float, device: torch.device, decoupled: bool = True):
    """AdamW (or Adam) with the fused kernel where this torch build has it for the device."""
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, lr=lr, weight_decay=weight_decay)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def optimizer_step(loss: torch.Tensor, model: torch.nn.Module, opt, sched=None, grad_clip: float = 0.0) -> None:
    """Backward, optional gradient clipping, optimiser and per-step scheduler step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    if sched is not None:
        sched.step()
