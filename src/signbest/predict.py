"""Prediction on new clips and videos: load a fine-tuned classifier, score clips, top-k glosses.

Used by `signbest predict`, by evaluation and by fine-tuning's selection; video extraction is imported
only when a video is given, so nothing here needs the video extra.
"""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from .sections import section
from .data import SignDataset, preprocess, read_manifest, write_manifest
from .data.cache import NothingReadable
from .data.manifest import Clip
from .inputs import expand_inputs, extract_videos
from .pose import PARTS
from .tokens import load_tokenizer
from .models.best import ModelConfig
from .models.classifier import HeadConfig, SignClassifier
from .models.gcn import reuse_merged_weights
from .model_card import card_text, without_front_matter
from .calibration import temperature_of, test_windows_of, unknown_threshold_of
from .atomic import committed
from .checkpoint import load_state, load_weights
from .runtime import autocast, bf16_supported
from .data.batches import collate, to_device


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) scores."""
    z = x - x.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def build_classifier(cfg: dict, num_classes: int) -> SignClassifier:
    return SignClassifier(section(cfg, "model", ModelConfig), num_classes, section(cfg, "head", HeadConfig))


def predict_logits(model, dataset: SignDataset, batch_size: int = 64, windows: int = 1, mirror: bool = False,
                   device: torch.device | None = None, bf16: bool = True) -> np.ndarray:
    """(N, C) logits, averaged over the test-time views: `windows` temporal windows at evenly spaced phases,
    each also mirrored (hands swapped, body flipped) with `mirror`. `model` is a `SignClassifier` or any
    callable from a batch to (B, C) logits (an exported model)."""
    if not isinstance(model, torch.nn.Module):
        return _view_mean(lambda batch: np.asarray(model(batch), dtype=np.float32), dataset, batch_size, windows, mirror)
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()

    def score(batch: dict) -> np.ndarray:
        with torch.no_grad(), autocast(device, bf16):
            return model(to_device(batch, device)).float().cpu().numpy()
    total = _view_mean(score, dataset, batch_size, windows, mirror)
    model.train(was)
    return total


def _view_mean(score, dataset: SignDataset, batch_size: int, windows: int, mirror: bool) -> np.ndarray:
    views = [(w, m) for w in range(windows) for m in ((False, True) if mirror else (False,))]
    total = None
    try:
        for w, mirrored in views:
            dataset.window = 0.5 if windows == 1 else w / (windows - 1)
            dataset.mirror = mirrored
            chunks = [score(collate([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))]))
                      for s in range(0, len(dataset), batch_size)]
            logits = np.concatenate(chunks)
            total = logits if total is None else total + logits
    finally:
        dataset.window = 0.5
        dataset.mirror = False
    return total / len(views)


def ensemble_logits(models: list, dataset: SignDataset, batch_size: int = 64, windows: int = 1,
                    mirror: bool = False, temperatures: list[float] | None = None) -> np.ndarray:
    """One model's logits / its temperature; for several, the log of their mean (calibrated) probabilities,
    so that a softmax gives the mean."""
    members = [predict_logits(m, dataset, batch_size, windows, mirror) for m in models]
    return combine_logits(members, temperatures)


def combine_logits(members: list[np.ndarray], temperatures: list[float] | None = None) -> np.ndarray:
    """`ensemble_logits` from the members' own logits (so that callers can combine them more than once)."""
    scaled = [logits / t for logits, t in zip(members, temperatures or [1.0] * len(members))]
    if len(scaled) == 1:
        return scaled[0]
    return np.log(np.clip(np.mean([softmax(logits) for logits in scaled], 0), 1e-30, None))


def check_ensemble(checkpoints: list, configs: list[dict]) -> None:
    """Members of an ensemble must answer the same question the same way: the same glosses in the same
    order, the same frames per clip and sampling."""
    first = configs[0]
    for checkpoint, cfg in zip(checkpoints[1:], configs[1:]):
        if cfg["glosses"] != first["glosses"]:
            differ = sorted(set(cfg["glosses"]) ^ set(first["glosses"]))
            detail = f"glosses {differ[:5]} are in one only" if differ else "the same glosses in another order"
            raise ValueError(f"{checkpoint}: cannot be averaged with {checkpoints[0]}: {detail}")
        for key in ("num_frames", "sampling"):
            if cfg["finetune"][key] != first["finetune"][key]:
                raise ValueError(f"{checkpoint}: finetune.{key} is {cfg['finetune'][key]}, {checkpoints[0]} has "
                                 f"{first['finetune'][key]}: an ensemble's members must read clips the same way")


