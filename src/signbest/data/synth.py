"""Synthetic isolated signs built from the phonological parameters of real signs.

A sign (class) = dominant handshape (possibly changing to a second one), location relative to the
body, movement path, palm orientation, and a two-hand mode (one hand, symmetric, alternating, or a
static base hand). A signer = body proportions, camera framing, speed, jitter, handedness and a rate
of dropped hand detections. Clips are written in the MediaPipe Holistic npz schema plus a manifest,
so every reader, the cache and the dataset treat them exactly like real data. Deterministic per seed.
"""
from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..atomic import atomic_write, check_output_folder
from ..outputs import claim_folder
from ..runtime import progress_bar_kwargs
from ..pose.sequence import HAND_J, HANDS
from .hand_model import HANDSHAPES, hand_joints_3d, project_hand
from .manifest import Clip, write_manifest

# Locations in shoulder-width units relative to the neck (x towards the dominant side, y down).
LOCATIONS = {"forehead": (0.05, -0.95), "nose": (0.0, -0.7), "chin": (0.0, -0.45), "cheek": (0.25, -0.6),
             "neck": (0.0, -0.15), "chest": (0.0, 0.35), "chest_side": (0.35, 0.35),
             "shoulder_other": (-0.45, 0.05), "stomach": (0.05, 0.85), "neutral": (0.15, 0.55),
             "side": (0.7, 0.5)}
MOVEMENTS = ("hold", "down", "sideways", "circle", "arc", "zigzag", "tap", "twist", "forward")
ORIENTATIONS = {"palm_camera": (0.0, 0.0, 0.0), "palm_side": (0.0, 1.3, 0.0), "palm_down": (1.3, 0.0, 0.0),
                "palm_body": (0.0, 3.0, 0.0), "tilted": (0.3, 0.5, 0.6)}
TWO_HANDS = ("one", "one", "symmetric", "alternating", "base")
SYMMETRIC_MOVEMENTS = ("hold", "tap", "twist")  # look the same played backwards


@dataclass(frozen=True)
class SignSpec:
    handshape: int  # index into HANDSHAPES
    end_handshape: int  # equal to handshape when the shape does not change
    location: str
    movement: str
    orientation: str
    two_hands: str
    reverse: bool = False  # the movement and handshape change run backwards (minimal pair of its twin)


@dataclass(frozen=True)
class Signer:
    shoulder_px: float  # shoulder width in pixels (camera distance)
    centre: tuple[float, float]  # neck position in pixels
    arm: float  # upper arm length / shoulder width
    forearm: float  # forearm length / shoulder width
    hand: float  # palm length / shoulder width
    speed: float  # > 1 signs faster (fewer frames)
    jitter: float  # keypoint noise in pixels
    drop_rate: float  # chance per frame that a hand detection run starts missing
    left_handed: bool


def make_signs(num_classes: int, rng: np.random.Generator) -> list[SignSpec]:
    """Distinct signs, most of them in minimal pairs: a sign and its time reversal (e.g. a movement
    down vs up, or a hand opening vs closing) share every frame's pose and differ only in order, so
    a model must read the sequence, not a bag of frames, to tell them apart."""
    space = list(itertools.product(range(len(HANDSHAPES)), LOCATIONS, MOVEMENTS, ORIENTATIONS, TWO_HANDS))
    order = rng.permutation(len(space))
    signs: list[SignSpec] = []
    for i in order:
        if len(signs) >= num_classes:
            break
        handshape, location, movement, orientation, two_hands = space[i]
        paired = len(signs) + 1 < num_classes and rng.random() < 0.8
        change = paired or rng.random() < 0.25
        end = int(rng.integers(len(HANDSHAPES))) if change else handshape
        if paired and (end == handshape and movement in SYMMETRIC_MOVEMENTS):
            end = (handshape + 1 + int(rng.integers(len(HANDSHAPES) - 1))) % len(HANDSHAPES)
        sign = SignSpec(handshape, end, location, movement, orientation, two_hands)
        signs.append(sign)
        if paired:
            signs.append(SignSpec(handshape, end, location, movement, orientation, two_hands, reverse=True))
    return signs


def make_signer(rng: np.random.Generator, size: int) -> Signer:
    sh = rng.uniform(0.30, 0.42) * size
    return Signer(sh, (size / 2 + rng.normal(0, 0.04 * size), rng.uniform(0.36, 0.46) * size),
                  rng.uniform(0.75, 0.95), rng.uniform(0.75, 0.9), rng.uniform(0.22, 0.28),
                  rng.uniform(0.75, 1.35), rng.uniform(0.3, 1.5), rng.uniform(0.0, 0.06), rng.random() < 0.15)


