"""Commands that train: the config views, the three stages one by one, `train` (all of them), the demo."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import Overrides, Overwrite, app


config_app = typer.Typer(no_args_is_help=True, help="Shipped configs and the effective values of one.")
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(config: Annotated[str, typer.Option(help="shipped config name or JSON path")] = "small",
                set_: Overrides = None) -> None:
    """Print the effective config: the file, its bases and --set values, every default filled in."""
    from ..config import effective_config

    typer.echo(json.dumps(effective_config(config, set_), indent=2))


@config_app.command("list")
def config_list() -> None:
    """The shipped configs with their descriptions."""
    from ..config import load_config, shipped_configs

    for name in shipped_configs():
        typer.echo(f"{name:18} {load_config(name).get('description', '')}")


@app.command("train-tokenizer")
def train_tokenizer_cmd(config: Annotated[str, typer.Option(help="shipped config name (paper, small, tiny, ...) or JSON path")],
                        data: Annotated[list[Path], typer.Option(help="dataset manifest (repeat to pool datasets)")],
                        out: Annotated[Path, typer.Option(help="output folder (resumes if it holds a checkpoint)")],
                        set_: Overrides = None, overwrite: Overwrite = False) -> None:
    """Train the pose tokenizer (coupled d-VAE, separate VQ or K-Means, per config) on the train split.
    Under torchrun, one process per device."""
    from ..config import load_config
    from ..train.tokenizer import train_tokenizer

    result = train_tokenizer(load_config(config, set_), data, out, overwrite=overwrite)
    typer.echo(json.dumps(result, indent=2))


@app.command()
def tokenize(tokenizer: Annotated[Path, typer.Option(help="trained tokenizer folder")],
             data: Annotated[Path, typer.Option(help="dataset manifest")],
             out: Annotated[Optional[Path], typer.Option(help="output .npz (default: <tokenizer>/tokens-<data>.npz)")] = None,
             split: Annotated[str, typer.Option(help="split to tokenize, or 'all'")] = "all") -> None:
    """Write the (left, right, body) token ids of every frame of every clip."""
    from ..tokens import tokenize_dataset

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
    from ..tokens import show_dataset_tokens

    typer.echo(f"wrote {show_dataset_tokens(tokenizer, data, out, codes, members, split)}")


@app.command()
def pretrain(config: Annotated[str, typer.Option(help="shipped config name or JSON path")],
             data: Annotated[list[Path], typer.Option(help="dataset manifest; repeat to pool the train splits")],
             out: Annotated[Path, typer.Option(help="output folder (resumes if it holds a checkpoint)")],
             tokenizer: Annotated[Optional[Path], typer.Option(help="trained tokenizer folder (token objective)")] = None,
             set_: Overrides = None, overwrite: Overwrite = False) -> None:
    """Pre-train the BEST encoder with masked unit modelling. Under torchrun, one process per device."""
    from ..config import load_config
    from ..train.pretrain import pretrain as run

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
    from ..config import load_config
    from ..train.finetune import finetune as run

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
    from ..pipeline import train_pipeline

    s = train_pipeline(data, out, config, pool or [], test_signer or [], set_, overwrite)
    m = s["test"]
    typer.echo(f"\nSplits: {s['splits']}\nHeld-out test: top-1 {m['per_instance_top1']:.1f}%, top-5 "
               f"{m['per_instance_top5']:.1f}% ({m['clips']} clips), epoch {s['selected_epoch']}, {s['minutes']:.0f} min.\n"
               f"Model: {s['model']}  (report: {s['model']}/eval-test)\nNext:\n"
               f"  signbest predict --checkpoint {s['model']} CLIP.npz\n"
               f"  signbest serve --checkpoint {s['model']} --tokenizer {s['tokenizer']} "
               f"--examples {Path(s['model']).parent / 'splits.csv'}")


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
    from ..demo import run_demo

    res = run_demo(out, config, classes=classes, seed=seed, kmeans=kmeans, overrides=set_, overwrite=overwrite,
                   data_seed=data_seed)
    typer.echo("\nTest people (unseen by every stage), synthetic signs:\n" + res["table"] + "\n" + res["note"])
    typer.echo(f"Finished in {res['wall_s']:.0f} s. Table, plot (results.png), checkpoints and curves are in {res['out']}")
    if (Path(res["out"]) / "finetune-best").exists():
        typer.echo(f"Try the BEST model in a browser:\n  signbest serve --checkpoint {Path(res['out']) / 'finetune-best'} "
                   f"--tokenizer {Path(res['out']) / 'tokenizer'} --examples {Path(res['out']) / 'data' / 'manifest.csv'}")
