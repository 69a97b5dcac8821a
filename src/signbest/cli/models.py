"""Commands that use a fine-tuned model: evaluate, predict (and --stream), export, serve."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import Checkpoints, Engine, Mirror, Windows, app


@app.command()
def evaluate(checkpoint: Checkpoints,
             data: Annotated[Path, typer.Option(help="dataset manifest")],
             split: Annotated[str, typer.Option(help="split to evaluate")] = "test",
             out: Annotated[Optional[Path], typer.Option(help="report folder (default CHECKPOINT/eval-SPLIT)")] = None,
             windows: Windows = None, mirror: Mirror = False,
             fuse: Annotated[Optional[Path], typer.Option(help="other model's class scores (.csv or .npz keyed by clip id)")] = None,
             fuse_weight: Annotated[float, typer.Option(min=0.0, max=1e6, help="weight of the fused scores")] = 1.0,
             fuse_kind: Annotated[str, typer.Option(help="the fused scores are 'logits' or 'probs'")] = "logits",
             unknown: Annotated[Optional[Path], typer.Option(help="a manifest of clips of signs the model does not know: adds open-set AUROC and what the \"unknown\" threshold does")] = None) -> None:
    """Per-instance and per-class Top-1/Top-5, per-class CSV, confusion matrix, Markdown table, calibration
    (ECE before and after, reliability diagram), and with --unknown the open-set figures. Several
    --checkpoint average their probabilities (an ensemble; give --out)."""
    from ..eval.evaluate import evaluate as run

    res = run(checkpoint, data, split, out, windows, fuse, fuse_weight, fuse_kind, mirror, unknown)
    for name in ("pose", "fused"):
        if name in res:
            m = res[name]
            typer.echo(f"{name:>6}: per-instance top-1 {m['per_instance_top1']:.2f} top-5 {m['per_instance_top5']:.2f} | "
                       f"per-class top-1 {m['per_class_top1']:.2f} top-5 {m['per_class_top5']:.2f} ({m['clips']} clips)")
    cal = res["calibration"]
    typer.echo(f"calibration: ECE {cal['ece_before']:.2f}% -> {cal['ece_after']:.2f}% (temperature {cal['temperature']})")
    if "open_set" in res:
        o = res["open_set"]
        typer.echo(f"open set: AUROC {o['auroc']:.1f} ({o['known_clips']} known clips, {o['unknown_clips']} unknown); at the "
                   f"threshold {o['threshold']:.3f}: {o['known_kept']:.1f}% of known kept, {o['unknown_rejected']:.1f}% of "
                   f"unknown answered \"unknown\", accuracy {o['known_accuracy_with_unknown']:.1f}% with unknown counted wrong")


@app.command()
def predict(checkpoint: Checkpoints,
            files: Annotated[list[Path], typer.Argument(help="pose files (any supported layout) or folders of them")],
            csv_out: Annotated[Optional[Path], typer.Option("--csv", help="write predictions to this CSV")] = None,
            top: Annotated[int, typer.Option(min=1, help="how many glosses to show")] = 5,
            as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON (exact probabilities)")] = False,
            engine: Engine = "auto", windows: Windows = None, mirror: Mirror = False,
            stream: Annotated[bool, typer.Option("--stream", help="each file is a long sequence: recognise the signs in it one after another (a timeline)")] = False,
            timeline: Annotated[Optional[Path], typer.Option(help="with --stream, write the timeline here: .json, .csv or .vtt (subtitles)")] = None) -> None:
    """Top glosses with probabilities for new clips; a folder argument writes a CSV. Exit status 1 when
    any input failed (each is named with its problem)."""
    import csv

    from ..outputs import claim_file, record
    from ..inputs import expand_inputs
    from ..predict import predict as run

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
        from ..atomic import atomic_write

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
    from ..outputs import claim_file, record
    from ..predict import Predictor
    from ..stream import UNKNOWN, stream_file, write_timeline

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
    from ..export import export_onnx

    try:
        import onnxscript  # noqa: F401 - torch's exporter needs it; say so before loading anything
    except ImportError:
        raise ValueError("exporting needs torch's ONNX exporter: pip install 'signbest[onnx]'") from None
    res = export_onnx(checkpoint, out or checkpoint / "model.onnx")
    typer.echo(f"wrote {res['out']} ({res['bytes'] / 1e6:.1f} MB, {res['glosses']} glosses); onnxruntime matches "
               f"torch within {res['max_probability_difference']:.1e} (same top-1: {res['same_top1']})")


@app.command()
def serve(checkpoint: Checkpoints,
          tokenizer: Annotated[Optional[Path], typer.Option(help="tokenizer folder: the page then shows token ids per frame")] = None,
          host: Annotated[str, typer.Option(help="address to listen on; 127.0.0.1 keeps the page on this machine")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
          max_upload_mb: Annotated[float, typer.Option(help="largest upload accepted, in MB")] = 50.0,
          engine: Engine = "auto", windows: Windows = None, mirror: Mirror = False,
          allow_host: Annotated[Optional[list[str]], typer.Option("--allow-host", help="a host name or address the page may be reached by, besides localhost (once per name)")] = None,
          body_timeout: Annotated[float, typer.Option(min=1.0, max=3600.0, help="seconds an upload may take to arrive")] = 30.0,
          examples: Annotated[Optional[Path], typer.Option(help="clips the page offers to try: a manifest (its test clips, one per sign) or a folder of pose files")] = None,
          max_live: Annotated[int, typer.Option(min=0, max=64, help="live camera streams at once (each holds MediaPipe and a core); 0 turns the live camera off")] = 2) -> None:
    """A local web page and JSON API that recognise a sign from a video, a webcam recording or a pose
    file (results identical to `signbest predict`), follow a live camera, and show the timeline of a long
    video (as `predict --stream`)."""
    import uvicorn

    from ..predict import Predictor
    from ..serve import create_app, load_examples

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
    app = create_app(predictor, max_upload_mb, name, tuple(allow_host or ()), body_timeout, load_examples(examples),
                     max_live)
    # No access log (a line per request); at most 64 open connections, beyond that 503 at once.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, limit_concurrency=64)
