"""The per-frame GCN's fast forms compute exactly the textbook operations (up to float rounding)."""
from __future__ import annotations

import torch

from signbest.models.gcn import (BODY_BONES, BODY_GROUPS, BODY_SYMMETRY, HAND_BONES, HAND_GROUPS, HAND_SYMMETRY,
                                  GraphConv, PartGCN, partition_adjacency)


def textbook(layer: GraphConv, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_k A_k (x W_k + b_k) + residual(x), LayerNorm, ReLU: aggregation after the Linear."""
    y = layer.linear(x).view(*x.shape[:2], layer.k, layer.c_out)  # (N, J, K, C_out)
    agg = torch.einsum("kij,njkc->nic", a.to(x.dtype), y)
    return torch.relu(layer.norm(agg + layer.residual(x)))


def test_graph_conv_matches_the_textbook_order_in_values_and_gradients():
    torch.manual_seed(0)
    for n, bones, sym in ((21, HAND_BONES, HAND_SYMMETRY), (7, BODY_BONES, BODY_SYMMETRY)):
        a = partition_adjacency(n, bones, sym)  # (K, J, J)
        for c_in, c_out in ((3, 16), (16, 16), (16, 32)):  # a first layer, an identity and a Linear residual
            layer = GraphConv(a, c_in, c_out).double()
            torch.nn.init.normal_(layer.norm.weight)
            torch.nn.init.normal_(layer.linear.bias)
            x = torch.randn(5, n, c_in, dtype=torch.float64, requires_grad=True)
            fast, ref = layer(x), textbook(layer, a, x)
            assert torch.allclose(fast, ref, atol=1e-10)
            g = torch.randn_like(fast)
            gf = torch.autograd.grad(fast, [x, layer.linear.weight, layer.linear.bias], g)
            gr = torch.autograd.grad(ref, [x, layer.linear.weight, layer.linear.bias], g)
            assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(gf, gr))


def test_group_pooling_takes_the_max_over_each_named_group():
    for part, groups in (("hand", HAND_GROUPS), ("body", BODY_GROUPS)):
        gcn = PartGCN(part)
        x = torch.randn(7, max(max(g) for g in groups) + 1, 5)
        ref = torch.stack([x[:, g].amax(1) for g in groups], 1)  # (N, G, C)
        assert torch.equal(gcn.pool_groups(x), ref)  # inference path
        assert torch.equal(gcn.pool_groups(x.requires_grad_()), ref)  # training path


def test_gcn_state_dict_keys_are_the_textbook_parameters():
    keys = set(PartGCN("hand").state_dict())
    assert "joint_layers.0.linear.weight" in keys and "joint_layers.0.residual.weight" in keys
    assert not any("adjacency" in k or "reach" in k or "first_group" in k for k in keys)  # rebuilt from the graph


def test_a_batch_without_any_present_part_gives_an_empty_embedding_and_gradient():
    x = torch.zeros(0, 21, 3, requires_grad=True)  # a batch in which no hand was detected
    y = PartGCN("hand", 32, (8, 8, 16), (16, 24))(x)
    y.sum().backward()
    assert y.shape == (0, 32) and x.grad.shape == (0, 21, 3)


def test_merged_weights_are_reused_without_gradients_and_rebuilt_when_a_weight_or_autocast_changes():
    torch.manual_seed(0)
    layer = GraphConv(partition_adjacency(21, HAND_BONES, HAND_SYMMETRY), 16, 32)
    x = torch.randn(4, 21, 16)
    fresh = lambda: torch.relu(layer.norm(torch.nn.functional.linear(
        torch.bmm(layer.adjacency.to(x.dtype).expand(4, -1, -1), x).view(4, 21, -1), layer.merged()[0])
        + layer.merged()[1]))
    with torch.no_grad():
        first = layer(x)
        assert torch.equal(first, fresh()) and layer.merged_for(x)[0] is layer.merged_for(x)[0]  # reused
        layer.linear.weight.add_(0.5)  # an optimizer step or load_state_dict: in place
        assert torch.equal(layer(x), fresh()) and not torch.equal(layer(x), first)
        plain = layer.merged_for(x)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        under = layer.merged_for(x)  # rebuilt under autocast, as merged() gives it there
        assert under[0] is not plain and all(torch.equal(a, b) for a, b in zip(under, layer.merged()))
    layer.to(torch.float64)  # weights replaced by a cast
    x = x.double()
    with torch.no_grad():
        assert torch.equal(layer(x), fresh())
    y = layer(x.requires_grad_())  # training: built every call, so gradients reach the weights
    y.sum().backward()
    assert layer.linear.weight.grad is not None and layer.linear.weight.grad.abs().sum() > 0
