"""Synthetic signs: deterministic per seed, readable by the normal readers, learnable but not trivial."""
from __future__ import annotations

import numpy as np

from signbest.data import SignDataset, read_manifest
from signbest.data.synth import generate


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    a = generate(tmp_path / "a", classes=3, signers=3, per_class=3, seed=5, progress=False)
    b = generate(tmp_path / "b", classes=3, signers=3, per_class=3, seed=5, progress=False)
    c = generate(tmp_path / "c", classes=3, signers=3, per_class=3, seed=6, progress=False)
    ma, mb, mc = read_manifest(a), read_manifest(b), read_manifest(c)
    assert [x.clip_id for x in ma.clips] == [x.clip_id for x in mb.clips]
    for x, y, z in zip(ma.clips, mb.clips, mc.clips):
        za, zb, zc = np.load(x.pose_file), np.load(y.pose_file), np.load(z.pose_file)
        for k in ("pose", "left_hand", "right_hand"):
            np.testing.assert_array_equal(za[k], zb[k])
        assert za["pose"].shape != zc["pose"].shape or not np.array_equal(za["pose"], zc["pose"], equal_nan=True)
    assert ma.glosses == mb.glosses


def test_rerun_keeps_finished_clips_and_refuses_other_settings(tmp_path):
    m = generate(tmp_path, classes=2, signers=3, per_class=2, seed=0, progress=False)
    first = read_manifest(m).clips[0].pose_file
    mtime = first.stat().st_mtime_ns
    generate(tmp_path, classes=2, signers=3, per_class=2, seed=0, progress=False)
    assert first.stat().st_mtime_ns == mtime
    import pytest
    with pytest.raises(ValueError, match="Use another folder"):
        generate(tmp_path, classes=2, signers=3, per_class=2, seed=1, progress=False)


def test_signs_have_dropped_hands_and_plausible_geometry(synth_dir):
    ds = SignDataset(synth_dir / "manifest.csv", progress=False)
    present = ds.data.arrays["right_mask"].any(-1).mean()
    assert 0.4 < present < 0.98  # some detections are dropped, as with MediaPipe on real video
    body = ds.data.arrays["body"][ds.data.arrays["body_mask"].all(-1)]
    assert (body[:, 1, 0] > body[:, 4, 0]).mean() > 0.99  # left shoulder on the image right
    hands = ds.data.arrays["right"][ds.data.arrays["right_mask"].all(-1)]
    assert hands.min() >= 0 and hands.max() <= 1


def test_signs_need_temporal_order(tmp_path):
    """Twin signs (one the time reversal of the other) defeat a frame-average classifier; a classifier
    that sees the frame order separates them. Ridge regression, trained on train signers, tested on
    held-out signers."""
    m = generate(tmp_path, classes=6, signers=6, per_class=18, seed=3, progress=False)

    def features(split, ordered):
        ds = SignDataset(m, split=split, progress=False)
        xs = []
        for i in range(len(ds)):
            c = ds.clip_arrays(i)
            idx = np.linspace(0, len(c["body"]) - 1, 16).round().astype(int)
            f = [(c[p] * c[f"{p}_mask"][..., None]) for p in ("body", "left", "right")]
            xs.append(np.concatenate([(x[idx] if ordered else x.mean(0, keepdims=True)).ravel() for x in f]))
        return np.array(xs), ds.labels

    acc = {}
    for ordered in (False, True):
        xtr, ytr = features("train", ordered)
        xte, yte = features("test", ordered)
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
        a, b = (xtr - mu) / sd, (xte - mu) / sd
        w = np.linalg.solve(a.T @ a + 0.1 * len(a) * np.eye(a.shape[1]), a.T @ np.eye(6)[ytr])  # ridge
        acc[ordered] = ((b @ w).argmax(1) == yte).mean()
    assert acc[True] > 0.5 > 1 / 6  # learnable on unseen signers
    assert acc[False] < acc[True]  # and the order of frames matters
