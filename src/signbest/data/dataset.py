"""One manifest-driven dataset for every corpus: temporal sampling, augmentation, padding masks."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..pose.sequence import BODY_FIRST
from ..pose import NormalizeConfig
from .cache import PreprocessedSet, preprocess
from .manifest import Manifest, read_manifest

log = logging.getLogger(__name__)
# Body joint order: nose, L shoulder, L elbow, L wrist, R shoulder, R elbow, R wrist.
BODY_MIRROR = [0, 4, 5, 6, 1, 2, 3]


def sample_frames(length: int, num_frames: int, train: bool, rng: np.random.Generator | None = None,
                  offset: float = 0.5, mode: str = "spread", crop: float = 1.0) -> np.ndarray:
    """Indices of `num_frames` frames of a clip of `length` frames (all frames when it is not longer).

    mode "spread" (default): testing takes one frame in each of `num_frames` equal segments of the whole
    clip, at phase `offset` (0 = segment starts, 0.5 = centres, 1 = ends; multi-window testing varies it),
    so every window covers the whole clip. Training does the same at a random phase or, with crop < 1,
    takes a random span of at least `crop` of the clip and one random frame in each of its segments.
    mode "window" (before 0.2): a strided window of `num_frames` frames with stride length // num_frames,
    so a 60-frame clip kept only 32 consecutive frames; kept to measure the difference.
    """
    if length <= num_frames:
        return np.arange(length)
    if mode == "spread":
        if not train:
            seg = length / num_frames  # > 1 frame per segment
            return np.floor(np.arange(num_frames) * seg + offset * (seg - 1)).astype(np.int64)
        if crop >= 1:  # the whole clip at one random phase in every segment
            seg = length / num_frames
            return np.floor(np.arange(num_frames) * seg + rng.random() * (seg - 1)).astype(np.int64)
        # A random span of at least `crop` of the clip (and at least num_frames frames), one random frame
        # in each of its num_frames segments: temporal crop and speed augmentation.
        span = max(float(num_frames), rng.uniform(crop, 1.0) * length)
        start = rng.uniform(0.0, length - span)
        seg = span / num_frames
        return np.minimum(np.floor(start + (np.arange(num_frames) + rng.random(num_frames)) * seg), length - 1).astype(np.int64)
    if mode != "window":
        raise ValueError(f"frame sampling mode must be spread or window, got '{mode}'")
    stride = length // num_frames
    span = (num_frames - 1) * stride + 1
    start = int(rng.integers(0, length - span + 1)) if train else int((length - span) * offset)
    return start + stride * np.arange(num_frames)


@dataclass(frozen=True)
class AugmentConfig:
    perturb: float = 0.1  # entries of the random perturbation matrix A = I + U(-p, p)^{2x2}
    shift: float = 0.05  # random translation U(-s, s) in normalised units
    swap_hands: float = 0.0  # probability of a left/right mirror of the whole clip
    speed: float = 0.0  # the clip replayed at a random rate in [1 - speed, 1 + speed] before sampling
    joint_drop: float = 0.0  # probability that each detected joint of each frame is hidden


def perturb(xy: np.ndarray, mask: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Apply one random 2x2 perturbation matrix (about the part's centre 0.5) and shift to valid joints."""
    a = np.eye(2) + rng.uniform(-cfg.perturb, cfg.perturb, (2, 2))
    t = rng.uniform(-cfg.shift, cfg.shift, 2)
    out = (xy - 0.5) @ a.T + 0.5 + t
    return np.where(mask[..., None], out, 0.0).astype(np.float32)


def replay_rate(length: int, speed: float, rng: np.random.Generator) -> np.ndarray:
    """Frame indices of a clip of `length` frames played at a random rate in [1 - speed, 1 + speed]
    (nearest frame): a slower signer repeats frames, a faster one skips them."""
    rate = rng.uniform(1.0 - speed, 1.0 + speed)
    return np.minimum((np.arange(max(1, round(length / rate))) * rate).astype(np.int64), length - 1)


