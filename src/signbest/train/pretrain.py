"""MUM pre-training (paper 3.3): the frozen tokenizer labels each frame's parts; the model predicts the
labels of masked parts. Also the table 7/9 ablations (hand/body-only masking, R-Mask, regression)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..config import section
from ..data import SignDataset
from ..models.best import BESTPretrainer, ModelConfig
from ..models.masking import NOISE_DIM, MaskingConfig, MUMMasking, build_masking
from . import distributed as dist_utils
from .checkpoint import resume, save_training_state, save_weights
from .common import MetricsLog, TimeBudget, autocast, seed_everything
from .engine import ConcatSets, epoch_batches, make_adam, num_batches, optimizer_step, to_device, warmup_linear
from .tokenizer import load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    epochs: int = 100  # upper bound; time_budget_s may stop earlier
    time_budget_s: float = 0.0  # stop after this many seconds (0 = no limit)
    batch_size: int = 32  # global batch (split across torchrun processes)
    num_frames: int = 32  # frames per clip window
    lr: float = 1e-4  # AdamW learning rate (paper)
    weight_decay: float = 0.01
    warmup_epochs: float = 6  # linear warm-up, then linear decay to zero at `epochs`
    grad_clip: float = 1.0  # max gradient norm (0 = off)
    data_fraction: float = 1.0  # share of the pre-training clips used (table 8)
    bf16: bool = True  # bf16 autocast where the hardware supports it
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.data_fraction <= 1:
            raise ValueError(f"pretrain data_fraction must be in (0, 1], got {self.data_fraction}")
        if self.batch_size < 1 or self.num_frames < 1:
            raise ValueError("pretrain batch_size and num_frames must be >= 1")


def subset(ds: SignDataset, fraction: float, seed: int) -> SignDataset:
    """Keep a seeded share of a dataset's clips (the same clips for every run with that seed)."""
    if fraction >= 1:
        return ds
    keep = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[: max(1, round(fraction * len(ds)))]
    keep = sorted(keep.tolist())
    ds.clips, ds.rows = [ds.clips[i] for i in keep], ds.rows[keep]
    return ds


def make_targets(tokenizer, batch: dict, objective: str) -> dict:
    if objective == "token":
        with torch.no_grad():
            left, right, body = tokenizer.tokenize(batch)  # frozen, eval mode
        return {"left": left, "right": right, "body": body}
    valid = torch.stack([batch[f"{p}_mask"].any(-1) & batch["frame_mask"] for p in ("left", "right", "body")], -1)
    return {**{k: batch[k] for k in ("left", "right", "body", "left_mask", "right_mask", "body_mask")}, "valid": valid}


def masked_step(model, tokenizer, masking, batch: dict, objective: str):
    """One forward pass: targets from the frozen tokenizer, masks from the batch's noise."""
    targets = make_targets(tokenizer, batch, objective)
    if isinstance(masking, MUMMasking):
        part_mask, joint_drop = masking(batch["frame_mask"], batch["noise"]), None
    else:
        joint_drop, part_mask = masking(batch["frame_mask"], batch["noise"])
    return model(batch, targets, part_mask, joint_drop)


@torch.no_grad()
def evaluate(model, tokenizer, masking, dataset, cfg: PretrainConfig, info, device) -> dict[str, float]:
    """Masked-part loss and (token objective) accuracy on held-out clips, with fixed masks."""
    model.eval()
    total, n, correct = 0.0, 0, 0
    for batch in epoch_batches(dataset, cfg.batch_size, 0, cfg.seed, False, info):
        batch = to_device(batch, device)
        with autocast(device, cfg.bf16):
            loss, stats, _ = masked_step(model, tokenizer, masking, batch, model_cfg(model).objective)
        total += float(loss) * stats["n_targets"]
        n += stats["n_targets"]
        correct += stats["correct"]
    total, n, correct = (dist_utils.all_sum(v, info) for v in (total, n, correct))
    return {"val_loss": total / max(n, 1), "val_acc": correct / max(n, 1)}


def model_cfg(model) -> ModelConfig:
    return (model.module if isinstance(model, DistributedDataParallel) else model).cfg


def load_pool(data: list, split: str, num_frames: int, train: bool, seed: int, progress: bool) -> ConcatSets | None:
    sets = []
    for d in data:
        try:
            sets.append(SignDataset(d, split=split, num_frames=num_frames, train=train, seed=seed,
                                    noise_dim=NOISE_DIM, progress=progress))
        except ValueError as e:
            if "no clip in split" not in str(e):
                raise
    return ConcatSets(sets) if sets else None


