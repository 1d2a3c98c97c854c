#!/usr/bin/env bash
# GPU round 2: end-to-end fixer ablation on the shared clip through the benchmark harness.
set -u
source tools/gpu/env.sh
timeout 560 python3 benchmarks/run.py .device_data/cases/gopro_sidewalk --device cuda --scale 1.0 \
  --configs ${CONFIGS:-no_fixer,default,progressive_only,enhance_only} --poses-dir .device_data/poses --no-video \
  --out /tmp/bres --runs-dir /tmp/bruns --no-update-md --machine h100 ${EXTRA:-} 2>&1 | grep -v "it/s\|━" | tail -60
cp /tmp/bres/*.json /tmp/bres/*.md $OUT/ 2>/dev/null
for d in /tmp/bruns/*/*/*; do [ -f $d/run.json ] && cp $d/run.json $OUT/run_$(basename $d).json; done
ls -la $OUT
