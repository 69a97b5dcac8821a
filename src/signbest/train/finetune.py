"""Fine-tuning for isolated sign recognition (paper 3.4): a pre-trained encoder (or none: the
"without pre-training" baseline, same recipe) plus a new head, model selection on validation only."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..config import section
from ..data import AugmentConfig, SignDataset
from ..eval.metrics import classification_metrics
from ..models.best import ModelConfig
from ..models.classifier import HeadConfig, SignClassifier
from .checkpoint import load_weights, resume, save_training_state, save_weights
from .common import MetricsLog, TimeBudget, autocast, default_device, seed_everything
from .engine import collate, epoch_batches, make_adam, num_batches, optimizer_step, to_device
from .distributed import DistInfo

log = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    epochs: int = 30  # upper bound; time_budget_s may stop earlier
    time_budget_s: float = 0.0  # stop after this many seconds (0 = no limit)
    batch_size: int = 32
    num_frames: int = 32  # frames sampled per clip (paper: 32; random for training, centre for testing)
    lr: float = 1e-4  # Adam (paper)
    lr_step_epochs: int = 10  # lr x lr_gamma every this many epochs (paper: x0.1 every 10)
    lr_gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up before the step schedule (0 = the paper's recipe)
    encoder_lr_scale: float = 1.0  # lr of pre-trained encoder weights relative to the head's
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    perturb: float = 0.1  # random perturbation matrix strength (paper)
    shift: float = 0.05  # random translation
    swap_hands: float = 0.0  # left/right mirror probability (later code: 0.5)
    grad_clip: float = 1.0
    bf16: bool = True
    seed: int = 0


def predict_logits(model: SignClassifier, dataset: SignDataset, batch_size: int = 64, windows: int = 1,
                   device: torch.device | None = None, bf16: bool = True) -> np.ndarray:
    """(N, C) logits; with windows > 1, the mean over evenly spaced temporal windows (multi-window test)."""
    device = device or next(model.parameters()).device
    model.eval()
    total = None
    for w in range(windows):
        dataset.window = 0.5 if windows == 1 else w / (windows - 1)
        chunks = []
        with torch.no_grad():
            for s in range(0, len(dataset), batch_size):
                batch = to_device(collate([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))]), device)
                with autocast(device, bf16):
                    chunks.append(model(batch).float().cpu())
        logits = torch.cat(chunks).numpy()
        total = logits if total is None else total + logits
    dataset.window = 0.5
    return total / windows


def build_classifier(cfg: dict, num_classes: int) -> SignClassifier:
    return SignClassifier(section(cfg, "model", ModelConfig), num_classes, section(cfg, "head", HeadConfig))


def finetune(cfg: dict, data: str | Path, out: str | Path, pretrained: str | Path | None = None,
             progress: bool = True, device: torch.device | None = None) -> dict[str, float]:
    fcfg = section(cfg, "finetune", FinetuneConfig)
    device, out = device or default_device(), Path(out)
    seed_everything(fcfg.seed)
    aug = AugmentConfig(fcfg.perturb, fcfg.shift, fcfg.swap_hands)
    train_set = SignDataset(data, "train", fcfg.num_frames, True, aug, fcfg.seed, progress=progress)
    if not train_set.labelled:
        raise ValueError(f"{data}: the manifest has no gloss column: fine-tuning needs labelled clips")
    val_set = SignDataset(data, "val", fcfg.num_frames, False, progress=False)
    if pretrained:
        weights, pre_cfg = load_weights(Path(pretrained))
        cfg = {**cfg, "model": {**pre_cfg["model"], "dropout": section(cfg, "model", ModelConfig).dropout}}
    model = build_classifier(cfg, train_set.num_classes)
    if pretrained:
        model.load_pretrained_encoder(weights)
    model.to(device)
    saved = {**cfg, "finetune": vars(fcfg), "model": vars(model.cfg), "head": vars(model.head_cfg),
             "glosses": train_set.glosses, "pretrained": str(pretrained) if pretrained else None,
             "stage": "finetune", "data": str(data)}
    enc = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    head = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    opt = make_adam([{"params": enc, "lr": fcfg.lr * fcfg.encoder_lr_scale}, {"params": head, "lr": fcfg.lr}],
                    fcfg.lr, fcfg.weight_decay, device, decoupled=False)
    steps = num_batches(len(train_set), fcfg.batch_size, drop_last=True)
    warm = max(1, int(fcfg.warmup_epochs * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(  # per step: warm-up, then x lr_gamma every lr_step_epochs
        opt, lambda s: min(1.0, (s + 1) / warm) * fcfg.lr_gamma ** ((s // steps) // fcfg.lr_step_epochs))
    start_epoch, step, best = 0, 0, -1.0
    metrics = MetricsLog(out, "finetune_metrics", plot_keys=("loss", "val_per_instance_top1"))
    state = resume(out, model, opt)
    if state:
        start_epoch, step, best = state["epoch"], state["step"], state["best"]
        sched.last_epoch = step
        metrics.truncate_after("epoch", start_epoch)
        log.info("finetune: resuming %s after epoch %d", out, start_epoch)
    budget, info, result = TimeBudget(fcfg.time_budget_s), DistInfo(device=device), {}
    for epoch in range(start_epoch, fcfg.epochs):
        model.train()
        train_set.set_epoch(epoch)
        torch.manual_seed(fcfg.seed * 1000 + epoch)
        t0, total, count = time.monotonic(), 0.0, 0
        bar = tqdm(epoch_batches(train_set, fcfg.batch_size, epoch, fcfg.seed, True, info, drop_last=True),
                   total=steps, desc=f"finetune epoch {epoch + 1}/{fcfg.epochs}", disable=not progress, leave=False)
        for batch in bar:
            batch = to_device(batch, device)
            with autocast(device, fcfg.bf16):
                logits = model(batch)
            loss = F.cross_entropy(logits.float(), batch["label"], label_smoothing=fcfg.label_smoothing)
            optimizer_step(loss, model, opt, sched, fcfg.grad_clip)
            step += 1
            total, count = total + loss.item() * len(batch["label"]), count + len(batch["label"])
            bar.set_postfix(loss=f"{total / max(count, 1):.3f}")
            if budget.exhausted():
                break
        val = classification_metrics(predict_logits(model, val_set, device=device, bf16=fcfg.bf16), val_set.labels)
        result = {"epoch": epoch + 1, "step": step, "loss": total / max(count, 1), "lr": opt.param_groups[-1]["lr"],
                  "train_s": time.monotonic() - t0, **{f"val_{k}": v for k, v in val.items() if k.startswith("per_")}}
        metrics.log(result)
        if result["val_per_instance_top1"] > best:  # model selection on validation only
            best = result["val_per_instance_top1"]
            save_weights(model, out / "best", {**saved, "selected_epoch": epoch + 1, "val": val})
        save_weights(model, out, saved)
        save_training_state(out, opt, {"epoch": epoch + 1, "step": step, "best": best})
        log.info("finetune epoch %d: loss %.4f, val top-1 %.2f%% (best %.2f%%)", epoch + 1, result["loss"],
                 result["val_per_instance_top1"], best)
        if budget.exhausted():
            log.info("finetune: time budget of %.0f s used up after epoch %d", fcfg.time_budget_s, epoch + 1)
            break
    return {**result, "best_val_per_instance_top1": best}
