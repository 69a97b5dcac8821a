"""`signbest demo` end to end at the tiny size, and every shipped experiment config."""
from __future__ import annotations

import json
import os

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


def test_every_shipped_config_fine_tunes_with_the_recipe_dev_chose():
    """The protocol's recipe (cosine, 5 warm-up epochs, label smoothing 0.1) everywhere but in the configs
    named for the paper's step recipe; the learning rates chosen on dev per size."""
    for name in shipped_configs():
        f = section(load_config(name), "finetune", FinetuneConfig)
        if name.endswith("-step"):
            assert (f.schedule, f.warmup_epochs, f.label_smoothing) == ("step", 0, 0), name
        else:
            assert f.schedule == "cosine" and f.label_smoothing == 0.1, name
            assert f.warmup_epochs == (0.5 if name == "tiny" else 5), name
    small = section(load_config("small"), "finetune", FinetuneConfig)
    assert (small.lr, small.epochs, small.test_windows) == (5e-4, 60, 3)  # 60 epochs, 3 test windows: dev's pick
    assert load_config("small")["pretrain"]["epochs"] == 80  # twice 0.2.0's pre-training steps: dev's pick too
    step = section(load_config("small-step"), "finetune", FinetuneConfig)
    assert (step.epochs, step.test_windows) == (30, 1)  # the paper's step recipe: x0.1 every 10 of 30 epochs
    assert section(load_config("paper"), "finetune", FinetuneConfig).lr == 1e-4
    assert section(load_config("wlasl-scratch", base="small"), "finetune", FinetuneConfig).lr == 5e-4


def test_demo_data_has_few_labels_a_pool_and_a_large_test_set_of_unseen_people(tmp_path):
    from signbest.data import read_manifest
    from signbest.data.synth import generate_demo

    labelled, pool = generate_demo(tmp_path, classes=4, seed=0, progress=False)
    m, p = read_manifest(labelled), read_manifest(pool)
    people = {s: {c.signer for c in m.clips if c.split == s} for s in ("train", "dev", "test")}
    people["pool"] = {c.signer for c in p.clips}
    assert not p.labelled and len(p.clips) == 4 * 40
    assert sum(c.split == "train" for c in m.clips) == 4 * 3 and sum(c.split == "test" for c in m.clips) == 4 * 30
    assert all(not (people[a] & people[b]) for a in people for b in people if a < b)  # nobody in two roles


def test_demo_runs_end_to_end_at_tiny_size_and_its_table_does_not_depend_on_threads(tmp_path):
    """Two threads train the scratch model in a second process; one trains both in turn: every model is
    trained on one thread either way, so the numbers are the same to the last bit."""
    import torch

    roles = (("train", 2, 1), ("dev", 1, 1), ("test", 1, 2), ("pool", 3, 1))
    before, switch = torch.get_num_threads(), os.environ.get("SIGNBEST_BF16")
    try:
        torch.set_num_threads(2)
        res = run_demo(tmp_path / "demo", config="tiny", classes=4, progress=False, roles=roles)
        assert torch.get_num_threads() == 2  # given back
        torch.set_num_threads(1)
        serial = run_demo(tmp_path / "demo-1", config="tiny", classes=4, progress=False, roles=roles)
    finally:
        torch.set_num_threads(before)
    assert serial["runs"] == res["runs"] and "(2 at once)" in res["note"] and "(1 at once)" in serial["note"]
    assert os.environ.get("SIGNBEST_BF16") == switch  # the demo's fp32 switch is its own, given back
    assert set(res["runs"]) == {"scratch", "best"}
    for r in res["runs"].values():
        assert 0 <= r["per_instance_top1"] <= 100 and r["clips"] > 0
    out = tmp_path / "demo"
    for name in ("results.md", "results.json", "results.png", "tokens.png", "tokenizer/checkpoint/model.safetensors",
                 "pretrain/checkpoint/model.safetensors", "pretrain/pretrain_metrics.png",
                 "finetune-best/selected/model.safetensors", "finetune-best/fingerprint.json",
                 "finetune-scratch/finetune_metrics.png", "finetune-best/eval-test/confusion.png"):
        assert (out / name).exists(), name
    assert json.loads((out / "finetune-best" / "selected" / "config.json").read_text())["pretrained"]
    assert "BEST (coupled tokenizer + MUM)" in (out / "results.md").read_text()


def test_config_show_prints_every_value_in_force():
    from signbest.config import effective_config

    cfg = effective_config("small", ["finetune.lr=0.001"])
    assert cfg["finetune"]["lr"] == 0.001 and cfg["finetune"]["schedule"] == "cosine"
    assert cfg["finetune"]["select_on"] == "dev" and cfg["model"]["part_dim"] == 128  # defaults filled in
    assert set(cfg) >= {"tokenizer", "model", "masking", "pretrain", "head", "finetune", "split"}
