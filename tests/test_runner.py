"""The WLASL100 runner on synthetic data: rows per seed, mean +- std and paired differences, and a rerun
with other overrides into the same folder stops with the difference instead of reusing old results."""
from __future__ import annotations

import argparse
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


def test_pool_rows_match_the_labelled_rows_steps_and_results_accumulate(synth_dir, tmp_path):
    import numpy as np

    from conftest import write_holistic_npz
    from signbest.data.pool import build_pool

    sys.path.insert(0, str(RUNNER.parent))
    import wlasl100

    assert wlasl100.parse_row("best+pool*4@25") == ("best", "pool", 4)
    assert wlasl100.parse_row("mask-hand+pool-only") == ("mask-hand", "pool-only", 1)
    assert wlasl100.parse_row("best") == ("best", "", 1)
    (tmp_path / "pool").mkdir()
    for i in range(40):
        write_holistic_npz(tmp_path / "pool" / f"c{i}.npz", t=12 + i % 9, seed=i)
    build_pool(tmp_path / "pool", tmp_path / "pool.csv", [synth_dir / "manifest.csv"], progress=False)
    out = tmp_path / "runs"
    first = subprocess.run([sys.executable, str(RUNNER), "--data", str(synth_dir / "manifest.csv"), "--size", "tiny",
                            "--rows", "scratch", "--seeds", "0", "--out", str(out), "--quiet"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    cmd = [sys.executable, str(RUNNER), "--data", str(synth_dir / "manifest.csv"), "--size", "tiny", "--rows", "best+pool-only",
           "--seeds", "0", "--out", str(out), "--quiet", "--set", "pretrain.epochs=2"]
    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode != 0 and "needs --pool" in refused.stderr and "Traceback" not in refused.stderr
    second = subprocess.run(cmd + ["--pool", str(tmp_path / "pool.csv")], capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    results = json.loads((out / "tiny" / "results.json").read_text())
    # other overrides: the scratch row of the first invocation is left out of the table, not mixed in
    assert [r["row"] for r in results] == ["best+pool-only"] and "other data or overrides" in second.stderr
    pre = json.loads((out / "tiny" / "best+pool-only" / "seed0" / "pretrain" / "fingerprint.json").read_text())
    labelled_steps = wlasl100.steps_per_epoch_of(wlasl100.load_config("wlasl-best", ["pretrain.epochs=2"], base="tiny"),
                                                 [str(synth_dir / "manifest.csv")])
    assert pre["config"]["pretrain"]["steps_per_epoch"] == labelled_steps  # compute matched
    assert results[0]["pretrain_steps"] == 2 * labelled_steps  # recorded for the data-scale plot
    assert [Path(d["path"]).name for d in pre["data"]] == ["pool.csv"]  # pure transfer: no labelled clip
    tok = out / "tiny" / "tokenizer-coupled+pool-only-seed0"
    assert tok.exists() and np.isfinite(results[0]["val"]["per_instance_top1"])
    again = subprocess.run(cmd[:-2] + ["--pool", str(tmp_path / "pool.csv"), "--rows", "scratch", "--set", "pretrain.epochs=2"],
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = sorted(r["row"] for r in json.loads((out / "tiny" / "results.json").read_text()))
    assert rows == ["best+pool-only", "scratch"]  # same settings: rows of both invocations in one table


def test_data_scale_plot_has_a_labelled_curve_and_a_pool_curve(tmp_path):
    from signbest.eval.seeds import fraction_plot

    def res(row, seed, top1):
        return {"row": row, "seed": seed, "label": row, "selected_epoch": 1,
                "val": {"per_instance_top1": top1, "per_instance_top5": 90.0, "per_class_top1": top1, "per_class_top5": 90.0}}
    rows = {"scratch": 20.0, "best@25": 50.0, "best": 60.0, "best+pool": 64.0, "best+pool@25": 55.0,
            "best+pool-only": 58.0, "kmeans+pool": 70.0, "best+pool*2": 71.0}
    results = [res(row, s, top1 + s) for row, top1 in rows.items() for s in (0, 1)]
    results[2]["pretrain_steps"] = 400  # annotated where known
    points = fraction_plot(results, tmp_path / "scale.png")
    assert points["labelled"] == [(25, 50.5), (100, 60.5)]  # mean over seeds, ordered by share
    assert points["pool"] == [(0, 58.5), (25, 55.5), (100, 64.5)]  # the pool alone at 0%
    assert points["pool-budget"] == []  # no share row at the pool's own budget: its ends alone are not a curve
    assert (tmp_path / "scale.png").stat().st_size > 5000  # other targets and step counts are not on it
    results += [res("best+pool*4@25", s, 66.0 + s) for s in (0, 1)]
    points = fraction_plot(results, tmp_path / "scale.png")
    assert points["pool-budget"] == [(0, 58.5), (25, 66.5), (100, 64.5)]  # the full budget at every share
    assert points["pool"] == [(0, 58.5), (25, 55.5), (100, 64.5)]  # the compute-matched curve unchanged


def test_stage_times_come_from_epoch_logs_and_a_fitted_kmeans_has_none(tmp_path):
    sys.path.insert(0, str(RUNNER.parent))
    import wlasl100

    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer_metrics.csv").write_text("epoch,inertia_hand\n1,0.05\n")  # k-means: no train_s
    (tmp_path / "pre").mkdir()
    (tmp_path / "pre" / "pretrain_metrics.csv").write_text("epoch,loss,train_s\n1,4.0,30.5\n2,3.0,29.5\n")
    assert wlasl100.training_seconds(tmp_path / "tok", "tokenizer") is None
    assert wlasl100.training_seconds(tmp_path / "pre", "pretrain") == 60.0
    assert wlasl100.training_seconds(tmp_path / "missing", "finetune") is None


def test_fraction_rows_follow_each_best_row_and_keep_the_pool_whole():
    sys.path.insert(0, str(RUNNER.parent))
    import wlasl100

    rows = wlasl100.fraction_rows(["scratch", "best", "best+pool"], [0.25], ["finetune.lr=0.001"])
    share = ["tokenizer.data_fraction=0.25", "pretrain.data_fraction=0.25"]
    assert rows == [("best@25", ["finetune.lr=0.001", *share]), ("best+pool@25", ["finetune.lr=0.001", *share])]
    args = argparse.Namespace(out="runs", size="small")
    named = lambda row, ov: wlasl100.tokenizer_dir(wlasl100.row_config(row, args, ov, 1), args, row, 1).name  # noqa: E731
    assert named(*rows[0]) == "tokenizer-coupled@25-seed1" and named("best", []) == "tokenizer-coupled-seed1"
    assert [r for r, _ in wlasl100.fraction_rows(["scratch"], [0.5], [])] == ["best@50"]  # as before
    assert wlasl100.share_overrides("best+pool*4@25") == share and wlasl100.share_overrides("best+pool*4") == []
    assert wlasl100.share_overrides("best@50") == ["tokenizer.data_fraction=0.5", "pretrain.data_fraction=0.5"]


def test_each_shared_tokenizer_is_trained_once_and_rows_without_one_start_at_once():
    sys.path.insert(0, str(RUNNER.parent))
    import wlasl100

    jobs = [("scratch", 0, []), ("best", 0, []), ("kmeans", 0, []), ("best", 1, []), ("regression", 0, [])]
    tok = Path("tok")
    dirs = [None, tok / "coupled-0", tok / "kmeans-0", tok / "coupled-1", None]
    jobs.append(("mask-hand", 0, []))  # shares best seed 0's tokenizer
    dirs.append(tok / "coupled-0")
    train, free, waiting = wlasl100.tokenizer_plan(jobs, dirs)
    assert len(train) == 3 and len({dirs[jobs.index(j)] for j in train}) == 3  # one job per distinct folder
    assert free == [("scratch", 0, []), ("regression", 0, [])]
    assert waiting == [j for j, d in zip(jobs, dirs) if d is not None]  # every row needing one waits for it


def test_a_rerun_row_replaces_its_earlier_result_and_keeps_the_others():
    sys.path.insert(0, str(RUNNER.parent))
    import wlasl100

    old = [{"row": "best", "seed": 0, "val": 1}, {"row": "best", "seed": 1, "val": 2}, {"row": "scratch", "seed": 0, "val": 3}]
    merged = wlasl100.merge_result(old, {"row": "best", "seed": 1, "val": 9})
    assert [(r["row"], r["seed"], r["val"]) for r in merged] == [("best", 0, 1), ("best", 1, 9), ("scratch", 0, 3)]
    added = wlasl100.merge_result(merged, {"row": "best@25", "seed": 0, "val": 4})
    assert [r["row"] for r in added] == ["best", "best", "best@25", "scratch"]  # sorted by row, then seed


def test_earlier_results_whose_overrides_now_resolve_to_another_config_are_left_out(tmp_path, caplog):
    sys.path.insert(0, str(RUNNER.parent))
    import wlasl100

    args = argparse.Namespace(out=str(tmp_path), size="tiny", data="d.csv", pool=[], overrides=["finetune.lr=0.001"])
    settings = wlasl100.settings_of(args)
    made = lambda row, seed: wlasl100.row_config(row, args, list(args.overrides), seed)  # noqa: E731
    changed_default = made("scratch", 1)
    changed_default["finetune"]["epochs"] += 7  # as if a shipped default had moved since this row ran
    reworded = made("best", 0)
    reworded["row"]["label"] = "an older wording of the same row"
    old = [{"row": "scratch", "seed": 0, "settings": settings, "config": made("scratch", 0)},
           {"row": "scratch", "seed": 1, "settings": settings, "config": changed_default},
           {"row": "best", "seed": 0, "settings": settings, "config": reworded},
           {"row": "best", "seed": 1, "settings": settings}]  # recorded before configs were: nothing to compare
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "results.json").write_text(json.dumps(old))
    kept = wlasl100.earlier_results(tmp_path / "tiny", args)
    assert [(r["row"], r["seed"]) for r in kept] == [("scratch", 0), ("best", 0), ("best", 1)]
    assert kept[1]["label"] == made("best", 0)["row"]["label"]  # the table shows today's wording
    assert "scratch seed 1" in caplog.text and "config.finetune.epochs" in caplog.text


def test_the_plot_script_reads_missing_step_counts_from_the_run_logs(tmp_path):
    sys.path.insert(0, str(RUNNER.parent))
    import data_scale_plot

    log = tmp_path / "best@25" / "seed1" / "pretrain" / "pretrain_metrics.csv"
    log.parent.mkdir(parents=True)
    log.write_text("epoch,step,loss\n1,10,4.0\n2,20,3.5\n")
    assert data_scale_plot.with_steps({"row": "best@25", "seed": 1}, tmp_path)["pretrain_steps"] == 20
    assert data_scale_plot.with_steps({"row": "best@25", "seed": 1, "pretrain_steps": 7}, tmp_path)["pretrain_steps"] == 7
    assert "pretrain_steps" not in data_scale_plot.with_steps({"row": "scratch", "seed": 1}, tmp_path)  # no pre-training


def test_a_labelled_row_with_a_step_multiple_reads_the_same_clips_for_more_steps(synth_dir):
    sys.path.insert(0, str(RUNNER.parent))
    import pytest
    import wlasl100

    assert wlasl100.parse_row("best*4@25") == ("best", "", 4)
    args = argparse.Namespace(out="runs", size="tiny", data=str(synth_dir / "manifest.csv"), pool=[])
    share = wlasl100.share_overrides("best*4@25")
    cfg = wlasl100.row_config("best*4@25", args, share, 0)
    quarter = wlasl100.steps_per_epoch_of(wlasl100.load_config("wlasl-best", share, base="tiny"), [args.data])
    assert cfg["pretrain"]["steps_per_epoch"] == 4 * quarter and cfg["pretrain"]["data_fraction"] == 0.25
    assert "4x steps" in cfg["row"]["label"] and "25% of the labelled clips" in cfg["row"]["label"]
    assert "50% of the labelled clips" in wlasl100.row_config("best@50", args, wlasl100.share_overrides("best@50"), 0)["row"]["label"]
    assert wlasl100.tokenizer_dir(cfg, args, "best*4@25", 0).name == "tokenizer-coupled@25-seed0"  # best@25's, reused
    with pytest.raises(ValueError, match="needs a row that pre-trains"):
        wlasl100.row_config("scratch*2", args, [], 0)
