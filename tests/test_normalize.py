"""Per-part normalisation invariants: boxes hold the hand, mirroring is an involution, masks survive."""
from __future__ import annotations

import numpy as np

from conftest import write_holistic_npz
from signbest.pose import NormalizeConfig, normalize, read_pose
from signbest.pose.normalize import denormalize_hand, hand_boxes, mirror_x


def test_mirror_is_an_involution():
    xy = np.random.default_rng(0).uniform(0, 1, (5, 21, 2))
    np.testing.assert_allclose(mirror_x(mirror_x(xy)), xy)
    assert not np.allclose(mirror_x(xy), xy)


def test_boxes_contain_the_hand_and_round_trip(tmp_path):
    seq = read_pose(write_holistic_npz(tmp_path / "a.npz"))
    cfg = NormalizeConfig()
    for hand in ("left", "right"):
        box = hand_boxes(seq, hand, cfg)
        xy = seq.coords(hand)
        assert (xy >= box[:, None, :2]).all() and (xy <= box[:, None, :2] + box[:, None, 2:]).all()
        extent = (xy.max(1) - xy.min(1)).max(1)
        np.testing.assert_allclose(box[:, 2], 2.2 * extent, rtol=1e-5)
    norm = normalize(seq)
    for hand in ("left", "right"):
        coords = getattr(norm, hand)
        assert coords.min() >= 0 and coords.max() <= 1
        back = denormalize_hand(coords, getattr(norm, f"{hand}_box"), hand)
        np.testing.assert_allclose(back, seq.coords(hand), atol=1e-3)
    np.testing.assert_allclose(norm.body, seq.body / 256, atol=1e-6)


def test_left_hand_is_mirrored_so_mirror_images_match(tmp_path):
    """A left hand that is the mirror image of the right hand gets the same normalised coordinates."""
    seq = read_pose(write_holistic_npz(tmp_path / "a.npz"))
    z = dict(np.load(tmp_path / "a.npz"))
    lh = z["right_hand"].copy()
    lh[..., 0] = 1.0 - lh[..., 0]  # mirror the right hand about the image centre
    z["left_hand"] = lh
    np.savez(tmp_path / "m.npz", **z)
    norm = normalize(read_pose(tmp_path / "m.npz"))
    np.testing.assert_allclose(norm.left, norm.right, atol=1e-5)
    assert seq is not None


def test_missing_hand_stays_masked_not_zero_filled(tmp_path):
    lh = np.load(write_holistic_npz(tmp_path / "a.npz"))["left_hand"].copy()
    lh[3:6] = np.nan
    write_holistic_npz(tmp_path / "b.npz", left_hand=lh)
    norm = normalize(read_pose(tmp_path / "b.npz"))
    valid = norm.part_valid("left")
    assert valid.tolist() == [t not in (3, 4, 5) for t in range(10)]
    assert not norm.left_mask[3:6].any() and (norm.left[3:6] == 0).all()
    assert norm.right_mask.all()
    assert np.isfinite(norm.left_box[3:6]).all()  # the forearm still gives a box; the hand stays masked


def test_low_confidence_joints_and_forearm_box(tmp_path):
    """With fewer than 10 confident hand joints the box comes from the forearm; weak joints are masked."""
    seq = read_pose(write_holistic_npz(tmp_path / "a.npz"))
    seq.right_conf[:, :15] = 0.05  # only 6 joints confident: too few for the hand's own box
    box = hand_boxes(seq, "right", NormalizeConfig())
    wr, el = seq.body[:, 6], seq.body[:, 5]
    centre = wr + 0.33 * (wr - el)
    np.testing.assert_allclose(box[:, :2] + box[:, 2:] / 2, centre, atol=1e-3)
    norm = normalize(seq)
    assert not norm.part_valid("right").any()  # 6 valid joints < min_hand_joints
    norm = normalize(seq, NormalizeConfig(min_hand_joints=5))
    assert norm.right_mask[:, 15:].all() and not norm.right_mask[:, :15].any()
