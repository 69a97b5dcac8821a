#!/bin/bash
# The `paper`-size pool pair of issue 13 on one GPU machine: BEST pre-trained on WLASL100 train vs on
# WLASL100 train + the webcam pool (same optimisation steps: compute matched), 3 seeds each, in one runner
# invocation so that the runner's paired differences compare them seed by seed. Fine-tuning uses the
# recipe of experiments/paper_pair.sh (lr 1e-4, cosine decay, 5 warm-up epochs, label smoothing 0.1).
# Usage: experiments/paper_pool_pair.sh DATA.csv POOL.csv OUT   (SIZE=tiny for a quick check of the script)
set -u
data=${1:-../shared/data/wlasl100/metadata.csv}
pool=${2:-../shared/data/webcam-pool/metadata.csv}
out=${3:-runs/paper-pool}
${PYTHON:-python3} experiments/wlasl100.py --size "${SIZE:-paper}" --rows best best+pool --seeds 0 1 2 --jobs 6 \
  --data "$data" --pool "$pool" --out "$out" --quiet ${EXTRA:-}  # the shipped recipe
