"""Readers: every supported keypoint layout -> :class:`PoseSequence`.

`read_pose(path)` picks the reader from the file: MediaPipe Holistic `.npz` (signbest's own schema,
the one ../shared/data/wlasl100 uses), COCO-WholeBody `.npz`/`.npy`, pose-format `.pose`, MMPose
prediction `.json`, OpenPose per-frame JSON (a file or a folder of them) and GISLR `.parquet`.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .layouts import COCO_WHOLEBODY, MEDIAPIPE_HOLISTIC, OPENPOSE_BODY25, POSE_FORMAT_COMPONENTS, Layout
from .sequence import BODY_FIRST, MAX_FRAMES, PoseError, PoseSequence, fix_handedness

LANDMARK_ROWS = 543  # rows per frame of a GISLR parquet (face, hands, pose): bounds its rows before reading
MAX_FRAME_VALUES = 4 * LANDMARK_ROWS  # numbers per frame of one array: every MediaPipe landmark with x, y, z, score
MAX_ARRAY_BYTES = 128 << 20  # one array of a pose file: a clip near MAX_FRAMES with the whole body fits
MAX_JSON_BYTES = 64 << 20  # a JSON pose file (MMPose, OpenPose frame) is parsed only below this size


def _refuse_long(path: Path, frames: int, what: str) -> None:
    if frames > MAX_FRAMES:
        raise PoseError(f"{path}: {what} {frames} frames, more than the {MAX_FRAMES} a sign clip can have")


def _refuse_shape(path: Path, name: str, shape: tuple, itemsize: int) -> None:
    """Frames, numbers per frame and bytes of an array as its header declares them, against the caps."""
    if not shape:
        return
    _refuse_long(path, int(shape[0]), f"array '{name}' has")
    per_frame = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    if per_frame > MAX_FRAME_VALUES:
        raise PoseError(f"{path}: array '{name}' declares shape {tuple(shape)}: {per_frame} numbers per frame, more "
                        f"than the {MAX_FRAME_VALUES} a pose frame can have")
    size = int(np.prod(shape, dtype=np.int64)) * itemsize
    if size > MAX_ARRAY_BYTES:
        raise PoseError(f"{path}: array '{name}' declares shape {tuple(shape)} ({size / 2**20:.0f} MiB), more than the "
                        f"{MAX_ARRAY_BYTES >> 20} MiB a pose array can take")


def _npz_frame_cap(path: Path, data) -> None:
    """Check every array's declared shape from its header, before anything is decompressed: a small
    compressed file can declare gigabytes."""
    for name in data.zip.namelist():
        with data.zip.open(name) as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        _refuse_shape(path, name.removesuffix(".npy"), shape, dtype.itemsize)


def numeric(path, name: str, a) -> np.ndarray:
    """`a` as an array of real numbers (int or float), or a PoseError naming the file and the array."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "iuf":
        raise PoseError(f"{path}: '{name}' must hold real numbers, got {arr.dtype} values")
    return arr


def _from_points(points: np.ndarray, conf: np.ndarray, layout: Layout, source: str, **kw) -> PoseSequence:
    """points (T, N, 2) pixels, conf (T, N) -> PoseSequence using the layout's indices."""
    if points.ndim != 3 or points.shape[1] != layout.num_points or points.shape[2] < 2:
        raise PoseError(f"{source}: expected keypoints of shape (T, {layout.num_points}, 2) for "
                        f"{layout.name}, got {tuple(points.shape)}")
    pick = lambda idx: (points[:, list(idx), :2].astype(np.float32), conf[:, list(idx)].astype(np.float32))
    (b, bc), (l, lc), (r, rc) = pick(layout.body), pick(layout.left), pick(layout.right)
    return PoseSequence(b, l, r, bc, lc, rc, source=source, meta={"layout": layout.name}, **kw)


