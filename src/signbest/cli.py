"""The `signbest` command: each subcommand is one typed function."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="BEST: BERT pre-training for sign language recognition with coupling tokenization.")


@app.command()
def synth(out: Annotated[Path, typer.Option("-o", "--out", help="output folder")],
          classes: Annotated[int, typer.Option(help="number of signs")] = 20,
          signers: Annotated[int, typer.Option(help="number of signers (last = test, one before = val)")] = 8,
          per_class: Annotated[int, typer.Option(help="clips per sign")] = 24,
          seed: Annotated[int, typer.Option(help="random seed; same seed, same data")] = 0) -> None:
    """Write a synthetic sign dataset (manifest.csv + poses/*.npz). No download needed."""
    from .data.synth import generate

    path = generate(out, classes, signers, per_class, seed)
    typer.echo(f"wrote {classes * per_class} clips and {path}")


@app.command()
def inspect(path: Annotated[Path, typer.Argument(help="a pose file, an OpenPose folder, a manifest CSV or a dataset folder")],
            as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Clips, classes, signers, frames and part presence of a dataset or a single pose file."""
    from .data.inspect import format_summary, summarize

    s = summarize(path)
    typer.echo(json.dumps(s, indent=2) if as_json else format_summary(s))


@app.command()
def manifest(dataset: Annotated[str, typer.Argument(help="wlasl | msasl | slr500 | nmfs-csl")],
             split_files: Annotated[list[Path], typer.Argument(help="the official split / list file(s)")],
             pose_dir: Annotated[Path, typer.Option(help="folder of your pose files, named after the clips")],
             out: Annotated[Path, typer.Option("-o", "--out", help="manifest CSV to write")]) -> None:
    """Build a manifest from a dataset's official split files and your local pose folder."""
    from .data.adapters import ADAPTERS
    from .data.manifest import write_manifest

    if dataset not in ADAPTERS:
        raise typer.BadParameter(f"unknown dataset '{dataset}'; choose from {sorted(ADAPTERS)}")
    fn = ADAPTERS[dataset]
    clips, missing = fn(split_files[0], pose_dir) if dataset == "wlasl" else fn(split_files, pose_dir)
    if not clips:
        raise typer.BadParameter(f"none of the {len(missing)} clips has a pose file in {pose_dir}")
    write_manifest(clips, out)
    typer.echo(f"wrote {out}: {len(clips)} clips; {len(missing)} listed clips have no pose file in {pose_dir}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from .pose import PoseError

    try:
        app()
    except (PoseError, FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise SystemExit(2)


if __name__ == "__main__":
    main()
