"""Where a step's time goes: torch.profiler over pre-training steps and batch-64 inference calls.

Prints the operators by self CPU (or CUDA) time, and the share of the step spent in the per-frame GCNs,
the Transformer blocks and the MUM heads (forward only; backward ops are listed by name in the table).
Usage: python bench/profile_step.py [--config paper] [--what pretrain inference] [--rows 20] [--fp32]
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from bench_common import fake_clips
from pretrain_throughput import fake_batch
from signbest.config import load_config, section
from signbest.models.best import BESTPretrainer, ModelConfig
from signbest.models.masking import MaskingConfig, MUMMasking
from signbest.predict import build_classifier
from signbest.runtime import autocast, bf16_supported
from signbest.train.engine import make_adam


def label_modules(named: dict[str, torch.nn.Module]) -> None:
    """Wrap each module's forward in a profiler range named after it."""
    for name, module in named.items():
        def pre(_m, _a, name=name):
            _m._range = record_function(f"## {name}")
            _m._range.__enter__()

        def post(_m, _a, _o):
            _m._range.__exit__(None, None, None)
        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)


def report(prof, device: torch.device, rows: int, calls: int) -> None:
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"  # torch >= 2.4 names
    events = prof.key_averages()
    on_device = lambda e: e.device_type != torch.autograd.DeviceType.CPU
    if device.type == "cuda":  # kernels only: an operator's device time repeats its kernels' time, and a
        # module's range also appears as a GPU-side annotation spanning its kernels: counted, it doubles them
        total = sum(e.self_device_time_total for e in events if on_device(e) and not e.key.startswith("## "))
    else:
        total = sum(e.self_cpu_time_total for e in events if not e.key.startswith("## "))
    print(f"per call: {total / calls / 1000:.1f} ms of operator time")
    for name, e in sorted(module_ranges(events, device).items()):
        share = e.cpu_time_total if device.type == "cpu" else e.device_time_total
        print(f"  {name[3:]:<12} forward {share / calls / 1000:7.1f} ms")
    print(events.table(sort_by=key, row_limit=rows, max_name_column_width=48))


def module_ranges(events, device: torch.device) -> dict:
    """One event per labelled module. On CUDA a range is recorded twice, on the CPU (launch time) and as a
    GPU annotation (the span of its kernels): keep the GPU one there, which is the time the report means."""
    ranges = {}
    for e in events:
        if e.key.startswith("## ") and (e.key not in ranges or (device.type == "cuda" and e.device_type != torch.autograd.DeviceType.CPU)):
            ranges[e.key] = e
    return ranges


def profiled(fn, title: str, args, device: torch.device) -> None:
    """Two warm-up calls, then `args.steps` calls under the profiler, and the report."""
    for _ in range(2):
        fn()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(args.steps):
            fn()
    print(f"\n== {title}")
    report(prof, device, args.rows, args.steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="paper")
    ap.add_argument("--what", nargs="+", default=["pretrain", "inference"])
    ap.add_argument("--batch", type=int, default=32, help="pre-training batch (inference uses 64)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rows", type=int, default=20)
    ap.add_argument("--fp32", action="store_true")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    use_bf16 = not args.fp32 and bf16_supported(device)
    print(f"device {device}, {torch.get_num_threads()} threads, {'bf16 autocast' if use_bf16 else 'fp32'}")
    cfg = section(load_config(args.config), "model", ModelConfig)
    if "pretrain" in args.what:
        model = BESTPretrainer(cfg).to(device)
        enc = model.encoder
        label_modules({"hand GCN": enc.hand_gcn, "body GCN": enc.body_gcn, "blocks": enc.blocks,
                       "hand head": model.hand_head, "body head": model.body_head})
        opt = make_adam(model.parameters(), 1e-4, 0.01, device)
        masking = MUMMasking(MaskingConfig())
        batch, targets = fake_batch(args.batch, 32, cfg, device)

        def step():
            with autocast(device, use_bf16):
                loss, _, _ = model(batch, targets, masking(batch["frame_mask"], batch["noise"]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        profiled(step, f"pre-training step, config {args.config}, batch {args.batch} x 32 frames", args, device)
    if "inference" in args.what:
        clf = build_classifier(load_config(args.config), 100).to(device).eval()
        label_modules({"hand GCN": clf.encoder.hand_gcn, "body GCN": clf.encoder.body_gcn, "blocks": clf.encoder.blocks})
        many = fake_clips(64, 32, device)

        def infer():
            with torch.inference_mode(), autocast(device, use_bf16):
                clf(many)
        profiled(infer, f"inference, config {args.config}, batch 64 x 32 frames", args, device)


if __name__ == "__main__":
    main()
