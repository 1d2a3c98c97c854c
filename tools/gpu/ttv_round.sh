#!/usr/bin/env bash
# Time to video on the device machine (issue 15): installs the carried wheels once into .site/ (gitignored,
# kept between calls of a warm machine), then runs benchmarks/time_to_video.py. Results go to $OUT (or
# benchmarks/results). Usage: tools/gpu/ttv_round.sh CASE JSON_NAME [time_to_video.py args...]
set -euo pipefail
CASE=$1 NAME=$2
shift 2
source tools/gpu/site.sh
python3 -c "import pycolmap, gsplat; print('pycolmap', pycolmap.__version__, 'gsplat', gsplat.__version__)"
python3 benchmarks/time_to_video.py "$CASE" --device cuda --no-video --cache-dir "$PWD/.ttv_cache" \
    --json "${OUT:-benchmarks/results}/$NAME.json" "$@"
