"""One config section -> its dataclass, with errors that name the key and the value.

The bottom layer of the package: every stage builds its own section with `section(cfg, "finetune",
FinetuneConfig)`; reading whole config files and knowing every section is `config.py`'s, at the top.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TypeVar

T = TypeVar("T")

AT_LEAST_ONE = {"epochs", "batch_size", "num_frames", "layers", "heads", "part_dim", "ffn", "hidden", "code_dim",
                "hand_codes", "body_codes", "max_frames", "kmeans_iters", "lr_step_epochs", "test_windows"}
NON_NEGATIVE = {"steps_per_epoch", "weight_decay", "grad_clip", "label_smoothing", "time_budget_s", "warmup_epochs", "revive_every",
                "perturb", "shift", "beta_body", "beta_codebook", "beta_commit"}


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
