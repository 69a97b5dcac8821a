"""Bad input gives an error that names the file and the problem; datasets skip bad clips and say which."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from conftest import shared, write_holistic_npz
from signbest.data import SignDataset
from signbest.pose import PoseError, read_pose


def _expect(path, *words):
    with pytest.raises(PoseError) as err:
        read_pose(path)
    msg = str(err.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg


def test_wrong_shape(tmp_path):
    pose = np.zeros((5, 33, 3), np.float32)
    write_holistic_npz(tmp_path / "a.npz", t=5, pose=pose)
    _expect(tmp_path / "a.npz", "(T, 33, 4)", "(5, 33, 3)")
    np.savez(tmp_path / "c.npz", keypoints=np.zeros((4, 17, 2)), keypoint_scores=np.ones((4, 17)))
    _expect(tmp_path / "c.npz", "133", "(4, 17, 2)")


def test_unknown_layout(tmp_path):
    np.savez(tmp_path / "x.npz", foo=np.zeros(3))
    _expect(tmp_path / "x.npz", "unknown npz layout", "foo")
    (tmp_path / "x.txt").write_text("hello")
    _expect(tmp_path / "x.txt", "unknown pose file type")


def test_all_nan(tmp_path):
    nan = lambda *s: np.full(s, np.nan, np.float32)
    write_holistic_npz(tmp_path / "n.npz", pose=nan(10, 33, 4), left_hand=nan(10, 21, 3), right_hand=nan(10, 21, 3))
    _expect(tmp_path / "n.npz", "all NaN", "10 frames")


def test_zero_length(tmp_path):
    write_holistic_npz(tmp_path / "z.npz", t=0)
    _expect(tmp_path / "z.npz", "no frames")


def test_truncated_files(tmp_path):
    good = write_holistic_npz(tmp_path / "g.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(good[: len(good) // 2])
    _expect(tmp_path / "t.npz")
    pose_bytes = shared("pose-samples", "mediapipe.pose").read_bytes()
    (tmp_path / "t.pose").write_bytes(pose_bytes[: len(pose_bytes) // 3])
    _expect(tmp_path / "t.pose", "truncated", "declares 170 frames")


def test_non_pose_files(tmp_path):
    (tmp_path / "r.npz").write_bytes(np.random.default_rng(0).bytes(500))
    _expect(tmp_path / "r.npz", "not a readable numpy file")
    (tmp_path / "r.pose").write_bytes(b"this is not a pose file at all")
    _expect(tmp_path / "r.pose", "not a readable .pose file")
    (tmp_path / "r.json").write_text('{"hello": 1}')
    _expect(tmp_path / "r.json", "not an MMPose prediction file")
    (tmp_path / "bad.json").write_text("{not json")
    _expect(tmp_path / "bad.json", "not valid JSON")
    (tmp_path / "e.npz").write_bytes(b"")
    _expect(tmp_path / "e.npz", "empty")
    _expect(tmp_path / "missing.npz", "no such file")


def test_dataset_skips_and_reports_bad_clips(tmp_path, caplog):
    write_holistic_npz(tmp_path / "good1.npz", seed=1)
    write_holistic_npz(tmp_path / "good2.npz", seed=2)
    write_holistic_npz(tmp_path / "zero.npz", t=0)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    rows = ["clip_id,pose_file,gloss,label,split,signer"] + [
        f"{n},{n}.npz,{g},{l},train,1" for n, g, l in
        [("good1", "a", 0), ("good2", "b", 1), ("zero", "a", 0), ("junk", "b", 1), ("gone", "a", 0)]]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING):
        ds = SignDataset(tmp_path / "manifest.csv", progress=False)
    assert [c.clip_id for c in ds.clips] == ["good1", "good2"]
    assert set(ds.data.failures) == {"zero", "junk", "gone"}
    assert "skipped 3 unreadable clips" in caplog.text and "gone" in caplog.text
    assert "no such file" in ds.data.failures["gone"]
