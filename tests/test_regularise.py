"""Fine-tuning's regularisers: mixing clips in time, drop-path, replay speed and hidden joints."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from signbest.data import SignDataset
from signbest.data.dataset import AugmentConfig, drop_joints, replay_rate
from signbest.train.finetune import FinetuneConfig
from signbest.train.regularise import add_drop_path, mixed_cross_entropy, temporal_cutmix


def _batch(b=8, t=10, lengths=None):
    lengths = lengths or [t] * b
    frame = torch.arange(t)[None] < torch.tensor(lengths)[:, None]  # (B, T)
    body = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1).expand(b, t, 7, 2).clone()  # clip i holds i
    return {"body": body * frame[..., None, None], "body_mask": frame[..., None].expand(b, t, 7).clone(),
            "frame_mask": frame, "label": torch.arange(b) % 3, "index": torch.arange(b)}


def test_cutmix_borrows_one_span_per_clip_and_weights_labels_by_the_frames_each_gave():
    torch.manual_seed(0)
    batch = _batch(lengths=[10, 10, 4, 10, 7, 10, 10, 2])
    mixed, partner, share = temporal_cutmix(batch, prob=1.0)
    assert partner is not None and sorted(partner.tolist()) == list(range(8))  # a permutation of the batch
    assert torch.equal(mixed["label"], batch["label"]) and torch.equal(mixed["index"], batch["index"])
    moved = 0
    for i in range(8):
        j = int(partner[i])
        if j == i:  # borrowing from itself changes nothing
            assert torch.equal(mixed["body"][i], batch["body"][i])
            continue
        values = mixed["body"][i, :, 0, 0]
        borrowed = torch.nonzero((values == j) & mixed["frame_mask"][i] | (mixed["frame_mask"][i] != batch["frame_mask"][i])).flatten()
        if len(borrowed):  # one contiguous span, taken at the same positions of the partner
            assert (torch.diff(borrowed) == 1).all()
            assert torch.equal(mixed["body"][i, borrowed], batch["body"][j, borrowed])
            assert torch.equal(mixed["frame_mask"][i, borrowed], batch["frame_mask"][j, borrowed])
        outside = torch.ones(10, dtype=torch.bool)
        outside[borrowed] = False
        assert torch.equal(mixed["body"][i, outside], batch["body"][i, outside])  # the rest is the clip's own
        valid = mixed["frame_mask"][i]
        from_partner = ((values == j) & valid).sum()
        assert share[i] == pytest.approx(float(from_partner) / max(int(valid.sum()), 1))
        moved += int(from_partner)
        # masks travel with their coordinates: a padded frame stays zero and masked
        assert (mixed["body"][i][~valid] == 0).all() and torch.equal(mixed["body_mask"][i].any(-1), valid)
    assert moved > 0 and ((share >= 0) & (share <= 1)).all()


def test_a_mixed_clip_is_scored_against_both_labels_by_the_share_each_gave():
    import torch.nn.functional as F

    logits = torch.tensor([[4.0, 0.0, -1.0], [0.0, 2.0, 1.0]])
    labels, partner = torch.tensor([0, 2]), torch.tensor([1, 0])
    assert torch.isclose(mixed_cross_entropy(logits, labels, None, None), F.cross_entropy(logits, labels))
    share = torch.tensor([0.0, 1.0])  # clip 0 all its own (label 0), clip 1 all its partner's (label 0)
    assert torch.isclose(mixed_cross_entropy(logits, labels, partner, share), F.cross_entropy(logits, torch.tensor([0, 0])))
    half = mixed_cross_entropy(logits, labels, partner, torch.tensor([0.5, 0.5]), 0.1)
    expected = sum(0.5 * F.cross_entropy(logits, y, label_smoothing=0.1, reduction="none")
                   for y in (labels, labels[partner])).mean()
    assert torch.isclose(half, expected)


def test_cutmix_is_off_at_probability_zero_and_replays_under_the_same_seed():
    batch = _batch()
    same, partner, share = temporal_cutmix(batch, prob=0.0)
    assert same is batch and partner is None and share is None
    torch.manual_seed(3)
    a = temporal_cutmix(batch, 1.0)
    torch.manual_seed(3)
    b = temporal_cutmix(batch, 1.0)
    assert torch.equal(a[0]["body"], b[0]["body"]) and torch.equal(a[2], b[2])


def test_drop_path_skips_whole_blocks_per_clip_in_training_and_nothing_in_eval():
    torch.manual_seed(0)
    block = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    blocks = nn.ModuleList([block])
    x = torch.randn(64, 5, 16)
    with torch.no_grad():
        full = block(x)
        handles = add_drop_path(blocks, 0.5)  # one block: p = 0.5
        block.eval()
        assert torch.allclose(block(x), full, atol=1e-5)  # eval (torch's fast path): the whole block
        block.train()
        out = block(x)
    skipped = torch.isclose(out, x, atol=1e-6).flatten(1).all(1)
    kept = torch.isclose(out, x + (full - x) * 2, atol=1e-5).flatten(1).all(1)
    assert (skipped | kept).all() and 10 < int(skipped.sum()) < 54  # each clip one or the other, about half
    for h in handles:
        h.remove()
    with torch.no_grad():
        assert torch.allclose(block(x), full)  # removed: the block again
    assert len(add_drop_path(nn.ModuleList([block, block]), 0.0)) == 0  # rate 0: no hooks at all
    # deeper blocks are skipped more often: block i of L with probability rate * (i + 1) / L
    class AddOne(nn.Module):
        def forward(self, x):
            return x + 1

    first, second = AddOne(), AddOne()
    add_drop_path(nn.ModuleList([first, second]), 0.8)
    x = torch.zeros(4000, 1, 1)
    for block, p in ((first, 0.4), (second, 0.8)):
        out = block(x).flatten()
        assert (torch.isclose(out, torch.tensor(0.0)) | torch.isclose(out, torch.tensor(1 / (1 - p)))).all()  # skipped, or kept and scaled
        assert abs(float((out == 0).float().mean()) - p) < 0.03


def test_replay_rate_stretches_or_squeezes_the_clip_within_its_frames():
    rng = np.random.default_rng(0)
    for length in (1, 2, 17, 64, 200):
        for _ in range(20):
            idx = replay_rate(length, 0.3, rng)
            assert idx.min() >= 0 and idx.max() < length and (np.diff(idx) >= 0).all()
            assert round(length / 1.3) - 1 <= len(idx) <= round(length / 0.7) + 1


def test_hidden_joints_are_masked_and_zeroed_and_speed_zero_keeps_the_old_items(synth_dir):
    data = synth_dir / "manifest.csv"
    plain = SignDataset(data, split="train", num_frames=16, train=True, seed=1)
    also = SignDataset(data, split="train", num_frames=16, train=True, seed=1,
                       augment=AugmentConfig(speed=0.0, joint_drop=0.0))
    assert all(torch.equal(plain[2][k], also[2][k]) for k in plain[2])  # off: no extra random draw
    hidden = SignDataset(data, split="train", num_frames=16, train=True, seed=1, augment=AugmentConfig(joint_drop=0.3))
    item, before = hidden[2], plain[2]
    for part in ("body", "left", "right"):
        mask = item[f"{part}_mask"]
        assert (item[part][~mask] == 0).all()
    kept = sum(int(item[f"{p}_mask"].sum()) for p in ("body", "left", "right"))
    seen = sum(int(before[f"{p}_mask"].sum()) for p in ("body", "left", "right"))
    assert 0.55 * seen < kept < 0.85 * seen  # about 70% of the detected joints stay
    rng = np.random.default_rng(0)
    clip = plain.clip_arrays(0)
    out = drop_joints(clip, 0.0, rng)
    assert all(np.array_equal(out[k], clip[k]) for k in clip)
    # replayed at 0.5-1.5x: with room for every frame, each item holds its clip's length / rate frames
    fast = SignDataset(data, split="train", num_frames=1024, train=True, seed=1, augment=AugmentConfig(speed=0.5))
    lengths = [(int(fast[i]["frame_mask"].sum()), len(fast.clip_arrays(i)["body"])) for i in range(len(fast))]
    assert all(round(n / 1.5) - 1 <= got <= round(n / 0.5) + 1 for got, n in lengths)
    assert sum(got != n for got, n in lengths) > len(lengths) // 2  # most clips change length


@pytest.mark.parametrize("key,value", [("speed", 1.0), ("joint_drop", -0.1), ("drop_path", 1.0), ("cutmix", 1.5)])
def test_regulariser_settings_out_of_range_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        FinetuneConfig(**{key: value})
