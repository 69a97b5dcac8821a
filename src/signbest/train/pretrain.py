"""MUM pre-training (paper 3.3): the frozen tokenizer labels each frame's parts; the model predicts the
labels of masked parts. Also the table 7/9 ablations (hand/body-only masking, R-Mask, regression).

Pre-training reads the train clips of its manifests only (never dev, val or test); a seeded 5% of them
(at most 256) is held out of training to measure the masked-part loss."""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..pose import PARTS
from .. import fingerprint
from ..sections import section
from ..data.dataset import ConcatSets
from ..data.device_batches import DeviceBatches
from ..data.protocol import SplitConfig, seeded_share, split_sets
from ..models.best import BESTPretrainer, ModelConfig
from ..models.masking import NOISE_DIM, MaskingConfig, build_masking
from . import distributed as dist_utils
from ..runtime import autocast
from ..data.batches import epoch_batches, num_batches
from .engine import Loop, Schedule, Stage, decay_groups, fit, make_adam
from ..tokens import load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    epochs: int = 100  # upper bound; time_budget_s may stop earlier
    time_budget_s: float = 0.0  # stop after this many seconds (0 = no limit)
    batch_size: int = 32  # global batch (split across torchrun processes)
    num_frames: int = 32  # frames per clip window
    sampling: str = "window"  # frame sampling: window (strided window) | spread (whole clip: worse on dev, see README)
    crop: float = 1.0  # spread: a training sample spans a random share in [crop, 1] of its clip
    lr: float = 1e-4  # AdamW learning rate (paper)
    weight_decay: float = 0.01
    warmup_epochs: float = 6  # linear warm-up, then linear decay to zero at `epochs`
    grad_clip: float = 1.0  # max gradient norm (0 = off)
    steps_per_epoch: int = 0  # 0: one pass over the data; else this many steps (rows with pools of other sizes compare)
    data_fraction: float = 1.0  # share of the labelled pre-training clips used (table 8); pools are used whole
    heldout_fraction: float = 0.05  # share of the clips (at most 256) kept out of training to measure the loss
    bf16: bool = True  # bf16 autocast where the hardware supports it
    device_batches: bool = False  # make whole batches on the device (GPU data path), not clip by clip
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.data_fraction <= 1:
            raise ValueError(f"pretrain data_fraction must be in (0, 1], got {self.data_fraction}")
        if not 0 <= self.heldout_fraction < 0.5:
            raise ValueError(f"pretrain heldout_fraction must be in [0, 0.5), got {self.heldout_fraction}")


def make_targets(tokenizer, batch: dict, objective: str) -> dict:
    if objective == "token":
        with torch.no_grad():
            left, right, body = tokenizer.tokenize(batch)  # frozen, eval mode
        return {"left": left, "right": right, "body": body}
    valid = torch.stack([batch[f"{p}_mask"].any(-1) & batch["frame_mask"] for p in PARTS], -1)
    return {**{k: batch[k] for k in (*PARTS, *(f"{p}_mask" for p in PARTS))}, "valid": valid}


def masked_step(model, tokenizer, masking, batch: dict, objective: str):
    """One forward pass: targets from the frozen tokenizer, masks from the batch's noise."""
    targets = make_targets(tokenizer, batch, objective)
    present = torch.stack([targets[p] >= 0 for p in PARTS], -1) if objective == "token" else targets["valid"]
    masks = masking(batch["frame_mask"], batch["noise"], present)
    return model(batch, targets, masks.part_mask, masks.joint_drop)


class PretrainStage(Stage):
    name = "pretrain"
    plot_keys = ("loss", "heldout_loss", "heldout_acc")
    ddp_kwargs = {"find_unused_parameters": True}

    def __init__(self, model, config, pretrain_config: PretrainConfig, tokenizer, masking, train_set, held_set, info):
        settings = pretrain_config
        loop = Loop(settings.epochs, settings.seed, settings.grad_clip, settings.bf16, settings.time_budget_s)
        super().__init__(model, config, loop, info)
        self.pretrain_config = pretrain_config
        self.tokenizer = tokenizer  # frozen: gives the targets
        self.masking = masking
        self.train_set = train_set
        self.held_set = held_set
        self.source = DeviceBatches(train_set, info.device) if settings.device_batches else train_set  # batches' maker

    def optimizer(self):
        settings = self.pretrain_config
        groups = decay_groups(self.model.named_parameters(), settings.weight_decay)
        return make_adam(groups, settings.lr, settings.weight_decay, self.info.device)

    def schedule(self, steps_per_epoch: int) -> Schedule:
        settings = self.pretrain_config
        return Schedule("linear", warmup=int(settings.warmup_epochs * steps_per_epoch),
                        total=settings.epochs * steps_per_epoch)

    def steps_per_epoch(self) -> int:
        settings = self.pretrain_config
        return settings.steps_per_epoch or num_batches(len(self.train_set), settings.batch_size)

    def batches(self, epoch: int):
        self.train_set.set_epoch(epoch)
        settings = self.pretrain_config
        return epoch_batches(self.source, settings.batch_size, epoch, settings.seed, True, self.info,
                             steps=settings.steps_per_epoch)

    def loss(self, model, batch: dict):
        loss, stats, _ = masked_step(model, self.tokenizer, self.masking, batch, self.model.cfg.objective)
        return loss, stats["n_targets"], {"acc": stats["correct"], "items": batch["body"].shape[0]}

    @torch.no_grad()
    def evaluate(self, model) -> dict:
        """Masked-part loss and (token objective) accuracy on the held-out clips, with fixed masks."""
        if self.held_set is None:
            return {}
        model = self.model  # not the DDP wrapper: a rank may have no held-out batch, so no collective here
        model.eval()
        settings = self.pretrain_config
        loss_sum, targets, correct = 0.0, 0, 0
        for batch in epoch_batches(self.held_set, settings.batch_size, 0, settings.seed, False, self.info):
            with autocast(self.info.device, settings.bf16):
                loss, stats, _ = masked_step(model, self.tokenizer, self.masking, batch, self.model.cfg.objective)
            loss_sum += float(loss) * stats["n_targets"]
            targets += stats["n_targets"]
            correct += stats["correct"]
        loss_sum, targets, correct = (dist_utils.all_sum(v, self.info) for v in (loss_sum, targets, correct))
        return {"heldout_loss": loss_sum / max(targets, 1), "heldout_acc": correct / max(targets, 1)}

    def describe(self, batch: dict) -> str:
        return self.train_set.describe(batch["index"].tolist())


