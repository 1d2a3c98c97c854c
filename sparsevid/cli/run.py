"""``sparsevid run``: the whole job in one command."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sparsevid.data.load import parse_int_list, parse_keyframes
from sparsevid.errors import SparsevidError

if TYPE_CHECKING:
    from sparsevid.pipeline import RunConfig


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run", help="frames/video in, full video out (poses -> 3DGS -> fixer -> path -> video)",
        description="Run every stage: load the input, estimate camera poses when missing, train 3D Gaussians "
                    "(with progressive fixer updates), render one camera per output frame at its exact time, "
                    "enhance the frames, write video.mp4 + frames + cameras.json, and evaluate against "
                    "ground-truth frames when the input holds them. With no INPUT, runs the embedded demo clip.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", nargs="?", type=Path, default=None,
                   help="folder of frames, video file, COLMAP or nerfstudio dataset (default: embedded demo)")
    p.add_argument("-o", "--output", type=Path, default=Path("out/run"), help="run folder")
    p.add_argument("--keyframes", default=None,
                   help="input frame indices, e.g. 0,9,19,29 (or \"0 9 19 29\"); other frames are used as ground truth")
    p.add_argument("--fps", type=float, default=None, help="source frame rate (default: read from input, else 30)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto", help="training/rendering device")
    p.add_argument("--seed", type=int, default=0, help="random seed (repeatable runs on one machine)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: sized for the input and device; 30000 = vanilla 3DGS)")
    p.add_argument("--scale", type=float, default=1.0, help="output resolution relative to the input")
    p.add_argument("--train-scale", type=float, default=None,
                   help="training resolution relative to the input (default: 1 on CUDA, 0.5 on CPU, "
                        "capped by --max-train-side)")
    p.add_argument("--max-train-side", type=int, default=None,
                   help="cap on the long side of the training images in pixels (default: 1280 on CUDA, 640 on "
                        "CPU, applied to the default --train-scale); 0 = no cap")
    p.add_argument("--fixer", default=None,
                   help="none | reproject (weight-free, default) | difix | difix_ref (needs the weights)")
    p.add_argument("--difix-weights", default=None,
                   help="local folder of nvidia/difix or nvidia/difix_ref weights (default: Hugging Face cache)")
    p.add_argument("--config-name", default="default",
                   help="named configuration to start from: " + ", ".join(_config_names()))
    p.add_argument("--fuse-mode", choices=["fuse", "2d", "3d"], default=None,
                   help="fuse = 2D flow and 3D routes fused per pixel (default); 2d = flow only, no 3D model; "
                        "3d = the 3D route alone (Difix3D+ style)")
    p.add_argument("--detail-power", type=float, default=None,
                   help="fine detail from the single most trusted candidate (>1, sharper) or averaged (1, the "
                        "default); 0 = chosen by the leave-one-out check for --target-sharpness")
    p.add_argument("--target-sharpness", type=float, default=None,
                   help="with --detail-power 0: wanted sharpness of in-between frames relative to real ones")
    p.add_argument("--progressive", action=argparse.BooleanOptionalAction, default=None,
                   help="Difix3D progressive 3D updates with fixed novel views during training (default off: "
                        "they did not pay for their time in the measurements, see BENCHMARKS.md)")
    p.add_argument("--fix-steps", default=None, help="training steps of the progressive rounds, e.g. 600,900,1200")
    p.add_argument("--enhance", action=argparse.BooleanOptionalAction, default=None,
                   help="post-render enhancement of every output frame")
    p.add_argument("--num-frames", type=int, default=None, help="output frames (default: span of the inputs)")
    p.add_argument("--duration", type=float, default=None, help="output duration in seconds")
    p.add_argument("--out-fps", type=float, default=None, help="output frame rate (default: the source's)")
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels for the pose stage")
    p.add_argument("--poses-from", type=Path, default=None,
                   help="use these poses (transforms.json or COLMAP dataset) instead of estimating them")
    p.add_argument("--skip-training", action="store_true", help="render from --ckpt instead of training")
    p.add_argument("--ckpt", type=Path, default=None, help="trainer checkpoint for --skip-training")
    p.add_argument("--no-video", action="store_true", help="write frames only, no video.mp4")
    p.add_argument("--keep-inputs", action=argparse.BooleanOptionalAction, default=True,
                   help="output frames at input times are the input frames themselves (not re-renders)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue an interrupted run in OUTPUT")
    g.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.set_defaults(func=run)


def _config_names() -> list[str]:
    from sparsevid.pipeline import NAMED_CONFIGS

    return list(NAMED_CONFIGS)


def config_from_args(args) -> "RunConfig":
    from sparsevid.pipeline import named_config

    from sparsevid.checks import check_run_config
    from sparsevid.gaussians.trainer import CHECKPOINT_NAME

    cfg = named_config(args.config_name, input=args.input, output=args.output, keyframes=parse_keyframes(args.keyframes),
                    fps=args.fps, device=args.device, seed=args.seed, scale=args.scale,
                    train_scale=args.train_scale, max_train_side=args.max_train_side,
                    poses_from=args.poses_from, resume=args.resume,
                    overwrite=args.overwrite, write_video=not args.no_video,
                    keep_inputs=args.keep_inputs)
    if args.skip_training:
        if args.ckpt is None:
            raise SparsevidError("--skip-training needs a checkpoint",
                                 fix=f"pass --ckpt OUT/train/{CHECKPOINT_NAME} (of an earlier run)")
        cfg.ckpt = args.ckpt
    elif args.ckpt is not None:
        raise SparsevidError("--ckpt is only used with --skip-training", fix="add --skip-training")
    if args.steps is not None:
        cfg.train.steps = args.steps
    if args.fixer is not None:
        cfg.fixer.name = args.fixer
    cfg.fixer.difix_weights = args.difix_weights
    if args.progressive is not None:
        cfg.fixer.progressive = args.progressive
    if args.enhance is not None:
        cfg.fixer.enhance = args.enhance
    if args.fuse_mode is not None:
        cfg.fuse.mode = args.fuse_mode
    if args.detail_power is not None:
        if args.detail_power < 0:
            raise SparsevidError(f"--detail-power must be >= 0, got {args.detail_power:g}",
                                 fix="pass 1 (averaged detail), e.g. 4 (sharper) or 0 (chosen by leave-one-out)")
        cfg.fuse.detail_power = args.detail_power or None
    if args.target_sharpness is not None:
        cfg.fuse.target_sharpness = args.target_sharpness
    if args.fix_steps is not None:
        cfg.progressive.fix_steps = parse_int_list(args.fix_steps, "--fix-steps", minimum=1, example="600,900,1200")
    cfg.path.num_frames = args.num_frames
    cfg.path.duration = args.duration
    if args.out_fps is not None:
        cfg.path.fps = args.out_fps
    if args.focal is not None:
        cfg.pose.focal = args.focal
    check_run_config(cfg)  # every flag checked before any work (output folder, input, poses)
    return cfg


def run(args) -> int:
    from sparsevid.pipeline import run_pipeline

    run_pipeline(config_from_args(args))
    return 0
