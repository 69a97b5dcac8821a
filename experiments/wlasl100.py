"""The paper's protocol on WLASL100 (../shared/data/wlasl100), made honest: the tokenizer and pre-training
read train only, fine-tuning trains on train minus a dev split and picks its epoch on dev, and val is
reported by `evaluate` alone. Each row (a shipped config, configs/wlasl-*.json) runs once per seed;
the summary gives mean +- std over seeds and paired differences against scratch and BEST.

    python experiments/wlasl100.py --size small --rows scratch best --seeds 0 1 2
    python experiments/wlasl100.py --size small --rows kmeans vq mask-hand mask-body regression rmask --seeds 0 1
    python experiments/wlasl100.py --size small --rows best --fractions 0.25 0.5 0.75   # table 8
    python experiments/wlasl100.py --size small --rows best best+pool --fractions 0.25 0.5 \
        --pool ../shared/data/webcam-pool/metadata.csv    # table 8 past 100%: WLASL at 25/50% + the pool
    python experiments/wlasl100.py --data runs/wlasl100-signer.csv --rows scratch best  # signer-independent
    python experiments/wlasl100.py --size small --rows scratch best --jobs 3  # rows in parallel (GPU machine)
    python experiments/wlasl100.py --size small --rows best+pool best+pool-only --seeds 0 1 2 \
        --pool ../shared/data/webcam-pool/metadata.csv                      # unlabelled pool (issue 13)

A row is a shipped config name with an optional pre-training source: `best` pre-trains on the train split
of --data; `best+pool` on that plus every --pool manifest; `best+pool-only` on the pools alone (pure
transfer). Pool rows take the same number of optimisation steps as the row without the pool (compute
matched: the difference is the data); `best+pool*4` takes four times as many (data and compute), and
`best*4@25` four times `best@25`'s steps on the same clips (compute alone).
`@PCT` pre-trains (tokenizer included) on PCT% of the labelled train clips, the pool whole:
`best+pool*4@25` is WLASL at 25% + the pool with four times `best@25`'s steps.

Finished stages are reused and killed ones resumed on a rerun; a rerun with other data or overrides into
the same --out stops with the difference (--overwrite starts those stages again).
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from signbest.checkpoint import write_json
from signbest.config import load_config
from signbest.eval.evaluate import evaluate
from signbest.eval.seeds import fraction_plot, summary_markdown
from signbest.eval.seeds import parse_row as row_parts
from signbest.fingerprint import differences
from signbest.train.finetune import finetune
from signbest.train.pretrain import pretrain, steps_per_epoch_of
from signbest.train.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def parse_row(row: str) -> tuple[str, str, int]:
    """`best+pool*4@25` -> ("best", "pool", 4): config name, pool use ("", "pool", "pool-only"), step multiple."""
    return row_parts(row)[:3]


def pretrain_data_of(row: str, args) -> list[str]:
    _, pool, _ = parse_row(row)
    if pool and not args.pool:
        raise ValueError(f"row {row}: needs --pool (an unlabelled manifest, see `signbest pool`)")
    return {"": [args.data], "pool": [args.data, *args.pool], "pool-only": list(args.pool)}[pool]


@functools.lru_cache(maxsize=None)
def labelled_steps(data: str, settings: str) -> int:
    """Steps per epoch of one pass over --data's pre-training clips, computed once per setting (it reads
    the whole manifest) although every pool row and seed asks for it."""
    pretrain_config, split = json.loads(settings)
    return steps_per_epoch_of({"pretrain": pretrain_config, **({"split": split} if split else {})}, [data])


def row_config(row: str, args, overrides: list[str], seed: int) -> dict:
    seeds = [f"{s}.seed={seed}" for s in ("tokenizer", "pretrain", "finetune")]
    name, pool, times, share = row_parts(row)
    cfg = load_config(f"wlasl-{name}", [*overrides, *seeds], base=args.size)
    if times > 1 and not cfg["row"]["pretrain"]:
        raise ValueError(f"row {row!r}: a step multiple needs a row that pre-trains; {name} does not")
    if pool or times > 1:  # the labelled-only row's steps (times N), so pools of any size compare at equal compute
        cfg["pretrain"]["steps_per_epoch"] = times * labelled_steps(args.data, json.dumps([cfg["pretrain"], cfg.get("split")], sort_keys=True))
        cfg["row"]["label"] += {"": "", "pool": " + pool", "pool-only": ", pool only"}[pool] + (f", {times}x steps" if times > 1 else "")
    if "@" in row:  # a share of the labelled clips (plus the whole pool)
        cfg["row"]["label"] += f", {share}% of the labelled clips"
    return cfg


def tokenizer_dir(cfg: dict, args, row: str, seed: int) -> Path | None:
    """The row's tokenizer folder (one per kind, data and seed); None if the row uses none."""
    if not cfg["row"]["pretrain"] or cfg["model"].get("objective", "token") != "token":
        return None
    pool, share = parse_row(row)[1], cfg["tokenizer"].get("data_fraction", 1.0)
    at = f"@{round(share * 100)}" if share < 1 else ""
    return Path(args.out) / args.size / f"tokenizer-{cfg['tokenizer']['kind']}{'+' + pool if pool else ''}{at}-seed{seed}"


