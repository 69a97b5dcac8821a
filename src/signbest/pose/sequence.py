"""The pose triplet unit: 7 upper-body joints, 21 left-hand and 21 right-hand joints per frame.

Every reader in :mod:`signbest.pose.readers` returns a :class:`PoseSequence`. Coordinates are in
pixels of the source frame; a joint that was not detected has NaN coordinates and confidence 0, so a
missing hand can never be mistaken for a hand at the origin.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BODY_JOINTS = (
    "nose", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)
HAND_JOINTS = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
PARTS = ("left", "right", "body")  # the one part order: every (..., 3) part axis and per-part list follows it
PART_SIZES = {"left": len(HAND_JOINTS), "right": len(HAND_JOINTS), "body": len(BODY_JOINTS)}
# Parts of one kind share a GCN, a codebook and a MUM head (the left hand is stored mirrored).
PART_KINDS = {"left": "hand", "right": "hand", "body": "body"}
HANDS = tuple(p for p in PARTS if PART_KINDS[p] == "hand")  # the parts that are hands, in PARTS order
BODY_FIRST = ("body", *HANDS)  # the order of PoseSequence's arrays (body, then hands)
HAND_J, BODY_J = len(HAND_JOINTS), len(BODY_JOINTS)
UNIT_JOINTS = sum(PART_SIZES.values())  # joints of one triplet unit, parts concatenated in PARTS order
MAX_FRAMES = 100_000  # over an hour at 25 fps: longer is a broken file, not a sign
MAX_SIDE = 16384  # pixels: a larger frame (given, or estimated from the joints) means broken coordinates
COORD_RANGE = 10.0  # coordinates may lie this many frame sizes outside the frame, no further
# Indices into BODY_JOINTS used for handedness checks and the fallback hand box.
L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class PartGraph:
    """The skeleton of one part kind, as the GCN embedding reads it (joint indices into HAND_JOINTS or
    BODY_JOINTS; the coarse graph's nodes are the groups)."""

    joints: int  # joints of the part
    bones: tuple[tuple[int, int], ...]  # skeleton links
    symmetry: tuple[tuple[int, int], ...]  # links between corresponding joints: neighbouring fingers, the two arms
    groups: tuple[tuple[int, ...], ...]  # joints max-pooled into one node each: palm + 5 fingers; head + 2 arms
    pooled_bones: tuple[tuple[int, int], ...]  # links between groups
    pooled_symmetry: tuple[tuple[int, int], ...]  # symmetric groups


PART_GRAPHS = {
    "hand": PartGraph(
        joints=HAND_J,
        bones=((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
               (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)),
        symmetry=tuple((1 + 4 * finger + k, 5 + 4 * finger + k) for finger in range(4) for k in range(4)),
        groups=((0, 1, 5, 9, 13, 17), (1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)),
        pooled_bones=tuple((0, k) for k in range(1, 6)),
        pooled_symmetry=tuple((k, k + 1) for k in range(1, 5))),
    "body": PartGraph(
        joints=BODY_J,
        bones=((0, 1), (0, 4), (1, 2), (2, 3), (4, 5), (5, 6), (1, 4)),
        symmetry=((1, 4), (2, 5), (3, 6)),
        groups=((0,), (1, 2, 3), (4, 5, 6)),
        pooled_bones=((0, 1), (0, 2)),
        pooled_symmetry=((1, 2),)),
}  # keyed by PART_KINDS' values


class PoseError(ValueError):
    """Bad pose input. The message always names the file (or source) and what is wrong with it."""


@dataclass
class PoseSequence:
    body: np.ndarray  # (T, 7, 2) pixels, NaN where missing
    left: np.ndarray  # (T, 21, 2)
    right: np.ndarray  # (T, 21, 2)
    body_conf: np.ndarray  # (T, 7) in [0, 1]; 0 where missing
    left_conf: np.ndarray  # (T, 21)
    right_conf: np.ndarray  # (T, 21)
    fps: float = 25.0  # frames per second of the source video
    width: int = 256  # source frame width in pixels
    height: int = 256  # source frame height in pixels
    source: str = "<memory>"  # file the sequence came from, used in every error message
    meta: dict = field(default_factory=dict)  # layout name, extractor, ...

    def __post_init__(self) -> None:
        if not (0 < self.width <= MAX_SIDE and 0 < self.height <= MAX_SIDE):
            raise PoseError(f"{self.source}: frame size {self.width}x{self.height} is not plausible (1..{MAX_SIDE} px "
                            "a side; for files without one it is estimated from the joints, so those are out of range)")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise PoseError(f"{self.source}: fps must be positive, got {self.fps}")
        for part in PARTS:
            xy, conf = self.coords(part), self.conf(part)
            j = PART_SIZES[part]
            if xy.ndim != 3 or xy.shape[1:] != (j, 2):
                raise PoseError(f"{self.source}: {part} must have shape (T, {j}, 2), got {xy.shape}")
            if conf.shape != xy.shape[:2]:
                raise PoseError(f"{self.source}: {part} confidence has shape {conf.shape}, expected {xy.shape[:2]}")
            if xy.shape[0] != self.body.shape[0]:
                raise PoseError(
                    f"{self.source}: {part} has {xy.shape[0]} frames but body has {self.body.shape[0]}"
                )
            if not np.issubdtype(np.asarray(xy).dtype, np.number) or not np.issubdtype(np.asarray(conf).dtype, np.number):
                raise PoseError(f"{self.source}: {part} holds non-numeric values ({np.asarray(xy).dtype})")
            size = np.array([self.width, self.height], dtype=np.float64)
            with np.errstate(invalid="ignore"):
                far = np.abs(np.asarray(xy, np.float64) - size / 2) > (COORD_RANGE + 0.5) * size
            if far.any():
                worst = np.nanmax(np.abs(np.where(far, xy, np.nan)))
                raise PoseError(f"{self.source}: {part} coordinates out of range ({worst:.3g} px for a "
                                f"{self.width}x{self.height} frame): wrong units or a corrupt file")
            # Keep the invariant "missing <=> NaN coordinates and zero confidence" whatever the reader did.
            bad = ~np.isfinite(xy).all(-1) | ~np.isfinite(conf) | (conf <= 0)
            xy = np.where(bad[..., None], np.nan, xy).astype(np.float32)
            conf = np.where(bad, 0.0, np.clip(conf, 0.0, 1.0)).astype(np.float32)
            setattr(self, part, xy)
            setattr(self, f"{part}_conf", conf)
        if self.num_frames == 0:
            raise PoseError(f"{self.source}: the sequence has no frames")
        if self.num_frames > MAX_FRAMES:
            raise PoseError(f"{self.source}: {self.num_frames} frames, more than the {MAX_FRAMES} a sign clip can have")
        if not any(self.conf(p).any() for p in PARTS):
            raise PoseError(f"{self.source}: no joint is present in any of its {self.num_frames} frames (all NaN)")

    @property
    def num_frames(self) -> int:
        return int(self.body.shape[0])

    def coords(self, part: str) -> np.ndarray:
        return getattr(self, part)

    def conf(self, part: str) -> np.ndarray:
        return getattr(self, f"{part}_conf")

    def part_present(self, part: str, min_joints: int = 1) -> np.ndarray:
        """(T,) bool: frames where at least `min_joints` joints of `part` were detected."""
        return (self.conf(part) > 0).sum(1) >= min_joints

    def swap_hands(self) -> "PoseSequence":
        """Exchange the two hand arrays (not a mirror of the image: only the labels)."""
        return PoseSequence(self.body, self.right, self.left, self.body_conf, self.right_conf, self.left_conf,
                            self.fps, self.width, self.height, self.source, dict(self.meta))

    def slice(self, start: int, stop: int) -> "PoseSequence":
        s = slice(start, stop)
        return PoseSequence(self.body[s], self.left[s], self.right[s], self.body_conf[s], self.left_conf[s],
                            self.right_conf[s], self.fps, self.width, self.height, self.source, dict(self.meta))


def fix_handedness(seq: PoseSequence) -> tuple[PoseSequence, int]:
    """Relabel hands per frame so that each hand's wrist is nearer its own pose wrist.

    Detectors name hands from the camera's or the signer's point of view depending on the tool, and
    sometimes flip them for single frames. The pose wrists are the reference. A lone hand is assigned
    to the nearer pose wrist. Returns the corrected sequence and how many frames were relabelled.
    """
    left, right = seq.left.copy(), seq.right.copy()
    lc, rc = seq.left_conf.copy(), seq.right_conf.copy()
    pw_l, pw_r = seq.body[:, L_WRIST], seq.body[:, R_WRIST]  # (T, 2)
    have_pose = np.isfinite(pw_l).all(-1) & np.isfinite(pw_r).all(-1)

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(a - b, axis=-1)
        return np.where(np.isfinite(d), d, np.inf)

    hl, hr = left[:, 0], right[:, 0]  # hand wrists (T, 2)
    keep_cost = np.minimum(dist(hl, pw_l), 1e12) * np.isfinite(hl).all(-1) + \
        np.minimum(dist(hr, pw_r), 1e12) * np.isfinite(hr).all(-1)
    swap_cost = np.minimum(dist(hl, pw_r), 1e12) * np.isfinite(hl).all(-1) + \
        np.minimum(dist(hr, pw_l), 1e12) * np.isfinite(hr).all(-1)
    swap = have_pose & (swap_cost < keep_cost)
    left[swap], right[swap] = seq.right[swap], seq.left[swap]
    lc[swap], rc[swap] = seq.right_conf[swap], seq.left_conf[swap]
    fixed = PoseSequence(seq.body, left, right, seq.body_conf, lc, rc, seq.fps, seq.width, seq.height,
                         seq.source, dict(seq.meta))
    return fixed, int(swap.sum())
