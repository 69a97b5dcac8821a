"""The `signbest` app: its options shared by every command, the argument types several commands use, and
the entry point that turns every error into one line. The commands live beside it, one module per area."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="BEST: BERT pre-training for sign language recognition with coupling tokenization.")


@app.callback()
def _common(threads: Annotated[int, typer.Option(min=0, help="torch threads for the whole run (default: OMP_NUM_THREADS if set, else the available cores, shared among torchrun processes); give 1 to each of two runs side by side on 2 cores")] = 0) -> None:
    from ..runtime import set_threads

    set_threads(threads)


Overrides = Annotated[Optional[list[str]], typer.Option("--set", help="override a config value: section.key=value")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="start OUT again when it holds a run made with other settings or data")]
Checkpoints = Annotated[list[Path], typer.Option("--checkpoint", help="fine-tuned run folder, checkpoint folder or .onnx file; give it several times for an ensemble (probabilities averaged)")]
Windows = Annotated[Optional[int], typer.Option(min=1, max=32, help="temporal windows averaged per clip (test-time views; default: the model's recipe, finetune.test_windows)")]
Mirror = Annotated[bool, typer.Option("--mirror/--no-mirror", help="also average each view mirrored (hands swapped, body flipped)")]
Engine = Annotated[str, typer.Option(help="auto (onnx for a .onnx file, else torch), torch, or onnx (onnxruntime; a run folder then means its model.onnx; the onnx extra)")]


def check_set_form(argv: list[str]) -> None:
    """`--set a=1 b=2` (one flag, several values) is refused with the form that works: one --set per value."""
    import re

    for i in range(2, len(argv)):
        if argv[i - 2] == "--set" and re.fullmatch(r"[A-Za-z_]+\.[A-Za-z_.]+=.*", argv[i]):
            typer.echo(f"error: '{argv[i]}' follows --set {argv[i - 1]} without its own --set: give one --set "
                       f"per value, e.g. --set {argv[i - 1]} --set {argv[i]}", err=True)
            raise SystemExit(2)


def main() -> None:
    """Entry point: every error is one line `error: ...` with exit status 2; `--debug` (or
    SIGNBEST_DEBUG=1) shows the traceback instead."""
    import os
    import sys

    debug = os.environ.get("SIGNBEST_DEBUG", "") not in ("", "0") or "--debug" in sys.argv
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    check_set_form(sys.argv[1:])
    try:
        raise SystemExit(_run_app())
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise SystemExit(130)
    except Exception as e:  # noqa: BLE001 - the contract: no raw traceback for users
        if debug:
            raise
        from ..pose import PoseError

        if isinstance(e, OSError) and e.strerror and (e.filename2 or e.filename):  # name the user's path, plainly
            typer.echo(f"error: {e.filename2 or e.filename}: {e.strerror}", err=True)
            raise SystemExit(2)
        known = isinstance(e, (PoseError, FileNotFoundError, ValueError, RuntimeError))
        typer.echo(f"error: {e}" if known else f"error: {type(e).__name__}: {e} (run with --debug for details)", err=True)
        raise SystemExit(2)


def _run_app() -> int:
    """The app without click's own error printing: a usage error becomes one line like every other error.
    click's classes are told by name (newer typer releases vendor click under another module)."""
    try:
        code = app(standalone_mode=False)
        return code if isinstance(code, int) else 0
    except Exception as e:
        kind = {c.__name__ for c in type(e).__mro__}
        ctx = getattr(e, "ctx", None)
        if "NoArgsIsHelpError" in kind:
            typer.echo(ctx.get_help() if ctx is not None else str(e))
            return 2
        if "UsageError" in kind:
            where = f"signbest {ctx.info_name} --help" if ctx is not None and ctx.parent is not None else "signbest --help"
            typer.echo(f"error: {e.format_message()} (see {where})", err=True)
            return 2
        if "Exit" in kind:
            return getattr(e, "exit_code", 0)
        if "Abort" in kind:
            raise KeyboardInterrupt from None
        raise
