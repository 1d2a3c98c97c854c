#!/usr/bin/env bash
# Final GPU round (one call each): PART=a -> gaussians parity/speed + fixer ablation;
# PART=b -> vanilla 30k + reference poses. Results merge into benchmarks/results/<date>-h100.json and
# the h100 block of BENCHMARKS.md (the carried tree holds earlier parts of the same day).
set -u
source tools/gpu/env.sh
PART=${PART:-a}
if [ "$PART" = a ]; then
  timeout 200 python3 tools/gpu/gaussians_check.py --scene .device_data/cases/gopro_sidewalk/reference_transforms.json --skip-cpu 2>&1 | tail -22
  CONFIGS=no_fixer,default,progressive_only,enhance_only
else
  CONFIGS=vanilla,reference_poses
fi
timeout 480 python3 benchmarks/run.py .device_data/cases/gopro_sidewalk --device cuda --scale 1.0 \
  --configs $CONFIGS --poses-dir .device_data/poses --no-video --runs-dir /tmp/bruns --machine h100 \
  --update-md BENCHMARKS.md 2>&1 | grep -v "it/s\|━" | grep -v "^ *$" | tail -40
cp BENCHMARKS.md benchmarks/results/*h100* $OUT/ 2>/dev/null
ls $OUT
