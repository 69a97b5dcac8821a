"""Pictures: skeletons of the triplet unit's parts, and the members of tokenizer codes (paper figure 2)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .pose.sequence import HANDS

HAND_CHAINS = [[0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [0, 9, 10, 11, 12], [0, 13, 14, 15, 16], [0, 17, 18, 19, 20], [5, 9, 13, 17]]
BODY_CHAINS = [[3, 2, 1, 4, 5, 6]]
FINGER_COLOURS = ["#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd", "#7f7f7f"]


def draw_part(ax, xy: np.ndarray, mask: np.ndarray, part: str, colour: str | None = None) -> None:
    """Draw one part's normalised joints (y down) on a matplotlib axis."""
    chains = BODY_CHAINS if part == "body" else HAND_CHAINS
    for i, chain in enumerate(chains):
        pts = [j for j in chain if mask[j]]
        if len(pts) > 1:
            ax.plot(xy[pts, 0], xy[pts, 1], "-", lw=1.2, color=colour or FINGER_COLOURS[i % len(FINGER_COLOURS)])
    if part == "body" and mask[0]:
        ax.plot(xy[0, 0], xy[0, 1], "o", ms=3, color=colour or "k")
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def show_tokens(frames: dict[str, np.ndarray], ids: dict[str, np.ndarray], signers: np.ndarray, out: Path,
                codes_per_part: int = 6, members: int = 6, seed: int = 0) -> Path:
    """For the most used hand and body codes, draw `members` frames of each (from different signers
    where possible): one row per code, hands first, then body."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    rows = []  # (label, part, [frame indices], [slot])
    hand_ids = np.concatenate([ids["left"], ids["right"]])
    hand_src = np.concatenate([np.stack([np.arange(len(ids["left"])), np.zeros(len(ids["left"]), int)], 1),
                               np.stack([np.arange(len(ids["right"])), np.ones(len(ids["right"]), int)], 1)])
    for part, pid, src in (("hand", hand_ids, hand_src), ("body", ids["body"], None)):
        valid = pid >= 0
        codes, counts = np.unique(pid[valid], return_counts=True)
        for code in codes[np.argsort(-counts)][:codes_per_part]:
            where = np.flatnonzero(pid == code)
            frame_of = src[where, 0] if src is not None else where
            by_signer: dict = {}
            for w, f in zip(where, frame_of):
                by_signer.setdefault(signers[f], []).append(w)
            order = list(by_signer)
            rng.shuffle(order)
            picked = [by_signer[s][rng.integers(len(by_signer[s]))] for s in order[:members]]
            while len(picked) < min(members, len(where)):
                picked.append(where[rng.integers(len(where))])
            rows.append((f"{part} {code}\n{int((pid == code).sum())} frames\n{len(by_signer)} signers",
                         part, picked, src))
    fig, axes = plt.subplots(len(rows), members, figsize=(1.6 * members, 1.7 * len(rows)), squeeze=False)
    for r, (label, part, picked, src) in enumerate(rows):
        for c in range(members):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(picked):
                continue
            ax.axis("on")
            w = picked[c]
            if part == "hand":
                f, slot = src[w]
                name = HANDS[slot]
                draw_part(ax, frames[name][f], frames[f"{name}_mask"][f], "hand")
                ax.set_title(f"{name} hand, {signers[f]}", fontsize=6)
            else:
                draw_part(ax, frames["body"][w], frames["body_mask"][w], "body", "k")
                ax.set_title(str(signers[w]), fontsize=6)
        axes[r, 0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle("Members of the most frequent codes (left hands shown mirrored, as the codebook sees them)", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return Path(out)
