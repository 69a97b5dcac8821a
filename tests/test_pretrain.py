"""Pre-training: loss only on masked valid parts, gradients everywhere, learning, resume, torchrun."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch


from signbest.config import load_config, section
from signbest.models.best import BESTPretrainer, ModelConfig
from signbest.models.masking import NOISE_DIM, MaskingConfig, MUMMasking
from signbest.data.batches import collate
from signbest.data import SignDataset
from signbest.train.pretrain import masked_step, pretrain
from signbest.tokens import load_tokenizer
from signbest.train.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer_dir(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(load_config("tiny"), [synth_dir / "manifest.csv"], out, progress=False)
    return out


def _batch(synth_dir, n=8):
    ds = SignDataset(synth_dir / "manifest.csv", split="train", num_frames=16, train=True, noise_dim=NOISE_DIM,
                     progress=False)
    return collate([ds[i] for i in range(n)])


def test_paper_config_has_the_papers_sizes():
    paper = section(load_config("paper"), "model", ModelConfig)
    assert (paper.dim, paper.layers, paper.heads, paper.ffn) == (1536, 3, 8, 2048)


def test_loss_only_on_masked_parts_with_valid_targets(synth_dir):
    torch.manual_seed(0)
    model = BESTPretrainer(section(load_config("tiny"), "model", ModelConfig)).eval()
    batch = _batch(synth_dir)
    features = model.encoder(batch)
    b, t = batch["frame_mask"].shape
    ids = {p: torch.randint(0, 16, (b, t)) for p in ("left", "right", "body")}
    ids["left"][:, :4] = -1  # missing left hand in the first frames
    part_mask = torch.zeros(b, t, 3, dtype=torch.bool)
    part_mask[:, :6, 0] = True  # 2 valid targets per clip in the left-hand slot
    loss, stats = model.forward_loss(features, part_mask, ids)
    assert stats["n_targets"] == 2 * b
    # Changing a target outside the masked valid positions changes nothing.
    ids2 = {k: v.clone() for k, v in ids.items()}
    ids2["left"][:, 7:] = (ids2["left"][:, 7:] + 1) % 16
    ids2["body"] = (ids2["body"] + 1) % 16
    loss2, _ = model.forward_loss(features, part_mask, ids2)
    torch.testing.assert_close(loss, loss2)
    ids2["left"][:, 4] = (ids2["left"][:, 4] + 1) % 16
    assert not torch.isclose(loss, model.forward_loss(features, part_mask, ids2)[0])


@pytest.mark.parametrize("objective", ["token", "regression"])
def test_every_parameter_gets_a_gradient_and_no_nan(synth_dir, tokenizer_dir, objective):
    cfg = section(load_config("tiny", [f"model.objective={objective}", "model.hand_codes=32", "model.body_codes=16"]),
                  "model", ModelConfig)
    model = BESTPretrainer(cfg)
    batch = _batch(synth_dir)
    batch["left_mask"][0] = False  # a clip with no left hand exercises the missing token
    masking = MUMMasking(MaskingConfig())
    loss, stats, _ = masked_step(model, load_tokenizer(tokenizer_dir), masking, batch, objective)
    assert torch.isfinite(loss) and stats["n_targets"] > 0
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_tiny_pretraining_lowers_the_loss_and_resumes_exactly(synth_dir, tokenizer_dir, tmp_path, monkeypatch):
    # One thread count in both processes and every epoch: a load-aware choice (another process busy on the
    # cores) changes the order of float sums, which is not what this test is about.
    threads = torch.get_num_threads()
    data = [synth_dir / "manifest.csv"]
    cfg = load_config("tiny", ["pretrain.epochs=3"])
    full = pretrain(cfg, data, tokenizer_dir, tmp_path / "full", progress=False)
    rows = np.loadtxt(tmp_path / "full" / "pretrain_metrics.csv", delimiter=",", skiprows=1, usecols=2)
    assert rows[-1] < rows[0]  # training loss falls
    assert (tmp_path / "full" / "pretrain_metrics.png").exists()
    # Kill a run (SIGKILL) once its first checkpoint exists, then resume it in this process.
    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "signbest", "--threads", str(threads), "pretrain", "--config", "tiny", "--data", str(data[0]),
           "--tokenizer", str(tokenizer_dir), "--out", str(cut), "--set", "pretrain.epochs=3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (cut / "checkpoint" / "state.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    done = json.loads((cut / "checkpoint" / "state.json").read_text())["epoch"]
    assert 1 <= done < 3, "the run should have been killed before it finished"
    resumed = pretrain(cfg, data, tokenizer_dir, cut, progress=False)
    assert resumed["epoch"] == 3
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=1e-4)
    np.testing.assert_allclose(resumed["heldout_loss"], full["heldout_loss"], rtol=1e-4)
    assert len(np.atleast_1d(np.loadtxt(cut / "pretrain_metrics.csv", delimiter=",", skiprows=1, usecols=0))) == 3


def test_torchrun_two_processes_match_one(synth_dir, tokenizer_dir, tmp_path):
    overrides = ["--set", "pretrain.epochs=1", "--set", "model.dropout=0", "--set", "model.gcn_dropout=0",
                 "--set", "pretrain.bf16=false"]
    common = ["pretrain", "--config", "tiny", "--data", str(synth_dir / "manifest.csv"), "--tokenizer",
              str(tokenizer_dir), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "signbest", *common, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "signbest", *common, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env)
    assert two.returncode == 0, two.stderr[-2000:]
    read = lambda d: np.genfromtxt(d / "pretrain_metrics.csv", delimiter=",", names=True)
    a, b = read(tmp_path / "one"), read(tmp_path / "two")
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=2e-3)
    np.testing.assert_allclose(b["heldout_loss"], a["heldout_loss"], rtol=2e-3)