def read_mediapipe_npz(path: Path, data) -> PoseSequence:
    """signbest / WLASL100 schema: pose (T,33,4) x,y normalised + z + visibility; hands (T,21,3)."""
    missing = {"pose", "left_hand", "right_hand"} - set(data.files)
    if missing:
        raise PoseError(f"{path}: MediaPipe npz lacks arrays {sorted(missing)} (has {sorted(data.files)})")
    pose, lh, rh = (numeric(path, k, data[k]) for k in ("pose", "left_hand", "right_hand"))
    if pose.ndim != 3 or pose.shape[1:] != (33, 4):
        raise PoseError(f"{path}: 'pose' must have shape (T, 33, 4), got {pose.shape}")
    for name, h in (("left_hand", lh), ("right_hand", rh)):
        if h.ndim != 3 or h.shape[1] != 21 or h.shape[2] < 2 or h.shape[0] != pose.shape[0]:
            raise PoseError(f"{path}: '{name}' must have shape ({pose.shape[0]}, 21, 3), got {h.shape}")
    for key in ("width", "height", "fps"):
        if key in data.files and (data[key].dtype.kind not in "iuf" or data[key].size != 1):
            raise PoseError(f"{path}: '{key}' must be one number, got {data[key].dtype} of shape {data[key].shape}")
    w = int(data["width"]) if "width" in data.files else 256
    h = int(data["height"]) if "height" in data.files else 256
    fps = float(data["fps"]) if "fps" in data.files else 25.0
    extractor = str(data["extractor"]) if "extractor" in data.files else "mediapipe"
    return mediapipe_sequence(pose, lh, rh, w, h, fps, str(path), extractor)


def mediapipe_sequence(pose: np.ndarray, left: np.ndarray, right: np.ndarray, width: int, height: int,
                       fps: float = 25.0, source: str = "<memory>", extractor: str = "mediapipe") -> PoseSequence:
    """MediaPipe Holistic landmarks (pose (T, 33, 4), hands (T, 21, >=2); x, y normalised to the frame, NaN
    where nothing was found) -> PoseSequence in pixels: a file's frames, or a camera's as they come."""
    scale = np.array([width, height], np.float32)
    body = pose[:, list(MEDIAPIPE_HOLISTIC.body)]
    # MediaPipe always outputs body landmarks; visibility is its confidence. Hands have no score.
    body_conf = np.where(np.isfinite(body[..., :2]).all(-1), np.clip(body[..., 3], 0.01, 1.0), 0.0)
    hand_conf = lambda a: np.isfinite(a[..., :2]).all(-1).astype(np.float32)
    return PoseSequence(body[..., :2] * scale, left[..., :2] * scale, right[..., :2] * scale,
                        body_conf, hand_conf(left), hand_conf(right), fps, width, height, source,
                        {"layout": "mediapipe-holistic", "extractor": extractor})


def read_coco_wholebody(path: Path, keypoints: np.ndarray, scores: np.ndarray | None, **kw) -> PoseSequence:
    """(T, 133, 2|3) keypoints in pixels with (T, 133) scores; a third column is taken as the score."""
    kp = numeric(path, "keypoints", keypoints).astype(np.float32)
    if kp.ndim == 2:  # a single frame
        kp = kp[None]
    if kp.ndim != 3:
        raise PoseError(f"{path}: keypoints must have shape (T, 133, 2), got {kp.shape}")
    if scores is None:
        scores = kp[..., 2] if kp.shape[-1] >= 3 else np.ones(kp.shape[:2], np.float32)
    scores = numeric(path, "keypoint scores", scores).astype(np.float32)
    if scores.size != kp.shape[0] * kp.shape[1]:
        raise PoseError(f"{path}: scores have shape {scores.shape} but keypoints have {kp.shape}")
    kw.setdefault("width", int(np.ceil(np.nanmax(kp[..., 0]))) + 1 if np.isfinite(kp[..., 0]).any() else 256)
    kw.setdefault("height", int(np.ceil(np.nanmax(kp[..., 1]))) + 1 if np.isfinite(kp[..., 1]).any() else 256)
    return _from_points(kp, scores.reshape(kp.shape[:2]), COCO_WHOLEBODY, str(path), **kw)


