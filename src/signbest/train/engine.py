"""The one training loop of every stage (tokenizer, pre-training, fine-tuning).

A stage (a `Stage` subclass) supplies its model, its batches and its loss; `fit` owns the rest: the run
fingerprint, epochs and steps, seeded randomness, bf16 autocast, gradient clipping, skipping non-finite
steps, the learning-rate schedule, the time budget, metrics, atomic checkpoints, resume and DDP.
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .. import fingerprint
from . import distributed as dist_utils
from ..checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from ..runtime import MetricsLog, TimeBudget, autocast, progress_bar_kwargs
from .distributed import DistInfo

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss keeps diverging)."""


@dataclass
class Schedule:
    """Learning-rate factor per optimiser step: linear warm-up, then one of
    linear (to zero at `total`), cosine (to zero at `total`), step (x gamma every `every` steps), constant."""
    kind: str = "linear"
    warmup: int = 0  # warm-up steps
    total: int = 1  # steps of the whole run
    every: int = 0  # step kind: steps between decays
    gamma: float = 0.1  # step kind: decay factor

    def factor(self, step: int, budget: TimeBudget | None = None) -> float:
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup > 0 else 1.0
        if self.kind == "step":
            return warm * self.gamma ** (step // self.every if self.every > 0 else 0)
        if self.kind == "constant" or step < self.warmup:
            return warm
        progress = (step - self.warmup) / max(self.total - self.warmup, 1)
        if budget is not None and budget.seconds > 0:  # a run stopped by the clock still ends at a low lr
            progress = max(progress, budget.elapsed / budget.seconds)
        progress = min(progress, 1.0)
        return 1.0 - progress if self.kind == "linear" else 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class Loop:
    """The loop settings every stage config carries."""
    epochs: int
    seed: int
    grad_clip: float = 0.0  # max gradient norm (0 = off)
    bf16: bool = True  # bf16 autocast where the hardware has it
    time_budget_s: float = 0.0  # stop after this many seconds (0 = never)
    max_bad_steps: int = 10  # non-finite steps skipped before the run stops with an error


class Stage:
    """What a stage gives the engine. Batches are this rank's share of each global batch."""
    name = "stage"  # metrics file prefix
    plot_keys: tuple[str, ...] = ("loss",)
    ddp_kwargs: dict = {}

    def __init__(self, model: torch.nn.Module, config: dict, loop: Loop, info: DistInfo):
        self.model = model
        self.config = config  # saved with every checkpoint
        self.loop = loop
        self.info = info  # device, rank and world size

    def optimizer(self) -> torch.optim.Optimizer: raise NotImplementedError
    def schedule(self, steps_per_epoch: int) -> Schedule: raise NotImplementedError
    def steps_per_epoch(self) -> int: raise NotImplementedError
    def batches(self, epoch: int) -> Iterator[dict]: raise NotImplementedError

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, float, dict]:
        """(mean loss over this rank's n items, n, extra sums to report per item)."""
        raise NotImplementedError

    def after_step(self, step: int, batch: dict) -> None: pass
    def evaluate(self, model) -> dict: return {}
    def end_epoch(self, result: dict, out: Path) -> None: pass  # main rank, before the checkpoint commit
    def state(self) -> dict: return {}  # extra resumable state
    def restore(self, state: dict) -> None: pass

    def extra_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """Tensor files (name -> tensors) the checkpoint keeps besides the model and optimiser."""
        return {}

    def restore_tensors(self, folder: Path) -> None:
        """Read back what `extra_tensors` saved in the checkpoint folder."""

    def describe(self, batch: dict) -> str: return ""


