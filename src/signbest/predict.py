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
from .data.pool import POSE_SUFFIXES
from .pose import PARTS
from .tokens import load_tokenizer
from .models.best import ModelConfig
from .models.classifier import HeadConfig, SignClassifier
from .models.gcn import reuse_merged_weights
from .model_card import card_text, without_front_matter
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


def predict_logits(model, dataset: SignDataset, batch_size: int = 64, windows: int = 1,
                   device: torch.device | None = None, bf16: bool = True) -> np.ndarray:
    """(N, C) logits; with windows > 1, the mean over windows at evenly spaced phases (multi-window test).
    `model` is a `SignClassifier` or any callable from a batch to (B, C) logits (an exported model)."""
    if not isinstance(model, torch.nn.Module):
        return _window_mean(lambda batch: np.asarray(model(batch), dtype=np.float32), dataset, batch_size, windows)
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()

    def score(batch: dict) -> np.ndarray:
        with torch.no_grad(), autocast(device, bf16):
            return model(to_device(batch, device)).float().cpu().numpy()
    total = _window_mean(score, dataset, batch_size, windows)
    model.train(was)
    return total


def _window_mean(score, dataset: SignDataset, batch_size: int, windows: int) -> np.ndarray:
    total = None
    for w in range(windows):
        dataset.window = 0.5 if windows == 1 else w / (windows - 1)
        chunks = [score(collate([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))]))
                  for s in range(0, len(dataset), batch_size)]
        logits = np.concatenate(chunks)
        total = logits if total is None else total + logits
    dataset.window = 0.5
    return total / windows


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


def is_openpose_folder(folder: Path) -> bool:
    """A folder is one OpenPose clip only when every visible file in it is an OpenPose frame file."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")]
    return bool(files) and all(p.name.endswith("_keypoints.json") for p in files)


def expand_inputs(files: list[str | Path]) -> tuple[list[Path], list[Path], dict[Path, str]]:
    """(clips, strays, refused): files as given; a folder stands for the pose files and videos in it
    (or is itself one OpenPose clip, see `is_openpose_folder`). Strays are a folder's other files;
    OpenPose frame files among other clips are refused, each with the reason."""
    from .video.holistic import VIDEO_SUFFIXES

    paths, strays, refused = [], [], {}
    for f in map(Path, files):
        if not f.is_dir() or is_openpose_folder(f):
            paths.append(f)
            continue
        for p in sorted(f.iterdir()):
            if p.name.startswith(".") or p.is_dir():
                continue
            if p.name.endswith("_keypoints.json"):
                refused[p] = ("an OpenPose frame file among other clips: one clip's frames belong in a folder of "
                              "their own")
            elif p.suffix.lower() in POSE_SUFFIXES | VIDEO_SUFFIXES:
                paths.append(p)
            else:
                strays.append(p)
    return paths, strays, refused


ENGINES = ("auto", "torch", "onnx")  # auto: onnx for a .onnx file, torch for a checkpoint


def onnx_file(path: Path) -> Path:
    """The exported model: the .onnx file given, or the one `signbest export` wrote into a run folder."""
    if path.is_dir():
        if not (path / "model.onnx").is_file():
            raise ValueError(f"{path}: no model.onnx in this folder: export it first (signbest export {path} "
                             f"--out {path / 'model.onnx'}), or give the .onnx file")
        return path / "model.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    return path


class Predictor:
    """A fine-tuned classifier (and optionally a tokenizer) loaded once, scoring pose files and videos.
    `signbest predict` and `signbest serve` both use it, so the page and the command agree exactly.
    Calls from several threads are serialised: the model uses every core anyway."""

    def __init__(self, checkpoint: str | Path, tokenizer: str | Path | None = None, engine: str = "auto"):
        checkpoint = Path(checkpoint)
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got '{engine}'")
        if engine == "onnx" or (engine == "auto" and checkpoint.suffix == ".onnx"):
            from .export import OnnxClassifier

            self.model = OnnxClassifier(onnx_file(checkpoint))
            self.cfg = self.model.cfg
        elif checkpoint.suffix == ".onnx":
            raise ValueError(f"{checkpoint}: an exported ONNX model runs with --engine onnx, not {engine}")
        else:
            self.model, self.cfg = load_classifier(checkpoint)
            if bf16_supported(torch.device("cpu")):
                # Weights cast once: under autocast every call re-casts all of them, which for one clip of the
                # `paper` model took more time (42 ms) than the arithmetic (17 ms in bf16; bench/inference.py).
                self.model = self.model.to(torch.bfloat16)
            reuse_merged_weights(self.model)  # never trained here: the GCNs' merged weights are built once
        self.engine = "onnx" if not isinstance(self.model, torch.nn.Module) else "torch"
        self.card = without_front_matter(self.model.card) if self.engine == "onnx" else card_text(checkpoint, self.cfg)  # for the page
        self.glosses: list[str] = self.cfg["glosses"]
        self.tokenizer = load_tokenizer(tokenizer) if tokenizer else None
        self._lock = threading.Lock()

    def __call__(self, files: list[str | Path], top: int = 5, batch_size: int = 64, details: bool = False) -> list[dict]:
        """Top-k glosses with probabilities per input, or its error. With `details`, also the normalised
        triplet units the model received (per frame), the tokenizer's ids, and the time taken."""
        paths, _, refused = expand_inputs(files)
        from .video.holistic import VIDEO_SUFFIXES

        with self._lock, tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
            extracted, errors = _extract_videos(videos, Path(tmp)) if videos else ({}, {})
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
                probs = softmax(predict_logits(self.model, ds, batch_size=batch_size))
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
            results.append({"file": str(p), "top": [(self.glosses[k], float(pr[k])) for k in order]})
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


def predict(checkpoint: str | Path, files: list[str | Path], top: int = 5, batch_size: int = 64,
            engine: str = "auto") -> list[dict]:
    """Top-k glosses with probabilities for each pose file (any supported layout) or video."""
    return Predictor(checkpoint, engine=engine)(files, top, batch_size)
