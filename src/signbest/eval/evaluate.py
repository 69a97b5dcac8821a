"""`signbest evaluate`: metrics and reports of a fine-tuned checkpoint on a split that no stage looked at."""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from ..data import SignDataset, read_manifest
from ..data.protocol import SplitConfig, load_manifest
from ..calibration import (ECE_BINS, expected_calibration_error, open_set_metrics, plot_reliability, temperature_of,
                           test_windows_of, unknown_threshold_of)
from ..predict import check_ensemble, combine_logits, load_classifier, predict_logits, softmax
from ..atomic import check_output_folder, committed
from ..model_card import write_model_card
from ..outputs import check_folder, claim_folder
from ..checkpoint import write_json
from .fusion import fuse, read_scores
from .metrics import classification_metrics, confusion_matrix, per_class_accuracy, topk_hits

log = logging.getLogger(__name__)


def checkpoint_labels(manifest_glosses: list[str], labels: np.ndarray, trained: list[str], where) -> np.ndarray:
    """The manifest's labels in the checkpoint's class order, matched by gloss name, never by number.
    A manifest gloss the model was not trained on is an error naming it."""
    if list(manifest_glosses) == list(trained):
        return labels
    index = {g: i for i, g in enumerate(trained)}
    used = sorted({manifest_glosses[k] for k in set(labels.tolist())})
    unknown = [g for g in used if g not in index]
    if unknown:
        raise ValueError(f"{where}: glosses {unknown[:8]}{' ...' if len(unknown) > 8 else ''} are not among the "
                         f"{len(trained)} glosses the checkpoint was trained on")
    log.warning("%s: gloss list differs from the checkpoint's (other order or subset); labels remapped by name", where)
    return np.array([index[manifest_glosses[k]] for k in labels], dtype=np.int64)


def open_set_report(models, temperatures, known_probs, known_labels, unknown: str | Path, cfg: dict, windows: int,
                    mirror: bool, bf16: bool, threshold: float) -> dict:
    """`open_set_metrics` of the evaluated clips against the clips of `unknown`."""
    manifest = read_manifest(unknown)
    if manifest.labelled:
        shared = sorted({c.gloss for c in manifest.clips} & set(cfg["glosses"]))
        if shared:
            raise ValueError(f"{unknown}: clips of signs the model knows ({', '.join(shared[:5])}"
                             f"{' ...' if len(shared) > 5 else ''}) cannot stand for unknown signs")
    ds = SignDataset(manifest, split=None, num_frames=cfg["finetune"]["num_frames"], progress=False,
                     sampling=cfg["finetune"]["sampling"])
    members = [predict_logits(model, ds, windows=windows, mirror=mirror, bf16=bf16) for model in models]
    return {**open_set_metrics(known_probs, known_labels, softmax(combine_logits(members, temperatures)), threshold),
            "unknown_data": str(unknown)}


def evaluate(checkpoint: str | Path | list, data: str | Path, split: str = "test", out: str | Path | None = None,
             windows: int | None = None, fuse_path: str | Path | None = None, fuse_weight: float = 1.0,
             fuse_kind: str = "logits", mirror: bool = False, unknown: str | Path | None = None) -> dict:
    """Reports of one fine-tuned model, or of several averaged (an ensemble: give `out`), on `split`;
    `windows` and `mirror` average test-time views (windows None: the models' recipe, `test_windows_of`).
    `unknown`: a manifest of clips of signs the model does not know (every clip; unlabelled, or glosses none
    of the model's): open-set figures beside."""
    checkpoints = [Path(c) for c in (checkpoint if isinstance(checkpoint, (list, tuple)) else [checkpoint])]
    if len(checkpoints) > 1 and out is None:
        raise ValueError("an ensemble's report needs --out: it belongs to no single run folder")
    out = Path(out) if out else checkpoints[0] / f"eval-{split}"
    check_folder(out, "eval", [*checkpoints, data, fuse_path, unknown])  # before the work; made only when there is a report
    loaded = [load_classifier(c) for c in checkpoints]
    models = [model for model, _ in loaded]
    check_ensemble(checkpoints, [cfg for _, cfg in loaded])
    cfg = loaded[0][1]
    windows = windows or test_windows_of(*(c for _, c in loaded))
    manifest = load_manifest(data, SplitConfig(**cfg["split"]))  # "dev" as training carved it
    ds = SignDataset(manifest, split=split, num_frames=cfg["finetune"]["num_frames"], progress=False,
                     sampling=cfg["finetune"]["sampling"])
    labels = checkpoint_labels(ds.glosses, ds.labels, cfg["glosses"], data)
    bf16 = cfg["finetune"].get("bf16", True)  # the arithmetic the epoch was selected with
    members = [predict_logits(model, ds, windows=windows, mirror=mirror, bf16=bf16) for model in models]  # one pass
    temperatures = [temperature_of(c) for _, c in loaded]
    raw = combine_logits(members)
    logits = combine_logits(members, temperatures)
    results = {"checkpoint": str(checkpoints[0]) if len(checkpoints) == 1 else [str(c) for c in checkpoints],
               "data": str(data), "split": split, "windows": windows, "mirror": mirror,
               "selected_epoch": cfg.get("selected_epoch") if len(checkpoints) == 1 else None,
               "select_on": cfg.get("select_on"), "pose": classification_metrics(logits, labels),
               "calibration": {"temperature": temperatures if len(temperatures) > 1 else temperatures[0],
                               "ece_before": expected_calibration_error(softmax(raw), labels),
                               "ece_after": expected_calibration_error(softmax(logits), labels), "bins": ECE_BINS}}
    if unknown is not None:
        results["open_set"] = open_set_report(models, temperatures, softmax(logits), labels, unknown, cfg, windows,
                                              mirror, bf16, float(np.mean([unknown_threshold_of(c) for _, c in loaded])))
    scores = logits
    if fuse_path:
        ids = [c.clip_id for c in ds.clips]
        scores = fuse(logits, ids, read_scores(fuse_path), fuse_weight, fuse_kind, str(fuse_path))
        results["fused"] = {**classification_metrics(scores, labels), "weight": fuse_weight, "scores": str(fuse_path)}
    claim_folder(out, "eval", [*checkpoints, data, fuse_path, unknown])
    write_reports(out, results, scores, labels, cfg["glosses"])
    calibrated = any(t != 1.0 for t in temperatures)
    plot_reliability(softmax(raw), softmax(logits) if calibrated else None, labels, out / "reliability.png",
                     temperatures[0] if len(temperatures) == 1 else None)
    if len(checkpoints) == 1 and committed(checkpoints[0] / "selected") is not None:
        write_model_card(checkpoints[0])  # a fine-tuning run folder: its card gains these figures
    return results


