"""Invariants of the model's contract: what the encoder must not see, what coupling means, what MUM masks."""
from __future__ import annotations

import pytest
import torch

from signbest.config import load_config, section
from signbest.data import SignDataset
from signbest.models.best import BESTEncoder, ModelConfig
from signbest.models.masking import NOISE_DIM, MaskingConfig, MUMMasking
from signbest.models.tokenizer import TokenizerConfig
from signbest.models.vq_tokenizer import VQTokenizer
from signbest.data.batches import collate


def _batch(synth_dir, n=6, frames=24):
    ds = SignDataset(synth_dir / "manifest.csv", split="train", num_frames=frames, progress=False)
    return collate([ds[i] for i in range(n)])


def _encoder(norm_first=False):
    torch.manual_seed(0)
    return BESTEncoder(section(load_config("tiny", [f"model.norm_first={str(norm_first).lower()}"]), "model", ModelConfig)).eval()


BLOCKS = pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])


@BLOCKS
def test_a_masked_parts_joints_change_nothing(synth_dir, norm_first):
    enc, batch = _encoder(norm_first), _batch(synth_dir)
    part_mask = torch.zeros(*batch["frame_mask"].shape, 3, dtype=torch.bool)
    part_mask[:, 3:9, 1] = True  # the right hand of six frames
    part_mask[:, 5, 2] = True  # and the body of one
    with torch.no_grad():
        a = enc(batch, part_mask)
        moved = {k: v.clone() for k, v in batch.items()}
        moved["right"][:, 3:9] = torch.rand_like(moved["right"][:, 3:9])
        moved["body"][:, 5] += 0.3
        b = enc(moved, part_mask)
        assert torch.equal(a, b)  # exactly zero change, not merely small
        moved["right"][:, 10] += 0.3  # an unmasked frame does change the output
        assert not torch.equal(a, enc(moved, part_mask))


@BLOCKS
def test_padding_content_changes_nothing(synth_dir, norm_first):
    enc, batch = _encoder(norm_first), _batch(synth_dir, frames=64)  # synthetic clips are shorter: padded
    valid = batch["frame_mask"]
    assert (~valid).any()
    with torch.no_grad():
        a = enc(batch)
        noisy = {k: v.clone() for k, v in batch.items()}
        for p in ("left", "right", "body"):
            noisy[p][~valid] = torch.rand_like(noisy[p][~valid])
            noisy[f"{p}_mask"][~valid] = True  # even joints flagged valid in padding frames
        b = enc(noisy)
    assert torch.equal(a[valid], b[valid])


def _decode_left(tok, body_code):
    d = tok.cfg.code_dim
    q = {"left": torch.ones(1, d), "right": torch.zeros(1, d), "body": body_code}
    with torch.no_grad():
        return tok.decode_codes(q)["left"]


def test_coupled_left_hand_depends_on_the_body_code_and_separate_does_not():
    for kind, coupled in (("coupled", True), ("separate", False)):
        torch.manual_seed(0)
        tok = VQTokenizer(section(load_config("tiny", [f"tokenizer.kind={kind}"]), "tokenizer", TokenizerConfig)).eval()
        a = _decode_left(tok, torch.zeros(1, tok.cfg.code_dim))
        b = _decode_left(tok, torch.randn(1, tok.cfg.code_dim))
        assert (not torch.equal(a, b)) == coupled, kind


def test_mum_masks_only_present_parts_and_every_chosen_frame_has_a_target():
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(256, 32, NOISE_DIM, generator=g)
    frames = torch.ones(256, 32, dtype=torch.bool)
    present = torch.rand(256, 32, 3, generator=g) < torch.tensor([0.3, 0.6, 1.0])  # hands often missing
    present[:, :4] = False  # frames with nothing at all
    new = MUMMasking(MaskingConfig())(frames, noise, present).part_mask
    assert not (new & ~present).any()  # no masked part without a target
    assert not new[:, :4].any()
    old = MUMMasking(MaskingConfig(present_only=False))(frames, noise, present).part_mask
    assert (old & ~present).float().sum() / old.float().sum() > 0.2  # the old behaviour wasted a share
    chosen = new.any(-1)
    eligible = present.any(-1)
    assert (chosen.sum(1) == (0.5 * eligible.sum(1)).round()).all()  # alpha of the frames with a target
