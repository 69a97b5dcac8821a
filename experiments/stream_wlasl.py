"""Continuous recognition scored on long sequences made of WLASL100 clips one after another.

    python experiments/stream_wlasl.py --data ../shared/data/wlasl100/metadata.csv \
        --checkpoint runs/wlasl100-v02/small/best/seed0/finetune

Clips of a split are shuffled (seeded) and joined ten at a time, in normalised-unit space (each clip keeps
its own normalisation: a new person or camera every clip, harder than one signer's sentence). With
`--rest S`, a still of 0.5 S to 1.5 S (seeded) comes before each clip: its first frame held, someone about
to sign, as a camera or a long video shows between signs; true boundaries are then each clip's start and
end. Without it clips follow each other back to back. The window
and decoding settings are chosen on dev sequences (the best mean of sequence accuracy, clips found and
boundary F1); val sequences report:
- WER: edit distance between the recognised gloss sequence (unknown gaps left out) and the true one,
  over the true length;
- clips found: the segment at a clip's centre frame names its gloss;
- boundary F1: predicted segment boundaries against true clip boundaries, matched within 0.5 s;
- beside the isolated accuracy of the same clips (each scored alone as a pre-cut clip, calibrated,
  with the same "unknown" threshold: an unknown answer counts as wrong), and the speed (pose input).
"""
from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np

from signbest.data import SignDataset
from signbest.data.protocol import SplitConfig, load_manifest
from signbest.predict import Predictor, ensemble_logits, softmax
from signbest.stream import UNKNOWN, StreamConfig, segments, window_probabilities

FPS = 25.0  # WLASL100's keypoints are at 25 fps
GRID = [StreamConfig(window=w, hop=6, min_windows=m, smooth=k, switch_penalty=0) for w in (32, 48) for m in (3, 5, 7) for k in (1, 3, 5)]
GRID += [StreamConfig(window=w, hop=6, min_windows=m, switch_penalty=p) for w in (32, 48) for m in (1, 3, 5)
         for p in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)]


def balanced(r: dict) -> float:
    """What dev chooses by: the mean of sequence accuracy (100 - WER), clips found and boundary F1, so
    that no one of them is bought with the others."""
    return (100 - r["wer"] + r["clips_found"] + r["boundary_f1"]) / 3


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def sequences(ds: SignDataset, per: int, seed: int, rest_s: float = 0.0) -> list[tuple[dict, list[tuple[int, int, str]]]]:
    order = list(range(len(ds)))
    rng = random.Random(seed)
    rng.shuffle(order)
    out = []
    for k in range(0, len(order) - per + 1, per):
        parts, spans, at = [], [], 0
        for i in order[k:k + per]:
            arrays = ds.clip_arrays(i)
            if rest_s > 0:
                still = round(rng.uniform(0.5, 1.5) * rest_s * FPS)
                parts.append({key: np.repeat(v[:1], still, 0) for key, v in arrays.items()})
                at += still
            n = len(arrays["body"])
            parts.append(arrays)
            spans.append((at, at + n, ds.glosses[ds.clips[i].label]))
            at += n
        out.append(({key: np.concatenate([p[key] for p in parts]) for key in parts[0]}, spans))
    return out


_PROBS: dict = {}  # (sequence id, window, hop) -> (starts, probabilities, seconds): segmenting settings share them


