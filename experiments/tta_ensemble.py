"""Test-time views and ensembles on dev (which chooses) and val (which reports), for fine-tuned runs.

    python experiments/tta_ensemble.py --data ../shared/data/wlasl100/metadata.csv \
        runs/wlasl100-v02/small/best/seed{0,1,2}/finetune

Per run and for the ensemble of all runs: P-I Top-1 for 1/3/5 temporal windows, each without and with
the mirrored view; and the model time per clip of each setting (the views multiply it).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from signbest.data import SignDataset
from signbest.data.protocol import SplitConfig, load_manifest
from signbest.eval.metrics import classification_metrics
from signbest.predict import check_ensemble, ensemble_logits, load_classifier

SETTINGS = [(w, m) for w in (1, 3, 5) for m in (False, True)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--splits", default="dev,val", help="comma-separated splits, e.g. val")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    loaded = [load_classifier(r) for r in args.runs]
    check_ensemble(args.runs, [cfg for _, cfg in loaded])
    cfg = loaded[0][1]
    manifest = load_manifest(args.data, SplitConfig(**cfg["split"]))
    figures = {}
    splits = args.splits.split(",")
    for split in splits:
        ds = SignDataset(manifest, split, num_frames=cfg["finetune"]["num_frames"], sampling=cfg["finetune"]["sampling"],
                         progress=False)
        members = {f"seed run {i}": [model] for i, (model, _) in enumerate(loaded)}
        if len(loaded) > 1:
            members["ensemble"] = [model for model, _ in loaded]
        for name, models in members.items():
            for windows, mirror in SETTINGS:
                start = time.perf_counter()
                logits = ensemble_logits(models, ds, windows=windows, mirror=mirror)
                seconds = time.perf_counter() - start
                top1 = classification_metrics(logits, ds.labels)["per_instance_top1"]
                figures[f"{split}|{name}|{windows}|{mirror}"] = {"top1": top1, "ms_per_clip": 1000 * seconds / len(ds)}
    print("| split | models | " + " | ".join(f"{w} win{' + mirror' if m else ''}" for w, m in SETTINGS) + " |")
    print("|---|---|" + "---|" * len(SETTINGS))
    for split in splits:
        names = sorted({k.split("|")[1] for k in figures if k.startswith(split + "|")})
        for name in names:
            cells = [figures[f"{split}|{name}|{w}|{m}"]["top1"] for w, m in SETTINGS]
            print(f"| {split} | {name} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
        singles = [n for n in names if n != "ensemble"]
        mean = [np.mean([figures[f"{split}|{n}|{w}|{m}"]["top1"] for n in singles]) for w, m in SETTINGS]
        print(f"| {split} | mean of single runs | " + " | ".join(f"{c:.2f}" for c in mean) + " |")
    cost = [np.mean([v["ms_per_clip"] for k, v in figures.items() if k.endswith(f"|{w}|{m}") and "ensemble" not in k])
            for w, m in SETTINGS]
    print("| | ms per clip, one model (batch 64, evaluate's fp32 weights under bf16 autocast) | "
          + " | ".join(f"{c:.1f}" for c in cost) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
