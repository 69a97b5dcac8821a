"""Shared fixtures. Real data lives in ../shared/data (beside the checkout); tests that need it skip
with a message when it is absent. Caches go to a temporary folder, never beside the data."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("SIGNBEST_SHARED", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    """Path inside ../shared/data, or skip the test when the shared data is not beside the checkout."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs the shared data set {p} (absent in this checkout)")
    return p


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    os.environ["SIGNBEST_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from signbest.data.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, classes=6, signers=4, per_class=8, seed=3, progress=False)
    return out


def full_probabilities(predictor, files) -> np.ndarray:
    """(N, C) probabilities a `Predictor` gives the files, every gloss, in the model's label order."""
    results = predictor(files, top=len(predictor.glosses))
    order = {g: k for k, g in enumerate(predictor.glosses)}
    probs = np.zeros((len(files), len(order)))
    for row, r in zip(probs, results):
        for gloss, p in r["top"]:
            row[order[gloss]] = p
    return probs


def write_holistic_npz(path: Path, t: int = 10, seed: int = 0, **override) -> Path:
    """A small MediaPipe Holistic npz in the shared schema with plausible joints."""
    rng = np.random.default_rng(seed)
    pose = np.zeros((t, 33, 4), np.float32)
    pose[..., :2] = rng.uniform(0.3, 0.7, (t, 33, 2))
    pose[:, 11, :2], pose[:, 12, :2] = (0.65, 0.5), (0.35, 0.5)  # left shoulder on the image right
    pose[:, 13, :2], pose[:, 14, :2] = (0.7, 0.7), (0.3, 0.7)
    pose[:, 15, :2], pose[:, 16, :2] = (0.65, 0.6), (0.35, 0.6)
    pose[..., 3] = 0.99
    hand = lambda cx: np.concatenate([np.stack([cx + rng.uniform(-0.04, 0.04, (t, 21)),
                                                0.55 + rng.uniform(-0.05, 0.05, (t, 21))], -1),
                                      np.zeros((t, 21, 1))], -1).astype(np.float32)
    arrays = {"pose": pose, "left_hand": hand(0.65), "right_hand": hand(0.35),
              "fps": np.float32(25), "width": np.int32(256), "height": np.int32(256)}
    arrays.update(override)
    np.savez(path, **arrays)
    return path


# The slow tier: tests that train for several epochs, start subprocesses or a browser. `pytest -m fast`
# runs the rest (under 2 minutes on 2 cores); the README's test command runs both tiers.
SLOW = ("test_runner.py::test_seeds_spread", "test_runner.py::test_pool_rows", "test_video.py::test_killed_run",
        "test_video.py::test_batch_skips", "test_video.py::test_train_extracts", "test_video.py::test_a_video_without", "test_video.py::test_real_clip",
        "test_engine.py::test_torchrun", "test_engine.py::test_a_kill_at_any_step", "test_pretrain.py::test_torchrun",
        "test_pretrain.py::test_tiny_pretraining", "test_bad_input_suite.py::test_a_small_file_with_too_many_frames",
        "test_bad_input_suite.py::test_the_command_line", "test_demo.py::test_demo_runs", "test_pipeline.py::test_train",
        "test_write_safety.py", "test_serve.py", "test_finetune.py::test_predict_extracts", "test_cli.py", "test_export.py", "test_ensemble.py", "test_calibration.py::test_finetuning", "test_calibration.py::test_predictions_say", "test_stream.py::test_stream_a_long",
        "test_serve_live.py", "test_live.py::test_a_camera_of_jpeg", "test_streams.py::test_a_")


def pytest_collection_modifyitems(config, items):
    for item in items:
        slow = any(key in item.nodeid for key in SLOW)
        item.add_marker(pytest.mark.slow if slow else pytest.mark.fast)
