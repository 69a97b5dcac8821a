"""One-line errors naming the file for the weak answers of the hostile-input round, and warnings for the
oddities a user would want to hear about."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from conftest import write_holistic_npz
from signbest.checkpoint import CheckpointError, load_checkpoint, load_state, save_weights
from signbest.config import load_config
from signbest.data import read_manifest


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and len(text) < 400, text
    return text


def test_config_files_with_bad_json_or_encoding_name_the_file(tmp_path):
    (tmp_path / "bad.json").write_text('{"finetune": {"lr": 1e-3,}}')
    with pytest.raises(ValueError) as err:
        load_config(tmp_path / "bad.json")
    assert str(tmp_path / "bad.json") in _one_line(err) and "line 1" in str(err.value)
    (tmp_path / "latin.json").write_bytes('{"description": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        load_config(tmp_path / "latin.json")
    with pytest.raises(ValueError, match="--set finetune.lr=5e-4"):
        load_config("tiny", ["finetune.lr"])


def test_manifest_oddities_are_refused_or_warned(tmp_path, caplog):
    write_holistic_npz(tmp_path / "a.npz")
    (tmp_path / "nul.csv").write_text("clip_id,pose_file,gloss,split\na,a.npz,hi,tr\x00ain\n")
    with pytest.raises(ValueError) as err:
        read_manifest(tmp_path / "nul.csv")
    assert "line 2" in _one_line(err) and "NUL" in str(err.value)
    (tmp_path / "gaps.csv").write_text("clip_id,pose_file,gloss,label,split\na,a.npz,x,0,train\nb,a.npz,y,7,val\n")
    with caplog.at_level(logging.WARNING):
        m = read_manifest(tmp_path / "gaps.csv")
    assert m.num_classes == 8 and "labels 1-6 have no clip" in caplog.text
    assert "listed in two splits" in caplog.text  # the val clip is the train clip's file under another id


def test_a_manifest_given_twice_is_refused(synth_dir):
    from signbest.data.protocol import split_sets

    with pytest.raises(ValueError, match="given twice"):
        split_sets([synth_dir / "manifest.csv", synth_dir / "manifest.csv"], "train")


def test_weights_that_do_not_fit_get_one_line_with_the_cause(tmp_path):
    save_weights(torch.nn.Linear(4, 3), tmp_path / "w", {"stage": "finetune"})
    from safetensors.torch import load_file
    weights = load_file(tmp_path / "w" / "model.safetensors")
    with pytest.raises(CheckpointError) as err:
        load_state(torch.nn.Linear(4, 5), weights, tmp_path / "w", "classifier of 5 glosses")
    text = _one_line(err)
    assert str(tmp_path / "w") in text and "2 of another shape (e.g. bias (3,) in the file, (5,) expected)" in text


def test_a_checkpoint_without_its_state_is_not_silently_restarted(tmp_path):
    model = torch.nn.Linear(2, 2)
    save_weights(model, tmp_path / "ck", {"stage": "finetune"})  # weights and config, no state.json
    with pytest.raises(CheckpointError, match="no state.json"):
        load_checkpoint(tmp_path / "ck", model, torch.optim.Adam(model.parameters()))


def test_a_pretraining_folder_given_as_a_tokenizer_is_named(tmp_path):
    from signbest.tokens import load_tokenizer

    save_weights(torch.nn.Linear(2, 2), tmp_path / "pre", {"stage": "pretrain"})
    with pytest.raises(ValueError) as err:
        load_tokenizer(tmp_path / "pre")
    assert "not a tokenizer folder" in _one_line(err) and "pretrain" in str(err.value)


def test_adapter_files_of_another_format_are_one_line(tmp_path):
    from signbest.data.adapters import read_split_files

    (tmp_path / "x.json").write_text(json.dumps([{"gloss": "a"}]))
    with pytest.raises(ValueError) as err:
        read_split_files("wlasl", [tmp_path / "x.json"], tmp_path)
    assert "not a wlasl split file: no field 'instances'" in _one_line(err)
    (tmp_path / "y.json").write_text(json.dumps([{"gloss": "a", "instances": [{"video_id": "../../etc/x", "split": "train"}]}]))
    with pytest.raises(ValueError, match="outside the pose folder"):
        read_split_files("wlasl", [tmp_path / "y.json"], tmp_path)


def test_options_are_range_checked():
    import subprocess
    import sys

    for args in (["predict", "--checkpoint", "x", "--top", "0", "a.npz"], ["evaluate", "--checkpoint", "x", "--data", "y", "--windows", "0"]):
        r = subprocess.run([sys.executable, "-m", "signbest", *args], capture_output=True, text=True)
        assert r.returncode == 2 and "greater than or equal to 1" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = subprocess.run([sys.executable, "-m", "signbest", "demo", "--set", "finetune.lr=1", "finetune.epochs=2"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "--set finetune.lr=1 --set finetune.epochs=2" in r.stderr, r.stderr


def test_a_full_disk_names_the_output_file_not_the_temporary(tmp_path):
    import errno

    from signbest.atomic import atomic_write

    def write(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as err:
        atomic_write(tmp_path / "out.csv", write)
    assert err.value.filename == str(tmp_path / "out.csv") and not list(tmp_path.glob(".partial-*"))
