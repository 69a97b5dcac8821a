"""The manifest: one CSV row per clip, the only thing a dataset needs to know about a corpus.

Columns: clip_id, pose_file (relative to the CSV's folder, or absolute), gloss, label, split, signer.
WLASL100's metadata.csv in ../shared/data is itself a valid manifest (video_id and signer_id are
read as clip_id and signer). Without a gloss column the clips are unlabelled (every split "train"
unless given): enough for tokenizer training, pre-training and `inspect`, refused by fine-tuning. The
manifest.csv that `signbest extract` writes is such a manifest.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic import atomic_write, check_output_file

log = logging.getLogger(__name__)
COLUMNS = ("clip_id", "pose_file", "gloss", "label", "split", "signer")
ALIASES = {"video_id": "clip_id", "signer_id": "signer", "path": "pose_file", "sign": "gloss",
           "participant_id": "signer", "sequence_id": "clip_id", "signer_proxy": "signer"}


@dataclass(frozen=True)
class Clip:
    clip_id: str  # unique within the manifest
    pose_file: Path  # absolute path of the pose file or OpenPose folder
    gloss: str  # the sign's word
    label: int  # class index, 0..num_classes-1
    split: str  # train | val | test | any other name
    signer: str  # signer id ("" if unknown)


@dataclass
class Manifest:
    clips: list[Clip]
    glosses: list[str]  # label -> gloss
    path: Path | None = None  # the CSV it came from
    labelled: bool = True  # False for a manifest without glosses (pre-training pools)

    def __post_init__(self):
        ids = [c.clip_id for c in self.clips]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise ValueError(f"{self.path}: duplicate clip ids {dup}")
        for c in self.clips:
            if not 0 <= c.label < len(self.glosses):
                raise ValueError(f"{self.path}: clip {c.clip_id} has label {c.label}, "
                                 f"outside 0..{len(self.glosses) - 1}")

    @property
    def num_classes(self) -> int:
        return len(self.glosses)

    def select(self, split: str | None) -> "Manifest":
        """Clips of one split (None or 'all' = every clip); the gloss list is kept whole."""
        if split in (None, "all"):
            return self
        keep = [c for c in self.clips if c.split == split]
        if not keep:
            have = sorted({c.split for c in self.clips})
            raise ValueError(f"{self.path}: no clip in split '{split}' (splits present: {have})")
        return Manifest(keep, self.glosses, self.path, self.labelled)


def _row(raw: dict) -> dict:
    return {ALIASES.get(k, k): (v or "").strip() for k, v in raw.items() if k}


def read_manifest(path: str | Path) -> Manifest:
    """Read a manifest CSV (or a folder holding manifest.csv / metadata.csv)."""
    path = Path(path)
    if path.is_dir():
        for name in ("manifest.csv", "metadata.csv"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise FileNotFoundError(f"{path}: folder has no manifest.csv or metadata.csv")
    try:  # utf-8-sig: a CSV saved by Excel starts with a byte-order mark
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [_row(r) for r in csv.DictReader(f)]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {e.start}: {e.reason}); save the manifest as UTF-8 CSV") from None
    if not rows:
        raise ValueError(f"{path}: the manifest has no rows")
    for line, r in enumerate(rows, start=2):
        bad = next((k for k, v in r.items() if "\x00" in v or "\x00" in k), None)
        if bad is not None:
            raise ValueError(f"{path}: line {line}: column '{bad[:40]}' holds a NUL byte; the file is damaged or binary")
    missing = {"clip_id", "pose_file"} - set(rows[0])
    if missing:
        raise ValueError(f"{path}: manifest lacks columns {sorted(missing)} (has {sorted(rows[0])})")
    labelled = "gloss" in rows[0]
    if not labelled:
        rows = [{**r, "gloss": "<unlabelled>", "label": "0"} for r in rows]
    has_labels = all(r.get("label", "") != "" for r in rows)
    if has_labels:
        glosses: dict[int, str] = {}
        labels_of: dict[str, int] = {}
        for line, r in enumerate(rows, start=2):
            try:
                label = int(r["label"])
            except ValueError:
                raise ValueError(f"{path}: line {line}: label {r['label'][:40]!r} is not a whole number") from None
            if label < 0 or label > 100_000:
                raise ValueError(f"{path}: line {line}: label {label} is out of range (0..100000)")
            if glosses.setdefault(label, r["gloss"]) != r["gloss"]:
                raise ValueError(f"{path}: line {line}: label {label} is '{r['gloss']}' here but "
                                 f"'{glosses[label]}' on an earlier line")
            if labels_of.setdefault(r["gloss"], label) != label:
                raise ValueError(f"{path}: line {line}: gloss '{r['gloss']}' has label {label} here but "
                                 f"{labels_of[r['gloss']]} on an earlier line")
            r["label"] = label
        n = max(glosses) + 1
        gloss_list = [glosses.get(i, f"<class {i}>") for i in range(n)]
        gaps = [i for i in range(n) if i not in glosses]
        if gaps and labelled:
            log.warning("%s: labels %s have no clip: the classifier gets %d classes, %d of them never seen; "
                        "number the labels 0..%d without gaps (or drop the label column)", path,
                        _ranges(gaps), n, len(gaps), len(glosses) - 1)
    else:  # no label column: number glosses alphabetically
        gloss_list = sorted({r["gloss"] for r in rows})
    index = {g: i for i, g in enumerate(gloss_list)}
    clips = []
    for r in rows:
        pf = Path(r["pose_file"])
        clips.append(Clip(r["clip_id"], pf if pf.is_absolute() else (path.parent / pf).resolve(), r["gloss"],
                          int(r["label"]) if has_labels else index[r["gloss"]],
                          r.get("split") or "train", r.get("signer", "")))
    _warn_shared_files(clips, path)
    return Manifest(clips, gloss_list, path, labelled)


def _ranges(values: list[int]) -> str:
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in _runs(values))


def _runs(values: list[int]):
    start = prev = values[0]
    for v in values[1:]:
        if v != prev + 1:
            yield start, prev
            start = v
        prev = v
    yield start, prev


def _warn_shared_files(clips: list[Clip], path: Path) -> None:
    """One pose file under two ids in two splits: the evaluation would test a clip that was trained on."""
    first: dict[Path, Clip] = {}
    shared = []
    for c in clips:
        other = first.setdefault(c.pose_file, c)
        if other is not c and other.split != c.split:
            shared.append((other, c))
    if shared:
        a, b = shared[0]
        log.warning("%s: %d pose files are listed in two splits, e.g. %s as '%s' (%s) and '%s' (%s): those clips are "
                    "tested on what was trained on", path, len(shared), a.pose_file.name, a.clip_id, a.split, b.clip_id, b.split)


def write_manifest(manifest_clips: list[Clip], path: str | Path, extra: dict[str, list] | None = None) -> Path:
    """Write atomically; pose paths are stored relative to the CSV's folder when they lie below it."""
    path = Path(path)
    check_output_file(path)
    extra = extra or {}

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(list(COLUMNS) + list(extra))
            for i, c in enumerate(manifest_clips):
                d = asdict(c)
                pf = Path(d["pose_file"])
                try:
                    d["pose_file"] = pf.resolve().relative_to(path.parent.resolve()).as_posix()
                except ValueError:
                    d["pose_file"] = str(pf)
                w.writerow([d[k] for k in COLUMNS] + [extra[k][i] for k in extra])
    atomic_write(path, write)
    return path
