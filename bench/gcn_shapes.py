"""The per-frame GCN's awkward shapes, alone: matrix products in both directions of a graph convolution
(forward contracts K*C channels to C_out; its input gradient expands C_out back to K*C), and the ways to
max-pool the hand's finger runs with a gradient. Medians over repeats, bf16 (fp32 with --fp32).
Usage: python bench/gcn_shapes.py [--hands 1729] [--fp32]
"""
from __future__ import annotations

import argparse

import torch

from bench_common import median_seconds


def median_ms(fn, repeats: int = 8) -> float:
    return 1000 * median_seconds(fn, repeats, warmup=1)


def comparison_backward_max(runs: torch.Tensor) -> torch.Tensor:
    """max over dim 2 whose backward compares against the saved winners instead of scattering."""
    values, winners = runs.max(2)

    class Compare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return values

        @staticmethod
        def backward(ctx, grad):
            members = torch.arange(runs.shape[2]).view(-1, 1)
            return torch.where(winners.unsqueeze(2) == members, grad.unsqueeze(2), 0)
    return Compare.apply(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hands", type=int, default=1729, help="present hands in a `paper` batch of 32 x 32 frames")
    ap.add_argument("--fp32", action="store_true")
    args = ap.parse_args()
    dt = torch.float32 if args.fp32 else torch.bfloat16
    rows = args.hands * 21
    print(f"{torch.get_num_threads()} threads, {dt}, {args.hands} hands ({rows} joint rows)")
    for m, k, n, what in [(rows, 512, 128, "hand layer forward (contracting)"),
                          (rows, 128, 512, "its input gradient (expanding)"),
                          (rows, 256, 512, "3rd hand layer's input gradient"),
                          (4608, 1024, 1536, "encoder-sized product")]:
        a, b = torch.randn(m, k, dtype=dt), torch.randn(k, n, dtype=dt)
        ms = median_ms(lambda: a @ b)
        print(f"[{m},{k}]x[{k},{n}] {what}: {ms:.1f} ms, {2 * m * k * n / ms / 1e6:.0f} GFLOP/s")
    x0 = torch.randn(args.hands, 20, 256, dtype=dt)
    ways = {"max (indices), scatter backward": lambda r: r.max(2).values,
            "comparison backward": comparison_backward_max,
            "tree of maximum": lambda r: torch.maximum(torch.maximum(r[:, :, 0], r[:, :, 1]),
                                                       torch.maximum(r[:, :, 2], r[:, :, 3]))}
    for name, pool in ways.items():
        def step():
            x = x0.clone().requires_grad_()
            y = pool(x.unflatten(1, (5, 4)))
            y.backward(torch.ones_like(y))
        print(f"finger-run max-pool ({args.hands}, 5, 4, 256), forward + backward, {name}: {median_ms(step):.1f} ms")
    runs = x0.unflatten(1, (5, 4))
    print(f"forward only: max with indices {median_ms(lambda: runs.max(2)):.1f} ms, amax {median_ms(lambda: runs.amax(2)):.1f} ms")


if __name__ == "__main__":
    main()
