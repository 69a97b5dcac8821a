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
from typing import Any

from .data.protocol import SplitConfig
from .models.best import ModelConfig
from .models.classifier import HeadConfig
from .models.masking import MaskingConfig
from .models.tokenizer import TokenizerConfig
from .sections import section
from .train.finetune import FinetuneConfig
from .train.pretrain import PretrainConfig

__all__ = ["SECTIONS", "effective_config", "load_config", "section", "shipped_configs", "validate"]


# Each config section and the dataclass that validates it, defined by the module that uses it. This module
# sits at the top of the layers (beside the CLI) so that it can import them all; the stages themselves
# only need `sections.section`, from the bottom layer.
SECTIONS: dict[str, type] = {"tokenizer": TokenizerConfig, "model": ModelConfig, "masking": MaskingConfig,
                             "pretrain": PretrainConfig, "head": HeadConfig, "finetune": FinetuneConfig,
                             "split": SplitConfig}


OTHER_KEYS = {"description", "row", "base"}  # top-level keys that are not sections


def shipped_configs() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("signbest.configs").iterdir() if p.name.endswith(".json"))


def _read(name_or_path: str | Path) -> dict:
    p = Path(name_or_path)
    if p.suffix == ".json" and p.exists():
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{p}: not a UTF-8 text file (byte {e.start}: {e.reason})") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{p}: a config is a JSON object of sections, got {type(doc).__name__}")
        return doc
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
            raise ValueError(f"override '{item}' must look like section.key=value, e.g. --set finetune.lr=5e-4")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        node = cfg
        *path, last = key.split(".")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = parsed
    validate(cfg, str(name_or_path))
    return cfg


def effective_config(name_or_path: str | Path, overrides: list[str] | None = None) -> dict:
    """The config as the stages see it: every section with every field, defaults filled in."""
    cfg = load_config(name_or_path, overrides)
    out = {k: cfg[k] for k in ("description",) if k in cfg}
    for sec, cls in SECTIONS.items():
        out[sec] = dataclasses.asdict(section(cfg, sec, cls))
    return out


def validate(cfg: dict, name: str = "config") -> None:
    """Unknown sections or keys, wrong types and out-of-range values are errors naming key and value."""
    classes = SECTIONS
    unknown = set(cfg) - set(classes) - OTHER_KEYS
    if unknown:
        raise ValueError(f"{name}: unknown config sections {sorted(unknown)}; valid: {sorted(set(classes) | OTHER_KEYS)}")
    for sec, cls in classes.items():
        if sec in cfg:
            if not isinstance(cfg[sec], dict):
                raise ValueError(f"{name}: config section '{sec}' must be a mapping of keys to values, got {cfg[sec]!r}")
            section(cfg, sec, cls)
