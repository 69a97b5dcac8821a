"""What a user gives to predict and serve: files and folders -> clips, and videos -> pose files.

A folder stands for the pose files and videos in it, or is itself one OpenPose clip when it holds nothing
but OpenPose frame files. Video extraction is imported only when a video is given.
"""
from __future__ import annotations

from pathlib import Path

from .data.pool import POSE_SUFFIXES


def extract_videos(videos: list[Path], tmp: Path) -> tuple[dict[Path, Path], dict[Path, str]]:
    """Pose files for the videos among the inputs (MediaPipe Holistic), and errors of those that fail."""
    try:
        from .video.holistic import HolisticExtractor, VideoError
        extractor = HolisticExtractor()
    except ImportError as e:
        raise ValueError(f"{videos[0]}: videos need the video extra (pip install 'signbest[video]'); pose files "
                         f"work without it ({e})") from None
    from .video.writers import write_npz

    poses, errors = {}, {}
    try:
        for i, v in enumerate(videos):
            try:
                write_npz(tmp / f"video{i}.npz", extractor.extract(v))
                poses[v] = tmp / f"video{i}.npz"
            except VideoError as e:
                errors[v] = str(e)
    finally:
        extractor.close()
    return poses, errors


def is_openpose_folder(folder: Path) -> bool:
    """A folder is one OpenPose clip only when every visible file in it is an OpenPose frame file."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")]
    return bool(files) and all(p.name.endswith("_keypoints.json") for p in files)


def expand_inputs(files: list[str | Path]) -> tuple[list[Path], list[Path], dict[Path, str]]:
    """(clips, strays, refused): files as given; a folder stands for the pose files and videos in it
    (or is itself one OpenPose clip, see `is_openpose_folder`). Strays are a folder's other files;
    OpenPose frame files among other clips are refused, each with the reason."""
    from .video.holistic import VIDEO_SUFFIXES

    paths, strays, refused = [], [], {}
    for f in map(Path, files):
        if not f.is_dir() or is_openpose_folder(f):
            paths.append(f)
            continue
        for p in sorted(f.iterdir()):
            if p.name.startswith(".") or p.is_dir():
                continue
            if p.name.endswith("_keypoints.json"):
                refused[p] = ("an OpenPose frame file among other clips: one clip's frames belong in a folder of "
                              "their own")
            elif p.suffix.lower() in POSE_SUFFIXES | VIDEO_SUFFIXES:
                paths.append(p)
            else:
                strays.append(p)
    return paths, strays, refused
