"""Copy a manifest's MediaPipe npz pose files keeping only what signbest reads from them, for moving data
sets to a machine with a transfer limit (the GPU machine of experiments/paper_pool_pair.sh).

Kept exactly: the 7 body joints' x, y and visibility, the hands' x, y, and fps/width/height. Every other
value (the other 26 body joints, z) is zeroed rather than dropped, so the files keep their schema and
the archive of them compresses about 3x better. The manifest is copied as it is (run identities hash it).
`--check N` reads and normalises N sampled clips from both copies and stops unless the arrays are identical.

    python experiments/slim_poses.py ../shared/data/webcam-pool/metadata.csv slim/webcam-pool --check 300
    tar -C slim/webcam-pool -cJf pool.tar.xz .
"""
from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

import numpy as np

from signbest.atomic import atomic_write
from signbest.data import read_manifest
from signbest.pose import NormalizeConfig, normalize, read_pose
from signbest.pose.layouts import MEDIAPIPE_HOLISTIC


def slim(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(arrays)
    body = list(MEDIAPIPE_HOLISTIC.body)
    pose = np.zeros_like(arrays["pose"])
    pose[:, body] = arrays["pose"][:, body]
    pose[..., 2] = 0  # z: never read
    out["pose"] = pose
    for hand in ("left_hand", "right_hand"):
        kept = np.zeros_like(arrays[hand])
        kept[..., :2] = arrays[hand][..., :2]
        out[hand] = kept
    return out


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to the temporary name
        np.savez(f, **arrays)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--check", type=int, default=0, help="clips compared after reading and normalising")
    args = ap.parse_args()
    root = args.manifest.parent
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.manifest, args.out / args.manifest.name)
    if (root / "glosses.txt").exists():  # WLASL100's label names beside its manifest
        shutil.copyfile(root / "glosses.txt", args.out / "glosses.txt")
    clips = read_manifest(args.manifest).clips
    pairs = []
    for clip in clips:
        rel = clip.pose_file.resolve().relative_to(root.resolve())
        dst = args.out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        with np.load(clip.pose_file) as data:
            arrays = slim({k: data[k] for k in data.files})
        atomic_write(dst, lambda tmp, arrays=arrays: save_npz(tmp, arrays))
        pairs.append((clip.pose_file, dst))
    print(f"{len(pairs)} pose files written to {args.out}")
    for src, dst in random.Random(0).sample(pairs, min(args.check, len(pairs))):
        a, b = normalize(read_pose(src), NormalizeConfig()), normalize(read_pose(dst), NormalizeConfig())
        for name, value in vars(a).items():
            if isinstance(value, np.ndarray) and not np.array_equal(value, getattr(b, name), equal_nan=True):
                raise SystemExit(f"{dst}: '{name}' differs from {src} after reading and normalising")
    if args.check:
        print(f"{min(args.check, len(pairs))} sampled clips read and normalise identically")


if __name__ == "__main__":
    main()
