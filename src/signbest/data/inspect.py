"""Summaries of a pose file or a dataset: clips, classes, signers, frame counts, part presence."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..pose import PARTS, normalize, read_pose
from .cache import preprocess
from .manifest import read_manifest
from .protocol import load_manifest, split_summary


def summarize_file(path: str | Path) -> dict:
    seq = read_pose(path)
    norm = normalize(seq)
    return {"file": str(path), "layout": seq.meta.get("layout", "?"), "frames": seq.num_frames, "fps": seq.fps,
            "frame_size": f"{seq.width}x{seq.height}", "hands_relabelled": seq.meta.get("hands_relabelled", 0),
            **{f"{p}_present": float(norm.part_valid(p).mean()) for p in PARTS}}


def summarize_dataset(path: str | Path, progress: bool = True) -> dict:
    manifest = read_manifest(path)
    data = preprocess(manifest, progress=progress)
    lengths = data.lengths()
    valid = {p: data.arrays[f"{p}_mask"].any(-1) for p in PARTS}
    by_split: dict[str, int] = {}
    for c in manifest.clips:
        by_split[c.split] = by_split.get(c.split, 0) + 1
    return {"manifest": str(manifest.path), "clips": len(manifest.clips), "readable": len(data.clip_ids),
            "failed": len(data.failures), "classes": manifest.num_classes if manifest.labelled else "unlabelled",
            "signers": len({c.signer for c in manifest.clips if c.signer}), "splits": by_split,
            "frames_min": int(lengths.min()), "frames_median": float(np.median(lengths)),
            "frames_max": int(lengths.max()), **{f"{p}_present": float(valid[p].mean()) for p in PARTS},
            "protocol_splits": {k: (f"{v['clips']} clips, {v['signers']} signers, {v['glosses']} glosses"
                                    if isinstance(v, dict) else v) for k, v in split_summary(load_manifest(manifest)).items()},
            "failures": dict(list(data.failures.items())[:10])}


def summarize(path: str | Path, progress: bool = True) -> dict:
    """A dataset when `path` is a CSV or a folder holding a manifest; a pose file otherwise."""
    p = Path(path)
    is_dataset = p.suffix.lower() == ".csv" or (p.is_dir() and any((p / n).exists() for n in ("manifest.csv", "metadata.csv")))
    return summarize_dataset(p, progress) if is_dataset else summarize_file(p)


def format_summary(s: dict) -> str:
    lines = []
    for k, v in s.items():
        if k == "failures":
            for cid, err in v.items():
                lines.append(f"  failed {cid}: {err}")
            continue
        if k.endswith("_present"):
            v = f"{100 * v:.1f}% of frames"
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        lines.append(f"{k:>17}: {v}")
    return "\n".join(lines)
