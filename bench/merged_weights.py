"""One-clip latency with the GCN's merged weights reused between calls (`reuse_merged_weights`, what
`Predictor` does) against rebuilding them at every call (the default, what training and evaluation do),
interleaved call by call in one process so that the machine's drift hits both alike. Random weights; bf16
weights where the CPU has bf16.

Usage: python bench/merged_weights.py [--configs paper small] [--calls 300]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_common import fake_clips

from signbest.config import load_config
from signbest.models import gcn
from signbest.predict import build_classifier
from signbest.runtime import autocast, bf16_supported


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["paper", "small"])
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()
    cpu = torch.device("cpu")
    bf16 = bf16_supported(cpu)
    print(f"{torch.get_num_threads()} threads, {'bf16 weights' if bf16 else 'fp32'}")
    impls = {"reused": gcn.GraphConv.merged_for, "rebuilt": lambda self, x: self.merged()}
    try:
        for name in args.configs:
            model = build_classifier(load_config(name), 100).eval()
            model = gcn.reuse_merged_weights(model.to(torch.bfloat16) if bf16 else model)
            one = fake_clips(1, 32, cpu)
            times = {k: [] for k in impls}
            with torch.inference_mode(), autocast(cpu, bf16):
                for _ in range(5):
                    model(one)
                for i in range(args.calls):
                    for k in (list(impls) if i % 2 else list(impls)[::-1]):
                        gcn.GraphConv.merged_for = impls[k]
                        t0 = time.perf_counter()
                        model(one)
                        times[k].append(time.perf_counter() - t0)
            for k, v in times.items():
                v.sort()
                print(f"{name}: merged weights {k}: median {1e3 * statistics.median(v):.1f} ms "
                      f"(p10 {1e3 * v[len(v) // 10]:.1f}, p90 {1e3 * v[9 * len(v) // 10]:.1f})")
    finally:
        gcn.GraphConv.merged_for = impls["reused"]


if __name__ == "__main__":
    main()
