"""Metrics against hand-computed cases, and fusion arithmetic."""
from __future__ import annotations

import math

import numpy as np
import pytest

from signbest.eval.fusion import fuse, read_scores, softmax
from signbest.eval.metrics import classification_metrics, per_class_accuracy, topk_hits


def test_hand_computed_metrics_with_an_absent_class():
    # 4 classes; class 3 never appears in the labels and must not count in per-class accuracy.
    scores = np.array([[0.9, 0.05, 0.03, 0.02],   # label 0: top-1 hit
                       [0.1, 0.2, 0.6, 0.1],      # label 0: miss (top-2 is class 1, top-3 class 0)
                       [0.1, 0.7, 0.1, 0.1],      # label 1: hit
                       [0.5, 0.2, 0.2, 0.1]])     # label 2: miss
    labels = np.array([0, 0, 1, 2])
    m = classification_metrics(scores, labels)
    assert m["per_instance_top1"] == pytest.approx(50.0)
    # per class: class 0 = 1/2, class 1 = 1, class 2 = 0 -> mean 50.0 over the 3 present classes
    assert m["per_class_top1"] == pytest.approx(50.0)
    assert m["per_instance_top5"] == pytest.approx(100.0) and m["per_class_top5"] == pytest.approx(100.0)
    acc = per_class_accuracy(topk_hits(scores, labels, 1), labels, 4)
    assert math.isnan(acc[3]) and acc[1] == 1.0


def test_per_class_differs_from_per_instance_on_unbalanced_data():
    scores = np.eye(3)[[0, 0, 0, 1, 0]]  # predicts class 0 except one clip of class 1
    labels = np.array([0, 0, 0, 1, 2])
    m = classification_metrics(scores, labels)
    assert m["per_instance_top1"] == pytest.approx(80.0)
    assert m["per_class_top1"] == pytest.approx(100 * (1 + 1 + 0) / 3)


def test_ties_do_not_count_as_hits_by_luck():
    scores = np.zeros((2, 6))  # every class tied: the stable order ranks class 0..4 first
    labels = np.array([0, 5])
    assert topk_hits(scores, labels, 1).tolist() == [True, False]
    assert topk_hits(scores, labels, 5).tolist() == [True, False]


def test_fusion_sums_probabilities_aligned_by_clip_id(tmp_path):
    pose = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    other = np.array([[0.1, 0.1, 0.8], [0.0, 1.0, 0.0]])
    path = tmp_path / "rgb.csv"
    path.write_text("clip_id,c0,c1,c2\nb,0.0,1.0,0.0\na,0.1,0.1,0.8\n")  # other order than the pose clips
    fused = fuse(pose, ["a", "b"], read_scores(path), weight=0.5, other_kind="probs")
    np.testing.assert_allclose(fused, softmax(pose) + 0.5 * other)
    np.savez(tmp_path / "rgb.npz", clip_ids=np.array(["a", "b"]), scores=np.log(other + 1e-9))
    fused2 = fuse(pose, ["a", "b"], read_scores(tmp_path / "rgb.npz"), 0.5, "logits")
    np.testing.assert_allclose(fused2, fused, atol=1e-6)


def test_fusion_errors_are_clear(tmp_path):
    pose = np.zeros((2, 3))
    with pytest.raises(ValueError, match="no scores for 1 of 2 clips"):
        fuse(pose, ["a", "zzz"], (["a", "b"], np.zeros((2, 3))), 1.0, source="rgb.csv")
    with pytest.raises(ValueError, match="4 classes, but the pose model has 3"):
        fuse(pose, ["a", "b"], (["a", "b"], np.zeros((2, 4))), 1.0)
    (tmp_path / "x.csv").write_text("clip_id,c0\na,1\nb,1,2\n")
    with pytest.raises(ValueError, match="different numbers of columns"):
        read_scores(tmp_path / "x.csv")
