"""Live recognition: frames one at a time give the timeline that `predict --stream` gives the whole file;
windows are spans of time whatever the camera's rate; bad frames and times are refused."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED, write_holistic_npz
from signbest.live import LiveRecognizer
from signbest.stream import StreamConfig, stream_file


@pytest.fixture(scope="module")
def predictor(synth_dir, tmp_path_factory):
    from signbest.config import load_config
    from signbest.predict import Predictor
    from signbest.train.finetune import finetune

    out = tmp_path_factory.mktemp("live-model")
    finetune(load_config("tiny", ["finetune.epochs=1"]), synth_dir / "manifest.csv", out / "ft", progress=False)
    return Predictor(out / "ft")


def feed(recognizer: LiveRecognizer, arrays, fps: float, frames=None) -> list[dict]:
    updates = []
    for k in frames if frames is not None else range(len(arrays["pose"])):
        update = recognizer.add_landmarks(k / fps, arrays["pose"][k], arrays["left_hand"][k], arrays["right_hand"][k],
                                          int(arrays["width"]), int(arrays["height"]))
        if update is not None:
            updates.append(update)
    return updates


def test_frames_one_at_a_time_give_the_files_own_timeline(predictor, tmp_path):
    cfg = StreamConfig(window=24, hop=6, min_windows=2)
    path = write_holistic_npz(tmp_path / "long.npz", t=150)  # (150 - 24) / 6 windows: the last one ends the file
    whole = stream_file(predictor, path, cfg)
    arrays = dict(np.load(path))
    recognizer = LiveRecognizer(predictor, cfg)
    updates = feed(recognizer, arrays, 25.0)
    assert len(updates) == whole["windows"] == (150 - 24) // 6 + 1
    assert updates[0]["window"] == pytest.approx([0, 24 / 25]) and updates[0]["frames"] == 24
    assert updates[1]["window"] == pytest.approx([6 / 25, 30 / 25])  # one hop later
    live = recognizer.finish()
    assert [(s["gloss"], s["windows"]) for s in live] == [(s["gloss"], s["windows"]) for s in whole["timeline"]]
    for a, b in zip(live, whole["timeline"]):
        assert a["start_s"] == pytest.approx(b["start_s"]) and a["end_s"] == pytest.approx(b["end_s"])
        assert a["confidence"] == pytest.approx(b["confidence"], abs=0.02)  # one window a batch here, 64 there
    for u in updates:  # each update: the answer of its window and the timeline up to its end
        assert u["timeline"][-1]["end_s"] == pytest.approx(u["t"]) and len(u["top"]) == 3
        assert u["confidence"] == u["top"][0]["p"] and (u["answer"] == "unknown") == (u["confidence"] < predictor.unknown_below)


def test_a_camera_at_another_rate_gets_windows_of_the_same_duration(predictor, tmp_path):
    cfg = StreamConfig(window=25, hop=5)  # 1 s windows every 0.2 s
    arrays = dict(np.load(write_holistic_npz(tmp_path / "c.npz", t=60)))
    updates = feed(LiveRecognizer(predictor, cfg), arrays, fps=10.0)  # 6 s of a 10 fps camera
    assert updates[0]["window"] == pytest.approx([0.1, 1.04])  # the frames of the last second: 0.1 ... 1.0 s
    assert all(u["frames"] == 10 for u in updates) and len(updates) == 25
    assert np.allclose(np.diff([u["t"] for u in updates]), 0.2)  # a window every hop: every other frame here
    assert updates[-1]["t"] == pytest.approx(5.8 + 0.04)


def test_frame_times_must_increase_and_be_finite(predictor, tmp_path):
    arrays = dict(np.load(write_holistic_npz(tmp_path / "t.npz", t=3)))
    recognizer = LiveRecognizer(predictor)
    feed(recognizer, arrays, 25.0, frames=[0, 1])
    with pytest.raises(ValueError, match="must increase: 0.000 s came after 0.040 s"):
        recognizer.add_landmarks(0.0, arrays["pose"][2], arrays["left_hand"][2], arrays["right_hand"][2], 256, 256)
    with pytest.raises(ValueError, match="finite"):
        recognizer.add_landmarks(float("nan"), arrays["pose"][2], arrays["left_hand"][2], arrays["right_hand"][2], 256, 256)
    assert LiveRecognizer(predictor).finish() == []  # no frame, no timeline


def test_a_camera_of_jpeg_frames_through_mediapipe(predictor):
    """A real sign video's frames as a browser sends them (JPEG): MediaPipe finds the person, windows come."""
    pytest.importorskip("mediapipe", reason="live recognition needs the video extra (pip install -e '.[video]')")
    import cv2

    from signbest.live import LiveCamera

    video = SHARED / "pose-samples" / "test_video.mp4"
    if not video.exists():
        pytest.skip(f"needs the shared video {video} (absent in this checkout)")
    camera = LiveCamera(predictor, StreamConfig(window=24, hop=6))
    try:
        cap, answers, k = cv2.VideoCapture(str(video)), [], 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            answers.append(camera.add_jpeg(k / 25, cv2.imencode(".jpg", bgr)[1].tobytes()))
            k += 1
        with pytest.raises(ValueError, match="not a JPEG or PNG image"):
            camera.add_jpeg(k / 25, b"<html>not an image</html>")
    finally:
        camera.close()
    assert k == 58 and sum(a["seen"]["body"] for a in answers) >= 50
    scored = [a for a in answers if "top" in a]
    assert len(scored) == (58 - 24) // 6 + 1 and scored[-1]["timeline"][-1]["end_s"] == pytest.approx((24 + 5 * 6) / 25)
