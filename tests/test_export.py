"""ONNX export: onnxruntime agrees with torch on synthetic and real clips; --engine onnx gives torch's answers;
every fine-tuned run folder has a model card; exports never replace a user's file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import full_probabilities, shared

pytest.importorskip("onnxruntime", reason="the export tests need the onnx extra (pip install -e '.[onnx]')")
pytest.importorskip("onnxscript", reason="the export tests need the onnx extra (pip install -e '.[onnx]')")


@pytest.fixture(scope="module")
def run(synth_dir, tmp_path_factory):
    from signbest.config import load_config
    from signbest.train.finetune import finetune

    out = tmp_path_factory.mktemp("export") / "ft"
    finetune(load_config("tiny", ["finetune.epochs=3"]), synth_dir / "manifest.csv", out, progress=False)
    return out


@pytest.fixture(scope="module")
def exported(run):
    from signbest.export import export_onnx

    report = export_onnx(run, run / "model.onnx")
    return run / "model.onnx", report


def fp32_probabilities(run: Path, files: list[Path]) -> np.ndarray:
    """The torch model in float32 on the files, through the same preprocessing as `Predictor`."""
    from signbest.data import SignDataset, preprocess, read_manifest, write_manifest
    from signbest.data.manifest import Clip
    from signbest.predict import load_classifier, predict_logits, softmax

    model, cfg = load_classifier(run)
    clips = [Clip(str(i), Path(f).resolve(), cfg["glosses"][0], 0, "x", "") for i, f in enumerate(files)]
    manifest = read_manifest(write_manifest(clips, run.parent / "fp32.csv"))
    ds = SignDataset(manifest, "x", num_frames=cfg["finetune"]["num_frames"], sampling=cfg["finetune"]["sampling"],
                     data=preprocess(manifest, use_cache=False, progress=False))
    return softmax(predict_logits(model, ds, bf16=False))


def onnx_probabilities(path: Path, files: list[Path]) -> np.ndarray:
    from signbest.predict import Predictor

    return full_probabilities(Predictor(path, engine="onnx"), files)


def test_export_matches_torch_on_synthetic_clips(run, exported, synth_dir):
    path, report = exported
    assert report["max_probability_difference"] <= 1e-3 and report["same_top1"]
    files = sorted((synth_dir / "poses").glob("*.npz"))[:24]
    expected = fp32_probabilities(run, files)
    got = onnx_probabilities(path, files)
    assert np.abs(got - expected).max() <= 1e-3
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_export_matches_torch_on_real_clips(run, exported):
    poses = shared("wlasl100", "poses")
    files = sorted(poses.glob("*.npz"))[:16]  # real MediaPipe clips: missing hands, other lengths
    expected = fp32_probabilities(run, files)
    got = onnx_probabilities(exported[0], files)
    assert np.abs(got - expected).max() <= 1e-3
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_the_file_carries_what_a_runtime_needs(run, exported):
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(exported[0])).metadata_props}
    cfg = json.loads((run / "selected" / "config.json").read_text())
    assert json.loads(meta["glosses"]) == cfg["glosses"]
    portable = json.loads(meta["signbest_config"])
    assert portable["finetune"]["num_frames"] == cfg["finetune"]["num_frames"] and "preprocess_version" in portable
    assert str(run.parent) not in meta["signbest_config"] + meta["model_card"]  # no paths of the training machine
    card = json.loads(meta["model_card"])
    assert card["glosses"] == len(cfg["glosses"]) and card["selected_epoch"] == cfg["selected_epoch"]
    graph = onnx.load(str(exported[0])).graph
    assert [i.name for i in graph.input][-1] == "frame_mask" and [o.name for o in graph.output] == ["logits", "probabilities"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # the batch axis is symbolic


def test_dense_embedding_is_the_same_function(run):
    """Export runs every part through the GCNs (no data-dependent shapes); the numbers are the sparse path's."""
    from signbest.export import example_batch
    from signbest.predict import load_classifier

    model, _ = load_classifier(run)
    batch = example_batch(11, clips=4, seed=5)
    with torch.no_grad():
        sparse = model(batch)
        model.encoder.dense_embedding = True
        dense = model(batch)
    assert torch.allclose(sparse, dense, atol=1e-5)


