"""The manifest-driven dataset: temporal sampling, augmentation, the cache, adapters."""
from __future__ import annotations

import json

import numpy as np

from conftest import shared, write_holistic_npz
from signbest.data import SignDataset, mirror_clip, preprocess, read_manifest, sample_frames
from signbest.data import cache as cache_mod
from signbest.data.adapters import slr500, wlasl


def test_spread_sampling_covers_the_whole_clip_for_every_length():
    rng = np.random.default_rng(0)
    for n in range(1, 201):
        for train in (False, True):
            idx = sample_frames(n, 32, train, rng)
            if n <= 32:
                np.testing.assert_array_equal(idx, np.arange(n))
                continue
            seg = n / 32
            assert len(idx) == 32 and (np.diff(idx) >= (0 if train else 1)).all() and idx.min() >= 0 and idx.max() < n
            # one frame in each of 32 equal segments: first in the first, last in the last
            assert (idx >= np.floor(np.arange(32) * seg)).all() and (idx < np.ceil((np.arange(32) + 1) * seg)).all()
    # multi-window phases: segment starts, centres, ends
    np.testing.assert_array_equal(sample_frames(64, 32, False, offset=0.0), np.arange(0, 64, 2))
    np.testing.assert_array_equal(sample_frames(64, 32, False, offset=1.0), np.arange(1, 64, 2))


def test_training_crops_keep_at_least_their_share_of_the_clip():
    rng = np.random.default_rng(1)
    for n in (40, 90, 200):
        spans = []
        for _ in range(200):
            idx = sample_frames(n, 32, True, rng, crop=0.5)
            assert len(idx) == 32 and (np.diff(idx) >= 0).all() and 0 <= idx.min() and idx.max() < n
            spans.append(idx[-1] - idx[0] + 1)
        seg = max(32, 0.5 * n) / 32
        assert min(spans) >= max(32, 0.5 * n) - 2 * seg  # first and last segment may each lose one step
        assert max(spans) > 0.9 * n  # and some samples span nearly the whole clip


def test_window_sampling_is_the_old_strided_window():
    rng = np.random.default_rng(0)
    centre = sample_frames(100, 32, train=False, mode="window")
    assert len(centre) == 32 and (np.diff(centre) == 3).all()
    assert centre[0] == (100 - (31 * 3 + 1)) // 2
    starts = {int(sample_frames(100, 32, True, rng, mode="window")[0]) for _ in range(50)}
    assert len(starts) > 1 and min(starts) >= 0 and max(starts) <= 100 - 94
    # a 60-frame clip keeps 32 consecutive frames: the reason spread is the default
    assert np.ptp(sample_frames(60, 32, False, mode="window")) == 31


def test_items_are_padded_with_a_frame_mask(synth_dir):
    ds = SignDataset(synth_dir / "manifest.csv", split="train", num_frames=64)
    item = ds[0]
    n = len(ds.clip_arrays(0)["body"])
    assert item["body"].shape == (64, 7, 2) and item["left"].shape == (64, 21, 2)
    assert item["frame_mask"].sum() == min(n, 64)
    assert not item["left_mask"][~item["frame_mask"]].any()
    assert int(item["label"]) == ds.clips[0].label


def test_test_items_are_deterministic_and_train_items_vary(synth_dir):
    test = SignDataset(synth_dir / "manifest.csv", split="test", num_frames=16)
    a, b = test[1], test[1]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    train = SignDataset(synth_dir / "manifest.csv", split="train", num_frames=16, train=True, seed=1)
    first = train[1]["body"]
    assert np.array_equal(first, train[1]["body"])  # same (seed, epoch, index): same item
    train.set_epoch(1)
    assert not np.array_equal(first, train[1]["body"])  # a new epoch draws new windows and perturbations


def test_augmentation_leaves_masked_joints_at_zero(synth_dir):
    ds = SignDataset(synth_dir / "manifest.csv", split="train", train=True)
    for i in range(len(ds)):
        item = ds[i]
        for p in ("body", "left", "right"):
            assert (item[p][~item[f"{p}_mask"]] == 0).all()


def test_mirror_clip_is_an_involution(synth_dir):
    ds = SignDataset(synth_dir / "manifest.csv")
    clip = ds.clip_arrays(0)
    twice = mirror_clip(mirror_clip(clip))
    for k in clip:
        np.testing.assert_allclose(twice[k], clip[k], atol=1e-6)
    once = mirror_clip(clip)
    np.testing.assert_array_equal(once["left"], clip["right"])


