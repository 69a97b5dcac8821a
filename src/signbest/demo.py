"""`signbest demo`: the whole BEST pipeline on the embedded synthetic signs.

synthetic data -> coupled tokenizer -> MUM pre-training -> fine-tuning from scratch and from the
pre-trained encoder (same recipe, epoch chosen on a dev signer) -> evaluation on the held-out test signer.
The work is fixed in epochs (configs/demo.json), not in seconds, so every machine prints the same table
up to arithmetic noise; only the wall time differs.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .checkpoint import write_json
from .config import load_config
from .outputs import claim_folder
from .data.synth import generate
from .eval.evaluate import evaluate
from .runtime import fixed_threads
from .tokens import show_dataset_tokens
from .train.finetune import finetune
from .train.pretrain import pretrain
from .train.tokenizer import train_tokenizer

log = logging.getLogger(__name__)


def run_demo(out: str | Path = "runs/demo", config: str = "demo", classes: int = 20, signers: int = 8,
             per_class: int = 24, seed: int = 0, kmeans: bool = False, progress: bool = True,
             overrides: list[str] | None = None, overwrite: bool = False) -> dict:
    with fixed_threads() as threads:  # never refitted to the load: the table must not depend on other processes
        out, t0 = Path(out), time.monotonic()
        claim_folder(out, "demo", overwrite=overwrite)
        stages = ["scratch", "best"] + (["kmeans"] if kmeans else [])
        manifest = generate(out / "data", classes, signers, per_class, seed, progress=progress)
        log.info("demo: data ready in %.0f s", time.monotonic() - t0)
        cfg = load_config(config, overrides)
        kw = dict(progress=progress, overwrite=overwrite)
        runs = {}
        train_tokenizer(cfg, [manifest], out / "tokenizer", **kw)
        show_dataset_tokens(out / "tokenizer", manifest, out / "tokens.png", split="train")
        pretrain(cfg, [manifest], out / "tokenizer", out / "pretrain", **kw)
        if kmeans:
            km = load_config(config, [*(overrides or []), "tokenizer.kind=kmeans"])
            train_tokenizer(km, [manifest], out / "tokenizer-kmeans", **kw)
            pretrain(km, [manifest], out / "tokenizer-kmeans", out / "pretrain-kmeans", **kw)
        for name, pre in (("scratch", None), ("best", out / "pretrain"), ("kmeans", out / "pretrain-kmeans")):
            if name in stages:
                finetune(cfg, manifest, out / f"finetune-{name}", pre, **kw)
                runs[name] = evaluate(out / f"finetune-{name}", manifest, "test", out / f"finetune-{name}" / "eval-test")
        table = results_table(runs)
        (out / "results.md").write_text(table + f"\nWall time {time.monotonic() - t0:.0f} s, {threads} torch thread{'s' * (threads != 1)}.\n")
        write_json(out / "results.json", {k: v["pose"] for k, v in runs.items()})
        log.info("demo: finished in %.0f s", time.monotonic() - t0)
        return {"table": table, "runs": {k: v["pose"] for k, v in runs.items()}, "out": str(out),
                "wall_s": time.monotonic() - t0, "threads": threads}


NAMES = {"scratch": "from scratch (no pre-training)", "best": "BEST (coupled tokenizer + MUM)",
         "kmeans": "K-Means tokenizer + MUM"}


def results_table(runs: dict) -> str:
    lines = ["| model | P-I Top-1 | P-I Top-5 | P-C Top-1 | P-C Top-5 |", "|---|---|---|---|---|"]
    for name, r in runs.items():
        m = r["pose"]
        lines.append(f"| {NAMES[name]} | {m['per_instance_top1']:.1f} | {m['per_instance_top5']:.1f} | "
                     f"{m['per_class_top1']:.1f} | {m['per_class_top5']:.1f} |")
    return "\n".join(lines) + "\n"