def _path(movement: str, s: np.ndarray, amp: float) -> np.ndarray:
    """(len(s), 2) hand offset along the movement for progress s in [0, 1], in shoulder widths."""
    z = np.zeros_like(s)
    if movement == "down":
        return np.stack([z, amp * (s - 0.5)], 1)
    if movement == "sideways":
        return np.stack([amp * (0.5 - s), z], 1)
    if movement == "circle":
        return 0.5 * amp * np.stack([np.cos(2 * np.pi * s) - 1, np.sin(2 * np.pi * s)], 1)
    if movement == "arc":
        return amp * np.stack([0.6 * (0.5 - s), -0.4 * np.sin(np.pi * s)], 1)
    if movement == "zigzag":
        return amp * np.stack([0.6 * (s - 0.5), 0.15 * np.sign(np.sin(4 * np.pi * s))], 1)
    if movement == "tap":
        return amp * np.stack([z, -0.2 * np.abs(np.sin(3 * np.pi * s))], 1)
    return np.stack([z, z], 1) + 0.02 * np.stack([np.sin(6 * s), np.cos(5 * s)], 1)  # hold / twist / forward


def _elbow(shoulder: np.ndarray, wrist: np.ndarray, a: float, b: float, outward: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-link arm: elbow position with the elbow bent down and outwards; the wrist clamped to reach."""
    d = wrist - shoulder
    dist = np.linalg.norm(d, axis=1, keepdims=True)
    reach = np.minimum(dist, 0.98 * (a + b))
    wrist = shoulder + d / np.maximum(dist, 1e-6) * reach
    cos_t = np.clip((a ** 2 + reach ** 2 - b ** 2) / (2 * a * reach), -1, 1)
    t = np.arccos(cos_t)[:, 0] * outward
    u = d / np.maximum(dist, 1e-6)
    rot = np.stack([u[:, 0] * np.cos(t) - u[:, 1] * np.sin(t), u[:, 0] * np.sin(t) + u[:, 1] * np.cos(t)], 1)
    return shoulder + a * rot, wrist


def render_clip(sign: SignSpec, signer: Signer, rng: np.random.Generator, size: int = 256) -> dict[str, np.ndarray]:
    """One performance of `sign` by `signer` in the MediaPipe Holistic npz schema."""
    sw = signer.shoulder_px
    t_total = int(round(rng.uniform(36, 60) / signer.speed))
    # Timeline: rest -> approach -> the sign's movement -> return; phases vary per performance.
    cuts = np.cumsum(rng.dirichlet([3, 3, 10, 3]))
    s = np.linspace(0, 1, t_total)
    act = np.clip((s - cuts[1]) / (cuts[2] - cuts[1]), 0, 1)  # progress of the movement
    if sign.reverse:
        act = 1.0 - act
    reach = np.clip(np.minimum(s / cuts[1], (1 - s) / (1 - cuts[2] + 1e-6)), 0, 1)
    reach = 0.5 - 0.5 * np.cos(np.pi * reach)  # ease in/out between rest and signing space
    dom = -1.0 if signer.left_handed else 1.0  # image x direction of the dominant side (right hand -> -x)
    neck = np.array(signer.centre)
    shoulders = {"right": neck + [-sw / 2, 0], "left": neck + [sw / 2, 0]}
    dom_hand, other = ("left", "right") if signer.left_handed else ("right", "left")
    amp = rng.uniform(0.3, 0.45) * (1 + rng.normal(0, 0.1))
    loc = np.array(LOCATIONS[sign.location]) + rng.normal(0, 0.08, 2)
    target = {dom_hand: (np.array([-dom * loc[0], loc[1]]) + _path(sign.movement, act, amp) * [-dom, 1]) * sw + neck}
    mirror = target[dom_hand] - neck
    if sign.two_hands == "symmetric":
        target[other] = neck + mirror * [-1, 1]
    elif sign.two_hands == "alternating":
        off = _path(sign.movement, (act + 0.5) % 1.0, amp) * [dom, 1] * sw
        target[other] = neck + np.array([dom * loc[0] * sw, loc[1] * sw]) + off
    elif sign.two_hands == "base":
        target[other] = np.tile(neck + [dom * 0.15 * sw, 0.75 * sw], (t_total, 1))
    rest = {h: shoulders[h] + [(-1 if h == "right" else 1) * 0.25 * sw, 1.9 * sw] for h in shoulders}
    pose = np.full((t_total, 33, 4), 0.0, np.float32)
    hands = {}
    sloppy = lambda h: replace(h, curl=tuple(np.clip(np.array(h.curl) + rng.normal(0, 0.12, 4), 0, 1)),
                               thumb_out=float(np.clip(h.thumb_out + rng.normal(0, 0.12), 0, 1)))
    shapes = (hand_joints_3d(sloppy(HANDSHAPES[sign.handshape])), hand_joints_3d(sloppy(HANDSHAPES[sign.end_handshape])))
    pitch0, yaw0, roll0 = np.array(ORIENTATIONS[sign.orientation]) + rng.normal(0, 0.2, 3)
    base_shape = hand_joints_3d(HANDSHAPES[1])
    for h in ("right", "left"):
        active = h in target
        goal = target[h] if active else rest[h]
        wrist_goal = rest[h] + (goal - rest[h]) * (reach[:, None] if active else 0)
        a, b = signer.arm * sw, signer.forearm * sw
        elbow, wrist = _elbow(np.tile(shoulders[h], (t_total, 1)), wrist_goal, a, b,
                              outward=(1 if h == "right" else -1))
        pose[:, {"right": 14, "left": 13}[h], :2], pose[:, {"right": 16, "left": 15}[h], :2] = elbow, wrist
        blend = act[:, None, None] if h == dom_hand else 0.0
        j3 = shapes[0] * (1 - blend) + shapes[1] * blend if h == dom_hand else (
            base_shape if sign.two_hands == "base" else shapes[0])
        j3 = np.broadcast_to(j3, (t_total, HAND_J, 3))
        twist = 0.8 * np.sin(2 * np.pi * act) if sign.movement == "twist" else 0 * act
        lean = 0.5 * act if sign.movement == "forward" else 0 * act
        xy = np.stack([project_hand(j3[t], wrist[t], signer.hand * sw * (1 + 0.3 * lean[t]), pitch0 + lean[t],
                                    yaw0, roll0 + twist[t] + (0.3 if h == "left" else -0.3), left=(h == "left"))
                       for t in range(t_total)])
        hands[h] = xy
    pose[:, 12, :2], pose[:, 11, :2] = shoulders["right"], shoulders["left"]
    head = neck + [0, -0.75 * sw]
    face = {0: (0, 0), 1: (0.05, -0.07), 2: (0.08, -0.07), 3: (0.11, -0.07), 4: (-0.05, -0.07), 5: (-0.08, -0.07),
            6: (-0.11, -0.07), 7: (0.18, -0.03), 8: (-0.18, -0.03), 9: (0.05, 0.12), 10: (-0.05, 0.12)}
    for k, (dx, dy) in face.items():
        pose[:, k, :2] = head + np.array([-dx, dy]) * sw  # MediaPipe's "left" eye is on the image right
    for k, (h, j) in {17: ("left", 17), 18: ("right", 17), 19: ("left", 5), 20: ("right", 5),
                      21: ("left", 2), 22: ("right", 2)}.items():
        pose[:, k, :2] = hands[h][:, j]
    pose[:, 23, :2], pose[:, 24, :2] = neck + [0.35 * sw, 1.9 * sw], neck + [-0.35 * sw, 1.9 * sw]
    for k in range(25, 33):
        pose[:, k, :2] = neck + [(0.35 if k % 2 else -0.35) * sw, (2.8 + 0.5 * (k - 25) // 2) * sw]
    # Sway of the whole body, then detector jitter.
    sway = np.cumsum(rng.normal(0, 0.3, (t_total, 2)), 0) * 0.2
    pose[..., :2] += sway[:, None] + rng.normal(0, signer.jitter, (t_total, 33, 2))
    for h in hands:
        hands[h] = hands[h] + sway[:, None] + rng.normal(0, signer.jitter * 0.8, (t_total, HAND_J, 2))
    inside = (pose[..., 0] >= 0) & (pose[..., 0] < size) & (pose[..., 1] >= 0) & (pose[..., 1] < size)
    pose[..., 3] = np.where(inside, rng.uniform(0.9, 1.0, inside.shape), rng.uniform(0.0, 0.3, inside.shape))
    out = {"pose": pose.copy(), "fps": np.float32(25.0), "width": np.int32(size), "height": np.int32(size)}
    out["pose"][..., :2] /= size
    for h in HANDS:
        arr = np.zeros((t_total, HAND_J, 3), np.float32)
        arr[..., :2] = hands[h] / size
        wr = hands[h][:, 0]
        missing = (wr[:, 1] > size * 0.97) | (wr[:, 0] < 0) | (wr[:, 0] >= size)  # out of frame
        run, p_start = 0, signer.drop_rate
        for t in range(t_total):  # dropped detections come in short runs, as MediaPipe's do
            run = run - 1 if run > 0 else (int(rng.integers(2, 8)) if rng.random() < p_start else 0)
            missing[t] |= run > 0
        arr[missing] = np.nan
        out[f"{h}_hand"] = arr
    return out


def generate(out_dir: str | Path, classes: int = 20, signers: int = 8, per_class: int = 24, seed: int = 0,
             size: int = 256, progress: bool = True) -> Path:
    """Write `classes` x `per_class` clips (signers taken in turn) and manifest.csv; returns the manifest.

    Splits are by signer: the last signer is the test signer and the one before it the validation
    signer (with fewer than 3 signers, every clip is 'train'). Existing clips are kept (resume).
    """
    if classes < 2 or signers < 1 or per_class < 1:
        raise ValueError(f"need classes >= 2, signers >= 1, per_class >= 1; got {classes}, {signers}, {per_class}")
    out_dir = _start(out_dir, {"classes": classes, "signers": signers, "per_class": per_class, "seed": seed, "size": size})
    split_of = lambda k: ("test" if k == signers - 1 else "val" if k == signers - 2 else "train") if signers >= 3 else "train"
    jobs = [(c, (c + i) % signers, i) for c in range(classes) for i in range(per_class)]
    clips = _render(out_dir, jobs, classes, signers, seed, size, split_of, progress, seed_signer=False)
    return write_manifest(clips, out_dir / "manifest.csv")


# The demo's people: few labelled (3 signers, one clip of each sign), other people to choose the epoch on,
# many unlabelled clips from many more people for the tokenizer and pre-training, and a large test set
# of people no stage has seen.
DEMO_ROLES = (("train", 3, 1), ("dev", 4, 1), ("test", 6, 5), ("pool", 40, 1))  # (role, signers, clips per sign)


def generate_demo(out_dir: str | Path, classes: int = 20, seed: int = 0, roles=DEMO_ROLES, size: int = 256,
                  progress: bool = True) -> tuple[Path, Path]:
    """The demo's data: manifest.csv (labelled train / dev / test, by signer) and pool.csv (the pool
    role's clips, unlabelled: no gloss column). Returns both paths."""
    out_dir = _start(out_dir, {"classes": classes, "roles": [list(r) for r in roles], "seed": seed, "size": size})
    role_of, jobs, first = {}, [], 0
    for role, n, copies in roles:
        for k in range(first, first + n):
            role_of[k] = role
            jobs += [(c, k, i) for c in range(classes) for i in range(copies)]
        first += n
    clips = _render(out_dir, jobs, classes, first, seed, size, lambda k: role_of[k], progress)
    labelled = write_manifest([c for c in clips if c.split != "pool"], out_dir / "manifest.csv")
    pool = out_dir / "pool.csv"

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["clip_id", "pose_file", "split", "signer"])
            w.writerows([c.clip_id, Path(c.pose_file).relative_to(out_dir).as_posix(), "train", c.signer]
                        for c in clips if c.split == "pool")
    atomic_write(pool, write)
    return labelled, pool


