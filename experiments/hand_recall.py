"""Hand recall of `signbest extract` on real sign videos: how many frames have each hand with Holistic
alone, after the crop re-detection pass and after short-gap interpolation, why the rest are missed,
and contact sheets to check by eye (misses to classify, recovered hands to verify).

    python experiments/hand_recall.py                       # ../shared/data/wlasl100/videos, 2 workers
    python experiments/hand_recall.py --videos DIR --out runs/hand-recall --sample 24

Needs the video extra (pip install 'signbest[video]'). Extraction results are kept in --out, so a rerun
only redoes the analysis.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from signbest.data.cache import cache_dir
from signbest.video.batch import extract_videos
from signbest.video.holistic import ExtractConfig
from signbest.video.recovery import POSE_HAND, HandSource, RecoveryConfig, hand_crop_box

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("left", "right")


def miss_kind(pose: np.ndarray, side: str, w: int, h: int, cfg: RecoveryConfig, picture) -> str:
    """Where the pose model puts a missed hand: out of view, cut by the picture's edge, or in view."""
    px = pose[:, :2] * np.array([w, h])
    box = hand_crop_box(px, pose[:, 3], side, w, h, cfg, picture)
    if box is None:
        return "out of view"
    cx, cy, s = box
    x0, y0, x1, y1 = picture
    inside = max(min(cx + s / 2, x1) - max(cx - s / 2, x0), 0) * max(min(cy + s / 2, y1) - max(cy - s / 2, y0), 0) / (s * s)
    return "at the edge" if inside < 0.75 else "in view"


def analyse(out: Path, cfg: RecoveryConfig) -> tuple[dict, list]:
    counts = {s: {"frames": 0, **{k.name: 0 for k in HandSource}} for s in SIDES}
    kinds = {s: {"out of view": 0, "at the edge": 0, "in view": 0} for s in SIDES}
    events = []  # (file, frame, side, kind, source) for the contact sheets
    seconds = recovery = 0.0
    for f in sorted(out.glob("*.npz")):
        with np.load(f) as d:
            pose, w, h = d["pose"], int(d["width"]), int(d["height"])
            picture = tuple(d["picture"]) if "picture" in d.files else (0, 0, w, h)
            seconds += float(d["seconds"])
            recovery += float(d["recovery_seconds"])
            for s in SIDES:
                src = d[f"{s}_hand_source"]
                counts[s]["frames"] += len(src)
                for k in HandSource:
                    counts[s][k.name] += int((src == k).sum())
                for t in np.flatnonzero(src != HandSource.HOLISTIC):
                    kind = miss_kind(pose[t], s, w, h, cfg, picture) if np.isfinite(pose[t]).all() else "out of view"
                    kinds[s][kind] += 1
                    events.append((str(d["video"]), int(t), s, kind, int(src[t]), d[f"{s}_hand"][t], pose[t], w, h))
    share = lambda s, *ks: 100.0 * sum(counts[s][k] for k in ks) / max(counts[s]["frames"], 1)
    table = {s: {"holistic %": share(s, "HOLISTIC"), "+ crop %": share(s, "HOLISTIC", "CROP"),
                 "+ crop + interpolation %": share(s, "HOLISTIC", "CROP", "INTERPOLATED"),
                 "holistic misses by pose": kinds[s], **counts[s]} for s in SIDES}
    table["seconds"], table["recovery_seconds"] = seconds, recovery
    return table, events


def contact_sheet(events: list, path: Path, title: str, cols: int = 6) -> None:
    import cv2

    tiles = []
    for video, t, side, kind, src, hand, pose, w, h in events:
        cap = cv2.VideoCapture(video)
        cap.set(cv2.CAP_PROP_POS_FRAMES, t)
        ok, img = cap.read()
        cap.release()
        if not ok:
            continue
        wrist = pose[POSE_HAND[side][1], :2] * (w, h)
        if np.isfinite(wrist).all():  # where the pose model puts it (no pose found: no mark)
            cv2.circle(img, (int(wrist[0]), int(wrist[1])), 5, (0, 0, 255), 2)
        if np.isfinite(hand).all():
            for x, y in hand[:, :2] * (w, h):
                cv2.circle(img, (int(x), int(y)), 2, (0, 255, 0), -1)
        img = cv2.resize(img, (256, 256))
        cv2.putText(img, f"{len(tiles)}: {Path(video).stem}:{t} {side[0].upper()} {kind}", (3, 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles.append(img)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    cv2.putText(sheet, title, (3, sheet.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
    cv2.imwrite(str(path), sheet)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=str(ROOT.parent / "shared" / "data" / "wlasl100" / "videos"))
    ap.add_argument("--out", default=None, help="extraction folder (default: the signbest cache)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sample", type=int, default=24, help="frames per contact sheet")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out) if args.out else cache_dir() / "hand-recall"
    cfg = ExtractConfig()
    rep = extract_videos([args.videos], out, workers=args.workers, cfg=cfg)
    if rep.done:
        print(f"extracted {len(rep.done)} clips, {rep.frames} frames, {rep.frames / rep.seconds:.1f} frames/s")
    table, events = analyse(out, cfg.recovery)
    (out / "hand_recall.json").write_text(json.dumps(table, indent=2))
    print(json.dumps(table, indent=2))
    rng = np.random.default_rng(args.seed)
    pick = lambda evs: [evs[i] for i in sorted(rng.choice(len(evs), min(args.sample, len(evs)), replace=False))]
    misses = [e for e in events if e[4] == HandSource.MISSING and e[3] != "out of view"]
    recovered = [e for e in events if e[4] == HandSource.CROP]
    out_of_view = [e for e in events if e[4] == HandSource.MISSING and e[3] == "out of view"]
    for name, evs in (("misses_in_view", misses), ("recovered", recovered), ("misses_out_of_view", out_of_view)):
        if evs:
            contact_sheet(pick(evs), out / f"sheet_{name}.png", f"{name}: red = pose wrist, green = hand")
            print(f"wrote {out / f'sheet_{name}.png'}")


if __name__ == "__main__":
    main()
