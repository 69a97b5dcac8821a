"""One video -> MediaPipe Holistic keypoints in signbest's npz schema, with the missed-hand second pass.

MediaPipe 0.10.21 is the last release whose wheel bundles the Holistic and Hands models (the legacy
`mediapipe.solutions` API), so extraction works offline. It is an optional extra: `pip install
'signbest[video]'`; it pins numpy<2, which the rest of signbest accepts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..pose.sequence import HAND_J, HANDS
from .recovery import (POSE_HAND, HandSource, RecoveryConfig, content_box, crop_square, crop_to_frame,
                       hand_crop_box, interpolate_gaps, keep_bridges, pick_candidate)

EXTRACTOR = "mediapipe-holistic"
INSTALL_HINT = "pip install 'signbest[video]'   (MediaPipe 0.10.21 with its bundled models, OpenCV)"
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


class VideoError(ValueError):
    """A video that cannot be opened or decoded; the message names the file."""


def require_mediapipe():
    """(mediapipe, cv2), or an ImportError that says how to install them. MediaPipe's own C++ logging
    (about 25 lines per video) is turned down to errors unless the user set it."""
    import os

    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import cv2
        import mediapipe as mp
    except ImportError as e:
        raise ImportError(f"video extraction needs the optional extra: {INSTALL_HINT} ({e})") from None
    if not hasattr(mp, "solutions"):
        raise ImportError(f"mediapipe {mp.__version__} has no bundled Holistic model (removed after 0.10.21): "
                          f"{INSTALL_HINT}")
    return mp, cv2


@dataclass
class ExtractConfig:
    model_complexity: int = 1  # Holistic's pose model: 0 lite, 1 full (the WLASL100 data), 2 heavy
    min_detection_confidence: float = 0.5  # as used for ../shared/data/wlasl100
    min_tracking_confidence: float = 0.5
    recover_hands: bool = True  # second pass of the hand model around the pose wrists where Holistic missed
    interpolate: bool = True  # then fill gaps of at most recovery.max_gap frames, flagged INTERPOLATED
    require_person: bool = True  # a video where no frame shows a body or a hand is a failure, not an empty clip
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)

    def __post_init__(self):
        if self.model_complexity not in (0, 1, 2):
            raise ValueError(f"model_complexity must be 0, 1 or 2, got {self.model_complexity}")
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")


def read_frames(path: Path):
    """(frames iterator of RGB (H, W, 3) uint8, fps, width, height, declared frame count)."""
    _, cv2 = require_mediapipe()
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this video (unknown container or codec, or not a video)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = float(fps) if np.isfinite(fps) and 0 < fps < 1000 else 25.0
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def frames():
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
    return frames(), fps, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), declared


def _landmarks(lms, n: int, dims: int) -> np.ndarray:
    if lms is None:
        return np.full((n, dims), np.nan, np.float32)
    cols = ("x", "y", "z", "visibility")[:dims]
    return np.array([[getattr(p, c) for c in cols] for p in lms.landmark], np.float32)


class HolisticExtractor:
    """Holds the MediaPipe graphs of one process; `extract(path)` is called once per clip."""

    def __init__(self, cfg: ExtractConfig | None = None):
        self.cfg = cfg or ExtractConfig()
        mp, _ = require_mediapipe()
        self.version = mp.__version__
        self.last_recovery_s = 0.0  # seconds the missed-hand pass took on the last frame
        self.holistic = mp.solutions.holistic.Holistic(
            static_image_mode=False, model_complexity=self.cfg.model_complexity,
            min_detection_confidence=self.cfg.min_detection_confidence,
            min_tracking_confidence=self.cfg.min_tracking_confidence)
        # Crops are unrelated images: static mode runs palm detection on every one.
        self.hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=1,
                                              min_detection_confidence=self.cfg.recovery.min_confidence
                                              ) if self.cfg.recover_hands else None

    def close(self) -> None:
        self.holistic.close()
        if self.hands is not None:
            self.hands.close()

    def extract(self, path: str | Path) -> dict:
        """Arrays of the npz schema for one clip; raises VideoError for an unreadable video."""
        path = Path(path)
        frames, fps, width, height, declared = read_frames(path)
        self.holistic.reset()  # no tracking state carried over from the previous clip
        pose, hands = [], {"left": [], "right": []}
        src = {"left": [], "right": []}
        t0, recovery_s = time.perf_counter(), 0.0
        max_gray = None  # running per-pixel maximum: where the letterbox bars are
        for rgb in frames:
            height, width = rgb.shape[:2]
            gray = rgb.max(-1)
            max_gray = gray if max_gray is None else np.maximum(max_gray, gray)
            p, found, source = self.process_frame(rgb, lambda: content_box(max_gray))
            recovery_s += self.last_recovery_s
            pose.append(p)
            for s in hands:
                hands[s].append(found[s])
                src[s].append(source[s])
        if not pose:
            raise VideoError(f"{path}: no frame could be decoded (declared {declared} frames)")
        out = {"pose": np.stack(pose), "fps": np.float32(fps), "width": np.int32(width), "height": np.int32(height),
               "extractor": np.str_(f"{EXTRACTOR} {self.version}"), "video": np.str_(str(path.resolve())),
               "frames_declared": np.int32(declared), "picture": np.array(content_box(max_gray), np.int32)}
        for s in hands:
            h, so = np.stack(hands[s]), np.array(src[s], np.uint8)
            h, so = keep_bridges(h, so, self.cfg.recovery.max_bridge)
            if self.cfg.interpolate and self.cfg.recovery.max_gap > 0:
                h, so = interpolate_gaps(h, so, self.cfg.recovery.max_gap)
            out[f"{s}_hand"], out[f"{s}_hand_source"] = h, so
        out["seconds"] = np.float32(time.perf_counter() - t0)
        out["recovery_seconds"] = np.float32(recovery_s)
        if self.cfg.require_person and not any(np.isfinite(out[k]).all(-1).any() for k in ("pose", "left_hand", "right_hand")):
            # nothing to learn from or recognise: a failure of this clip, not an empty pose file
            raise VideoError(f"{path}: no person found in any of its {len(pose)} frames")
        return out

    def process_frame(self, rgb: np.ndarray, picture) -> tuple[np.ndarray, dict, dict]:
        """(pose (33, 4), hands {side: (21, 3)}, sources {side: HandSource}) of the next frame of a video or
        camera (Holistic tracks from the previous frame); `picture()` gives the content box (x0, y0, x1, y1)
        where the missed-hand pass may look, asked only when a hand is missing."""
        height, width = rgb.shape[:2]
        res = self.holistic.process(rgb)
        p = _landmarks(res.pose_landmarks, 33, 4)
        found = {"left": _landmarks(res.left_hand_landmarks, HAND_J, 3),
                 "right": _landmarks(res.right_hand_landmarks, HAND_J, 3)}
        source = {s: HandSource.HOLISTIC if np.isfinite(found[s]).all() else HandSource.MISSING for s in found}
        self.last_recovery_s = 0.0
        if self.hands is not None and HandSource.MISSING in source.values() and np.isfinite(p).all():
            t = time.perf_counter()
            self._recover(rgb, p, found, source, width, height, picture())
            self.last_recovery_s = time.perf_counter() - t
        return p, found, source

    def _recover(self, rgb: np.ndarray, pose: np.ndarray, found: dict, source: dict, width: int, height: int,
                 picture: tuple[int, int, int, int]):
        """Second pass for each missing hand: the hand model on a crop around the pose wrist."""
        scale = np.array([width, height], np.float32)
        pose_px = pose[:, :2] * scale
        for side, other in zip(HANDS, HANDS[::-1]):
            if source[side] != HandSource.MISSING:
                continue
            box = hand_crop_box(pose_px, pose[:, 3], side, width, height, self.cfg.recovery, picture)
            if box is None:
                continue
            res = self.hands.process(crop_square(rgb, box, self.cfg.recovery.crop_size))
            if not res.multi_hand_landmarks:
                continue
            cands = [crop_to_frame(_landmarks(lm, HAND_J, 3), box) for lm in res.multi_hand_landmarks]
            other_px = None
            if source[other] != HandSource.MISSING:
                other_px = found[other].copy()
                other_px[:, :2] *= scale
            hit = pick_candidate(cands, pose_px[POSE_HAND[side][1]], other_px, box[2], self.cfg.recovery, picture)
            if hit is not None:
                hit[:, :2] /= scale
                hit[:, 2] /= width
                found[side], source[side] = hit, HandSource.CROP
