"""The README's data-scale plot from a runner folder: val Top-1 against the share of the labelled clips
pre-trained on, without the pool, with it at the same steps and with it at the full row's steps.

    python experiments/data_scale_plot.py --runs runs/wlasl100-cosine/small --seeds 0 1 --out docs/data_scale_pool.png

Only the given seeds are drawn, so that every point averages the same seeds. Results recorded before the
runner wrote `pretrain_steps` get it from their run's `pretrain_metrics.csv`.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from signbest.eval.seeds import fraction_plot


def with_steps(result: dict, runs: Path) -> dict:
    """`result` with its pre-training steps (the last logged step of its run) when it lacks them."""
    log = runs / result["row"] / f"seed{result['seed']}" / "pretrain" / "pretrain_metrics.csv"
    if "pretrain_steps" in result or not log.exists():
        return result
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    return {**result, "pretrain_steps": int(rows[-1]["step"])} if rows else result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True, help="a runner's --out/SIZE folder (holds results.json)")
    ap.add_argument("--seeds", nargs="+", type=int, required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    results = [with_steps(r, args.runs) for r in json.loads((args.runs / "results.json").read_text()) if r["seed"] in args.seeds]
    for curve, points in fraction_plot(results, args.out, args.split).items():
        print(curve, ", ".join(f"{share}%: {mean:.2f}" for share, mean in points))


if __name__ == "__main__":
    main()
