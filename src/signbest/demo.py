"""`signbest demo`: the whole BEST pipeline on the embedded synthetic signs, within a time budget.

synthetic data -> coupled tokenizer -> MUM pre-training -> fine-tuning from scratch and from the
pre-trained encoder (same recipe, same budget) -> evaluation on the held-out test signer.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .config import load_config
from .data.synth import generate
from .eval.evaluate import evaluate
from .train.checkpoint import write_json
from .train.finetune import finetune
from .train.pretrain import pretrain
from .train.tokenize import show_dataset_tokens
from .train.tokenizer import train_tokenizer

log = logging.getLogger(__name__)
# Share of the time budget per stage (the rest is data generation and evaluation).
SHARES = {"tokenizer": 0.08, "pretrain": 0.42, "finetune": 0.21}


def run_demo(out: str | Path = "runs/demo", config: str = "demo", budget_s: float = 540.0, classes: int = 20,
             signers: int = 8, per_class: int = 24, seed: int = 0, kmeans: bool = False,
             progress: bool = True) -> dict:
    out, t0 = Path(out), time.monotonic()
    stages = ["scratch", "best"] + (["kmeans"] if kmeans else [])
    n_finetunes = len(stages)
    scale = 1.0 if not kmeans else 0.8  # a third fine-tune and second pre-training share the same budget
    manifest = generate(out / "data", classes, signers, per_class, seed, progress=progress)
    log.info("demo: data ready in %.0f s", time.monotonic() - t0)
    budget = lambda stage: f"{stage}.time_budget_s={SHARES[stage] * budget_s * scale:.0f}"
    cfg = lambda stage, *extra: load_config(config, [budget(stage), *extra])
    runs = {}
    train_tokenizer(cfg("tokenizer"), [manifest], out / "tokenizer", progress)
    show_dataset_tokens(out / "tokenizer", manifest, out / "tokens.png", split="train")
    pretrain(cfg("pretrain"), [manifest], out / "tokenizer", out / "pretrain", progress)
    if kmeans:
        train_tokenizer(cfg("tokenizer", "tokenizer.kind=kmeans"), [manifest], out / "tokenizer-kmeans", progress)
        pretrain(cfg("pretrain"), [manifest], out / "tokenizer-kmeans", out / "pretrain-kmeans", progress)
    share = SHARES["finetune"] * 2 / n_finetunes
    for name, pre in (("scratch", None), ("best", out / "pretrain"), ("kmeans", out / "pretrain-kmeans")):
        if name in stages:
            ft_cfg = load_config(config, [f"finetune.time_budget_s={share * budget_s * scale:.0f}"])
            finetune(ft_cfg, manifest, out / f"finetune-{name}", pre, progress)
            runs[name] = evaluate(out / f"finetune-{name}", manifest, "test", out / f"finetune-{name}" / "eval-test")
    table = results_table(runs)
    (out / "results.md").write_text(table + f"\nWall time {time.monotonic() - t0:.0f} s.\n")
    write_json(out / "results.json", {k: v["pose"] for k, v in runs.items()})
    log.info("demo: finished in %.0f s", time.monotonic() - t0)
    return {"table": table, "runs": {k: v["pose"] for k, v in runs.items()}, "out": str(out),
            "wall_s": time.monotonic() - t0}


NAMES = {"scratch": "from scratch (no pre-training)", "best": "BEST (coupled tokenizer + MUM)",
         "kmeans": "K-Means tokenizer + MUM"}


def results_table(runs: dict) -> str:
    lines = ["| model | P-I Top-1 | P-I Top-5 | P-C Top-1 | P-C Top-5 |", "|---|---|---|---|---|"]
    for name, r in runs.items():
        m = r["pose"]
        lines.append(f"| {NAMES[name]} | {m['per_instance_top1']:.1f} | {m['per_instance_top5']:.1f} | "
                     f"{m['per_class_top1']:.1f} | {m['per_class_top5']:.1f} |")
    return "\n".join(lines) + "\n"



