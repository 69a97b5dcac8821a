#!/usr/bin/env bash
# Recipe levers, fine-tuning only: each lever fine-tunes the headline's pre-trained encoders again (their
# tokenizer and pre-training folders copied from runs/wlasl100-v02, so the runner reuses them by fingerprint).
#   experiments/lever_screen.sh mirror epochs60 enclr strongaug ema layerdecay   # seed 0 (the screen)
#   SEEDS="1 2" JOBS=2 experiments/lever_screen.sh epochs60             # confirmation, two at a time
set -u
cd "$(dirname "$0")/.."
. .venv/bin/activate
SRC=runs/wlasl100-v02/small
run() {  # name, overrides... (PRETRAIN=1: pre-train again, the lever changes pre-training)
  name=$1; shift
  out=runs/levers/$name
  for seed in $SEEDS; do
    mkdir -p $out/small/best/seed$seed
    [ -d $out/small/tokenizer-coupled-seed$seed ] || cp -a $SRC/tokenizer-coupled-seed$seed $out/small/
    [ -n "${PRETRAIN:-}" ] || [ -d $out/small/best/seed$seed/pretrain ] || cp -a $SRC/best/seed$seed/pretrain $out/small/best/seed$seed/
  done
  sets=(); for o in "$@"; do sets+=(--set "$o"); done
  start=$(date +%s)
  python experiments/wlasl100.py --size small --rows best --seeds $SEEDS --jobs ${JOBS:-1} --quiet --out $out \
      --data ${DATA:-../shared/data/wlasl100/metadata.csv} "${sets[@]}" > $out/log.txt 2>&1
  echo "$name $* rc=$? $(( $(date +%s) - start )) s" >> runs/levers/done.txt
}
SEEDS=${SEEDS:-0}
for lever in "$@"; do
  case $lever in
    epochs60) run epochs60 finetune.epochs=60 ;;
    mirror) run mirror finetune.swap_hands=0.5 ;;
    enclr) run enclr finetune.encoder_lr_scale=0.5 ;;
    strongaug) run strongaug finetune.perturb=0.2 finetune.shift=0.1 ;;
    ema) run ema finetune.ema=0.995 ;;
    layerdecay) run layerdecay finetune.layer_decay=0.75 ;;
    bones) run bones head.stream=bones ;;
    motion) run motion head.stream=motion ;;
    motion10) run motion10 head.stream=motion ;;  # after MOTION_SCALE (x10) went in
    cutmix) run cutmix finetune.cutmix=0.5 ;;
    droppath) run droppath finetune.drop_path=0.1 ;;
    speed) run speed finetune.speed=0.2 ;;
    jointdrop) run jointdrop finetune.joint_drop=0.1 ;;
    pretrain80) PRETRAIN=1 run pretrain80 pretrain.epochs=80 ;;  # twice the pre-training steps (3,120)
  esac
done
