"""`signbest demo` end to end at the tiny size, and every shipped experiment config."""
from __future__ import annotations

import json

from signbest.config import load_config, section, shipped_configs
from signbest.demo import run_demo
from signbest.models.best import ModelConfig
from signbest.models.classifier import HeadConfig
from signbest.models.masking import MaskingConfig
from signbest.models.tokenizer import TokenizerConfig
from signbest.train.finetune import FinetuneConfig
from signbest.train.pretrain import PretrainConfig


def test_every_shipped_config_builds_every_section():
    for name in shipped_configs():
        cfg = load_config(name)
        for key, cls in (("tokenizer", TokenizerConfig), ("model", ModelConfig), ("masking", MaskingConfig),
                         ("pretrain", PretrainConfig), ("finetune", FinetuneConfig), ("head", HeadConfig)):
            section(cfg, key, cls)
        if name.startswith("wlasl-"):
            assert {"label", "pretrain"} <= set(cfg["row"])
    small_row = load_config("wlasl-mask-hand", base="small")
    assert small_row["model"]["part_dim"] == 128 and small_row["masking"]["parts"] == "hand"


def test_demo_runs_end_to_end_at_tiny_size_with_threads_held_whatever_the_load(tmp_path, monkeypatch):
    import torch

    from signbest import runtime

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "available_cores", lambda: 2)
    runtime.set_threads()  # signbest's own, load-aware choice, as the CLI makes it

    def no_measuring(window=0.2):
        raise AssertionError("the demo's table must not depend on the load")
    monkeypatch.setattr(runtime, "busy_cores_elsewhere", no_measuring)
    try:
        res = run_demo(tmp_path / "demo", config="tiny", classes=4, signers=3, per_class=6, progress=False)
        assert res["threads"] == 2 and runtime._LOAD_AWARE_SHARE == 2  # held during the demo, restored after
    finally:
        runtime.set_threads(threads=before)
    assert set(res["runs"]) == {"scratch", "best"}
    for r in res["runs"].values():
        assert 0 <= r["per_instance_top1"] <= 100 and r["clips"] > 0
    out = tmp_path / "demo"
    for name in ("results.md", "results.json", "tokens.png", "tokenizer/checkpoint/model.safetensors",
                 "pretrain/checkpoint/model.safetensors", "pretrain/pretrain_metrics.png",
                 "finetune-best/selected/model.safetensors", "finetune-best/fingerprint.json",
                 "finetune-scratch/finetune_metrics.png", "finetune-best/eval-test/confusion.png"):
        assert (out / name).exists(), name
    assert json.loads((out / "finetune-best" / "selected" / "config.json").read_text())["pretrained"]
    assert "BEST (coupled tokenizer + MUM)" in (out / "results.md").read_text()
