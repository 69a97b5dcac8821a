"""Write-safety: no command deletes or replaces a file it did not make, outputs never replace inputs, a
kill at any step of the `selected/` commit leaves a readable model, a shape bomb is refused from its header."""
from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import write_holistic_npz
from signbest import atomic
from signbest.config import load_config
from signbest.outputs import MARKER, OutputError, claim_file, claim_folder, record


def _signbest(*args):
    return subprocess.run([sys.executable, "-m", "signbest", *map(str, args)], capture_output=True, text=True)


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from signbest.data.synth import generate
    from signbest.train.finetune import finetune

    data = generate(tmp_path_factory.mktemp("wsdata"), classes=4, signers=4, per_class=6, seed=1, progress=False)
    out = tmp_path_factory.mktemp("wsrun") / "ft"
    finetune(load_config("tiny", ["finetune.epochs=2"]), data, out, progress=False)
    return out, data


def test_overwrite_never_deletes_a_folder_signbest_did_not_make(tiny_run, tmp_path):
    _, data = tiny_run
    user = tmp_path / "mine"
    (user / "poses").mkdir(parents=True)
    (user / "notes.txt").write_text("my notes")
    (user / "poses" / "a.npz").write_bytes(b"x")
    before = _snapshot(user)
    r = _signbest("finetune", "--config", "tiny", "--data", data, "--out", user, "--overwrite")
    assert r.returncode == 2 and "was not made by signbest" in r.stderr and str(user) in r.stderr, r.stderr
    assert _snapshot(user) == before


