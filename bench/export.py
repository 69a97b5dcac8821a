"""Exported models: accuracy (torch fp32 and bf16, onnxruntime fp32 and int8) and speed (one clip, batch 64).

Accuracy of fine-tuned models on a split (the int8 rule: kept only if within 0.5 points of fp32 and at
least 1.5x faster for one clip):
    python bench/export.py accuracy --data MANIFEST --split val RUN [RUN ...]
Speed with random weights (speed does not depend on them), 32 frames, 100 classes:
    python bench/export.py speed --configs small paper [--reps 50]
Both print Markdown rows and the machine (CPU model, threads, bf16).
"""
from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench_common import fake_clips, median_seconds
from signbest.config import load_config
from signbest.export import export_graph, make_session, onnx_inputs
from signbest.models.gcn import reuse_merged_weights
from signbest.predict import build_classifier, load_classifier, predict_logits
from signbest.runtime import bf16_supported


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def int8_file(proto, folder: Path) -> Path:
    """Dynamic quantisation: int8 weights of the MatMuls and Gemms, activations quantised at run time."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx.save(proto, folder / "fp32.onnx")
    quantize_dynamic(folder / "fp32.onnx", folder / "int8.onnx", weight_type=QuantType.QInt8, per_channel=True)
    return folder / "int8.onnx"


def engines(model, num_frames: int, folder: Path) -> dict:
    """name -> callable(batch) -> logits, for the four ways a model can run."""
    import onnx

    proto = export_graph(model, num_frames)
    onnx.save(proto, folder / "fp32.onnx")
    fp32, int8 = make_session(folder / "fp32.onnx"), make_session(int8_file(proto, folder))
    bf16 = reuse_merged_weights(build_like(model).to(torch.bfloat16).eval())  # as Predictor runs it

    def torch_run(m):
        def run(batch):
            with torch.inference_mode():
                return m(batch).float().numpy()
        return run
    out = {"torch fp32": torch_run(reuse_merged_weights(model.eval()))}
    if bf16_supported(torch.device("cpu")):
        out["torch bf16"] = torch_run(bf16)
    out["onnxruntime fp32"] = lambda b: fp32.run(["logits"], onnx_inputs(b))[0]
    out["onnxruntime int8"] = lambda b: int8.run(["logits"], onnx_inputs(b))[0]
    return out


def build_like(model):
    twin = build_classifier({"model": vars(model.cfg), "head": vars(model.head_cfg)}, model.num_classes)
    twin.load_state_dict(model.state_dict())
    return twin


def accuracy(args) -> None:
    from signbest.data import SignDataset
    from signbest.data.protocol import SplitConfig, load_manifest

    print(f"{cpu_name()}, {torch.get_num_threads()} threads; split {args.split} of {args.data}")
    print("| run | " + " | ".join(["torch fp32", "torch bf16", "onnxruntime fp32", "onnxruntime int8"]) + " |")
    print("|---|---|---|---|---|")
    scores: dict[str, list[float]] = {}
    for run in args.runs:
        model, cfg = load_classifier(run)
        manifest = load_manifest(args.data, SplitConfig(**cfg["split"]))
        ds = SignDataset(manifest, args.split, num_frames=cfg["finetune"]["num_frames"],
                         sampling=cfg["finetune"]["sampling"], progress=False)
        labels = np.array(ds.labels)
        with tempfile.TemporaryDirectory() as tmp:
            row = {}
            for name, run_batch in engines(model, cfg["finetune"]["num_frames"], Path(tmp)).items():
                logits = predict_logits(run_batch, ds)
                row[name] = 100 * float((logits.argmax(1) == labels).mean())
                scores.setdefault(name, []).append(row[name])
        print(f"| {run} | " + " | ".join(f"{v:.2f}" for v in row.values()) + " |")
    print("| mean | " + " | ".join(f"{np.mean(v):.2f}" for v in scores.values()) + " |")


def speed(args) -> None:
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, {args.frames} frames, {args.classes} classes; "
          "median ms per call")
    print("| config | engine | one clip (ms) | batch 64 (ms) | batch 64 (clips/s) |")
    print("|---|---|---|---|---|")
    one, many = fake_clips(1, args.frames, torch.device("cpu")), fake_clips(64, args.frames, torch.device("cpu"))
    for name in args.configs:
        model = build_classifier(load_config(name), args.classes).eval()
        with tempfile.TemporaryDirectory() as tmp:
            for engine, run in engines(model, args.frames, Path(tmp)).items():
                lat = median_seconds(lambda: run(one), args.reps)
                big = median_seconds(lambda: run(many), max(3, args.reps // 5))
                print(f"| {name} | {engine} | {1000 * lat:.1f} | {1000 * big:.0f} | {64 / big:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    acc = sub.add_parser("accuracy")
    acc.add_argument("runs", nargs="+")
    acc.add_argument("--data", required=True)
    acc.add_argument("--split", default="val")
    sp = sub.add_parser("speed")
    sp.add_argument("--configs", nargs="+", default=["small", "paper"])
    sp.add_argument("--frames", type=int, default=32)
    sp.add_argument("--classes", type=int, default=100)
    sp.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    accuracy(args) if args.what == "accuracy" else speed(args)


if __name__ == "__main__":
    main()
