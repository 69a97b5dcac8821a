"""A generated catalogue of hostile inputs (nothing committed): every one gives a PoseError naming the
file; a batch holding all of them keeps its good clips; the command line prints one line, no traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_holistic_npz
from signbest.data import SignDataset
from signbest.pose import PoseError, read_pose

T = 8


def _holistic(**override):
    return lambda p: write_holistic_npz(p, t=T, **override)


def _arr(*shape, fill=0.5, dtype=np.float32):
    return np.full(shape, fill, dtype)


def _coco_npz(**arrays):
    def write(p):
        base = {"keypoints": _arr(T, 133, 2, fill=50.0), "keypoint_scores": _arr(T, 133, fill=0.9),
                "width": np.int32(256), "height": np.int32(256)}
        np.savez(p, **{**base, **arrays})
    return write


def _text(text: str):
    return lambda p: p.write_text(text)


def _json(doc):
    return lambda p: p.write_text(json.dumps(doc))


def _bytes(b: bytes):
    return lambda p: p.write_bytes(b)


def _openpose(**person):
    doc = {"people": [{"pose_keypoints_2d": [10.0] * 75, "hand_left_keypoints_2d": [10.0] * 63,
                       "hand_right_keypoints_2d": [10.0] * 63, **person}]}
    return _json(doc)


def _mmpose(frames):
    return _json(frames)


def _parquet(**cols):
    def write(p):
        import pyarrow as pa
        import pyarrow.parquet as pq
        base = {"frame": [0, 0], "type": ["pose", "left_hand"], "landmark_index": [0, 0], "x": [0.5, 0.5], "y": [0.5, 0.5]}
        pq.write_table(pa.table({**base, **cols}), p)
    return write


def _truncated_npz(p):
    good = write_holistic_npz(p.with_name("full_" + p.name), t=T).read_bytes()
    p.write_bytes(good[: len(good) * 2 // 3])


BAD = {
    # MediaPipe Holistic npz (the WLASL100 schema)
    "npz_pose_strings.npz": _holistic(pose=np.array([["a"] * 4] * 33 * T).reshape(T, 33, 4)),
    "npz_pose_2d.npz": _holistic(pose=_arr(T, 33)),
    "npz_pose_wrong_joints.npz": _holistic(pose=_arr(T, 17, 4)),
    "npz_pose_wrong_channels.npz": _holistic(pose=_arr(T, 33, 2)),
    "npz_hand_wrong_joints.npz": _holistic(left_hand=_arr(T, 20, 3)),
    "npz_hand_frames_differ.npz": _holistic(right_hand=_arr(T + 3, 21, 3)),
    "npz_coords_1e20.npz": _holistic(pose=np.concatenate([_arr(T, 33, 3, fill=1e20), _arr(T, 33, 1, fill=1.0)], -1)),
    "npz_coords_negative_huge.npz": _holistic(left_hand=_arr(T, 21, 3, fill=-1e9)),
    "npz_all_nan.npz": _holistic(pose=_arr(T, 33, 4, fill=np.nan), left_hand=_arr(T, 21, 3, fill=np.nan),
                                 right_hand=_arr(T, 21, 3, fill=np.nan)),
    "npz_zero_frames.npz": lambda p: write_holistic_npz(p, t=0),
    "npz_width_zero.npz": _holistic(width=np.int32(0)),
    "npz_height_negative.npz": _holistic(height=np.int32(-5)),
    "npz_fps_zero.npz": _holistic(fps=np.float32(0)),
    "npz_fps_nan.npz": _holistic(fps=np.float32(np.nan)),
    "npz_fps_string.npz": _holistic(fps=np.array("fast")),
    "npz_width_array.npz": _holistic(width=np.array([256, 256])),
    "npz_complex.npz": _holistic(pose=_arr(T, 33, 4, dtype=np.complex64)),
    "npz_bool.npz": _holistic(pose=np.ones((T, 33, 4), bool)),
    "npz_no_hands_key.npz": lambda p: np.savez(p, pose=_arr(T, 33, 4), fps=25.0, width=256, height=256),
    "npz_unknown_keys.npz": lambda p: np.savez(p, foo=_arr(3)),
    "npz_empty_archive.npz": lambda p: np.savez(p),
    "npz_truncated.npz": _truncated_npz,
    "npz_random_bytes.npz": _bytes(np.random.default_rng(0).bytes(700)),
    "npz_zero_bytes.npz": _bytes(b""),
    "npz_text.npz": _text("pose,left,right\n1,2,3\n"),
    "npz_pickled_object.npz": lambda p: np.savez(p, pose=np.array([{"a": 1}], dtype=object)),
    # COCO-WholeBody / MMPose
    "coco_wrong_joints.npz": _coco_npz(keypoints=_arr(T, 17, 2)),
    "coco_scores_shape.npz": _coco_npz(keypoint_scores=_arr(T, 5)),
    "coco_strings.npz": _coco_npz(keypoints=np.full((T, 133, 2), "x")),
    "coco_1e20.npz": _coco_npz(keypoints=_arr(T, 133, 2, fill=1e20)),
    "coco_width_zero.npz": _coco_npz(width=np.int32(0)),
    "coco_1d.npy": lambda p: np.save(p, _arr(10)),
    "coco_wrong_joints.npy": lambda p: np.save(p, _arr(T, 50, 3)),
    "coco_strings.npy": lambda p: np.save(p, np.full((T, 133, 3), "x")),
    "mmpose_wrong_nesting.json": _mmpose([{"instances": {"keypoints": 1}}]),
    "mmpose_string_keypoints.json": _mmpose([{"instances": [{"keypoints": "abc", "keypoint_scores": [1]}]}]),
    "mmpose_17_joints.json": _mmpose([{"instances": [{"keypoints": [[1, 2]] * 17, "keypoint_scores": [1] * 17}]}]),
    "mmpose_no_instances.json": _mmpose([{"frame_id": 0}]),
    "mmpose_empty_list.json": _mmpose([]),
    "mmpose_number.json": _json(42),
    "mmpose_scores_strings.json": _mmpose([{"instances": [{"keypoints": [[1, 2]] * 133, "keypoint_scores": ["a"] * 133}]}]),
    "mmpose_null_keypoints.json": _mmpose([{"instances": [{"keypoints": None}]}]),
    # OpenPose
    "openpose_short_pose_keypoints.json": _openpose(pose_keypoints_2d=[1.0] * 10),
    "openpose_strings_keypoints.json": _openpose(pose_keypoints_2d=["a"] * 75),
    "openpose_people_not_list.json": _json({"people": 5}),
    "openpose_person_not_dict.json": _json({"people": [[1, 2, 3]]}),
    "openpose_1e20_keypoints.json": _openpose(pose_keypoints_2d=[1e20, 1e20, 1.0] * 25),
    "openpose_nobody.json": _json({"people": []}),
    # GISLR parquet
    "gislr_index_out_of_range.parquet": _parquet(landmark_index=[0, 400]),
    "gislr_string_x.parquet": _parquet(x=["a", "b"]),
    "gislr_negative_index.parquet": _parquet(landmark_index=[0, -1]),
    "gislr_missing_columns.parquet": lambda p: __import__("pyarrow.parquet").parquet.write_table(
        __import__("pyarrow").table({"frame": [0]}), p),
    "gislr_empty.parquet": _parquet(frame=[], type=[], landmark_index=[], x=[], y=[]),
    "gislr_not_parquet.parquet": _text("frame,type\n0,pose\n"),
    # pose-format and other files
    "garbage.pose": _bytes(b"\x00\x01garbage" * 10),
    "text.pose": _text("this is not a pose file"),
    "empty.pose": _bytes(b""),
    "unknown_suffix.txt": _text("hello"),
    "unknown_suffix.mp3": _bytes(b"ID3"),
    "not_json.json": _text("{not json"),
    "latin1.json": _bytes("{\"people\": \"caf\xe9\"}".encode("latin-1")),
    "empty_folder": lambda p: p.mkdir(),
    "folder_without_openpose": lambda p: (p.mkdir(), (p / "readme.txt").write_text("x")),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    for name, write in BAD.items():
        write(root / name)
    return root


def test_the_catalogue_is_large():
    assert len(BAD) >= 60


@pytest.mark.parametrize("name", sorted(BAD))
def test_every_bad_input_is_a_pose_error_naming_the_file(bad_files, name):
    path = bad_files / name
    with pytest.raises(PoseError) as err:
        read_pose(path)
    assert str(path) in str(err.value) and len(str(err.value)) > len(str(path)) + 5, str(err.value)


def test_a_batch_keeps_its_good_clips_and_lists_every_bad_one(bad_files, tmp_path):
    write_holistic_npz(tmp_path / "good1.npz", t=12, seed=1)
    write_holistic_npz(tmp_path / "good2.npz", t=12, seed=2)
    rows = ["clip_id,pose_file,gloss,label,split,signer", f"good1,{tmp_path / 'good1.npz'},a,0,train,1",
            f"good2,{tmp_path / 'good2.npz'},b,1,train,1"]
    rows += [f"bad{i},{bad_files / n},a,0,train,1" for i, n in enumerate(sorted(BAD))]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    ds = SignDataset(tmp_path / "m.csv", progress=False)
    assert [c.clip_id for c in ds.clips] == ["good1", "good2"]
    assert len(ds.data.failures) == len(BAD)
    r = subprocess.run([sys.executable, "-m", "signbest", "inspect", str(tmp_path / "m.csv")], capture_output=True, text=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr and "readable: 2" in r.stdout.replace("  ", " ").replace("  ", " ")


@pytest.mark.parametrize("name", ["npz_coords_1e20.npz", "mmpose_wrong_nesting.json", "gislr_index_out_of_range.parquet",
                                  "npz_fps_string.npz", "latin1.json", "empty_folder"])
def test_the_command_line_prints_one_line_and_no_traceback(bad_files, name):
    r = subprocess.run([sys.executable, "-m", "signbest", "inspect", str(bad_files / name)], capture_output=True, text=True)
    lines = [x for x in r.stderr.splitlines() if not x.startswith(("INFO", "WARNING"))]
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], r.stderr


@pytest.mark.parametrize("body, words", [
    ("clip_id,pose_file,gloss,label\na,a.npz,hi,0\nb,b.npz,bye,0\n", ["line 3", "label 0 is 'bye'"]),
    ("clip_id,pose_file,gloss,label\na,a.npz,hi,0\nb,b.npz,hi,1\n", ["line 3", "gloss 'hi' has label 1"]),
    ("clip_id,pose_file,gloss,label\na,a.npz,hi,x\n", ["line 2", "not a whole number"]),
    ("clip_id,pose_file,gloss,label\na,a.npz,hi,-3\n", ["line 2", "out of range"]),
    ("clip_id,pose_file\n", ["no rows"]),
    ("video,path\nx,y\n", ["lacks columns"]),
    ("clip_id,pose_file,gloss\na,a.npz,hi\na,b.npz,hi\n", ["duplicate clip ids"]),
])
def test_bad_manifests_name_the_file_and_line(tmp_path, body, words):
    from signbest.data import read_manifest
    (tmp_path / "m.csv").write_text(body)
    with pytest.raises(ValueError) as err:
        read_manifest(tmp_path / "m.csv")
    assert str(tmp_path / "m.csv") in str(err.value) and all(w in str(err.value) for w in words), str(err.value)


def test_manifests_saved_by_excel_and_in_other_encodings(tmp_path):
    from signbest.data import read_manifest
    write_holistic_npz(tmp_path / "a.npz", t=T)
    (tmp_path / "bom.csv").write_bytes("\ufeffclip_id,pose_file,gloss\na,a.npz,caf\u00e9\n".encode("utf-8"))
    assert read_manifest(tmp_path / "bom.csv").clips[0].clip_id == "a"
    (tmp_path / "latin.csv").write_bytes("clip_id,pose_file,gloss\na,a.npz,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        read_manifest(tmp_path / "latin.csv")


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".parquet"])
def test_a_small_file_with_too_many_frames_is_refused_before_it_is_loaded(tmp_path, suffix):
    """150,000 frames compress to a small file but take ~40 MB once loaded: refused from the header."""
    import tracemalloc

    path = tmp_path / f"long{suffix}"
    if suffix == ".npz":
        np.savez_compressed(path, pose=np.zeros((150_000, 33, 4), np.float16),
                            left_hand=np.zeros((8, 21, 3), np.float16), right_hand=np.zeros((8, 21, 3), np.float16))
    elif suffix == ".npy":
        np.save(path, np.zeros((150_000, 133, 2), np.float16))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq
        n = 543 * 100_001
        pq.write_table(pa.table({"frame": np.repeat(np.arange(100_001), 543), "type": pa.array(["pose"] * n).dictionary_encode(),
                                 "landmark_index": np.zeros(n, np.int16), "x": np.zeros(n, np.float32), "y": np.zeros(n, np.float32)}), path)
    tracemalloc.start()
    with pytest.raises(PoseError) as err:
        read_pose(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert str(path) in str(err.value) and "more than the 100000" in str(err.value)
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.0f} MB: the frames were loaded before the cap"