def _start(out_dir, params: dict) -> Path:
    """Claim the folder; a folder made with other parameters is refused (the clips would not match)."""
    out_dir = Path(out_dir)
    claim_folder(out_dir, "synth")
    check_output_folder(out_dir / "poses")
    stamp, text = out_dir / "synth.json", json.dumps(params, sort_keys=True)
    if stamp.exists() and stamp.read_text() != text:
        raise ValueError(f"{out_dir}: holds a synthetic set made with {stamp.read_text()}; "
                         f"asked for {text}. Use another folder.")
    stamp.write_text(text)
    return out_dir


def _render(out_dir: Path, jobs, classes: int, signers: int, seed: int, size: int, split_of, progress: bool,
            seed_signer: bool = True) -> list[Clip]:
    """Clips for (class, signer, copy) jobs; existing pose files are kept (resume). Each clip's randomness
    is seeded by (seed, class, copy) and, with `seed_signer`, its signer (`generate` predates that)."""
    rng = np.random.default_rng(seed)
    signs = make_signs(classes, rng)
    people = [make_signer(rng, size) for _ in range(signers)]
    clips = []
    for c, k, i in tqdm(jobs, desc="synth", unit="clip", **progress_bar_kwargs(progress)):
        clip_id = f"c{c:03d}_s{k:02d}_{i:03d}"
        path = out_dir / "poses" / f"{clip_id}.npz"
        if not path.exists():
            clip_rng = np.random.default_rng([seed, c, i, k] if seed_signer else [seed, c, i])
            arrays = render_clip(signs[c], people[k], clip_rng, size)
            atomic_write(path, lambda tmp, a=arrays: _save_npz(tmp, a))
        clips.append(Clip(clip_id, path, gloss_name(signs[c], c), c, split_of(k), f"signer{k:02d}"))
    return clips


def _save_npz(tmp: str, arrays: dict) -> None:
    with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to the temporary's name
        np.savez_compressed(f, extractor=np.array("signbest-synth"), **arrays)


def gloss_name(sign: SignSpec, c: int) -> str:
    shape = HANDSHAPES[sign.handshape].name
    if sign.end_handshape != sign.handshape:
        shape += ">" + HANDSHAPES[sign.end_handshape].name
    return f"{c:03d}-{shape}-{sign.location}-{sign.movement}{'-reversed' if sign.reverse else ''}-{sign.two_hands}"
