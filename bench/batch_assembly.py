"""Pre-training batch assembly: the per-clip path (numpy per clip, stack, copy) against DeviceBatches.

Sequences per second of batch making alone (no model), on generated clips: the ceiling each data path
puts on pre-training throughput. On a GPU machine DeviceBatches runs on the GPU.
Usage: python bench/batch_assembly.py [--batch 32 256] [--batches 20]
"""
from __future__ import annotations

import argparse
import time

import torch

from bench_common import generated_training_set
from signbest.data.batches import collate, to_device
from signbest.data.device_batches import DeviceBatches


def rate(make, batch: int, batches: int, device: torch.device) -> float:
    make(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for k in range(batches):
        make(k)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * batches / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", nargs="+", type=int, default=[32, 256])
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ds = generated_training_set(32)
    fast = DeviceBatches(ds, device)
    n = len(ds)
    print(f"{n} generated training clips, device {device}, {torch.get_num_threads()} threads")
    print("| batch | per-clip path (seq/s) | DeviceBatches (seq/s) |")
    print("|---|---|---|")
    for b in args.batch:
        pick = lambda k: torch.randint(0, n, (b,), generator=torch.Generator().manual_seed(k))
        slow = rate(lambda k: to_device(collate([ds[int(i)] for i in pick(k)]), device), b, max(2, args.batches // 4), device)
        quick = rate(lambda k: fast.batch(pick(k).to(device), k), b, args.batches, device)
        print(f"| {b} | {slow:,.0f} | {quick:,.0f} |")


if __name__ == "__main__":
    main()
