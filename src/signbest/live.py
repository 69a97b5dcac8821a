"""Live recognition: a camera's frames as they come -> the signs so far, with confidence and "unknown".

`LiveRecognizer` takes one frame's landmarks at a time (with the time it was taken) and scores the last
`window` of time every `hop`, exactly as `predict --stream` scores a file: the same windows, the same
calibrated probabilities, the same decoder over all windows so far. Normalisation looks at one frame at a
time, so a file fed frame by frame at its own rate gets the file's own timeline (tests/test_live.py).
`LiveCamera` puts MediaPipe in front of it for JPEG frames (the served page's camera).

A camera has no fixed frame rate: windows and hops are spans of time (the stream's frames at 25 fps, the
rate of the data the models learnt from), and a window holds whatever frames arrived in it.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict

import numpy as np

from .data.cache import ARRAYS
from .pose import normalize
from .pose.readers import mediapipe_sequence
from .pose.sequence import PART_SIZES, fix_handedness
from .predict import Predictor
from .stream import UNKNOWN, StreamConfig, label_timeline, window_scores

NOMINAL_FPS = 25.0  # a stream window of `window` frames spans window / 25 seconds
MAX_WINDOWS = 2400  # windows kept for the decoder (10 minutes at the default hop); older ones are dropped
TOLERANCE_S = 1e-6  # frame times are floats: a frame at exactly a window's edge belongs to it


class LiveRecognizer:
    """Landmarks in, updates out: call `add_landmarks` per frame; it returns None until a window is due,
    then the window's top glosses and the timeline so far (the last segment may still change)."""

    def __init__(self, predictor: Predictor, cfg: StreamConfig | None = None, top: int = 3):
        self.predictor, self.cfg, self.top = predictor, cfg or StreamConfig(), top
        self.window_s, self.hop_s = self.cfg.window / NOMINAL_FPS, self.cfg.hop / NOMINAL_FPS
        self.frames: deque = deque()  # (time, {array name: one frame's normalised array}) of the last window
        self.first_t: float | None = None
        self.last_scored: float | None = None
        self.centres: deque = deque(maxlen=MAX_WINDOWS)  # window centres (s)
        self.probs: deque = deque(maxlen=MAX_WINDOWS)  # their calibrated probabilities (C,)
        self.windows = 0

    def add_landmarks(self, t: float, pose: np.ndarray, left: np.ndarray, right: np.ndarray,
                      width: int, height: int) -> dict | None:
        """One frame: pose (33, 4), hands (21, >=2) as MediaPipe gives them, `t` in seconds. A frame where
        nobody was found is a frame of missing parts, as in a file."""
        if not any(np.isfinite(a[..., :2]).all(-1).any() for a in (pose, left, right)):
            return self.add_unit(t, {k: np.zeros((PART_SIZES[k.removesuffix("_mask")],) + (() if k.endswith("_mask") else (2,)),
                                                 bool if k.endswith("_mask") else np.float32) for k in ARRAYS})
        sequence = mediapipe_sequence(pose[None], left[None], right[None], width, height, NOMINAL_FPS, "camera")
        sequence, _ = fix_handedness(sequence)  # per frame, as a file's reader does it
        unit = normalize(sequence)
        return self.add_unit(t, {k: getattr(unit, k)[0] for k in ARRAYS})

    def add_unit(self, t: float, frame: dict[str, np.ndarray]) -> dict | None:
        """One frame already normalised (the arrays of the preprocessing cache, without the time axis)."""
        if not math.isfinite(t):
            raise ValueError(f"a frame's time must be a finite number of seconds, got {t}")
        if self.frames and t <= self.frames[-1][0]:
            raise ValueError(f"frame times must increase: {t:.3f} s came after {self.frames[-1][0]:.3f} s")
        self.first_t = t if self.first_t is None else self.first_t
        self.frames.append((t, frame))
        while self.frames[0][0] < t - self.window_s + 1 / NOMINAL_FPS - TOLERANCE_S:
            self.frames.popleft()  # older than the window that ends with this frame
        full = t - self.first_t >= self.window_s - 1 / NOMINAL_FPS - TOLERANCE_S
        due = self.last_scored is None or t - self.last_scored >= self.hop_s - TOLERANCE_S
        if not (full and due):
            return None
        return self._score(t)

    def finish(self, t: float | None = None) -> list[dict]:
        """The timeline to the end (`t`, else the last frame's end), for a stream that stopped."""
        end = (t if t is not None else self.frames[-1][0] + 1 / NOMINAL_FPS) if self.frames else 0.0
        return self.timeline(end)

    def timeline(self, end: float) -> list[dict]:
        if not self.probs:
            return []
        segs = label_timeline(list(self.centres), np.stack(self.probs), self.predictor.glosses,
                              self.predictor.unknown_below, self.cfg, end)
        return [asdict(s) for s in segs]

    def _score(self, t: float) -> dict:
        times = [f[0] for f in self.frames]
        arrays = {k: np.stack([f[1][k] for f in self.frames]) for k in ARRAYS}  # (n, ...) of the window
        probs = window_scores(self.predictor, arrays, [(0, len(times))])[0]
        start, end = times[0] - self.first_t, t - self.first_t + 1 / NOMINAL_FPS  # a frame lasts 1/25 s
        self.centres.append((start + end) / 2)
        self.probs.append(probs)
        self.last_scored, self.windows = t, self.windows + 1
        order = np.argsort(-probs, kind="stable")[:self.top]
        glosses = self.predictor.glosses
        unknown = bool(probs[order[0]] < self.predictor.unknown_below)
        return {"t": end, "window": [start, end], "frames": len(times),
                "answer": UNKNOWN if unknown else glosses[order[0]], "confidence": float(probs[order[0]]),
                "top": [{"gloss": glosses[k], "p": float(probs[k])} for k in order],
                "timeline": self.timeline(end)}


