#!/usr/bin/env bash
# Does the M_global stall rule's patience decide the long-budget result? The long runs
# (experiments/yin2020-long.yaml, patience 500) halved improved BEGAN's rates 5 and 8 times,
# BEGAN's twice. The same runs with the presets' own patience (2,000).
#   bash results/yin2020/long-p2000/run.sh [PRESETS] [SEED]
# PRESETS defaults to "began-improved began", SEED to 1. Run folders: runs/long-p2000-<preset>
# for seed 1, runs/long-p2000-<preset>-s<SEED> otherwise.
set -u
cd "$(dirname "$0")/../../.."
source scripts/env.sh >/dev/null
SEED=${2:-1}
SUFFIX=$([ "$SEED" = 1 ] || echo "-s$SEED")
for preset in ${1:-began-improved began}; do
  echo "=== $preset, CIFAR-10, seed $SEED, patience 2000 ($(date -u +%H:%M))"
  fewgan train -p "$preset" -d ../shared/data/cifar10_1k.npz -r 32 -s 8000 --seed "$SEED" \
    -o "runs/long-p2000-$preset$SUFFIX" --began.gamma=0.7 --began.hidden=32 --train.fast=true \
    --began.lr_decay_patience=2000 --log.sample_every=1000 --log.ckpt_every=1000 --log.progress=false \
    --eval.every=1000 --eval.n=1000 --eval.n_boot=0 2>&1 | grep --line-buffered -E "step|Error|error"
done