def drop_joints(item: dict[str, np.ndarray], p: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Hide each detected joint with probability p: its mask cleared and its coordinates zeroed, as a joint
    the detector missed is stored."""
    out = dict(item)
    for part in BODY_FIRST:
        mask = item[f"{part}_mask"] & (rng.random(item[f"{part}_mask"].shape) >= p)
        out[f"{part}_mask"], out[part] = mask, np.where(mask[..., None], item[part], 0.0).astype(np.float32)
    return out


def mirror_clip(item: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The clip as if the video were mirrored: the hands swap roles and the body flips.

    Left-hand coordinates are stored mirrored, so a mirrored video's right hand has exactly the old
    left hand's normalised coordinates, and vice versa.
    """
    out = dict(item)
    out["left"], out["right"] = item["right"], item["left"]
    out["left_mask"], out["right_mask"] = item["right_mask"], item["left_mask"]
    body = item["body"][:, BODY_MIRROR].copy()
    bmask = item["body_mask"][:, BODY_MIRROR]
    body[..., 0] = np.where(bmask, 1.0 - body[..., 0], 0.0)
    out["body"], out["body_mask"] = body, bmask
    return out


class SignDataset(Dataset):
    """Clips of one or more splits of a manifest, as fixed-length padded tensors.

    Each item: body (N, BODY_J, 2), left and right (N, HAND_J, 2) float32; body_mask/left_mask/right_mask
    (N,J) bool joint masks (a part is present in a frame when any of its joints is valid);
    frame_mask (N,) bool, False on padding; label (); index ().
    """

    def __init__(self, manifest: Manifest | str, split: str | None = None, num_frames: int = 32,
                 train: bool = False, augment: AugmentConfig | None = None, seed: int = 0,
                 normalize_cfg: NormalizeConfig | None = None, data: PreprocessedSet | None = None,
                 progress: bool = True, noise_dim: int = 0, sampling: str = "spread", crop: float = 1.0,
                 report_failures: bool = True):
        full = read_manifest(manifest) if not isinstance(manifest, Manifest) else manifest
        wanted = full.select(split)
        # Only the selected split's files are read: training stages never open val or test clips.
        self.data = data if data is not None else preprocess(wanted, normalize_cfg, progress=progress)
        if self.data.failures and report_failures:  # prediction reports each input's error itself
            ids = sorted(self.data.failures)
            log.warning("%s: skipped %d unreadable clips (%s%s); first error: %s", full.path, len(ids),
                        ", ".join(ids[:5]), ", ..." if len(ids) > 5 else "", self.data.failures[ids[0]])
        position = {cid: i for i, cid in enumerate(self.data.clip_ids)}
        self.clips = [c for c in wanted.clips if c.clip_id in position]
        self.rows = np.array([position[c.clip_id] for c in self.clips], dtype=np.int64)
        self.glosses = full.glosses
        self.labelled = full.labelled
        self.num_frames = num_frames  # frames per item, padded
        self.train = train  # random frames and augmentation (else: centred windows, no augmentation)
        self.sampling = sampling
        self.crop = crop
        self.augment = augment if augment is not None else (AugmentConfig() if train else None)
        self.seed = seed
        self.epoch = 0  # see set_epoch
        self.noise_dim = noise_dim  # > 0: each item carries this many uniform numbers per frame for masking
        self.window = 0.5  # test-time window position, see sample_frames
        self.mirror = False  # test-time: the clip as if the video were mirrored (see mirror_clip)
        if not self.clips:
            raise ValueError(f"{full.path}: split '{split}' has no readable clip")

    @property
    def num_classes(self) -> int:
        return len(self.glosses)

    @property
    def labels(self) -> np.ndarray:
        return np.array([c.label for c in self.clips])

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        """Random choices of item i depend only on (seed, epoch, i): any process, batch or resume agrees."""
        self.epoch = epoch

    def keep(self, positions: list[int]) -> "SignDataset":
        """Keep only the clips at `positions` (in place): data fractions and held-out shares."""
        self.clips, self.rows = [self.clips[i] for i in positions], self.rows[positions]
        return self

    def describe(self, indices: list[int]) -> str:
        """Clip ids and files of items, for messages about a batch."""
        return ", ".join(f"{self.clips[i].clip_id} ({self.clips[i].pose_file.name})" for i in indices[:8]) + \
            (f" and {len(indices) - 8} more" if len(indices) > 8 else "")

    def clip_arrays(self, i: int) -> dict[str, np.ndarray]:
        """The whole normalised clip i, before sampling and augmentation."""
        return self.data.clip(int(self.rows[i]))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        full = self.clip_arrays(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        augment = self.augment if self.train else None
        # Each random draw only when its augmentation is on: a config without it gets the same clips as before.
        frames = replay_rate(len(full["body"]), augment.speed, rng) if augment and augment.speed > 0 \
            else np.arange(len(full["body"]))
        idx = frames[sample_frames(len(frames), self.num_frames, self.train, rng, self.window, self.sampling, self.crop)]
        item = {k: v[idx] for k, v in full.items()}
        if self.mirror and not self.train:
            item = mirror_clip(item)
        if self.train and self.augment is not None:
            if rng.random() < self.augment.swap_hands:
                item = mirror_clip(item)
            for part in BODY_FIRST:
                item[part] = perturb(item[part], item[f"{part}_mask"], self.augment, rng)
            if self.augment.joint_drop > 0:
                item = drop_joints(item, self.augment.joint_drop, rng)
        out = pad_item(item, self.num_frames, self.clips[i].label, i)
        if self.noise_dim:  # random numbers for masking, tied to this item like the augmentation
            out["noise"] = torch.from_numpy(rng.random((self.num_frames, self.noise_dim), dtype=np.float32))
        return out


def pad_item(item: dict[str, np.ndarray], num_frames: int, label: int, index: int) -> dict[str, torch.Tensor]:
    n = len(item["body"])
    out = {}
    for k, v in item.items():
        padded = np.zeros((num_frames,) + v.shape[1:], v.dtype)
        padded[:n] = v
        out[k] = torch.from_numpy(padded)
    frame_mask = np.zeros(num_frames, bool)
    frame_mask[:n] = True
    out["frame_mask"] = torch.from_numpy(frame_mask)
    out["label"] = torch.tensor(label, dtype=torch.long)
    out["index"] = torch.tensor(index, dtype=torch.long)
    return out


class ConcatSets:
    """Several SignDatasets read as one (the paper pre-trains on all training splits pooled)."""

    def __init__(self, sets: list[SignDataset]):
        self.sets = sets
        self.starts = np.cumsum([0] + [len(s) for s in sets])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _locate(self, i: int) -> tuple[int, int]:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        return k, i - int(self.starts[k])

    def set_epoch(self, epoch: int) -> None:
        for s in self.sets:
            s.set_epoch(epoch)

    def describe(self, indices: list[int]) -> str:
        return "; ".join(self.sets[k].describe([j]) for k, j in map(self._locate, indices[:8]))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        k, j = self._locate(i)
        item = self.sets[k][j]
        item["index"] = torch.tensor(i)
        return item
