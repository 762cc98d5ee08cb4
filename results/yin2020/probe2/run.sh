#!/usr/bin/env bash
# Probe: which setting gets BEGAN (hidden 32, fast path) past the one-image collapse on
# Fashion-MNIST 1k within 2,000 iterations? One run per setting, seed 0, sequential.
set -u
cd "$(dirname "$0")/../../.."
source scripts/env.sh >/dev/null
probe() {  # name, extra flags...
  name=$1; shift
  out=runs/probe2-$name
  echo "=== $name: $*"
  fewgan train -p began -d ../shared/data/fashion_mnist_1k.npz -r 32 --data.channels=1 -s 2000 --seed 0 \
    -o "$out" --began.hidden=32 --train.fast=true --began.lr_decay_patience=500 \
    --log.sample_every=1000 --log.ckpt_every=1000 --log.progress=false \
    --eval.every=1000 --eval.n=1000 --eval.n_boot=0 "$@" 2>&1 | grep -E "step|done|Error|error"
  python - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/stats.jsonl")]
tail = [r for r in rows if "k_t" in r][-200:]
f = lambda k: sum(r[k] for r in tail if k in r) / max(1, sum(k in r for r in tail))
print(f"last 200: k_t {f('k_t'):.4f}  L(x) {f('l_real'):.4f}  M_global {f('m_global'):.4f}  balance {f('balance'):+.4f}  decays {tail[-1].get('lr_decays')}")
PY
}
# bash run.sh            : every probe below;  bash run.sh g0.7 lr4e-5 : only those
declare -A FLAGS=(
  [base]=""
  [lk0.1]="--began.lambda_k=0.1"
  [g0.7]="--began.gamma=0.7"
  [g1.0]="--began.gamma=1.0"
  [lr4e-5]="--train.lr_g=4e-5 --train.lr_d=4e-5"
)
ORDER=(base lk0.1 g0.7 g1.0 lr4e-5)
[ $# -gt 0 ] && ORDER=("$@")
for n in "${ORDER[@]}"; do
  # shellcheck disable=SC2086
  probe "$n" ${FLAGS[$n]}
done
