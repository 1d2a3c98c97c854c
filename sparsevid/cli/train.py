"""`sparsevid train INPUT -o OUT`: fit 3D Gaussians to a posed scene and export them."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sparsevid.errors import SparsevidError
from sparsevid.log import info


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train 3D Gaussians on a posed scene (checkpoint + point_cloud.ply)",
                       description="Load a posed scene (COLMAP dataset or transforms.json), undistort the input "
                                   "frames to a full-field-of-view pinhole canvas, train 3D Gaussian Splatting "
                                   "(gsplat on CUDA, sparsevid's rasterizer on CPU) and write OUT/checkpoint.pt and "
                                   "OUT/point_cloud.ply.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", type=Path, help="posed scene: COLMAP dataset or transforms.json (or a folder holding one)")
    p.add_argument("-o", "--out", type=Path, required=True, help="run folder")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: 2000 on cuda, 750 on cpu; 30000 = vanilla 3DGS)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--scale", type=float, default=None,
                   help="render scale of the input resolution (default: 1 on cuda, 0.5 on cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keyframes", type=str, default=None, help="comma-separated input frame indices")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsevid.gaussians.ply import save_ply
    from sparsevid.gaussians.rasterize import resolve_device
    from sparsevid.gaussians.trainer import CHECKPOINT_NAME, Trainer, TrainConfig, views_from_scene

    device = resolve_device(args.device)
    out: Path = args.out
    ck = out / CHECKPOINT_NAME
    if args.resume:
        if not ck.is_file():
            raise SparsevidError("nothing to resume", fix="drop --resume to start a new run", path=ck)
        trainer = Trainer.from_checkpoint(ck, device=device, run_dir=out)
        if args.steps is not None:
            trainer.total_steps = int(args.steps)
        info(f"resuming at step {trainer.step}/{trainer.total_steps}")
    else:
        from sparsevid.data.load import load_scene, parse_keyframes

        scene = load_scene(args.input, keyframes=parse_keyframes(args.keyframes))
        scale = args.scale if args.scale is not None else (1.0 if device.type == "cuda" else 0.5)
        views = views_from_scene(scene, scale=scale)
        cfg = TrainConfig(steps=args.steps, seed=args.seed)
        trainer = Trainer(cfg, views, scene.points, scene.point_colors, device=device, run_dir=out)
        info(f"training {len(views)} views at {views[0].width}x{views[0].height} on {device.type}, "
             f"{trainer.num_gaussians} initial Gaussians, {trainer.total_steps} steps")
    summary = trainer.train()
    ply = save_ply(out / "point_cloud.ply", dict(trainer.params))
    from sparsevid.io_utils import atomic_write_text

    atomic_write_text(out / "train_summary.json", json.dumps(summary, indent=2))
    info(f"done: {summary['steps']} steps in {summary['seconds']:.1f} s ({summary['steps_per_s']:.1f} it/s), "
         f"PSNR {summary['psnr']:.2f} dB, {summary['gaussians']} Gaussians -> {ply}")
    return 0
