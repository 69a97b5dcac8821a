"""ONNX export of a fine-tuned classifier, and running the exported file through onnxruntime.

The graph goes from normalised triplet units (what `SignDataset` yields: each part's joints, their
masks and the frame mask, any number of clips and frames) to logits and class probabilities. What a
runtime needs besides the graph travels in the file's metadata: the gloss list, the preprocessing
settings (frames per clip, sampling, preprocessing version) and the model card's summary.
Reading pose files and normalising them stays signbest's job (`Predictor` with `engine="onnx"`).

Export needs `torch.onnx`'s exporter (onnxscript); running needs onnxruntime only: `pip install signbest[onnx]`.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import __version__
from .pose import PARTS
from .pose.normalize import PREPROCESS_VERSION
from .pose.sequence import PART_SIZES

INPUTS = (*PARTS, *(f"{p}_mask" for p in PARTS), "frame_mask")  # the graph's inputs, in this order
OUTPUTS = ("logits", "probabilities")  # (B, C) each
PARITY_TOLERANCE = 1e-3  # largest probability difference between onnxruntime and torch that export accepts


class ExportGraph(nn.Module):
    """The classifier with named tensor inputs (ONNX has no dicts) and both outputs."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, left, right, body, left_mask, right_mask, body_mask, frame_mask):
        """Parts (B, T, J, 2) float, their masks (B, T, J) bool, frame_mask (B, T) bool -> (B, C) twice."""
        tensors = (left, right, body, left_mask, right_mask, body_mask, frame_mask)  # the order of INPUTS
        logits = self.classifier(dict(zip(INPUTS, tensors)))
        return logits, torch.softmax(logits, -1)