def load_pool(data: list, split_config: SplitConfig, pretrain_config: PretrainConfig,
              progress: bool) -> tuple[ConcatSets, ConcatSets | None]:
    """Train clips of every manifest (dev carved out of labelled ones), minus a held-out share."""
    train, held = [], []
    settings = pretrain_config
    dataset_options = dict(num_frames=settings.num_frames, seed=settings.seed, noise_dim=NOISE_DIM,
                           sampling=settings.sampling, crop=settings.crop)
    for i, ds in split_sets(data, "train", split_config, train=True, progress=progress, **dataset_options):
        # The fraction shrinks labelled training sets (table 8's x-axis); unlabelled pools are used whole,
        # so "WLASL at 25% plus the pool" is one setting.
        keep = seeded_share(len(ds), pretrain_config.data_fraction if ds.labelled else 1.0, pretrain_config.seed)
        n_held = min(round(pretrain_config.heldout_fraction * len(keep)), 256) if len(keep) > 20 else 0
        out = set(seeded_share(len(keep), n_held / len(keep), pretrain_config.seed + 1 + i)) if n_held else set()
        if out:  # the same clips, tested: centred windows, no augmentation (a copy sharing the loaded data)
            held_copy = copy.copy(ds)
            held_copy.train = False
            held_copy.augment = None
            held.append(held_copy.keep([keep[j] for j in sorted(out)]))
        ds.keep([keep[j] for j in range(len(keep)) if j not in out])
        train.append(ds)
    if not train:
        raise ValueError(f"no 'train' split in {[str(d) for d in data]}")
    return ConcatSets(train), (ConcatSets(held) if held else None)


def steps_per_epoch_of(cfg: dict, data: list) -> int:
    """Optimisation steps in one pass over `data`'s pre-training clips: what a row pre-trained on a larger
    pool sets as its `pretrain.steps_per_epoch` to get the same number of steps (compute matched)."""
    pretrain_config = section(cfg, "pretrain", PretrainConfig)
    split_config = section(cfg, "split", SplitConfig)
    train_set, _ = load_pool(data, split_config, pretrain_config, progress=False)
    return num_batches(len(train_set), pretrain_config.batch_size)


def pretrain(cfg: dict, data: list, tokenizer_dir: str | Path | None, out: str | Path, progress: bool = True,
             device: torch.device | None = None, overwrite: bool = False) -> dict[str, float]:
    info = dist_utils.setup(device)
    pretrain_config = section(cfg, "pretrain", PretrainConfig)
    model_config = section(cfg, "model", ModelConfig)
    masking_config = section(cfg, "masking", MaskingConfig)
    split_config = section(cfg, "split", SplitConfig)
    tokenizer = None
    if model_config.objective == "token":
        if tokenizer_dir is None:
            raise ValueError("the token objective needs --tokenizer (a trained tokenizer folder)")
        tokenizer = load_tokenizer(tokenizer_dir).to(info.device)
        model_config.hand_codes = tokenizer.codebook_sizes["left"]  # the MUM heads follow the vocabulary
        model_config.body_codes = tokenizer.codebook_sizes["body"]
    if masking_config.strategy == "none":
        raise ValueError("pre-training needs a masking strategy (mum or random)")
    masking = build_masking(masking_config)
    torch.manual_seed(pretrain_config.seed)
    train_set, held_set = load_pool(data, split_config, pretrain_config, progress and info.main)
    model = BESTPretrainer(model_config).to(info.device)
    saved = {**cfg, "model": vars(model_config), "pretrain": vars(pretrain_config), "masking": vars(masking_config),
             "split": vars(split_config), "tokenizer_dir": str(tokenizer_dir) if tokenizer_dir else None, "stage": "pretrain"}
    fp = fingerprint.make("pretrain", saved, data, tokenizer=tokenizer_dir)
    if info.main:
        log.info("pretrain: %d clips (%d held out), %.1fM parameters, masking %r", len(train_set),
                 len(held_set) if held_set else 0, sum(p.numel() for p in model.parameters()) / 1e6, masking)
    stage = PretrainStage(model, saved, pretrain_config, tokenizer, masking, train_set, held_set, info)
    result = {**fit(stage, Path(out), fp, progress, overwrite, [tokenizer_dir]), "train_clips": len(train_set)}
    dist_utils.cleanup(info)
    return result
