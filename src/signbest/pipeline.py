"""`signbest train`: from a user's manifest to a model in one command.

splits (held-out people) -> [video extraction] -> tokenizer -> MUM pre-training -> fine-tuning ->
evaluation on the held-out people. Each stage is the library's own, in its own folder under OUT with its
run fingerprint, so a rerun continues where the last one stopped and reuses a finished stage only when
its fingerprint matches; `--overwrite` starts again (removing only what signbest wrote).
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .checkpoint import write_json
from .config import load_config, section
from .data.manifest import Clip, Manifest, read_manifest, write_manifest
from .data.resplit import split_by_signer
from .eval.evaluate import evaluate
from .outputs import claim_folder, refuse_inputs
from .train.finetune import FinetuneConfig, finetune
from .train.pretrain import PretrainConfig, pretrain
from .train.tokenizer import train_tokenizer

log = logging.getLogger(__name__)
SPLITS = "splits.csv"  # the manifest with the splits every stage reads, in OUT
TEST_FRACTION = 0.2  # share of the clips held out for the final test when the manifest names no test split
MIN_PEOPLE = 3  # fewer people than this: the test split is carved by clip and shares people with training


def resolve_splits(manifest: Manifest, test_signers: list[str], seed: int = 0) -> tuple[list[Clip], str]:
    """(clips with train / test splits, what was done, in words). `test_signers` hold out those people;
    else the manifest's own test (or val) split; else whole people, or clips when people are too few."""
    clips = manifest.clips
    if test_signers:
        known = {c.signer for c in clips}
        unknown = sorted(set(test_signers) - known)
        if unknown:
            raise ValueError(f"{manifest.path}: --test-signer {unknown} not in the manifest's signer column "
                             f"(signers: {sorted(known)[:10]})")
        out = [replace(c, split="test" if c.signer in test_signers else "train") for c in clips]
        return out, f"test = the clips of {', '.join(test_signers)} ({sum(c.split == 'test' for c in out)} clips)"
    splits = {c.split for c in clips}
    for held in ("test", "val"):
        if held in splits and "train" in splits:
            out = [replace(c, split="test" if c.split == held else c.split) for c in clips]  # other splits: unused
            return out, f"test = the manifest's '{held}' split ({sum(c.split == 'test' for c in out)} clips)"
    people = {c.signer for c in clips if c.signer}
    if len(people) >= MIN_PEOPLE and all(c.signer for c in clips):
        new, summary = split_by_signer(Manifest(clips, manifest.glosses, manifest.path, manifest.labelled),
                                       TEST_FRACTION, seed, pool=tuple(splits))
        out = [replace(c, split="test" if c.split == "val" else "train") for c in new]
        held = sorted({c.signer for c in out if c.split == "test"})
        return out, (f"no split column: held out {len(held)} of {len(people)} people as test ({', '.join(held[:5])}; "
                     f"{summary['val']} clips); name them with --test-signer")
    rng = np.random.default_rng(seed)
    test = set()
    for label in sorted({c.label for c in clips}):
        members = [i for i, c in enumerate(clips) if c.label == label]
        take = int(round(TEST_FRACTION * len(members))) if len(members) > 1 else 0
        test.update(rng.permutation(members)[:take].tolist())
    out = [replace(c, split="test" if i in test else "train") for i, c in enumerate(clips)]
    why = "the manifest has no signer column" if not people else f"it names only {len(people)} people"
    return out, (f"no split column and {why}: held out {len(test)} clips (a fifth of each sign) as test. Those clips "
                 "share people with training, so the test accuracy overstates what a new person gets")


