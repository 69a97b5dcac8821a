"""The per-frame GCN's fast forms compute exactly the textbook operations (up to float rounding)."""
from __future__ import annotations

import torch

from signbest.models.gcn import GraphConv, PartGCN, partition_adjacency, reuse_merged_weights
from signbest.pose.sequence import PART_GRAPHS

HAND, BODY = PART_GRAPHS["hand"], PART_GRAPHS["body"]


def textbook(layer: GraphConv, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_k A_k (x W_k + b_k) + residual(x), LayerNorm, ReLU: aggregation after the Linear."""
    y = layer.linear(x).view(*x.shape[:2], layer.k, layer.c_out)  # (N, J, K, C_out)
    agg = torch.einsum("kij,njkc->nic", a.to(x.dtype), y)
    return torch.relu(layer.norm(agg + layer.residual(x)))


def test_graph_conv_matches_the_textbook_order_in_values_and_gradients():
    torch.manual_seed(0)
    for n, bones, sym in ((21, list(HAND.bones), list(HAND.symmetry)), (7, list(BODY.bones), list(BODY.symmetry))):
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
    for part, groups in (("hand", [list(g) for g in HAND.groups]), ("body", [list(g) for g in BODY.groups])):
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


def test_merged_weights_are_kept_only_on_request_and_never_go_stale_under_a_fused_optimizer():
    torch.manual_seed(0)
    layer = GraphConv(partition_adjacency(21, list(HAND.bones), list(HAND.symmetry)), 16, 32)
    x = torch.randn(4, 21, 16)

    def fresh():
        w, bias = layer.merged()
        z = torch.bmm(layer.adjacency.to(x.dtype).expand(4, -1, -1), x).view(4, 21, -1)
        return torch.relu(layer.norm(torch.nn.functional.linear(z, w) + bias))

    # By default nothing is kept: a fused AdamW step changes the weights without bumping their version
    # counters, and evaluation right after it must see the new weights.
    opt = torch.optim.AdamW(layer.parameters(), lr=0.1, fused=True)
    with torch.no_grad():
        before = layer(x)
    layer(x).sum().backward()
    opt.step()
    with torch.no_grad():
        assert torch.equal(layer(x), fresh()) and not torch.equal(layer(x), before)
    # On request (inference only) it is kept, and rebuilt when a weight changes through autograd's view,
    # when autocast changes, and when the weights are cast; train() drops it.
    reuse_merged_weights(layer.eval())
    with torch.no_grad():
        assert torch.equal(layer(x), fresh()) and layer.merged_for(x)[0] is layer.merged_for(x)[0]
        kept = layer.merged_for(x)[0]
        layer.linear.weight.add_(0.5)  # as load_state_dict does: in place, version bumped
        assert torch.equal(layer(x), fresh()) and layer.merged_for(x)[0] is not kept
        plain = layer.merged_for(x)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        under = layer.merged_for(x)
        assert under[0] is not plain and all(torch.equal(a, b) for a, b in zip(under, layer.merged()))
    layer.to(torch.float64)
    x = x.double()
    with torch.no_grad():
        assert torch.equal(layer(x), fresh())
    layer.train()
    assert not layer.__dict__.get("_reuse_merged")
    with torch.no_grad():
        assert layer.merged_for(x)[0] is not layer.merged_for(x)[0]  # rebuilt at every call again
