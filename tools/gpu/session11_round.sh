#!/usr/bin/env bash
# Issue 12, session 11, second call on a warm device machine (after `OUT=DIR tools/gpu/harness_round.sh`, which
# generates the synthetic cases under /tmp/harness_round): the dashcam case (a bonnet and a burnt-in clock fixed in
# the image) with the regions fixed in the image on (the default) and off, re-fused from one run.
# Carry: .whl4 and .device_data (poses/dashcam). Usage: OUT=DIR tools/gpu/session11_round.sh
set -euo pipefail
source tools/gpu/site.sh
R=${OUT:-benchmarks/results}
W=/tmp/harness_round
python3 tools/gpu/quality_round.py "$W/runs/synthetic-cases/320x240/dashcam" --configs default \
    --variants "fixed regions off" --poses-dir .device_data/poses --json "$R/fixed-regions.json" --runs /tmp/session11
