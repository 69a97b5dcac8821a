"""Per-frame graph convolution pose embedding (after Cai et al., ICCV 2019), one network per part type.

Each frame's part is a graph: joints linked by bones plus "symmetry" links between corresponding joints
of neighbouring fingers (hand) or of the two arms (body). Neighbours are split into four partitions
(root = self, closer to / further from the root joint, symmetric), each with its own weights. Three
graph convolutions on joints (128, 128, 256), max-pooling of joints into parts (hand: palm + 5 fingers;
body: head, left arm, right arm), two graph convolutions on that coarse graph (-> 512), max-pooling
over parts, then Linear + LayerNorm + ReLU + dropout.

Deviation from the authors' later code, on purpose: LayerNorm instead of BatchNorm, so that padding
frames and per-GPU batch size never change a frame's embedding (train, test and torchrun agree).
"""
from __future__ import annotations

from collections import deque

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..pose.sequence import PART_GRAPHS



def partition_adjacency(n: int, bones: list[tuple[int, int]], symmetry: list[tuple[int, int]], root: int = 0) -> torch.Tensor:
    """(4, n, n) row-normalised adjacency: self, closer-to-root, further-from-root, symmetric neighbours."""
    nbrs: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in bones:
        nbrs[a].append(b)
        nbrs[b].append(a)
    depth = {root: 0}
    queue = deque([root])
    while queue:
        u = queue.popleft()
        for v in nbrs[u]:
            if v not in depth:
                depth[v] = depth[u] + 1
                queue.append(v)
    a = torch.zeros(4, n, n)
    a[0] = torch.eye(n)
    for i in range(n):
        for j in nbrs[i]:
            a[1 if depth[j] < depth[i] else 2, i, j] = 1.0
    for i, j in symmetry:
        a[3, i, j] = a[3, j, i] = 1.0
    deg = a.sum(-1, keepdim=True).clamp(min=1)
    return a / deg


class GraphConv(nn.Module):
    """x (N, J, C) -> (N, J, C_out): sum over partitions k of A_k x W_k, plus a residual, then LayerNorm and ReLU.

    Computed adjacency first: one batched matmul gives A_k x for every k on the C input channels
    (N, J*K, C), read as (N*J, K*C), then one GEMM with the K weight blocks side by side. Aggregating after
    the Linear (the textbook order) carries K*C_out channels through the adjacency instead of K*C: 4x
    the memory traffic of the first layer's 3 channels to 512, 2x where widths double. Partition 0 is
    the identity, so the residual Linear folds into its weight block and the biases into one per-joint
    bias. The parameters keep the textbook layout (`linear`: C -> K*C_out, `residual`), so checkpoints
    do not change."""

    def __init__(self, adjacency: torch.Tensor, c_in: int, c_out: int):
        super().__init__()
        k, j, _ = adjacency.shape
        if not torch.equal(adjacency[0], torch.eye(j)):
            raise ValueError("partition 0 of the adjacency must be the identity (the joint itself)")
        # Rows ordered (joint i, partition k): stacked[i*K + k, j] = A_k[i, j], so bmm output views as (N, J, K*C).
        self.register_buffer("adjacency", adjacency.permute(1, 0, 2).reshape(j * k, j).contiguous(), persistent=False)
        self.register_buffer("reach", adjacency.sum(-1).T.contiguous(), persistent=False)  # (J, K): 1 = has neighbours
        self.k, self.c_out = k, c_out
        self.linear = nn.Linear(c_in, k * c_out)
        self.norm = nn.LayerNorm(c_out)
        self.residual = nn.Linear(c_in, c_out) if c_in != c_out else nn.Identity()

    def merged(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(C_out, K*C) weight and (J, C_out) bias of the whole layer before its LayerNorm."""
        c = self.linear.in_features
        w = self.linear.weight.view(self.k, self.c_out, c).permute(1, 0, 2).reshape(self.c_out, self.k * c)
        bias = self.reach @ self.linear.bias.view(self.k, self.c_out)  # a partition's bias counts where it has neighbours
        if isinstance(self.residual, nn.Linear):
            w_self, bias = self.residual.weight, bias + self.residual.bias
        else:
            w_self = torch.eye(c, dtype=w.dtype, device=w.device)
        return torch.cat([w[:, :c] + w_self, w[:, c:]], 1), bias

    def merged_for(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`merged()`, kept between calls once `reuse_merged_weights` asked for it and no gradient flows to
        the weights. Only on request: a fused optimizer updates weights in place without bumping their
        version counters, so no automatic check can tell that a kept result went stale. Rebuilt anyway when
        a weight is replaced, cast or changed through autograd's view (load_state_dict), or autocast changes;
        dropped by `train()`."""
        if not self.__dict__.get("_reuse_merged"):  # the default, and training's hot path: nothing else to check
            return self.merged()
        params = list(self.parameters())
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            return self.merged()
        kind = x.device.type
        try:
            key = (tuple((p.data_ptr(), p._version, p.dtype) for p in params),
                   torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind))
        except RuntimeError:  # weights made under inference_mode have no version counter: never kept
            return self.merged()
        cached = self.__dict__.get("_merged_cache")
        if cached is None or cached[0] != key:
            # The weights' storages are held with the result, so no later weight can reuse their addresses.
            cached = (key, [p.detach() for p in params], self.merged())
            self.__dict__["_merged_cache"] = cached  # a plain attribute: not in state_dict, not a buffer
        return cached[2]

    def train(self, mode: bool = True) -> GraphConv:
        if mode:  # training changes the weights: whatever was kept for inference goes
            self.__dict__.pop("_merged_cache", None)
            self.__dict__["_reuse_merged"] = False
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, j, c = x.shape
        z = torch.bmm(self.adjacency.to(x.dtype).expand(n, -1, -1), x)  # (N, J*K, C): A_k x for every k
        w, bias = self.merged_for(x)
        y = F.linear(z.view(n, j, self.k * c), w)  # (N, J, C_out)
        return torch.relu(self.norm(y + bias.to(y.dtype)))


