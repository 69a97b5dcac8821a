"""The paper's metrics (4.1): Top-1/Top-5, per instance and per class.

Per-instance accuracy is over all test clips. Per-class accuracy is the mean, over the classes
present in the test labels, of each class's accuracy; classes absent from the test set are ignored
(NaN-safe), never counted as zero.
"""
from __future__ import annotations

import numpy as np


def topk_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(N,) bool: the label is among the k highest scores. Ties are broken towards the lower class
    index (a stable sort), so a tie never counts as a hit by luck of ordering."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (top == labels[:, None]).any(1)


def per_class_accuracy(hits: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C,) accuracy of each class; NaN for classes with no test clip."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    correct = np.bincount(labels, weights=hits.astype(float), minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, correct / counts, np.nan)


def classification_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Per-instance and per-class Top-1 / Top-5 in percent."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"scores must be (N, C) with N = {labels.shape[0]} labels, got {scores.shape}")
    out = {}
    for k in (1, 5):
        hits = topk_hits(scores, labels, k)
        out[f"per_instance_top{k}"] = 100.0 * float(hits.mean()) if len(hits) else float("nan")
        out[f"per_class_top{k}"] = 100.0 * float(np.nanmean(per_class_accuracy(hits, labels, scores.shape[1])))
    out["clips"], out["classes_present"] = int(len(labels)), int(len(np.unique(labels)))
    return out


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (labels, pred), 1)
    return m
