"""Continuous recognition: windows over a long sequence, the segmenter, the timeline files."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from signbest.stream import UNKNOWN, StreamConfig, segments, smoothed, window_starts, write_timeline


def test_windows_cover_the_whole_sequence():
    cfg = StreamConfig(window=48, hop=6)
    starts = window_starts(200, cfg)
    assert starts[0] == 0 and starts[-1] == 200 - 48 and all(b - a <= 6 for a, b in zip(starts, starts[1:]))
    assert window_starts(20, cfg) == [0]  # shorter than a window: one window, the whole sequence


def test_smoothing_is_a_moving_average():
    probs = np.eye(3)[[0, 0, 1, 0, 0]]
    assert np.array_equal(smoothed(probs, 1), probs)
    out = smoothed(probs, 3)
    assert np.allclose(out[2], [2 / 3, 1 / 3, 0]) and np.allclose(out[0], [1, 0, 0]) and np.allclose(out.sum(1), 1)


def blocks(*runs: tuple[int, int, float]) -> np.ndarray:
    """Window probabilities: runs of (windows, class, top-1 probability) over 3 classes."""
    rows = []
    for n, k, p in runs:
        row = np.full(3, (1 - p) / 2)
        row[k] = p
        rows += [row] * n
    return np.array(rows)


def test_the_segmenter_turns_runs_into_a_timeline():
    cfg = StreamConfig(window=10, hop=5, min_windows=3, smooth=1, switch_penalty=0)  # each window's own answer, in runs
    probs = blocks((6, 0, 0.9), (1, 2, 0.9), (6, 1, 0.8), (4, 2, 0.2))  # a one-window flicker, then doubt
    starts = [5 * i for i in range(len(probs))]
    length = starts[-1] + 10
    timeline = segments(starts, probs, ["a", "b", "c"], 0.5, 25.0, cfg, length)
    assert [s.gloss for s in timeline] == ["a", UNKNOWN, "b", UNKNOWN]
    assert timeline[0].start_s == 0 and timeline[-1].end_s == pytest.approx(length / 25)
    assert all(x.end_s == pytest.approx(y.start_s) for x, y in zip(timeline, timeline[1:]))  # tiles the time
    assert timeline[0].windows == 6 and timeline[0].confidence == pytest.approx(0.9)
    assert timeline[2].confidence == pytest.approx(0.8)
    one = segments([0], blocks((1, 2, 0.9)), ["a", "b", "c"], 0.5, 25.0, cfg, 10)  # a single short sign
    assert [s.gloss for s in one] == ["c"]


def test_stream_a_long_file_and_write_its_timeline(synth_dir, tmp_path):
    from conftest import write_holistic_npz
    from signbest.config import load_config
    from signbest.predict import Predictor
    from signbest.stream import stream_file
    from signbest.train.finetune import finetune

    finetune(load_config("tiny", ["finetune.epochs=1"]), synth_dir / "manifest.csv", tmp_path / "ft", progress=False)
    long = write_holistic_npz(tmp_path / "long.npz", t=150)
    result = stream_file(Predictor(tmp_path / "ft"), long, StreamConfig(window=24, hop=4, min_windows=2))
    assert result["frames"] == 150 and result["duration_s"] == pytest.approx(6.0) and result["windows"] >= 30
    assert result["timeline"][0]["start_s"] == 0 and result["timeline"][-1]["end_s"] == pytest.approx(6.0)
    assert result["real_time_factor"] > 0
    write_timeline(result, tmp_path / "t.json")
    write_timeline(result, tmp_path / "t.csv")
    write_timeline(result, tmp_path / "t.vtt")
    assert json.loads((tmp_path / "t.json").read_text())["timeline"] == result["timeline"]
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [r["gloss"] for r in rows] == [s["gloss"] for s in result["timeline"]]
    vtt = (tmp_path / "t.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n") and vtt.count(" --> ") == sum(s["gloss"] != UNKNOWN for s in result["timeline"])
    with pytest.raises(ValueError, match=r"\.json, \.csv or \.vtt"):
        write_timeline(result, tmp_path / "t.txt")


def test_the_viterbi_decoder_pays_for_each_change():
    from signbest.stream import viterbi

    probs = blocks((5, 0, 0.9), (1, 1, 0.6), (5, 0, 0.9), (4, 2, 0.3))
    assert list(viterbi(probs, 0.5, 0.01)) == [0] * 5 + [1] + [0] * 5 + [3] * 4  # cheap changes: each window's own
    assert list(viterbi(probs, 0.5, 1.0)) == [0] * 11 + [3] * 4  # the one-window flicker costs more than it gains
    assert list(viterbi(probs, 0.1, 1.0))[-1] == 0  # with a lower threshold the doubtful end stays a sign
