#!/usr/bin/env bash
# sparsevid-splatfacto on a GPU: train it on a case folder with poses, export the splats, make sparsevid's
# time-exact video from it and score the held-out frames.
#
#   tools/gpu/ns_splatfacto.sh CASE_DIR POSES_DIR OUT_DIR [extra ns-train flags...]
#
# CASE_DIR   frames frame_0000.png ... frame_0029.png; inputs 0,9,19,29 (KEYFRAMES), the others are held out
# POSES_DIR  `sparsevid poses CASE_DIR -o POSES_DIR --keyframes 0,9,19,29` output (its transforms.json);
#            made here when missing (needs pycolmap)
# OUT_DIR    ns/ (the ns-train run), export/splat.ply (ns-export gaussian-splat), video/ (sparsevid run: video.mp4,
#            metrics.json), video3d/ (the 3D route alone), summary.json
#
# Needs an environment with nerfstudio and sparsevid installed (pip install torch==2.13.0 -e '.[nerfstudio]'; CUDA,
# gsplat 1.4.0's kernels compile on first use) whose ns-train / ns-export / python are first on PATH, or PYTHON=...
# STEPS (default 2000, sparsevid's CUDA default) sets the training length; the progressive rounds fall at the
# default 30%..75% of it (3 rounds).
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 2,17p "$0"; exit 2; fi
CASE=$(realpath "$1"); POSES=$(realpath -m "$2"); OUT=$(realpath -m "$3"); shift 3
PY=${PYTHON:-python}
BIN=$(dirname "$(command -v "$PY")")
STEPS=${STEPS:-2000}
KEYFRAMES=${KEYFRAMES:-0,9,19,29}
mkdir -p "$OUT"
"$PY" -c "import torch, nerfstudio, sparsevid.nerfstudio.methods; assert torch.cuda.is_available(), 'no CUDA'"

if [ ! -f "$POSES/transforms.json" ]; then
  "$PY" -m sparsevid poses "$CASE" -o "$POSES" --keyframes "$KEYFRAMES"
fi

t0=$(date +%s)
"$BIN/ns-train" sparsevid-splatfacto --data "$POSES/transforms.json" --output-dir "$OUT/ns" \
  --experiment-name case --timestamp run --max-num-iterations "$STEPS" \
  --vis tensorboard --viewer.quit-on-train-completion True "$@" \
  nerfstudio-data --downscale-factor 1
t1=$(date +%s)
RUN="$OUT/ns/case/sparsevid-splatfacto/run"

"$BIN/ns-export" gaussian-splat --load-config "$RUN/config.yml" --output-dir "$OUT/export"
test -s "$OUT/export/splat.ply"

# the time-exact video from the model (input: the case, so the held-out frames are scored; poses: the model's)
"$PY" -m sparsevid run "$CASE" --keyframes "$KEYFRAMES" --from-nerfstudio "$RUN/config.yml" -o "$OUT/video" \
  --device cuda --overwrite
"$PY" -m sparsevid run "$CASE" --keyframes "$KEYFRAMES" --from-nerfstudio "$RUN/config.yml" -o "$OUT/video3d" \
  --device cuda --fuse-mode 3d --overwrite

"$PY" - "$OUT" "$RUN" $((t1 - t0)) <<'PY'
import json, sys
from pathlib import Path
out, run, train_s = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
prog = json.loads((run / "sparsevid_progressive.json").read_text())
summary = {"train_seconds": train_s, "rounds": prog["rounds"], "pseudo_steps": prog["pseudo_steps"],
           "splat_ply_bytes": (out / "export" / "splat.ply").stat().st_size}
for name in ("video", "video3d"):
    m = json.loads((out / name / "metrics.json").read_text())["heldout"]
    r = json.loads((out / name / "run.json").read_text())
    summary[name] = {"heldout": m, "frames": r["num_frames"], "gaussians": r["num_gaussians"],
                     "quality_estimate": r.get("quality_estimate"), "stage_seconds": r["stage_seconds"]}
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary, indent=1))
PY
