"""The package's layers only look down: no module imports (at its top or inside a function) from a layer
above its own. The layers, bottom to top, are the table in docs/architecture.md."""
from __future__ import annotations

import ast
from pathlib import Path

import signbest

PACKAGE = Path(signbest.__file__).parent
LAYERS = [  # bottom first; a module belongs to the longest prefix listed
    ("foundations", ["signbest", "signbest.atomic", "signbest.runtime", "signbest.sections"]),
    ("poses and files", ["signbest.pose", "signbest.outputs", "signbest.checkpoint", "signbest.fingerprint"]),
    ("data", ["signbest.video", "signbest.data"]),
    ("models", ["signbest.models", "signbest.viz", "signbest.eval.metrics"]),
    ("using a model", ["signbest.predict", "signbest.tokens", "signbest.model_card", "signbest.export",
                       "signbest.inputs", "signbest.calibration", "signbest.stream", "signbest.live"]),
    ("training", ["signbest.train"]),
    ("evaluation", ["signbest.eval"]),
    ("applications", ["signbest.config", "signbest.pipeline", "signbest.demo", "signbest.serve", "signbest.cli",
                      "signbest.__main__", "signbest.configs"]),
]


def layer_of(module: str) -> int:
    best, level = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            within = module.startswith(prefix + ".") and prefix != "signbest"  # the package itself: only __init__
            if (module == prefix or within) and len(prefix) > best:
                best, level = len(prefix), index
    assert level is not None, f"{module} is in no layer: add it to LAYERS and to docs/architecture.md"
    return level


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int]]:
    """signbest modules imported anywhere in the file, with their line."""
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def imports_in(source: str, here: str, is_package: bool = False) -> list[tuple[str, int]]:
    package = here if is_package else here.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "signbest"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "signbest":
                continue
            # `from . import fingerprint` names a module; `from .x import name` names something in x.
            modules = [f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")]
            found += [(m, node.lineno) for m in modules] or [(target, node.lineno)]
    return found


def is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or path.is_dir()


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        for target, line in imports(path):
            if layer_of(target) > layer_of(here):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} ({LAYERS[layer_of(here)][0]}) imports "
                              f"{target} ({LAYERS[layer_of(target)][0]})")
    assert not upward, "imports that look up a layer:\n" + "\n".join(upward)


def test_every_module_has_a_layer():
    for path in sorted(PACKAGE.rglob("*.py")):
        layer_of(module_name(path))  # fails naming the module that is in none


def test_the_check_sees_an_upward_import():
    """The check itself works: a lazy import from a higher layer inside a function is found."""
    source = "import os\n\ndef f():\n    from ..train.finetune import finetune\n    from . import sequence\n"
    found = imports_in(source, "signbest.pose.probe")
    assert found == [("signbest.train.finetune", 4), ("signbest.pose.sequence", 5)]
    assert layer_of("signbest.train.finetune") > layer_of("signbest.pose.probe")