def ensure_tokenizer(cfg: dict, args, row: str, seed: int) -> Path | None:
    """The row's tokenizer folder, trained first if needed; None if it uses none."""
    tok_dir = tokenizer_dir(cfg, args, row, seed)
    if tok_dir is not None:
        train_tokenizer(cfg, pretrain_data_of(row, args), tok_dir, progress=not args.quiet, overwrite=args.overwrite)
    return tok_dir


def tokenizer_plan(jobs: list[tuple], dirs: list[Path | None]) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Split --jobs work by tokenizer: (one job per distinct tokenizer folder, to train it; the jobs that need
    none, free to start at once; the jobs that need one, to start when it is trained). `dirs[i]` is job i's."""
    first = {d: job for job, d in zip(jobs, dirs) if d is not None}
    return (list(first.values()), [j for j, d in zip(jobs, dirs) if d is None],
            [j for j, d in zip(jobs, dirs) if d is not None])


def run_tokenizer(row: str, seed: int, args, overrides: list[str], threads: int = 0) -> None:
    """ensure_tokenizer in a worker process of --jobs."""
    if threads:
        from signbest.runtime import set_threads
        set_threads(threads)
    ensure_tokenizer(row_config(row, args, overrides, seed), args, row, seed)


def training_seconds(folder: Path, stage: str) -> float | None:
    """A stage's training time as its metrics log recorded it (the sum of its epochs' train_s), so that a
    row whose stages are reused on a rerun still reports the time they took when they ran."""
    import csv

    log = Path(folder) / f"{stage}_metrics.csv"
    if not log.exists():
        return None
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "train_s" not in rows[0]:  # a k-means tokenizer: fitted, not trained in epochs
        return None
    return sum(float(r["train_s"] or 0) for r in rows)


def run_row(row: str, seed: int, args, overrides: list[str], threads: int = 0) -> dict:
    if threads:
        from signbest.runtime import set_threads
        set_threads(threads)
    cfg = row_config(row, args, overrides, seed)
    made_with = json.loads(json.dumps(cfg))  # as resolved, before any stage adds its own entries
    out = Path(args.out) / args.size / row / f"seed{seed}"
    pretrained, kw = None, dict(progress=not args.quiet, overwrite=args.overwrite)
    if cfg["row"]["pretrain"]:
        tok_dir = ensure_tokenizer(cfg, args, row, seed)
        pretrained = out / "pretrain"
        pre = pretrain(cfg, pretrain_data_of(row, args), tok_dir, pretrained, **kw)
    ft = finetune(cfg, args.data, out / "finetune", pretrained, **kw)
    stages = {"tokenizer": tok_dir, "pretrain": pretrained} if pretrained else {}
    times = {f"{name}_s": training_seconds(folder, name) for name, folder in {**stages, "finetune": out / "finetune"}.items() if folder}
    times = {k: v for k, v in times.items() if v is not None}
    result = {"row": row, "seed": seed, "label": cfg["row"]["label"], "selected_epoch": ft["selected_epoch"], **times,
              "config": made_with}
    if pretrained:
        result["pretrain_clips"], result["pretrain_steps"] = pre["train_clips"], pre["step"]
    for split in ("dev", "val", "test"):
        try:
            result[split] = evaluate(out / "finetune", args.data, split, out / f"eval-{split}")["pose"]
        except ValueError as e:
            if "no clip in split" not in str(e):
                raise
    return result


def share_overrides(row: str) -> list[str]:
    """`best+pool@25` -> the overrides that make its tokenizer and pre-training read 25% of the labelled
    clips (the same share, same seed); none for a row without @PCT. A row given with @PCT in --rows gets
    them as one made by --fractions does, never a 100% run under a share's name."""
    share = row_parts(row)[3]
    if "@" not in row:
        return []
    if not 0 < share <= 100:
        raise ValueError(f"row {row!r}: the share after @ must be 1-100 (% of the labelled clips), got {share}")
    return [f"tokenizer.data_fraction={share / 100:g}", f"pretrain.data_fraction={share / 100:g}"]


def fraction_rows(rows: list[str], fractions: list[float], overrides: list[str]) -> list[tuple[str, list[str]]]:
    """Table 8's rows: each BEST row (`best`, `best+pool`, ...; `best` when none is asked for) pre-trained on
    a share of the labelled clips; a pool row keeps the whole pool (`best+pool@25`: WLASL at 25% + the pool)."""
    bases = [r for r in rows if parse_row(r)[0] == "best" and "@" not in r] or ["best"]
    # The tokenizer is part of pre-training: it reads the same share of the labelled clips (same seed).
    named = [f"{base}@{round(f * 100)}" for f in fractions for base in bases]
    return [(row, overrides + share_overrides(row)) for row in named]


def settings_of(args) -> dict:
    return {"data": str(args.data), "pool": [str(p) for p in args.pool], "size": args.size, "overrides": list(args.overrides)}