class PartGCN(nn.Module):
    """One part's frames (N, J, 3: x, y, valid) -> (N, out_dim) embeddings."""

    def __init__(self, part: str, out_dim: int = 512, widths: tuple[int, ...] = (128, 128, 256),
                 pooled_widths: tuple[int, ...] = (256, 512), dropout: float = 0.25):
        super().__init__()
        graph = PART_GRAPHS[part]
        n, groups = graph.joints, [list(g) for g in graph.groups]
        adj = partition_adjacency(n, list(graph.bones), list(graph.symmetry))
        pooled_adj = partition_adjacency(len(groups), list(graph.pooled_bones), list(graph.pooled_symmetry))
        # Groups after the first tile the remaining joints in equal consecutive runs (fingers, arms): those
        # are pooled through a view, and only the first group (palm, head) is gathered. Gathering every group
        # into a padded (N, G, L, C) copy took about a tenth of a pre-training step, most of it in backward.
        first, runs = groups[0], groups[1:]
        self.run_start, self.run_len = runs[0][0], len(runs[0])
        if [j for g in runs for j in g] != list(range(self.run_start, n)) or any(len(g) != self.run_len for g in runs):
            raise ValueError(f"{part} groups after the first must tile joints {self.run_start}..{n - 1} in equal "
                             f"consecutive runs, got {runs}")
        self.register_buffer("first_group", torch.tensor(first), persistent=False)
        chans = (3,) + tuple(widths)
        self.joint_layers = nn.ModuleList(GraphConv(adj, a, b) for a, b in zip(chans[:-1], chans[1:]))
        chans = (widths[-1],) + tuple(pooled_widths)
        self.part_layers = nn.ModuleList(GraphConv(pooled_adj, a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.out = nn.Sequential(nn.Linear(pooled_widths[-1], out_dim), nn.LayerNorm(out_dim), nn.ReLU(),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[..., :2] - 0.5, x[..., 2:]], -1)  # centre the [0, 1] coordinates
        for layer in self.joint_layers:
            x = layer(x)  # (N, J, C)
        x = self.pool_groups(x)  # (N, G, C)
        for layer in self.part_layers:
            x = layer(x)
        return self.out(x.amax(1))  # (N, out_dim)

    def pool_groups(self, x: torch.Tensor) -> torch.Tensor:
        """Max-pool joints into groups: (N, J, C) -> (N, G, C). In training `max` (one winner per tie) rather
        than `amax` (ties share the gradient): its backward is a scatter, not a comparison over every member;
        without gradients `amax`, which skips the indices."""
        members = (x[:, self.first_group], x[:, self.run_start:].unflatten(1, (-1, self.run_len)))
        if torch.is_grad_enabled() and x.requires_grad:
            first, runs = members[0].max(1, keepdim=True).values, members[1].max(2).values
        else:
            first, runs = members[0].amax(1, keepdim=True), members[1].amax(2)
        return torch.cat([first, runs], 1)  # (N, 1 + G - 1, C)


def reuse_merged_weights(model: nn.Module) -> nn.Module:
    """Let every graph convolution of `model` keep its merged weight between calls (inference only: for one
    clip of the `paper` model, rebuilding it took 1.5 of about 22 ms; bench/merged_weights.py). Valid until
    `model.train()`; for a model that is only ever used for prediction, such as `Predictor`'s."""
    for module in model.modules():
        if isinstance(module, GraphConv):
            module.__dict__["_reuse_merged"] = True
    return model
