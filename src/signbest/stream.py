"""Continuous recognition: a long pose sequence (or video) -> a timeline of signs, with "unknown" gaps.

A window of `window` frames slides over the sequence by `hop` frames; the classifier scores each window
as it scores a pre-cut clip (the same frame sampling and calibration). A Viterbi pass then labels every
window with a gloss or "unknown" (scored as if its probability were the model's threshold), paying
`switch_penalty` for each change, so one window's flicker does not split a sign; runs of windows with one
label become segments (start, end in seconds, gloss, mean confidence), the timeline.
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .data.cache import ARRAYS
from .data.dataset import pad_item, sample_frames
from .predict import Predictor, ensemble_logits, softmax

UNKNOWN = "unknown"


@dataclass
class StreamConfig:
    # Defaults chosen on WLASL100 dev sequences of clips with a still of about 1 s before each, as between
    # signs in a long video or in front of a camera (experiments/stream_wlasl.py --rest 1, docs/recognition.md).
    window: int = 32  # frames per window (about 1.3 s at 25 fps: one sign and a little of its neighbours)
    hop: int = 6  # frames between window starts
    min_windows: int = 7  # a segment needs at least this many consecutive windows with its answer
    smooth: int = 5  # each window's probabilities averaged with its neighbours' (this many in all; odd)
    switch_penalty: float = 0.0  # > 0: decode with a Viterbi pass that pays this (in log-probability) per
    #   change of answer, instead of taking each window's own answer (0); runs shorter than min_windows go.
    #   Without stills between clips dev prefers 16 with min_windows 1; with them it gets stuck in "unknown".

    def __post_init__(self):
        if self.window < 2 or self.hop < 1 or self.min_windows < 1 or self.smooth < 1 or self.smooth % 2 == 0:
            raise ValueError(f"stream window must be >= 2 frames, hop >= 1, min_windows >= 1, smooth odd; got {self}")


@dataclass
class Segment:
    start_s: float
    end_s: float
    gloss: str  # UNKNOWN where no sign was recognised with enough confidence
    confidence: float  # mean top-1 probability of its windows
    windows: int


class Windows:
    """Window items (frames `start:end` of one sequence's normalised arrays), as `predict_logits` reads a
    dataset: each sampled to the model's frames as a pre-cut clip is."""

    def __init__(self, arrays: dict[str, np.ndarray], spans: list[tuple[int, int]], num_frames: int, sampling: str):
        self.arrays, self.spans = arrays, spans
        self.num_frames, self.sampling = num_frames, sampling
        self.window, self.mirror = 0.5, False  # the views' settings (one view here)

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i: int):
        start, end = self.spans[i]
        piece = {k: v[start:end] for k, v in self.arrays.items()}
        idx = sample_frames(len(piece["body"]), self.num_frames, False, None, 0.5, self.sampling)
        return pad_item({k: v[idx] for k, v in piece.items()}, self.num_frames, 0, i)


def window_starts(length: int, cfg: StreamConfig) -> list[int]:
    """Starts of the windows over `length` frames; a sequence shorter than a window is one window."""
    last = max(length - cfg.window, 0)
    starts = list(range(0, last + 1, cfg.hop))
    return starts if starts[-1] == last else starts + [last]


def window_probabilities(predictor: Predictor, arrays: dict[str, np.ndarray], cfg: StreamConfig) -> tuple[list[int], np.ndarray]:
    """(window starts, calibrated probabilities (W, C)) of a normalised sequence."""
    starts = window_starts(len(arrays["body"]), cfg)
    spans = [(s, s + cfg.window) for s in starts]
    return starts, window_scores(predictor, arrays, spans)


def window_scores(predictor: Predictor, arrays: dict[str, np.ndarray], spans: list[tuple[int, int]]) -> np.ndarray:
    """Calibrated probabilities (W, C) of the windows `spans` of a normalised sequence."""
    finetune = predictor.cfg["finetune"]
    windows = Windows(arrays, spans, finetune["num_frames"], finetune["sampling"])
    with predictor.lock:
        logits = ensemble_logits(predictor.models, windows, 64, 1, False, predictor.temperatures)
    return softmax(logits)


def smoothed(probs: np.ndarray, width: int) -> np.ndarray:
    """Moving average over `width` neighbouring windows (fewer at the ends): one window's flicker between
    two glosses no longer splits a sign."""
    if width == 1:
        return probs
    half = width // 2
    padded = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, 0)])
    lo = np.clip(np.arange(len(probs)) - half, 0, len(probs))
    hi = np.clip(np.arange(len(probs)) + half + 1, 0, len(probs))
    return (padded[hi] - padded[lo]) / (hi - lo)[:, None]


def viterbi(probs: np.ndarray, unknown_below: float, penalty: float) -> np.ndarray:
    """The label sequence (class index, or C for unknown) maximising the sum of log-probabilities minus
    `penalty` per change of label. Unknown scores as if its probability were the threshold, so a window
    alone prefers it exactly when no gloss reaches the threshold."""
    scores = np.log(np.concatenate([probs, np.full((len(probs), 1), max(unknown_below, 1e-6))], 1) + 1e-12)
    best = scores[0].copy()
    back = np.zeros(scores.shape, np.int64)
    for t in range(1, len(scores)):
        leader = int(best.argmax())
        switch = best[leader] - penalty
        stay = best >= switch
        back[t] = np.where(stay, np.arange(scores.shape[1]), leader)
        best = np.where(stay, best, switch) + scores[t]
    labels = np.empty(len(scores), np.int64)
    labels[-1] = int(best.argmax())
    for t in range(len(scores) - 1, 0, -1):
        labels[t - 1] = back[t, labels[t]]
    return labels


