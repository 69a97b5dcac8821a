"""Results over several training seeds: mean +- std per row, and paired differences between rows that
say whether a difference is larger than the seed-to-seed spread.

A result is one dict per (row, seed): {"row", "seed", "label", "selected_epoch", "<split>": metrics,
"<stage>_s": seconds}. A paired difference uses the seeds both rows have; it is called *clear* (larger
than the spread) when every seed's difference has the same sign, the mean is more than two standard errors
from zero, and the mean is larger than the seed-to-seed spread of either row (the std of its own results
over all its seeds). The last condition matters with two seeds: two equal differences have a std of zero,
and a difference of two clips would otherwise count as clear.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

METRICS = ("per_instance_top1", "per_instance_top5", "per_class_top1", "per_class_top5")
HEADS = ("P-I Top-1", "P-I Top-5", "P-C Top-1", "P-C Top-5")


def _by_row(results: list[dict]) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for r in results:
        rows.setdefault(r["row"], []).append(r)
    return rows


def spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": len(v)}


def aggregate(results: list[dict], split: str = "val") -> dict[str, dict]:
    """Row -> label, seeds, and the spread of each metric on `split` and of each stage time."""
    out = {}
    for row, rs in _by_row(results).items():
        rs = [r for r in rs if split in r]
        if not rs:
            continue
        out[row] = {"label": rs[0]["label"], "seeds": sorted(r["seed"] for r in rs),
                    **{m: spread([r[split][m] for r in rs]) for m in METRICS},
                    **{k: spread([r[k] for r in rs]) for k in rs[0] if k.endswith("_s")}}
    return out


def paired(results: list[dict], reference: str, split: str = "val", metric: str = "per_instance_top1") -> dict:
    """Row -> per-seed differences (row minus `reference`), their spread and whether they are clear."""
    rows = _by_row(results)
    if reference not in rows:
        return {}
    ref = {r["seed"]: r[split][metric] for r in rows[reference] if split in r}
    ref_sd = spread(list(ref.values()))["std"] if ref else 0.0
    out = {}
    for row, rs in rows.items():
        diffs = [r[split][metric] - ref[r["seed"]] for r in rs if row != reference and r["seed"] in ref and split in r]
        if diffs:
            s = spread(diffs)
            same_sign = all(d > 0 for d in diffs) or all(d < 0 for d in diffs)
            row_sd = spread([r[split][metric] for r in rs if split in r])["std"]
            s["clear"] = bool(len(diffs) > 1 and same_sign and abs(s["mean"]) > 2 * s["std"] / math.sqrt(len(diffs))
                              and abs(s["mean"]) > max(row_sd, ref_sd))
            out[row] = {**s, "diffs": diffs}
    return out


def _pm(s: dict) -> str:
    return f"{s['mean']:.2f} ± {s['std']:.2f}" if s["n"] > 1 else f"{s['mean']:.2f}"


def summary_markdown(results: list[dict], size: str, split: str = "val") -> str:
    agg = aggregate(results, split)
    lines = [f"WLASL100 `{split}` (epoch selected on dev), mean ± std over seeds", "",
             "| row | size | seeds | " + " | ".join(HEADS) + " | Top-1 min-max | training time per stage (min, mean) |",
             "|---|---|---|" + "---|" * (len(HEADS) + 2)]
    for row, a in agg.items():
        t = ", ".join(f"{k[:-2]} {v['mean'] / 60:.1f}" for k, v in a.items() if k.endswith("_s"))
        top1 = a["per_instance_top1"]
        lines.append(f"| {a['label']} | {size} | {top1['n']} | " + " | ".join(_pm(a[m]) for m in METRICS)
                     + f" | {top1['min']:.2f}-{top1['max']:.2f} | {t} |")
    for ref in ("scratch", "best"):
        diffs = paired(results, ref, split)
        if diffs:
            lines += ["", f"Paired P-I Top-1 differences, row minus {ref} (same seed)", "",
                      "| row | seeds | per seed | mean ± std | larger than the spread? |", "|---|---|---|---|---|"]
            lines += [f"| {agg[row]['label']} | {d['n']} | {', '.join(f'{x:+.2f}' for x in d['diffs'])} | "
                      f"{d['mean']:+.2f} ± {d['std']:.2f} | {'yes' if d['clear'] else 'no'} |" for row, d in diffs.items()]
    return "\n".join(lines) + "\n"


# A runner row: a shipped config name, an optional pre-training pool, a step multiple, a share of the labelled
# clips, e.g. `best+pool*4@25` (the runner's docstring says what each part does).
ROW = re.compile(r"(?P<config>[a-z][a-z-]*?)(?:\+(?P<pool>pool-only|pool))?(?:\*(?P<times>\d+))?(?:@(?P<share>\d+))?")


def parse_row(row: str) -> tuple[str, str, int, int]:
    """`best+pool*4@25` -> ("best", "pool", 4, 25): config name, pool use ("", "pool", "pool-only"), step
    multiple, % of the labelled clips."""
    m = ROW.fullmatch(row)
    if not m:
        raise ValueError(f"row {row!r}: expected NAME[+pool|+pool-only][*N][@PCT], e.g. best+pool")
    if m["times"] is not None and int(m["times"]) < 1:
        raise ValueError(f"row {row!r}: the step multiple after * must be 1 or more")
    return m["config"], m["pool"] or "", int(m["times"] or 1), int(m["share"] or 100)


def data_scale_points(row: str) -> list[tuple[str, int]]:
    """Where a row sits on the data-scale plot: (curve, % of the labelled train clips pre-trained on) pairs.
    `best@25` -> labelled at 25; `best+pool@50` -> pool at 50 (the steps of `best@50`, compute matched);
    `best+pool*2@50` -> pool-budget at 50 (the steps of the full `best` row: the pool's own budget);
    the pool alone and `best+pool` take the full budget, so they sit on both pool curves. Rows that change
    something else (another target, more steps than the full budget) are on none."""
    try:
        config, pool, times, share = parse_row(row)
    except ValueError:
        return []
    if config != "best":
        return []
    if times > 1:  # more steps: on the plot only as a share row brought up to the full budget
        return [("pool-budget", share)] if pool == "pool" and share < 100 else []
    return {"": [("labelled", share)], "pool": [("pool", share)] + ([("pool-budget", 100)] if share == 100 else []),
            "pool-only": [("pool", 0), ("pool-budget", 0)]}[pool]


def fraction_plot(results: list[dict], path: Path, split: str = "val") -> dict:
    """Table 8 extended by a pool: val Top-1 (mean and std over seeds) against the share of the labelled train
    clips pre-trained on: without the pool, with it at the steps of the WLASL-only row at that share (compute
    matched), and with it at the full row's steps (the pool's own budget), the pool alone at 0%; the
    no-pre-training row is a dashed line. Returns the plotted points per curve, ordered by share; a curve
    with one point only (the two pool curves share their ends) is left out."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(results, split)
    curves: dict[str, list] = {"labelled": [], "pool": [], "pool-budget": []}
    steps: dict[str, list[int]] = {}
    for r in results:
        if "pretrain_steps" in r:
            steps.setdefault(r["row"], []).append(r["pretrain_steps"])
    for row, a in agg.items():
        for curve, share in data_scale_points(row):
            curves[curve].append((share, a["per_instance_top1"], round(float(np.mean(steps[row]))) if row in steps else None))
    if not any(p[0] not in (0, 100) for p in curves["pool-budget"]):
        curves["pool-budget"] = []  # only the ends, which the compute-matched curve already shows
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    budget = sorted({n for _, _, n in curves["pool-budget"] if n is not None})
    labels = {"labelled": "BEST, WLASL share only", "pool": "+ unlabelled pool, the same steps",
              "pool-budget": "+ unlabelled pool, " + (f"{budget[0]}-{budget[-1]}" if len(budget) > 1 else "the full row's")
              + " steps"}
    style = {"labelled": ("o", -1.5, -10), "pool": ("s", 0.0, 0), "pool-budget": ("^", 1.5, 0)}  # marker, dodge, label offset
    for name, points in curves.items():
        points.sort(key=lambda p: p[0])
        if points:
            marker, dodge, dy = style[name]  # error bars at the same share side by side, not on top
            ax.errorbar([p + dodge for p, _, _ in points], [t["mean"] for _, t, _ in points],
                        yerr=[t["std"] for _, t, _ in points], marker=marker, capsize=3, label=labels[name])
            for p, t, n in points:  # the step count: a share row's epochs are fixed, so its steps shrink; the
                if n is not None and name == "labelled":  # pool curves' steps are the legend's (one label a share)
                    ax.annotate(f"{n} steps", (p + dodge, t["mean"]), textcoords="offset points", xytext=(4, dy), fontsize=6)
    if "scratch" in agg:
        ax.axhline(agg["scratch"]["per_instance_top1"]["mean"], ls="--", color="grey", label="no pre-training")
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlim(-6, 118)  # room for the step labels
    ax.set_xlabel("share of the labelled train clips pre-trained on (%)")
    ax.set_ylabel(f"WLASL100 {split} P-I Top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {name: [(p, t["mean"]) for p, t, _ in points] for name, points in curves.items()}