def test_engine_rules(run, exported, tmp_path):
    from signbest.predict import Predictor

    with pytest.raises(ValueError, match="no model.onnx in this folder"):
        Predictor(tmp_path, engine="onnx")
    with pytest.raises(ValueError, match="engine must be one of"):
        Predictor(run, engine="tensorrt")
    with pytest.raises(ValueError, match="with --engine onnx"):
        Predictor(exported[0], engine="torch")
    assert Predictor(run, engine="onnx").engine == "onnx"  # a run folder means its model.onnx
    weights = run / "selected" / "model.safetensors"
    before = weights.stat().st_mtime
    later = exported[0].stat().st_mtime + 60
    os.utime(weights, (later, later))  # the run trained again after the export
    try:
        with pytest.raises(ValueError, match="exported before the run's current model"):
            Predictor(run, engine="onnx")
    finally:
        os.utime(weights, (before, before))
    (tmp_path / "other.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="other.onnx: not a readable ONNX model"):
        Predictor(tmp_path / "other.onnx")


def test_export_never_replaces_a_users_file(run, tmp_path):
    from signbest.export import export_onnx
    from signbest.outputs import OutputError

    mine = tmp_path / "mine.onnx"
    mine.write_text("a user's model")
    with pytest.raises(OutputError, match="not written by signbest"):
        export_onnx(run, mine)
    assert mine.read_text() == "a user's model"
    with pytest.raises(ValueError, match="ends in .onnx"):
        export_onnx(run, tmp_path / "model.bin")
    ours = run / "model.onnx"  # a user's file under the name export uses inside the run folder
    ours.rename(tmp_path / "exported.onnx")
    ours.write_text("a user's model")
    try:
        with pytest.raises(OutputError, match="not written by signbest"):
            export_onnx(run, ours)
        assert ours.read_text() == "a user's model"
    finally:
        (tmp_path / "exported.onnx").replace(ours)


def test_every_finetuned_run_has_a_model_card(run, synth_dir):
    from signbest.eval.evaluate import evaluate

    card = (run / "README.md").read_text()
    cfg = json.loads((run / "selected" / "config.json").read_text())
    assert card.startswith("---\nlibrary_name: signbest")
    assert all(f"`{g}`" in card for g in cfg["glosses"])
    assert f"Epoch {cfg['selected_epoch']} of 3" in card
    assert f"Temperature {cfg['calibration']['temperature']:.3f}, fitted on dev" in card
    assert f"below a calibrated top-1 probability of {cfg['calibration']['unknown_below']:.2f}" in card
    assert "| train |" in card and "made by:" in card
    evaluate(run, synth_dir / "manifest.csv", "test")
    card = (run / "README.md").read_text()
    results = json.loads((run / "eval-test" / "results.json").read_text())
    assert f"| test of `manifest.csv` | {results['pose']['per_instance_top1']:.2f} |" in card
    assert f"On test: {results['calibration']['ece_before']:.1f}% -> {results['calibration']['ece_after']:.1f}%." in card


def test_a_users_readme_is_kept(run, caplog):
    from signbest.model_card import write_model_card

    (run / "README.md").write_text("my notes")
    assert write_model_card(run) is None
    assert (run / "README.md").read_text() == "my notes" and "not replaced" in caplog.text
    (run / "README.md").unlink()
    assert write_model_card(run) == run / "README.md"


def test_an_exported_model_carries_its_card(exported, tmp_path):
    from signbest.predict import Predictor

    card = Predictor(exported[0]).card
    assert card.startswith("# Sign recognition model:") and "## Intended use and limits" in card
    assert str(exported[0].parent.parent) not in card and "made by:" not in card