def example_batch(num_frames: int, clips: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """Units in [0, 1] with what real clips have: joints and whole parts missing, and padding frames."""
    g = torch.Generator().manual_seed(seed)
    batch = {}
    for part in PARTS:
        batch[part] = torch.rand(clips, num_frames, PART_SIZES[part], 2, generator=g)
        batch[f"{part}_mask"] = torch.rand(clips, num_frames, PART_SIZES[part], generator=g) > 0.2
    batch["left_mask"][0, : num_frames // 2] = False  # a hand missing for half the clip
    batch["right_mask"][-1] = False  # a hand never seen
    batch["frame_mask"] = torch.ones(clips, num_frames, dtype=torch.bool)
    batch["frame_mask"][-1, num_frames // 2 :] = False  # a short clip padded to the batch's length
    return batch


def onnx_inputs(batch: dict) -> dict[str, np.ndarray]:
    return {name: batch[name].numpy() for name in INPUTS}


def portable_config(cfg: dict) -> dict:
    """What a runtime needs to preprocess and label: no paths of the machine that trained the model."""
    keep = ("model", "head", "finetune", "split", "glosses", "stage", "selected_epoch", "select_on", "signbest_version")
    return {**{k: cfg[k] for k in keep if k in cfg}, "preprocess_version": PREPROCESS_VERSION}


def export_onnx(checkpoint: str | Path, out: str | Path) -> dict:
    """Write `out` (one self-contained .onnx file) and check it against torch; returns the check's figures."""
    import onnx

    from .model_card import card_summary, portable_card
    from .outputs import claim_file, record
    from .predict import load_classifier
    from .atomic import atomic_write

    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"{out}: an exported model's file name ends in .onnx")
    claim_file(out, [checkpoint])  # replaces only an export signbest wrote; RUN/model.onnx is where predict looks
    model, cfg = load_classifier(checkpoint)  # float32, as trained
    proto = export_graph(model, cfg["finetune"]["num_frames"])
    summary = card_summary(cfg)
    summary["data"] = Path(summary["data"]).name if summary["data"] else None
    summary["pretrained"] = bool(summary["pretrained"])
    summary["command"] = None  # may name local paths
    metadata = {"signbest_version": __version__, "glosses": json.dumps(cfg["glosses"]),
                "signbest_config": json.dumps(portable_config(cfg)), "model_card": json.dumps(summary),
                "model_card_markdown": portable_card(cfg)}
    onnx.helper.set_model_props(proto, metadata)
    proto.doc_string = f"signbest {__version__}: isolated sign recognition, {len(cfg['glosses'])} glosses"
    parity = check_parity(model, proto.SerializeToString(), cfg["finetune"]["num_frames"], str(out))
    atomic_write(out, lambda tmp: onnx.save(proto, tmp))
    record(out)
    return {"out": str(out), "glosses": len(cfg["glosses"]), "bytes": out.stat().st_size, **parity}


def export_graph(model: nn.Module, num_frames: int):
    """The classifier as an ONNX ModelProto (float32, dynamic batch and frame axes), without metadata."""
    import onnx
    import onnxscript.optimizer

    model.encoder.dense_embedding = True
    example = example_batch(num_frames)
    batch_dim, frames_dim = torch.export.Dim("batch"), torch.export.Dim("frames", max=model.cfg.max_frames)
    try:
        with tempfile.TemporaryDirectory() as tmp, quiet_exporter():
            raw = Path(tmp) / "model.onnx"
            torch.onnx.export(ExportGraph(model).eval(), tuple(example[n] for n in INPUTS), str(raw),
                              input_names=list(INPUTS), output_names=list(OUTPUTS), dynamo=True, external_data=False,
                              verbose=False, dynamic_shapes=tuple({0: batch_dim, 1: frames_dim} for _ in INPUTS))
            # The graph conv's merged weights are built from the parameters: fold them into constants (the
            # exporter's own pass skips tensors this large), so a run does not rebuild them for every call.
            return onnxscript.optimizer.optimize(onnx.load(str(raw)), input_size_limit=1 << 26,
                                                 output_size_limit=1 << 26)
    finally:
        model.encoder.dense_embedding = False


@contextlib.contextmanager
def quiet_exporter():
    """The exporter's and its optimiser's progress lines and warnings are about graph internals: the parity
    check after export is what tells the user whether the file is right."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def check_parity(model: nn.Module, onnx_bytes: bytes, num_frames: int, name: str) -> dict:
    """onnxruntime against torch (float32, the classifier's own sparse path) on batches of other sizes and
    lengths than the export's example; an export that disagrees is refused, naming the numbers."""
    session = make_session(onnx_bytes)
    worst, same_top1 = 0.0, True
    for clips, frames, seed in ((1, num_frames, 1), (5, num_frames + 7, 2), (2, 5, 3)):
        batch = example_batch(frames, clips, seed)
        with torch.no_grad():
            expected = torch.softmax(model(batch).float(), -1).numpy()
        got = session.run(["probabilities"], onnx_inputs(batch))[0]
        worst = max(worst, float(np.abs(got - expected).max()))
        same_top1 &= bool((got.argmax(1) == expected.argmax(1)).all())
    if worst > PARITY_TOLERANCE or not same_top1:
        raise RuntimeError(f"{name}: the exported model disagrees with torch (largest probability difference "
                           f"{worst:.2e}, limit {PARITY_TOLERANCE:g}; same top-1: {same_top1}): not written")
    return {"max_probability_difference": worst, "same_top1": same_top1}


def make_session(model: str | Path | bytes, threads: int | None = None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ValueError("running an ONNX model needs onnxruntime: pip install 'signbest[onnx]'") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()  # the same thread policy as torch
    options.log_severity_level = 3  # errors only: its warnings name graph internals, not the user's problem
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class OnnxClassifier:
    """An exported model: `glosses`, `cfg` (as a checkpoint's config) and batch -> (B, C) logits."""

    def __init__(self, path: str | Path):
        path = Path(path)
        try:
            self.session = make_session(path)
        except ValueError:
            raise
        except Exception as e:  # noqa: BLE001 - onnxruntime's own errors: name the file, one line
            raise ValueError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0][:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "signbest_config" not in meta:
            raise ValueError(f"{path}: an ONNX model that `signbest export` did not write (no signbest metadata)")
        self.cfg = json.loads(meta["signbest_config"])
        made = self.cfg.get("signbest_version", "?")
        if made.split(".")[:2] != __version__.split(".")[:2] or self.cfg["preprocess_version"] != PREPROCESS_VERSION:
            raise ValueError(f"{path}: exported by signbest {made}, this is signbest {__version__}: its preprocessing "
                             "may differ; export it again with this version")
        self.glosses: list[str] = self.cfg["glosses"]
        self.card = meta.get("model_card_markdown", "")

    def __call__(self, batch: dict) -> np.ndarray:
        return self.session.run(["logits"], onnx_inputs(batch))[0]
