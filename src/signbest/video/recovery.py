"""Recovering hands that MediaPipe Holistic misses, without inventing them.

Holistic finds a hand only where its own pose-to-hand tracking succeeds; on small, blurred or crossing
hands it often gives up although the pose model still places the wrist. The second pass here crops a
square around the pose model's hand landmarks (wrist, index and pinky knuckles), upscales it and runs
the stand-alone hand model on it; a detection is kept only when its wrist lies near the pose wrist and
it is not the other, already found hand. Short gaps between found frames may then be filled by linear
interpolation. Every frame records where its hand came from (HandSource), so users can drop the
recovered or interpolated frames.

All geometry is in pixels. Functions here are pure numpy, so they are tested without MediaPipe.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class HandSource(IntEnum):
    """Per-frame origin of a hand, stored as uint8 in `left_hand_source` / `right_hand_source`."""
    MISSING = 0
    HOLISTIC = 1  # found by Holistic itself
    CROP = 2  # re-detected by the hand model on a crop around the pose wrist
    INTERPOLATED = 3  # filled linearly between found frames


# MediaPipe Pose indices of each side's elbow, wrist, pinky, index knuckle (the person's left / right).
POSE_HAND = {"left": (13, 15, 17, 19), "right": (14, 16, 18, 20)}


@dataclass
class RecoveryConfig:
    min_wrist_visibility: float = 0.5  # pose wrist less visible than this: the hand is likely out of view
    crop_scale: float = 6.0  # crop side as a multiple of the wrist-to-knuckles distance (context helps palm detection)
    min_crop_px: float = 32.0  # never crop smaller than this (pixels of the original frame)
    crop_size: int = 256  # the crop is resized to this before the hand model sees it
    min_confidence: float = 0.5  # the hand model's detection threshold on crops (0.3 found necks and clothing)
    min_inside: float = 0.8  # share of a detection's 21 joints that must lie inside the picture
    max_wrist_distance: float = 0.35  # accept a detection whose wrist is this close (share of crop side)
    min_other_hand_distance: float = 0.25  # ...and whose centre is this far from the other hand
    max_bridge: int = 6  # keep a re-detected hand only this many frames from one Holistic found itself
    max_gap: int = 3  # interpolate gaps of at most this many frames (0: never)


def content_box(max_gray: np.ndarray, threshold: int = 16) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the picture inside black letterbox bars, from the per-pixel maximum over frames.

    Many sign datasets pad their clips to a square with black bars; a wrist the pose model places in a
    bar is outside the picture, however much the frame is.
    """
    rows = np.flatnonzero(max_gray.max(1) > threshold)
    cols = np.flatnonzero(max_gray.max(0) > threshold)
    if len(rows) == 0 or len(cols) == 0:
        return 0, 0, max_gray.shape[1], max_gray.shape[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def hand_crop_box(pose_px: np.ndarray, visibility: np.ndarray, side: str, width: int, height: int,
                  cfg: RecoveryConfig, picture: tuple[int, int, int, int] | None = None
                  ) -> tuple[float, float, float] | None:
    """A square (cx, cy, side) around where the pose model puts the hand, or None if it is not in view.

    pose_px (33, 2) pixels, visibility (33,). None when the wrist is missing, barely visible, or outside
    the picture (the frame, or `picture` (x0, y0, x1, y1) inside letterbox bars): a hand there cannot be
    seen, so looking for one could only invent it.
    """
    elbow, wrist, pinky, index = POSE_HAND[side]
    w = pose_px[wrist]
    if not np.isfinite(pose_px[[wrist, pinky, index]]).all() or visibility[wrist] < cfg.min_wrist_visibility:
        return None
    x0, y0, x1, y1 = picture if picture is not None else (0, 0, width, height)
    if not (x0 <= w[0] < x1 and y0 <= w[1] < y1):
        return None
    knuckles = (pose_px[pinky] + pose_px[index]) / 2
    reach = float(np.linalg.norm(knuckles - w))
    forearm = float(np.linalg.norm(pose_px[elbow] - w)) if np.isfinite(pose_px[elbow]).all() else 0.0
    size = max(cfg.crop_scale * reach, 0.6 * forearm, cfg.min_crop_px)
    centre = w + 0.8 * (knuckles - w)  # the palm lies just beyond the wrist, towards the knuckles
    return float(centre[0]), float(centre[1]), size


def crop_square(frame: np.ndarray, box: tuple[float, float, float], out_size: int) -> np.ndarray:
    """The square box of an (H, W, 3) frame, padded with black outside the frame, resized to out_size."""
    import cv2

    cx, cy, side = box
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 1)
    h, w = frame.shape[:2]
    pad = ((max(0, -y0), max(0, y0 + s - h)), (max(0, -x0), max(0, x0 + s - w)), (0, 0))
    crop = frame[max(0, y0):min(h, y0 + s), max(0, x0):min(w, x0 + s)]
    crop = np.pad(crop, pad)
    interp = cv2.INTER_CUBIC if s < out_size else cv2.INTER_AREA
    return cv2.resize(crop, (out_size, out_size), interpolation=interp)


