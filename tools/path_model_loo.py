"""Could the leave-one-out choose the camera path's model? (issue 12, item 1; BENCHMARKS.md, session 9)

    python tools/path_model_loo.py [--gopro ../shared/cases/gopro_sidewalk/reference_transforms.json]

For each synthetic case (its true camera at every frame) and the shared clip (its 30 reference poses), two path
models through the knots 0, 9, 19, 29: the camera path's (natural cubic spline + rotation spline,
:class:`sparsevid.path.CameraPath`) and piecewise linear (position lerp, rotation slerp:
:func:`sparsevid.geometry.interpolate_pose`). Printed per model: the mean error at the 26 in-between frames (what
the video gets) and at each interior knot predicted from the other three (what a leave-one-out can see);
position error in % of the path length, rotation in degrees. The leave-one-out can choose only where the two agree.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.data import synthetic  # noqa: E402
from sparsevid.geometry import interpolate_pose, rotation_angle_deg  # noqa: E402
from sparsevid.path.camera_path import CameraPath  # noqa: E402

KEYS = [0, 9, 19, 29]


def spline_path(c2ws: np.ndarray, knots: list[int], query: list[int]) -> np.ndarray:
    return CameraPath.from_indices(knots, 30, c2ws[knots]).at([q / 30 for q in query])[0]


def linear_path(c2ws: np.ndarray, knots: list[int], query: list[int]) -> np.ndarray:
    out = []
    for q in query:
        j = min(max(i for i in range(len(knots) - 1) if knots[i] <= q), len(knots) - 2)
        a, b = knots[j], knots[j + 1]
        out.append(interpolate_pose(c2ws[a], c2ws[b], (q - a) / (b - a)))
    return np.stack(out)


def errors(true: np.ndarray, pred: np.ndarray, length: float) -> tuple[float, float]:
    pos = float(np.mean(np.linalg.norm(pred[:, :3, 3] - true[:, :3, 3], axis=-1))) / length * 100
    rot = float(np.mean(rotation_angle_deg(pred[:, :3, :3], true[:, :3, :3])))
    return pos, rot


def trajectories(gopro: Path | None) -> dict[str, np.ndarray]:
    out = {name: synthetic.case_trajectory(name, 30) for name in synthetic.CASE_NAMES}
    if gopro is not None and gopro.is_file():
        from sparsevid.data.load import load_scene
        scene = load_scene(gopro)
        out["gopro_sidewalk (reference poses)"] = scene.c2ws()[np.argsort(scene.indices)]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gopro", type=Path, default=Path("../shared/cases/gopro_sidewalk/reference_transforms.json"))
    args = ap.parse_args()
    models = {"spline": spline_path, "linear": linear_path}
    between = [f for f in range(30) if f not in KEYS]
    print("case | model | in-between: pos % / rot deg | leave-one-out 9 | leave-one-out 19")
    for name, c2ws in trajectories(args.gopro).items():
        length = float(np.sum(np.linalg.norm(np.diff(c2ws[:, :3, 3], axis=0), axis=-1)))
        for m, fn in models.items():
            cells = [errors(c2ws[between], fn(c2ws, KEYS, between), length)]
            for h in (9, 19):
                knots = [k for k in KEYS if k != h]
                cells.append(errors(c2ws[[h]], fn(c2ws, knots, [h]), length))
            print(f"{name} | {m} | " + " | ".join(f"{p:.2f} / {r:.3f}" for p, r in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
