#!/usr/bin/env bash
# The quality round on the device machine, reusing the gsplat build that tools/gpu/ttv_round.sh left in
# .ttv_cache (a warm machine keeps it between calls; a fresh one builds it again, ~85 s). Usage:
#   tools/gpu/quality_after_ttv.sh JSON_NAME quality_round.py-args...
# e.g. tools/gpu/quality_after_ttv.sh q .device_data/cases/gopro_sidewalk --configs default,"full-res flows" \
#        --poses-dir .device_data/poses --no-variants
set -euo pipefail
NAME=$1
shift
mkdir -p .site
for w in $(ls .whl/*.whl .whl3/*.whl 2>/dev/null); do  # only what is absent (a gsplat reinstall rebuilds it)
  pkg=$(basename "$w" | cut -d- -f1)
  ls -d .site/${pkg}* >/dev/null 2>&1 || python3 -m pip install -q --no-index --no-deps --no-compile \
      --no-cache-dir --target .site "$w"
done
export PYTHONPATH=$PWD/.site:$PWD TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=$PWD/.ttv_cache/torch_extensions SPARSEVID_CACHE=$PWD/.ttv_cache/sparsevid
export NUMBA_CACHE_DIR=$PWD/.ttv_cache/numba
python3 tools/gpu/quality_round.py "$@" --json "${OUT:-benchmarks/results}/$NAME.json"
