#!/usr/bin/env bash
# Every reproduction study, in the order we run them (cheapest-to-finish issue first).
# Each command is resumable: rerunning skips finished runs (done.json) and resumes an
# interrupted one from its last checkpoint, so this script can be stopped and restarted freely.
# Two cores: the studies run one after another, never side by side.
#   bash scripts/studies.sh            # all of them, in order
#   bash scripts/studies.sh ablation   # only the named ones (names: see STUDIES below)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh  # .venv with fewgan installed
F=(fewgan)
declare -A STUDIES=(
  [table1]="experiment experiments/song2023-table1.yaml --out results/song2023/table1"
  [collapse]="experiment experiments/collapse-demo.yaml --out results/balance/collapse-demo"
  [ablation]="experiment experiments/song2023-ablation.yaml --out results/song2023/ablation"
  [weaver]="experiment experiments/weaver-gadv.yaml --out results/balance/weaver"
  [weaver50]="experiment experiments/weaver-gadv50.yaml --out results/balance/weaver50"
  [autobalance]="experiment experiments/weaver-autobalance.yaml --out results/balance/weaver-autobalance"
  [dog]="experiment experiments/dog-tricks.yaml --out results/balance/dog-tricks"
  [transition]="experiment experiments/cgan-transition.yaml --out results/balance/cgan-transition"
  [teacher-mnist]="teacher train --data ../shared/data/mnist_1k.npz --resolution 32 --channels 1 --steps 3000 --ckpt-every 250 --no-progress"
  [teacher-cifar]="teacher train --data ../shared/data/cifar10_1k.npz --resolution 32 --channels 3 --steps 3000 --ckpt-every 250 --no-progress"
  [hgan-mnist]="experiment experiments/hgan-compare.yaml --out results/hgan/compare --only data=mnist"
  [mixnorm]="experiment experiments/mixnorm-compare.yaml --out results/hgan/mixnorm"
  [hgan]="experiment experiments/hgan-compare.yaml --out results/hgan/compare"
  [yin-g05]="experiment experiments/yin2020-compare-g05-n64.yaml --out results/yin2020/g05-n64 --only data=fashion_mnist"
  [yin-fmnist]="experiment experiments/yin2020-compare.yaml --out results/yin2020/compare --only data=fashion_mnist"
  [yin-cifar]="experiment experiments/yin2020-compare.yaml --out results/yin2020/compare --only data=cifar10"
  [yin-fast]="experiment experiments/yin2020-fastpath.yaml --out results/yin2020/fastpath"
  [yin]="experiment experiments/yin2020-compare.yaml --out results/yin2020/compare"
  [gamma]="experiment experiments/yin2020-gamma.yaml --out results/yin2020/gamma"
  [yin-long]="experiment experiments/yin2020-long.yaml --out results/yin2020/long"
)
ORDER=(table1 collapse ablation weaver weaver50 autobalance dog transition mixnorm teacher-mnist teacher-cifar hgan yin-g05 yin-fast yin-fmnist yin-cifar yin gamma yin-long)
[ $# -gt 0 ] && ORDER=("$@")
for s in "${ORDER[@]}"; do
  [ -n "${STUDIES[$s]:-}" ] || { echo "unknown study '$s'; known: ${!STUDIES[*]}" >&2; exit 2; }
  case $s in weaver*) [ -f experiments/data/afhq_cat192_64.npz ] || python scripts/make_cat192.py ;; esac
  echo "== $s: fewgan ${STUDIES[$s]}  ($(date -u +%H:%M))"
  # shellcheck disable=SC2086
  "${F[@]}" ${STUDIES[$s]}
done
