#!/usr/bin/env bash
# Time to video on the device machine (issue 15): installs the carried wheels once into .site/ (gitignored,
# kept between calls of a warm machine), then runs benchmarks/time_to_video.py. Results go to $OUT (or
# benchmarks/results). Usage: tools/gpu/ttv_round.sh CASE JSON_NAME [time_to_video.py args...]
set -euo pipefail
CASE=$1 NAME=$2
shift 2
mkdir -p .site
for w in $(ls .whl/*.whl .whl2/*.whl .whl3/*.whl 2>/dev/null); do  # install only what is absent: reinstalling gsplat over its build cache rebuilds it
  pkg=$(basename "$w" | cut -d- -f1)
  ls -d .site/${pkg}* >/dev/null 2>&1 || python3 -m pip install -q --no-index --no-deps --no-compile \
      --no-cache-dir --target .site "$w"
done
export PYTHONPATH=$PWD/.site:$PWD TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 PYTHONUNBUFFERED=1
python3 -c "import pycolmap, gsplat; print('pycolmap', pycolmap.__version__, 'gsplat', gsplat.__version__)"
python3 benchmarks/time_to_video.py "$CASE" --device cuda --no-video --cache-dir "$PWD/.ttv_cache" \
    --json "${OUT:-benchmarks/results}/$NAME.json" "$@"
