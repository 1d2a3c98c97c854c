"""`sparsevid train INPUT -o OUT`: fit 3D Gaussians to a posed scene and export them."""
from __future__ import annotations

import argparse
from pathlib import Path

from sparsevid.cli.flags import FlagDoc, add_flags, apply_flags, config_flags, input_path, section_titles
from sparsevid.errors import SparsevidError
from sparsevid.log import info


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train 3D Gaussians on a posed scene (checkpoint + point_cloud.ply)",
                       description="Load a posed scene (COLMAP dataset or transforms.json), undistort the input "
                                   "frames to a full-field-of-view pinhole canvas, train 3D Gaussian Splatting "
                                   "(gsplat on CUDA, sparsevid's rasterizer on CPU) and write OUT/checkpoint.safetensors "
                                   "and OUT/point_cloud.ply. Ctrl-C saves a checkpoint at the current step. On the CPU it trains "
                                   "within `run`'s CPU budget (its cap on Gaussians, coarse to fine), so that `run "
                                   "--ckpt OUT/checkpoint.safetensors --skip-training` renders what `run` would train.",
                       usage="sparsevid train INPUT -o OUT [--steps N] [--train-scale S] [--train.FIELD VALUE ...] "
                             "(every flag below)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", type=input_path, help="posed scene: COLMAP dataset or transforms.json (or a folder holding one)")
    p.add_argument("-o", "--output", "--out", dest="out", type=Path, required=True, help="run folder")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--train-scale", "--scale", dest="scale", type=float, default=None,
                   help="training resolution relative to the input, as `run --train-scale` (default: 1 on cuda, "
                        "0.5 on cpu, capped by --max-train-side)")
    p.add_argument("--max-train-side", type=int, default=None,
                   help="cap on the long side of the training images in pixels (default: 1280 on cuda, 640 on "
                        "cpu, applied to the default --train-scale); 0 = no cap")
    p.add_argument("--keyframes", type=str, default=None, help="input frame indices, e.g. 0,9,19,29")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.safetensors (the same input and settings: checked)")
    p.add_argument("--overwrite", action="store_true", help="replace the training in OUT")
    from sparsevid.gaussians.trainer import TrainConfig

    add_flags(p, train_flags(), titles=section_titles(TrainConfig, "train"))
    p.set_defaults(func=run)


def train_flags():
    """``--train.FIELD`` for every TrainConfig field (as in ``run``); ``--steps`` and ``--seed`` are aliases."""
    from sparsevid.gaussians.trainer import TrainConfig

    return config_flags(TrainConfig, {
        "steps": FlagDoc(aliases=("--steps",),
                         help="training steps (default: 2000 on cuda, 750 on cpu; 30000 = vanilla 3DGS)"),
        "seed": FlagDoc(aliases=("--seed",), help="random seed"),
    }, prefix="train")


#: the marker of a folder `train` wrote (what it writes there: ``outputs()``)
MARKER = ".sparsevid-train"


def outputs() -> tuple[str, ...]:
    """What `train` writes into OUT (``--overwrite`` removes these and nothing else)."""
    from sparsevid.fingerprint import FINGERPRINT_NAME
    from sparsevid.gaussians.checkpoint import CHECKPOINT_NAME

    return CHECKPOINT_NAME, "point_cloud.ply", "train_summary.json", FINGERPRINT_NAME


