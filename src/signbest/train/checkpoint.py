"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

A checkpoint folder holds ``model.safetensors`` and ``config.json`` (all a user needs to load the model),
and for resuming ``optimizer.safetensors`` + ``state.json`` (step, epoch, optimiser scalars, RNG seeds).
Every file is written to a temporary name and renamed, so a kill never leaves a half-written file.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_write  # noqa: F401  (re-exported: callers import it from here)


def write_json(path: Path, obj) -> None:
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def save_weights(model: torch.nn.Module, folder: Path, config: dict) -> None:
    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / "model.safetensors", lambda tmp: save_file(tensors, tmp))
    write_json(folder / "config.json", config)


def load_weights(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    folder = Path(folder)
    for name in ("model.safetensors", "config.json"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder}: not a signbest checkpoint (no {name})")
    return load_file(folder / "model.safetensors"), json.loads((folder / "config.json").read_text())


def save_training_state(folder: Path, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Optimiser tensors to safetensors, its scalars and param groups plus `state` to JSON."""
    opt = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in opt["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    folder = Path(folder)
    atomic_write(folder / "optimizer.safetensors", lambda tmp: save_file(tensors, tmp))
    write_json(folder / "state.json", {**state, "optimizer_scalars": scalars, "param_groups": opt["param_groups"]})


def load_training_state(folder: Path, optimizer: torch.optim.Optimizer) -> dict:
    folder = Path(folder)
    state = json.loads((folder / "state.json").read_text())
    tensors = load_file(folder / "optimizer.safetensors")
    opt_state: dict[int, dict] = {}
    for key, v in list(tensors.items()) + list(state.pop("optimizer_scalars").items()):
        pid, k = key.split(".", 1)
        opt_state.setdefault(int(pid), {})[k] = v
    optimizer.load_state_dict({"state": opt_state, "param_groups": state.pop("param_groups")})
    return state


def has_training_state(folder: Path) -> bool:
    return all((Path(folder) / n).exists() for n in ("model.safetensors", "optimizer.safetensors", "state.json"))


def resume(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict | None:
    """Load weights and optimiser state from `folder` when it holds a training checkpoint; returns the
    saved state (epoch, step, ...) or None for a fresh start."""
    if not has_training_state(folder):
        return None
    weights, _ = load_weights(folder)
    model.load_state_dict(weights)
    return load_training_state(folder, optimizer)
