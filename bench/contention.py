"""A training step alone and beside one busy process: how much do shared cores cost?

Each setting runs in a fresh process (OpenMP reads its environment when torch loads): a `small`
fine-tuning step (batch 32 x 32 frames, bf16 where the CPU has it), median of `--steps` steps, first
alone, then while another process keeps one core busy with 1-thread matmuls (a second training, an
extraction worker). Settings: torch threads = every core (what a command did before it knew about the
other process), and the same with OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning).
Usage: python bench/contention.py [--steps 15] [--config small]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BUSY = ("import torch, time\ntorch.set_num_threads(1)\na = torch.randn(1024, 1024)\n"
        "while True:\n    a @ a\n")


def child(config: str, steps: int) -> None:
    import torch

    sys.path.insert(0, os.path.dirname(__file__))
    from bench_common import fake_clips, median_seconds
    from signbest.config import load_config
    from signbest.predict import build_classifier
    from signbest.runtime import autocast
    from signbest.train.engine import make_adam

    from signbest.runtime import set_threads

    set_threads()  # OMP_NUM_THREADS when the setting gives it, else signbest's share of the cores
    model = build_classifier(load_config(config), 100).train()
    opt = make_adam(model.parameters(), 1e-4, 0.01, torch.device("cpu"))
    batch, labels = fake_clips(32, 32, torch.device("cpu")), torch.randint(0, 100, (32,))

    def step():
        with autocast(torch.device("cpu")):
            loss = torch.nn.functional.cross_entropy(model(batch).float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    print(json.dumps({"ms": 1000 * median_seconds(step, steps), "threads": torch.get_num_threads()}))


def measure(config: str, steps: int, threads: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", "--config", config, "--steps", str(steps)]
    full = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | env
    if threads:
        full["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run(cmd, env=full, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="small")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.config, args.steps)
    cores = len(os.sched_getaffinity(0))
    settings = [(f"{cores} threads", cores, {}), (f"{cores} threads, OMP_WAIT_POLICY=PASSIVE", cores,
                                                  {"OMP_WAIT_POLICY": "PASSIVE"})]
    if cores > 1:
        settings.append((f"{cores - 1} threads (one core left to the other process)", cores - 1, {}))
    settings.append(("signbest's default: the free cores, measured before training", 0, {}))
    alone = {name: measure(args.config, args.steps, n, env) for name, n, env in settings}
    busy = subprocess.Popen([sys.executable, "-c", BUSY], env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        time.sleep(2)
        beside = {name: measure(args.config, args.steps, n, env) for name, n, env in settings}
    finally:
        busy.kill()
    base = alone[settings[0][0]]["ms"]
    print(f"`{args.config}` fine-tuning step, batch 32 x 32 frames, {cores} cores available")
    print("| torch threads | alone: threads, ms | beside one busy process: threads, ms | slowdown vs the first row alone |")
    print("|---|---|---|---|")
    for name, _, _ in settings:
        a, b = alone[name], beside[name]
        print(f"| {name} | {a['threads']}, {a['ms']:.0f} | {b['threads']}, {b['ms']:.0f} | {b['ms'] / base:.2f}x |")


if __name__ == "__main__":
    main()
