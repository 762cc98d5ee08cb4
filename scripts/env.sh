# Sourced by the other scripts: create .venv if needed and install fewgan into it.
# torch: where none is installed yet, take the CPU build 2.13.0 first (fewgan itself accepts
# any torch >=2.1,<3, so a CUDA build you installed yourself is kept).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
# EXTRAS: optional dependency groups to add (test.sh: dev); none for the main job
target="."; [ -n "${EXTRAS:-}" ] && target=".[${EXTRAS}]"
python -m pip install -q -e "$target" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import fewgan, torch; print(f'fewgan {fewgan.__version__} with torch {torch.__version__}')"
