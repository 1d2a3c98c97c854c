"""Pose-stage accuracy and speed on a real clip against its reference poses (CPU).

    python tools/bench_poses.py CASE [--sets 0,9,19,29 2,11,21,28 5,14,24,29] [--scale 1.0 0.5] [--json out.json]

CASE is a case folder with frames and ``reference_transforms.json`` (e.g. ../shared/cases/gopro_sidewalk).
For each keyframe set and scale: ``estimate_poses`` with default settings and no intrinsics, then
the per-camera rotation error after a similarity alignment to the reference, the focal (and its
source), points, reprojection error, the winning rung and the wall time. A set where no valid
model is found is reported as failing with the stage's one-line error.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sparsevid  # noqa: E402,F401


def run_one(case: Path, keys: list[int], scale: float) -> dict:
    import cv2

    from sparsevid.data.load import load_scene
    from sparsevid.data.scene import Scene
    from sparsevid.errors import SparsevidError
    from sparsevid.geometry import rotation_angle_deg
    from sparsevid.poses.align import align_poses
    from sparsevid.poses.sfm import estimate_poses

    ref = load_scene(case / "reference_transforms.json", keyframes=keys)
    bare = load_scene(case, keyframes=keys)
    if scale != 1.0:
        for f in bare.frames:
            h, w = f.image.shape[:2]
            f.image = cv2.resize(f.image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    bare = Scene(root=bare.root, frames=bare.frames, camera=None, fps=bare.fps)
    row: dict = {"keyframes": keys, "scale": scale, "size": list(bare.frames[0].image.shape[1::-1])}
    t0 = time.perf_counter()
    try:
        out, rep = estimate_poses(bare)
    except SparsevidError as e:
        row.update(ok=False, error=str(e).splitlines()[0], seconds=time.perf_counter() - t0)
        return row
    row["seconds"] = time.perf_counter() - t0
    ref_c2w = ref.c2ws()
    err = rotation_angle_deg(align_poses(out.c2ws(), ref_c2w), ref_c2w)
    f_ref = float(ref.camera.fx) * scale
    row.update(ok=True, registered=rep["registered"], rot_err_deg=[round(float(e), 3) for e in err],
               focal=float(out.camera.fx), focal_ref=f_ref, focal_rel=float(out.camera.fx) / f_ref - 1,
               focal_source=rep["focal"]["source"], points=rep["points"],
               reproj_px=rep["mean_reproj_error_px"], rung=rep["attempt"])
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("--sets", nargs="+", default=["0,9,19,29", "2,11,21,28", "5,14,24,29"])
    ap.add_argument("--scale", nargs="+", type=float, default=[1.0])
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    rows = []
    for sc in a.scale:
        for s in a.sets:
            r = run_one(a.case, [int(k) for k in s.split(",")], sc)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print("\n| keyframes | size | registered | rot. error per camera (deg) | focal (ref) | focal source | points "
          "| reproj. px | rung | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        size = "x".join(map(str, r["size"]))
        keys = ",".join(map(str, r["keyframes"]))
        if not r["ok"]:
            print(f"| {keys} | {size} | fails: {r['error'][:90]} | | | | | | | {r['seconds']:.1f} |")
            continue
        print(f"| {keys} | {size} | {r['registered']}/{len(r['keyframes'])} | "
              f"{', '.join(f'{e:.2f}' for e in r['rot_err_deg'])} | {r['focal']:.1f} ({r['focal_ref']:.1f}, "
              f"{100 * r['focal_rel']:+.1f} %) | {r['focal_source']} | {r['points']} | {r['reproj_px']:.2f} | "
              f"{r['rung']} | {r['seconds']:.1f} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