def segments(starts: list[int], probs: np.ndarray, glosses: list[str], unknown_below: float, fps: float,
             cfg: StreamConfig, length: int) -> list[Segment]:
    """Runs of windows with one answer -> segments, for windows of `cfg.window` frames at `starts`."""
    centres = [(s + min(cfg.window, length) / 2) / fps for s in starts]
    return label_timeline(centres, probs, glosses, unknown_below, cfg, length / fps)


def label_timeline(centres_s: list[float], probs: np.ndarray, glosses: list[str], unknown_below: float,
                   cfg: StreamConfig, end_s: float) -> list[Segment]:
    """Windows (their centres in seconds, their probabilities) -> segments from 0 to `end_s`. A window
    stands for the time around its centre, halfway to its neighbours', so segments tile the sequence."""
    probs = smoothed(probs, cfg.smooth)
    if cfg.switch_penalty > 0:
        labels = viterbi(probs, unknown_below, cfg.switch_penalty)
        answers = [UNKNOWN if k == len(glosses) else glosses[k] for k in labels]
    else:
        answers = [glosses[k] if p[k] >= unknown_below else UNKNOWN for p, k in zip(probs, probs.argmax(1))]
    runs, begin = [], 0
    for i in range(1, len(answers) + 1):
        if i == len(answers) or answers[i] != answers[begin]:
            runs.append((begin, i))
            begin = i
    # Short runs are passing guesses: they become unknown, then neighbours with one answer merge again.
    needed = min(cfg.min_windows, len(answers))  # a sequence of one short sign has fewer windows than that
    answers = [UNKNOWN if e - b < needed else answers[b] for b, e in runs for _ in range(b, e)]
    out: list[Segment] = []
    for i, answer in enumerate(answers):
        lo = 0.0 if i == 0 else (centres_s[i - 1] + centres_s[i]) / 2
        hi = float(end_s) if i == len(answers) - 1 else (centres_s[i] + centres_s[i + 1]) / 2
        confidence = float(probs[i].max())
        if out and out[-1].gloss == answer:
            last = out[-1]
            last.confidence = (last.confidence * last.windows + confidence) / (last.windows + 1)
            last.end_s, last.windows = hi, last.windows + 1
        else:
            out.append(Segment(lo, hi, answer, confidence, 1))
    return out


def stream_file(predictor: Predictor, path: Path, cfg: StreamConfig | None = None) -> dict:
    """The timeline of one long pose file or video, and how fast it was made."""
    import tempfile
    import time

    from .inputs import extract_videos
    from .pose import normalize, read_pose
    from .video.holistic import VIDEO_SUFFIXES

    cfg = cfg or StreamConfig()
    path = Path(path)
    started = time.perf_counter()
    extract_s = 0.0
    if path.suffix.lower() in VIDEO_SUFFIXES:
        with tempfile.TemporaryDirectory() as tmp:  # the extracted pose file lives only as long as it is read
            poses, errors = extract_videos([path], Path(tmp))
            if errors:
                raise ValueError(f"{path}: {errors[path]}")
            sequence = read_pose(poses[path])
        extract_s = time.perf_counter() - started
    else:
        sequence = read_pose(path)
    unit = normalize(sequence)
    arrays = {k: getattr(unit, k) for k in ARRAYS}  # as the preprocessing cache holds a clip
    model_start = time.perf_counter()
    starts, probs = window_probabilities(predictor, arrays, cfg)
    timeline = segments(starts, probs, predictor.glosses, predictor.unknown_below, sequence.fps, cfg, len(arrays["body"]))
    model_s = time.perf_counter() - model_start
    duration = len(arrays["body"]) / sequence.fps
    return {"file": str(path), "frames": len(arrays["body"]), "fps": sequence.fps, "duration_s": duration,
            "windows": len(starts), "extract_s": extract_s, "model_s": model_s,
            "real_time_factor": duration / max(extract_s + model_s, 1e-9),
            "timeline": [asdict(s) for s in timeline]}


def write_timeline(result: dict, out: Path) -> None:
    """A timeline as .json (everything), .csv (one row per segment) or .vtt (WebVTT subtitles: signs only)."""
    from .atomic import atomic_write

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".json", ".csv", ".vtt"):
        raise ValueError(f"{out}: a timeline is written as .json, .csv or .vtt")

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            if suffix == ".json":
                json.dump(result, f, indent=1)
            elif suffix == ".csv":
                w = csv.writer(f)
                w.writerow(["start_s", "end_s", "gloss", "confidence"])
                for s in result["timeline"]:
                    w.writerow([f"{s['start_s']:.2f}", f"{s['end_s']:.2f}", s["gloss"], f"{s['confidence']:.4f}"])
            else:
                f.write("WEBVTT\n\n")
                cues = [s for s in result["timeline"] if s["gloss"] != UNKNOWN]
                for i, s in enumerate(cues, 1):
                    f.write(f"{i}\n{_vtt_time(s['start_s'])} --> {_vtt_time(s['end_s'])}\n"
                            f"{s['gloss']} ({100 * s['confidence']:.0f}%)\n\n")
    atomic_write(out, write)


def _vtt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
