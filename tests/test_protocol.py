"""The evaluation protocol: dev carved from train, reported splits never read by training, run
fingerprints that refuse mixed runs, glosses matched by name, a preprocessing version tied to the code."""
from __future__ import annotations

import csv
import hashlib
import shutil
from dataclasses import replace
from pathlib import Path


import numpy as np
import pytest

from signbest.config import load_config
from signbest.data import cache as cache_mod
from signbest.data import read_manifest
from signbest.data.manifest import Clip, Manifest
from signbest.data.protocol import SplitConfig, carve_dev
from signbest.eval.evaluate import evaluate
from signbest.fingerprint import FingerprintError
from signbest.train.finetune import finetune
from signbest.train.pretrain import pretrain
from signbest.train.tokenizer import train_tokenizer

# A digest of what pose/normalize.py computes, for each PREPROCESS_VERSION: when its output changes, bump
# PREPROCESS_VERSION (every cache and fingerprint then knows) and record the new digest here. Edits that
# keep the output (names, comments) need neither.
NORMALIZED_OUTPUT = {1: "3ef1180a2d3cae750dcc03e6bbb6a210b4892f08f898e2c77220e2027a21ceed"}


def normalized_digest(tmp_path: Path) -> str:
    from conftest import write_holistic_npz
    from signbest.pose import normalize, read_pose

    digest = hashlib.sha256()
    missing_left = np.zeros((12, 21, 3), np.float32)
    for name, extra in (("plain", {}), ("no-left-hand", {"left_hand": missing_left})):
        for seed in (0, 1):
            path = write_holistic_npz(tmp_path / f"{name}-{seed}.npz", t=12, seed=seed, **extra)
            normalized = normalize(read_pose(path))
            for key, value in sorted(vars(normalized).items()):
                digest.update(key.encode())
                digest.update(np.round(np.nan_to_num(np.asarray(value, np.float64), nan=-9.0), 4).tobytes())
    return digest.hexdigest()


def test_preprocessing_version_is_tied_to_what_normalisation_computes(tmp_path):
    from signbest.pose.normalize import PREPROCESS_VERSION

    digest = normalized_digest(tmp_path)
    assert NORMALIZED_OUTPUT.get(PREPROCESS_VERSION) == digest, (
        f"pose/normalize.py computes something else now (digest {digest}): bump PREPROCESS_VERSION and "
        "record the new digest in this test")


def _manifest(signers: int, per_signer: int, glosses: int = 10) -> Manifest:
    clips = [Clip(f"s{s}g{g}k{k}", Path(f"/x/{s}_{g}_{k}.npz"), f"g{g}", g, "train", f"signer{s}")
             for s in range(signers) for g in range(glosses) for k in range(per_signer)]
    clips += [Clip(f"v{g}", Path(f"/x/v{g}.npz"), f"g{g}", g, "val", "signer0") for g in range(glosses)]
    return Manifest(clips, [f"g{g}" for g in range(glosses)])


def test_dev_is_signer_disjoint_stratified_and_seeded():
    m = _manifest(signers=20, per_signer=1)
    dev = carve_dev(m, SplitConfig(0.1, seed=0))
    d = [c for c in dev.clips if c.split == "dev"]
    t = [c for c in dev.clips if c.split == "train"]
    assert 0.08 * 200 <= len(d) <= 0.12 * 200
    assert not {c.signer for c in d} & {c.signer for c in t}  # signer-disjoint
    assert {c.label for c in t} == set(range(10))  # every gloss keeps train clips
    assert [c.split for c in dev.clips if c.split == "val"] == ["val"] * 10  # val untouched
    again = carve_dev(m, SplitConfig(0.1, seed=0))
    other = carve_dev(m, SplitConfig(0.1, seed=1))
    assert [c.split for c in again.clips] == [c.split for c in dev.clips]
    assert [c.split for c in other.clips] != [c.split for c in dev.clips]


def test_dev_without_enough_signers_is_stratified_by_clip():
    m = _manifest(signers=2, per_signer=10)
    dev = [c for c in carve_dev(m, SplitConfig(0.1)).clips if c.split == "dev"]
    assert len(dev) == 20 and np.bincount([c.label for c in dev]).tolist() == [2] * 10
    unlabelled = Manifest(m.clips, m.glosses, labelled=False)
    assert carve_dev(unlabelled, SplitConfig(0.1)) is unlabelled  # pools keep every clip for pre-training


@pytest.fixture()
def poisoned(synth_dir, tmp_path):
    """A copy of the synthetic set whose val and test pose files are junk."""
    shutil.copytree(synth_dir, tmp_path / "data")
    m = read_manifest(tmp_path / "data" / "manifest.csv")
    held = [c.pose_file for c in m.clips if c.split in ("val", "test")]
    for f in held:
        f.write_bytes(b"unreadable")
    return tmp_path / "data" / "manifest.csv", {str(f) for f in held}