def read_pose_format(path: Path) -> PoseSequence:
    """A pose-format `.pose` file with MediaPipe Holistic or OpenPose components, selected by name."""
    from pose_format import Pose

    raw = path.read_bytes()
    try:
        pose = Pose.read(raw)
        declared = _declared_frames(raw)
    except Exception as e:  # pose-format raises struct/Value errors on damaged files
        raise PoseError(f"{path}: not a readable .pose file ({type(e).__name__}: {e})") from e
    if declared is not None and declared % 65536 != pose.body.data.shape[0] % 65536:
        raise PoseError(f"{path}: truncated .pose file: header declares {declared} frames, "
                        f"the file holds {pose.body.data.shape[0]}")
    data = np.ma.getdata(pose.body.data)[:, 0]  # first person: (T, N, D)
    conf = np.asarray(pose.body.confidence)[:, 0]  # (T, N)
    t = data.shape[0]
    parts = {"body": (np.full((t, 7, 2), np.nan), np.zeros((t, 7))),
             "left": (np.full((t, 21, 2), np.nan), np.zeros((t, 21))),
             "right": (np.full((t, 21, 2), np.nan), np.zeros((t, 21)))}
    offset, found = 0, []
    for comp in pose.header.components:
        spec = POSE_FORMAT_COMPONENTS.get(comp.name)
        if spec is not None:
            part, names = spec
            xy, c = parts[part]
            wanted = names if names is not None else comp.points[:21]
            for j, name in enumerate(wanted):
                if name in comp.points:
                    k = offset + comp.points.index(name)
                    xy[:, j], c[:, j] = data[:, k, :2], conf[:, k]
            found.append(comp.name)
        offset += len(comp.points)
    if not found:
        names = [c.name for c in pose.header.components]
        raise PoseError(f"{path}: no MediaPipe Holistic or OpenPose component in this .pose file "
                        f"(components: {names})")
    dims = pose.header.dimensions
    return PoseSequence(*(parts[p][0] for p in BODY_FIRST),
                        *(parts[p][1] for p in BODY_FIRST),
                        float(pose.body.fps), int(dims.width), int(dims.height), str(path),
                        {"layout": "pose-format:" + "+".join(found)})


def _declared_frames(raw: bytes) -> int | None:
    """Frame count written in a v0.1 .pose body header. pose-format v0.1 derives the count from the
    bytes left (the field is 16-bit), so a truncated file would otherwise load silently as a shorter clip."""
    from pose_format.pose_header import PoseHeader
    from pose_format.utils.reader import BufferReader, ConstStructs

    reader = BufferReader(raw)
    header = PoseHeader.read(reader)
    if round(header.version, 3) != 0.1:
        return None  # v0.2 stores a 32-bit count and fails by itself on short data
    return int(reader.unpack(ConstStructs.double_ushort)[1])


def read_openpose_frames(paths: list[Path], source: str, fps: float = 25.0, size=None) -> PoseSequence:
    """OpenPose per-frame JSON (BODY_25 + hands). Frames with nobody get all joints missing."""
    frames = []
    for p in paths:
        try:
            doc = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PoseError(f"{p}: not valid OpenPose JSON ({e})") from e
        people = doc.get("people") if isinstance(doc, dict) else None
        if people is None:
            raise PoseError(f"{p}: no 'people' list: not an OpenPose keypoint file")
        row = np.zeros((OPENPOSE_BODY25.num_points, 3), np.float32)
        if people:
            person = people[0]
            for key, start, n in (("pose_keypoints_2d", 0, 25), ("hand_left_keypoints_2d", 25, 21),
                                  ("hand_right_keypoints_2d", 46, 21)):
                vals = np.asarray(person.get(key) or [], np.float32)
                if vals.size not in (0, n * 3):
                    raise PoseError(f"{p}: '{key}' has {vals.size} values, expected {n * 3} (x, y, c for {n} joints)")
                if vals.size:
                    row[start:start + n] = vals.reshape(n, 3)
        frames.append(row)
    arr = np.stack(frames)
    xy, conf = arr[..., :2], arr[..., 2]
    xy = np.where((conf > 0)[..., None], xy, np.nan)  # OpenPose writes 0,0,0 for undetected joints
    if size is None:  # OpenPose JSON does not store the frame size: take the smallest box holding every joint
        ext = np.nanmax(xy.reshape(-1, 2), axis=0) if np.isfinite(xy).any() else np.array([256, 256])
        size = (int(np.ceil(ext[0])) + 1, int(np.ceil(ext[1])) + 1)
    seq = _from_points(xy, conf, OPENPOSE_BODY25, source, fps=fps, width=size[0], height=size[1])
    seq.meta["frame_size_estimated"] = True
    return seq


