"""Temperature scaling, the expected calibration error, and calibration stored with a fine-tuned model."""
from __future__ import annotations

import json

import numpy as np
import pytest

from signbest.calibration import calibration_bins, expected_calibration_error, fit_temperature, nll
from conftest import full_probabilities
from signbest.predict import softmax


def overconfident(n: int = 4000, classes: int = 10, seed: int = 0, scale: float = 4.0):
    """Logits of a model whose true probabilities are softmax(z), reported as softmax(scale * z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, (n, classes))
    true = softmax(z)
    labels = np.array([rng.choice(classes, p=p) for p in true])
    return scale * z, labels


def test_the_fitted_temperature_undoes_the_overconfidence():
    logits, labels = overconfident(scale=4.0)
    temperature = fit_temperature(logits, labels)
    assert abs(temperature - 4.0) < 0.4
    assert nll(logits, labels, temperature) < nll(logits, labels, 1.0)
    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits / temperature), labels)
    assert after < 3.0 < before
    assert (softmax(logits / temperature).argmax(1) == logits.argmax(1)).all()  # accuracy never changes


def test_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])  # bin 0.9: confidence 0.9, accuracy 0.5; bin 0.6: 0.6, 1.0
    assert abs(expected_calibration_error(probs, labels) - 100 * (2 * 0.4 + 2 * 0.4) / 4) < 1e-9
    counts, _, _ = calibration_bins(probs, labels)
    assert counts.sum() == 4 and (counts > 0).sum() == 2
    assert expected_calibration_error(np.eye(3), np.arange(3)) == 0.0


def test_finetuning_stores_a_temperature_and_evaluate_reports_calibration(synth_dir, tmp_path):
    from signbest.config import load_config
    from signbest.eval.evaluate import evaluate
    from signbest.predict import Predictor
    from signbest.train.finetune import finetune

    out = tmp_path / "ft"
    finetune(load_config("tiny", ["finetune.epochs=3"]), synth_dir / "manifest.csv", out, progress=False)
    config = json.loads((out / "selected" / "config.json").read_text())
    cal = config["calibration"]
    assert cal["fitted_on"] == "dev" and 0.05 <= cal["temperature"] <= 20
    assert cal["dev_nll_after"] <= cal["dev_nll_before"] + 1e-9  # what the temperature minimises
    predictor = Predictor(out)
    assert predictor.temperatures == [cal["temperature"]]
    files = sorted((synth_dir / "poses").glob("*.npz"))[:6]
    calibrated = full_probabilities(predictor, files)
    predictor.temperatures = [1.0]
    plain = full_probabilities(predictor, files)
    # The answers use the temperature: T < 1 sharpens every clip's top probability, T > 1 softens it.
    sharper = calibrated.max(1) > plain.max(1)
    assert sharper.all() if cal["temperature"] < 1 else (~sharper).all()
    assert (calibrated.argmax(1) == plain.argmax(1)).all()
    result = evaluate(out, synth_dir / "manifest.csv", "test")
    assert result["calibration"]["temperature"] == cal["temperature"]
    assert {"ece_before", "ece_after"} <= set(result["calibration"])
    assert (out / "eval-test" / "reliability.png").stat().st_size > 5000
    assert "ECE" in (out / "eval-test" / "results.md").read_text()
    # Open set: clips of other signs (another synthetic set), then a manifest that holds a known sign.
    from signbest.data.synth import generate

    generate(tmp_path / "other", classes=4, signers=2, per_class=2, seed=11, progress=False)
    known = set(config["glosses"])
    assert not known & {row.split(",")[2] for row in (tmp_path / "other" / "manifest.csv").read_text().splitlines()[1:]}
    opened = evaluate(out, synth_dir / "manifest.csv", "test", tmp_path / "open", unknown=tmp_path / "other" / "manifest.csv")
    o = opened["open_set"]
    assert o["unknown_clips"] == 8 and o["known_clips"] == result["pose"]["clips"] and 0 <= o["auroc"] <= 100
    assert o["threshold"] == cal["unknown_below"] and 0 <= o["unknown_rejected"] <= 100
    assert o["known_accuracy_with_unknown"] <= result["pose"]["per_instance_top1"] + 1e-9  # unknown counts wrong
    assert "Open set" in (tmp_path / "open" / "results.md").read_text()
    with pytest.raises(ValueError, match="clips of signs the model knows"):
        evaluate(out, synth_dir / "manifest.csv", "test", tmp_path / "open2", unknown=synth_dir / "manifest.csv")


def test_auroc_by_hand():
    from signbest.calibration import auroc

    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 100.0
    assert auroc(np.array([0.5]), np.array([0.5])) == 50.0  # a tie counts half
    assert auroc(np.array([0.1, 0.9]), np.array([0.5])) == 50.0


def test_the_unknown_threshold_keeps_95_percent_of_dev():
    from signbest.calibration import unknown_threshold

    probs = softmax(np.random.default_rng(0).normal(0, 2, (1000, 8)))
    found = unknown_threshold(probs)
    kept = (probs.max(1) >= found["unknown_below"]).mean()
    assert abs(kept - 0.95) < 0.002 and found["unknown_score"] == "max_probability"


def test_predictions_say_unknown_below_the_threshold(synth_dir, tmp_path):
    from signbest.config import load_config
    from signbest.predict import Predictor
    from signbest.train.finetune import finetune

    out = tmp_path / "ft"
    finetune(load_config("tiny", ["finetune.epochs=2"]), synth_dir / "manifest.csv", out, progress=False)
    threshold = json.loads((out / "selected" / "config.json").read_text())["calibration"]["unknown_below"]
    predictor = Predictor(out)
    assert predictor.unknown_below == threshold
    files = sorted((synth_dir / "poses").glob("*.npz"))[:8]
    results = predictor(files)
    assert all(r["unknown"] == (r["top"][0][1] < threshold) for r in results)
    predictor.unknown_below = 1.01  # nothing is that sure
    assert all(r["unknown"] for r in predictor(files))
