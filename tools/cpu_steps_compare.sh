#!/usr/bin/env bash
# 750 vs 600 CPU training steps on several clips (BENCHMARKS.md "Time to video", CPU):
#   tools/cpu_steps_compare.sh OUTDIR CASE...
# e.g. the synthetic moving_object / strong_rotation (python -m sparsevid.data.synthetic all DIR --size 320x240)
# and the shared clip resized to 424x240. Prints held-out PSNR, SSIM, sharpness and wall seconds per run.
set -euo pipefail
OUTDIR=${1:?usage: tools/cpu_steps_compare.sh OUTDIR CASE...}
shift
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
for case in "$@"; do
  for s in 750 600; do
    n=$(basename "$case")-$s
    "$PY" -m sparsevid -q run "$case" --keyframes 0,9,19,29 -o "$OUTDIR/$n" --device cpu --overwrite --no-video --steps $s
    "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); h=d['metrics']['heldout']; \
print(sys.argv[2], round(h['psnr'], 3), round(h['ssim'], 4), round(h['sharpness'], 3), d['stage_seconds']['total'])" \
      "$OUTDIR/$n/run.json" "$n"
  done
done
