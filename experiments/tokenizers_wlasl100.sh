#!/usr/bin/env bash
# Table 6 tokenizers on WLASL100: train on the train split, report reconstruction and codebook use on val.
# Usage: bash experiments/tokenizers_wlasl100.sh [OUT=runs/tokenizers] [DATA=../shared/data/wlasl100/metadata.csv]
set -euo pipefail
OUT=${1:-runs/tokenizers}
DATA=${2:-../shared/data/wlasl100/metadata.csv}
for cfg in paper tokenizer-separate tokenizer-kmeans; do
  /usr/bin/time -f "$cfg: %e s" signbest train-tokenizer --config "$cfg" --data "$DATA" --out "$OUT/$cfg"
done
python - "$OUT" <<'PY'
import csv, sys
from pathlib import Path
print("| tokenizer | hand rec px (L/R) | body rec px | hand usage | hand ppl | body usage | body ppl |")
print("|---|---|---|---|---|---|---|")
for cfg in ("paper", "tokenizer-separate", "tokenizer-kmeans"):
    rows = list(csv.DictReader(open(Path(sys.argv[1]) / cfg / "tokenizer_metrics.csv")))
    r = rows[-1]
    f = lambda k, s=1: f"{float(r[k]) * s:.1f}"
    print(f"| {cfg} | {f('rec_px_left')} / {f('rec_px_right')} | {f('rec_px_body')} | {f('hand_usage', 100)}% "
          f"| {f('hand_perplexity')} | {f('body_usage', 100)}% | {f('body_perplexity')} |")
PY