def run(args: argparse.Namespace) -> int:
    import contextlib

    from sparsevid.data.load import load_scene, parse_keyframes
    from sparsevid.devices import resolve_device
    from sparsevid.fingerprint import check_or_write, run_fingerprint
    from sparsevid.gaussians.ply import save_ply
    from sparsevid.gaussians.trainer import CHECKPOINT_NAME, Trainer, TrainConfig, find_checkpoint, views_from_scene
    from sparsevid.io_utils import jsonable, write_json
    from sparsevid.outdir import prepare_output
    from sparsevid.pipeline import RunConfig, training_scale

    keyframes = parse_keyframes(args.keyframes)  # every argument checked before any work
    cfg = TrainConfig()
    apply_flags(cfg, args, train_flags())
    for flag, v in (("--steps", cfg.steps), ("--train-scale", args.scale)):
        if v is not None and not v > 0:
            raise SparsevidError(f"{flag} must be positive, got {v}", fix=f"pass e.g. {flag} "
                                 + ("2000" if flag == "--steps" else "0.5"))
    if args.max_train_side is not None and args.max_train_side < 0:
        raise SparsevidError(f"--max-train-side must be >= 0 pixels (0 = no cap), got {args.max_train_side}",
                             fix="pass e.g. --max-train-side 1280")
    from sparsevid.checks import check_train_config

    check_train_config(cfg)
    device = resolve_device(args.device)
    if device.type == "cpu":  # the CPU budget `run` trains with (its Gaussian cap, coarse-to-fine start)
        from sparsevid.pipeline import cpu_profile

        cfg = cpu_profile(RunConfig(train=cfg)).train
    if not Path(args.input).expanduser().exists():
        raise SparsevidError("input not found", path=args.input,
                             fix="give a posed scene: a COLMAP dataset or a transforms.json (sparsevid poses writes one)")
    out: Path = Path(args.out).expanduser()  # a quoted or `--out=~/x` tilde, as the shell would
    # the input read before the folder is touched: one that does not load leaves it as it was, even with --overwrite
    scene = load_scene(args.input, keyframes=keyframes)
    with contextlib.ExitStack() as hold:  # the folder's lock, held while train writes it
        prepare_output(out, marker=MARKER, outputs=outputs(), protect=(args.input,), resume=args.resume,
                       overwrite=args.overwrite, hold=hold)  # before any work
        trainer = None
        if args.resume:  # the checkpoint first: an old pickled one is a one-line error before anything is written
            ck = find_checkpoint(out)
            if ck is None:
                raise SparsevidError("nothing to resume", fix="drop --resume to start a new run",
                                     path=out / CHECKPOINT_NAME)
            trainer = Trainer.from_checkpoint(ck, device=device, run_dir=out, steps=cfg.steps)
        settings = {"train": {k: v for k, v in jsonable(cfg).items() if k != "steps"},  # --steps may grow
                    "keyframes": keyframes, "train_scale": args.scale, "max_train_side": args.max_train_side,
                    "device": args.device}
        check_or_write(out, run_fingerprint(settings, {"input": args.input}, out), args.resume)
        if trainer is not None:
            if trainer.step >= trainer.total_steps:
                if trainer.step > trainer.total_steps:
                    raise SparsevidError(f"the checkpoint is at step {trainer.step}, past --steps "
                                         f"{trainer.total_steps}", path=ck,
                                         fix=f"give --steps above {trainer.step}, or leave it out")
                info(f"the training in {out} is finished ({trainer.step} steps): nothing to do "
                     "(--steps N above it trains on)")
                return 0
            info(f"resuming at step {trainer.step}/{trainer.total_steps}")
        else:
            scale = training_scale(RunConfig(train_scale=args.scale, max_train_side=args.max_train_side),
                                   scene.image_size, device)
            views = views_from_scene(scene, scale=scale)
            trainer = Trainer(cfg, views, scene.points, scene.point_colors, device=device, run_dir=out)
            info(f"training {len(views)} views at {views[0].width}x{views[0].height} on {device.type}, "
                 f"{trainer.num_gaussians} initial Gaussians, {trainer.total_steps} steps")
        summary = trainer.train()
        ply = save_ply(out / "point_cloud.ply", dict(trainer.params))
        summary["total_steps_trained"] = trainer.step  # this segment's steps are summary["steps"]
        write_json(out / "train_summary.json", summary, indent=2)
        info(f"done: {summary['steps']} steps in {summary['seconds']:.1f} s ({summary['steps_per_s']:.1f} it/s), "
             f"PSNR {summary['psnr']:.2f} dB, {summary['gaussians']} Gaussians -> {ply}")
    return 0