def read_mmpose_json(path: Path, doc, fps: float = 25.0, size=None) -> PoseSequence:
    """MMPose / RTMPose prediction JSON: a list of frames {frame_id, instances: [...]}, or one frame's instances."""
    frames = doc if isinstance(doc, list) else [doc]
    if frames and isinstance(frames[0], dict) and "keypoints" in frames[0]:
        frames = [{"instances": frames}]  # a single image's prediction
    kps, scores = [], []
    for i, fr in enumerate(frames):
        inst = fr.get("instances") if isinstance(fr, dict) else None
        if inst is None:
            raise PoseError(f"{path}: frame {i} has no 'instances': not an MMPose prediction file")
        if not inst:
            kps.append(np.full((133, 2), np.nan, np.float32))
            scores.append(np.zeros(133, np.float32))
            continue
        if not isinstance(inst, list) or not all(isinstance(d, dict) and "keypoints" in d for d in inst):
            raise PoseError(f"{path}: frame {i}: 'instances' must be a list of objects with 'keypoints' "
                            f"(MMPose prediction), got {type(inst).__name__}")
        best = max(inst, key=lambda d: float(np.mean(d.get("keypoint_scores", [0]))))
        kp = np.asarray(best["keypoints"], np.float32).reshape(-1, 2)
        if kp.shape[0] != 133:
            raise PoseError(f"{path}: frame {i} has {kp.shape[0]} keypoints; COCO-WholeBody needs 133")
        kps.append(kp)
        scores.append(np.asarray(best.get("keypoint_scores", np.ones(133)), np.float32))
    if not kps:
        raise PoseError(f"{path}: the prediction file holds no frames")
    kp = np.stack(kps)
    if size is None:
        ext = np.nanmax(kp.reshape(-1, 2), axis=0)
        size = (int(np.ceil(ext[0])) + 1, int(np.ceil(ext[1])) + 1)
    return read_coco_wholebody(path, kp, np.stack(scores), fps=fps, width=size[0], height=size[1])


