"""Masking statistics: MUM chooses alpha*T frames and produces the three masking cases; R-Mask drops raw joints."""
from __future__ import annotations

import torch

from signbest.models.masking import NOISE_DIM, MaskingConfig, MUMMasking, RandomMasking


def _noise(b=256, t=32, seed=0):
    return torch.rand(b, t, NOISE_DIM, generator=torch.Generator().manual_seed(seed))


def test_mum_masks_alpha_of_the_valid_frames():
    frame_mask = torch.ones(256, 32, dtype=torch.bool)
    frame_mask[:, 20:] = False  # 20 valid frames
    m = MUMMasking(MaskingConfig(alpha=0.4))(frame_mask, _noise()).part_mask
    chosen = m.any(-1)
    assert (chosen.sum(1) == 8).all()  # round(0.4 * 20)
    assert not chosen[:, 20:].any()  # never padding


def test_mum_produces_the_three_cases_in_expected_proportions():
    m = MUMMasking(MaskingConfig(alpha=0.5, part_prob=0.5))(torch.ones(512, 32, dtype=torch.bool), _noise(512)).part_mask
    chosen = m.any(-1)
    hands, body = m[..., :2].any(-1), m[..., 2]
    frac = lambda x: float((x & chosen).sum() / chosen.sum())
    # Each part masked with p = 0.5; when none is, the one with the lowest draw (each with p = 1/3):
    # body only 1/2 * 1/4 + 1/8 * 1/3, hands only 1/2 * 3/4 + 1/8 * 2/3, both 1/2 * 3/4.
    assert abs(frac(~hands & body) - (1 / 8 + 1 / 24)) < 0.015
    assert abs(frac(hands & ~body) - (3 / 8 + 1 / 12)) < 0.015
    assert abs(frac(hands & body) - 3 / 8) < 0.015


def test_hand_only_and_body_only_masking():
    fm = torch.ones(64, 32, dtype=torch.bool)
    hand = MUMMasking(MaskingConfig(parts="hand"))(fm, _noise(64)).part_mask
    body = MUMMasking(MaskingConfig(parts="body"))(fm, _noise(64)).part_mask
    assert not hand[..., 2].any() and hand[..., :2].any()
    assert not body[..., :2].any() and (body[..., 2] == body.any(-1)).all()


def test_masking_is_a_function_of_the_noise():
    fm = torch.ones(8, 32, dtype=torch.bool)
    mum = MUMMasking(MaskingConfig())
    assert torch.equal(mum(fm, _noise(8, seed=3)).part_mask, mum(fm, _noise(8, seed=3)).part_mask)
    assert not torch.equal(mum(fm, _noise(8, seed=3)).part_mask, mum(fm, _noise(8, seed=4)).part_mask)
    assert "alpha=0.5" in repr(mum)


def test_random_masking_drops_joints_and_reports_parts():
    fm = torch.ones(128, 32, dtype=torch.bool)
    parts, drop = RandomMasking(MaskingConfig(strategy="random", alpha=0.25))(fm, _noise(128))
    assert drop.shape == (128, 32, 49) and parts.shape == (128, 32, 3)
    frames = drop.any(-1)
    assert (frames.sum(1) <= 8).all() and (frames.sum(1) >= 1).all()
    assert torch.equal(parts[..., 2], drop[..., 42:].any(-1))
    whole = drop.all(-1)
    assert whole.any() and (frames & ~whole).any()  # frame masking and joint masking both occur


def test_every_strategy_returns_masks():
    from signbest.models.masking import MASKINGS, Masks, build_masking

    fm = torch.ones(16, 32, dtype=torch.bool)
    present = torch.ones(16, 32, 3, dtype=torch.bool)
    for name in MASKINGS:
        masks = build_masking(MaskingConfig(strategy=name))(fm, _noise(16), present)
        assert isinstance(masks, Masks) and masks.part_mask.shape == (16, 32, 3) and masks.part_mask.any()
        assert masks.joint_drop is None or masks.joint_drop.shape == (16, 32, 49)
    assert build_masking(MaskingConfig(strategy="none")) is None
