"""FastDropout: nn.Dropout's contract with a cheaper mask."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from signbest.models.best import BESTEncoder, ModelConfig
from signbest.models.dropout import FastDropout, keep_mask


def test_mask_rate_and_scaling_match_the_probability():
    torch.manual_seed(0)
    for p in (0.1, 0.25, 0.5):
        keep = keep_mask((1000, 1000), p)
        assert abs(keep.float().mean().item() - (1 - p)) < 3e-3
        x = torch.ones(1000, 1000)
        y = FastDropout(p).train()(x)
        values = y.unique()
        assert len(values) == 2 and values[0] == 0 and abs(values[1].item() - 1 / (1 - p)) < 1e-4
        assert abs(y.mean().item() - 1.0) < 5e-3  # unbiased, like nn.Dropout
    lanes = keep_mask((2 * 500_000,), 0.1).view(-1, 2).float().mean(0)  # the two 32-bit lanes of a word
    assert (lanes - 0.9).abs().max() < 5e-3


def test_the_threshold_is_p_exactly_at_32_bits():
    """The mask keeps a 32-bit uniform u (of 2**32 levels) when u >= threshold: P(drop) = threshold / 2**32."""
    from signbest.models.dropout import LEVELS
    for p in (0.1, 0.2, 1 / 3):
        assert abs(round(p * LEVELS) / LEVELS - p) <= 2 ** -33


def test_seeded_like_torch_eval_is_identity_and_gradient_uses_the_same_mask():
    x = torch.randn(64, 128, requires_grad=True)
    drop = FastDropout(0.3)
    torch.manual_seed(1)
    a = drop(x)
    torch.manual_seed(1)
    assert torch.equal(drop(x), a)
    a.sum().backward()
    assert torch.allclose(x.grad, (a != 0).float() / 0.7, rtol=1e-4)
    assert drop.eval()(x) is x
    with pytest.raises(ValueError, match="1.5"):
        FastDropout(1.5)


def test_encoder_uses_it_everywhere_but_attention_weights():
    enc = BESTEncoder(ModelConfig(part_dim=32, layers=2, heads=2, ffn=64))
    assert not [n for n, m in enc.named_modules() if type(m) is nn.Dropout]
    assert sum(isinstance(m, FastDropout) for m in enc.modules()) == 3 * 2 + 1 + 2  # blocks, input, two GCNs
