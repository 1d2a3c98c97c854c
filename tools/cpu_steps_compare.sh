#!/usr/bin/env bash
# 750 vs 600 CPU training steps on three clips (BENCHMARKS.md "Time to video", CPU). Cases: the synthetic
# moving_object / strong_rotation (python -m sparsevid.data.synthetic all DIR --size 320x240) and the shared clip at
# 424x240; edit the paths below to yours.
for case in /work/main/.device_data/cases/moving_object /work/main/.device_data/cases/strong_rotation /work/exp/half; do
  for s in 750 600; do
    n=$(basename $case)-$s
    .venv/bin/sparsevid -q run $case --keyframes 0,9,19,29 -o /work/exp/sc/$n --device cpu --overwrite --no-video --steps $s 2>/dev/null
    python3 -c "import json;d=json.load(open('/work/exp/sc/$n/run.json'));h=d['metrics']['heldout'];print('$n', round(h['psnr'],3), round(h['ssim'],4), round(h['sharpness'],3), d['stage_seconds']['total'])"
  done
done
