"""Writing extracted clips: signbest's npz schema or pose-format `.pose`, always atomically.

A file appears under its final name only once it is complete (written beside it under a temporary
name, then renamed), so a killed extraction never leaves a half-written pose file for a dataset to read.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..pose.sequence import HANDS

FORMATS = ("npz", "pose")


def atomic_bytes(path: Path, payload: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(payload))


def write_npz(path: Path, clip: dict) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **clip)
    atomic_bytes(path, buf.getvalue())


def _pose_names():
    from .holistic import require_mediapipe

    mp, _ = require_mediapipe()
    body = [lm.name for lm in mp.solutions.holistic.PoseLandmark]
    hand = [lm.name for lm in mp.solutions.holistic.HandLandmark]
    return body, hand


def write_pose(path: Path, clip: dict) -> None:
    """pose-format `.pose` with the Holistic components POSE_LANDMARKS and LEFT/RIGHT_HAND_LANDMARKS.

    Coordinates in pixels and confidences as pose-format's own MediaPipe files keep them: pose visibility
    for the body, 1 for a found hand (whatever its source) and 0 where it is missing.
    """
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    body_names, hand_names = _pose_names()
    w, h = int(clip["width"]), int(clip["height"])
    scale = np.array([w, h, w], np.float32)
    parts = [("POSE_LANDMARKS", body_names, clip["pose"][..., :3] * scale, clip["pose"][..., 3])]
    for side in HANDS:
        xyz = clip[f"{side}_hand"] * scale
        parts.append((f"{side.upper()}_HAND_LANDMARKS", hand_names, xyz, np.isfinite(xyz).all(-1).astype(np.float32)))
    comps = [PoseHeaderComponent(name=n, points=names, limbs=[], colors=[(255, 255, 255)], point_format="XYZC")
             for n, names, _, _ in parts]
    header = PoseHeader(version=0.1, dimensions=PoseHeaderDimensions(width=w, height=h, depth=w), components=comps)
    data = np.concatenate([p[2] for p in parts], axis=1)[:, None]  # (T, 1, 75, 3)
    conf = np.nan_to_num(np.concatenate([p[3] for p in parts], axis=1)[:, None]).astype(np.float32)  # (T, 1, 75)
    masked = np.ma.masked_array(np.nan_to_num(data), mask=np.repeat((conf == 0)[..., None], 3, -1))
    buf = io.BytesIO()
    Pose(header, NumPyPoseBody(fps=float(clip["fps"]), data=masked, confidence=conf)).write(buf)
    atomic_bytes(path, buf.getvalue())


def write_clip(path: Path, clip: dict) -> None:
    if path.suffix == ".npz":
        write_npz(path, clip)
    elif path.suffix == ".pose":
        write_pose(path, clip)
    else:
        raise ValueError(f"{path}: unknown output format {path.suffix!r}; choose one of {FORMATS}")


def summary_row(video: Path, out_file: Path, clip: dict) -> dict:
    """The manifest row of one extracted clip."""
    row = {"video_id": video.stem, "video_file": str(video.resolve()), "pose_file": out_file.name,
           "frames": len(clip["pose"]), "frames_declared": int(clip["frames_declared"]),
           "fps": round(float(clip["fps"]), 3), "width": int(clip["width"]), "height": int(clip["height"]),
           "extractor": str(clip["extractor"]), "seconds": round(float(clip["seconds"]), 3)}
    for side in HANDS:
        src = clip[f"{side}_hand_source"]
        for name, code in (("holistic", 1), ("crop", 2), ("interpolated", 3)):
            row[f"{side}_{name}"] = int((src == code).sum())
    return row