def test_splits_and_signers(synth_dir):
    m = read_manifest(synth_dir)
    splits = {s: {c.signer for c in m.clips if c.split == s} for s in ("train", "val", "test")}
    assert splits["test"] == {"signer03"} and splits["val"] == {"signer02"}
    assert not splits["train"] & (splits["val"] | splits["test"])


def test_second_load_comes_from_the_cache(synth_dir, monkeypatch):
    m = read_manifest(synth_dir)
    first = preprocess(m, progress=False)

    def boom(*a, **k):
        raise AssertionError("pose files were read again")

    monkeypatch.setattr(cache_mod, "read_pose", boom)
    second = preprocess(m, progress=False)
    assert second.clip_ids == first.clip_ids
    for k in first.arrays:
        np.testing.assert_array_equal(first.arrays[k], second.arrays[k])


def test_cache_is_rebuilt_when_a_file_changes(tmp_path):
    write_holistic_npz(tmp_path / "a.npz", t=10)
    (tmp_path / "manifest.csv").write_text("clip_id,pose_file,gloss,label,split,signer\na,a.npz,hello,0,train,1\n")
    assert preprocess(read_manifest(tmp_path), progress=False).lengths().tolist() == [10]
    write_holistic_npz(tmp_path / "a.npz", t=12)
    assert preprocess(read_manifest(tmp_path), progress=False).lengths().tolist() == [12]


def test_wlasl_adapter_builds_a_manifest(tmp_path):
    split_file = shared("metadata", "wlasl_metadata", "splits", "asl100.json")
    doc = json.loads(split_file.read_text())
    ids = [doc[0]["instances"][0]["video_id"], doc[1]["instances"][0]["video_id"]]
    for i, vid in enumerate(ids):
        write_holistic_npz(tmp_path / f"{vid}.npz", seed=i)
    clips, missing = wlasl(split_file, tmp_path)
    assert [c.clip_id for c in clips] == ids and [c.label for c in clips] == [0, 1]
    assert clips[0].gloss == doc[0]["gloss"] and len(missing) == sum(len(e["instances"]) for e in doc) - 2


def test_slr500_adapter_reads_label_and_signer(tmp_path):
    split_file = shared("metadata", "csl_metadata", "split.train.csv")
    (tmp_path / "000").mkdir()
    write_holistic_npz(tmp_path / "000" / "P09_01_00_3._color.npz")
    clips, _ = slr500([split_file], tmp_path)
    assert len(clips) == 1 and clips[0].label == 0 and clips[0].signer == "P09" and clips[0].split == "train"


def test_real_wlasl100_manifest_loads():
    ds = SignDataset(shared("wlasl100", "metadata.csv"), split="val", progress=False)
    assert len(ds) == 338 and ds.num_classes == 100
    assert ds.data.failures == {}


def test_signer_split_keeps_signers_apart(synth_dir):
    from signbest.data.resplit import split_by_signer

    m = read_manifest(synth_dir)
    clips, summary = split_by_signer(m, 0.25, seed=1)
    train = {c.signer for c in clips if c.split == "train"}
    val = {c.signer for c in clips if c.split == "val"}
    assert train and val and not train & val
    assert summary["val"] >= 0.25 * len([c for c in m.clips if c.split in ("train", "val")])
    again, _ = split_by_signer(m, 0.25, seed=1)
    assert [c.split for c in again] == [c.split for c in clips]  # seeded


def test_manifest_without_glosses_is_an_unlabelled_pool(tmp_path):
    import pytest
    from signbest.config import load_config
    from signbest.train.finetune import finetune

    for i in range(3):  # what `signbest extract` writes: video_id, pose_file and extraction facts
        write_holistic_npz(tmp_path / f"v{i}.npz", t=12, seed=i)
    (tmp_path / "manifest.csv").write_text("video_id,video_file,pose_file,frames\n" +
                                           "".join(f"v{i},/videos/v{i}.mp4,v{i}.npz,12\n" for i in range(3)))
    m = read_manifest(tmp_path)
    assert not m.labelled and [c.split for c in m.clips] == ["train"] * 3
    ds = SignDataset(m, "train", num_frames=8, progress=False)
    assert len(ds) == 3 and ds[0]["body"].shape[0] == 8  # usable for tokenizer training and pre-training
    with pytest.raises(ValueError, match="no gloss column"):
        finetune(load_config("tiny"), str(tmp_path / "manifest.csv"), tmp_path / "ft", progress=False)
