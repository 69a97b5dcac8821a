"""How hard is the synthetic default? Simple classifiers on held-out signers vs chance.

Usage: python bench/synth_difficulty.py [--classes 20 --signers 8 --per-class 24 --seed 0]
       python bench/synth_difficulty.py --manifest ../shared/data/wlasl100/metadata.csv --test-split val
Features: (a) each part's joints averaged over frames; (b) joints resampled to 16 frames.
Classifier: ridge regression to one-hot labels (closed form), and nearest class mean.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from signbest.data import SignDataset
from signbest.data.synth import generate


def features(ds: SignDataset, mode: str) -> np.ndarray:
    out = []
    for i in range(len(ds)):
        c = ds.clip_arrays(i)
        parts = []
        for p in ("body", "left", "right"):
            xy = c[p] * c[f"{p}_mask"][..., None]
            if mode == "mean":
                parts.append(xy.mean(0).ravel())
            else:
                idx = np.linspace(0, len(xy) - 1, 16).round().astype(int)
                parts.append(xy[idx].ravel())
        out.append(np.concatenate(parts))
    return np.array(out)


def ridge(xtr, ytr, xte, k, lam=1.0):
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a, b = (xtr - mu) / sd, (xte - mu) / sd
    w = np.linalg.solve(a.T @ a + lam * len(a) * np.eye(a.shape[1]), a.T @ np.eye(k)[ytr])
    return b @ w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest")
    ap.add_argument("--test-split", default="test")
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--signers", type=int, default=8)
    ap.add_argument("--per-class", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()
    manifest = args.manifest or generate(Path(tempfile.mkdtemp()) / "synth", args.classes, args.signers,
                                         args.per_class, args.seed)
    tr = SignDataset(manifest, split="train")
    te = SignDataset(manifest, split=args.test_split)
    k = tr.num_classes
    print(f"{manifest}: {len(tr)} train / {len(te)} {args.test_split} clips, {k} classes, chance {100 / k:.1f}%")
    for mode in ("mean", "16 frames"):
        xtr, xte = features(tr, mode), features(te, mode)
        for lam in (0.01, 0.1, 1.0):
            scores = ridge(xtr, tr.labels, xte, k, lam)
            top1 = (scores.argmax(1) == te.labels).mean()
            top5 = (np.argsort(-scores, 1)[:, :5] == te.labels[:, None]).any(1).mean()
            print(f"ridge lambda={lam:<5} on {mode:>9}: top-1 {100 * top1:5.1f}%  top-5 {100 * top5:5.1f}%")
    print(f"({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
