"""Preprocess every clip of a manifest once (read + normalise) and keep the result in one cache file.

The cache key covers each pose file's path, size and modification time and the normalisation
settings, so an edited file or a changed setting rebuilds it. Cache files live under the user's cache
folder (``$SIGNBEST_CACHE``, else ``$XDG_CACHE_HOME/signbest``, else ``~/.cache/signbest``), never
beside the data, and are written atomically. Bad clips are skipped and reported, never fatal.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..atomic import atomic_write
from ..runtime import cache_dir, progress_bar_kwargs
from ..pose import NormalizeConfig, PoseError, normalize, read_pose
from ..pose.normalize import PREPROCESS_VERSION
from ..pose.sequence import BODY_FIRST
from .manifest import Manifest

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # layout of the cache file; the normalisation's own version is PREPROCESS_VERSION
ARRAYS = (*BODY_FIRST, *(f"{p}_mask" for p in BODY_FIRST))  # the arrays of a clip, in the cache's order


@dataclass
class PreprocessedSet:
    """All clips' normalised frames concatenated along time; clip i is frames offsets[i]:offsets[i+1]."""
    arrays: dict[str, np.ndarray]  # name -> (sum T, J, ...) array, see ARRAYS
    offsets: np.ndarray  # (N + 1,) int64
    clip_ids: list[str]  # ids of the clips that loaded, in manifest order
    failures: dict[str, str] = field(default_factory=dict)  # clip id -> error message

    def clip(self, i: int) -> dict[str, np.ndarray]:
        s, e = self.offsets[i], self.offsets[i + 1]
        return {k: v[s:e] for k, v in self.arrays.items()}

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def _key(manifest: Manifest, cfg: NormalizeConfig) -> str:
    h = hashlib.sha1(json.dumps({"v": CACHE_VERSION, "pre": PREPROCESS_VERSION, "cfg": asdict(cfg)}, sort_keys=True).encode())
    for c in manifest.clips:
        try:
            st = c.pose_file.stat()
            h.update(f"{c.clip_id}|{c.pose_file}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{c.clip_id}|{c.pose_file}|missing\n".encode())
    return h.hexdigest()[:20]


def clip_error(path: Path, e: Exception) -> str:
    """One clip's failure as reported: a PoseError names its file already; anything else gets it named."""
    return str(e) if isinstance(e, PoseError) else f"{path}: {type(e).__name__}: {e}"


class NothingReadable(PoseError):
    """No clip of a manifest could be read; `failures` maps each clip id to its error."""

    def __init__(self, message: str, failures: dict[str, str]):
        super().__init__(message)
        self.failures = failures


def preprocess(manifest: Manifest, cfg: NormalizeConfig | None = None, use_cache: bool = True,
               progress: bool = True) -> PreprocessedSet:
    cfg = cfg or NormalizeConfig()
    path = cache_dir() / "preprocessed" / f"{_key(manifest, cfg)}.npz"
    if use_cache and path.exists():
        try:
            return _load(path)
        except Exception as e:  # noqa: BLE001 - any damage (truncated zip, bad JSON) means: rebuild it
            log.warning("%s: unreadable cache entry (%s: %s); rebuilding it", path, type(e).__name__, e)
            path.unlink(missing_ok=True)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ARRAYS}
    lengths, ids, failures = [], [], {}
    for clip in tqdm(manifest.clips, desc="preprocess", unit="clip", **progress_bar_kwargs(progress)):
        try:
            norm = normalize(read_pose(clip.pose_file), cfg)
        except Exception as e:  # noqa: BLE001 - one bad clip is skipped and listed, never the end of the batch
            failures[clip.clip_id] = clip_error(clip.pose_file, e)
            continue
        for k in ARRAYS:
            parts[k].append(getattr(norm, k))
        lengths.append(norm.num_frames)
        ids.append(clip.clip_id)
    if not ids:
        first = next(iter(failures.values()), "the manifest is empty")
        raise NothingReadable(f"{manifest.path}: none of its {len(manifest.clips)} clips could be read; first "
                              f"error: {first}", failures)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    result = PreprocessedSet(arrays, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), ids, failures)
    if use_cache:
        _save(result, path)
    return result


def _save(s: PreprocessedSet, path: Path) -> None:
    meta = json.dumps({"clip_ids": s.clip_ids, "failures": s.failures})

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a path
            np.savez(f, offsets=s.offsets, meta=np.array(meta), **s.arrays)
    atomic_write(path, write)


def _load(path: Path) -> PreprocessedSet:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return PreprocessedSet({k: z[k] for k in ARRAYS}, z["offsets"], meta["clip_ids"], meta["failures"])
