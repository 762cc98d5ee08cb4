#!/usr/bin/env bash
# Main job: set up, then train the default DCGAN preset on the built-in emoji faces
# for a short run and write sample grids (runs/quickstart/samples/final.png).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OUT=${OUT:-runs/quickstart-$(date +%Y%m%d-%H%M%S)}
fewgan train --preset dcgan --data emoji --steps "${STEPS:-1200}" --out "$OUT" "$@"
echo "samples: $OUT/samples/final.png"