class LiveCamera:
    """JPEG frames (a browser camera's) -> MediaPipe Holistic -> `LiveRecognizer`. One per connection: it
    holds the tracking state of one camera. Needs the video extra."""

    def __init__(self, predictor: Predictor, cfg: StreamConfig | None = None, max_side: int = 1920):
        from .video.holistic import ExtractConfig, HolisticExtractor, require_mediapipe

        _, self.cv2 = require_mediapipe()
        self.extractor = HolisticExtractor(ExtractConfig())
        self.recognizer = LiveRecognizer(predictor, cfg)
        self.max_side = max_side
        self.max_gray: np.ndarray | None = None  # running maximum: where the picture is (letterbox bars)

    def add_jpeg(self, t: float, data: bytes) -> dict:
        """One frame; the update when a window was scored, else what was found in the frame."""
        from .video.recovery import HandSource, content_box

        bgr = self.cv2.imdecode(np.frombuffer(data, np.uint8), self.cv2.IMREAD_COLOR) if data else None
        if bgr is None:
            raise ValueError(f"a frame of {len(data)} bytes is not a JPEG or PNG image")
        height, width = bgr.shape[:2]
        if max(height, width) > self.max_side:
            raise ValueError(f"a frame of {width}x{height} pixels is over the {self.max_side}-pixel limit")
        rgb = self.cv2.cvtColor(bgr, self.cv2.COLOR_BGR2RGB)
        gray = rgb.max(-1)
        if self.max_gray is None or self.max_gray.shape != gray.shape:
            self.max_gray = gray
        self.max_gray = np.maximum(self.max_gray, gray)
        pose, hands, sources = self.extractor.process_frame(rgb, lambda: content_box(self.max_gray))
        update = self.recognizer.add_landmarks(t, pose, hands["left"], hands["right"], width, height)
        seen = {"body": bool(np.isfinite(pose).all()),
                **{side: sources[side] != HandSource.MISSING for side in ("left", "right")}}
        return {"seen": seen, **(update or {})}

    def close(self) -> None:
        self.extractor.close()
