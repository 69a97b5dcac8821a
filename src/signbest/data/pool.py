"""Unlabelled pre-training pools from a folder of pose files (any layout signbest reads).

`build_pool` writes an unlabelled manifest (no gloss column: every clip is pre-training data), counts
frames and part presence, skips and lists unreadable files, and keeps evaluation clips out: a file whose
clip id or content equals a clip of a given evaluation manifest is excluded, because a pre-training pool
must never contain a clip that is later reported on.
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..outputs import claim_file, record
from ..atomic import atomic_write
from ..pose import PARTS, read_pose
from ..runtime import progress_bar_kwargs
from .manifest import read_manifest

POSE_SUFFIXES = {".npz", ".npy", ".pose", ".json", ".parquet"}


def find_pose_files(folder: Path) -> list[Path]:
    """Pose files below `folder`; a folder of OpenPose *_keypoints.json frames counts as one clip."""
    folder = Path(folder)
    openpose = sorted({p.parent for p in folder.rglob("*_keypoints.json")})
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in POSE_SUFFIXES
             and not p.name.endswith("_keypoints.json") and p.name not in ("manifest.csv", "metadata.csv")]
    return sorted(files + openpose)


def content_digest(path: Path) -> str:
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.glob("*_keypoints.json")):
            h.update(p.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clip_id_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return "__".join(rel.with_suffix("").parts) if path.is_file() else "__".join(rel.parts)


POOL_COLUMNS = ["clip_id", "pose_file", "split", "frames"]


def _check_pool_output(out: Path, folder: Path, exclude) -> None:
    """The pool manifest is a CSV that is none of the inputs and replaces only a file signbest wrote."""
    if out.suffix.lower() in POSE_SUFFIXES:
        raise ValueError(f"{out}: the pool manifest is a CSV; give a .csv path, not a pose file name")
    claim_file(out, [folder, *exclude])


def build_pool(folder: str | Path, out: str | Path, exclude: list[str | Path] = (), progress: bool = True) -> dict:
    """Write the pool manifest `out`; returns a summary (clips, frames, part presence, excluded, failed)."""
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    _check_pool_output(out, folder, exclude)
    files = find_pose_files(folder)
    if not files:
        raise ValueError(f"{folder}: no pose files ({', '.join(sorted(POSE_SUFFIXES))} or OpenPose folders) below it")
    eval_ids, eval_digests = set(), {}
    for m in map(read_manifest, exclude):
        for c in m.clips:
            eval_ids.add(c.clip_id)
            if c.pose_file.exists():
                eval_digests[content_digest(c.pose_file)] = f"{c.clip_id} of {m.path}"
    rows, excluded, failed, frames, present = [], [], [], [], {p: 0.0 for p in PARTS}
    for path in tqdm(files, desc="pool", unit="clip", **progress_bar_kwargs(progress)):
        cid = clip_id_of(path, folder)
        same = eval_digests.get(content_digest(path))
        if cid in eval_ids or path.stem in eval_ids or same:
            excluded.append((str(path), f"same content as {same}" if same else f"clip id {cid} is an evaluation clip"))
            continue
        try:
            seq = read_pose(path)
        except ValueError as e:  # PoseError: any reader failure, named
            failed.append((str(path), str(e)))
            continue
        rows.append((cid, path.resolve(), seq.num_frames))
        frames.append(seq.num_frames)
        for p in PARTS:
            present[p] += float((seq.conf(p) > 0).any(-1).sum())

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(POOL_COLUMNS)
            for cid, path, n in rows:
                w.writerow([cid, path, "train", n])
    if rows:
        atomic_write(out, write)
        record(out)
    total = max(sum(frames), 1)
    return {"manifest": str(out) if rows else None, "clips": len(rows), "frames": int(sum(frames)),
            "frames_median": float(np.median(frames)) if frames else 0.0,
            **{f"{p}_present": present[p] / total for p in PARTS}, "excluded": excluded, "failed": failed}
