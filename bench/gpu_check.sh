#!/bin/bash
# The GPU measurements of issue 16, as one short script for a lent GPU machine (about 3 minutes):
# paper pre-training with one reused batch (the model's own ceiling) and with a fresh DeviceBatches batch
# every step (the data path included), batch 256; batch making alone; inference.
set -e
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for b in 256 1024; do
  python bench/pretrain_throughput.py --config paper --batch $b --steps 20
  python bench/pretrain_throughput.py --config paper --batch $b --steps 20 --device-batches
done
python bench/batch_assembly.py --batch 256 1024 --batches 50
python bench/inference.py --reps 50
