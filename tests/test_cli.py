"""The command line: synth writes a dataset that inspect reads; errors come out as messages, not tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from signbest.cli import app

runner = CliRunner()


def test_synth_then_inspect(tmp_path):
    out = tmp_path / "syn"
    r = runner.invoke(app, ["synth", "-o", str(out), "--classes", "4", "--signers", "3", "--per-class", "3"])
    assert r.exit_code == 0, r.output
    assert (out / "manifest.csv").exists() and len(list((out / "poses").glob("*.npz"))) == 12
    r = runner.invoke(app, ["inspect", str(out), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output[r.output.index("{"):])
    assert s["clips"] == 12 and s["classes"] == 4 and s["signers"] == 3 and s["failed"] == 0
    assert s["frames_min"] <= s["frames_median"] <= s["frames_max"]
    assert 0 < s["left_present"] <= 1 and s["body_present"] > 0.9
    r = runner.invoke(app, ["inspect", str(next((out / "poses").glob("*.npz")))])
    assert r.exit_code == 0 and "right_present" in r.output


def test_bad_file_gives_a_message_and_exit_code_2(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    r = subprocess.run([sys.executable, "-m", "signbest", "inspect", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert str(bad) in r.stderr and "Traceback" not in r.stderr


def test_output_paths_that_collide_are_refused_before_any_work(synth_dir, tmp_path):
    """A file where a folder goes, a folder where a file goes, or a labelled manifest as a pool's output:
    one line naming the user's path (never a temporary file), exit 2, and nothing overwritten."""
    afile, adir = tmp_path / "afile", tmp_path / "adir"
    afile.write_text("keep me")
    adir.mkdir()
    manifest = tmp_path / "labelled.csv"
    manifest.write_text((synth_dir / "manifest.csv").read_text().replace("poses/", f"{synth_dir}/poses/"))
    before = manifest.read_text()
    cases = [(["synth", "-o", str(afile)], "is a file"),
             (["resplit", str(manifest), "-o", str(adir)], "is a folder"),
             (["pool", str(synth_dir / "poses"), "--out", str(manifest)], "not written by signbest"),
             (["evaluate", "--checkpoint", str(tmp_path / "none"), "--data", str(manifest), "--out", str(afile)], None)]
    for args, words in cases:
        r = subprocess.run([sys.executable, "-m", "signbest", *args], capture_output=True, text=True)
        assert r.returncode == 2 and "Traceback" not in r.stderr and ".partial-" not in r.stderr, (args, r.stderr)
        assert words is None or words in r.stderr, (args, r.stderr)
    assert manifest.read_text() == before and afile.read_text() == "keep me"
