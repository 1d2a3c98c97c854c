"""``sparsevid run``: the whole job in one command."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sparsevid.data.load import parse_int_list, parse_keyframes
from sparsevid.data.video import WINDOW_HELP, parse_window
from sparsevid.errors import SparsevidError

if TYPE_CHECKING:
    from sparsevid.pipeline import RunConfig


#: ``run``'s additions to the flags derived from :class:`~sparsevid.pipeline.RunConfig` (see
#: :mod:`sparsevid.cli.flags`): the documented short flags as aliases, and help written for users
#: where the field's own documentation is written for the code. Every other field has its derived
#: flag with the help of its dataclass.
_SEED_NOTE = "ignored by `run`: --seed seeds every stage"


def _detail_power(text: str, flag: str):
    from sparsevid.configfile import value_from_text

    v = value_from_text(float, text, flag)
    if v < 0:
        raise SparsevidError(f"{flag} must be >= 0, got {v:g}",
                             fix="pass 1 (averaged detail), e.g. 4 (sharper) or 0 (chosen by leave-one-out)")
    return v or None  # 0 = chosen by the leave-one-out check


def _flag_docs() -> dict:
    from sparsevid.cli.flags import FlagDoc as D

    return {
        "output": D(aliases=("-o",), help="run folder", metavar="OUT"),
        "keyframes": D(parse=parse_keyframes, metavar="I,J,...",
                       help="input frame indices, e.g. 0,9,19,29 (or \"0 9 19 29\"); other frames are used as "
                            "ground truth; none = every frame"),
        "fps": D(help="source frame rate (default: read from input, else 30)"),
        "start": D(metavar="T", help=WINDOW_HELP["start"]),
        "end": D(metavar="T", help=WINDOW_HELP["end"]),
        "device": D(choices=("auto", "cuda", "cpu"), help="training/rendering device"),
        "seed": D(help="random seed of every stage (repeatable runs on one machine)"),
        "scale": D(help="output resolution relative to the input"),
        "train_scale": D(help="training resolution relative to the input (default: 1 on CUDA, 0.5 on CPU, "
                              "capped by --max-train-side)"),
        "max_train_side": D(help="cap on the long side of the training images in pixels (default: 1280 on CUDA, "
                                 "640 on CPU, applied to the default --train-scale); 0 = no cap"),
        "poses_from": D(help="use these poses (transforms.json or COLMAP dataset) instead of estimating them"),
        "undistort_mode": D(choices=("full", "crop")),
        "resume": D(help="continue an interrupted run in OUTPUT"),
        "overwrite": D(help="replace an existing OUTPUT"),
        "ckpt": D(help="trainer checkpoint for --skip-training"),
        "write_video": D(negative_aliases=("--no-video",), help="encode video.mp4 (--no-video: frames only)"),
        "keep_inputs": D(help="output frames at input times are the input frames themselves (not re-renders)"),
        "even_key_detail": D(help="soften each output frame at an input time to the sharpness of the frames next "
                                  "to it, so the video does not pulse (--no-even-key-detail: inputs as they are)"),
        "pose.focal": D(aliases=("--focal",), help="focal length in pixels for the pose stage (held fixed)",
                        example="600"),
        "pose.seed": D(help=_SEED_NOTE),
        "train.steps": D(aliases=("--steps",),
                         help="training steps (default: sized for the input and device; 30000 = vanilla 3DGS)"),
        "train.seed": D(help=_SEED_NOTE),
        "fixer.name": D(aliases=("--fixer",),
                        help="none | reproject (weight-free, default) | difix | difix_ref (needs the weights)"),
        "fixer.difix_weights": D(aliases=("--difix-weights",),
                                 help="local folder of nvidia/difix or nvidia/difix_ref weights (default: Hugging "
                                      "Face cache)"),
        "fixer.progressive": D(aliases=("--progressive",), negative_aliases=("--no-progressive",),
                               help="Difix3D progressive 3D updates with fixed novel views during training "
                                    "(off by default: they did not pay for their time in the measurements, see "
                                    "BENCHMARKS.md)"),
        "fixer.enhance": D(aliases=("--enhance",), negative_aliases=("--no-enhance",),
                           help="post-render enhancement of every output frame"),
        "progressive.fix_steps": D(aliases=("--fix-steps",), metavar="N,N,...",
                                   parse=lambda text, flag: parse_int_list(text, flag, minimum=1,
                                                                           example="600,900,1200"),
                                   help="training steps of the progressive rounds, e.g. 600,900,1200"),
        "path.num_frames": D(aliases=("--num-frames",), help="output frames (default: span of the inputs)"),
        "path.duration": D(aliases=("--duration",), help="output duration in seconds"),
        "path.fps": D(aliases=("--out-fps",), metavar="FPS",
                      help="output frame rate, e.g. 60 or 30000/1001 (default: the source's)"),
        "fuse.mode": D(aliases=("--fuse-mode",), choices=("fuse", "2d", "3d"),
                       help="fuse = 2D flow and 3D routes fused per pixel (default); 2d = flow only, no 3D model; "
                            "3d = the 3D route alone (Difix3D+ style)"),
        "fuse.detail_power": D(aliases=("--detail-power",), parse=_detail_power,
                               help="fine detail from the single most trusted candidate (>1, sharper) or averaged "
                                    "(1, the default); 0 = chosen by the leave-one-out check for "
                                    "--target-sharpness"),
        "fuse.target_sharpness": D(aliases=("--target-sharpness",),
                                   help="with --detail-power 0: wanted sharpness of in-between frames relative to "
                                        "real ones"),
    }


def run_flags():
    """The flags of ``run``: one for every leaf field of RunConfig (INPUT is the positional argument)."""
    from sparsevid.cli.flags import config_flags
    from sparsevid.pipeline import RunConfig

    return config_flags(RunConfig, _flag_docs(), skip=("input",))


def add_parser(sub) -> None:
    from sparsevid.cli.flags import add_flags, input_path, section_titles
    from sparsevid.pipeline import RunConfig

    p = sub.add_parser(
        "run", help="frames/video in, full video out (poses -> 3DGS -> fixer -> path -> video)",
        description="Run every stage: load the input, estimate camera poses when missing, train 3D Gaussians, "
                    "render and fix one camera per output frame at its exact time (the 3D route), fuse it per "
                    "pixel with optical-flow interpolation between the neighbouring inputs (the 2D route; the only "
                    "route when no pose model passes its checks), weighted by a leave-one-out check on the inputs "
                    "that also estimates the quality; write video.mp4 + frames + report.html + quality.json, and "
                    "evaluate against ground-truth frames when the input holds them. With no INPUT, runs the "
                    "embedded demo clip. Every setting of the run (RunConfig, as in OUT/config.yaml) has a flag: "
                    "--SECTION.FIELD for the nested configs (--train.steps, --fuse.band-sigma), --no-... / "
                    "--SECTION.no-... for off; `none` unsets an optional value. Precedence: the defaults < "
                    "--config-name or --config FILE (one of them) < the flags given.",
        usage="sparsevid run [INPUT] [-o OUT] [--keyframes I,J,...] [--config FILE | --config-name NAME]\n"
              "                     [--steps N] [--fixer NAME] [--SECTION.FIELD VALUE ...] (every flag below)")
    p.add_argument("input", nargs="?", type=input_path, default=None,
                   help="folder of frames, video file, COLMAP or nerfstudio dataset (default: embedded demo)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="run the configuration in this file (a run's OUT/config.yaml): reproduces that run; "
                        "flags given here override its values")
    p.add_argument("--config-name", default=None, metavar="NAME",
                   help="named configuration to start from (default: default): " + "; ".join(_config_names()))
    p.add_argument("--skip-training", action="store_true", help="render from --ckpt instead of training")
    p.add_argument("--print-config", action="store_true",
                   help="print the configuration this command would run (YAML, as OUT/config.yaml; on the CPU "
                        "with the CPU profile's caps applied, as run.json records it) and exit without running")
    add_flags(p, run_flags(), titles=section_titles(RunConfig))
    p.set_defaults(func=run)


def _config_names() -> list[str]:
    """``name (what it is)`` of each named configuration."""
    from sparsevid.pipeline import NAMED_CONFIGS

    return [f"{name} ({doc})" for name, (doc, _) in NAMED_CONFIGS.items()]


def config_from_args(args) -> "RunConfig":
    """The :class:`RunConfig` of ``sparsevid run``: the dataclass defaults, then the
    ``--config-name`` named config, or ``--config FILE``; then every flag given on the command line
    (:func:`sparsevid.cli.flags.apply_flags`: a flag not given never overrides)."""
    from sparsevid.checks import check_run_config
    from sparsevid.cli.flags import apply_flags, in_file_terms
    from sparsevid.gaussians.trainer import CHECKPOINT_NAME
    from sparsevid.pipeline import named_config, read_run_config

    if args.config is not None:
        if args.config_name is not None:
            raise SparsevidError("--config and --config-name both choose the configuration to start from",
                                 fix="drop one of them")
        cfg = read_run_config(args.config)
    else:
        cfg = named_config(args.config_name or "default")
    flags = run_flags()
    given = set(apply_flags(cfg, args, flags))
    if args.input is not None:
        cfg.input = args.input
    if args.skip_training:
        if cfg.ckpt is None:
            raise SparsevidError("--skip-training needs a checkpoint",
                                 fix=f"pass --ckpt OUT/train/{CHECKPOINT_NAME} (of an earlier run)")
    elif "ckpt" in given and cfg.ckpt is not None:
        raise SparsevidError("--ckpt is only used with --skip-training", fix="add --skip-training")
    if cfg.resume and cfg.overwrite and {"resume", "overwrite"} & given:
        raise SparsevidError("--resume continues the run in OUTPUT, --overwrite replaces it", fix="drop one of them")
    if {"start", "end"} & given:
        parse_window(cfg.start, cfg.end)  # a bad window is an error before any work
    try:
        check_run_config(cfg)  # every flag checked before any work (output folder, input, poses)
    except SparsevidError as e:
        if args.config is None:
            raise
        raise in_file_terms(e, flags, given, args.config) from None
    return cfg


def run(args) -> int:
    from sparsevid.pipeline import run_pipeline

    cfg = config_from_args(args)
    if args.print_config:
        print(effective_config_yaml(cfg), end="")
        return 0
    run_pipeline(cfg)  # --from-nerfstudio CONFIG.yml: the pipeline renders that model
    return 0


def effective_config_yaml(cfg: "RunConfig") -> str:
    """``cfg`` as the run would use it, as YAML: on a CPU device with :func:`~sparsevid.pipeline.cpu_profile`'s
    caps applied (a header line says which device and whether the caps apply)."""
    from sparsevid.devices import resolve_device
    from sparsevid.pipeline import cpu_profile, run_config_yaml

    device = resolve_device(cfg.device)
    run_cfg = cpu_profile(cfg) if device.type == "cpu" else cfg
    note = "with the CPU profile's caps applied" if device.type == "cpu" else "as given"
    return run_config_yaml(run_cfg, f"the configuration `sparsevid run` would use on {device} ({note}); "
                                    "save it and pass it with --config FILE")