def test_training_stages_never_open_val_or_test_clips(poisoned, tmp_path, monkeypatch):
    data, held = poisoned
    opened = []
    real = cache_mod.read_pose
    monkeypatch.setattr(cache_mod, "read_pose", lambda path, *a, **k: (opened.append(str(path)), real(path, *a, **k))[1])
    cfg = load_config("tiny", ["tokenizer.epochs=1", "pretrain.epochs=1", "finetune.epochs=1"])
    train_tokenizer(cfg, [data], tmp_path / "tok", progress=False)
    pretrain(cfg, [data], tmp_path / "tok", tmp_path / "pre", progress=False)
    res = finetune(cfg, data, tmp_path / "ft", tmp_path / "pre", progress=False)
    assert opened and not set(opened) & held
    dev = {str(c.pose_file) for c in carve_dev(read_manifest(data), SplitConfig()).clips if c.split == "dev"}
    assert dev and set(opened) >= dev and res["selected_epoch"] == 1  # dev is read by fine-tuning only
    assert len(set(opened)) == len(read_manifest(data).clips) - len(held)


def test_a_rerun_with_other_settings_or_data_is_refused(synth_dir, tmp_path):
    data = synth_dir / "manifest.csv"
    cfg = load_config("tiny", ["finetune.epochs=1"])
    finetune(cfg, data, tmp_path / "ft", progress=False)
    finetune(cfg, data, tmp_path / "ft", progress=False)  # same run: the finished stage is reused
    with pytest.raises(FingerprintError, match=r"finetune\.lr: 0\.001 -> 0\.002"):
        finetune(load_config("tiny", ["finetune.epochs=1", "finetune.lr=0.002"]), data, tmp_path / "ft", progress=False)
    other = tmp_path / "other.csv"
    rows = list(csv.DictReader(open(data)))
    for r in rows:
        r["pose_file"] = str((data.parent / r["pose_file"]).resolve())
    with open(other, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:-3])
    with pytest.raises(FingerprintError, match="data"):
        finetune(cfg, other, tmp_path / "ft", progress=False)
    res = finetune(load_config("tiny", ["finetune.epochs=1", "finetune.lr=0.002"]), data, tmp_path / "ft",
                   progress=False, overwrite=True)
    assert res["epoch"] == 1


def test_glosses_are_matched_by_name_never_by_number(synth_dir, tmp_path):
    data = synth_dir / "manifest.csv"
    finetune(load_config("tiny", ["finetune.epochs=1"]), data, tmp_path / "ft", progress=False)
    base = evaluate(tmp_path / "ft", data, "test", tmp_path / "e1")["pose"]
    m = read_manifest(data)
    order = list(reversed(range(len(m.glosses))))  # the same glosses, numbered the other way round
    swapped = tmp_path / "swapped.csv"
    with open(swapped, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "pose_file", "gloss", "label", "split", "signer"])
        for c in m.clips:
            w.writerow([c.clip_id, c.pose_file, c.gloss, order[c.label], c.split, c.signer])
    remapped = evaluate(tmp_path / "ft", swapped, "test", tmp_path / "e2")["pose"]
    assert remapped["per_instance_top1"] == base["per_instance_top1"]
    clips = [replace(c, gloss="zebra") if c.label == 0 else c for c in m.clips]
    foreign = tmp_path / "foreign.csv"
    with open(foreign, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "pose_file", "gloss", "split", "signer"])
        for c in clips:
            w.writerow([c.clip_id, c.pose_file, c.gloss, c.split, c.signer])
    with pytest.raises(ValueError, match="zebra"):
        evaluate(tmp_path / "ft", foreign, "test", tmp_path / "e3")


def test_a_run_of_an_older_version_is_refused_naming_both_versions(tmp_path):
    """No compatibility shims in 0.2: a folder made by 0.1 differs in its version (and in any setting added
    since), and a checkpoint of 0.1 is refused by name."""
    import json

    import pytest
    import torch

    from signbest import __version__
    from signbest.checkpoint import CheckpointError, load_weights, save_weights
    from signbest.fingerprint import differences

    old = {"signbest": "0.1.0", "config": {"finetune": {"lr": 0.001}}}
    new = {"signbest": __version__, "config": {"finetune": {"lr": 0.001, "schedule": "cosine"}}}
    assert differences(old, new) == ['config.finetune.schedule: "<absent>" -> "cosine"', f'signbest: "0.1.0" -> "{__version__}"']
    save_weights(torch.nn.Linear(2, 2), tmp_path / "w", {"stage": "finetune"})
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    assert cfg["signbest_version"] == __version__ and load_weights(tmp_path / "w")[1]["stage"] == "finetune"
    del cfg["signbest_version"]
    (tmp_path / "w" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=f"made by signbest 0.1 or earlier, this is signbest {__version__}"):
        load_weights(tmp_path / "w")


