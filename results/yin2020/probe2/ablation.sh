#!/usr/bin/env bash
# Which of improved BEGAN's two changes costs FD? The comparison's settings (γ 0.7, n = 32,
# 2,000 iterations, fast path, patience 500), one evaluation at the end.
#   bash results/yin2020/probe2/ablation.sh [SEED] [DATA] [ARM]
# SEED defaults to 0; DATA is fashion_mnist (default, 32 px grey) or afhq_cat (64 px); ARM
# (skips-only or two-rates-only) runs that arm alone (default: both).
# Run folders: runs/ablation-<arm>[-cat][-s<SEED>] (no -s suffix for seed 0).
set -u
SEED=${1:-0}
DATA=${2:-fashion_mnist}
ARM=${3:-}
case $ARM in ''|skips-only|two-rates-only) ;; *) echo "unknown ARM '$ARM'; expected skips-only or two-rates-only" >&2; exit 2 ;; esac
case $DATA in
  fashion_mnist) DATA_FLAGS=(-d ../shared/data/fashion_mnist_1k.npz -r 32 --data.channels=1); TAG= ;;
  afhq_cat) DATA_FLAGS=(-d ../shared/data/afhq_cat_1k_64.npz -r 64); TAG=-cat ;;
  *) echo "unknown DATA '$DATA'; expected fashion_mnist or afhq_cat" >&2; exit 2 ;;
esac
SUFFIX=$TAG$([ "$SEED" = 0 ] || echo "-s$SEED")
cd "$(dirname "$0")/../../.."
source scripts/env.sh >/dev/null
one() {  # name, preset, extra flags...
  name=$1; preset=$2; shift 2
  [ -z "$ARM" ] || [ "$ARM" = "$name" ] || return 0
  echo "=== $name, $DATA, seed $SEED: -p $preset $*"
  fewgan train -p "$preset" "${DATA_FLAGS[@]}" -s 2000 --seed "$SEED" \
    -o "runs/ablation-$name$SUFFIX" --began.gamma=0.7 --began.hidden=32 --train.fast=true --began.lr_decay_patience=500 \
    --log.sample_every=2000 --log.ckpt_every=2000 --log.progress=false \
    --eval.every=2000 --eval.n=1000 --eval.n_boot=0 "$@" 2>&1 | grep -E "step|Error|error"
}
one skips-only began-improved --train.lr_d=1e-4        # additive skips, one rate (1e-4)
one two-rates-only began --train.lr_d=4e-4             # no skips, lr_D 4e-4 / lr_G 1e-4
