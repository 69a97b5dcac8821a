"""Calibrated confidence: temperature scaling fitted on dev, the expected calibration error, a reliability
diagram, and the "unknown" answer.

A fine-tuned model's softmax is overconfident (label smoothing and selection on dev move it, but not to
the truth). One number fixes most of it (Guo et al. 2017): logits / T, with T chosen to minimise the
negative log-likelihood on dev, so accuracy is unchanged and a probability of 0.8 means right about 80%
of the time. Fine-tuning fits T when it ends and stores it in the selected model's config; `evaluate`
reports the ECE before and after on the split it reads.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

ECE_BINS = 15  # equal-width confidence bins of the expected calibration error


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / T)."""
    return float(-log_softmax(logits / temperature)[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, low: float = 0.05, high: float = 20.0) -> float:
    """The T in [low, high] minimising the NLL: golden-section search on log T (the NLL is unimodal in it)."""
    if len(labels) == 0:
        raise ValueError("fitting a temperature needs at least one labelled clip")
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(80):  # the bracket shrinks by 0.618 per step: far below any meaningful precision
        if nll(logits, labels, math.exp(c)) < nll(logits, labels, math.exp(d)):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    return math.exp((a + b) / 2)


def calibration_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS):
    """Per equal-width confidence bin: (clips, mean confidence, accuracy); empty bins have 0 clips."""
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    mean_conf = np.bincount(which, confidence, bins) / np.maximum(counts, 1)
    accuracy = np.bincount(which, correct.astype(float), bins) / np.maximum(counts, 1)
    return counts, mean_conf, accuracy


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE in percent: the clip-weighted mean gap between confidence and accuracy over the bins."""
    counts, mean_conf, accuracy = calibration_bins(probs, labels, bins)
    return float(100 * (counts * np.abs(mean_conf - accuracy)).sum() / max(counts.sum(), 1))


def plot_reliability(before: np.ndarray, after: np.ndarray | None, labels: np.ndarray, path: Path,
                     temperature: float | None = None) -> None:
    """Accuracy against confidence per bin, before and (with a temperature) after calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfectly calibrated")
    curves = [("softmax", before, "#d62728")]
    if after is not None:
        curves.append((f"T = {temperature:.2f}" if temperature is not None else "calibrated members", after, "#1f77b4"))
    for name, probs, colour in curves:
        counts, mean_conf, accuracy = calibration_bins(probs, labels)
        used = counts > 0
        ece = expected_calibration_error(probs, labels)
        ax.plot(mean_conf[used], accuracy[used], "o-", color=colour, ms=3, label=f"{name} (ECE {ece:.1f}%)")
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"reliability, {len(labels)} clips", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def test_windows_of(*configs: dict) -> int:
    """How many temporal windows the models' recipe averages at test time: an ensemble takes its members'
    largest (1 for models made before `finetune.test_windows` existed)."""
    return max(int((c.get("finetune") or {}).get("test_windows", 1)) for c in configs)


def temperature_of(config: dict) -> float:
    """The model's fitted temperature (1.0: not calibrated)."""
    return float((config.get("calibration") or {}).get("temperature", 1.0))


KNOWN_KEPT = 0.95  # the share of dev's (known) clips that must stay above the "unknown" threshold


def unknown_threshold(dev_probs: np.ndarray, kept: float = KNOWN_KEPT) -> dict:
    """Below which calibrated top-1 probability a clip is answered "unknown": the level that keeps `kept`
    of dev's clips, all of which are signs the model knows (no unknown sign is needed to set it; how well
    it separates unknown signs is measured in experiments/open_set.py)."""
    return {"unknown_below": float(np.quantile(dev_probs.max(1), 1 - kept)), "unknown_score": "max_probability",
            "known_kept_on_dev": kept}


def unknown_threshold_of(config: dict) -> float:
    """The model's "unknown" threshold on the calibrated top-1 probability (0.0: never unknown)."""
    return float((config.get("calibration") or {}).get("unknown_below", 0.0))


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """P(a known clip scores higher than an unknown one), ties counting half, in percent."""
    greater = (known[:, None] > unknown[None, :]).mean()
    equal = (known[:, None] == unknown[None, :]).mean()
    return float(100 * (greater + 0.5 * equal))


def open_set_metrics(known_probs: np.ndarray, known_labels: np.ndarray, unknown_probs: np.ndarray,
                     threshold: float) -> dict:
    """Known-versus-unknown separation by the calibrated top-1 probability (the score the "unknown"
    answer uses), and what the model's threshold does: known clips kept, unknown ones rejected, accuracy
    on known clips when an "unknown" answer counts as wrong."""
    known_top, unknown_top = known_probs.max(1), unknown_probs.max(1)
    kept = known_top >= threshold
    return {"auroc": auroc(known_top, unknown_top), "score": "max_probability", "threshold": threshold,
            "known_kept": float(100 * kept.mean()), "unknown_rejected": float(100 * (unknown_top < threshold).mean()),
            "known_accuracy_with_unknown": float(100 * (kept & (known_probs.argmax(1) == known_labels)).mean()),
            "known_clips": len(known_top), "unknown_clips": len(unknown_top)}
