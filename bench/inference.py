"""Inference latency (one 32-frame clip, batch 1) and throughput (batch 64) of the fine-tuned model.

Usage: python bench/inference.py [--configs paper small] [--classes 100] [--reps 20] [--fp32]
Random weights: speed does not depend on them. Medians over `reps` timed calls after warm-up.
"""
from __future__ import annotations

import argparse

import torch

from signbest.config import load_config
from signbest.models.gcn import reuse_merged_weights
from signbest.predict import build_classifier
from signbest.runtime import autocast, bf16_supported
from bench_common import fake_clips, median_seconds  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["paper", "small"])
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--fp32", action="store_true")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    use_bf16 = not args.fp32 and bf16_supported(device)
    print(f"device {device}, {torch.get_num_threads()} threads, {'bf16 autocast' if use_bf16 else 'fp32'}")
    print("| config | weights | params | batch 1 latency (ms) | batch 64 throughput (clips/s) |")
    print("|---|---|---|---|---|")
    for name in args.configs:
        model = build_classifier(load_config(name), args.classes).to(device).eval()
        one, many = fake_clips(1, args.frames, device), fake_clips(64, args.frames, device)

        def run(batch):
            with torch.inference_mode(), autocast(device, use_bf16):
                model(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()

        params = sum(p.numel() for p in model.parameters()) / 1e6
        # fp32 weights under autocast (what `evaluate` runs), and weights cast to bf16 once (`Predictor`):
        # autocast re-casts every weight at every call, which at batch 1 costs more than the arithmetic.
        for weights in ["fp32"] + (["bf16"] if use_bf16 else []):
            model = reuse_merged_weights(model.to(torch.bfloat16)) if weights == "bf16" else model  # as Predictor
            lat = median_seconds(lambda: run(one), args.reps)
            thr = 64 / median_seconds(lambda: run(many), max(3, args.reps // 4))
            print(f"| {name} | {weights} | {params:.1f}M | {1000 * lat:.1f} | {thr:.0f} |")
        if device.type == "cpu":
            weight_traffic(model, name, args.frames, args.reps)


def weight_traffic(model, name: str, frames: int, reps: int) -> None:
    """One clip reads every encoder weight once: the blocks' forward time against the time their bytes
    take at the read bandwidth measured now (a 256 MB fp32 sum) is how close batch 1 is to that floor."""
    blocks = model.encoder.blocks
    nbytes = sum(p.numel() * p.element_size() for p in blocks.parameters())
    big = torch.randn(64_000_000)
    bandwidth = big.numel() * big.element_size() / median_seconds(big.sum, 10)
    x = torch.randn(1, frames, model.encoder.cfg.dim, dtype=next(blocks.parameters()).dtype)
    with torch.inference_mode():
        t = median_seconds(lambda: blocks(x), reps)
    print(f"{name}: Transformer blocks, one clip: {1000 * t:.2f} ms for {nbytes / 1e6:.1f} MB of weights "
          f"({nbytes / t / 1e9:.1f} GB/s); read bandwidth now {bandwidth / 1e9:.1f} GB/s, "
          f"so at least {1000 * nbytes / bandwidth:.2f} ms")


if __name__ == "__main__":
    main()
