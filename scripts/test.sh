#!/usr/bin/env bash
# Tests: set up, then run the whole suite (CPU, a few minutes).
export EXTRAS=dev
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
python -m pytest -n 2 --dist loadgroup "$@"  # loadgroup: test_ray.py shares one local Ray