def crop_to_frame(landmarks: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """Hand landmarks (21, 3) normalised to the crop -> (21, 3) normalised to the crop's frame pixels.

    x, y come back in pixels of the frame; z is rescaled with x as MediaPipe defines it.
    """
    cx, cy, side = box
    out = landmarks.astype(np.float32).copy()
    out[:, 0] = cx - side / 2 + landmarks[:, 0] * side
    out[:, 1] = cy - side / 2 + landmarks[:, 1] * side
    out[:, 2] = landmarks[:, 2] * side
    return out


def pick_candidate(candidates: list[np.ndarray], pose_wrist: np.ndarray, other_hand: np.ndarray | None,
                   side: float, cfg: RecoveryConfig, picture: tuple[int, int, int, int] | None = None
                   ) -> np.ndarray | None:
    """The detection (21, 3) pixels whose wrist is nearest the pose wrist, if near enough, inside the
    picture and not the other hand. A hand cut by the picture's edge gets its hidden joints guessed by
    the model: those guesses are not kept."""
    best, best_d = None, np.inf
    for c in candidates:
        if picture is not None:
            x0, y0, x1, y1 = picture
            inside = (c[:, 0] >= x0) & (c[:, 0] < x1) & (c[:, 1] >= y0) & (c[:, 1] < y1)
            if inside.mean() < cfg.min_inside:
                continue
        d = float(np.linalg.norm(c[0, :2] - pose_wrist))
        if d > cfg.max_wrist_distance * side or d >= best_d:
            continue
        if other_hand is not None and np.isfinite(other_hand).all():
            gap = float(np.linalg.norm(c[:, :2].mean(0) - other_hand[:, :2].mean(0)))
            if gap < cfg.min_other_hand_distance * side:
                continue  # the same hand Holistic already gave to the other side
        best, best_d = c, d
    return best


def keep_bridges(hand: np.ndarray, source: np.ndarray, max_bridge: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop re-detected hands farther than max_bridge frames from a hand Holistic found itself.

    The crop pass is trusted only to bridge dropouts of a hand that Holistic tracks (blur, crossing):
    where Holistic never sees a hand nearby, a detection on a crop is too often the neck or a fold of
    clothing that the palm detector mistakes for a hand (seen on WLASL: a signer's V-neck, 10 frames).
    """
    hand, source = hand.copy(), source.copy()
    anchors = np.flatnonzero(source == HandSource.HOLISTIC)
    crops = np.flatnonzero(source == HandSource.CROP)
    if len(crops):
        dist = np.abs(crops[:, None] - anchors[None, :]).min(1) if len(anchors) else np.full(len(crops), np.inf)
        drop = crops[dist > max_bridge]
        hand[drop], source[drop] = np.nan, HandSource.MISSING
    return hand, source


def interpolate_gaps(hand: np.ndarray, source: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill runs of at most max_gap missing frames between two found frames linearly.

    hand (T, 21, 3) with NaN where missing, source (T,) uint8. Gaps at the start or end stay missing:
    with one side only there is nothing to interpolate between.
    """
    hand, source = hand.copy(), source.copy()
    found = np.flatnonzero(source != HandSource.MISSING)
    for a, b in zip(found[:-1], found[1:]):
        gap = b - a - 1
        if 0 < gap <= max_gap:
            w = (np.arange(1, gap + 1, dtype=np.float32) / (gap + 1))[:, None, None]
            hand[a + 1:b] = (1 - w) * hand[a] + w * hand[b]
            source[a + 1:b] = HandSource.INTERPOLATED
    return hand, source
