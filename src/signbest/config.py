"""Experiment configs: JSON files with one section per stage, validated into dataclasses.

A config names a shipped file (``signbest/configs/<name>.json``) or a path. ``"base": "paper"`` inherits
another config and overrides only what it lists, so an ablation is a few lines, not a copy.
Command-line overrides use dotted keys: ``--set tokenizer.epochs=3``.
"""
from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def shipped_configs() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("signbest.configs").iterdir() if p.name.endswith(".json"))


def _read(name_or_path: str | Path) -> dict:
    p = Path(name_or_path)
    if p.suffix == ".json" and p.exists():
        return json.loads(p.read_text())
    res = resources.files("signbest.configs") / f"{name_or_path}.json"
    if not res.is_file():
        raise ValueError(f"config '{name_or_path}' is neither a JSON file nor a shipped config {shipped_configs()}")
    return json.loads(res.read_text())


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(name_or_path: str | Path, overrides: list[str] | None = None, base: str | None = None) -> dict:
    """`base` replaces the config's own base (e.g. run a paper-size row at the small size)."""
    cfg = _read(name_or_path)
    if base is not None and "base" in cfg:
        cfg["base"] = base
    seen = {str(name_or_path)}
    while "base" in cfg:
        base = cfg.pop("base")
        if base in seen:
            raise ValueError(f"config '{name_or_path}': circular base '{base}'")
        seen.add(base)
        cfg = merge(_read(base), cfg)
    for item in overrides or []:
        key, _, value = item.partition("=")
        if not _:
            raise ValueError(f"override '{item}' must look like section.key=value")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        node = cfg
        *path, last = key.split(".")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = parsed
    return cfg


def section(cfg: dict, name: str, cls: type[T]) -> T:
    """Build dataclass `cls` from cfg[name]; unknown keys are an error that lists the valid ones."""
    values = cfg.get(name, {})
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"config section '{name}' has unknown keys {sorted(unknown)}; valid: {sorted(fields)}")
    return cls(**values)
