"""Video extraction: hand-recovery geometry (pure numpy), batch behaviour and real clips (need signbest[video])."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from signbest.video.batch import list_videos
from signbest.video.recovery import (HandSource, RecoveryConfig, crop_to_frame, hand_crop_box, interpolate_gaps,
                                     pick_candidate)

try:
    from signbest.video.holistic import require_mediapipe
    require_mediapipe()
    HAVE_MP = True
except ImportError:
    HAVE_MP = False
needs_mp = pytest.mark.skipif(not HAVE_MP, reason="video extraction needs the extra: pip install 'signbest[video]'")
WLASL = Path(__file__).resolve().parents[2] / "shared" / "data" / "wlasl100"


def _pose(wrist=(100.0, 100.0), vis=0.9) -> tuple[np.ndarray, np.ndarray]:
    p = np.full((33, 2), 50.0, np.float32)
    p[13] = (wrist[0], wrist[1] + 60)  # left elbow below the wrist
    p[15] = wrist
    p[17], p[19] = (wrist[0] - 8, wrist[1] - 15), (wrist[0] + 8, wrist[1] - 15)
    v = np.ones(33, np.float32)
    v[15] = vis
    return p, v


def test_crop_box_covers_the_hand_and_refuses_unseen_wrists():
    cfg = RecoveryConfig()
    p, v = _pose()
    cx, cy, side = hand_crop_box(p, v, "left", 256, 256, cfg)
    assert abs(cx - 100) < side / 2 and abs(cy - 100) < side / 2  # wrist inside the box
    assert cy < 100  # centred towards the knuckles, not the elbow
    assert side >= cfg.min_crop_px
    assert hand_crop_box(*_pose(vis=0.2), "left", 256, 256, cfg) is None  # barely visible wrist
    assert hand_crop_box(*_pose(wrist=(100.0, 270.0)), "left", 256, 256, cfg) is None  # below the frame
    p[19] = np.nan
    assert hand_crop_box(p, v, "left", 256, 256, cfg) is None


def test_crop_to_frame_maps_crop_corners_to_the_box():
    lm = np.array([[0.0, 0.0, 0.1], [1.0, 1.0, 0.0], [0.5, 0.5, 0.0]] + [[0.5, 0.5, 0.0]] * 18, np.float32)
    out = crop_to_frame(lm, (100.0, 80.0, 40.0))
    np.testing.assert_allclose(out[0, :2], [80, 60])
    np.testing.assert_allclose(out[1, :2], [120, 100])
    np.testing.assert_allclose(out[2, :2], [100, 80])
    assert out[0, 2] == pytest.approx(4.0)


def test_pick_candidate_takes_the_near_hand_and_never_the_other_one():
    cfg = RecoveryConfig()
    hand = lambda x, y: np.tile(np.array([[x, y, 0.0]], np.float32), (21, 1))
    near, far = hand(102, 98), hand(180, 180)
    assert pick_candidate([far, near], np.array([100, 100]), None, 60, cfg) is near
    assert pick_candidate([far], np.array([100, 100]), None, 60, cfg) is None
    # the only detection is the hand Holistic already assigned to the other side: not a new hand
    assert pick_candidate([near], np.array([100, 100]), hand(101, 99), 60, cfg) is None


def test_interpolation_fills_short_inner_gaps_only():
    t = 12
    hand = np.full((t, 21, 3), np.nan, np.float32)
    src = np.zeros(t, np.uint8)
    for i in (1, 4, 10):  # gaps: 2 frames (2-3), 5 frames (5-9); frame 0 and 11 at the ends
        hand[i], src[i] = float(i), HandSource.HOLISTIC
    h, s = interpolate_gaps(hand, src, max_gap=3)
    np.testing.assert_allclose(h[2:4, 0, 0], [2.0, 3.0])
    assert list(s[2:4]) == [HandSource.INTERPOLATED] * 2
    assert np.isnan(h[5:10]).all() and (s[5:10] == HandSource.MISSING).all()  # too long
    assert np.isnan(h[[0, 11]]).all()  # nothing to interpolate from on one side
    assert np.isnan(hand[2]).all()  # input untouched


def test_list_videos_reads_folders_and_lists_and_refuses_name_clashes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for p in ("a/x.mp4", "a/y.MOV", "a/notes.txt", "b/z.mp4"):
        (tmp_path / p).write_bytes(b"")
    assert [p.name for p in list_videos([tmp_path / "a"])] == ["x.mp4", "y.MOV"]
    (tmp_path / "list.txt").write_text("# clips\na/x.mp4\nb/z.mp4\n")
    assert list_videos([tmp_path / "list.txt"]) == [tmp_path / "a/x.mp4", tmp_path / "b/z.mp4"]
    (tmp_path / "list.csv").write_text("gloss,video_file\nhello,b/z.mp4\n")
    assert list_videos([tmp_path / "list.csv"]) == [tmp_path / "b/z.mp4"]
    (tmp_path / "b/x.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="share the name 'x'"):
        list_videos([tmp_path / "a", tmp_path / "b"])


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe now raises ImportError
    from signbest.video.holistic import require_mediapipe as req
    with pytest.raises(ImportError, match=r"pip install 'signbest\[video\]'"):
        req()


def _write_video(path: Path, frames: int, size: int = 96) -> None:
    import cv2
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (size, size))
    for i in range(frames):
        img = np.full((size, size, 3), 40, np.uint8)
        cv2.circle(img, (10 + i % (size - 20), size // 2), 8, (200, 180, 160), -1)
        w.write(img)
    w.release()


def _signbest(*args, **kw):
    return subprocess.run([sys.executable, "-m", "signbest", *map(str, args)], capture_output=True, text=True, **kw)


@needs_mp
def test_batch_skips_finished_clips_and_reports_corrupt_videos(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    for name, n in (("a", 10), ("b", 7)):
        _write_video(src / f"{name}.mp4", n)
    (src / "corrupt.mp4").write_bytes((src / "a.mp4").read_bytes()[:300])
    out = tmp_path / "out"
    r = _signbest("extract", src, "-o", out, "--workers", "2", "--empty-ok")  # drawn circles: no person
    assert r.returncode == 1, r.stderr  # something failed: the exit status says so
    with open(out / "failures.csv") as f:
        failed = list(csv.DictReader(f))
    assert [Path(x["video_file"]).name for x in failed] == ["corrupt.mp4"]
    assert "corrupt.mp4" in failed[0]["error"]
    with open(out / "manifest.csv") as f:
        rows = {x["video_id"]: x for x in csv.DictReader(f)}
    assert {k: int(v["frames"]) for k, v in rows.items()} == {"a": 10, "b": 7}
    with np.load(out / "a.npz") as d:
        assert d["pose"].shape == (10, 33, 4) and d["left_hand"].shape == (10, 21, 3)
        assert str(d["extractor"]).startswith("mediapipe-holistic 0.10.21")
        assert float(d["fps"]) == 25.0 and int(d["width"]) == 96
        assert np.isnan(d["left_hand"]).all()  # no person in these frames: nothing invented
    mtime = (out / "a.npz").stat().st_mtime_ns
    (src / "corrupt.mp4").unlink()
    r = _signbest("extract", src, "-o", out, "--empty-ok")
    assert r.returncode == 0, r.stderr
    assert "skipped 2 already done" in r.stdout
    assert (out / "a.npz").stat().st_mtime_ns == mtime  # not redone


@needs_mp
def test_a_video_without_a_person_is_a_failure_and_no_video_is_exit_1(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    _write_video(src / "nobody.mp4", 6)
    r = _signbest("extract", src, "-o", tmp_path / "out")
    assert r.returncode == 1 and "nobody.mp4" in r.stderr and "no person found in any of its 6 frames" in r.stderr
    assert not (tmp_path / "out" / "nobody.npz").exists()
    (tmp_path / "empty").mkdir()
    r = _signbest("extract", tmp_path / "empty", "-o", tmp_path / "out2")
    assert r.returncode == 1 and "no videos found in" in r.stderr and "Traceback" not in r.stderr


@needs_mp
def test_killed_run_leaves_no_partial_file_and_resumes(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    for i in range(6):
        _write_video(src / f"clip{i}.mp4", 60, size=160)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "signbest", "extract", str(src), "-o", str(out), "--empty-ok"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("*.npz")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = list(out.glob("*.npz"))
    assert 1 <= len(done) < 6, "the kill should land mid-run"
    for f in done:  # every file under its final name is complete
        with np.load(f) as d:
            assert d["pose"].shape == (60, 33, 4)
    r = _signbest("extract", src, "-o", out, "--empty-ok")
    assert r.returncode == 0, r.stderr
    assert f"skipped {len(done)} already done" in r.stdout
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".partial")) == []  # partials cleaned up
    with open(out / "manifest.csv") as f:
        assert sorted(x["video_id"] for x in csv.DictReader(f)) == [f"clip{i}" for i in range(6)]


@needs_mp
@pytest.mark.skipif(not WLASL.exists(), reason="needs ../shared/data/wlasl100 (real sign videos)")
@pytest.mark.parametrize("fmt", ["npz", "pose"])
def test_real_clip_gives_its_frames_and_plausible_joints(tmp_path, fmt):
    from signbest.pose import read_pose
    from signbest.video.batch import extract_videos

    video = WLASL / "videos" / "00626.mp4"
    rep = extract_videos([video], tmp_path, fmt=fmt, progress=False)
    assert not rep.failures and len(rep.done) == 1
    with np.load(WLASL / "poses" / "00626.npz") as ref:
        frames = len(ref["pose"])
        ref_right = np.isfinite(ref["right_hand"][:, 0, 0])
    seq = read_pose(tmp_path / f"00626.{fmt}")
    assert seq.body.shape == (frames, 7, 2)
    body = seq.body[seq.body_conf > 0.5]
    assert ((body >= 0) & (body <= 256)).all()  # in the 256x256 frame
    right = seq.right_conf[:, 0] > 0
    assert right.sum() >= ref_right.sum()  # at least what Holistic alone found in the shared data
    wrist_gap = np.linalg.norm(seq.right[right, 0] - seq.body[right, 6], axis=-1)
    assert np.median(wrist_gap) < 15  # hand wrist and pose wrist agree (pixels)
    if fmt == "npz":
        with np.load(tmp_path / "00626.npz") as d:
            src = d["right_hand_source"]
            assert ((src == HandSource.HOLISTIC) == ref_right).all()  # same as the shared extraction
            # this clip has one left-hand dropout that the crop pass bridges: the hand sits on the pose wrist
            crop = np.flatnonzero(d["left_hand_source"] == HandSource.CROP)
            assert len(crop) >= 1
            gap = np.linalg.norm(d["left_hand"][crop, 0, :2] - d["pose"][crop, 15, :2], axis=-1) * 256
            assert (gap < 20).all()


def test_pick_candidate_drops_hands_reaching_out_of_the_picture():
    cfg = RecoveryConfig()
    hand = np.tile(np.array([[100.0, 100.0, 0.0]], np.float32), (21, 1))
    hand[10:, 1] = 200.0  # half the joints below a letterboxed picture ending at y=180
    assert pick_candidate([hand], np.array([100, 100]), None, 60, cfg, picture=(0, 20, 256, 180)) is None
    assert pick_candidate([hand], np.array([100, 100]), None, 60, cfg, picture=(0, 0, 256, 256)) is hand


def test_content_box_finds_letterbox_bars():
    from signbest.video.recovery import content_box
    img = np.zeros((256, 256), np.uint8)
    img[30:220, 10:250] = 60
    img[100, 100] = 0
    assert content_box(img) == (10, 30, 250, 220)
    assert content_box(np.zeros((50, 40), np.uint8)) == (0, 0, 40, 50)  # all black: the whole frame


def test_recovered_hands_are_kept_only_near_holistic_ones():
    from signbest.video.recovery import keep_bridges
    t = 20
    hand = np.zeros((t, 21, 3), np.float32)
    src = np.zeros(t, np.uint8)
    src[[2, 3]] = HandSource.HOLISTIC
    src[[5, 9, 15]] = HandSource.CROP  # 2, 6 and 12 frames from the nearest Holistic hand
    h, s = keep_bridges(hand, src, max_bridge=6)
    assert list(np.flatnonzero(s == HandSource.CROP)) == [5, 9]
    assert np.isnan(h[15]).all() and s[15] == HandSource.MISSING
    h, s = keep_bridges(hand, np.where(src == HandSource.HOLISTIC, 0, src).astype(np.uint8), 6)
    assert (s != HandSource.CROP).all()  # no Holistic hand in the clip: no re-detection is trusted


@needs_mp
@pytest.mark.skipif(not WLASL.exists(), reason="needs ../shared/data/wlasl100 (real sign videos)")
def test_train_extracts_a_manifest_of_videos_first(tmp_path):
    """`signbest train` on a manifest whose pose_file column names videos: they are extracted into
    OUT/extract (resumably) and the stages read the pose manifest."""
    from signbest.data import read_manifest
    from signbest.pipeline import extract_if_videos

    videos = sorted((WLASL / "videos").glob("*.mp4"))[:2]
    rows = ["clip_id,pose_file,gloss,signer"] + [f"{v.stem},{v},g{i},p{i}" for i, v in enumerate(videos)]
    (tmp_path / "videos.csv").write_text("\n".join(rows) + "\n")
    poses = extract_if_videos(tmp_path / "videos.csv", tmp_path / "run")
    m = read_manifest(poses)
    assert [c.pose_file.suffix for c in m.clips] == [".npz", ".npz"] and [c.gloss for c in m.clips] == ["g0", "g1"]
    assert all(c.pose_file.parent == (tmp_path / "run" / "extract").resolve() for c in m.clips)
