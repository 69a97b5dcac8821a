"""`signbest evaluate` and `signbest predict`: metrics, reports and predictions from a fine-tuned checkpoint."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..data import SignDataset, preprocess, read_manifest, write_manifest
from ..data.manifest import Clip
from ..train.checkpoint import load_weights, write_json
from ..train.finetune import build_classifier, predict_logits
from .fusion import fuse, read_scores, softmax
from .metrics import classification_metrics, confusion_matrix, per_class_accuracy, topk_hits


def load_classifier(checkpoint: str | Path):
    """A fine-tuned model and its config (with the gloss list). Accepts a run folder (uses its best/)."""
    checkpoint = Path(checkpoint)
    if (checkpoint / "best" / "model.safetensors").exists():
        checkpoint = checkpoint / "best"
    weights, cfg = load_weights(checkpoint)
    if "glosses" not in cfg:
        raise ValueError(f"{checkpoint}: not a fine-tuned checkpoint (its config has no gloss list)")
    model = build_classifier(cfg, len(cfg["glosses"]))
    model.load_state_dict(weights)
    return model.eval(), cfg


def evaluate(checkpoint: str | Path, data: str | Path, split: str = "test", out: str | Path | None = None,
             windows: int = 1, fuse_path: str | Path | None = None, fuse_weight: float = 1.0,
             fuse_kind: str = "logits") -> dict:
    model, cfg = load_classifier(checkpoint)
    ds = SignDataset(data, split=split, num_frames=cfg["finetune"]["num_frames"], progress=False)
    if ds.num_classes != len(cfg["glosses"]):
        raise ValueError(f"{data}: {ds.num_classes} classes, but the checkpoint was trained on {len(cfg['glosses'])}")
    logits = predict_logits(model, ds, windows=windows)
    results = {"checkpoint": str(checkpoint), "data": str(data), "split": split, "windows": windows,
               "pose": classification_metrics(logits, ds.labels)}
    scores = logits
    if fuse_path:
        ids = [c.clip_id for c in ds.clips]
        scores = fuse(logits, ids, read_scores(fuse_path), fuse_weight, fuse_kind, str(fuse_path))
        results["fused"] = {**classification_metrics(scores, ds.labels), "weight": fuse_weight, "scores": str(fuse_path)}
    out = Path(out) if out else Path(checkpoint) / f"eval-{split}"
    write_reports(out, results, scores, ds)
    return results


def write_reports(out: Path, results: dict, scores: np.ndarray, ds: SignDataset) -> None:
    """results.json, results.md, per_class.csv, confusion.png."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    rows = [(name, m) for name, m in (("pose", results["pose"]), ("pose + fused scores", results.get("fused"))) if m]
    lines = ["| model | P-I Top-1 | P-I Top-5 | P-C Top-1 | P-C Top-5 | clips |", "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {m['per_instance_top1']:.2f} | {m['per_instance_top5']:.2f} | {m['per_class_top1']:.2f} | "
              f"{m['per_class_top5']:.2f} | {m['clips']} |" for n, m in rows]
    (out / "results.md").write_text(f"Split `{results['split']}` of `{results['data']}`\n\n" + "\n".join(lines) + "\n")
    labels, c = ds.labels, scores.shape[1]
    acc1 = per_class_accuracy(topk_hits(scores, labels, 1), labels, c)
    acc5 = per_class_accuracy(topk_hits(scores, labels, 5), labels, c)
    with open(out / "per_class.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "gloss", "clips", "top1", "top5"])
        counts = np.bincount(labels, minlength=c)
        for k in range(c):
            w.writerow([k, ds.glosses[k], counts[k], "" if np.isnan(acc1[k]) else f"{100 * acc1[k]:.2f}",
                        "" if np.isnan(acc5[k]) else f"{100 * acc5[k]:.2f}"])
    plot_confusion(confusion_matrix(scores.argmax(1), labels, c), out / "confusion.png")


def plot_confusion(m: np.ndarray, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion (row-normalised)")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _extract_videos(videos: list[Path], tmp: Path) -> tuple[dict[Path, Path], dict[Path, str]]:
    """Pose files for the videos among the inputs (MediaPipe Holistic), and errors of those that fail."""
    try:
        from ..video.holistic import HolisticExtractor, VideoError
        extractor = HolisticExtractor()
    except ImportError as e:
        raise ValueError(f"{videos[0]}: predicting from video needs pose extraction: {e}") from None
    from ..video.writers import write_npz

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
    from ..video.holistic import VIDEO_SUFFIXES

    paths = []
    for f in map(Path, files):
        if f.is_dir() and not any(f.glob("*_keypoints.json")):
            paths += sorted(p for p in f.iterdir()
                            if p.suffix.lower() in {".npz", ".npy", ".pose", ".json", ".parquet"} | VIDEO_SUFFIXES)
        else:
            paths.append(f)
    model, cfg = load_classifier(checkpoint)
    glosses = cfg["glosses"]
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
        extracted, errors = _extract_videos(videos, Path(tmp)) if videos else ({}, {})
        readable = [(i, extracted.get(p, p)) for i, p in enumerate(paths) if p not in errors]
        if not readable:
            return [{"file": str(p), "error": errors[p]} for p in paths]
        clips = [Clip(f"{i}", p.resolve(), glosses[0], 0, "predict", "") for i, p in readable]
        manifest = read_manifest(write_manifest(clips, Path(tmp) / "manifest.csv"))
        data = preprocess(manifest, use_cache=False, progress=False)  # one-off files: keep the cache clean
        ds = SignDataset(manifest, split="predict", num_frames=cfg["finetune"]["num_frames"], data=data)
        probs = softmax(predict_logits(model, ds, batch_size=batch_size))
        failures = {**{str(i): errors[p] for i, p in enumerate(paths) if p in errors}, **ds.data.failures}
    by_id = {c.clip_id: i for i, c in enumerate(ds.clips)}
    results = []
    for i, p in enumerate(paths):
        if str(i) not in by_id:
            results.append({"file": str(p), "error": failures.get(str(i), "unreadable")})
            continue
        pr = probs[by_id[str(i)]]
        order = np.argsort(-pr, kind="stable")[:top]
        results.append({"file": str(p), "top": [(glosses[k], float(pr[k])) for k in order]})
    return results
