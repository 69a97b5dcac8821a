"""Video extraction throughput: frames per second of `signbest extract` with 1 and 2 workers, with and
without the hand-recovery pass, on real sign videos (WLASL100 val, 256x256, 25 fps).

Usage: python bench/extract_throughput.py [--videos DIR] [--clips 60] [--workers 1 2]
Wall time of the whole batch call, worker start-up (MediaPipe graph building) included; outputs go to a
temporary folder. Needs the video extra (pip install 'signbest[video]').
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from signbest.video.batch import list_videos, extract_videos
from signbest.video.holistic import ExtractConfig

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=str(ROOT.parent / "shared" / "data" / "wlasl100" / "videos"))
    ap.add_argument("--clips", type=int, default=60, help="first N videos of the folder")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    videos = list_videos([args.videos])[:args.clips]
    print(f"{len(videos)} clips from {args.videos}")
    print("| workers | hand recovery | clips | frames | wall (s) | frames/s |")
    print("|---|---|---|---|---|---|")
    for recover in (False, True):
        cfg = ExtractConfig(recover_hands=recover, interpolate=recover)
        for n in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                rep = extract_videos(videos, tmp, workers=n, cfg=cfg, progress=False)
                wall = time.perf_counter() - t
            assert not rep.failures, rep.failures
            print(f"| {n} | {'on' if recover else 'off'} | {len(rep.done)} | {rep.frames} | {wall:.1f} | "
                  f"{rep.frames / wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