def earlier_results(out: Path, args) -> list[dict]:
    """Rows of earlier invocations into the same folder with the same data and overrides, so that rows and
    seeds can be added one invocation at a time; rows made with other settings are left out of the table.
    Rows this invocation runs again stay until their new result replaces them (`merge_result`): a run
    stopped mid-way never takes finished rows out of results.json."""
    path = out / "results.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    kept = [r for r in old if r.get("settings") == settings_of(args)]
    dropped = sorted({r["row"] for r in old if r.get("settings") != settings_of(args)})
    if dropped:
        logging.warning("%s: leaving out earlier rows made with other data or overrides: %s", path, ", ".join(dropped))
    fresh = []
    for r in kept:
        try:
            now = row_config(r["row"], args, list(args.overrides) + share_overrides(r["row"]), r["seed"])
        except (ValueError, FileNotFoundError) as e:  # a row whose shipped config is gone or no longer parses
            logging.warning("%s: leaving out %s seed %d: the row no longer resolves: %s", path, r["row"], r["seed"], e)
            continue
        if changes := config_changes(r, now):
            logging.warning("%s: leaving out %s seed %d: the same overrides now resolve to another config (%s)",
                            path, r["row"], r["seed"], "; ".join(changes[:3]))
        else:
            fresh.append({**r, "label": now["row"]["label"]})  # today's wording, so reworded rows stay apart
    return fresh


def config_changes(result: dict, now: dict) -> list[str]:
    """How the config `result` was made with differs from `now`, what its row and seed resolve to today:
    equal overrides are not equal settings once a shipped default changes. Results made before configs
    were recorded have nothing to compare and are kept; settings added later at their old value match."""
    if "config" not in result:
        return []
    changes = differences({"config": result["config"]}, {"config": json.loads(json.dumps(now, default=str))})
    return [c for c in changes if not c.startswith(DESCRIPTIVE)]


DESCRIPTIVE = ("config.description:", "config.row.label:")  # wording, not settings: a reworded label keeps its results


def merge_result(results: list[dict], new: dict) -> list[dict]:
    """`results` with `new` in place of any earlier result of the same row and seed, sorted by row and seed."""
    kept = [r for r in results if (r["row"], r["seed"]) != (new["row"], new["seed"])]
    return sorted(kept + [new], key=lambda x: (x["row"], x["seed"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "wlasl100" / "metadata.csv"))
    ap.add_argument("--pool", nargs="*", default=[], help="unlabelled manifests pre-trained on by the +pool rows")
    ap.add_argument("--rows", nargs="+", default=["scratch", "best"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds; each row runs once per seed")
    ap.add_argument("--size", default="paper", help="base config of every row: paper or small")
    ap.add_argument("--fractions", nargs="*", type=float, default=[], help="table 8: also pre-train on these shares")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="config override section.key=value; repeat --set for each (as in the signbest command)")
    ap.add_argument("--out", default="runs/wlasl100")
    ap.add_argument("--jobs", type=int, default=1, help="rows run at once, each in its own process (GPU machine)")
    ap.add_argument("--overwrite", action="store_true", help="restart stages made with other settings or data")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out) / args.size
    rows = [(row, args.overrides + share_overrides(row)) for row in args.rows]
    rows += fraction_rows(args.rows, args.fractions, args.overrides)
    jobs = [(row, seed, ov) for seed in args.seeds for row, ov in rows]
    results = earlier_results(out, args)

    def record(r: dict) -> None:
        results[:] = merge_result(results, {**r, "settings": settings_of(args)})
        write_json(out / "results.json", results)  # after every row: a long run reports as it goes
        (out / "results.md").write_text(summary_markdown(results, args.size))
        print(summary_markdown(results, args.size), flush=True)

    if args.jobs <= 1:
        for row, seed, ov in jobs:
            record(run_row(row, seed, args, ov))
    else:
        from signbest.runtime import available_cores
        threads = max(1, available_cores() // args.jobs)  # rows side by side must not oversubscribe the cores
        ctx = multiprocessing.get_context("spawn")  # CUDA cannot be forked
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            # Each distinct tokenizer is trained once, in parallel with the others and with the rows that
            # need none; rows sharing a tokenizer start when it is done, so none is trained twice at once.
            dirs = [tokenizer_dir(row_config(row, args, ov, seed), args, row, seed) for row, seed, ov in jobs]
            train, free, waiting = tokenizer_plan(jobs, dirs)
            tokenizers = [pool.submit(run_tokenizer, row, seed, args, ov, threads) for row, seed, ov in train]
            futures = [pool.submit(run_row, row, seed, args, ov, threads) for row, seed, ov in free]
            for fut in tokenizers:
                fut.result()
            futures += [pool.submit(run_row, row, seed, args, ov, threads) for row, seed, ov in waiting]
            for fut in as_completed(futures):
                record(fut.result())
    if args.fractions or any("+pool" in r for r in args.rows):
        fraction_plot(results, out / "data_fraction.png")


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:  # a mixed run (fingerprint), bad config or data: one line, not a traceback
        raise SystemExit(f"error: {e}")
