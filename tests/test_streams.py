"""Input streams: bones and motion are what they say, absent where a joint is, and a model of each
stream trains, predicts and joins an ensemble with a joints model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from signbest.models.streams import MOTION_SCALE, PARENTS, stream_view


def batch(b: int = 2, t: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {"frame_mask": torch.ones(b, t, dtype=torch.bool)}
    for part, j in (("left", 21), ("right", 21), ("body", 7)):
        out[part] = torch.rand(b, t, j, 2, generator=g)
        out[f"{part}_mask"] = torch.ones(b, t, j, dtype=torch.bool)
    return out


def test_parents_follow_the_skeleton():
    assert PARENTS["hand"][:9] == [0, 0, 1, 2, 3, 0, 5, 6, 7] and PARENTS["hand"][20] == 19
    assert PARENTS["body"] == [0, 0, 1, 2, 0, 4, 5]  # nose; shoulder, elbow, wrist on each side


def test_bones_and_motion_views():
    x = batch()
    x["right_mask"][0, 1, 5] = False  # the index finger's base missing in one frame
    assert stream_view(x, "joints") is x
    bones = stream_view(x, "bones")
    assert torch.equal(bones["right"][:, :, 0], x["right"][:, :, 0])  # the root keeps its position
    assert torch.allclose(bones["right"][1, 2, 8], x["right"][1, 2, 8] - x["right"][1, 2, 7])
    assert not bones["right_mask"][0, 1, 5] and not bones["right_mask"][0, 1, 6]  # its bone and its child's
    assert bones["right_mask"].sum() == x["right_mask"].sum() - 1 and torch.all(bones["right"][0, 1, 6] == 0)
    motion = stream_view(x, "motion")
    assert torch.allclose(motion["body"][:, 1], MOTION_SCALE * (x["body"][:, 2] - x["body"][:, 1]))
    assert not motion["body_mask"][:, -1].any() and torch.all(motion["body"][:, -1] == 0)  # no next frame
    assert not motion["right_mask"][0, 0, 5] and not motion["right_mask"][0, 1, 5] and motion["right_mask"][0, 2, 5]
    assert torch.equal(x["left"], batch()["left"])  # the input is left as it was


def test_a_bones_model_trains_predicts_and_joins_an_ensemble(synth_dir, tmp_path):
    from signbest.config import load_config, section
    from signbest.models.classifier import HeadConfig
    from signbest.predict import Predictor
    from signbest.train.finetune import finetune

    data = synth_dir / "manifest.csv"
    for stream in ("joints", "bones"):
        finetune(load_config("tiny", ["finetune.epochs=2", f"head.stream={stream}"]), data, tmp_path / stream, progress=False)
    clips = sorted((synth_dir / "poses").glob("*.npz"))[:4]
    alone = {s: Predictor(tmp_path / s) for s in ("joints", "bones")}
    both = Predictor([tmp_path / "joints", tmp_path / "bones"])
    p = {name: np.array([[q for _, q in sorted(r["top"])] for r in pr(clips, top=100)]) for name, pr in
         {**alone, "both": both}.items()}
    assert not np.allclose(p["joints"], p["bones"], atol=1e-3)  # another view, another model
    assert np.all(np.abs(p["both"] - (p["joints"] + p["bones"]) / 2) < 0.05)  # averaged (temperatures aside)
    with pytest.raises(ValueError, match="head stream must be one of joints, bones, motion, got 'angles'"):
        section(load_config("tiny", ["head.stream=angles"]), "head", HeadConfig)


def test_a_motion_model_exports_with_its_view(synth_dir, tmp_path):
    """The stream's view is part of the exported graph: onnxruntime agrees with torch (checked at export)."""
    pytest.importorskip("onnxruntime", reason="export needs the onnx extra (pip install -e '.[onnx]')")
    from signbest.config import load_config
    from signbest.export import export_onnx
    from signbest.predict import Predictor
    from signbest.train.finetune import finetune

    finetune(load_config("tiny", ["finetune.epochs=1", "head.stream=motion"]), synth_dir / "manifest.csv",
             tmp_path / "ft", progress=False)
    check = export_onnx(tmp_path / "ft", tmp_path / "m.onnx")  # refuses to write a file that disagrees
    assert check["max_probability_difference"] <= 1e-3 and check["same_top1"]
    clips = sorted((synth_dir / "poses").glob("*.npz"))[:3]
    assert all("top" in r for r in Predictor(tmp_path / "m.onnx")(clips))