def read_gislr_parquet(path: Path, size=(1000, 1000)) -> PoseSequence:
    """Kaggle GISLR rows (frame, type, landmark_index, x, y, z) with x, y normalised to the frame."""
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception as e:
        raise PoseError(f"{path}: not a GISLR landmark parquet file ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    _refuse_long(path, -(-rows // LANDMARK_ROWS), f"has {rows} landmark rows, at least")
    try:
        table = pq.read_table(path, columns=["frame", "type", "landmark_index", "x", "y"]).to_pydict()
    except Exception as e:
        raise PoseError(f"{path}: not a GISLR landmark parquet file, which has columns frame, type, landmark_index, "
                        f"x, y ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from e
    frames = sorted(set(table["frame"]))
    if not frames:
        raise PoseError(f"{path}: the parquet file has no rows")
    fidx = {f: i for i, f in enumerate(frames)}
    offset = {"pose": 0, "left_hand": 33, "right_hand": 54}
    count = {"pose": 33, "left_hand": 21, "right_hand": 21}
    for typ, k in zip(table["type"], table["landmark_index"]):  # a bad index must not wrap around numpy's indexing
        if typ in count and (k is None or not 0 <= k < count[typ]):
            raise PoseError(f"{path}: landmark_index {k} for type '{typ}' is outside 0..{count[typ] - 1}")
    pts = np.full((len(frames), 75, 2), np.nan, np.float32)
    for f, typ, k, x, y in zip(table["frame"], table["type"], table["landmark_index"], table["x"], table["y"]):
        if typ in offset and x is not None and y is not None:
            pts[fidx[f], offset[typ] + k] = (x * size[0], y * size[1])
    conf = np.isfinite(pts).all(-1).astype(np.float32)
    from .layouts import MEDIAPIPE_HOLISTIC
    return _from_points(pts, conf, MEDIAPIPE_HOLISTIC, str(path), width=size[0], height=size[1], fps=25.0)


def read_pose(path: str | Path, fix_hands: bool = True, **kw) -> PoseSequence:
    """Read any supported file (or OpenPose folder) into a PoseSequence; hands are checked against the wrists."""
    path = Path(path)
    if not path.exists():
        raise PoseError(f"{path}: no such file or folder")
    try:
        seq = _read_any(path, **kw)
    except PoseError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader failure is this file's problem, never the batch's
        detail = (str(e).strip().splitlines() or [""])[0][:200]  # one line: never a dumped column or schema
        raise PoseError(f"{path}: could not be read as a pose file ({type(e).__name__}: {detail})") from e
    if fix_hands:
        seq, swapped = fix_handedness(seq)
        seq.meta["hands_relabelled"] = swapped
    return seq


def _read_any(path: Path, **kw) -> PoseSequence:
    suffix = path.suffix.lower()
    if path.is_dir():
        visible = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        files = [p for p in visible if p.name.endswith("_keypoints.json")] or [p for p in visible if p.suffix == ".json"]
        if not files:
            raise PoseError(f"{path}: folder holds no OpenPose *_keypoints.json files")
        others = [p.name for p in visible if p not in files]
        if others:
            raise PoseError(f"{path}: a folder is read as one OpenPose clip only when it holds nothing but its frame "
                            f"files; it also holds {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}")
        return read_openpose_frames(files, str(path), **kw)
    if path.stat().st_size == 0:
        raise PoseError(f"{path}: the file is empty")
    if suffix == ".pose":
        return read_pose_format(path)
    if suffix == ".parquet":
        return read_gislr_parquet(path)
    if suffix == ".json":
        if path.stat().st_size > MAX_JSON_BYTES:
            raise PoseError(f"{path}: {path.stat().st_size >> 20} MiB of JSON, more than the {MAX_JSON_BYTES >> 20} MiB "
                            "a pose file can take")
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PoseError(f"{path}: not valid JSON ({e})") from e
        if isinstance(doc, dict) and "people" in doc:
            return read_openpose_frames([path], str(path), **kw)
        return read_mmpose_json(path, doc, **kw)
    if suffix in (".npz", ".npy"):
        try:
            data = np.load(path, allow_pickle=False, mmap_mode="r" if suffix == ".npy" else None)
            if suffix == ".npz":
                _npz_frame_cap(path, data)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            if isinstance(e, PoseError):
                raise
            raise PoseError(f"{path}: not a readable numpy file ({type(e).__name__}: {e})") from e
        if suffix == ".npy":  # memory-mapped: the shape is known before the data is read
            _refuse_shape(path, "keypoints", data.shape, data.dtype.itemsize)
            return read_coco_wholebody(path, np.array(data), None, **kw)
        with data:
            try:
                if "pose" in data.files:
                    return read_mediapipe_npz(path, data)
                if "keypoints" in data.files:
                    sc = data["keypoint_scores"] if "keypoint_scores" in data.files else (
                        data["scores"] if "scores" in data.files else None)
                    extra = {k: (float(data[k]) if k == "fps" else int(data[k]))
                             for k in ("fps", "width", "height") if k in data.files}
                    return read_coco_wholebody(path, data["keypoints"], sc, **{**extra, **kw})
            except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
                if isinstance(e, PoseError):
                    raise
                raise PoseError(f"{path}: truncated or corrupt array data ({type(e).__name__}: {e})") from e
            raise PoseError(f"{path}: unknown npz layout with arrays {sorted(data.files)}; expected MediaPipe "
                            "('pose', 'left_hand', 'right_hand') or COCO-WholeBody ('keypoints', 'keypoint_scores')")
    raise PoseError(f"{path}: unknown pose file type '{suffix}' (supported: .npz, .npy, .pose, .json, .parquet, "
                    "or a folder of OpenPose JSON)")
