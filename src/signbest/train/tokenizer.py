"""Train a pose tokenizer (coupled d-VAE, separate VQ or K-Means) on the train frames of one or more
datasets, through the engine. It reads train clips only (never dev, val or test): progress is measured
on the last 5% of the training frames, which it does not train on."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import torch

from ..pose import PARTS
from .. import fingerprint
from ..checkpoint import CHECKPOINT, commit_folder, model_tensors, versioned
from ..sections import section
from ..data.batches import epoch_order
from ..data.protocol import SplitConfig, seeded_share, split_sets
from ..models.kmeans_tokenizer import KMeansTokenizer
from ..models.tokenizer import TokenizerConfig, flat_parts
from ..models.tokenizers import build_tokenizer
from ..models.vq_tokenizer import VQTokenizer
from ..runtime import MetricsLog, seed_everything
from ..tokens import evaluate_tokenizer, frame_pool
from . import distributed as dist_utils
from .engine import Loop, Schedule, Stage, fit

log = logging.getLogger(__name__)


class TokenizerStage(Stage):
    name = "tokenizer"
    plot_keys = ("loss", "rec_px_right", "hand_usage", "body_usage")
    ddp_kwargs = {"broadcast_buffers": False}  # code usage is summed across processes before revival

    def __init__(self, tokenizer: VQTokenizer, config: dict, tokenizer_config: TokenizerConfig, frames: dict, held: dict,
                 info):
        settings = tokenizer_config
        super().__init__(tokenizer, config, Loop(settings.epochs, settings.seed, time_budget_s=settings.time_budget_s), info)
        self.tokenizer_config = tokenizer_config
        self.frames = frames  # flat training frames (N, J, 2) per part, with masks
        self.held = held  # the last 5% of frames, for evaluation only
        self.n = frames["body"].shape[0]

    def optimizer(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.tokenizer_config.lr)

    def schedule(self, steps_per_epoch: int) -> Schedule:
        settings = self.tokenizer_config
        return Schedule("step", every=settings.lr_step_epochs * steps_per_epoch, gamma=settings.lr_gamma)

    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.tokenizer_config.batch_size)

    def _frames(self, idx: torch.Tensor) -> dict:
        return {k: v[idx].to(self.info.device) for k, v in self.frames.items()}

    def batches(self, epoch: int):
        order = epoch_order(self.n, epoch, self.tokenizer_config.seed, True)
        for s in range(0, self.n, self.tokenizer_config.batch_size):
            self.global_idx = order[s:s + self.tokenizer_config.batch_size]  # codebook upkeep sees the whole batch
            yield self._frames(self.global_idx[self.info.rank::self.info.world])

    def _global_z(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents of the present hands and bodies of the whole global batch (the same in every process)."""
        with torch.no_grad():
            parts, _ = flat_parts(self._frames(self.global_idx))
            z = self.model.latents(parts)
        present = {p: parts[f"{p}_mask"].any(-1) for p in PARTS}
        return torch.cat([z["left"][present["left"]], z["right"][present["right"]]]).float(), z["body"][present["body"]].float()

    def loss(self, model, batch: dict):
        tok = self.model
        if not bool(tok.hand_quantizer.initialised):  # the same start in every process
            gen, (hz, bz) = torch.Generator().manual_seed(self.tokenizer_config.seed), self._global_z()
            tok.hand_quantizer._init_from(hz, gen)
            tok.body_quantizer._init_from(bz, gen)
        loss, _ = model(batch)
        return loss, batch["body"].shape[0], {}

    def after_step(self, step: int, batch: dict) -> None:
        if not self.tokenizer_config.revive_every or step % self.tokenizer_config.revive_every:
            return
        tok, gen = self.model, torch.Generator().manual_seed(self.tokenizer_config.seed * 7919 + step)
        for q in (tok.hand_quantizer, tok.body_quantizer):
            q.usage.copy_(dist_utils.all_sum_tensor(q.usage, self.info))
        hz, bz = self._global_z()
        tok.hand_quantizer.revive_dead_codes(hz, gen)
        tok.body_quantizer.revive_dead_codes(bz, gen)

    def evaluate(self, model) -> dict:
        return evaluate_tokenizer(self.model, {k: v.to(self.info.device) for k, v in self.held.items()})


def tokenizer_sets(data: list, split_config: SplitConfig, tokenizer_config: TokenizerConfig,
                   progress: bool = False) -> list:
    """The train clips of every manifest (dev carved out); at `data_fraction` < 1 the same share of each
    labelled set that pre-training keeps at that fraction and seed (pools whole), so that a table-8 row's
    tokenizer never reads a clip its pre-training leaves out."""
    sets = [ds for _, ds in split_sets(data, "train", split_config, progress=progress)]
    for ds in sets:
        if ds.labelled and tokenizer_config.data_fraction < 1:
            ds.keep(seeded_share(len(ds), tokenizer_config.data_fraction, tokenizer_config.seed))
    return sets


def train_tokenizer(cfg: dict, data: list[str | Path], out: str | Path, progress: bool = True,
                    device: torch.device | None = None, overwrite: bool = False) -> dict[str, float]:
    """Train on the train split of `data` (dev carved out); report on its last 5% of frames (not trained on)."""
    info = dist_utils.setup(device)
    tokenizer_config = section(cfg, "tokenizer", TokenizerConfig)
    split_config = section(cfg, "split", SplitConfig)
    out = Path(out)
    gen = seed_everything(tokenizer_config.seed)
    frames = frame_pool(tokenizer_sets(data, split_config, tokenizer_config, progress and info.main))
    n_held = max(1, frames["body"].shape[0] // 20)
    held = {k: v[-n_held:] for k, v in frames.items()}
    frames = {k: v[:-n_held] for k, v in frames.items()}
    log.info("tokenizer: %d training frames, %d held-out frames", frames["body"].shape[0], n_held)
    tok = build_tokenizer(tokenizer_config)
    saved = {**cfg, "tokenizer": vars(tokenizer_config), "split": vars(split_config), "stage": "tokenizer"}
    fp = fingerprint.make("tokenizer", saved, data)
    if isinstance(tok, KMeansTokenizer):
        return _fit_kmeans(tok, saved, fp, frames, held, gen, out, overwrite)
    stage = TokenizerStage(tok.to(info.device), saved, tokenizer_config, frames, held, info)
    result = fit(stage, out, fp, progress, overwrite)
    dist_utils.cleanup(info)
    return result


def _fit_kmeans(tok: KMeansTokenizer, saved: dict, fp: dict, frames: dict, held: dict, gen, out: Path,
                overwrite: bool) -> dict:
    fingerprint.claim(out, fp, overwrite)
    state = out / CHECKPOINT / "state.json"
    if state.exists():
        return json.loads(state.read_text())["result"]
    inertia = tok.fit(frames, gen)
    result = {"epoch": 1, **{f"inertia_{k}": v for k, v in inertia.items()}, **evaluate_tokenizer(tok, held)}
    MetricsLog(out, "tokenizer_metrics").log(result)
    commit_folder(out / CHECKPOINT, {"model.safetensors": model_tensors(tok), "config.json": versioned(saved),
                                     "state.json": {"epoch": 1, "result": result}})
    return result
