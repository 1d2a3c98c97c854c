"""Train without a fixer and dump the canvas renders (rgb, depth, alpha) of every path frame and of
the input cameras, so fixers can be tuned on real renders on a CPU machine.

    python tools/gpu/dump_renders.py CASE_DIR POSES_TRANSFORMS OUT_DIR [--scale 0.5]

Writes OUT_DIR/{path_rgb,path_depth,meta}.npz: path_rgb [T,H,W,3] uint8, path_depth [T,H,W,1] float16, path_alpha uint8,
path_c2ws [T,4,4], input_rgb (undistorted inputs), input_depth, input_c2ws, K [3,3], mask [H,W] bool,
is_input [T], plus the scene camera as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sparsevid.pipeline import make_train_views, named_config, run_pipeline  # noqa: E402
from sparsevid.gaussians.trainer import CHECKPOINT_NAME, Trainer  # noqa: E402
from sparsevid.poses.undistort import Undistorter  # noqa: E402
from sparsevid.path.camera_path import CameraPath  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", type=Path)
    ap.add_argument("poses", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--scale", type=float, default=0.5)
    a = ap.parse_args()
    run_dir = Path("/tmp/dump_run")
    cfg = named_config("no_fixer", input=a.case, output=run_dir, keyframes=[0, 9, 19, 29], device="cuda",
                       overwrite=True, poses_from=a.poses, write_video=False)
    cfg.train_scale = a.scale
    cfg.scale = a.scale
    res = run_pipeline(cfg)
    print("no_fixer metrics", res.metrics["heldout"] if res.metrics else None)
    tr = Trainer.from_checkpoint(run_dir / "train" / CHECKPOINT_NAME, "cuda")
    scene = load_scene(a.case, keyframes=[0, 9, 19, 29])
    ref = load_scene(a.poses)
    scene = scene.with_poses(ref.camera, ref.c2ws(), ref.points, ref.point_colors)
    und = Undistorter.for_camera(scene.camera, a.scale)
    path = CameraPath.from_scene(scene).frames(scene_fps=scene.fps)
    wc, hc = und.canvas_size
    K = und.pinhole.K
    o = tr.render(path.c2ws, np.broadcast_to(K, (len(path), 3, 3)), wc, hc)
    views = make_train_views(scene, und)
    oi = tr.render(np.stack([v.c2w for v in views]), np.stack([v.K for v in views]), wc, hc)
    q = lambda t: (t.clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()
    a.out.mkdir(parents=True, exist_ok=True)
    # split in files under 16 MB each (the device returns no larger file)
    np.savez_compressed(a.out / "path_rgb.npz", path_rgb=q(o["rgb"]), path_alpha=q(o["alpha"]))
    np.savez_compressed(a.out / "path_depth.npz", path_depth=o["depth"].half().cpu().numpy())
    np.savez_compressed(
        a.out / "meta.npz", path_c2ws=path.c2ws, is_input=path.is_input,
        input_rgb=np.stack([(v.image * 255 + 0.5).astype(np.uint8) for v in views]),
        input_depth=oi["depth"].half().cpu().numpy(), input_c2ws=np.stack([v.c2w for v in views]),
        K=K, mask=und.mask, scale=a.scale)
    (a.out / "camera.json").write_text(json.dumps(scene.camera.to_dict()))
    for f in sorted(a.out.iterdir()):
        print("wrote", f, round(f.stat().st_size / 1e6, 1), "MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