def fit(stage: Stage, out: Path, fp: dict, progress: bool = True, overwrite: bool = False, inputs=()) -> dict:
    """Train `stage` into `out`, resuming its checkpoint; returns the last epoch's metrics. `inputs`: the
    folders the stage reads besides its manifests (never written over, see `outputs`)."""
    info = stage.info
    loop = stage.loop
    model = stage.model
    out = Path(out)
    if info.main:
        fingerprint.claim(out, fp, overwrite, inputs)
    dist_utils.barrier(info)
    opt, steps_per_epoch = stage.optimizer(), stage.steps_per_epoch()
    schedule, budget = stage.schedule(steps_per_epoch), TimeBudget(loop.time_budget_s)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: schedule.factor(s, budget))
    metrics = MetricsLog(out, f"{stage.name}_metrics", stage.plot_keys) if info.main else None
    state = load_checkpoint(out / CHECKPOINT, model, opt)
    start, step, result = 0, 0, {}
    if state:
        start, step, result = state["epoch"], state["step"], state.get("result", {})
        sched.last_epoch = step
        stage.restore(state)
        stage.restore_tensors(out / CHECKPOINT)
        log.info("%s: resuming %s after epoch %d (step %d)", stage.name, out, start, step)
    if metrics:  # rows of epochs after the checkpoint (a kill before its commit) are redone
        metrics.truncate_after("epoch", start)
    ddp = DistributedDataParallel(model, **stage.ddp_kwargs) if info.enabled else model
    bad = 0
    for epoch in range(start, loop.epochs):
        ddp.train()
        torch.manual_seed(loop.seed * 1000 + epoch * 10 + info.rank)  # dropout etc.: replayable on resume
        t0, sums = time.monotonic(), Counter()
        bar = tqdm(stage.batches(epoch), total=steps_per_epoch, desc=f"{stage.name} epoch {epoch + 1}/{loop.epochs}",
                   **progress_bar_kwargs(progress and info.main))
        for batch in bar:
            with autocast(info.device, loop.bf16):
                loss, n, extra = stage.loss(ddp, batch)
            # Each rank's mean loss weighted by its share of the global batch: DDP's gradient mean then
            # equals the single-process gradient of the whole batch.
            n_global = dist_utils.all_sum(n, info)
            opt.zero_grad(set_to_none=True)
            (loss * n * info.world / max(n_global, 1)).backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), loop.grad_clip or math.inf)
            if not torch.isfinite(norm):  # the all-reduced gradient: every rank skips together
                bad, clips = bad + 1, stage.describe(batch)
                log.warning("%s: non-finite loss or gradient at step %d, step skipped (%d/%d)%s", stage.name,
                            step + 1, bad, loop.max_bad_steps, f"; clips {clips}" if clips else "")
                if bad >= loop.max_bad_steps:
                    raise TrainingError(f"{stage.name}: {bad} steps with a non-finite loss or gradient; the run "
                                        f"diverged (learning rate {opt.param_groups[-1]['lr']:.3g}?). Last good "
                                        f"checkpoint: {out / CHECKPOINT}")
                continue
            opt.step()
            sched.step()
            step += 1
            stage.after_step(step, batch)
            sums.update({"loss": float(loss.detach()) * n, "n": n, **extra})
            bar.set_postfix(loss=f"{sums['loss'] / max(sums['n'], 1):.4f}", refresh=False)
            if budget.exhausted():
                break
        sums = {k: dist_utils.all_sum(v, info) for k, v in sorted(sums.items())}
        seconds = time.monotonic() - t0
        if not sums.get("n"):
            log.warning("%s epoch %d: every step was skipped (non-finite loss or gradient): no loss to report",
                        stage.name, epoch + 1)
        result = {"epoch": epoch + 1, "step": step, "loss": sums["loss"] / sums["n"] if sums.get("n") else float("nan"),
                  "lr": opt.param_groups[-1]["lr"], "train_s": seconds,
                  **{f"{k}_per_s" if k == "items" else k: v / (seconds if k == "items" else max(sums["n"], 1))
                     for k, v in sums.items() if k not in ("loss", "n")},
                  **stage.evaluate(ddp)}
        if info.main:
            metrics.log(result)
            stage.end_epoch(result, out)
            save_checkpoint(out / CHECKPOINT, model, stage.config, opt,
                            {"epoch": epoch + 1, "step": step, "result": result, **stage.state()}, stage.extra_tensors())
            log.info("%s epoch %d: %s", stage.name, epoch + 1,
                     ", ".join(f"{k}={v:.4g}" for k, v in result.items() if isinstance(v, (int, float))))
        dist_utils.barrier(info)
        if budget.exhausted():
            log.info("%s: time budget of %.0f s used up after epoch %d", stage.name, loop.time_budget_s, epoch + 1)
            break
    return result


def decay_groups(named_params, weight_decay: float, **group) -> list[dict]:
    """Two optimiser groups: weight matrices decay; norms, biases and learned tokens/embeddings (1-D or
    named so) do not, as in BERT and MAE: decaying them pulls LayerNorm gains and the mask token to zero."""
    decay, keep = [], []
    for name, p in named_params:
        no_decay = p.ndim < 2 or name.endswith(("token", "embedding", "pos_embed"))
        (keep if no_decay else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay, **group}, {"params": keep, "weight_decay": 0.0, **group}]


def make_adam(params, lr: float, weight_decay: float, device: torch.device, decoupled: bool = True):
    """AdamW (or Adam) with the fused kernel where this torch build has it for the device."""
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, lr=lr, weight_decay=weight_decay)
