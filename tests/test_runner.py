"""The WLASL100 runner on synthetic data: rows per seed, mean +- std and paired differences, and a rerun
with other overrides into the same folder stops with the difference instead of reusing old results."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUNNER = Path(__file__).resolve().parents[1] / "experiments" / "wlasl100.py"


def _run(synth_dir, out, *extra):
    cmd = [sys.executable, str(RUNNER), "--data", str(synth_dir / "manifest.csv"), "--size", "tiny",
           "--rows", "scratch", "best", "--seeds", "0", "1", "--out", str(out), "--quiet", *extra]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_seeds_spread_paired_differences_and_refused_reruns(synth_dir, tmp_path):
    r = _run(synth_dir, tmp_path / "runs")
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    assert sorted((x["row"], x["seed"]) for x in results) == [("best", 0), ("best", 1), ("scratch", 0), ("scratch", 1)]
    assert all("val" in x and "dev" in x and x["selected_epoch"] >= 1 for x in results)
    md = (tmp_path / "runs" / "tiny" / "results.md").read_text()
    assert "±" in md and "row minus scratch" in md and "larger than the spread?" in md
    again = _run(synth_dir, tmp_path / "runs")  # the same run: every stage is reused, same numbers
    metrics = lambda rs: sorted((x["row"], x["seed"], json.dumps(x["val"])) for x in rs)
    assert again.returncode == 0
    assert metrics(json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())) == metrics(results)
    other = _run(synth_dir, tmp_path / "runs", "--set", "finetune.lr=0.002")
    assert other.returncode != 0 and "finetune.lr: 0.001 -> 0.002" in other.stderr and "Traceback" not in other.stderr
