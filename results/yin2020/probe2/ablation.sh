#!/usr/bin/env bash
# Which of improved BEGAN's two changes costs FD on Fashion-MNIST? The comparison's settings
# (γ 0.7, n = 32, 2,000 iterations, fast path, patience 500), one evaluation at the end.
#   bash results/yin2020/probe2/ablation.sh [SEED]   # default seed 0 (runs/ablation-<arm>; others -s<SEED>)
set -u
SEED=${1:-0}
SUFFIX=$([ "$SEED" = 0 ] || echo "-s$SEED")
cd "$(dirname "$0")/../../.."
source scripts/env.sh >/dev/null
one() {  # name, preset, extra flags...
  name=$1; preset=$2; shift 2
  echo "=== $name, seed $SEED: -p $preset $*"
  fewgan train -p "$preset" -d ../shared/data/fashion_mnist_1k.npz -r 32 --data.channels=1 -s 2000 --seed "$SEED" \
    -o "runs/ablation-$name$SUFFIX" --began.gamma=0.7 --began.hidden=32 --train.fast=true --began.lr_decay_patience=500 \
    --log.sample_every=2000 --log.ckpt_every=2000 --log.progress=false \
    --eval.every=2000 --eval.n=1000 --eval.n_boot=0 "$@" 2>&1 | grep -E "step|Error|error"
}
one skips-only began-improved --train.lr_d=1e-4        # additive skips, one rate (1e-4)
one two-rates-only began --train.lr_d=4e-4             # no skips, lr_D 4e-4 / lr_G 1e-4