def pretrain(cfg: dict, data: list, tokenizer_dir: str | Path | None, out: str | Path, progress: bool = True,
             device: torch.device | None = None) -> dict[str, float]:
    info = dist_utils.setup(device)
    device = info.device
    pcfg, mcfg = section(cfg, "pretrain", PretrainConfig), section(cfg, "model", ModelConfig)
    mask_cfg = section(cfg, "masking", MaskingConfig)
    tokenizer = None
    if mcfg.objective == "token":
        if tokenizer_dir is None:
            raise ValueError("the token objective needs --tokenizer (a trained tokenizer folder)")
        tokenizer = load_tokenizer(tokenizer_dir).to(device)
        tcfg = tokenizer.cfg
        mcfg.hand_codes, mcfg.body_codes = tcfg.hand_codes, tcfg.body_codes  # heads follow the vocabulary
    if mask_cfg.strategy == "none":
        raise ValueError("pre-training needs a masking strategy (mum or random)")
    masking = build_masking(mask_cfg)
    out = Path(out)
    seed_everything(pcfg.seed)
    train_set = load_pool(data, "train", pcfg.num_frames, True, pcfg.seed, progress and info.main)
    if train_set is None:
        raise ValueError(f"no 'train' split in {data}")
    for s in train_set.sets:
        subset(s, pcfg.data_fraction, pcfg.seed)
    train_set = ConcatSets(train_set.sets)
    val_set = load_pool(data, "val", pcfg.num_frames, False, pcfg.seed, False)
    model = BESTPretrainer(mcfg).to(device)
    saved = {**cfg, "model": vars(mcfg), "pretrain": vars(pcfg), "masking": vars(mask_cfg),
             "tokenizer_dir": str(tokenizer_dir) if tokenizer_dir else None, "stage": "pretrain"}
    opt = make_adam(model.parameters(), pcfg.lr, pcfg.weight_decay, device)
    steps_per_epoch = num_batches(len(train_set), pcfg.batch_size)
    budget = TimeBudget(pcfg.time_budget_s)
    sched = warmup_linear(opt, int(pcfg.warmup_epochs * steps_per_epoch), pcfg.epochs * steps_per_epoch, budget)
    start_epoch, step = 0, 0
    metrics = MetricsLog(out, "pretrain_metrics", plot_keys=("loss", "val_loss", "val_acc")) if info.main else None
    state = resume(out, model, opt)
    if state:
        start_epoch, step = state["epoch"], state["step"]
        sched.last_epoch = step
        if metrics:
            metrics.truncate_after("epoch", start_epoch)
        log.info("pretrain: resuming %s after epoch %d (step %d)", out, start_epoch, step)
    ddp = DistributedDataParallel(model, find_unused_parameters=True) if info.enabled else model
    result = {}
    if info.main:
        log.info("pretrain: %d clips, %d steps/epoch, %.1fM parameters, masking %r", len(train_set),
                 steps_per_epoch, sum(p.numel() for p in model.parameters()) / 1e6, masking)
    for epoch in range(start_epoch, pcfg.epochs):
        ddp.train()
        train_set.set_epoch(epoch)
        torch.manual_seed(pcfg.seed * 1000 + epoch * 10 + info.rank)  # dropout: replayable on resume
        t0, total, count, seqs = time.monotonic(), 0.0, 0, 0
        bar = tqdm(epoch_batches(train_set, pcfg.batch_size, epoch, pcfg.seed, True, info), total=steps_per_epoch,
                   desc=f"pretrain epoch {epoch + 1}/{pcfg.epochs}", disable=not (progress and info.main), leave=False)
        for batch in bar:
            batch = to_device(batch, device)
            with autocast(device, pcfg.bf16):
                loss, stats, _ = masked_step(ddp, tokenizer, masking, batch, mcfg.objective)
            n_global = dist_utils.all_sum(stats["n_targets"], info)
            # Each rank's summed loss over the global count: DDP's gradient mean then equals the
            # single-process gradient of the global batch.
            scaled = loss * stats["n_targets"] * info.world / max(n_global, 1)
            optimizer_step(scaled, model, opt, sched, pcfg.grad_clip)
            step += 1
            total += float(loss.detach()) * stats["n_targets"]
            count += stats["n_targets"]
            seqs += batch["body"].shape[0]
            bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
            if budget.exhausted():
                break
        total, count, seqs = (dist_utils.all_sum(v, info) for v in (total, count, seqs))
        result = {"epoch": epoch + 1, "step": step, "loss": total / max(count, 1), "lr": sched.get_last_lr()[0],
                  "seq_per_s": seqs / (time.monotonic() - t0), "elapsed_s": budget.elapsed}
        if val_set is not None:
            result.update(evaluate(ddp, tokenizer, masking, val_set, pcfg, info, device))
        if info.main:
            metrics.log(result)
            save_weights(model, out, saved)
            save_training_state(out, opt, {"epoch": epoch + 1, "step": step})
            log.info("pretrain epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in result.items()))
        dist_utils.barrier(info)
        if budget.exhausted():
            if info.main:
                log.info("pretrain: time budget of %.0f s used up after epoch %d", pcfg.time_budget_s, epoch + 1)
            break
    dist_utils.cleanup(info)
    return result