def load_classifier(checkpoint: str | Path):
    """A fine-tuned model and its config (with the gloss list). Accepts a run folder (uses its best/)."""
    checkpoint = Path(checkpoint)
    chosen = committed(checkpoint / "selected")  # a run folder: its selected epoch, even mid-commit
    if chosen is not None:
        checkpoint = chosen
    elif (checkpoint / "fingerprint.json").exists():
        import json

        stage = json.loads((checkpoint / "fingerprint.json").read_text()).get("stage")
        if stage != "finetune":
            raise ValueError(f"{checkpoint}: not a fine-tuned model: the folder holds a {stage} run (give the "
                             "folder that `signbest finetune` or `signbest train` wrote: RUN/finetune)")
        raise ValueError(f"{checkpoint}: the fine-tuning run has no selected model yet (no selected/ folder): "
                         "let it finish at least one epoch")
    weights, cfg = load_weights(checkpoint)
    if "glosses" not in cfg:
        raise ValueError(f"{checkpoint}: not a fine-tuned checkpoint (it holds a {cfg.get('stage') or 'unknown'} "
                         "checkpoint, with no gloss list)")
    model = build_classifier(cfg, len(cfg["glosses"]))
    load_state(model, weights, checkpoint, f"classifier of {len(cfg['glosses'])} glosses")
    return model.eval(), cfg


ENGINES = ("auto", "torch", "onnx")  # auto: onnx for a .onnx file, torch for a checkpoint


def onnx_file(path: Path) -> Path:
    """The exported model: the .onnx file given, or the one `signbest export` wrote into a run folder."""
    if path.is_dir():
        if not (path / "model.onnx").is_file():
            raise ValueError(f"{path}: no model.onnx in this folder: export it first (signbest export {path} "
                             f"--out {path / 'model.onnx'}), or give the .onnx file")
        exported, selected = path / "model.onnx", committed(path / "selected")
        if selected is not None and exported.stat().st_mtime < (selected / "model.safetensors").stat().st_mtime:
            raise ValueError(f"{exported}: exported before the run's current model was made (the run was trained "
                             f"again): export it again (signbest export {path})")
        return exported
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    return path


def load_scorer(checkpoint: Path, engine: str = "auto"):
    """(model, config, card) of one checkpoint for prediction: a bf16 `SignClassifier` where the CPU has bf16,
    or the exported file through onnxruntime (`engine="onnx"`, or a .onnx file)."""
    checkpoint = Path(checkpoint)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got '{engine}'")
    if engine == "onnx" or (engine == "auto" and checkpoint.suffix == ".onnx"):
        from .export import OnnxClassifier

        model = OnnxClassifier(onnx_file(checkpoint))
        return model, model.cfg, without_front_matter(model.card)
    if checkpoint.suffix == ".onnx":
        raise ValueError(f"{checkpoint}: an exported ONNX model runs with --engine onnx, not {engine}")
    model, cfg = load_classifier(checkpoint)
    if bf16_supported(torch.device("cpu")):
        # Weights cast once: under autocast every call re-casts all of them, which for one clip of the
        # `paper` model took more time (42 ms) than the arithmetic (17 ms in bf16; bench/inference.py).
        model = model.to(torch.bfloat16)
    reuse_merged_weights(model)  # never trained here: the GCNs' merged weights are built once
    return model, cfg, card_text(checkpoint, cfg)


