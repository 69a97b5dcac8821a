"""Build manifests from official split files and a user's local folder of pose files.

Each adapter reads one official format (see ../shared/data/metadata) and looks up
``<pose_dir>/<clip name>.<ext>`` for every clip, for any extension `read_pose` accepts. Clips whose
pose file is absent are left out and counted, so a partial download still gives a usable manifest.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from .manifest import Clip

POSE_EXTENSIONS = (".npz", ".pose", ".npy", ".json", ".parquet")


def find_pose_file(pose_dir: Path, name: str) -> Path | None:
    for ext in POSE_EXTENSIONS:
        p = pose_dir / f"{name}{ext}"
        if p.exists():
            return p
    folder = pose_dir / name  # OpenPose: one folder of per-frame JSON per clip
    return folder if folder.is_dir() else None


def _collect(entries, pose_dir: Path) -> tuple[list[Clip], list[str]]:
    """entries: (clip_id, file name without extension, gloss, label, split, signer)."""
    clips, missing = [], []
    for clip_id, name, gloss, label, split, signer in entries:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"clip {clip_id!r}: its name {name!r} would reach outside the pose folder {pose_dir}")
        path = find_pose_file(pose_dir, name)
        if path is None:
            missing.append(clip_id)
        else:
            clips.append(Clip(clip_id, path.resolve(), gloss, label, split, str(signer)))
    return clips, missing


def wlasl(split_file: Path, pose_dir: Path) -> tuple[list[Clip], list[str]]:
    """WLASL_v0.3.json or a subset file (asl100.json, ...): glosses in file order are labels 0..N-1."""
    doc = json.loads(Path(split_file).read_text())
    entries = [(inst["video_id"], inst["video_id"], entry["gloss"], label, inst["split"], inst.get("signer_id", ""))
               for label, entry in enumerate(doc) for inst in entry["instances"]]
    return _collect(entries, Path(pose_dir))


def msasl(split_files: list[Path], pose_dir: Path) -> tuple[list[Clip], list[str]]:
    """MS-ASL JSON lists (e.g. MS_ASL_SI_ASL100_{train,val,test}.json); the split comes from the file name.

    MS-ASL ships no clip ids: a clip is named ``<youtube id>_<start frame>_<end frame>``.
    """
    entries = []
    for f in split_files:
        split = re.search(r"_(train|val|test)\.json$", str(f))
        split = split.group(1) if split else Path(f).stem
        for e in json.loads(Path(f).read_text()):
            yt = e["url"].split("v=")[-1].split("&")[0].split("/")[-1]
            name = f"{yt}_{e['start']}_{e['end']}"
            entries.append((name, name, e["clean_text"], int(e["label"]), split, e.get("signer_id", "")))
    return _collect(entries, Path(pose_dir))


def slr500(split_files: list[Path], pose_dir: Path) -> tuple[list[Clip], list[str]]:
    """SLR500 (CSL isolated) split.{train,test}.csv: video_path like 000/P09_01_00_3._color.mp4.

    Label = folder number, signer = the P-number; the pose file mirrors the video's path.
    """
    entries = []
    for f in split_files:
        split = "test" if "test" in Path(f).name else "train"
        with open(f, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rel = row["video_path"].rsplit(".mp4", 1)[0]
                folder, base = rel.split("/", 1)
                entries.append((rel, rel, row["class_name"], int(folder), split, base.split("_")[0]))
    return _collect(entries, Path(pose_dir))


def nmfs_csl(list_files: list[Path], pose_dir: Path, glosses: list[str] | None = None) -> tuple[list[Clip], list[str]]:
    """NMFs-CSL list files (train.txt / test.txt): one ``<relative video path> <label>`` per line.

    The release names videos ``P<signer>_...``; the signer is read from it where present.
    """
    entries = []
    for f in list_files:
        split = "test" if "test" in Path(f).name else "train"
        for line in Path(f).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rel, label = line.split()[:2]
            name = re.sub(r"\.(mp4|avi|mov)$", "", rel)
            m = re.search(r"P(\d+)", Path(name).name)
            gloss = glosses[int(label)] if glosses else f"class{int(label):04d}"
            entries.append((name, name, gloss, int(label), split, m.group(1) if m else ""))
    return _collect(entries, Path(pose_dir))


ADAPTERS = {"wlasl": wlasl, "msasl": msasl, "slr500": slr500, "nmfs-csl": nmfs_csl}


def read_split_files(dataset: str, files: list[Path], pose_dir: Path) -> tuple[list[Clip], list[str]]:
    """The adapter of `dataset` on `files`; a file of another format is one line naming it and what is off."""
    fn = ADAPTERS[dataset]
    try:
        return fn(files[0], pose_dir) if dataset == "wlasl" else fn(files, pose_dir)
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        what = f"no field {e}" if isinstance(e, KeyError) else f"unexpected layout ({type(e).__name__}: {str(e)[:120]})"
        raise ValueError(f"{', '.join(map(str, files))}: not a {dataset} split file: {what}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{', '.join(map(str, files))}: not a UTF-8 text file (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{', '.join(map(str, files))}: not valid JSON (line {e.lineno}: {e.msg})") from None
