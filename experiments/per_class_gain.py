"""Which WLASL100 glosses gain from a pre-training pool: per-class val Top-1 of two runner rows (mean over
their common seeds), the glosses whose word also appears among the pool's `gloss_hint`s, and whether
those gain more than the rest.

    python experiments/per_class_gain.py --runs runs/wlasl100/small --base best --row best+pool \\
        --pool ../shared/data/webcam-pool/metadata.csv --out runs/wlasl100/small/per_class_pool.md

The pool's hints are only its authors' folder names (hello, thanks, ...), so overlap is matched on the
lower-cased word; a per-class value rests on the 1-6 val clips of that gloss, so read the groups, not a
single gloss.
"""
from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np


def per_class(run_dir: Path) -> dict[str, float]:
    with open(run_dir / "eval-val" / "per_class.csv", newline="") as f:
        return {r["gloss"]: float(r["top1"]) for r in csv.DictReader(f) if int(r["clips"]) > 0}


def row_means(runs: Path, row: str, seeds: list[int]) -> dict[str, float]:
    tables = [per_class(runs / row / f"seed{s}") for s in seeds]
    return {g: float(np.mean([t[g] for t in tables])) for g in tables[0]}


def pool_words(pool: Path) -> dict[str, int]:
    """Pool clips per lower-cased hint word (folder names like 'thank_you' count for 'thank' and 'you')."""
    counts: dict[str, int] = {}
    with open(pool, newline="", encoding="utf-8-sig") as f:
        for r in csv.DictReader(f):
            for w in set(re.split(r"[^a-z]+", r.get("gloss_hint", "").lower())) - {""}:
                counts[w] = counts.get(w, 0) + 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/wlasl100/small")
    ap.add_argument("--base", default="best")
    ap.add_argument("--row", default="best+pool")
    ap.add_argument("--pool", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "webcam-pool" / "metadata.csv"))
    ap.add_argument("--out")
    args = ap.parse_args()
    runs = Path(args.runs)
    seeds = sorted(set.intersection(*({int(p.name[4:]) for p in (runs / r).glob("seed*") if (p / "eval-val").exists()}
                                      for r in (args.base, args.row))))
    if not seeds:
        raise SystemExit(f"error: no seed has eval-val for both {args.base} and {args.row} under {runs}")
    base, row = row_means(runs, args.base, seeds), row_means(runs, args.row, seeds)
    words = pool_words(Path(args.pool))
    shared = sorted(g for g in base if words.get(g.lower(), 0) > 0)
    gain = {g: row[g] - base[g] for g in base}
    rest = [g for g in base if g not in shared]
    lines = [f"Per-class val Top-1, `{args.row}` minus `{args.base}`, mean over seeds {seeds}", "",
             f"- all {len(gain)} glosses: mean {np.mean(list(gain.values())):+.2f} points; "
             f"{sum(v > 0 for v in gain.values())} gain, {sum(v < 0 for v in gain.values())} lose, "
             f"{sum(v == 0 for v in gain.values())} unchanged",
             f"- {len(shared)} glosses whose word is also a pool hint ({', '.join(f'{g} ({words[g.lower()]} clips)' for g in shared)}): "
             f"mean {np.mean([gain[g] for g in shared]) if shared else float('nan'):+.2f}",
             f"- the other {len(rest)}: mean {np.mean([gain[g] for g in rest]):+.2f}", "",
             "| gloss | in pool hints | " + f"{args.base} | {args.row} | gain |", "|---|---|---|---|---|"]
    for g in sorted(gain, key=lambda g: -gain[g])[:10] + sorted(gain, key=lambda g: gain[g])[:10][::-1]:
        lines.append(f"| {g} | {words.get(g.lower(), 0)} | {base[g]:.1f} | {row[g]:.1f} | {gain[g]:+.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
