"""Pre-training throughput: sequences/s, peak memory and model FLOPs utilisation (MFU).

MFU = (model FLOPs per step, counted by torch's FlopCounterMode for forward + backward) x steps/s,
divided by a matrix-multiply peak measured on the same machine in the same run (same dtype).
Usage: python bench/pretrain_throughput.py [--config paper] [--batch 32] [--frames 32] [--steps 10] [--fp32]
"""
from __future__ import annotations

import argparse
import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from signbest.config import load_config, section
from signbest.models.best import BESTPretrainer, ModelConfig
from bench_common import fake_clips, generated_training_set
from signbest.models.masking import MaskingConfig, MUMMasking
from signbest.runtime import autocast, bf16_supported
from signbest.train.engine import make_adam


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 2048, reps: int = 10, trials: int = 5) -> float:
    """The best of `trials` timings: on shared cloud CPUs one timing can come out 2x low (a neighbour's
    load), and a low peak would flatter the MFU."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(trials):
        sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t))
    return best


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def fake_batch(b: int, t: int, cfg: ModelConfig, device) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(1)
    targets = {p: torch.randint(0, n, (b, t), generator=g) for p, n in
               (("left", cfg.hand_codes), ("right", cfg.hand_codes), ("body", cfg.body_codes))}
    return fake_clips(b, t, device), {k: v.to(device) for k, v in targets.items()}


def device_batches(b: int, t: int, device):
    """A maker of fresh batches of generated clips through DeviceBatches."""
    from signbest.data.device_batches import DeviceBatches

    fast = DeviceBatches(generated_training_set(t), device)
    count = iter(range(10 ** 9))
    return lambda: fast.batch(torch.randint(0, len(fast), (b,), device=device), next(count))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="paper")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--fp32", action="store_true", help="disable bf16 autocast")
    ap.add_argument("--device-batches", action="store_true",
                    help="make every step's batch with DeviceBatches from generated clips (the GPU data path) "
                         "instead of reusing one batch: data making is then part of the step")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = section(load_config(args.config), "model", ModelConfig)
    model = BESTPretrainer(cfg).to(device)
    opt = make_adam(model.parameters(), 1e-4, 0.01, device)
    masking = MUMMasking(MaskingConfig())
    batch, targets = fake_batch(args.batch, args.frames, cfg, device)
    use_bf16 = not args.fp32 and bf16_supported(device)

    make = device_batches(args.batch, args.frames, device) if args.device_batches else None

    def step():
        nonlocal batch
        if make is not None:
            batch = make()
        with autocast(device, use_bf16):
            loss, _, _ = model(batch, targets, masking(batch["frame_mask"], batch["noise"]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    for _ in range(2):
        step()
    sync(device)
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t)
    med = sorted(times)[len(times) // 2]
    peak = matmul_peak(torch.bfloat16 if use_bf16 else torch.float32, device)
    mem = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"device {device} ({torch.get_num_threads()} threads), config {args.config} ({params:.1f}M params), "
          f"batch {args.batch} x {args.frames} frames, {'bf16 autocast' if use_bf16 else 'fp32'}"
          f"{', a fresh DeviceBatches batch every step' if args.device_batches else ', one batch reused'}")
    print(f"step median {1000 * med:.1f} ms -> {args.batch / med:.1f} sequences/s")
    print(f"model FLOPs/step {flops / 1e9:.1f} GFLOP -> {flops / med / 1e9:.1f} GFLOP/s; "
          f"matmul peak {peak / 1e9:.1f} GFLOP/s -> MFU {100 * flops / med / peak:.1f}%")
    print(f"peak memory {mem:.2f} GiB ({'GPU allocated' if device.type == 'cuda' else 'process max RSS'})")


if __name__ == "__main__":
    main()
