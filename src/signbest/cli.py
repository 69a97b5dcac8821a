"""The `signbest` command: each subcommand is one typed function."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="BEST: BERT pre-training for sign language recognition with coupling tokenization.")


@app.callback()
def _common(threads: Annotated[int, typer.Option(min=0, help="torch threads for the whole run (default: OMP_NUM_THREADS if set, else the available cores, shared among torchrun processes); give 1 to each of two runs side by side on 2 cores")] = 0) -> None:
    from .runtime import set_threads

    set_threads(threads)


@app.command()
def synth(out: Annotated[Path, typer.Option("-o", "--out", help="output folder")],
          classes: Annotated[int, typer.Option(min=2, help="number of signs")] = 20,
          signers: Annotated[int, typer.Option(min=1, help="number of signers (last = test, one before = val)")] = 8,
          per_class: Annotated[int, typer.Option(min=1, help="clips per sign")] = 24,
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
    from .video.batch import FAILURES, MANIFEST, extract_videos
    from .video.holistic import VIDEO_SUFFIXES, ExtractConfig, require_mediapipe
    from .video.recovery import RecoveryConfig

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
    from .data.adapters import ADAPTERS, read_split_files
    from .data.manifest import write_manifest
    from .outputs import claim_file, record

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
    from .data.manifest import read_manifest, write_manifest
    from .data.resplit import split_by_signer
    from .outputs import claim_file, record

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
    from .data.pool import build_pool
    from .pose import PARTS

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


Overrides = Annotated[Optional[list[str]], typer.Option("--set", help="override a config value: section.key=value")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="start OUT again when it holds a run made with other settings or data")]
Checkpoints = Annotated[list[Path], typer.Option("--checkpoint", help="fine-tuned run folder, checkpoint folder or .onnx file; give it several times for an ensemble (probabilities averaged)")]
Windows = Annotated[int, typer.Option(min=1, max=32, help="temporal windows averaged per clip (test-time views)")]
Mirror = Annotated[bool, typer.Option("--mirror/--no-mirror", help="also average each view mirrored (hands swapped, body flipped)")]
Engine = Annotated[str, typer.Option(help="auto (onnx for a .onnx file, else torch), torch, or onnx (onnxruntime; a run folder then means its model.onnx; the onnx extra)")]


config_app = typer.Typer(no_args_is_help=True, help="Shipped configs and the effective values of one.")
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(config: Annotated[str, typer.Option(help="shipped config name or JSON path")] = "small",
                set_: Overrides = None) -> None:
    """Print the effective config: the file, its bases and --set values, every default filled in."""
    from .config import effective_config

    typer.echo(json.dumps(effective_config(config, set_), indent=2))


@config_app.command("list")
def config_list() -> None:
    """The shipped configs with their descriptions."""
    from .config import load_config, shipped_configs

    for name in shipped_configs():
        typer.echo(f"{name:18} {load_config(name).get('description', '')}")


@app.command("train-tokenizer")
def train_tokenizer_cmd(config: Annotated[str, typer.Option(help="shipped config name (paper, small, tiny, ...) or JSON path")],
                        data: Annotated[list[Path], typer.Option(help="dataset manifest (repeat to pool datasets)")],
                        out: Annotated[Path, typer.Option(help="output folder (resumes if it holds a checkpoint)")],
                        set_: Overrides = None, overwrite: Overwrite = False) -> None:
    """Train the pose tokenizer (coupled d-VAE, separate VQ or K-Means, per config) on the train split.
    Under torchrun, one process per device."""
    from .config import load_config
    from .train.tokenizer import train_tokenizer

    result = train_tokenizer(load_config(config, set_), data, out, overwrite=overwrite)
    typer.echo(json.dumps(result, indent=2))


@app.command()
def tokenize(tokenizer: Annotated[Path, typer.Option(help="trained tokenizer folder")],
             data: Annotated[Path, typer.Option(help="dataset manifest")],
             out: Annotated[Optional[Path], typer.Option(help="output .npz (default: <tokenizer>/tokens-<data>.npz)")] = None,
             split: Annotated[str, typer.Option(help="split to tokenize, or 'all'")] = "all") -> None:
    """Write the (left, right, body) token ids of every frame of every clip."""
    from .tokens import tokenize_dataset

    path = tokenize_dataset(tokenizer, data, out, split)
    typer.echo(f"wrote {path}")


@app.command("show-tokens")
def show_tokens_cmd(tokenizer: Annotated[Path, typer.Option(help="trained tokenizer folder")],
                    data: Annotated[Path, typer.Option(help="dataset manifest")],
                    out: Annotated[Path, typer.Option("-o", "--out", help="PNG to write")] = Path("tokens.png"),
                    codes: Annotated[int, typer.Option(min=1, help="codes per part to draw")] = 6,
                    members: Annotated[int, typer.Option(min=1, help="member frames per code")] = 6,
                    split: Annotated[str, typer.Option(help="split to draw from")] = "all") -> None:
    """Draw member frames of the most used codes (paper figure 2)."""
    from .tokens import show_dataset_tokens

    typer.echo(f"wrote {show_dataset_tokens(tokenizer, data, out, codes, members, split)}")


@app.command()
def pretrain(config: Annotated[str, typer.Option(help="shipped config name or JSON path")],
             data: Annotated[list[Path], typer.Option(help="dataset manifest; repeat to pool the train splits")],
             out: Annotated[Path, typer.Option(help="output folder (resumes if it holds a checkpoint)")],
             tokenizer: Annotated[Optional[Path], typer.Option(help="trained tokenizer folder (token objective)")] = None,
             set_: Overrides = None, overwrite: Overwrite = False) -> None:
    """Pre-train the BEST encoder with masked unit modelling. Under torchrun, one process per device."""
    from .config import load_config
    from .train.pretrain import pretrain as run

    result = run(load_config(config, set_), data, tokenizer, out, overwrite=overwrite)
    if result:
        typer.echo(json.dumps(result, indent=2))


@app.command()
def finetune(config: Annotated[str, typer.Option(help="shipped config name or JSON path")],
             data: Annotated[Path, typer.Option(help="dataset manifest with train and val splits")],
             out: Annotated[Path, typer.Option(help="output folder (resumes if it holds a checkpoint)")],
             pretrained: Annotated[Optional[Path], typer.Option(help="pre-trained folder; leave out to train from scratch")] = None,
             set_: Overrides = None, overwrite: Overwrite = False) -> None:
    """Fine-tune for isolated sign recognition; the epoch chosen on dev (carved from train) is kept in
    OUT/selected. Under torchrun, one process per device."""
    from .config import load_config
    from .train.finetune import finetune as run

    typer.echo(json.dumps(run(load_config(config, set_), data, out, pretrained, overwrite=overwrite), indent=2))


@app.command()
def train(data: Annotated[Path, typer.Argument(help="your manifest CSV (columns: see the README); pose files or videos")],
          out: Annotated[Path, typer.Option("-o", "--out", help="run folder (resumes if it holds an unfinished run)")],
          config: Annotated[str, typer.Option(help="shipped config name or JSON path")] = "small",
          pool: Annotated[Optional[list[Path]], typer.Option(help="unlabelled manifest to pre-train on as well (repeat)")] = None,
          test_signer: Annotated[Optional[list[str]], typer.Option(help="hold out this person's clips as the test (repeat)")] = None,
          set_: Overrides = None, overwrite: Overwrite = False) -> None:
    """Manifest -> tokenizer -> pre-training -> fine-tuning -> accuracy on held-out people, in one command.
    A rerun continues where it stopped."""
    from .pipeline import train_pipeline

    s = train_pipeline(data, out, config, pool or [], test_signer or [], set_, overwrite)
    m = s["test"]
    typer.echo(f"\nSplits: {s['splits']}\nHeld-out test: top-1 {m['per_instance_top1']:.1f}%, top-5 "
               f"{m['per_instance_top5']:.1f}% ({m['clips']} clips), epoch {s['selected_epoch']}, {s['minutes']:.0f} min.\n"
               f"Model: {s['model']}  (report: {s['model']}/eval-test)\nNext:\n"
               f"  signbest predict --checkpoint {s['model']} CLIP.npz\n"
               f"  signbest serve --checkpoint {s['model']} --tokenizer {s['tokenizer']}")


@app.command()
def evaluate(checkpoint: Checkpoints,
             data: Annotated[Path, typer.Option(help="dataset manifest")],
             split: Annotated[str, typer.Option(help="split to evaluate")] = "test",
             out: Annotated[Optional[Path], typer.Option(help="report folder (default CHECKPOINT/eval-SPLIT)")] = None,
             windows: Windows = 1, mirror: Mirror = False,
             fuse: Annotated[Optional[Path], typer.Option(help="other model's class scores (.csv or .npz keyed by clip id)")] = None,
             fuse_weight: Annotated[float, typer.Option(min=0.0, max=1e6, help="weight of the fused scores")] = 1.0,
             fuse_kind: Annotated[str, typer.Option(help="the fused scores are 'logits' or 'probs'")] = "logits") -> None:
    """Per-instance and per-class Top-1/Top-5, per-class CSV, confusion matrix, Markdown table. Several
    --checkpoint average their probabilities (an ensemble; give --out)."""
    from .eval.evaluate import evaluate as run

    res = run(checkpoint, data, split, out, windows, fuse, fuse_weight, fuse_kind, mirror)
    for name in ("pose", "fused"):
        if name in res:
            m = res[name]
            typer.echo(f"{name:>6}: per-instance top-1 {m['per_instance_top1']:.2f} top-5 {m['per_instance_top5']:.2f} | "
                       f"per-class top-1 {m['per_class_top1']:.2f} top-5 {m['per_class_top5']:.2f} ({m['clips']} clips)")
    cal = res["calibration"]
    typer.echo(f"calibration: ECE {cal['ece_before']:.2f}% -> {cal['ece_after']:.2f}% (temperature {cal['temperature']})")


@app.command()
def predict(checkpoint: Checkpoints,
            files: Annotated[list[Path], typer.Argument(help="pose files (any supported layout) or folders of them")],
            csv_out: Annotated[Optional[Path], typer.Option("--csv", help="write predictions to this CSV")] = None,
            top: Annotated[int, typer.Option(min=1, help="how many glosses to show")] = 5,
            as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON (exact probabilities)")] = False,
            engine: Engine = "auto", windows: Windows = 1, mirror: Mirror = False,
            stream: Annotated[bool, typer.Option("--stream", help="each file is a long sequence: recognise the signs in it one after another (a timeline)")] = False,
            timeline: Annotated[Optional[Path], typer.Option(help="with --stream, write the timeline here: .json, .csv or .vtt (subtitles)")] = None) -> None:
    """Top glosses with probabilities for new clips; a folder argument writes a CSV. Exit status 1 when
    any input failed (each is named with its problem)."""
    import csv

    from .outputs import claim_file, record
    from .inputs import expand_inputs
    from .predict import predict as run

    if stream or timeline:
        return _stream(checkpoint, files, engine, timeline)
    clips, strays, refused = expand_inputs(files)
    if not clips and not refused:
        raise ValueError(f"no pose files or videos in {', '.join(map(str, files))}"
                         + (f" ({len(strays)} other files, e.g. {strays[0].name})" if strays else ""))
    if strays:
        typer.echo(f"warning: skipped {len(strays)} files that are neither pose files nor videos: "
                   + ", ".join(str(p) for p in strays[:5]) + (" ..." if len(strays) > 5 else ""), err=True)
    if csv_out is None and any(f.is_dir() for f in files):
        csv_out = Path("predictions.csv")
    if csv_out:
        claim_file(csv_out, [*files, *clips, *checkpoint])  # before the work, not after it
    results = run(checkpoint, files, top, engine=engine, windows=windows, mirror=mirror)
    if as_json:
        typer.echo(json.dumps(results, indent=1))
    for r in results:
        if "error" in r:
            typer.echo(f"{r['file']}: error: {r['error']}", err=True)
        elif not as_json:
            answer = ", ".join(f"{g} {100 * p:.1f}%" for g, p in r["top"])
            typer.echo(f"{r['file']}: " + (f"unknown (closest: {answer})" if r["unknown"] else answer))
    if csv_out:
        from .atomic import atomic_write

        def write(tmp):
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["file"] + [c for k in range(1, top + 1) for c in (f"gloss{k}", f"prob{k}")]
                           + ["unknown", "error"])
                for r in results:
                    cells = [v for g, p in r.get("top", []) for v in (g, f"{p:.4f}")]
                    unknown = "" if "error" in r else str(r["unknown"]).lower()
                    w.writerow([r["file"]] + cells + [""] * (2 * top - len(cells)) + [unknown, r.get("error", "")])
        atomic_write(csv_out, write)
        record(csv_out)
        typer.echo(f"wrote {csv_out}")
    failed = sum("error" in r for r in results)
    if failed:
        typer.echo(f"{failed} of {len(results)} inputs failed", err=True)
        raise SystemExit(1)


def _stream(checkpoint: list[Path], files: list[Path], engine: str, timeline: Optional[Path]) -> None:
    """`predict --stream`: the timeline of each long file."""
    from .outputs import claim_file, record
    from .predict import Predictor
    from .stream import UNKNOWN, stream_file, write_timeline

    if timeline and len(files) != 1:
        raise ValueError(f"--timeline takes one file's timeline; {len(files)} files were given")
    if timeline:
        claim_file(timeline, [*files, *checkpoint])
    predictor = Predictor(checkpoint, engine=engine)
    for f in files:
        result = stream_file(predictor, f)
        typer.echo(f"{f}: {result['duration_s']:.1f} s, {len(result['timeline'])} segments, "
                   f"{result['real_time_factor']:.1f}x real time")
        for s in result["timeline"]:
            typer.echo(f"  {s['start_s']:7.2f} - {s['end_s']:7.2f} s  {s['gloss']}"
                       + ("" if s["gloss"] == UNKNOWN else f" {100 * s['confidence']:.0f}%"))
        if timeline:
            write_timeline(result, timeline)
            record(timeline)
            typer.echo(f"wrote {timeline}")


@app.command()
def export(checkpoint: Annotated[Path, typer.Argument(help="fine-tuned run folder or checkpoint folder")],
           out: Annotated[Optional[Path], typer.Option("-o", "--out", help="the .onnx file (default CHECKPOINT/model.onnx)")] = None) -> None:
    """Export a fine-tuned model to ONNX (units -> logits and probabilities, any batch and length; glosses and
    preprocessing in its metadata), checked against torch before it is written. Needs the onnx extra."""
    from .export import export_onnx

    try:
        import onnxscript  # noqa: F401 - torch's exporter needs it; say so before loading anything
    except ImportError:
        raise ValueError("exporting needs torch's ONNX exporter: pip install 'signbest[onnx]'") from None
    res = export_onnx(checkpoint, out or checkpoint / "model.onnx")
    typer.echo(f"wrote {res['out']} ({res['bytes'] / 1e6:.1f} MB, {res['glosses']} glosses); onnxruntime matches "
               f"torch within {res['max_probability_difference']:.1e} (same top-1: {res['same_top1']})")


@app.command()
def demo(out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/demo"),
         config: Annotated[str, typer.Option(help="config for every stage")] = "demo",
         kmeans: Annotated[bool, typer.Option(help="also pre-train with the K-Means tokenizer")] = False,
         classes: Annotated[int, typer.Option(min=2, help="synthetic signs")] = 20,
         seed: Annotated[int, typer.Option(help="training seed of every stage")] = 0,
         data_seed: Annotated[int, typer.Option(help="seed of the synthetic signs and people")] = 0,
         set_: Overrides = None, overwrite: Overwrite = False) -> None:
    """Few labels, many unlabelled clips: synthetic signs -> tokenizer -> MUM pre-training -> fine-tuning
    with and without it -> accuracy on unseen people, a table and a plot."""
    from .demo import run_demo

    res = run_demo(out, config, classes=classes, seed=seed, kmeans=kmeans, overrides=set_, overwrite=overwrite,
                   data_seed=data_seed)
    typer.echo("\nTest people (unseen by every stage), synthetic signs:\n" + res["table"] + "\n" + res["note"])
    typer.echo(f"Finished in {res['wall_s']:.0f} s. Table, plot (results.png), checkpoints and curves are in {res['out']}")
    if (Path(res["out"]) / "finetune-best").exists():
        typer.echo(f"Try the BEST model in a browser:\n  signbest serve --checkpoint {Path(res['out']) / 'finetune-best'} "
                   f"--tokenizer {Path(res['out']) / 'tokenizer'}")


@app.command()
def serve(checkpoint: Checkpoints,
          tokenizer: Annotated[Optional[Path], typer.Option(help="tokenizer folder: the page then shows token ids per frame")] = None,
          host: Annotated[str, typer.Option(help="address to listen on; 127.0.0.1 keeps the page on this machine")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
          max_upload_mb: Annotated[float, typer.Option(help="largest upload accepted, in MB")] = 50.0,
          engine: Engine = "auto", windows: Windows = 1, mirror: Mirror = False,
          allow_host: Annotated[Optional[list[str]], typer.Option("--allow-host", help="a host name or address the page may be reached by, besides localhost (once per name)")] = None,
          body_timeout: Annotated[float, typer.Option(min=1.0, max=3600.0, help="seconds an upload may take to arrive")] = 30.0) -> None:
    """A local web page and JSON API that recognise a sign from a video, a webcam recording or a pose
    file (results identical to `signbest predict`)."""
    import uvicorn

    from .predict import Predictor
    from .serve import create_app

    if not 0 < max_upload_mb <= 4096:
        raise ValueError(f"--max-upload-mb must be in (0, 4096], got {max_upload_mb}")
    predictor = Predictor(checkpoint, tokenizer, engine, windows, mirror)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: anyone who can reach this machine can use the page"
                   + ("" if allow_host else "; it answers only requests addressed to localhost until you add "
                      "--allow-host NAME for each name or address it is reached by"), err=True)
    names = ", ".join(map(str, checkpoint))
    typer.echo(f"serving {names} ({len(predictor.glosses)} glosses) on http://{host}:{port}/  (Ctrl+C stops)")
    name = str(checkpoint[0]) if len(checkpoint) == 1 else f"ensemble of {len(checkpoint)}"
    app = create_app(predictor, max_upload_mb, name, tuple(allow_host or ()), body_timeout)
    # No access log (a line per request); at most 64 open connections, beyond that 503 at once.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, limit_concurrency=64)


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
        from .pose import PoseError

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

if __name__ == "__main__":
    main()