class Predictor:
    """Fine-tuned classifiers (one, or several averaged: an ensemble) and optionally a tokenizer, loaded once,
    scoring pose files and videos. `signbest predict` and `signbest serve` both use it, so the page and the
    command agree exactly. Calls from several threads are serialised: the model uses every core anyway."""

    def __init__(self, checkpoint: str | Path | list, tokenizer: str | Path | None = None, engine: str = "auto",
                 windows: int | None = None, mirror: bool = False):
        checkpoints = [Path(c) for c in (checkpoint if isinstance(checkpoint, (list, tuple)) else [checkpoint])]
        if not checkpoints:
            raise ValueError("give at least one checkpoint")
        loaded = [load_scorer(c, engine) for c in checkpoints]
        self.models = [model for model, _, _ in loaded]
        self.temperatures = [temperature_of(cfg) for _, cfg, _ in loaded]  # calibrated on dev when fine-tuned
        # Below this top-1 probability the answer is "unknown" (an ensemble: its members' mean threshold).
        self.unknown_below = float(np.mean([unknown_threshold_of(cfg) for _, cfg, _ in loaded]))
        check_ensemble(checkpoints, [cfg for _, cfg, _ in loaded])
        self.cfg = loaded[0][1]
        self.engine = "onnx" if not isinstance(self.models[0], torch.nn.Module) else "torch"
        self.card = loaded[0][2] if len(loaded) == 1 else (
            f"An ensemble of {len(loaded)} models: their probabilities are averaged. The first one's card:\n\n"
            + loaded[0][2])
        self.glosses: list[str] = self.cfg["glosses"]
        # Test-time views, averaged: by default the windows the models' recipe tests with (an ensemble: the most).
        self.windows = windows or test_windows_of(*(cfg for _, cfg, _ in loaded))
        self.mirror = mirror
        self.tokenizer = load_tokenizer(tokenizer) if tokenizer else None
        self.lock = threading.Lock()  # one call at a time: the model uses every core anyway

    def __call__(self, files: list[str | Path], top: int = 5, batch_size: int = 64, details: bool = False) -> list[dict]:
        """Top-k glosses with probabilities per input, or its error. With `details`, also the normalised
        triplet units the model received (per frame), the tokenizer's ids, and the time taken."""
        paths, _, refused = expand_inputs(files)
        from .video.holistic import VIDEO_SUFFIXES

        with self.lock, tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
            extracted, errors = extract_videos(videos, Path(tmp)) if videos else ({}, {})
            errors.update(refused)
            paths = paths + list(refused)
            t1 = time.perf_counter()
            readable = [(i, extracted.get(p, p)) for i, p in enumerate(paths) if p not in errors]
            if not readable:
                return [{"file": str(p), "error": errors[p]} for p in paths]
            clips = [Clip(f"{i}", p.resolve(), self.glosses[0], 0, "predict", "") for i, p in readable]
            manifest = read_manifest(write_manifest(clips, Path(tmp) / "manifest.csv"))
            failures = {str(i): errors[p] for i, p in enumerate(paths) if p in errors}
            try:
                data = preprocess(manifest, use_cache=False, progress=False)  # one-off files: keep the cache clean
            except NothingReadable as e:  # none readable: each file's own error
                data = None
                failures.update(e.failures)
            if data is not None:
                failures.update(data.failures)
                ds = SignDataset(manifest, split="predict", num_frames=self.cfg["finetune"]["num_frames"], data=data,
                                 sampling=self.cfg["finetune"]["sampling"], report_failures=False)
                probs = softmax(ensemble_logits(self.models, ds, batch_size, self.windows, self.mirror,
                                                self.temperatures))
                extra = self._details(ds, batch_size) if details else None
            t2 = time.perf_counter()
        by_id = {c.clip_id: i for i, c in enumerate(ds.clips)} if data is not None else {}
        results = []
        for i, p in enumerate(paths):
            if str(i) not in by_id:  # name the user's file, never the temporary pose file of a video
                err = failures.get(str(i), "unreadable").replace(str(extracted.get(p, p)), str(p))
                results.append({"file": str(p), "error": err})
                continue
            pr = probs[by_id[str(i)]]
            order = np.argsort(-pr, kind="stable")[:top]
            results.append({"file": str(p), "top": [(self.glosses[k], float(pr[k])) for k in order],
                            "unknown": bool(pr[order[0]] < self.unknown_below)})
            if details:
                results[-1].update(extra[by_id[str(i)]],
                                   timing={"extract_s": t1 - t0 if p in extracted else 0.0, "model_s": t2 - t1})
        return results

    def _details(self, ds: SignDataset, batch_size: int) -> list[dict]:
        """Per clip: the frames the model received (normalised parts, masks) and, with a tokenizer, its ids."""
        out = []
        for s in range(0, len(ds), batch_size):
            batch = collate([ds[i] for i in range(s, min(s + batch_size, len(ds)))])
            ids = None
            if self.tokenizer is not None:
                with torch.no_grad():
                    ids = dict(zip(PARTS, (t.tolist() for t in self.tokenizer.tokenize(batch))))
            for b in range(batch["frame_mask"].shape[0]):
                n = int(batch["frame_mask"][b].sum())
                units = {p: _joints_json(batch[p][b, :n].numpy(), batch[f"{p}_mask"][b, :n].numpy()) for p in PARTS}
                out.append({"frames": n, "units": units,
                            "tokens": {p: ids[p][b][:n] for p in PARTS} if ids else None})
        return out


def _joints_json(xy: np.ndarray, mask: np.ndarray) -> list:
    """(T, J, 2) joints -> nested lists with null for a missing joint (JSON has no NaN)."""
    return [[[round(float(x), 4), round(float(y), 4)] if m else None for (x, y), m in zip(f, fm)]
            for f, fm in zip(xy, mask)]


def predict(checkpoint: str | Path | list, files: list[str | Path], top: int = 5, batch_size: int = 64,
            engine: str = "auto", windows: int | None = None, mirror: bool = False) -> list[dict]:
    """Top-k glosses with probabilities for each pose file (any supported layout) or video; several
    checkpoints average their probabilities; `windows` and `mirror` average test-time views."""
    return Predictor(checkpoint, engine=engine, windows=windows, mirror=mirror)(files, top, batch_size)
