"""The evaluation protocol's splits: a *dev* split carved from train for model selection.

Reported splits (val, test) are never looked at by any training stage: the tokenizer and pre-training
read train only, fine-tuning trains on train and picks its epoch on dev. Dev is seeded, stratified by
gloss and, where the manifest names enough signers, signer-disjoint from the rest of train.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import torch

from .dataset import SignDataset
from .manifest import Manifest, read_manifest

MIN_SIGNERS = 5  # below this many train signers one signer would be >= 20% of train: carve by clip


@dataclass
class SplitConfig:
    dev_fraction: float = 0.1  # share of train clips moved to dev for model selection (0 = no dev)
    seed: int = 0  # which clips (or signers) go to dev; the same for every training seed

    def __post_init__(self):
        if not 0 <= self.dev_fraction < 0.5:
            raise ValueError(f"split dev_fraction must be in [0, 0.5), got {self.dev_fraction}")


def carve_dev(manifest: Manifest, cfg: SplitConfig) -> Manifest:
    """The manifest with about `dev_fraction` of its train clips relabelled split 'dev'.

    Unlabelled manifests (pre-training pools) are returned unchanged: nothing is selected on them."""
    train = [i for i, c in enumerate(manifest.clips) if c.split == "train"]
    if cfg.dev_fraction == 0 or not manifest.labelled or not train or any(c.split == "dev" for c in manifest.clips):
        return manifest
    clips = [manifest.clips[i] for i in train]
    signers = {c.signer for c in clips}
    if all(c.signer for c in clips) and len(signers) >= MIN_SIGNERS:
        dev = _by_signer(clips, cfg)
    else:
        dev = _by_clip(clips, cfg)
    moved = {train[j] for j in dev}
    out = [replace(c, split="dev") if i in moved else c for i, c in enumerate(manifest.clips)]
    return Manifest(out, manifest.glosses, manifest.path, manifest.labelled)


def _by_clip(clips, cfg: SplitConfig) -> set[int]:
    """About fraction * n clips (at least one), shared among glosses in proportion to their size
    (largest remainders first), none taking a gloss's last train clip."""
    rng = np.random.default_rng(cfg.seed)
    by_gloss: dict[int, list[int]] = {}
    for j, c in enumerate(clips):
        by_gloss.setdefault(c.label, []).append(j)
    labels = sorted(by_gloss)
    ideal = {g: cfg.dev_fraction * len(by_gloss[g]) for g in labels}
    take = {g: min(int(ideal[g]), len(by_gloss[g]) - 1) for g in labels}
    spare = max(1, round(cfg.dev_fraction * len(clips))) - sum(take.values())
    for g in sorted(labels, key=lambda g: (-(ideal[g] - int(ideal[g])), rng.random())):
        if spare > 0 and take[g] < len(by_gloss[g]) - 1:
            take[g], spare = take[g] + 1, spare - 1
    return {j for g in labels for j in rng.permutation(by_gloss[g])[:take[g]].tolist()}


def _by_signer(clips, cfg: SplitConfig) -> set[int]:
    """Whole signers in seeded order while dev stays near its target, no gloss gets more than its share
    (+1) in dev, and every gloss keeps a train clip."""
    groups: dict[str, list[int]] = {}
    for j, c in enumerate(clips):
        groups.setdefault(c.signer, []).append(j)
    order = sorted(groups)
    np.random.default_rng(cfg.seed).shuffle(order)
    target = cfg.dev_fraction * len(clips)
    total = Counter(c.label for c in clips)
    cap = {g: math.ceil(cfg.dev_fraction * n) + 1 for g, n in total.items()}
    in_dev: Counter = Counter()
    dev: set[int] = set()

    def fits(members, strict: bool) -> bool:
        add = Counter(clips[j].label for j in members)
        if any(in_dev[g] + k >= total[g] for g, k in add.items()):
            return False  # the gloss would vanish from train
        return not strict or (len(dev) + len(members) <= 1.2 * target
                              and all(in_dev[g] + k <= cap[g] for g, k in add.items()))

    for strict in (True, False):  # relax the caps only if nothing fitted (few, large signers)
        for s in order:
            if len(dev) >= target or (not strict and dev):
                break
            if groups[s][0] not in dev and fits(groups[s], strict):
                dev.update(groups[s])
                in_dev.update(clips[j].label for j in groups[s])
    return dev


MIN_DEV_CLIPS = 30  # below this, one clip moves dev accuracy by more than 3 points: too coarse to pick an epoch


def selection_rule(manifest: Manifest, select_on: str) -> tuple[str, str]:
    """(the split to pick the epoch on, or "last"; why, when it is not what was asked). Dev picks an epoch
    only when it can: people other than the training people (else a model that memorises them scores
    100% from its first epochs, and ties or noise pick an undertrained one) and enough clips."""
    if select_on != "dev":
        return select_on, ""
    dev = [c for c in manifest.clips if c.split == "dev"]
    train_signers = {c.signer for c in manifest.clips if c.split == "train"}
    shared = {c.signer for c in dev} & train_signers
    if any(not c.signer for c in dev) or "" in train_signers:
        return "last", "the manifest does not name every clip's signer, so dev may share people with train"
    if shared:
        return "last", (f"dev shares {len(shared)} of its {len({c.signer for c in dev})} people with train "
                        f"(train has {len(train_signers)} people; dev by people needs {MIN_SIGNERS} or more)")
    if len(dev) < MIN_DEV_CLIPS:
        return "last", f"dev has {len(dev)} clips, fewer than {MIN_DEV_CLIPS}"
    return "dev", ""


def seeded_share(n: int, fraction: float, seed: int) -> list[int]:
    """A seeded share of range(n), at least one, in order."""
    return sorted(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: max(1, round(fraction * n))].tolist())


def load_manifest(path_or_manifest, cfg: SplitConfig | None = None) -> Manifest:
    """Read a manifest and carve its dev split (with `cfg`, default settings when None)."""
    m = path_or_manifest if isinstance(path_or_manifest, Manifest) else read_manifest(path_or_manifest)
    return carve_dev(m, cfg or SplitConfig())


def split_summary(m: Manifest) -> dict:
    """Clips, signers and glosses per split, and signers shared between dev and train."""
    out = {}
    for split in sorted({c.split for c in m.clips}):
        cs = [c for c in m.clips if c.split == split]
        out[split] = {"clips": len(cs), "signers": len({c.signer for c in cs if c.signer}),
                      "glosses": len({c.label for c in cs})}
    signers = lambda s: {c.signer for c in m.clips if c.split == s and c.signer}
    out["dev_train_shared_signers"] = len(signers("dev") & signers("train"))
    return out


def split_sets(data: list, split: str, cfg: SplitConfig | None = None, **kw) -> list[tuple[int, SignDataset]]:
    """(position in `data`, dataset of its `split` clips) for each manifest that has any, dev carved first.
    A manifest given twice is refused: its clips would count twice in every epoch."""
    from pathlib import Path

    paths = [Path(d).resolve() for d in data if not isinstance(d, Manifest)]
    twice = sorted({str(p) for p in paths if paths.count(p) > 1})
    if twice:
        raise ValueError(f"{twice[0]}: given twice as --data; each manifest once (its clips would count twice)")
    out = []
    for i, d in enumerate(data):
        try:
            out.append((i, SignDataset(load_manifest(d, cfg), split=split, **kw)))
        except ValueError as e:
            if "no clip in split" not in str(e):
                raise
    return out
