"""experiments/slim_poses.py: the slimmed copy reads and normalises exactly like the original, and zeroes
everything signbest never reads."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from signbest.data import write_manifest
from signbest.data.manifest import Clip
from signbest.pose import NormalizeConfig, normalize, read_pose

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "slim_poses.py"


def test_slimmed_pose_files_read_identically_and_keep_only_what_is_read(tmp_path):
    rng = np.random.default_rng(0)
    clips = []
    for i in range(3):
        t = 12 + i
        left = rng.uniform(0.2, 0.8, (t, 21, 3)).astype(np.float32)
        left[::3] = np.nan  # frames without a left hand
        path = tmp_path / "data" / "poses" / f"c{i}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, pose=rng.uniform(0.1, 0.9, (t, 33, 4)).astype(np.float32), left_hand=left,
                 right_hand=rng.uniform(0.2, 0.8, (t, 21, 3)).astype(np.float32), fps=np.float32(30),
                 width=np.int32(640), height=np.int32(480))
        clips.append(Clip(f"c{i}", path, "hello", 0, "train", ""))
    manifest = write_manifest(clips, tmp_path / "data" / "metadata.csv")
    out = tmp_path / "slim"
    r = subprocess.run([sys.executable, str(SCRIPT), str(manifest), str(out), "--check", "3"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "metadata.csv").read_bytes() == manifest.read_bytes()
    for clip in clips:
        slim = out / "poses" / clip.pose_file.name
        a, b = normalize(read_pose(clip.pose_file), NormalizeConfig()), normalize(read_pose(slim), NormalizeConfig())
        assert all(np.array_equal(v, getattr(b, k), equal_nan=True) for k, v in vars(a).items() if isinstance(v, np.ndarray))
        with np.load(slim) as s:
            unused = np.setdiff1d(np.arange(33), [0, 11, 12, 13, 14, 15, 16])
            assert not s["pose"][:, unused].any() and not s["pose"][..., 2].any()  # other joints and z zeroed
            assert not np.nan_to_num(s["left_hand"][..., 2]).any() and int(s["width"]) == 640