def test_overwrite_removes_only_what_signbest_wrote(tiny_run, tmp_path):
    _, data = tiny_run
    out = tmp_path / "run"
    assert _signbest("finetune", "--config", "tiny", "--data", data, "--out", out, "--set", "finetune.epochs=1").returncode == 0
    (out / "notes.txt").write_text("mine")
    r = _signbest("finetune", "--config", "tiny", "--data", data, "--out", out, "--set", "finetune.epochs=2", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert (out / "notes.txt").read_text() == "mine" and (out / MARKER).exists()
    assert json.loads((out / "selected" / "config.json").read_text())["finetune"]["epochs"] == 2


def test_overwrite_refuses_a_run_folder_that_holds_an_input(tiny_run, tmp_path):
    _, data = tiny_run
    out = tmp_path / "run"
    claim_folder(out, "finetune")
    manifest = out / "manifest.csv"  # a name signbest writes, but here it is this command's input
    manifest.write_text(data.read_text().replace("poses/", f"{data.parent}/poses/"))
    r = _signbest("finetune", "--config", "tiny", "--data", manifest, "--out", out, "--overwrite")
    assert r.returncode == 2 and "holds an input" in r.stderr and manifest.exists(), r.stderr


def test_an_output_that_is_an_input_is_refused_naming_both(tiny_run, tmp_path):
    run, data = tiny_run
    clip = write_holistic_npz(tmp_path / "clip.npz")
    before = clip.read_bytes()
    r = _signbest("predict", "--checkpoint", run, "--csv", clip, clip)
    assert r.returncode == 2 and r.stderr.count(str(clip)) >= 2 and "is also an input" in r.stderr, r.stderr
    assert clip.read_bytes() == before
    manifest_text = data.read_text()
    r = _signbest("tokenize", "--tokenizer", tmp_path, "--data", data, "--out", data)
    assert r.returncode == 2 and "is also an input" in r.stderr and data.read_text() == manifest_text, r.stderr
    r = _signbest("resplit", data, "-o", data)
    assert r.returncode == 2 and data.read_text() == manifest_text, r.stderr
    user = tmp_path / "report"
    user.mkdir()
    (user / "thesis.tex").write_text("x")
    r = _signbest("evaluate", "--checkpoint", run, "--data", data, "--split", "test", "--out", user)
    assert r.returncode == 2 and "not made by signbest" in r.stderr and (user / "thesis.tex").exists(), r.stderr


def test_a_file_signbest_wrote_may_be_replaced_an_edited_or_foreign_one_may_not(tiny_run, tmp_path):
    run, data = tiny_run
    out = tmp_path / "p.csv"
    for _ in range(2):  # a rerun replaces its own output
        r = _signbest("predict", "--checkpoint", run, "--csv", out, data.parent / "poses")
        assert r.returncode == 0, r.stderr
    out.write_text(out.read_text() + "my edit\n")
    r = _signbest("predict", "--checkpoint", run, "--csv", out, data.parent / "poses")
    assert r.returncode == 2 and "not written by signbest" in r.stderr and out.read_text().endswith("my edit\n")
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n")
    with pytest.raises(OutputError):
        claim_file(foreign)
    record(foreign)  # what signbest notes after its own writes
    assert claim_file(foreign) == foreign


class Killed(Exception):
    pass


def test_a_kill_at_any_step_of_the_selected_commit_leaves_a_readable_model(tiny_run, tmp_path, monkeypatch):
    """The commit of `selected/` in epoch 2 killed at each of its steps: predict and evaluate read a whole
    model (the old or the new), and a rerun finishes the run."""
    from signbest.eval.evaluate import evaluate
    from signbest.predict import load_classifier, predict
    from signbest.train.finetune import finetune

    _, data = tiny_run
    cfg = load_config("tiny", ["finetune.epochs=2", "finetune.select_on=last"])
    clip = next((data.parent / "poses").glob("*.npz"))
    for step in ("written", "old moved aside", "new in place"):
        out = tmp_path / step.replace(" ", "-")
        seen = []

        def fault(folder, at):
            seen.append((folder.name, at))
            second = sum(s == ("selected", "written") for s in seen) == 2  # epoch 2's commit
            if folder.name == "selected" and at == step and second:
                raise Killed(step)

        monkeypatch.setattr(atomic, "fault_point", fault)
        with pytest.raises(Killed):
            finetune(cfg, data, out, progress=False)
        monkeypatch.setattr(atomic, "fault_point", lambda *_: None)
        _, saved = load_classifier(out)
        assert saved["selected_epoch"] in (1, 2)
        assert "top" in predict(out, [clip])[0]
        assert evaluate(out, data, "test", tmp_path / f"eval-{len(seen)}")["selected_epoch"] == saved["selected_epoch"]
        assert finetune(cfg, data, out, progress=False)["selected_epoch"] == 2
        assert load_classifier(out)[1]["selected_epoch"] == 2


def _npz_declaring(path, shape):
    """An .npz whose 'pose' header declares `shape` (float32) over a few bytes of data: a shape bomb."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("pose.npy", header.getvalue() + b"\0" * 64)
        for name in ("left_hand", "right_hand"):
            buf = io.BytesIO()
            np.save(buf, np.zeros((10, 21, 3), np.float32))
            z.writestr(f"{name}.npy", buf.getvalue())
    return path


def test_a_shape_bomb_is_refused_from_its_header_in_bounded_memory(tmp_path):
    bomb = _npz_declaring(tmp_path / "bomb.npz", (10, 6_000_000, 4))
    assert bomb.stat().st_size < 10_000
    r = subprocess.run([sys.executable, "-c", "import resource, subprocess, sys; "
                        "p = subprocess.run([sys.executable, '-m', 'signbest', 'inspect', sys.argv[1]], capture_output=True, text=True); "
                        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.stderr.write(p.stderr); sys.exit(p.returncode)",
                        str(bomb)], capture_output=True, text=True)
    assert r.returncode == 2 and str(bomb) in r.stderr and "numbers per frame" in r.stderr, r.stderr
    peak_mb = int(r.stdout.strip()) / 1024
    assert peak_mb < 400, f"inspect peaked at {peak_mb:.0f} MB on a {bomb.stat().st_size}-byte file"


def test_a_folder_of_clips_with_a_stray_openpose_file_predicts_every_clip(tiny_run, tmp_path):
    run, _ = tiny_run
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(3):
        write_holistic_npz(folder / f"c{i}.npz", seed=i)
    (folder / "x_keypoints.json").write_text(json.dumps({"people": []}))
    (folder / "notes.txt").write_text("x")
    r = _signbest("predict", "--checkpoint", run, "--csv", tmp_path / "p.csv", folder)
    assert r.returncode == 1 and "x_keypoints.json" in r.stderr and "notes.txt" in r.stderr, r.stderr
    import csv
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert sum(row["gloss1"] != "" for row in rows) == 3 and sum(row["error"] != "" for row in rows) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _signbest("predict", "--checkpoint", run, empty)
    assert r.returncode == 2 and "no pose files or videos" in r.stderr


def test_fusion_scores_with_nan_are_refused(tmp_path):
    from signbest.eval.fusion import read_scores

    (tmp_path / "s.csv").write_text("clip_id,a,b\nx,0.1,nan\n")
    with pytest.raises(ValueError, match="non-finite"):
        read_scores(tmp_path / "s.csv")


def test_a_manifest_signbest_wrote_is_not_replaced_by_another_commands_output(tiny_run, tmp_path):
    """synth's manifest lies in a marked folder under a name signbest writes, but predict and pool write
    other kinds of output: they must not replace it."""
    run, data = tiny_run
    before = data.read_text()
    r = _signbest("predict", "--checkpoint", run, "--csv", data, next((data.parent / "poses").glob("*.npz")))
    assert r.returncode == 2 and "manifest.csv" in r.stderr and data.read_text() == before, r.stderr
    r = _signbest("pool", data.parent / "poses", "-o", data)
    assert r.returncode == 2 and data.read_text() == before, r.stderr


def test_an_output_never_takes_a_reserved_name_in_a_run_folder(tiny_run, tmp_path):
    run, data = tiny_run
    r = _signbest("tokenize", "--tokenizer", tmp_path, "--data", data, "--out", run / "model.safetensors")
    assert r.returncode == 2 and "reserves" in r.stderr and not (run / "model.safetensors").exists(), r.stderr


def test_every_other_writing_command_refuses_its_input_or_a_foreign_folder(tiny_run, tmp_path):
    run, data = tiny_run
    split_file = tmp_path / "asl.json"
    split_file.write_text("[]")
    r = _signbest("manifest", "wlasl", split_file, "--pose-dir", data.parent / "poses", "-o", split_file)
    assert r.returncode == 2 and "is also an input" in r.stderr and split_file.read_text() == "[]", r.stderr
    user = tmp_path / "mine"
    user.mkdir()
    (user / "keep.txt").write_text("x")
    for args in (["synth", "-o", user], ["demo", "--out", user, "--overwrite"], ["train", data, "--out", user, "--overwrite"],
                 ["train-tokenizer", "--config", "tiny", "--data", data, "--out", user, "--overwrite"]):
        r = _signbest(*args)
        assert r.returncode == 2 and "not made by signbest" in r.stderr, (args, r.stderr)
    assert [p.name for p in user.iterdir()] == ["keep.txt"]


def test_clear_keeps_a_users_folder_under_a_name_signbest_uses(tmp_path):
    from signbest.outputs import clear

    run = tmp_path / "run"
    claim_folder(run, "demo")
    (run / "checkpoint").mkdir()
    (run / "data").mkdir()  # the demo writes a marked data/ folder; this one is a user's
    (run / "data" / "mine.csv").write_text("x")
    claim_folder(run / "finetune-best", "finetune")
    (run / "finetune-best" / "notes.txt").write_text("y")
    kept = clear(run)
    assert sorted(kept) == ["data", "finetune-best"] and not (run / "checkpoint").exists()
    assert (run / "data" / "mine.csv").exists() and sorted(p.name for p in (run / "finetune-best").iterdir()) == [MARKER, "notes.txt"]
    claim_folder(run / "finetune-best", "finetune")  # still signbest's: a rerun may write there
