"""Pre-training pools: `signbest pool` builds an unlabelled manifest from a folder, keeps evaluation clips
out (same id or same content), lists unreadable files; pre-training runs on it in a fixed number of steps."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np

from conftest import write_holistic_npz
from signbest.config import load_config
from signbest.data import read_manifest
from signbest.data.pool import build_pool
from signbest.train.pretrain import pretrain
from signbest.train.tokenizer import train_tokenizer


def small_pool(synth_dir, tmp_path, n: int, frames=lambda i: 10) -> list:
    """A generated unlabelled pool of `n` clips next to the synthetic manifest: the data list to train on."""
    (tmp_path / "pool").mkdir()
    for i in range(n):
        write_holistic_npz(tmp_path / "pool" / f"c{i}.npz", t=frames(i), seed=i)
    build_pool(tmp_path / "pool", tmp_path / "pool.csv", [synth_dir / "manifest.csv"], progress=False)
    return [synth_dir / "manifest.csv", tmp_path / "pool.csv"]


def test_pool_manifest_excludes_evaluation_clips_and_lists_bad_files(synth_dir, tmp_path):
    folder = tmp_path / "mine" / "session1"
    folder.mkdir(parents=True)
    for i in range(6):
        write_holistic_npz(folder / f"clip{i}.npz", t=12 + i, seed=i)
    (folder / "broken.npz").write_bytes(b"junk")
    evaluation = read_manifest(synth_dir / "manifest.csv")
    test_clip = next(c for c in evaluation.clips if c.split == "test")
    shutil.copy(test_clip.pose_file, folder / "renamed_copy.npz")  # same content, other name
    shutil.copy(next(c for c in evaluation.clips if c.split == "val").pose_file, folder)  # same id
    s = build_pool(tmp_path / "mine", tmp_path / "pool.csv", [synth_dir / "manifest.csv"], progress=False)
    assert s["clips"] == 6 and s["frames"] == sum(12 + i for i in range(6)) and len(s["excluded"]) == 2
    assert len(s["failed"]) == 1 and "broken.npz" in s["failed"][0][1]
    pool = read_manifest(tmp_path / "pool.csv")
    assert not pool.labelled and {c.split for c in pool.clips} == {"train"}
    assert {c.clip_id for c in pool.clips} == {f"session1__clip{i}" for i in range(6)}
    r = subprocess.run([sys.executable, "-m", "signbest", "pool", str(tmp_path / "mine"), "-o", str(tmp_path / "p2.csv"),
                        "--exclude", str(synth_dir / "manifest.csv")], capture_output=True, text=True)
    assert r.returncode == 1 and "broken.npz" in r.stderr and "6 clips" in r.stdout and "2 excluded" in r.stdout


def test_pretraining_on_labelled_data_plus_a_pool_in_fixed_steps(synth_dir, tmp_path):
    data = small_pool(synth_dir, tmp_path, 30, frames=lambda i: 10 + i % 7)
    cfg = load_config("tiny", ["pretrain.epochs=2", "pretrain.steps_per_epoch=5"])
    train_tokenizer(cfg, data, tmp_path / "tok", progress=False)
    res = pretrain(cfg, data, tmp_path / "tok", tmp_path / "pre", progress=False)
    assert res["step"] == 10 and np.isfinite(res["loss"])  # the schedule is in steps, whatever the pool's size


def test_data_fraction_shrinks_labelled_sets_and_keeps_pools_whole(synth_dir, tmp_path):
    from signbest.config import section
    from signbest.data.protocol import SplitConfig
    from signbest.train.pretrain import PretrainConfig, load_pool

    data = small_pool(synth_dir, tmp_path, 24)
    sizes = {}
    for fraction in (1.0, 0.25):
        cfg = load_config("tiny", [f"pretrain.data_fraction={fraction}", "pretrain.heldout_fraction=0"])
        train, _ = load_pool(data, section(cfg, "split", SplitConfig), section(cfg, "pretrain", PretrainConfig), False)
        sizes[fraction] = [len(s) for s in train.sets]
    assert sizes[0.25][1] == sizes[1.0][1] == 24  # the pool whole
    assert sizes[0.25][0] == round(0.25 * sizes[1.0][0]) or abs(sizes[0.25][0] - 0.25 * sizes[1.0][0]) <= 1


def test_a_fraction_tokenizer_reads_exactly_the_clips_pretraining_keeps(synth_dir, tmp_path):
    from signbest.config import section
    from signbest.data.protocol import SplitConfig
    from signbest.models.tokenizer import TokenizerConfig
    from signbest.train.pretrain import PretrainConfig, load_pool
    from signbest.train.tokenizer import tokenizer_sets

    data = small_pool(synth_dir, tmp_path, 8)
    for seed in (0, 3):
        cfg = load_config("tiny", [f"{s}.{k}" for s in ("tokenizer", "pretrain") for k in ("data_fraction=0.5", f"seed={seed}")])
        split = section(cfg, "split", SplitConfig)
        tok = [{c.clip_id for c in ds.clips} for ds in tokenizer_sets(data, split, section(cfg, "tokenizer", TokenizerConfig))]
        train, held = load_pool(data, split, section(cfg, "pretrain", PretrainConfig), False)
        pre = [{c.clip_id for c in ds.clips} for ds in train.sets]
        for i, h in enumerate(held.sets if held else []):
            pre[i] |= {c.clip_id for c in h.clips}
        whole = [{c.clip_id for c in ds.clips} for ds in tokenizer_sets(data, split, TokenizerConfig())]
        assert tok == pre  # the same labelled share (pre-training's held-out clips are part of its share)
        assert len(tok[0]) == round(0.5 * len(whole[0])) and tok[1] == whole[1]  # the pool whole
