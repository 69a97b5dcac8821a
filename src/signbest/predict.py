"""Prediction on new clips and videos: load a fine-tuned classifier, score clips, top-k glosses.

Used by `signbest predict`, by evaluation and by fine-tuning's selection; video extraction is imported
only when a video is given, so nothing here needs the video extra.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from .config import section
from .data import SignDataset, preprocess, read_manifest, write_manifest
from .data.manifest import Clip
from .eval.fusion import softmax
from .models.best import ModelConfig
from .models.classifier import HeadConfig, SignClassifier
from .checkpoint import load_weights
from .runtime import autocast
from .data.batches import collate, to_device


def build_classifier(cfg: dict, num_classes: int) -> SignClassifier:
    return SignClassifier(section(cfg, "model", ModelConfig), num_classes, section(cfg, "head", HeadConfig))


def predict_logits(model: SignClassifier, dataset: SignDataset, batch_size: int = 64, windows: int = 1,
                   device: torch.device | None = None, bf16: bool = True) -> np.ndarray:
    """(N, C) logits; with windows > 1, the mean over windows at evenly spaced phases (multi-window test)."""
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    total = None
    for w in range(windows):
        dataset.window = 0.5 if windows == 1 else w / (windows - 1)
        chunks = []
        with torch.no_grad():
            for s in range(0, len(dataset), batch_size):
                batch = to_device(collate([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))]), device)
                with autocast(device, bf16):
                    chunks.append(model(batch).float().cpu())
        logits = torch.cat(chunks).numpy()
        total = logits if total is None else total + logits
    dataset.window = 0.5
    model.train(was)
    return total / windows


def load_classifier(checkpoint: str | Path):
    """A fine-tuned model and its config (with the gloss list). Accepts a run folder (uses its best/)."""
    checkpoint = Path(checkpoint)
    for chosen in ("selected", "best"):  # a run folder: its selected epoch ("best" before 0.2)
        if (checkpoint / chosen / "model.safetensors").exists():
            checkpoint = checkpoint / chosen
            break
    weights, cfg = load_weights(checkpoint)
    if "glosses" not in cfg:
        raise ValueError(f"{checkpoint}: not a fine-tuned checkpoint (its config has no gloss list)")
    model = build_classifier(cfg, len(cfg["glosses"]))
    model.load_state_dict(weights)
    return model.eval(), cfg


def _extract_videos(videos: list[Path], tmp: Path) -> tuple[dict[Path, Path], dict[Path, str]]:
    """Pose files for the videos among the inputs (MediaPipe Holistic), and errors of those that fail."""
    try:
        from .video.holistic import HolisticExtractor, VideoError
        extractor = HolisticExtractor()
    except ImportError as e:
        raise ValueError(f"{videos[0]}: predicting from video needs pose extraction: {e}") from None
    from .video.writers import write_npz

    poses, errors = {}, {}
    try:
        for i, v in enumerate(videos):
            try:
                write_npz(tmp / f"video{i}.npz", extractor.extract(v))
                poses[v] = tmp / f"video{i}.npz"
            except VideoError as e:
                errors[v] = str(e)
    finally:
        extractor.close()
    return poses, errors


def predict(checkpoint: str | Path, files: list[str | Path], top: int = 5, batch_size: int = 64) -> list[dict]:
    """Top-k glosses with probabilities for each pose file (any supported layout) or video."""
    from .video.holistic import VIDEO_SUFFIXES

    paths = []
    for f in map(Path, files):
        if f.is_dir() and not any(f.glob("*_keypoints.json")):
            paths += sorted(p for p in f.iterdir()
                            if p.suffix.lower() in {".npz", ".npy", ".pose", ".json", ".parquet"} | VIDEO_SUFFIXES)
        else:
            paths.append(f)
    model, cfg = load_classifier(checkpoint)
    glosses = cfg["glosses"]
    with tempfile.TemporaryDirectory() as tmp:
        videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
        extracted, errors = _extract_videos(videos, Path(tmp)) if videos else ({}, {})
        readable = [(i, extracted.get(p, p)) for i, p in enumerate(paths) if p not in errors]
        if not readable:
            return [{"file": str(p), "error": errors[p]} for p in paths]
        clips = [Clip(f"{i}", p.resolve(), glosses[0], 0, "predict", "") for i, p in readable]
        manifest = read_manifest(write_manifest(clips, Path(tmp) / "manifest.csv"))
        data = preprocess(manifest, use_cache=False, progress=False)  # one-off files: keep the cache clean
        ds = SignDataset(manifest, split="predict", num_frames=cfg["finetune"]["num_frames"], data=data,
                         sampling=cfg["finetune"].get("sampling", "window"))
        probs = softmax(predict_logits(model, ds, batch_size=batch_size))
        failures = {**{str(i): errors[p] for i, p in enumerate(paths) if p in errors}, **ds.data.failures}
    by_id = {c.clip_id: i for i, c in enumerate(ds.clips)}
    results = []
    for i, p in enumerate(paths):
        if str(i) not in by_id:  # name the user's file, never the temporary pose file of a video
            err = failures.get(str(i), "unreadable").replace(str(extracted.get(p, p)), str(p))
            results.append({"file": str(p), "error": err})
            continue
        pr = probs[by_id[str(i)]]
        order = np.argsort(-pr, kind="stable")[:top]
        results.append({"file": str(p), "top": [(glosses[k], float(pr[k])) for k in order]})
    return results
