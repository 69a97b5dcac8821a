"""Open-set recognition on WLASL100: how well the "unknown" answer separates signs a model never learned.

    python experiments/open_set.py --data ../shared/data/wlasl100/metadata.csv \
        --pretrained runs/wlasl100-v02/small/best/seed0/pretrain --out runs/open-set --unknown 20 --seed 0

Holds out `--unknown` glosses (chosen by --seed) from fine-tuning entirely: a manifest without them is
written to OUT, and a model is fine-tuned on it from the given pre-trained encoder (pre-training read every
train clip unlabelled, the held-out glosses' too, as a user's pre-training would). Then:
- the score, max calibrated probability or energy (logsumexp of the calibrated logits), is chosen on dev:
  dev's clips (known signs) against the held-out glosses' train clips (never used in fine-tuning);
- the threshold is the model's own (`calibration.unknown_below`, set at fine-tuning to keep 95% of dev);
- on val: AUROC known-versus-unknown for both scores, and at the threshold the share of known clips kept,
  of unknown clips rejected, and the open-set accuracy (a known clip kept with the right gloss, or an
  unknown clip rejected), beside the closed-set accuracy on the known clips.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

import numpy as np

from signbest.calibration import auroc
from signbest.config import SECTIONS
from signbest.data import SignDataset
from signbest.data.manifest import Manifest
from signbest.data.protocol import SplitConfig, load_manifest
from signbest.predict import load_classifier, predict_logits, softmax
from signbest.train.finetune import finetune


def known_manifest(data: Path, unknown: set[str], out: Path) -> Path:
    """The manifest without the unknown glosses (absolute pose paths; labels renumbered alphabetically)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(data, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["gloss"] not in unknown]
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "gloss", "split", "signer", "pose_file"])
        for r in rows:
            w.writerow([r["video_id"], r["gloss"], r["split"], r["signer_id"], str((data.parent / r["pose_file"]).resolve())])
    return out


def scores(model, cfg: dict, ds: SignDataset) -> dict[str, np.ndarray]:
    temperature = cfg.get("calibration", {}).get("temperature", 1.0)
    logits = predict_logits(model, ds) / temperature
    top = logits.max(1, keepdims=True)
    return {"probs": softmax(logits), "max_probability": softmax(logits).max(1),
            "energy": (top[:, 0] + np.log(np.exp(logits - top).sum(1)))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--pretrained", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("runs/open-set"))
    ap.add_argument("--unknown", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    glosses = sorted({r["gloss"] for r in csv.DictReader(open(args.data, newline=""))})
    unknown = set(random.Random(args.seed).sample(glosses, args.unknown))
    known_csv = known_manifest(args.data, unknown, args.out / "known.csv")
    selected = json.loads((Path(str(args.pretrained).replace("pretrain", "finetune")) / "selected" / "config.json").read_text())
    cfg = {k: v for k, v in selected.items() if k in SECTIONS}
    cfg["finetune"] = {**cfg["finetune"], "seed": args.seed}
    finetune(cfg, known_csv, args.out / "finetune", args.pretrained, progress=False)
    model, mcfg = load_classifier(args.out / "finetune")
    threshold = mcfg["calibration"]["unknown_below"]
    full = load_manifest(args.data, SplitConfig(**mcfg["split"]))
    frames = dict(num_frames=mcfg["finetune"]["num_frames"], sampling=mcfg["finetune"]["sampling"], progress=False)
    known_dev = SignDataset(load_manifest(known_csv, SplitConfig(**mcfg["split"])), "dev", **frames)
    held_out = Manifest([c for c in full.clips if c.split in ("train", "dev") and c.gloss in unknown], full.glosses, full.path)
    unknown_train = SignDataset(held_out, "train", **frames)
    dev_known, dev_unknown = scores(model, mcfg, known_dev), scores(model, mcfg, unknown_train)
    dev_auroc = {k: auroc(dev_known[k], dev_unknown[k]) for k in ("max_probability", "energy")}
    chosen = max(dev_auroc, key=dev_auroc.get)
    val = SignDataset(full, "val", **frames)
    val_scores = scores(model, mcfg, val)
    is_known = np.array([c.gloss not in unknown for c in val.clips])
    names = mcfg["glosses"]
    right = np.array([c.gloss in names and names.index(c.gloss) == p
                      for c, p in zip(val.clips, val_scores["probs"].argmax(1))])
    kept = val_scores["max_probability"] >= threshold
    result = {
        "unknown_glosses": sorted(unknown), "known_glosses": len(names), "val_known_clips": int(is_known.sum()),
        "val_unknown_clips": int((~is_known).sum()), "dev_auroc": dev_auroc, "score_chosen_on_dev": chosen,
        "val_auroc": {k: auroc(val_scores[k][is_known], val_scores[k][~is_known]) for k in ("max_probability", "energy")},
        "threshold_max_probability": threshold,
        "val_closed_set_accuracy_known": float(100 * right[is_known].mean()),
        "val_known_kept": float(100 * kept[is_known].mean()),
        "val_unknown_rejected": float(100 * (~kept[~is_known]).mean()),
        "val_open_set_accuracy": float(100 * ((right & kept & is_known) | (~kept & ~is_known)).mean()),
    }
    (args.out / "open_set.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
