"""Late fusion with another model's class scores (paper "Ours (+R)": pose and RGB predictions summed)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..predict import softmax  # the prediction layer, below this one, owns it


def read_scores(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Scores keyed by clip id: a CSV (clip_id, then one column per class) or an .npz with arrays
    `clip_ids` (N,) and `scores` (N, C)."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if not {"clip_ids", "scores"} <= set(z.files):
                raise ValueError(f"{path}: fusion .npz needs arrays 'clip_ids' and 'scores', has {sorted(z.files)}")
            ids, scores = [str(c) for c in z["clip_ids"]], np.asarray(z["scores"], float)
    elif path.suffix == ".csv":
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not a UTF-8 text file (byte {e.start}: {e.reason}); save it as UTF-8 CSV") from None
        if len(rows) < 2 or len(rows[0]) < 2:
            raise ValueError(f"{path}: fusion CSV needs a clip id column and score columns, and at least one row")
        body = rows[1:] if not _is_number(rows[0][1]) else rows
        widths = {len(r) for r in body}
        if len(widths) != 1:
            raise ValueError(f"{path}: rows have different numbers of columns {sorted(widths)}")
        for line, r in enumerate(body, start=len(rows) - len(body) + 1):
            bad = next((v for v in r[1:] if not _is_number(v)), None)
            if bad is not None:
                raise ValueError(f"{path}: line {line}: score {bad[:40]!r} is not a number")
        ids, scores = [r[0] for r in body], np.array([[float(v) for v in r[1:]] for r in body])
    else:
        raise ValueError(f"{path}: fusion scores must be .csv or .npz")
    if scores.ndim != 2 or scores.shape[0] != len(ids):
        raise ValueError(f"{path}: scores must be one row per clip id ({len(ids)}), got shape {scores.shape}")
    bad = np.flatnonzero(~np.isfinite(scores).all(1))
    if bad.size:
        raise ValueError(f"{path}: {bad.size} clips have non-finite scores (NaN or inf), e.g. clip {ids[bad[0]]!r}")
    return ids, scores


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def fuse(pose_logits: np.ndarray, clip_ids: list[str], other: tuple[list[str], np.ndarray], weight: float,
         other_kind: str = "logits", source: str = "fusion scores") -> np.ndarray:
    """softmax(pose) + weight * p(other), aligned by clip id. `other_kind`: logits | probs."""
    ids, scores = other
    if scores.shape[1] != pose_logits.shape[1]:
        raise ValueError(f"{source}: {scores.shape[1]} classes, but the pose model has {pose_logits.shape[1]}")
    index = {c: i for i, c in enumerate(ids)}
    missing = [c for c in clip_ids if c not in index]
    if missing:
        raise ValueError(f"{source}: no scores for {len(missing)} of {len(clip_ids)} clips (e.g. {missing[:3]})")
    other_p = scores[[index[c] for c in clip_ids]]
    if other_kind == "logits":
        other_p = softmax(other_p)
    elif other_kind != "probs":
        raise ValueError(f"fusion score kind must be logits or probs, got '{other_kind}'")
    return softmax(pose_logits) + weight * other_p
