"""Pose-stage sweep (BENCHMARKS.md, session 15): the shared clip's four inputs resized to many widths (16:9), poses
with and without the upscaled rung (`PoseConfig.min_work_side` 800 / 0), each model's worst rotation error against
the reference poses.

    python tools/pose_size_sweep.py 320,360,400 OUT.json [--case ../shared/cases/gopro_sidewalk]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.data.nerfstudio import GL_FLIP  # noqa: E402
from sparsevid.errors import SparsevidError  # noqa: E402
from sparsevid.log import set_quiet  # noqa: E402
from sparsevid.poses.align import align_poses, rotation_errors_deg  # noqa: E402
from sparsevid.poses.sfm import PoseConfig, estimate_poses  # noqa: E402

KEYS = [0, 9, 19, 29]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("widths", help="comma list of widths; heights keep the clip's aspect")
    ap.add_argument("json", type=Path)
    ap.add_argument("--case", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "cases" / "gopro_sidewalk")
    args = ap.parse_args()
    set_quiet(True)
    full = load_scene(args.case, keyframes=KEYS)
    ref = json.loads((args.case / "reference_transforms.json").read_text())
    by_name = {Path(f["file_path"]).name: np.asarray(f["transform_matrix"]) @ GL_FLIP for f in ref["frames"]}
    ref_c2w = np.stack([by_name[f"frame_{i:04d}.png"] for i in KEYS])
    w0, h0 = full.image_size
    out = {}
    for w in (int(x) for x in args.widths.split(",")):
        h = round(w * h0 / w0)
        small = dataclasses.replace(full, camera=None, points=None, point_colors=None, frames=[dataclasses.replace(
            f, c2w=None, image=cv2.resize(f.image, (w, h), interpolation=cv2.INTER_AREA)) for f in full.frames])
        row = {}
        for tag, side in (("before", 0), ("after", 800)):
            t0 = time.perf_counter()
            try:
                scene, rep = estimate_poses(small, PoseConfig(min_work_side=side))
                err = rotation_errors_deg(align_poses(scene.c2ws(), ref_c2w), ref_c2w)
                row[tag] = {"attempt": rep["attempt"], "max_rot_err_deg": round(float(err.max()), 3)}
            except SparsevidError as e:
                row[tag] = {"attempt": None, "error": e.one_line()[:120]}
            row[tag]["seconds"] = round(time.perf_counter() - t0, 1)
        out[f"{w}x{h}"] = row
        print(f"{w}x{h}", row, flush=True)
    args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
