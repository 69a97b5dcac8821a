"""Ensembles (several checkpoints, probabilities averaged) and test-time views (windows, mirror)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import full_probabilities


@pytest.fixture(scope="module")
def runs(synth_dir, tmp_path_factory):
    from signbest.config import load_config
    from signbest.train.finetune import finetune

    out = tmp_path_factory.mktemp("ensemble")
    for seed in (0, 1):
        finetune(load_config("tiny", ["finetune.epochs=3", f"finetune.seed={seed}"]), synth_dir / "manifest.csv",
                 out / f"seed{seed}", progress=False)
    return [out / "seed0", out / "seed1"]


def test_an_ensemble_averages_its_members_probabilities(runs, synth_dir):
    from signbest.predict import Predictor

    files = sorted((synth_dir / "poses").glob("*.npz"))[:10]
    members = [full_probabilities(Predictor(r), files) for r in runs]
    together = full_probabilities(Predictor(runs), files)
    assert np.allclose(together, np.mean(members, 0), atol=1e-6)
    assert not np.allclose(members[0], members[1])  # two seeds: two different models


def test_members_must_answer_the_same_question():
    from signbest.predict import check_ensemble

    a = {"glosses": ["x", "y"], "finetune": {"num_frames": 16, "sampling": "window"}}
    with pytest.raises(ValueError, match=r"b: cannot be averaged with a: glosses \['y', 'z'\] are in one only"):
        check_ensemble(["a", "b"], [a, {**a, "glosses": ["x", "z"]}])
    with pytest.raises(ValueError, match="the same glosses in another order"):
        check_ensemble(["a", "b"], [a, {**a, "glosses": ["y", "x"]}])
    with pytest.raises(ValueError, match="finetune.num_frames is 32, a has 16"):
        check_ensemble(["a", "b"], [a, {**a, "finetune": {"num_frames": 32, "sampling": "window"}}])


def test_mirrored_view(runs, synth_dir):
    """The mirrored view swaps the hands and flips the body; mirroring twice is the clip itself; views
    average logits and leave the dataset as they found it."""
    from signbest.data import SignDataset
    from signbest.data.batches import collate
    from signbest.data.dataset import mirror_clip
    from signbest.predict import load_classifier, predict_logits

    model, cfg = load_classifier(runs[0])
    ds = SignDataset(synth_dir / "manifest.csv", "test", num_frames=cfg["finetune"]["num_frames"], progress=False)
    plain = ds[0]
    ds.mirror = True
    mirrored = ds[0]
    ds.mirror = False
    assert torch.equal(mirrored["left"], plain["right"]) and torch.equal(mirrored["left_mask"], plain["right_mask"])
    seen = plain["body_mask"][:, 0]
    assert torch.allclose(mirrored["body"][seen, 0, 0], 1 - plain["body"][seen, 0, 0])  # the nose flips
    twice = mirror_clip(mirror_clip({k: v.numpy() for k, v in plain.items() if k in mirrored}))
    assert all(np.allclose(twice[k], plain[k].numpy(), atol=1e-6) for k in twice)
    both = predict_logits(model, ds, mirror=True, bf16=False)
    one = predict_logits(model, ds, bf16=False)
    ds.mirror = True  # the mirrored view by hand: items straight through the model
    with torch.no_grad():
        flipped = model.eval()(collate([ds[i] for i in range(len(ds))])).numpy()
    assert np.allclose(both, (one + flipped) / 2, atol=1e-5)
    assert np.allclose(predict_logits(model, ds, bf16=False), one, atol=1e-5)  # the views set the flag themselves
    assert not ds.mirror  # ... and leave it off


def test_evaluate_an_ensemble(runs, synth_dir, tmp_path):
    from signbest.eval.evaluate import evaluate

    with pytest.raises(ValueError, match="needs --out"):
        evaluate(runs, synth_dir / "manifest.csv", "test")
    result = evaluate(runs, synth_dir / "manifest.csv", "test", tmp_path / "ens", mirror=True, windows=2)
    saved = json.loads((tmp_path / "ens" / "results.json").read_text())
    assert saved["checkpoint"] == [str(r) for r in runs] and saved["mirror"] and saved["windows"] == 2
    assert 0 <= result["pose"]["per_instance_top1"] <= 100
    assert "of `manifest.csv`, 2 windows" not in (runs[0] / "README.md").read_text()  # not in a member's card


def test_the_models_recipe_sets_the_test_windows_unless_asked_otherwise(synth_dir, tmp_path):
    from signbest.calibration import test_windows_of
    from signbest.config import load_config
    from signbest.eval.evaluate import evaluate
    from signbest.predict import Predictor, load_classifier, predict_logits
    from signbest.calibration import fit_temperature
    from signbest.data import SignDataset
    from signbest.data.protocol import SplitConfig, load_manifest
    from signbest.train.finetune import finetune

    data = synth_dir / "manifest.csv"
    run = tmp_path / "ft"
    finetune(load_config("tiny", ["finetune.epochs=2", "finetune.test_windows=2"]), data, run, progress=False)
    model, cfg = load_classifier(run)
    assert test_windows_of(cfg) == 2 and test_windows_of({"finetune": {}}) == 1  # older models: one window
    assert test_windows_of({"finetune": {}}, cfg) == 2  # an ensemble: its members' largest
    assert Predictor(run).windows == 2 and Predictor(run, windows=1).windows == 1
    assert evaluate(run, data, "test", tmp_path / "e")["windows"] == 2
    assert evaluate(run, data, "test", tmp_path / "e1", windows=1)["windows"] == 1
    # the temperature is fitted on dev with the same two windows
    dev = SignDataset(load_manifest(data, SplitConfig(**cfg["split"])), "dev", num_frames=cfg["finetune"]["num_frames"],
                      sampling=cfg["finetune"]["sampling"], progress=False)
    logits = predict_logits(model, dev, windows=2, bf16=cfg["finetune"]["bf16"])
    assert cfg["calibration"]["temperature"] == pytest.approx(fit_temperature(logits, dev.labels), rel=1e-6)