def score(predictor: Predictor, seqs, cfg: StreamConfig) -> dict:
    errors = words = found = clips = 0
    matched = predicted_bounds = true_bounds = 0
    frames = 0
    model_s = 0.0
    for arrays, spans in seqs:
        key = (id(arrays), cfg.window, cfg.hop)
        if key not in _PROBS:
            start = time.perf_counter()
            starts, probs = window_probabilities(predictor, arrays, cfg)
            _PROBS[key] = (starts, probs, time.perf_counter() - start)
        starts, probs, seconds = _PROBS[key]
        start = time.perf_counter()
        timeline = segments(starts, probs, predictor.glosses, predictor.unknown_below, FPS, cfg, len(arrays["body"]))
        model_s += seconds + time.perf_counter() - start
        frames += len(arrays["body"])
        said = [s.gloss for s in timeline if s.gloss != UNKNOWN]
        truth = [g for _, _, g in spans]
        errors += edit_distance(said, truth)
        words += len(truth)
        for lo, hi, gloss in spans:
            centre = (lo + hi) / 2 / FPS
            at = next((s for s in timeline if s.start_s <= centre < s.end_s), None)
            found += at is not None and at.gloss == gloss
            clips += 1
        bounds = [s.start_s for s in timeline[1:]]
        length = len(arrays["body"])
        truth_bounds = sorted({x / FPS for lo, hi, _ in spans for x in (lo, hi) if 0 < x < length})
        used = set()
        for b in truth_bounds:
            near = [i for i, p in enumerate(bounds) if abs(p - b) <= 0.5 and i not in used]
            if near:
                used.add(min(near, key=lambda i: abs(bounds[i] - b)))
                matched += 1
        predicted_bounds += len(bounds)
        true_bounds += len(truth_bounds)
    precision = matched / max(predicted_bounds, 1)
    recall = matched / max(true_bounds, 1)
    return {"wer": 100 * errors / words, "clips_found": 100 * found / clips,
            "boundary_f1": 100 * 2 * precision * recall / max(precision + recall, 1e-9),
            "real_time_factor": frames / FPS / model_s, "sequences": len(seqs), "clips": clips}


def isolated(predictor: Predictor, ds: SignDataset) -> float:
    probs = softmax(ensemble_logits(predictor.models, ds, temperatures=predictor.temperatures))
    names = predictor.glosses
    right = [names[k] == ds.glosses[c.label] and p[k] >= predictor.unknown_below
             for c, p, k in zip(ds.clips, probs, probs.argmax(1))]
    return 100 * float(np.mean(right))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--checkpoint", nargs="+", required=True)
    ap.add_argument("--per", type=int, default=10, help="clips per sequence")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rest", type=float, default=0.0, help="mean seconds of stillness before each clip (0: none)")
    ap.add_argument("--json")
    args = ap.parse_args()
    predictor = Predictor(args.checkpoint)
    cfg = predictor.cfg
    manifest = load_manifest(args.data, SplitConfig(**cfg["split"]))
    sets = {split: SignDataset(manifest, split, num_frames=cfg["finetune"]["num_frames"],
                               sampling=cfg["finetune"]["sampling"], progress=False) for split in ("dev", "val")}
    dev = sequences(sets["dev"], args.per, args.seed, args.rest)
    grid = {f"window {c.window}, hop {c.hop}, min {c.min_windows}, smooth {c.smooth}, switch {c.switch_penalty:g}":
            (c, score(predictor, dev, c)) for c in GRID}
    for name, (_, r) in grid.items():
        print(f"dev  {name}: WER {r['wer']:.1f}, clips found {r['clips_found']:.1f}, boundary F1 {r['boundary_f1']:.1f}")
    name, (chosen, _) = max(grid.items(), key=lambda kv: balanced(kv[1][1]))
    val = score(predictor, sequences(sets["val"], args.per, args.seed, args.rest), chosen)
    result = {"chosen_on_dev": name, "rest_s": args.rest, "val": val, "val_isolated_accuracy": isolated(predictor, sets["val"]),
              "dev": {k: r for k, (_, r) in grid.items()}}
    print(f"val  {name}: WER {val['wer']:.1f}, clips found {val['clips_found']:.1f}, boundary F1 "
          f"{val['boundary_f1']:.1f}, {val['real_time_factor']:.0f}x real time; isolated accuracy of the same "
          f"clips {result['val_isolated_accuracy']:.1f} ({val['sequences']} sequences, {val['clips']} clips)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