def extract_if_videos(manifest_path: Path, out: Path) -> Path:
    """A manifest whose pose_file column names videos: extract them (resumably, the video extra) into
    OUT/extract and return a manifest of the pose files; a pose manifest is returned as it is."""
    from .video.holistic import VIDEO_SUFFIXES

    m = read_manifest(manifest_path)
    videos = [c.pose_file for c in m.clips if c.pose_file.suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        return manifest_path
    from .video.batch import extract_videos
    from .video.holistic import require_mediapipe

    try:
        require_mediapipe()
    except ImportError as e:
        raise ValueError(f"{manifest_path}: lists {len(videos)} videos; extracting them needs the video extra "
                         f"(pip install 'signbest[video]'): {e}") from None
    report = extract_videos(videos, out / "extract")
    failed = {Path(v) for v, _ in report.failures}
    clips = [replace(c, pose_file=out / "extract" / f"{c.pose_file.stem}.npz")
             for c in m.clips if c.pose_file not in failed]
    for v, err in report.failures[:10]:
        log.warning("extraction failed, clip left out: %s: %s", v, err)
    return write_manifest(clips, out / "extract" / "labelled.csv")


class Progress:
    """One line per stage with the elapsed time and an estimate of the time left, from the seconds per
    clip-epoch measured on the stages done so far (pre-training and fine-tuning cost about the same)."""

    def __init__(self, work: dict[str, float]):
        self.work, self.t0, self.done, self.spent = work, time.monotonic(), [], 0.0

    def start(self, name: str) -> float:
        k = list(self.work).index(name) + 1
        measured = sum(self.work[n] for n in self.done if n != "tokenizer")
        left = sum(v for n, v in self.work.items() if n not in self.done and n != "tokenizer")
        rate = self.spent / measured if measured else None
        eta = f", about {left * rate / 60:.0f} min left" if rate else ""
        log.info("[%d/%d] %s (%.0f min elapsed%s)", k, len(self.work), name, (time.monotonic() - self.t0) / 60, eta)
        return time.monotonic()

    def end(self, name: str, started: float) -> None:
        self.done.append(name)
        if name != "tokenizer":
            self.spent += time.monotonic() - started


def train_pipeline(data: Path, out: Path, config: str = "small", pools: list[Path] = (), test_signers: list[str] = (),
                   overrides: list[str] | None = None, overwrite: bool = False, progress: bool = True) -> dict:
    data, out = Path(data), Path(out)
    for written in (out / SPLITS, out / "extract" / "labelled.csv"):  # files this command writes in OUT
        refuse_inputs(written, [data, *pools])
    claim_folder(out, "train", [data, *pools], overwrite)
    cfg = load_config(config, overrides)
    poses = extract_if_videos(data, out)
    manifest = read_manifest(poses)
    if not manifest.labelled:
        raise ValueError(f"{data}: no gloss column: `signbest train` needs labelled clips (a pool goes in --pool)")
    clips, how = resolve_splits(manifest, list(test_signers), cfg.get("split", {}).get("seed", 0))
    log.info("splits: %s", how)
    splits = write_manifest(clips, out / SPLITS)
    n_train = sum(c.split == "train" for c in clips)
    n_pool = sum(len(read_manifest(p).clips) for p in pools)
    pretrain_config, finetune_config = section(cfg, "pretrain", PretrainConfig), section(cfg, "finetune", FinetuneConfig)
    bar = Progress({"tokenizer": 0.0, "pre-training": pretrain_config.epochs * (n_train + n_pool),
                    "fine-tuning": finetune_config.epochs * n_train, "evaluation": 0.0})
    stage_data = [splits, *pools]
    kw = dict(progress=progress, overwrite=overwrite)
    t = bar.start("tokenizer")
    train_tokenizer(cfg, stage_data, out / "tokenizer", **kw)
    bar.end("tokenizer", t)
    t = bar.start("pre-training")
    pretrain(cfg, stage_data, out / "tokenizer", out / "pretrain", **kw)
    bar.end("pre-training", t)
    t = bar.start("fine-tuning")
    ft = finetune(cfg, splits, out / "finetune", out / "pretrain", **kw)
    bar.end("fine-tuning", t)
    t = bar.start("evaluation")
    result = evaluate(out / "finetune", splits, "test", out / "finetune" / "eval-test")
    bar.end("evaluation", t)
    summary = {"splits": how, "test": result["pose"], "selected_epoch": ft["selected_epoch"],
               "model": str(out / "finetune"), "tokenizer": str(out / "tokenizer"),
               "minutes": (time.monotonic() - bar.t0) / 60}
    write_json(out / "summary.json", summary)
    return summary
