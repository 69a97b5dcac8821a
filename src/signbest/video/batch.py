"""Batch extraction: a folder (or list) of videos -> one pose file per clip, a manifest and a failures file.

Resumable and kill-safe: clips whose pose file exists are skipped, files are written atomically, the
manifest is appended as clips finish (and rebuilt from the files on the next run), and a video that
cannot be decoded goes to `failures.csv` while the others go on.
"""
from __future__ import annotations

import csv
import io
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .holistic import VIDEO_SUFFIXES, ExtractConfig, HolisticExtractor
from ..atomic import remove_partials
from ..outputs import claim_folder
from .writers import FORMATS, atomic_bytes, summary_row, write_clip

MANIFEST, FAILURES, LOG = "manifest.csv", "failures.csv", "extract.log"


def list_videos(inputs: list[str | Path]) -> list[Path]:
    """Videos named by files, folders (searched recursively) and list files (.txt: one path per line;
    .csv: a `video_file` column or the first one), relative paths taken from the list file's folder."""
    videos = []
    for item in map(Path, inputs):
        if item.is_dir():
            videos += sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        elif item.suffix.lower() in (".txt", ".csv", ".lst"):
            if not item.is_file():
                raise FileNotFoundError(f"{item}: no such list file")
            with open(item, newline="") as f:
                if item.suffix.lower() == ".csv":
                    rows = list(csv.DictReader(f))
                    col = "video_file" if rows and "video_file" in rows[0] else (next(iter(rows[0])) if rows else None)
                    names = [r[col] for r in rows if col and r[col]]
                else:
                    names = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
            videos += [p if p.is_absolute() else item.parent / p for p in map(Path, names)]
        else:
            videos.append(item)  # a missing or undecodable file is reported per clip, not here
    stems: dict[str, Path] = {}
    for v in videos:
        if v.stem in stems and stems[v.stem] != v:
            raise ValueError(f"two videos share the name {v.stem!r}, so their pose files would collide: "
                             f"{stems[v.stem]} and {v}")
        stems[v.stem] = v
    return list(dict.fromkeys(videos))


@dataclass
class ExtractReport:
    done: list[dict] = field(default_factory=list)  # manifest rows of clips extracted in this run
    skipped: int = 0  # clips already extracted by an earlier run
    failures: list[tuple[str, str]] = field(default_factory=list)  # (video, error)
    frames: int = 0
    seconds: float = 0.0


_EXTRACTOR: HolisticExtractor | None = None  # one per worker process: MediaPipe graphs are costly to build
_INIT_ERROR: str | None = None  # why the worker could not build them: reported per clip, never a respawn loop


def _init_worker(cfg: ExtractConfig, log: str, threads: int = 1) -> None:
    global _EXTRACTOR
    # MediaPipe's C++ side and ffmpeg print warnings on the process's stderr, through the progress bar:
    # send them to a log file in the output folder instead. Errors still reach the user as failures.
    global _INIT_ERROR
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
        import cv2
        cv2.setNumThreads(threads)  # the decoder's share of the cores: workers must not spin against each other
        _EXTRACTOR = HolisticExtractor(cfg)
    except Exception as e:  # a raising initializer makes multiprocessing respawn workers forever
        _INIT_ERROR = f"worker could not start MediaPipe: {type(e).__name__}: {e}"


def _extract_one(job: tuple[Path, Path]) -> tuple[Path, dict | str]:
    """(video, manifest row) or (video, error message): one bad video must not stop the batch."""
    video, out_file = job
    if _INIT_ERROR is not None:
        return video, _INIT_ERROR
    try:
        clip = _EXTRACTOR.extract(video)
        write_clip(out_file, clip)
        return video, summary_row(video, out_file, clip)
    except Exception as e:  # noqa: BLE001  one clip's failure (MediaPipe or decoder included) must not end the batch
        return video, f"{type(e).__name__}: {e}"


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("pose_file")]


def _write_rows(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    if rows:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    atomic_bytes(path, buf.getvalue().encode())


def _row_from_file(video: Path, out_file: Path) -> dict:
    """Manifest row rebuilt from a finished file (a run killed between writing it and listing it)."""
    if out_file.suffix == ".npz":
        with np.load(out_file, allow_pickle=False) as d:
            return summary_row(video, out_file, {k: d[k] for k in d.files})
    return {"video_id": video.stem, "video_file": str(video.resolve()), "pose_file": out_file.name}


def extract_videos(inputs: list[str | Path], out: str | Path, workers: int = 1, fmt: str = "npz",
                   cfg: ExtractConfig | None = None, progress: bool = True) -> ExtractReport:
    """Extract every video into `out`; see the module docstring for the batch behaviour."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    cfg = cfg or ExtractConfig()
    out = Path(out)
    claim_folder(out, "extract", inputs)
    remove_partials(out)
    videos = list_videos(inputs)
    jobs = [(v, out / f"{v.stem}.{fmt}") for v in videos]
    pending = [j for j in jobs if not j[1].exists()]
    listed = {r["pose_file"]: r for r in _read_rows(out / MANIFEST) if (out / r["pose_file"]).exists()}
    for v, f in jobs:
        if f.exists() and f.name not in listed:
            listed[f.name] = _row_from_file(v, f)
    rows = list(listed.values())
    _write_rows(out / MANIFEST, rows)
    report = ExtractReport(skipped=len(jobs) - len(pending))
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(pending), unit="clip", desc="extract", dynamic_ncols=True,
                   mininterval=0.1 if sys.stderr.isatty() else 30.0)  # a line every 30 s in a log
    ctx = multiprocessing.get_context("spawn")  # MediaPipe's graphs and threads do not survive a fork
    with open(out / MANIFEST, "a", newline="") as manifest:
        threads = max(1, len(os.sched_getaffinity(0)) // workers) if hasattr(os, "sched_getaffinity") else 1
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(cfg, str(out / LOG), threads)) if pending else None
        try:
            header = list(rows[0]) if rows else None
            for video, result in (pool.imap_unordered(_extract_one, pending) if pool else []):
                if isinstance(result, dict):
                    if header is None:  # first row of a new manifest: its header
                        header = list(result)
                        csv.writer(manifest).writerow(header)
                    csv.writer(manifest).writerow([result.get(k, "") for k in header])
                    manifest.flush()
                    rows.append(result)
                    report.done.append(result)
                    report.frames += result["frames"]
                else:
                    report.failures.append((str(video), result))
                if bar is not None:
                    dt = time.perf_counter() - t0
                    bar.set_postfix(frames_per_s=f"{report.frames / max(dt, 1e-9):.1f}", failed=len(report.failures))
                    bar.update()
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            if bar is not None:
                bar.close()
    report.seconds = time.perf_counter() - t0
    _write_rows(out / MANIFEST, rows)  # whole and consistent, whatever was appended above
    _write_rows(out / FAILURES, [{"video_file": v, "error": e} for v, e in report.failures])
    return report
