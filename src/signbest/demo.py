"""`signbest demo`: the project's point on embedded synthetic signs, with nothing to download.

When labels are few, pre-training on many unlabelled clips helps: 3 people sign each of 20 signs once
(the labels), 40 other people's clips carry no labels (the pool). Coupled tokenizer and MUM pre-training
read the labelled train clips and the pool; fine-tuning from scratch and from the pre-trained encoder
(same recipe, epoch chosen on two other people) reads the labels; both are tested on six people no stage
has seen. The work is fixed in epochs (configs/demo.json) and every model trains on one thread in fp32, so
a machine prints the same table whatever its thread count or bf16; only the wall time differs.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from .checkpoint import write_json
from .config import load_config
from .data.synth import DEMO_ROLES, generate_demo
from .eval.evaluate import evaluate
from .outputs import claim_folder
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
    so that seeds measure training noise, not another task).

    Every model trains on one thread, in fp32 (configs/demo.json, and SIGNBEST_BF16=0 while it runs, for
    the tokenizer, which has no bf16 setting): torch's thread count and bf16 change the
    order of sums, and over 24 + 50 epochs another order is another training run (the table moved by up to
    6 points). torch's threads (`--threads`) say how many models train at once instead: with two, the
    model without pre-training trains in a second process beside the tokenizer and pre-training. So the
    table is the same whatever `--threads` says; only the wall time differs."""
    out, t0 = Path(out), time.monotonic()
    threads = torch.get_num_threads()
    claim_folder(out, "demo", overwrite=overwrite)
    manifest, pool = generate_demo(out / "data", classes, data_seed, roles, progress=progress)
    log.info("demo: data ready in %.0f s", time.monotonic() - t0)
    seeds = [f"{stage}.seed={seed}" for stage in ("tokenizer", "pretrain", "finetune")]
    configs = {"scratch": load_config(config, [*seeds, *(overrides or [])])}
    configs["best"] = configs["scratch"]
    if kmeans:
        configs["kmeans"] = load_config(config, [*seeds, *(overrides or []), "tokenizer.kind=kmeans"])
    branches = {name: (cfg, manifest, pool, out, overwrite) for name, cfg in configs.items()}
    torch.set_num_threads(1)
    bf16_switch = os.environ.get("SIGNBEST_BF16")
    os.environ["SIGNBEST_BF16"] = "0"  # the tokenizer has no bf16 setting: the process switch, for the branches too
    try:
        runs = run_branches(branches, parallel=threads - 1, progress=progress)
    finally:
        torch.set_num_threads(threads)
        if bf16_switch is None:
            os.environ.pop("SIGNBEST_BF16")
        else:
            os.environ["SIGNBEST_BF16"] = bf16_switch
    show_dataset_tokens(out / "tokenizer", pool, out / "tokens.png")
    wall = time.monotonic() - t0
    table = results_table(runs)
    counts = {role: n * copies * classes for role, n, copies in roles}
    note = (f"{classes} synthetic signs. Labelled: {counts['train']} training clips ({roles[0][1] * roles[0][2]} per sign), "
            f"{counts['dev']} dev clips of other people; unlabelled pool: {counts['pool']} clips of {roles[3][1]} people; "
            f"test: {counts['test']} clips of {roles[2][1]} people no stage has seen. Seed {seed}, each model on one "
            f"thread ({min(threads, len(runs))} at once), fp32, {wall:.0f} s.\n")
    (out / "results.md").write_text(table + "\n" + note)
    write_json(out / "results.json", {**runs, "seed": seed, "data_seed": data_seed, "threads": threads,
                                      "wall_s": wall})
    plot_results(runs, out / "results.png")
    log.info("demo: finished in %.0f s", wall)
    return {"table": table, "note": note, "runs": runs, "out": str(out), "wall_s": wall, "threads": threads}


def run_branches(branches: dict, parallel: int, progress: bool) -> dict:
    """Each branch's test metrics. BEST's branch (the longest: tokenizer, pre-training, fine-tuning) runs
    here; up to `parallel` others run in processes of their own, each on one thread like this one."""
    others = [name for name in branches if name != "best"]
    runs = {}
    if parallel < 1 or not others:
        for name in branches:
            runs[name] = train_branch(name, *branches[name], progress=progress)
        return runs
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    with ProcessPoolExecutor(max_workers=min(parallel, len(others)), mp_context=spawn) as pool:
        futures = {name: pool.submit(train_branch, name, *branches[name], progress=False) for name in others}
        log.info("demo: %s training in another process", ", ".join(others))
        best = train_branch("best", *branches["best"], progress=progress)
        runs = {name: futures[name].result() for name in others}  # re-raises a branch's error here
    return {name: best if name == "best" else runs[name] for name in branches}  # the table's order


def train_branch(name: str, cfg: dict, manifest: Path, pool: Path, out: Path, overwrite: bool,
                 progress: bool = True) -> dict:
    """One model of the table: its tokenizer and pre-training (none for scratch), fine-tuning, and its
    metrics on the test people. On one thread, whichever process runs it."""
    torch.set_num_threads(1)
    kw = dict(progress=progress, overwrite=overwrite)
    pretrained = None
    if name != "scratch":
        prefix = "" if name == "best" else f"-{name}"
        train_tokenizer(cfg, [manifest, pool], out / f"tokenizer{prefix}", **kw)
        pretrained = out / f"pretrain{prefix}"
        pretrain(cfg, [manifest, pool], out / f"tokenizer{prefix}", pretrained, **kw)
    finetune(cfg, manifest, out / f"finetune-{name}", pretrained, **kw)
    return evaluate(out / f"finetune-{name}", manifest, "test", out / f"finetune-{name}" / "eval-test")["pose"]


def plot_results(runs: dict, path: Path) -> None:
    """Bars of the test people's per-instance Top-1 and Top-5, one group per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [NAMES[k] for k in runs]
    top1 = [r["per_instance_top1"] for r in runs.values()]
    top5 = [r["per_instance_top5"] for r in runs.values()]
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
    for name, m in runs.items():
        lines.append(f"| {NAMES[name]} | {m['per_instance_top1']:.1f} | {m['per_instance_top5']:.1f} | "
                     f"{m['per_class_top1']:.1f} | {m['per_class_top5']:.1f} |")
    return "\n".join(lines) + "\n"



