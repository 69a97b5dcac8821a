"""The paper's protocol on WLASL100 (../shared/data/wlasl100): tokenizer and pre-training on the train
split, fine-tuning on train, model selection and reporting on val. One row per shipped config
(configs/wlasl-*.json). Finished stages are skipped (and killed ones resumed) on a rerun.

    python experiments/wlasl100.py --rows scratch best                       # paper size
    python experiments/wlasl100.py --size small --rows kmeans vq mask-hand mask-body regression rmask
    python experiments/wlasl100.py --size small --rows best --fractions 0.25 0.5 0.75   # table 8
    python experiments/wlasl100.py --data runs/wlasl100-signer.csv --rows scratch best  # signer-independent
    python experiments/wlasl100.py --size small --rows scratch best vq --jobs 3  # rows in parallel processes

With --jobs N the tokenizers are trained first, then N rows run at once in their own processes (each with
cores / N threads): worth it on a GPU machine, where one row leaves the GPU and most cores idle.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from signbest.config import load_config
from signbest.eval.evaluate import evaluate
from signbest.checkpoint import write_json
from signbest.train.finetune import finetune
from signbest.train.pretrain import pretrain
from signbest.train.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"per_instance_top1": 77.91, "per_instance_top5": 91.47, "per_class_top1": 77.83, "per_class_top5": 92.50}


def done(folder: Path, stage_epochs: int, metrics: str) -> bool:
    state = folder / "state.json"
    return state.exists() and json.loads(state.read_text())["epoch"] >= stage_epochs and (folder / metrics).exists()


def tokenizer_ready(folder: Path, cfg: dict) -> bool:
    if not (folder / "model.safetensors").exists():
        return False
    return cfg["tokenizer"]["kind"] == "kmeans" or done(folder, cfg["tokenizer"]["epochs"], "tokenizer_metrics.csv")


def row_config(row: str, args, overrides: list[str]) -> dict:
    return load_config(f"wlasl-{row.split('@')[0]}", overrides, base=args.size)


def ensure_tokenizer(cfg: dict, args, pretrain_data: list[str]) -> Path | None:
    """The row's tokenizer folder, trained first if needed; None for rows that use no tokenizer."""
    if not cfg["row"]["pretrain"] or cfg["model"].get("objective", "token") != "token":
        return None
    tok_dir = Path(args.out) / args.size / f"tokenizer-{cfg['tokenizer']['kind']}"
    if not tokenizer_ready(tok_dir, cfg):
        train_tokenizer(cfg, [pretrain_data[0]], tok_dir, progress=not args.quiet)
    return tok_dir


def run_row(row: str, args, overrides: list[str], pretrain_data: list[str], threads: int = 0) -> dict:
    if threads:
        import torch
        torch.set_num_threads(threads)
    cfg = row_config(row, args, overrides)
    out = Path(args.out) / args.size / row
    times = {}
    pretrained = None
    if cfg["row"]["pretrain"]:
        t = time.monotonic()
        tok_dir = ensure_tokenizer(cfg, args, pretrain_data)
        if tok_dir is not None:
            times["tokenizer_s"] = time.monotonic() - t
        t = time.monotonic()
        pretrained = out / "pretrain"
        if not done(pretrained, cfg["pretrain"]["epochs"], "pretrain_metrics.csv"):
            pretrain(cfg, pretrain_data, tok_dir, pretrained, progress=not args.quiet)
        times["pretrain_s"] = time.monotonic() - t
    t = time.monotonic()
    if not done(out / "finetune", cfg["finetune"]["epochs"], "finetune_metrics.csv"):
        finetune(cfg, args.data, out / "finetune", pretrained, progress=not args.quiet)
    times["finetune_s"] = time.monotonic() - t
    res = evaluate(out / "finetune", args.data, "val", out / "eval-val")
    return {"row": row, "label": cfg["row"]["label"], **res["pose"], **times}


def table(results: list[dict], size: str) -> str:
    lines = ["| row | size | P-I Top-1 | P-I Top-5 | P-C Top-1 | P-C Top-5 | stage times (min) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        t = ", ".join(f"{k[:-2]} {v / 60:.1f}" for k, v in r.items() if k.endswith("_s"))
        lines.append(f"| {r['label']} | {size} | {r['per_instance_top1']:.2f} | {r['per_instance_top5']:.2f} | "
                     f"{r['per_class_top1']:.2f} | {r['per_class_top5']:.2f} | {t} |")
    lines.append(f"| paper, WLASL100 test, HRNet poses | paper | {PAPER['per_instance_top1']} | "
                 f"{PAPER['per_instance_top5']} | {PAPER['per_class_top1']} | {PAPER['per_class_top5']} | |")
    return "\n".join(lines) + "\n"


def plot_fractions(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sorted((r["fraction"], r["per_instance_top1"]) for r in results if "fraction" in r)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([p[0] * 100 for p in pts], [p[1] for p in pts], marker="o")
    ax.set_xlabel("pre-training data (%)")
    ax.set_ylabel("WLASL100 val P-I Top-1 (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "wlasl100" / "metadata.csv"))
    ap.add_argument("--pretrain-data", nargs="*", default=[], help="more manifests whose train splits join pre-training")
    ap.add_argument("--rows", nargs="+", default=["scratch", "best"])
    ap.add_argument("--size", default="paper", help="base config of every row: paper or small")
    ap.add_argument("--fractions", nargs="*", type=float, default=[], help="table 8: also pre-train on these shares")
    ap.add_argument("--set", dest="overrides", nargs="*", default=[], help="config overrides section.key=value")
    ap.add_argument("--out", default="runs/wlasl100")
    ap.add_argument("--jobs", type=int, default=1, help="rows run at once, each in its own process")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    pretrain_data = [args.data] + args.pretrain_data
    out = Path(args.out) / args.size
    jobs = [(row, args.overrides) for row in args.rows]
    jobs += [(f"best@{int(f * 100)}", args.overrides + [f"pretrain.data_fraction={f}"]) for f in args.fractions]
    results = []

    def record(r: dict) -> None:
        if "@" in r["row"]:
            f = int(r["row"].split("@")[1]) / 100
            r.update(fraction=f, label=f"BEST, {int(f * 100)}% of pre-training data")
        results.append(r)
        write_json(out / "results.json", results)  # after every row: a long run reports as it goes
        (out / "results.md").write_text(table(results, args.size))
        print(table(results, args.size), flush=True)

    if args.jobs <= 1:
        for row, overrides in jobs:
            record(run_row(row, args, overrides, pretrain_data))
    else:
        for row, overrides in jobs:  # tokenizers first: rows sharing one must not train it twice at once
            ensure_tokenizer(row_config(row, args, overrides), args, pretrain_data)
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        ctx = multiprocessing.get_context("spawn")  # CUDA cannot be forked
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futures = [pool.submit(run_row, row, args, ov, pretrain_data, threads) for row, ov in jobs]
            for fut in as_completed(futures):  # a row reports as soon as it finishes
                record(fut.result())
    if args.fractions:
        for r in results:
            if r["row"] in ("scratch", "best"):
                r["fraction"] = 0.0 if r["row"] == "scratch" else 1.0
        plot_fractions(results, Path(args.out) / args.size / "data_fraction.png")
    write_json(out / "results.json", results)
    (out / "results.md").write_text(table(results, args.size))
    print(table(results, args.size))


if __name__ == "__main__":
    main()
