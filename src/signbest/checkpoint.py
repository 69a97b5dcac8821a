"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

A checkpoint is a folder: ``model.safetensors`` + ``config.json`` (all a user needs to load the model),
and for resuming ``optimizer.safetensors`` + ``state.json``. A folder is committed as a whole: its files
are written into a temporary folder that is then renamed into place, so a kill at any moment leaves
either the old checkpoint or the new one, never a mix (a mix used to resume an epoch twice).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .atomic import atomic_folder, atomic_write, committed, recover_folder

CHECKPOINT = "checkpoint"  # a stage's resumable checkpoint, inside its output folder


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be used, with the reason."""


def write_json(path: Path, obj) -> None:
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def commit_folder(folder: Path, files: dict[str, object]) -> None:
    """Write `files` (name -> tensor dict for .safetensors, JSON-able object for .json) as the folder's
    complete new content, atomically: a reader sees the old folder or the new one."""
    def write(tmp: Path) -> None:
        for name, obj in files.items():
            if name.endswith(".safetensors"):
                save_file(obj, str(tmp / name))
            else:
                (tmp / name).write_text(json.dumps(obj, indent=2, default=str))
    atomic_folder(Path(folder), write)


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"refusing to save a model with non-finite weights in {bad[:5]}")
    return tensors


def save_weights(model: torch.nn.Module, folder: Path, config: dict) -> None:
    commit_folder(folder, {"model.safetensors": model_tensors(model), "config.json": versioned(config)})


def versioned(config: dict) -> dict:
    return {**config, "signbest_version": __version__}


def check_version(folder: Path, config: dict) -> None:
    """Checkpoints are read by the release series that wrote them (0.2.x reads 0.2.x): an older one would
    load with other defaults and other layers, so it is refused, naming both versions."""
    made = config.get("signbest_version")
    if made is None or made.split(".")[:2] != __version__.split(".")[:2]:
        raise CheckpointError(f"{folder}: made by signbest {made or '0.1 or earlier'}, this is signbest {__version__}; "
                              f"its checkpoints are not compatible: train it again with this version, or use "
                              f"signbest {made or '0.1'} to run it")


def weights_folder(folder: Path) -> Path:
    """A folder with model.safetensors: the folder itself or, for a stage's output folder, its checkpoint
    (the committed version, also while a commit is between its renames). Reads only: changes nothing."""
    folder = Path(folder)
    folder = committed(folder) or folder
    if not (folder / "model.safetensors").exists():
        inner = committed(folder / CHECKPOINT)
        if inner is not None:
            return inner
    return folder


def load_weights(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and config of a checkpoint folder (or a stage output folder), checked: readable, finite."""
    folder = weights_folder(folder)
    for name in ("model.safetensors", "config.json"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder}: not a signbest checkpoint (no {name})")
    try:
        weights = load_file(folder / "model.safetensors")
        config = json.loads((folder / "config.json").read_text())
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{folder}: damaged checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{folder}/config.json: expected a JSON object, got {type(config).__name__}")
    check_version(folder, config)
    bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{folder}: the model has non-finite weights ({', '.join(bad[:3])}): "
                              "its training diverged; retrain it")
    return weights, config


def load_state(model: torch.nn.Module, weights: dict[str, torch.Tensor], folder: Path, what: str = "model") -> None:
    """model.load_state_dict(weights) with one line naming the folder and the cause when they do not fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    shaped = [f"{k} {tuple(weights[k].shape)} in the file, {tuple(own[k].shape)} expected"
              for k in sorted(set(own) & set(weights)) if own[k].shape != weights[k].shape]
    if missing or extra or shaped:
        parts = [f"{len(missing)} tensors missing (e.g. {missing[0]})" if missing else "",
                 f"{len(extra)} unexpected (e.g. {extra[0]})" if extra else "",
                 f"{len(shaped)} of another shape (e.g. {shaped[0]})" if shaped else ""]
        raise CheckpointError(f"{folder}: the weights do not fit the {what} its config describes: "
                              + "; ".join(p for p in parts if p) + " (another size, stage or damaged file?)")
    model.load_state_dict(weights)


def save_checkpoint(folder: Path, model: torch.nn.Module, config: dict, optimizer, state: dict,
                    extra: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
    """Model, config, optimiser and training state (and a stage's `extra` tensor files, by name) as one
    atomic commit."""
    opt = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in opt["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    commit_folder(folder, {"model.safetensors": model_tensors(model), "config.json": versioned(config),
                           "optimizer.safetensors": tensors,
                           "state.json": {**state, "optimizer_scalars": scalars, "param_groups": opt["param_groups"]},
                           **(extra or {})})


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer) -> dict | None:
    """Restore model and optimiser from a committed checkpoint; its saved state, or None if there is none."""
    folder = Path(folder)
    recover_folder(folder)
    if not (folder / "state.json").exists():
        if (folder / "model.safetensors").exists():
            raise CheckpointError(f"{folder}: the checkpoint has no state.json, so the run cannot resume where it "
                                  "stopped; start it again with --overwrite, or in another output folder")
        return None
    weights, _ = load_weights(folder)
    load_state(model, weights, folder)
    try:
        state = json.loads((folder / "state.json").read_text())
        tensors = load_file(folder / "optimizer.safetensors")
    except (OSError, ValueError, SafetensorError) as e:
        raise CheckpointError(f"{folder}: damaged checkpoint, cannot resume ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]}); start it again with --overwrite") from None
    opt_state: dict[int, dict] = {}
    for key, v in list(tensors.items()) + list(state.pop("optimizer_scalars").items()):
        pid, k = key.split(".", 1)
        opt_state.setdefault(int(pid), {})[k] = v
    optimizer.load_state_dict({"state": opt_state, "param_groups": state.pop("param_groups")})
    return state
