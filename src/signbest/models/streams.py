"""Input streams of a classifier, as the skeleton-based recognisers (SL-GCN, SAM-SLR) use them: the same
clip seen as joints (positions), bones (each joint relative to its parent in the part's skeleton) or
motion (each joint's change to the next frame, times MOTION_SCALE). Each stream is a model of its own; their probabilities
are averaged (an ensemble: `--checkpoint` several times). The view is taken inside the model, after the
dataset's frame sampling and test-time views, so every engine and the ONNX export see the same function.
"""
from __future__ import annotations

import torch

from ..pose.sequence import PART_GRAPHS, PART_KINDS, PARTS

STREAMS = ("joints", "bones", "motion")
MOTION_SCALE = 10.0  # frame differences of normalised coordinates are about 0.005 to 0.05; unscaled, a motion
#   model from the pre-trained encoder did not learn (dev 6.5% after 30 epochs, docs/results.md)


def parents(kind: str) -> list[int]:
    """Each joint's parent in the part's skeleton (the root, joint 0, is its own): the first bone that
    reaches a joint, walking the bones from the root."""
    graph = PART_GRAPHS[kind]
    parent = {0: 0}
    for a, b in graph.bones:
        if a in parent and b not in parent:
            parent[b] = a
    missing = sorted(set(range(graph.joints)) - set(parent))
    assert not missing, f"{kind}: joints {missing} are not reached from joint 0 by the bones"
    return [parent[j] for j in range(graph.joints)]


PARENTS = {kind: parents(kind) for kind in PART_GRAPHS}


def stream_view(batch: dict, stream: str) -> dict:
    """The batch as `stream` sees it: each part's (B, T, J, 2) coordinates and (B, T, J) mask replaced.
    A bone is present where both its joints are; a motion where the joint is present in both frames (the
    last frame's motion is absent). The root joint of a bone view keeps its position (where the part is)."""
    if stream == "joints":
        return batch
    out = dict(batch)
    for part in PARTS:
        xy, mask = batch[part], batch[f"{part}_mask"]
        if stream == "bones":
            up = PARENTS[PART_KINDS[part]]
            view = torch.cat([xy[:, :, :1], (xy - xy[:, :, up])[:, :, 1:]], 2)  # (B, T, J, 2)
            valid = mask & mask[:, :, up]
        else:  # motion
            view = MOTION_SCALE * torch.cat([xy[:, 1:] - xy[:, :-1], torch.zeros_like(xy[:, :1])], 1)
            valid = torch.cat([mask[:, 1:] & mask[:, :-1], torch.zeros_like(mask[:, :1])], 1)
        out[part], out[f"{part}_mask"] = torch.where(valid[..., None], view, 0.0), valid
    return out
