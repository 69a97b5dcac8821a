"""Commands that make and inspect data: synth, inspect, extract, manifest, resplit, pool."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import app


@app.command()
def synth(out: Annotated[Path, typer.Option("-o", "--out", help="output folder")],
          classes: Annotated[int, typer.Option(min=2, help="number of signs")] = 20,
          signers: Annotated[int, typer.Option(min=1, help="number of signers (last = test, one before = val)")] = 8,
          per_class: Annotated[int, typer.Option(min=1, help="clips per sign")] = 24,
          seed: Annotated[int, typer.Option(help="random seed; same seed, same data")] = 0) -> None:
    """Write a synthetic sign dataset (manifest.csv + poses/*.npz). No download needed."""
    from ..data.synth import generate

    path = generate(out, classes, signers, per_class, seed)
    typer.echo(f"wrote {classes * per_class} clips and {path}")


@app.command()
def inspect(path: Annotated[Path, typer.Argument(help="a pose file, an OpenPose folder, a manifest CSV or a dataset folder")],
            as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Clips, classes, signers, frames and part presence of a dataset or a single pose file."""
    from ..data.inspect import format_summary, summarize

    s = summarize(path)
    typer.echo(json.dumps(s, indent=2) if as_json else format_summary(s))


@app.command()
def extract(inputs: Annotated[list[Path], typer.Argument(help="videos, folders of videos, or .txt/.csv lists of them")],
            out: Annotated[Path, typer.Option("-o", "--out", help="output folder (pose files, manifest.csv, failures.csv)")],
            workers: Annotated[int, typer.Option(min=1, help="worker processes, each with its own MediaPipe graphs")] = 1,
            fmt: Annotated[str, typer.Option("--format", help="npz (signbest / WLASL100 schema) or pose (pose-format)")] = "npz",
            recover_hands: Annotated[bool, typer.Option(help="second hand-model pass around the pose wrists where Holistic missed a hand")] = True,
            interpolate: Annotated[int, typer.Option(min=0, help="fill hand gaps of at most this many frames (0: off)")] = 3,
            model_complexity: Annotated[int, typer.Option(min=0, max=2, help="Holistic pose model: 0, 1 or 2")] = 1,
            empty_ok: Annotated[bool, typer.Option("--empty-ok", help="write a pose file even for a video in which no person is found (default: such a video is a failure)")] = False) -> None:
    """Videos -> MediaPipe Holistic keypoints, offline; reruns skip finished clips. Needs the video extra.
    Exit status 1 when a video failed or no video was found."""
    from ..video.batch import FAILURES, MANIFEST, extract_videos
    from ..video.holistic import VIDEO_SUFFIXES, ExtractConfig, require_mediapipe
    from ..video.recovery import RecoveryConfig

    try:
        require_mediapipe()
    except ImportError as e:
        typer.echo(f"error: {e}", err=True)
        raise SystemExit(2)
    cfg = ExtractConfig(model_complexity=model_complexity, recover_hands=recover_hands,
                        interpolate=interpolate > 0, recovery=RecoveryConfig(max_gap=max(interpolate, 0)),
                        require_person=not empty_ok)
    r = extract_videos(inputs, out, workers, fmt, cfg)
    if not r.done and not r.skipped and not r.failures:
        typer.echo(f"error: no videos found in {', '.join(map(str, inputs))} "
                   f"(looked for {', '.join(sorted(VIDEO_SUFFIXES))})", err=True)
        raise SystemExit(1)
    fps = r.frames / r.seconds if r.seconds else 0.0
    typer.echo(f"extracted {len(r.done)} clips ({r.frames} frames, {fps:.1f} frames/s), skipped {r.skipped} "
               f"already done, {len(r.failures)} failed; manifest: {out / MANIFEST}")
    if r.failures:
        for video, err in r.failures[:10]:
            typer.echo(f"failed: {video}: {err}", err=True)
        typer.echo(f"all failures: {out / FAILURES}", err=True)
        raise SystemExit(1)


@app.command()
def manifest(dataset: Annotated[str, typer.Argument(help="wlasl | msasl | slr500 | nmfs-csl")],
             split_files: Annotated[list[Path], typer.Argument(help="the official split / list file(s)")],
             pose_dir: Annotated[Path, typer.Option(help="folder of your pose files, named after the clips")],
             out: Annotated[Path, typer.Option("-o", "--out", help="manifest CSV to write")]) -> None:
    """Build a manifest from a dataset's official split files and your local pose folder."""
    from ..data.adapters import ADAPTERS, read_split_files
    from ..data.manifest import write_manifest
    from ..outputs import claim_file, record

    if dataset not in ADAPTERS:
        raise typer.BadParameter(f"unknown dataset '{dataset}'; choose from {sorted(ADAPTERS)}")
    claim_file(out, [*split_files, pose_dir])
    clips, missing = read_split_files(dataset, split_files, pose_dir)
    if not clips:
        raise typer.BadParameter(f"none of the {len(missing)} clips has a pose file in {pose_dir}")
    write_manifest(clips, out)
    record(out)
    typer.echo(f"wrote {out}: {len(clips)} clips; {len(missing)} listed clips have no pose file in {pose_dir}")


@app.command()
def resplit(data: Annotated[Path, typer.Argument(help="dataset manifest")],
            out: Annotated[Path, typer.Option("-o", "--out", help="manifest CSV to write")],
            val_fraction: Annotated[float, typer.Option(min=0.01, max=0.99, help="share of clips whose signers go to val")] = 0.2,
            seed: Annotated[int, typer.Option(help="random seed for the signer shuffle")] = 0) -> None:
    """Signer-independent re-split of train+val: no signer in both."""
    from ..data.manifest import read_manifest, write_manifest
    from ..data.resplit import split_by_signer
    from ..outputs import claim_file, record

    claim_file(out, [data])
    clips, summary = split_by_signer(read_manifest(data), val_fraction, seed)
    write_manifest(clips, out)
    record(out)
    typer.echo(f"wrote {out}: {json.dumps(summary)}")


@app.command()
def pool(folder: Annotated[Path, typer.Argument(help="folder of pose files (any layout) to pre-train on")],
         out: Annotated[Path, typer.Option("-o", "--out", help="unlabelled manifest CSV to write")],
         exclude: Annotated[Optional[list[Path]], typer.Option(help="evaluation manifest whose clips must stay out (repeat)")] = None) -> None:
    """Unlabelled pre-training pool: a manifest of a folder's pose files, with counts and part presence;
    clips of the --exclude manifests (same id or same content) are kept out. Exit 1 if any file failed."""
    from ..data.pool import build_pool
    from ..pose import PARTS

    s = build_pool(folder, out, exclude or [])
    for path, why in s["excluded"][:20]:
        typer.echo(f"excluded: {path}: {why}", err=True)
    for path, why in s["failed"][:20]:
        typer.echo(f"failed: {why}", err=True)
    typer.echo(f"wrote {s['manifest']}: {s['clips']} clips, {s['frames']} frames (median {s['frames_median']:.0f}), "
               + ", ".join(f"{p} {100 * s[f'{p}_present']:.1f}%" for p in PARTS)
               + f" of frames; {len(s['excluded'])} excluded as evaluation clips, {len(s['failed'])} unreadable")
    if s["failed"] or not s["clips"]:
        raise SystemExit(1)
