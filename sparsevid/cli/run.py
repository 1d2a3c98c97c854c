"""``sparsevid run``: the whole job in one command."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sparsevid.data.load import parse_int_list, parse_keyframes
from sparsevid.data.video import add_window_args, parse_window
from sparsevid.errors import SparsevidError

if TYPE_CHECKING:
    from sparsevid.pipeline import RunConfig


class _Default:
    """The default of a flag, marked as "not given on the command line": with ``--config FILE`` only
    the flags given override the file (a default never does)."""

    def __init__(self, value) -> None:
        self.value = value

    def __str__(self) -> str:  # --help shows the value
        return str(self.value)

    __repr__ = __str__


#: flag (argparse dest) -> the RunConfig field it sets, dotted into the nested configs (the flags
#: with their own handling -- keyframes, no_video, skip_training/ckpt, fix_steps -- are not here)
_FLAG_FIELDS = {
    "input": "input", "output": "output", "fps": "fps", "device": "device", "seed": "seed", "scale": "scale",
    "train_scale": "train_scale", "max_train_side": "max_train_side", "poses_from": "poses_from",
    "resume": "resume", "overwrite": "overwrite", "keep_inputs": "keep_inputs",
    "steps": "train.steps", "fixer": "fixer.name", "difix_weights": "fixer.difix_weights",
    "progressive": "fixer.progressive", "enhance": "fixer.enhance", "fuse_mode": "fuse.mode",
    "detail_power": "fuse.detail_power", "target_sharpness": "fuse.target_sharpness",
    "num_frames": "path.num_frames", "duration": "path.duration", "out_fps": "path.fps", "focal": "pose.focal",
    "start": "start", "end": "end",
}


def _given(args, name: str) -> bool:
    v = getattr(args, name)
    return v is not None and not isinstance(v, _Default)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run", help="frames/video in, full video out (poses -> 3DGS -> fixer -> path -> video)",
        description="Run every stage: load the input, estimate camera poses when missing, train 3D Gaussians, "
                    "render and fix one camera per output frame at its exact time (the 3D route), fuse it per "
                    "pixel with optical-flow interpolation between the neighbouring inputs (the 2D route; the only "
                    "route when no pose model passes its checks), weighted by a leave-one-out check on the inputs "
                    "that also estimates the quality; write video.mp4 + frames + report.html + quality.json, and "
                    "evaluate against ground-truth frames when the input holds them. With no INPUT, runs the "
                    "embedded demo clip.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", nargs="?", type=Path, default=None,
                   help="folder of frames, video file, COLMAP or nerfstudio dataset (default: embedded demo)")
    p.add_argument("-o", "--output", type=Path, default=_Default(Path("out/run")), help="run folder")
    p.add_argument("--config", type=Path, default=None,
                   help="run the configuration in this file (a run's OUT/config.yaml): reproduces that run; "
                        "flags given here override its values")
    p.add_argument("--keyframes", default=None,
                   help="input frame indices, e.g. 0,9,19,29 (or \"0 9 19 29\"); other frames are used as ground truth")
    p.add_argument("--fps", type=float, default=None, help="source frame rate (default: read from input, else 30)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default=_Default("auto"),
                   help="training/rendering device")
    p.add_argument("--seed", type=int, default=_Default(0), help="random seed (repeatable runs on one machine)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: sized for the input and device; 30000 = vanilla 3DGS)")
    p.add_argument("--scale", type=float, default=_Default(1.0), help="output resolution relative to the input")
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
    add_window_args(p)
    p.add_argument("--config-name", default=_Default("default"),
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
    p.add_argument("--skip-training", action="store_true", default=_Default(False),
                   help="render from --ckpt instead of training")
    p.add_argument("--ckpt", type=Path, default=None, help="trainer checkpoint for --skip-training")
    p.add_argument("--from-nerfstudio", type=Path, default=None, metavar="CONFIG.yml",
                   help="render this trained nerfstudio model (an ns-train run's config.yml, e.g. of sparsevid-nerfacto) "
                        "instead of training Gaussians; INPUT defaults to its dataset. Needs nerfstudio (README)")
    p.add_argument("--no-video", action="store_true", default=_Default(False), help="write frames only, no video.mp4")
    p.add_argument("--keep-inputs", action=argparse.BooleanOptionalAction, default=_Default(True),
                   help="output frames at input times are the input frames themselves (not re-renders)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", default=_Default(False), help="continue an interrupted run in OUTPUT")
    g.add_argument("--overwrite", action="store_true", default=_Default(False), help="replace an existing OUTPUT")
    p.set_defaults(func=run)


def _config_names() -> list[str]:
    from sparsevid.pipeline import NAMED_CONFIGS

    return list(NAMED_CONFIGS)


def config_from_args(args) -> "RunConfig":
    """The :class:`RunConfig` of ``sparsevid run``: ``--config FILE`` (else the ``--config-name``
    named config) with the flags given on the command line on top."""
    from sparsevid.checks import check_run_config
    from sparsevid.gaussians.trainer import CHECKPOINT_NAME
    from sparsevid.pipeline import named_config, read_run_config

    given = (lambda name: _given(args, name))
    if args.config is not None:
        if given("config_name"):
            raise SparsevidError("--config and --config-name both choose the configuration to start from",
                                 fix="drop one of them")
        cfg = read_run_config(args.config)
    else:
        cfg = named_config(str(args.config_name))
    if given("keyframes"):
        cfg.keyframes = parse_keyframes(args.keyframes)
    if given("no_video"):
        cfg.write_video = False
    if given("skip_training"):
        if args.ckpt is None and cfg.ckpt is None:
            raise SparsevidError("--skip-training needs a checkpoint",
                                 fix=f"pass --ckpt OUT/train/{CHECKPOINT_NAME} (of an earlier run)")
        cfg.ckpt = args.ckpt if args.ckpt is not None else cfg.ckpt
    elif args.ckpt is not None:
        raise SparsevidError("--ckpt is only used with --skip-training", fix="add --skip-training")
    if given("detail_power") and args.detail_power < 0:
        raise SparsevidError(f"--detail-power must be >= 0, got {args.detail_power:g}",
                             fix="pass 1 (averaged detail), e.g. 4 (sharper) or 0 (chosen by leave-one-out)")
    if given("start") or given("end"):
        parse_window(args.start, args.end)  # a bad window is an error before any work
    if given("fix_steps"):
        cfg.progressive.fix_steps = parse_int_list(args.fix_steps, "--fix-steps", minimum=1, example="600,900,1200")
    for dest, field in _FLAG_FIELDS.items():
        if given(dest):
            value = getattr(args, dest)
            *parents, name = field.split(".")
            target = cfg
            for part in parents:
                target = getattr(target, part)
            setattr(target, name, (value or None) if dest == "detail_power" else value)  # 0 = chosen by the check
    check_run_config(cfg)  # every flag checked before any work (output folder, input, poses)
    return cfg


def run(args) -> int:
    from sparsevid.pipeline import run_pipeline

    if getattr(args, "from_nerfstudio", None) is not None:
        from sparsevid.nerfstudio.video import run_from_nerfstudio

        return run_from_nerfstudio(args)

    run_pipeline(config_from_args(args))
    return 0
