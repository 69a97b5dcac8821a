"""Train a pose tokenizer (coupled d-VAE, separate VQ or K-Means) on the frames of one or more datasets."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import section
from ..data import SignDataset
from ..models.quantizer import codebook_stats
from ..models.tokenizer import KMeansTokenizer, TokenizerConfig, VQTokenizer, build_tokenizer, flat_parts
from .checkpoint import load_weights, resume, save_training_state, save_weights
from .engine import optimizer_step
from .common import MetricsLog, TimeBudget, autocast, default_device, seed_everything

log = logging.getLogger(__name__)
PARTS = ("left", "right", "body")


def frame_pool(datasets: list[SignDataset], keep_empty: bool = False) -> dict[str, torch.Tensor]:
    """Every frame of the datasets' clips (no sampling), as flat tensors; frames with no part at all
    are dropped unless `keep_empty` (needed when ids must line up with clip offsets)."""
    chunks: dict[str, list] = {}
    for ds in datasets:
        for i in range(len(ds)):
            for k, v in ds.clip_arrays(i).items():
                chunks.setdefault(k, []).append(torch.from_numpy(v))
    frames = {k: torch.cat(v) for k, v in chunks.items()}
    if keep_empty:
        return frames
    keep = frames["body_mask"].any(-1) | frames["left_mask"].any(-1) | frames["right_mask"].any(-1)
    return {k: v[keep] for k, v in frames.items()}


def _batches(frames: dict[str, torch.Tensor], batch_size: int, order: torch.Tensor | None = None):
    n = frames["body"].shape[0]
    order = torch.arange(n) if order is None else order
    for s in range(0, n, batch_size):
        idx = order[s:s + batch_size]
        yield {k: v[idx] for k, v in frames.items()}


@torch.no_grad()
def evaluate_tokenizer(tok, frames: dict[str, torch.Tensor], batch_size: int = 4096) -> dict[str, float]:
    """Reconstruction error (mean joint distance in 256x256-crop pixels) per part, usage and perplexity
    per codebook, on the given frames."""
    tok.eval()
    err_sum = {p: 0.0 for p in PARTS}
    err_n = {p: 0 for p in PARTS}
    ids_all = {p: [] for p in PARTS}
    for batch in _batches(frames, batch_size):
        left, right, body = tok.tokenize(batch)
        ids = {"left": left.reshape(-1), "right": right.reshape(-1), "body": body.reshape(-1)}
        if isinstance(tok, KMeansTokenizer):
            rec = tok.reconstruct(ids)
        else:
            q = {p: (tok.hand_quantizer if p != "body" else tok.body_quantizer).indices_to_codes(ids[p]) for p in PARTS}
            rec = tok.decode(q)
        parts, _ = flat_parts(batch)
        for p in PARTS:
            m = parts[f"{p}_mask"] & (ids[p] >= 0)[:, None]
            dist = (rec[p].float() - parts[p]).norm(dim=-1) * 256
            err_sum[p] += float(dist[m].sum())
            err_n[p] += int(m.sum())
            ids_all[p].append(ids[p])
    out = {f"rec_px_{p}": err_sum[p] / max(err_n[p], 1) for p in PARTS}
    hand = codebook_stats(torch.cat(ids_all["left"] + ids_all["right"]), tok.cfg.hand_codes)
    body = codebook_stats(torch.cat(ids_all["body"]), tok.cfg.body_codes)
    out.update({"hand_usage": hand["usage"], "hand_perplexity": hand["perplexity"],
                "body_usage": body["usage"], "body_perplexity": body["perplexity"]})
    return out


def load_tokenizer(folder: str | Path) -> torch.nn.Module:
    """A trained tokenizer from its folder (model.safetensors + config.json), in eval mode."""
    weights, cfg = load_weights(Path(folder))
    tok = build_tokenizer(section(cfg, "tokenizer", TokenizerConfig))
    missing, unexpected = tok.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder}: tokenizer weights do not match its config (missing {missing}, unexpected {unexpected})")
    if isinstance(tok, VQTokenizer):
        tok.hand_quantizer.initialised.fill_(True)
        tok.body_quantizer.initialised.fill_(True)
    return tok.eval()


def split_datasets(data: list[str | Path], split: str, progress: bool = True) -> list[SignDataset]:
    out = []
    for d in data:
        try:
            out.append(SignDataset(d, split=split, progress=progress))
        except ValueError as e:
            if "no clip in split" not in str(e):
                raise
    return out


def train_tokenizer(cfg: dict, data: list[str | Path], out: str | Path, progress: bool = True,
                    device: torch.device | None = None) -> dict[str, float]:
    """Train on the 'train' split of `data`; report on 'val' (or the last 5% of train frames when absent)."""
    tcfg = section(cfg, "tokenizer", TokenizerConfig)
    out, device = Path(out), device or default_device()
    gen = seed_everything(tcfg.seed)
    frames = frame_pool(split_datasets(data, "train", progress))
    held_sets = split_datasets(data, "val", progress)
    if held_sets:
        held = frame_pool(held_sets)
    else:
        n_held = max(1, frames["body"].shape[0] // 20)
        held = {k: v[-n_held:] for k, v in frames.items()}
        frames = {k: v[:-n_held] for k, v in frames.items()}
    log.info("tokenizer: %d training frames, %d held-out frames", frames["body"].shape[0], held["body"].shape[0])
    tok = build_tokenizer(tcfg)
    saved_cfg = {**cfg, "tokenizer": vars(tcfg)}
    metrics = MetricsLog(out, "tokenizer_metrics", plot_keys=("loss", "rec_px_right", "hand_usage", "body_usage"))
    if isinstance(tok, KMeansTokenizer):
        inertia = tok.fit(frames, gen)
        result = {"epoch": 1, **{f"inertia_{k}": v for k, v in inertia.items()}, **evaluate_tokenizer(tok, held)}
        metrics.log(result)
        save_weights(tok, out, saved_cfg)
        return result

    tok.to(device)
    opt = torch.optim.Adam(tok.parameters(), lr=tcfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, tcfg.lr_step_epochs, tcfg.lr_gamma)
    start_epoch, step = 0, 0
    state = resume(out, tok, opt)
    if state:
        start_epoch, step = state["epoch"], state["step"]
        sched.last_epoch = start_epoch
        gen.manual_seed(tcfg.seed + start_epoch)
        metrics.truncate_after("epoch", start_epoch)
        log.info("tokenizer: resuming %s after epoch %d", out, start_epoch)
    budget = TimeBudget(tcfg.time_budget_s)
    n = frames["body"].shape[0]
    result: dict[str, float] = {}
    for epoch in range(start_epoch, tcfg.epochs):
        tok.train()
        gen.manual_seed(tcfg.seed + epoch)  # the epoch's shuffle depends only on (seed, epoch): resumable
        torch.manual_seed(tcfg.seed + epoch)  # and so does dead-code revival
        order = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        bar = tqdm(_batches(frames, tcfg.batch_size, order), total=math.ceil(n / tcfg.batch_size),
                   desc=f"tokenizer epoch {epoch + 1}/{tcfg.epochs}", disable=not progress, leave=False)
        for batch in bar:
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast(device):
                loss, aux = tok(batch)
            optimizer_step(loss, tok, opt)
            step += 1
            total, count = total + loss.item(), count + 1
            bar.set_postfix(loss=f"{total / count:.4f}")
            if tcfg.revive_every and step % tcfg.revive_every == 0:
                z, parts = aux["z"], aux["parts"]
                hz = torch.cat([z["left"][parts["left_mask"].any(-1)], z["right"][parts["right_mask"].any(-1)]])
                tok.hand_quantizer.revive_dead_codes(hz.detach().float())
                tok.body_quantizer.revive_dead_codes(z["body"][parts["body_mask"].any(-1)].detach().float())
            if budget.exhausted():
                break
        sched.step()
        result = {"epoch": epoch + 1, "step": step, "loss": total / max(count, 1), "lr": opt.param_groups[0]["lr"],
                  **evaluate_tokenizer(tok, {k: v.to(device) for k, v in held.items()})}
        metrics.log(result)
        save_weights(tok, out, saved_cfg)
        save_training_state(out, opt, {"epoch": epoch + 1, "step": step})
        log.info("tokenizer epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in result.items()))
        if budget.exhausted():
            log.info("tokenizer: time budget of %.0f s used up after epoch %d", tcfg.time_budget_s, epoch + 1)
            break
    return result