def test_rows_share_the_stages_whose_settings_they_share(synth_dir, tmp_path):
    """Rows of one tokenizer kind and seed share its tokenizer; a new fine-tuning recipe reuses pre-training;
    a setting the stage reads (the masking, for pre-training) is still refused."""
    data = [synth_dir / "manifest.csv"]
    fast = ["tokenizer.epochs=1", "pretrain.epochs=1"]
    best, rmask = (load_config(name, fast, base="tiny") for name in ("wlasl-best", "wlasl-rmask"))
    assert best["description"] != rmask["description"] and best["masking"] != rmask["masking"]
    first = train_tokenizer(best, data, tmp_path / "tok", progress=False)
    stamp = (tmp_path / "tok" / "fingerprint.json").stat().st_mtime_ns
    assert train_tokenizer(rmask, data, tmp_path / "tok", progress=False) == first
    assert (tmp_path / "tok" / "fingerprint.json").stat().st_mtime_ns == stamp  # reused, not retrained
    pretrain(best, data, tmp_path / "tok", tmp_path / "pre", progress=False)
    recipe = load_config("wlasl-best", fast + ["finetune.lr=0.002", "head.dropout=0.3"], base="tiny")
    pretrain(recipe, data, tmp_path / "tok", tmp_path / "pre", progress=False)
    with pytest.raises(FingerprintError, match=r"config\.masking\."):
        pretrain(rmask, data, tmp_path / "tok", tmp_path / "pre", progress=False)


def test_upstream_folders_are_identified_by_their_fingerprints_not_their_paths(synth_dir, tmp_path, monkeypatch):
    data = [synth_dir / "manifest.csv"]
    cfg = load_config("wlasl-best", ["tokenizer.epochs=1", "pretrain.epochs=1"], base="tiny")
    train_tokenizer(cfg, data, tmp_path / "tok", progress=False)
    pretrain(cfg, data, tmp_path / "tok", tmp_path / "pre", progress=False)
    monkeypatch.chdir(tmp_path)
    pretrain(cfg, data, "tok", tmp_path / "pre", progress=False)  # the same tokenizer, named relatively
    ft = load_config("wlasl-best", ["finetune.epochs=1"], base="tiny")
    finetune(ft, data[0], tmp_path / "ft", tmp_path / "pre", progress=False)
    finetune(ft, data[0], tmp_path / "ft", "pre", progress=False)  # and the pre-trained folder
    shutil.copytree(tmp_path / "tok", tmp_path / "other")
    fp = tmp_path / "other" / "fingerprint.json"
    fp.write_text(fp.read_text().replace('"seed": 0', '"seed": 7', 1))  # another tokenizer run
    with pytest.raises(FingerprintError, match="tokenizer"):
        pretrain(cfg, data, tmp_path / "other", tmp_path / "pre", progress=False)


def test_dev_picks_the_epoch_only_when_it_holds_enough_other_people():
    from pathlib import Path

    from signbest.data.manifest import Clip, Manifest
    from signbest.data.protocol import selection_rule

    def manifest(dev_signers, dev_clips, train_signers=("a", "b", "c")):
        clips = [Clip(f"t{i}", Path("x"), "g", 0, "train", train_signers[i % len(train_signers)]) for i in range(60)]
        clips += [Clip(f"d{i}", Path("x"), "g", 0, "dev", dev_signers[i % len(dev_signers)]) for i in range(dev_clips)]
        return Manifest(clips, ["g"])

    assert selection_rule(manifest(("d", "e"), 40), "dev") == ("dev", "")
    rule, why = selection_rule(manifest(("a", "e"), 40), "dev")  # a training person in dev
    assert rule == "last" and "shares 1 of its 2 people" in why
    rule, why = selection_rule(manifest(("d",), 10), "dev")
    assert rule == "last" and "10 clips" in why
    rule, why = selection_rule(manifest(("", "e"), 40), "dev")
    assert rule == "last" and "signer" in why
    assert selection_rule(manifest(("a",), 5), "val") == ("val", "")


def test_with_few_training_people_the_selected_model_is_the_last_epoch(tmp_path):
    """Three training people: dev is carved by clip and shares them, so dev cannot choose; the model kept
    is the last epoch's, and the reason is recorded beside it."""
    import json

    from signbest.config import load_config
    from signbest.data.synth import generate
    from signbest.train.finetune import finetune

    data = generate(tmp_path / "d", classes=4, signers=5, per_class=10, seed=2, progress=False)  # 3 train people
    res = finetune(load_config("tiny", ["finetune.epochs=3"]), data, tmp_path / "ft", progress=False)
    chosen = json.loads((tmp_path / "ft" / "selected" / "config.json").read_text())
    assert res["selected_epoch"] == 3 and chosen["select_on"] == "last"
    assert "shares" in chosen["selection_rule"]["why"]
