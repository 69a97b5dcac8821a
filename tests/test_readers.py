"""Every layout reader gives the same triplet unit: 7 body joints in a fixed order and two 21-joint hands."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import shared, write_holistic_npz
from signbest.pose import PoseSequence, fix_handedness, read_pose
from signbest.pose.layouts import COCO_WHOLEBODY, OPENPOSE_BODY25


def _reference(tmp_path):
    return read_pose(write_holistic_npz(tmp_path / "ref.npz"))


def _check(seq: PoseSequence, frames: int):
    assert seq.num_frames == frames
    assert seq.body.shape == (frames, 7, 2) and seq.left.shape == seq.right.shape == (frames, 21, 2)
    assert seq.body_conf.shape == (frames, 7)
    # Missing <=> NaN coordinates and zero confidence, for every part.
    for p in ("body", "left", "right"):
        assert np.array_equal(np.isnan(seq.coords(p)).any(-1), seq.conf(p) == 0)


def test_mediapipe_npz_scales_to_pixels(tmp_path):
    seq = _reference(tmp_path)
    _check(seq, 10)
    z = np.load(tmp_path / "ref.npz")
    np.testing.assert_allclose(seq.body[:, 1], z["pose"][:, 11, :2] * 256, rtol=1e-6)  # left shoulder
    np.testing.assert_allclose(seq.body[:, 6], z["pose"][:, 16, :2] * 256, rtol=1e-6)  # right wrist
    np.testing.assert_allclose(seq.right, z["right_hand"][..., :2] * 256, rtol=1e-6)


def test_coco_wholebody_npz_npy_and_mmpose_json(tmp_path):
    ref = _reference(tmp_path)
    kp = np.zeros((10, 133, 2), np.float32)
    scores = np.full((10, 133), 0.9, np.float32)
    kp[:, list(COCO_WHOLEBODY.body)] = ref.body
    kp[:, list(COCO_WHOLEBODY.left)] = ref.left
    kp[:, list(COCO_WHOLEBODY.right)] = ref.right
    np.savez(tmp_path / "coco.npz", keypoints=kp, keypoint_scores=scores, width=256, height=256)
    np.save(tmp_path / "coco.npy", np.concatenate([kp, scores[..., None]], -1))
    frames = [{"frame_id": i, "instances": [{"keypoints": kp[i].tolist(), "keypoint_scores": scores[i].tolist()}]}
              for i in range(10)]
    (tmp_path / "mmpose.json").write_text(json.dumps(frames))
    for name in ("coco.npz", "coco.npy", "mmpose.json"):
        seq = read_pose(tmp_path / name)
        _check(seq, 10)
        np.testing.assert_allclose(seq.body, ref.body, atol=1e-4)
        np.testing.assert_allclose(seq.left, ref.left, atol=1e-4)
        np.testing.assert_allclose(seq.right_conf, 0.9, atol=1e-6)


def test_openpose_json_folder(tmp_path):
    ref = _reference(tmp_path)
    folder = tmp_path / "clip"
    folder.mkdir()
    for t in range(10):
        body = np.zeros((25, 3))
        body[list(OPENPOSE_BODY25.body), :2], body[list(OPENPOSE_BODY25.body), 2] = ref.body[t], 0.8
        hand = lambda h: np.concatenate([h[t], np.full((21, 1), 0.7)], 1).ravel().tolist()
        person = {"pose_keypoints_2d": body.ravel().tolist(), "hand_left_keypoints_2d": hand(ref.left),
                  "hand_right_keypoints_2d": hand(ref.right) if t % 2 else []}
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": [person]}))
    seq = read_pose(folder)
    _check(seq, 10)
    np.testing.assert_allclose(seq.body, ref.body, atol=1e-4)
    assert seq.part_present("right").tolist() == [bool(t % 2) for t in range(10)]


def test_gislr_parquet(tmp_path):
    ref = _reference(tmp_path)
    rows = {"frame": [], "row_id": [], "type": [], "landmark_index": [], "x": [], "y": [], "z": []}
    body_idx = (0, 11, 13, 15, 12, 14, 16)
    for t in range(10):
        for typ, arr, idx in (("pose", ref.body, body_idx), ("left_hand", ref.left, range(21)),
                              ("right_hand", ref.right, range(21))):
            for j, k in enumerate(idx):
                rows["frame"].append(t)
                rows["row_id"].append(f"{t}-{typ}-{k}")
                rows["type"].append(typ)
                rows["landmark_index"].append(k)
                rows["x"].append(float(arr[t, j, 0]) / 256)
                rows["y"].append(float(arr[t, j, 1]) / 256)
                rows["z"].append(0.0)
    pq.write_table(pa.table(rows), tmp_path / "g.parquet")
    seq = read_pose(tmp_path / "g.parquet")
    _check(seq, 10)
    np.testing.assert_allclose(seq.body / 1000, ref.body / 256, atol=1e-5)


def test_handedness_is_checked_against_the_pose_wrists(tmp_path):
    ref = _reference(tmp_path)
    swapped = ref.swap_hands()
    fixed, n = fix_handedness(swapped)
    assert n == 10
    np.testing.assert_array_equal(fixed.left, ref.left)
    # Files whose hand labels are swapped are repaired by the reader.
    z = dict(np.load(tmp_path / "ref.npz"))
    z["left_hand"], z["right_hand"] = z["right_hand"], z["left_hand"]
    np.savez(tmp_path / "swapped.npz", **z)
    seq = read_pose(tmp_path / "swapped.npz")
    assert seq.meta["hands_relabelled"] == 10
    np.testing.assert_allclose(seq.left, ref.left)


def test_lone_hand_goes_to_the_nearer_wrist(tmp_path):
    ref = _reference(tmp_path)
    z = dict(np.load(tmp_path / "ref.npz"))
    z["left_hand"], z["right_hand"] = z["right_hand"], np.full_like(z["right_hand"], np.nan)  # right hand named left
    np.savez(tmp_path / "lone.npz", **z)
    seq = read_pose(tmp_path / "lone.npz")
    assert not seq.part_present("left").any()
    np.testing.assert_allclose(seq.right, ref.right)


# ---- real files from ../shared -------------------------------------------------------------------

def test_real_wlasl_clip_hands_match_wrists():
    seq = read_pose(shared("wlasl100", "poses", "00623.npz"))
    _check(seq, 104)
    both = seq.part_present("left") & seq.part_present("right")
    near = lambda h, w: np.linalg.norm(seq.coords(h)[both, 0] - seq.body[both, w], axis=-1)
    assert (near("left", 3) < near("left", 6)).mean() > 0.9  # left hand wrist beside the left pose wrist
    assert seq.body[:, 1, 0].mean() > seq.body[:, 4, 0].mean()  # signer's left shoulder is on the image right


@pytest.mark.parametrize("name,frames,left_any", [("mediapipe.pose", 170, False), ("openpose.pose", 93, True),
                                                  ("js_example.pose", 97, True)])
def test_real_pose_format_files(name, frames, left_any):
    seq = read_pose(shared("pose-samples", name))
    _check(seq, frames)
    assert seq.part_present("right").any() and seq.part_present("left").any() == left_any
    assert seq.meta["layout"].startswith("pose-format:")


def test_real_openpose_sample_has_low_confidence_left_hand():
    seq = read_pose(shared("openpose-sample", "00295"))
    _check(seq, 3)
    assert seq.left_conf.mean() < 0.2 < seq.right_conf.mean()


def test_real_gislr_parquet():
    seq = read_pose(shared("gislr-sample", "train_landmark_files", "100", "1015.parquet"))
    _check(seq, 1)
    assert seq.part_present("body").all()
