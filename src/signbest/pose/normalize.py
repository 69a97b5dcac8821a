"""Per-part normalisation of the triplet unit (paper 4.2: "crop the body, left and right hand separately
and rescale them to 256x256"; box rules from the authors' later code, see shared notes).

- Body: pixel coordinates divided by the frame width and height -> [0, 1].
- Each hand: a square box centred on it (side = 2.2 x its larger extent; the authors clamp the box to
  the image because they crop pixels, but keypoints need no pixels, and an unclamped box keeps every
  joint inside [0, 1] even for a hand at the frame's edge),
  or, when fewer than 10 of its joints are confident, a box extrapolated along the forearm. Coordinates
  are mapped into the box -> [0, 1] (the paper's 256x256 crop divided by 256).
- The left hand is mirrored (x -> 1 - x) so one hand encoder and one hand codebook serve both hands.
- Joints below the confidence threshold and parts without enough joints are masked, never zero-filled
  silently: the mask travels with the coordinates.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .sequence import HANDS, L_ELBOW, L_SHOULDER, L_WRIST, R_ELBOW, R_SHOULDER, R_WRIST, PoseSequence

# Part of every preprocessing cache key: bump it whenever this file changes what `normalize` returns
# (tests/test_cache_version.py ties it to this file's text, so an unbumped change fails the tests).
PREPROCESS_VERSION = 1


@dataclass(frozen=True)
class NormalizeConfig:
    joint_min_conf: float = 0.5  # joints below this confidence are masked (notes: "zeroed")
    hand_box_min_joints: int = 10  # joints with conf > hand_box_min_conf needed for the hand's own box
    hand_box_min_conf: float = 0.1
    hand_box_scale: float = 2.2  # box side / larger extent of the hand
    forearm_offset: float = 0.33  # fallback box centre: wrist + offset * (wrist - elbow)
    forearm_scale: float = 1.1  # fallback side: scale * max(|wrist-elbow|, 0.9 |elbow-shoulder|)
    min_hand_joints: int = 10  # a hand with fewer valid joints in a frame counts as missing
    min_body_joints: int = 3  # likewise for the body


@dataclass
class NormalizedPose:
    body: np.ndarray  # (T, 7, 2) in [0, 1]; 0 where masked
    left: np.ndarray  # (T, 21, 2) in [0, 1], mirrored
    right: np.ndarray  # (T, 21, 2) in [0, 1]
    body_mask: np.ndarray  # (T, 7) bool, True = valid joint
    left_mask: np.ndarray  # (T, 21) bool
    right_mask: np.ndarray  # (T, 21) bool
    left_box: np.ndarray  # (T, 3) x0, y0, side in pixels (NaN where no box)
    right_box: np.ndarray  # (T, 3)
    width: int
    height: int

    @property
    def num_frames(self) -> int:
        return int(self.body.shape[0])

    def part_valid(self, part: str) -> np.ndarray:
        """(T,) bool: the part is present in the frame (its mask was not wiped)."""
        return getattr(self, f"{part}_mask").any(-1)


def mirror_x(xy: np.ndarray) -> np.ndarray:
    """x -> 1 - x on normalised coordinates; an involution."""
    out = xy.copy()
    out[..., 0] = 1.0 - out[..., 0]
    return out


def hand_boxes(seq: PoseSequence, hand: str, cfg: NormalizeConfig) -> np.ndarray:
    """(T, 3) square boxes (x0, y0, side) in pixels for one hand; NaN where neither rule applies."""
    xy, conf = seq.coords(hand), seq.conf(hand)
    t = seq.num_frames
    good = conf > cfg.hand_box_min_conf
    own = good.sum(1) >= cfg.hand_box_min_joints
    pts = np.where(good[..., None], xy, np.nan)
    with warnings.catch_warnings():  # all-NaN rows are expected for missing hands
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanmin(pts, axis=1), np.nanmax(pts, axis=1)  # (T, 2)
    centre = (lo + hi) / 2
    side = cfg.hand_box_scale * np.max(hi - lo, axis=1)

    s, e, w = (L_SHOULDER, L_ELBOW, L_WRIST) if hand == "left" else (R_SHOULDER, R_ELBOW, R_WRIST)
    arm_ok = (seq.body_conf[:, [s, e, w]] >= cfg.joint_min_conf).all(1)
    sh, el, wr = seq.body[:, s], seq.body[:, e], seq.body[:, w]
    fcentre = wr + cfg.forearm_offset * (wr - el)
    fside = cfg.forearm_scale * np.maximum(np.linalg.norm(wr - el, axis=1), 0.9 * np.linalg.norm(el - sh, axis=1))

    box = np.full((t, 3), np.nan, np.float32)
    use_own, use_arm = own, ~own & arm_ok
    for use, c, sd in ((use_own, centre, side), (use_arm, fcentre, fside)):
        sd = np.maximum(sd, 1.0)  # a degenerate hand (all joints on one point) still gets a 1-pixel box
        box[use, 0:2] = (c - sd[:, None] / 2)[use]
        box[use, 2] = sd[use]
    return box


def normalize(seq: PoseSequence, cfg: NormalizeConfig | None = None) -> NormalizedPose:
    cfg = cfg or NormalizeConfig()
    out = {}
    body_mask = seq.body_conf >= cfg.joint_min_conf
    body_mask &= (body_mask.sum(1) >= cfg.min_body_joints)[:, None]
    body = seq.body / np.array([seq.width, seq.height], np.float32)
    out["body"], out["body_mask"] = np.where(body_mask[..., None], body, 0.0), body_mask
    for hand in HANDS:
        box = hand_boxes(seq, hand, cfg)
        mask = (seq.conf(hand) >= cfg.joint_min_conf) & np.isfinite(box[:, :1])
        mask &= (mask.sum(1) >= cfg.min_hand_joints)[:, None]
        xy = (seq.coords(hand) - box[:, None, :2]) / box[:, None, 2:3]
        if hand == "left":
            xy = mirror_x(xy)
        out[hand], out[f"{hand}_mask"], out[f"{hand}_box"] = np.where(mask[..., None], xy, 0.0), mask, box
    arrays = {k: (v.astype(bool) if k.endswith("mask") else v.astype(np.float32)) for k, v in out.items()}
    return NormalizedPose(**arrays, width=seq.width, height=seq.height)


def denormalize_hand(xy: np.ndarray, box: np.ndarray, hand: str) -> np.ndarray:
    """Inverse of the hand mapping: normalised (T, 21, 2) + boxes (T, 3) -> pixels."""
    if hand == "left":
        xy = mirror_x(xy)
    return xy * box[:, None, 2:3] + box[:, None, :2]