def write_reports(out: Path, results: dict, scores: np.ndarray, labels: np.ndarray, glosses: list[str]) -> None:
    """results.json, results.md, per_class.csv, confusion.png."""
    check_output_folder(out)
    write_json(out / "results.json", results)
    rows = [(name, m) for name, m in (("pose", results["pose"]), ("pose + fused scores", results.get("fused"))) if m]
    lines = ["| model | P-I Top-1 | P-I Top-5 | P-C Top-1 | P-C Top-5 | clips |", "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {m['per_instance_top1']:.2f} | {m['per_instance_top5']:.2f} | {m['per_class_top1']:.2f} | "
              f"{m['per_class_top5']:.2f} | {m['clips']} |" for n, m in rows]
    cal = results.get("calibration")
    if cal:
        lines += ["", f"Calibration ({cal['bins']} bins): ECE {cal['ece_before']:.2f}% with the softmax, "
                      f"{cal['ece_after']:.2f}% with the temperature fitted on dev ({cal['temperature']}); "
                      "reliability.png"]
    o = results.get("open_set")
    if o:
        lines += ["", f"Open set (`{o['unknown_data']}`: {o['unknown_clips']} clips of signs the model does not know): "
                      f"AUROC {o['auroc']:.1f} by the calibrated top-1 probability; at the \"unknown\" threshold "
                      f"{o['threshold']:.3f}, {o['known_kept']:.1f}% of the known clips kept, {o['unknown_rejected']:.1f}% "
                      f"of the unknown ones answered \"unknown\", accuracy {o['known_accuracy_with_unknown']:.2f}% "
                      f"with an \"unknown\" answer counted wrong"]
    (out / "results.md").write_text(f"Split `{results['split']}` of `{results['data']}`\n\n" + "\n".join(lines) + "\n")
    c = scores.shape[1]
    acc1 = per_class_accuracy(topk_hits(scores, labels, 1), labels, c)
    acc5 = per_class_accuracy(topk_hits(scores, labels, 5), labels, c)
    with open(out / "per_class.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "gloss", "clips", "top1", "top5"])
        counts = np.bincount(labels, minlength=c)
        for k in range(c):
            w.writerow([k, glosses[k], counts[k], "" if np.isnan(acc1[k]) else f"{100 * acc1[k]:.2f}",
                        "" if np.isnan(acc5[k]) else f"{100 * acc5[k]:.2f}"])
    plot_confusion(confusion_matrix(scores.argmax(1), labels, c), out / "confusion.png", glosses)


def plot_confusion(m: np.ndarray, path: Path, glosses: list[str] | None = None) -> None:
    """Row-normalised confusion matrix with the glosses on both axes (font shrinking with their number)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m, dtype=float), where=rows > 0)
    n = m.shape[0]
    side = min(max(6.0, 0.16 * n + 3), 24.0)
    fig, ax = plt.subplots(figsize=(side, side * 0.85))
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
    if glosses is not None:
        size = max(3.0, min(9.0, 300 / max(n, 1)))
        names = [g if len(g) <= 24 else g[:23] + "…" for g in glosses]
        ax.set_xticks(range(n), names, rotation=90, fontsize=size)
        ax.set_yticks(range(n), names, fontsize=size)
    ax.set_xlabel("predicted gloss")
    ax.set_ylabel("true gloss")
    ax.set_title("confusion (row-normalised)")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
