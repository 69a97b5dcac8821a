"""Fine-tuning: encoder loading checks the head keys, a tiny run beats chance, batch == single prediction."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from signbest.config import load_config, section
from signbest.eval.evaluate import evaluate
from signbest.predict import predict
from signbest.models.best import BESTPretrainer, ModelConfig
from signbest.models.classifier import HeadConfig, SignClassifier
from signbest.train.finetune import finetune


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    from signbest.data.synth import generate

    data = generate(tmp_path_factory.mktemp("ftdata"), classes=6, signers=6, per_class=18, seed=3, progress=False)
    out = tmp_path_factory.mktemp("ft")
    cfg = load_config("tiny", ["finetune.epochs=20", "finetune.lr=3e-3", "finetune.warmup_epochs=1"])
    return out, finetune(cfg, data, out, progress=False), data.parent


def test_pre_ln_encoders_load_only_into_pre_ln_classifiers():
    pre_ln = section(load_config("tiny", ["model.norm_first=true"]), "model", ModelConfig)
    post_ln = section(load_config("tiny"), "model", ModelConfig)
    pre = BESTPretrainer(pre_ln)
    assert {"encoder.blocks.norm.weight", "encoder.blocks.norm.bias"} <= set(pre.state_dict())  # the final LN
    SignClassifier(pre_ln, 5, HeadConfig()).load_pretrained_encoder(pre.state_dict())
    with pytest.raises(ValueError, match="blocks.norm"):  # block types differ: refused, not half-loaded
        SignClassifier(post_ln, 5, HeadConfig()).load_pretrained_encoder(pre.state_dict())
    with pytest.raises(ValueError, match="blocks.norm"):
        SignClassifier(pre_ln, 5, HeadConfig()).load_pretrained_encoder(BESTPretrainer(post_ln).state_dict())


@pytest.mark.parametrize("head", ["attention", "mlp"])
def test_loading_a_pretrained_encoder_leaves_exactly_the_head_missing(head):
    model_config = section(load_config("tiny"), "model", ModelConfig)
    pre = BESTPretrainer(model_config)
    clf = SignClassifier(model_config, 5, HeadConfig(head))
    clf.load_pretrained_encoder(pre.state_dict())
    for k, v in pre.encoder.state_dict().items():
        torch.testing.assert_close(clf.encoder.state_dict()[k], v)
    assert clf.head_keys() and all(not k.startswith("encoder.") for k in clf.head_keys())
    other = BESTPretrainer(section(load_config("tiny", ["model.part_dim=16"]), "model", ModelConfig))
    with pytest.raises(RuntimeError):
        clf.load_pretrained_encoder(other.state_dict())  # shapes differ
    broken = {k: v for k, v in pre.state_dict().items() if "blocks.layers.0.linear1" not in k}
    with pytest.raises(ValueError, match="missing keys"):
        clf.load_pretrained_encoder(broken)


def test_tiny_finetune_beats_chance_by_a_wide_margin(finetuned):
    out, result, _ = finetuned
    chance = 100 / 6
    assert result["selected_dev_per_instance_top1"] > 2 * chance  # dev: 14 clips, so a wide but coarse margin
    cfg = json.loads((out / "selected" / "config.json").read_text())
    # 4 training people: dev is carved by clip and shares them, so the last epoch is kept (protocol.selection_rule)
    assert len(cfg["glosses"]) == 6 and cfg["selected_epoch"] == 20 and cfg["select_on"] == "last"
    rows = (out / "finetune_metrics.csv").read_text().splitlines()
    assert len(rows) == 21 and (out / "finetune_metrics.png").exists()


def test_evaluate_writes_reports(finetuned, tmp_path):
    out, _, data = finetuned
    res = evaluate(out, data / "manifest.csv", "test", tmp_path / "eval", windows=2)
    assert 0 <= res["pose"]["per_class_top1"] <= 100 and res["pose"]["clips"] > 0
    for name in ("results.json", "results.md", "per_class.csv", "confusion.png"):
        assert (tmp_path / "eval" / name).exists()
    assert "P-I Top-1" in (tmp_path / "eval" / "results.md").read_text()


def test_batch_and_single_predictions_agree(finetuned):
    out, _, data = finetuned
    files = sorted((data / "poses").glob("*.npz"))[:5]
    batch = predict(out, files)
    single = [predict(out, [f])[0] for f in files]
    for b, s in zip(batch, single):
        assert [g for g, _ in b["top"]] == [g for g, _ in s["top"]]
        np.testing.assert_allclose([p for _, p in b["top"]], [p for _, p in s["top"]], rtol=1e-4, atol=1e-6)
    assert all(isinstance(g, str) and not g.isdigit() for g, _ in batch[0]["top"])  # words, not indices


def test_predict_reports_unreadable_files_and_refuses_video(finetuned, tmp_path, monkeypatch):
    out, _, data = finetuned
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    good = sorted((data / "poses").glob("*.npz"))[0]
    mixed = predict(out, [good, bad])
    assert "top" in mixed[0] and "bad.npz" in mixed[1]["error"]
    alone = predict(out, [bad])  # no readable input: still one answer per input, with its own error
    assert len(alone) == 1 and "top" not in alone[0] and "bad.npz" in alone[0]["error"]
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as without the video extra
    with pytest.raises(ValueError, match="signbest\\[video\\]"):
        predict(out, [tmp_path / "clip.mp4"])


VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "wlasl100" / "videos" / "00626.mp4"


def test_predict_extracts_videos_and_reports_bad_ones(finetuned, tmp_path):
    pytest.importorskip("mediapipe", reason="video prediction needs the extra: pip install 'signbest[video]'")
    if not VIDEO.exists():
        pytest.skip("needs ../shared/data/wlasl100/videos (a real sign video)")
    out, _, _ = finetuned
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    res = predict(out, [VIDEO, broken], top=3)
    assert len(res[0]["top"]) == 3 and abs(sum(p for _, p in res[0]["top"])) <= 1.0 + 1e-6
    assert "broken.mp4" in res[1]["error"] and "top" not in res[1]
