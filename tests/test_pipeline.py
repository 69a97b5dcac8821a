"""`signbest train`: splits resolved the way the README says, a tiny run end to end, a rerun that reuses
every finished stage."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from signbest.data import read_manifest
from signbest.data.manifest import Manifest
from signbest.pipeline import resolve_splits


@pytest.fixture(scope="module")
def manifest(synth_dir):
    return read_manifest(synth_dir / "manifest.csv")  # 4 signers: train, train, val, test


def test_splits_follow_the_test_signers_then_the_manifest_then_people_then_clips(manifest):
    clips, how = resolve_splits(manifest, ["signer01"])
    assert {c.signer for c in clips if c.split == "test"} == {"signer01"} and "signer01" in how
    clips, how = resolve_splits(manifest, [])
    assert {c.signer for c in clips if c.split == "test"} == {"signer03"} and "'test' split" in how
    no_split = Manifest([replace(c, split="train") for c in manifest.clips], manifest.glosses)
    clips, how = resolve_splits(no_split, [])
    test_people = {c.signer for c in clips if c.split == "test"}
    assert test_people and not test_people & {c.signer for c in clips if c.split == "train"} and "people" in how
    two_people = Manifest([replace(c, split="train", signer=c.signer[-1:] if c.signer[-1] in "01" else "0")
                           for c in manifest.clips], manifest.glosses)
    clips, how = resolve_splits(two_people, [])
    assert sum(c.split == "test" for c in clips) > 0 and "share people" in how
    with pytest.raises(ValueError, match="nobody"):
        resolve_splits(manifest, ["nobody"])


def test_train_runs_every_stage_once_and_a_rerun_reuses_them(synth_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "signbest", "train", str(synth_dir / "manifest.csv"), "--out", str(out),
           "--config", "tiny", "--test-signer", "signer03"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Held-out test: top-1" in r.stdout and "signbest predict --checkpoint" in r.stdout
    assert "[2/4] pre-training" in r.stderr and "min left" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test"]["clips"] == sum(c.signer == "signer03" for c in read_manifest(synth_dir / "manifest.csv").clips)
    stamp = (out / "finetune" / "selected" / "model.safetensors").stat().st_mtime_ns
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and json.loads((out / "summary.json").read_text())["test"] == summary["test"]
    assert (out / "finetune" / "selected" / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not retrained
