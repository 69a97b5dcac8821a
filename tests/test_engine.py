"""The one engine: a kill at any step of a checkpoint save resumes bit for bit, torchrun with 2 processes
matches 1 for every stage, non-finite steps are skipped then stop the run, schedules are what they say."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from signbest import atomic
from signbest.config import load_config
from signbest.train.engine import Schedule, TrainingError
from signbest.train.finetune import finetune
from signbest.train.pretrain import pretrain
from signbest.train.tokenizer import train_tokenizer


class Killed(BaseException):
    """Stands for SIGKILL: nothing in signbest catches it."""


@pytest.fixture(scope="module")
def tok_dir(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("engine_tok")
    train_tokenizer(load_config("tiny"), [synth_dir / "manifest.csv"], out, progress=False)
    return out


def _runner(stage, synth_dir, tok_dir):
    data = synth_dir / "manifest.csv"
    cfg = load_config("tiny", [f"{stage}.epochs=2"])
    return {"tokenizer": lambda out: train_tokenizer(cfg, [data], out, progress=False),
            "pretrain": lambda out: pretrain(cfg, [data], tok_dir, out, progress=False),
            "finetune": lambda out: finetune(cfg, data, out, None, progress=False)}[stage]


def _weights(folder):
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("stage", ["tokenizer", "pretrain", "finetune"])
def test_a_kill_at_any_step_of_a_save_resumes_bit_for_bit(stage, synth_dir, tok_dir, tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    run = _runner(stage, synth_dir, tok_dir)
    points = []
    monkeypatch.setattr(atomic, "fault_point", lambda folder, step: points.append((folder.name, step)))
    full = run(tmp_path / "full")
    assert len(points) >= 4 and {"written", "new in place", "old moved aside"} <= {s for _, s in points}
    for k, (folder, step) in enumerate(points):
        calls = iter(range(len(points)))

        def fault(_folder, _step):
            if next(calls) == k:
                raise Killed(f"{_folder.name}: {_step}")

        out = tmp_path / f"killed{k}"
        monkeypatch.setattr(atomic, "fault_point", fault)
        with pytest.raises(Killed):
            run(out)
        monkeypatch.setattr(atomic, "fault_point", lambda *_: None)
        resumed = run(out)  # a rerun of the same command
        assert torch.get_num_threads() == threads
        assert resumed["epoch"] == 2 and resumed["loss"] == full["loss"], (folder, step)
        for name in ("checkpoint",) + (("selected",) if stage == "finetune" else ()):
            a, b = _weights(tmp_path / "full" / name), _weights(out / name)
            assert all(torch.equal(a[key], b[key]) for key in a), f"{name} differs after a kill at {folder}: {step}"
        rows = (out / f"{stage}_metrics.csv").read_text().splitlines()
        assert len(rows) == 3, rows  # header + one row per epoch, none twice
        assert not list(out.glob(".partial-*")) and not list(out.glob("*.old"))


def _torchrun(args, out, nproc):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] \
        if nproc > 1 else [sys.executable]
    r = subprocess.run([*launcher, "-m", "signbest", *args, "--out", str(out)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return np.genfromtxt(out / f"{args[0].split('-')[-1]}_metrics.csv", delimiter=",", names=True)


@pytest.mark.parametrize("stage", ["train-tokenizer", "finetune"])
def test_torchrun_two_processes_match_one(stage, synth_dir, tmp_path):
    sets = ["model.dropout=0", "model.gcn_dropout=0", "head.dropout=0", "finetune.bf16=false", "finetune.epochs=2",
            "tokenizer.epochs=2", "tokenizer.batch_size=512"]
    args = [stage, "--config", "tiny", "--data", str(synth_dir / "manifest.csv")] + [x for s in sets for x in ("--set", s)]
    one, two = _torchrun(args, tmp_path / "one", 1), _torchrun(args, tmp_path / "two", 2)
    # the tokenizer's loss is a mean over joints, weighted here by frames: near, not equal
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=2e-3 if stage == "finetune" else 2e-2)
    if stage == "finetune":
        np.testing.assert_allclose(two["dev_per_instance_top1"], one["dev_per_instance_top1"], atol=100 / 12)
    else:
        np.testing.assert_allclose(two["hand_usage"], one["hand_usage"], atol=0.1)


def test_diverging_training_skips_bad_steps_then_stops_and_never_saves_nan(synth_dir, tmp_path):
    cfg = load_config("tiny", ["finetune.lr=1e12", "finetune.grad_clip=0", "finetune.epochs=30"])
    with pytest.raises(TrainingError, match="non-finite"):
        finetune(cfg, synth_dir / "manifest.csv", tmp_path / "ft", None, progress=False)
    for folder in (tmp_path / "ft" / "checkpoint", tmp_path / "ft" / "selected"):
        if (folder / "model.safetensors").exists():  # what was saved before the divergence is finite
            assert all(torch.isfinite(v).all() for v in _weights(folder).values() if v.is_floating_point())


def test_schedules():
    lin = Schedule("linear", warmup=10, total=110)
    assert lin.factor(0) == pytest.approx(0.1) and lin.factor(9) == 1.0 and lin.factor(60) == pytest.approx(0.5)
    assert lin.factor(110) == 0.0
    step = Schedule("step", warmup=1, every=5, gamma=0.1)
    assert [round(step.factor(s), 6) for s in (0, 4, 5, 10)] == [1.0, 1.0, 0.1, 0.01]
    cos = Schedule("cosine", total=100)
    assert cos.factor(0) == 1.0 and cos.factor(50) == pytest.approx(0.5) and cos.factor(100) == pytest.approx(0.0)


def test_one_thread_policy_the_users_count_or_the_cores_never_refitted(monkeypatch, synth_dir, tmp_path):
    import torch

    from signbest import runtime
    from signbest.config import load_config
    from signbest.train.finetune import finetune

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(runtime, "available_cores", lambda: 4)
        assert runtime.set_threads() == 4 and runtime.set_threads(processes=2) == 2  # the share of the cores
        assert runtime.set_threads(threads=3) == 3  # the user's --threads
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert runtime.set_threads() == 2  # or the environment's
        runtime.set_threads(threads=1)
        finetune(load_config("tiny", ["finetune.epochs=1"]), synth_dir / "manifest.csv", tmp_path / "ft", progress=False)
        assert torch.get_num_threads() == 1  # training keeps the count it was given
    finally:
        runtime.set_threads(threads=before)


def test_a_moving_average_and_the_regularisers_resume_bit_for_bit_and_the_average_is_what_selection_saves(synth_dir, tmp_path, monkeypatch):
    from signbest.train.finetune import FinetuneStage, encoder_depth

    cfg = load_config("tiny", ["finetune.epochs=2", "finetune.ema=0.9", "finetune.layer_decay=0.7", "finetune.select_on=last",
                               "finetune.cutmix=0.5", "finetune.drop_path=0.2", "finetune.speed=0.2", "finetune.joint_drop=0.1"])
    data = synth_dir / "manifest.csv"
    full = finetune(cfg, data, tmp_path / "full", None, progress=False)
    end_epoch = FinetuneStage.end_epoch

    def killed_at_the_second(self, result, out):
        if result["epoch"] == 2:
            raise Killed("epoch 2")
        end_epoch(self, result, out)

    monkeypatch.setattr(FinetuneStage, "end_epoch", killed_at_the_second)
    with pytest.raises(Killed):
        finetune(cfg, data, tmp_path / "killed", None, progress=False)
    monkeypatch.setattr(FinetuneStage, "end_epoch", end_epoch)
    resumed = finetune(cfg, data, tmp_path / "killed", None, progress=False)  # from epoch 1's checkpoint
    assert resumed["loss"] == full["loss"] and resumed["dev_per_instance_top1"] == full["dev_per_instance_top1"]
    selected, again = _weights(tmp_path / "full" / "selected"), _weights(tmp_path / "killed" / "selected")
    assert all(torch.equal(selected[k], again[k]) for k in selected)
    average = load_file(tmp_path / "full" / "checkpoint" / "ema.safetensors")
    raw = _weights(tmp_path / "full" / "checkpoint")
    assert all(torch.equal(selected[k], average[f"module.{k}"]) for k in selected)  # the average is saved
    assert not all(torch.equal(selected[k], raw[k]) for k in selected if k.endswith("weight"))  # not the raw weights
    assert int(average["n_averaged"]) == full["step"]
    assert [encoder_depth(n, 3) for n in ("encoder.hand_gcn.out.weight", "encoder.blocks.layers.0.linear1.weight",
                                          "encoder.blocks.layers.2.norm1.bias", "classifier.1.weight")] == [0, 1, 3, 4]
