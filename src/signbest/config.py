"""Experiment configs: JSON files with one section per stage, validated into dataclasses.

A config names a shipped file (``signbest/configs/<name>.json``) or a path. ``"base": "paper"`` inherits
another config and overrides only what it lists, so an ablation is a few lines, not a copy.
Command-line overrides use dotted keys: ``--set tokenizer.epochs=3``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def section_classes() -> dict[str, type]:
    """Each config section and the dataclass that validates it (defined by the module that uses it). The
    imports sit here, not at the top, because those modules import `section` from this one."""
    from .data.protocol import SplitConfig
    from .models.best import ModelConfig
    from .models.classifier import HeadConfig
    from .models.masking import MaskingConfig
    from .models.tokenizer import TokenizerConfig
    from .train.finetune import FinetuneConfig
    from .train.pretrain import PretrainConfig

    return {"tokenizer": TokenizerConfig, "model": ModelConfig, "masking": MaskingConfig, "pretrain": PretrainConfig,
            "head": HeadConfig, "finetune": FinetuneConfig, "split": SplitConfig}


OTHER_KEYS = {"description", "row", "base"}
AT_LEAST_ONE = {"epochs", "batch_size", "num_frames", "layers", "heads", "part_dim", "ffn", "hidden", "code_dim",
                "hand_codes", "body_codes", "max_frames", "kmeans_iters", "lr_step_epochs"}
NON_NEGATIVE = {"steps_per_epoch", "weight_decay", "grad_clip", "label_smoothing", "time_budget_s", "warmup_epochs", "revive_every",
                "perturb", "shift", "beta_body", "beta_codebook", "beta_commit"}


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
    for sec, cls in section_classes().items():
        out[sec] = dataclasses.asdict(section(cfg, sec, cls))
    return out


def validate(cfg: dict, name: str = "config") -> None:
    """Unknown sections or keys, wrong types and out-of-range values are errors naming key and value."""
    classes = section_classes()
    unknown = set(cfg) - set(classes) - OTHER_KEYS
    if unknown:
        raise ValueError(f"{name}: unknown config sections {sorted(unknown)}; valid: {sorted(set(classes) | OTHER_KEYS)}")
    for sec, cls in classes.items():
        if sec in cfg:
            if not isinstance(cfg[sec], dict):
                raise ValueError(f"{name}: config section '{sec}' must be a mapping of keys to values, got {cfg[sec]!r}")
            section(cfg, sec, cls)


def section(cfg: dict, name: str, cls: type[T]) -> T:
    """Build dataclass `cls` from cfg[name]; unknown keys are an error that lists the valid ones."""
    values = cfg.get(name, {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"config section '{name}' has unknown keys {sorted(unknown)}; valid: {sorted(fields)}")
    for key, value in values.items():
        _check(f"{name}.{key}", value, str(fields[key].type))
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config section '{name}': {e}") from None


def _check(key: str, value, annotation: str) -> None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    number = is_int or isinstance(value, float)
    ok = {"bool": isinstance(value, bool), "int": is_int, "float": number, "str": isinstance(value, str)}.get(
        annotation, not annotation.startswith("tuple") or (isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)))
    if not ok:
        raise ValueError(f"config {key}: expected {annotation}, got {value!r}")
    if not number:
        return
    field = key.split(".")[-1]
    if not math.isfinite(value):
        raise ValueError(f"config {key}: must be a finite number, got {value!r}")
    if field in AT_LEAST_ONE and value < 1:
        raise ValueError(f"config {key}: must be at least 1, got {value!r}")
    if (field in NON_NEGATIVE or field == "lr") and value < 0 or field == "lr" and value == 0:
        raise ValueError(f"config {key}: must be {'positive' if field == 'lr' else 'at least 0'}, got {value!r}")
    if ("dropout" in field or field.endswith("_prob") or field.endswith("fraction")) and not 0 <= value <= 1:
        raise ValueError(f"config {key}: must be between 0 and 1, got {value!r}")
