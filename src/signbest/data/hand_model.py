"""A 21-joint kinematic hand for synthetic signs: finger joint angles -> 2D joints in the image.

Local frame of a right hand: x across the palm towards the thumb, y along the fingers, z out of the
palm. Flexing a finger turns its segments from y towards z; the hand is then rotated (pitch, yaw,
roll) and projected orthographically. A left hand is the mirror image (x -> -x).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Finger bases on the palm (x, y) in palm-length units, and segment lengths (proximal, middle, distal).
FINGER_BASES = np.array([[0.30, 0.95], [0.10, 1.0], [-0.10, 0.96], [-0.28, 0.88]])
FINGER_SEGMENTS = np.array([[0.45, 0.28, 0.22], [0.50, 0.32, 0.24], [0.47, 0.30, 0.22], [0.36, 0.23, 0.19]])
THUMB_BASE = np.array([0.22, 0.18])
THUMB_SEGMENTS = np.array([0.32, 0.30, 0.26, 0.22])  # CMC->MCP, MCP->IP, IP->tip (first = CMC offset)


@dataclass(frozen=True)
class Handshape:
    name: str
    curl: tuple[float, float, float, float]  # index, middle, ring, little: 0 straight .. 1 fist
    spread: float  # fan of the four fingers, radians between neighbours
    thumb_out: float  # thumb abduction: 0 along the palm .. 1 sticking out
    thumb_curl: float  # 0 straight .. 1 folded over the palm


HANDSHAPES = [
    Handshape("A", (1, 1, 1, 1), 0.0, 0.3, 0.1),
    Handshape("B", (0, 0, 0, 0), 0.0, 0.1, 0.9),
    Handshape("5", (0, 0, 0, 0), 0.25, 1.0, 0.0),
    Handshape("1", (0, 1, 1, 1), 0.0, 0.1, 0.9),
    Handshape("V", (0, 0, 1, 1), 0.3, 0.1, 0.9),
    Handshape("Y", (1, 1, 1, 0), 0.2, 1.0, 0.0),
    Handshape("L", (0, 1, 1, 1), 0.0, 1.0, 0.0),
    Handshape("C", (0.45, 0.45, 0.45, 0.45), 0.05, 0.7, 0.3),
    Handshape("O", (0.7, 0.7, 0.7, 0.7), 0.0, 0.6, 0.6),
    Handshape("S", (1, 1, 1, 1), 0.0, 0.2, 1.0),
    Handshape("W", (0, 0, 0, 1), 0.25, 0.1, 0.9),
    Handshape("F", (0.75, 0, 0, 0), 0.2, 0.6, 0.6),
    Handshape("I", (1, 1, 1, 0), 0.0, 0.2, 1.0),
    Handshape("X", (0.55, 1, 1, 1), 0.0, 0.2, 0.9),
    Handshape("3", (0, 0, 1, 1), 0.3, 1.0, 0.0),
]


def _rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def hand_joints_3d(shape: Handshape, lengths_scale: np.ndarray | None = None) -> np.ndarray:
    """(21, 3) joints of a right hand in palm-length units, MediaPipe order."""
    scale = np.ones(5) if lengths_scale is None else lengths_scale
    out = np.zeros((21, 3))
    normal = np.array([0.0, 0.0, 1.0])
    # Thumb: starts at the CMC, points out and up, curls across the palm.
    out[1] = [*THUMB_BASE, 0.0]
    a = 0.35 + 0.65 * shape.thumb_out
    up = np.array([np.sin(a), np.cos(a), 0.0])
    across = np.array([-0.7, 0.2, 0.7]) / np.linalg.norm([-0.7, 0.2, 0.7])
    phi = 0.0
    for k, seg in enumerate(THUMB_SEGMENTS[1:]):
        phi += shape.thumb_curl * (0.5, 0.7, 0.6)[k]
        d = np.cos(phi) * up + np.sin(phi) * across
        out[2 + k] = out[1 + k] + seg * scale[0] * d
    for f in range(4):
        base = 5 + 4 * f
        out[base] = [*FINGER_BASES[f], 0.0]
        sp = shape.spread * (1.5 - f)
        u = np.array([np.sin(sp), np.cos(sp), 0.0])
        phi = 0.0
        for k, seg in enumerate(FINGER_SEGMENTS[f]):
            phi += shape.curl[f] * (1.45, 1.65, 1.1)[k]
            d = np.cos(phi) * u + np.sin(phi) * normal
            out[base + 1 + k] = out[base + k] + seg * scale[1 + f] * d
    return out


def project_hand(joints3d: np.ndarray, wrist_xy: np.ndarray, size_px: float, pitch: float, yaw: float,
                 roll: float, left: bool) -> np.ndarray:
    """(21, 3) local joints -> (21, 2) image pixels (y down) with the wrist at `wrist_xy`."""
    p = joints3d.copy()
    if left:
        p[:, 0] = -p[:, 0]
        yaw, roll = -yaw, -roll
    p = p @ _rotation(pitch, yaw, roll).T
    xy = np.stack([p[:, 0], -p[:, 1]], axis=1) * size_px  # image y points down; fingers point up
    return xy + wrist_xy
