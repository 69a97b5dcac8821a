"""The model card: a README.md beside every fine-tuned model (Hugging Face style), saying what the model
recognises, what it was trained and selected on, how well it does, and where it should not be trusted.

Written by fine-tuning when it finishes and again by `evaluate` (which adds its figures); `serve` shows it
and `export` embeds its summary. Everything in it is read from the run folder, so it can be rebuilt at
any time: `write_model_card(run)`.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from .atomic import atomic_write, committed

CARD = "README.md"
log = logging.getLogger(__name__)


def evaluation_reports(run: Path) -> list[dict]:
    """`evaluate` reports of this run: its own eval-* folders and its parent's that name it as checkpoint."""
    run = Path(run).resolve()
    reports = []
    for folder in sorted([*run.glob("eval-*"), *run.parent.glob("eval-*")]):
        try:
            results = json.loads((folder / "results.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(results.get("checkpoint"), str) and Path(results["checkpoint"]).resolve() == run:
            reports.append(results)
    return reports


def card_summary(config: dict) -> dict:
    """The card's facts as one JSON-able dict (also embedded in exported models)."""
    selection = config.get("selection") or {}
    rule = config.get("selection_rule") or {}
    return {"glosses": len(config["glosses"]), "data": config.get("data"), "splits": config.get("data_summary", {}),
            "pretrained": config.get("pretrained"), "selected_epoch": config.get("selected_epoch"),
            "epochs": config["finetune"]["epochs"], "select_on": config.get("select_on"),
            "selection_note": rule.get("why", ""), "dev": {k[4:]: v for k, v in selection.items() if k.startswith("dev_")},
            "model": {k: config["model"][k] for k in ("part_dim", "layers", "heads", "ffn")},
            "num_frames": config["finetune"]["num_frames"], "signbest_version": config.get("signbest_version"),
            "command": config.get("command"), "calibration": config.get("calibration")}


def calibration_text(calibration: dict | None, reports: list[dict]) -> str:
    if not calibration:
        return ("Not calibrated (no dev split to fit it on): its probabilities are the softmax of its scores, and it "
                "has no \"unknown\" answer: a clip of a sign it does not know still gets one of its glosses.")
    text = (f"Temperature {calibration['temperature']:.3f}, fitted on dev ({calibration['clips']} clips): expected "
            f"calibration error on dev {calibration['dev_ece_before']:.1f}% -> {calibration['dev_ece_after']:.1f}% "
            "(dev also chose the epoch: optimistic).")
    text += "".join(f" On {r['split']}: {r['calibration']['ece_before']:.1f}% -> {r['calibration']['ece_after']:.1f}%."
                    for r in reports if "calibration" in r)
    if "unknown_below" in calibration:
        text += (f" It answers \"unknown\" below a calibrated top-1 probability of {calibration['unknown_below']:.2f} "
                 f"(the level that keeps {100 * calibration['known_kept_on_dev']:.0f}% of dev); that catches only "
                 "part of the signs it never learned (docs/recognition.md).")
    return text


def render_card(config: dict, fingerprint: str, reports: list[dict]) -> str:
    s = card_summary(config)
    glosses = config["glosses"]
    splits = s["splits"]
    people = splits.get("train", {}).get("signers")
    lines = ["---", "library_name: signbest", "pipeline_tag: video-classification",
             "tags: [sign-language-recognition, pose, skeleton, best]", "metrics: [accuracy]", "---", "",
             f"# Sign recognition model: {len(glosses)} glosses (signbest {s['signbest_version']})", "",
             "An isolated sign recogniser: one pre-cut clip of one sign in, a probability for each gloss below out. "
             "Inputs are body and hand keypoints (MediaPipe Holistic layout, or any layout signbest reads); a "
             "video is turned into keypoints first.", "", "## What it recognises", "",
             ", ".join(f"`{g}`" for g in glosses), "", "## Training data", "",
             f"Manifest: `{s['data']}`.", ""]
    if splits:
        lines += ["| split | clips | people | used for |", "|---|---|---|---|"]
        use = {"train": "training", "dev": "choosing the epoch", "val": "reporting", "test": "reporting (held out)"}
        lines += [f"| {name} | {v['clips']} | {v['signers']} | {use.get(name, '')} |" for name, v in splits.items()]
        lines.append("")
    pre = s["pretrained"]
    lines += [f"Encoder: {'pre-trained with masked unit modelling (BEST) from `' + pre + '`' if pre else 'trained from scratch (no pre-training)'}; "
              f"size {', '.join(f'{k} {v}' for k, v in s['model'].items())}; {s['num_frames']} frames per clip.", "",
              "## Selection", "",
              f"Epoch {s['selected_epoch']} of {s['epochs']}, "
              + (f"chosen on `{s['select_on']}`." if s["select_on"] not in (None, "last") else "the last one.")
              + (f" {s['selection_note']}" if s["selection_note"] else ""), "", "## Results", ""]
    dev_reported = any(r["split"] == "dev" for r in reports)
    rows = [("dev (chose the epoch: optimistic)", s["dev"].get("per_instance_top1"), s["dev"].get("per_instance_top5"),
             None)] if s["dev"] and not dev_reported else []
    rows += [(f"{r['split']} of `{Path(r['data']).name}`" + (f", {r['windows']} windows" if r.get("windows", 1) > 1 else "")
              + (", mirrored too" if r.get("mirror") else ""),
              r["pose"]["per_instance_top1"], r["pose"]["per_instance_top5"], r["pose"]["clips"]) for r in reports]
    if rows:
        lines += ["| data | Top-1 % | Top-5 % | clips |", "|---|---|---|---|"]
        lines += [f"| {n} | {t1:.2f} | {t5:.2f} | {c or ''} |" for n, t1, t5, c in rows if t1 is not None]
    else:
        lines.append("No evaluation yet: `signbest evaluate --checkpoint RUN --data MANIFEST --split test` adds it here.")
    lines += ["", "## Calibration and \"unknown\"", "", calibration_text(s["calibration"], reports), "",
              "## Intended use and limits", "",
              "- Research and prototyping of isolated sign recognition over exactly the glosses above.",
              f"- It saw {people if people is not None else 'an unknown number of'} people in training; expect lower "
              "accuracy for other people, cameras, framing and lighting, and measure on your own held-out people.",
              "- Keypoints should come from the same extractor as its training data (for signbest's own clips, "
              "MediaPipe Holistic 0.10.21 through `signbest extract`); another extractor's keypoints are a shifted input.",
              "- Not for decisions about people (access, assessment, interpretation in medical or legal settings).", "",
              "## Provenance", "", f"- fingerprint: `{fingerprint}`"]
    if s["command"]:
        lines.append(f"- made by: `{s['command']}`")
    lines += ["", "## Use it", "", "```", "signbest predict --checkpoint RUN clip.npz", "signbest serve --checkpoint RUN",
              "signbest export RUN --out model.onnx", "```", ""]
    return "\n".join(lines)


def write_model_card(run: Path) -> Path | None:
    """(Re)write RUN/README.md from the run folder; keeps (with a warning) a README.md that signbest did not
    write. Returns the card's path, or None when it was kept."""
    from .outputs import OutputError, claim_file, record

    run = Path(run)
    selected = committed(run / "selected")
    if selected is None:
        return None
    config = json.loads((selected / "config.json").read_text())
    try:  # a short digest of everything the run depended on (config, data, upstream stages, version)
        fp = json.loads((run / "fingerprint.json").read_text())
        fingerprint = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]
    except (OSError, ValueError):
        fingerprint = "unknown"
    path = run / CARD
    try:
        claim_file(path, own_kinds=())
    except OutputError:
        log.warning("%s: not replaced (signbest did not write it); the model card is not updated", path)
        return None
    text = render_card(config, fingerprint, evaluation_reports(run))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    record(path)
    return path


def portable_card(config: dict) -> str:
    """The card without the paths and command line of the machine that trained the model (for exports)."""
    portable = {**config, "data": Path(config["data"]).name if config.get("data") else None, "command": None,
                "pretrained": "a pre-trained encoder" if config.get("pretrained") else None}
    return render_card(portable, "see the run folder", [])


def card_text(checkpoint: Path, config: dict) -> str:
    """The card a server shows for a checkpoint: the run folder's README.md that signbest wrote, else one
    rendered from the checkpoint's config; front matter dropped, paths of this machine left out."""
    checkpoint = Path(checkpoint)
    for run in (checkpoint, checkpoint.parent):
        card = run / CARD
        if (run / "fingerprint.json").exists() and card.is_file():
            text = card.read_text(encoding="utf-8")
            break
    else:
        text = portable_card(config)
    return without_front_matter(text).replace(str(checkpoint.resolve().parent), "…")


def without_front_matter(card: str) -> str:
    """The card's text for people: the YAML block that model hubs read dropped."""
    return card.split("\n---\n", 1)[-1].lstrip("\n") if card.startswith("---\n") else card

