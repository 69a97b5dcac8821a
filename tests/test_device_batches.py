"""The device data path makes the batches of the per-clip path: exactly without augmentation, the same
kind of batch (shapes, masks, frames of the right clip, mirror) with it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from signbest.config import load_config
from signbest.data.batches import collate
from signbest.data.cache import ARRAYS
from signbest.data.dataset import AugmentConfig, ConcatSets, SignDataset, mirror_clip
from signbest.data.device_batches import DeviceBatches
from signbest.train.pretrain import pretrain


@pytest.mark.parametrize("sampling", ["window", "spread"])
@pytest.mark.parametrize("num_frames", [16, 48])  # clips longer and shorter than the window
def test_without_augmentation_batches_equal_the_per_clip_path(synth_dir, sampling, num_frames):
    sets = [SignDataset(synth_dir / "manifest.csv", split, num_frames=num_frames, sampling=sampling, progress=False)
            for split in ("train", "test")]
    data = ConcatSets(sets)
    lengths = np.concatenate([s.data.lengths()[s.rows] for s in sets])
    assert (lengths < num_frames).any() or (lengths > num_frames).any()
    fast = DeviceBatches(data)
    for window in (0.0, 0.5, 1.0):
        for s in sets:
            s.window = window
        fast.window = window
        index = torch.tensor([0, 5, len(data) - 1, 7, len(sets[0])])
        got, want = fast.batch(index, epoch=3), collate([data[int(i)] for i in index])
        for k in (*ARRAYS, "frame_mask", "label", "index"):
            assert got[k].dtype == want[k].dtype or k in ("body", "left", "right"), k
            assert torch.equal(got[k].to(want[k].dtype), want[k]), (k, window)


def test_training_batches_sample_each_clip_and_replay(synth_dir):
    plain = AugmentConfig(perturb=0.0, shift=0.0)
    ds = SignDataset(synth_dir / "manifest.csv", "train", num_frames=16, train=True, augment=plain, noise_dim=4,
                     progress=False)
    fast = DeviceBatches(ds)
    index = torch.arange(len(ds))
    batch = fast.batch(index, epoch=1)
    assert torch.equal(batch["noise"], fast.batch(index, epoch=1)["noise"])  # (seed, epoch, batch) replays
    assert not torch.equal(batch["body"], fast.batch(index, epoch=2)["body"])
    assert batch["noise"].shape == (len(ds), 16, 4)
    for i in range(len(ds)):
        clip = ds.clip_arrays(i)
        n = int(batch["frame_mask"][i].sum())
        assert n == min(16, len(clip["body"]))
        frames = batch["right"][i, :n].numpy()  # every frame is one of the clip's own frames
        assert all(np.isclose(clip["right"], f).all((1, 2)).any() for f in frames)
        assert not batch["right"][i, n:].any() and not batch["right_mask"][i, n:].any()  # padding


def test_mirror_and_perturbation_keep_absent_joints_at_zero(synth_dir):
    ds = SignDataset(synth_dir / "manifest.csv", "train", num_frames=16, train=True, progress=False,
                     augment=AugmentConfig(perturb=0.0, shift=0.0, swap_hands=1.0))
    fast, index = DeviceBatches(ds), torch.arange(4)
    mirrored = fast.batch(index, 0)
    fast.augment = AugmentConfig(perturb=0.0, shift=0.0)
    straight = fast.batch(index, 0)  # the same frames: sampling draws come first from the same generator
    for i in range(4):
        item = {k: straight[k][i].numpy() for k in ARRAYS}
        want = mirror_clip(item)
        for k in ARRAYS:
            assert np.allclose(mirrored[k][i].numpy(), want[k]), k
    fast.augment = AugmentConfig(perturb=0.3, shift=0.1)
    moved = fast.batch(index, 0)
    for part in ("body", "left", "right"):
        assert not moved[part][~moved[f"{part}_mask"]].any()
        assert not torch.allclose(moved[part], straight[part])


def test_pretraining_on_device_batches_learns(synth_dir, tmp_path):
    cfg = load_config("tiny", ["pretrain.epochs=3", "pretrain.device_batches=true", "masking.strategy=mum"])
    cfg["model"]["objective"] = "regression"  # no tokenizer needed
    res = pretrain(cfg, [synth_dir / "manifest.csv"], None, tmp_path / "pre", progress=False)
    log = (tmp_path / "pre" / "pretrain_metrics.csv").read_text().splitlines()
    losses = [float(row.split(",")[log[0].split(",").index("loss")]) for row in log[1:]]
    assert np.isfinite(res["loss"]) and losses[-1] < losses[0]
