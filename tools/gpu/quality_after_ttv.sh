#!/usr/bin/env bash
# The quality round on the device machine, reusing the gsplat build that tools/gpu/ttv_round.sh left in
# .ttv_cache (a warm machine keeps it between calls; a fresh one builds it again, ~85 s). Usage:
#   tools/gpu/quality_after_ttv.sh JSON_NAME quality_round.py-args...
# e.g. tools/gpu/quality_after_ttv.sh q .device_data/cases/gopro_sidewalk --configs default,"full-res flows" \
#        --poses-dir .device_data/poses --no-variants
set -euo pipefail
NAME=$1
shift
source tools/gpu/site.sh
python3 tools/gpu/quality_round.py "$@" --json "${OUT:-benchmarks/results}/$NAME.json"
