"""`signbest demo`: the project's point on embedded synthetic signs, with nothing to download.

When labels are few, pre-training on many unlabelled clips helps: 3 people sign each of 20 signs once
(the labels), 40 other people's clips carry no labels (the pool). Coupled tokenizer and MUM pre-training
read the labelled train clips and the pool; fine-tuning from scratch and from the pre-trained encoder
(same recipe, epoch chosen on two other people) reads the labels; both are tested on six people no stage
has seen. The work is fixed in epochs (configs/demo.json), so every machine prints the same table up to
arithmetic noise; only the wall time differs.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from .checkpoint import write_json
from .config import load_config
from .data.synth import DEMO_ROLES, generate_demo
from .eval.evaluate import evaluate
from .outputs import claim_folder
from .runtime import bf16_supported
from .tokens import show_dataset_tokens
from .train.finetune import finetune
from .train.pretrain import pretrain
from .train.tokenizer import train_tokenizer

log = logging.getLogger(__name__)


def run_demo(out: str | Path = "runs/demo", config: str = "demo", classes: int = 20, seed: int = 0,
             kmeans: bool = False, progress: bool = True, overrides: list[str] | None = None,
             overwrite: bool = False, roles=DEMO_ROLES, data_seed: int = 0) -> dict:
    """Few labelled clips, many unlabelled ones: the tokenizer and pre-training read the labelled train clips
    and the unlabelled pool; fine-tuning (from scratch and from the pre-trained encoder, same recipe) reads
    the labelled train clips and picks its epoch on other people (dev); the test people are new to every
    stage. `seed` seeds every stage; `data_seed` the synthetic data (the same signs and people by default,
    so that seeds measure training noise, not another task)."""
    out, t0 = Path(out), time.monotonic()
    threads = torch.get_num_threads()
    claim_folder(out, "demo", overwrite=overwrite)
    manifest, pool = generate_demo(out / "data", classes, data_seed, roles, progress=progress)
    log.info("demo: data ready in %.0f s", time.monotonic() - t0)
    seeds = [f"{stage}.seed={seed}" for stage in ("tokenizer", "pretrain", "finetune")]
    cfg = load_config(config, [*seeds, *(overrides or [])])
    kw = dict(progress=progress, overwrite=overwrite)
    tokenizers = {"best": ("tokenizer", "pretrain", cfg)}
    if kmeans:
        tokenizers["kmeans"] = ("tokenizer-kmeans", "pretrain-kmeans",
                                load_config(config, [*seeds, *(overrides or []), "tokenizer.kind=kmeans"]))
    for tok_dir, pre_dir, stage_cfg in tokenizers.values():
        train_tokenizer(stage_cfg, [manifest, pool], out / tok_dir, **kw)
        pretrain(stage_cfg, [manifest, pool], out / tok_dir, out / pre_dir, **kw)
    show_dataset_tokens(out / "tokenizer", pool, out / "tokens.png")
    runs = {}
    for name, pre in (("scratch", None), *((n, out / t[1]) for n, t in tokenizers.items())):
        finetune(cfg, manifest, out / f"finetune-{name}", pre, **kw)
        runs[name] = evaluate(out / f"finetune-{name}", manifest, "test", out / f"finetune-{name}" / "eval-test")
    wall = time.monotonic() - t0
    table = results_table(runs)
    counts = {role: n * copies * classes for role, n, copies in roles}
    note = (f"{classes} synthetic signs. Labelled: {counts['train']} training clips ({roles[0][1] * roles[0][2]} per sign), "
            f"{counts['dev']} dev clips of other people; unlabelled pool: {counts['pool']} clips of {roles[3][1]} people; "
            f"test: {counts['test']} clips of {roles[2][1]} people no stage has seen. Seed {seed}, {threads} torch "
            f"thread{'s' * (threads != 1)}, bf16 {'on' if bf16_supported(torch.device('cpu')) and cfg['finetune'].get('bf16', True) else 'off'}, "
            f"{wall:.0f} s.\n")
    (out / "results.md").write_text(table + "\n" + note)
    write_json(out / "results.json", {**{k: v["pose"] for k, v in runs.items()}, "seed": seed, "data_seed": data_seed, "threads": threads,
                                      "wall_s": wall})
    plot_results(runs, out / "results.png")
    log.info("demo: finished in %.0f s", wall)
    return {"table": table, "note": note, "runs": {k: v["pose"] for k, v in runs.items()}, "out": str(out),
            "wall_s": wall, "threads": threads}


def plot_results(runs: dict, path: Path) -> None:
    """Bars of the test people's per-instance Top-1 and Top-5, one group per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [NAMES[k] for k in runs]
    top1 = [r["pose"]["per_instance_top1"] for r in runs.values()]
    top5 = [r["pose"]["per_instance_top5"] for r in runs.values()]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], top1, height=0.4, label="Top-1", color="#2b6cb0")
    ax.barh([y - 0.2 for y in ys], top5, height=0.4, label="Top-5", color="#a3bffa")
    for y, v in zip(ys, top1):
        ax.text(v + 1, y + 0.2, f"{v:.1f}", va="center", fontsize=8)
    ax.set_yticks(list(ys), names, fontsize=8)
    ax.set_xlim(0, 105)
    ax.set_xlabel("accuracy on unseen people (%)")
    ax.set_title("signbest demo: few labels, many unlabelled clips", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": "signbest"})
    plt.close(fig)


NAMES = {"scratch": "from scratch (no pre-training)", "best": "BEST (coupled tokenizer + MUM)",
         "kmeans": "K-Means tokenizer + MUM"}


def results_table(runs: dict) -> str:
    lines = ["| model | P-I Top-1 | P-I Top-5 | P-C Top-1 | P-C Top-5 |", "|---|---|---|---|---|"]
    for name, r in runs.items():
        m = r["pose"]
        lines.append(f"| {NAMES[name]} | {m['per_instance_top1']:.1f} | {m['per_instance_top5']:.1f} | "
                     f"{m['per_class_top1']:.1f} | {m['per_class_top5']:.1f} |")
    return "\n".join(lines) + "\n"



