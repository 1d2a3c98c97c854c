#!/usr/bin/env bash
# Benchmark on the GPU device at full resolution with the same harness as the CPU runs.
#
# usage (device machine, repository root):
#   bash tools/gpu/bench_gpu.sh [CONFIGS] [extra benchmarks/run.py options]
#   CONFIGS: default,no_fixer,vanilla,reference_poses (default) | all | none
#   e.g. bash tools/gpu/bench_gpu.sh default,reference_poses --steps-override 2000
#
# Cases: shared/cases/* of the carried checkout (or ../shared/cases/*). The harness writes into the
# device's copy of the tree (benchmarks/results, BENCHMARKS.md, so links stay right), then the new
# files are copied to $OUT: put BENCHMARKS.md at the repo root and the rest into benchmarks/results/.
set -euo pipefail
CONFIGS=${1:-default,no_fixer,vanilla,reference_poses}
shift || true
OUT=${OUT:-/tmp/bench_out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then  # wheels the lead carries (gsplat, diffusers, rich...)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
python3 - <<'PY'
import importlib, sys
missing = []
for m in ["torch", "cv2", "skimage", "scipy", "rich", "sparsevid.eval"]:
    try:
        importlib.import_module(m)
    except Exception as e:  # noqa: BLE001
        missing.append(f"{m} ({type(e).__name__}: {e})")
import torch
if not torch.cuda.is_available():
    missing.append("CUDA (torch sees no GPU)")
if missing:
    sys.exit("bench_gpu: missing " + "; ".join(missing))
print("bench_gpu: torch", torch.__version__, "on", torch.cuda.get_device_name(0))
PY
CASES=()
for d in shared/cases/* ../shared/cases/*; do [ -f "$d/frame_0000.png" ] && CASES+=("$d"); done
[ ${#CASES[@]} -gt 0 ] || { echo "bench_gpu: no cases under shared/cases or ../shared/cases"; exit 1; }
stamp=$(mktemp); sleep 1
python3 benchmarks/run.py "${CASES[@]}" --device cuda --scale 1.0 --configs "$CONFIGS" \
  --runs-dir /tmp/bench_runs "$@"
cp BENCHMARKS.md "$OUT/"
find benchmarks/results -maxdepth 1 -type f -newer "$stamp" \( -name '*.json' -o -name '*.md' -o -name '*.png' \) \
  -exec cp {} "$OUT/" \;
echo; echo "=== summary ==="
cat "$(ls -t benchmarks/results/*.md | head -1)"
ls -la "$OUT"
