"""How many MUM-masked parts carry a target, with and without `masking.present_only` (README table).

    python bench/mum_targets.py [--manifest ../shared/data/wlasl100/metadata.csv]

The training clips (dev carved out) as the pre-training stage sees them in epoch 0: 32-frame windows
and the MUM noise of each clip; a part is present when the detector found it in that frame.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from signbest.data import SignDataset
from signbest.data.batches import collate
from signbest.data.protocol import load_manifest
from signbest.models.masking import NOISE_DIM, MaskingConfig, MUMMasking
from signbest.pose import PARTS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "wlasl100" / "metadata.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", default=str(SHARED))
    args = ap.parse_args()
    ds = SignDataset(load_manifest(args.manifest), "train", num_frames=32, train=True, noise_dim=NOISE_DIM, progress=False)
    b = collate([ds[i] for i in range(len(ds))])
    present = torch.stack([b[f"{p}_mask"].any(-1) & b["frame_mask"] for p in PARTS], -1)
    print(f"{len(ds)} training clips\n| MUM masking | part slots masked | masked parts without a target | "
          "chosen frames without any target | masked parts with a target |\n|---|---|---|---|---|")
    for flag in (False, True):
        pm = MUMMasking(MaskingConfig(present_only=flag))(b["frame_mask"], b["noise"], present)
        chosen = pm.any(-1)
        useful = int((pm & present).sum())
        print(f"| present_only={flag} | {100 * float(pm.sum() / (b['frame_mask'].sum() * 3)):.1f}% | "
              f"{100 * float((pm & ~present).sum() / pm.sum()):.1f}% | "
              f"{100 * float((chosen & ~(pm & present).any(-1)).sum() / chosen.sum()):.1f}% | {useful} |")


if __name__ == "__main__":
    main()
