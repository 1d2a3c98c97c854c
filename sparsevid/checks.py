"""Checks of a run's settings that need no work: done before the output folder is touched, the
input is read or the pose stage runs, each failure a one-line error naming the flag and the fix."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sparsevid.errors import SparsevidError

if TYPE_CHECKING:
    from sparsevid.pipeline import RunConfig


def check_positive(value, flag: str, example: str, integer: bool = False) -> None:
    """A one-line error unless ``value`` (a flag's setting; None: not set) is above 0, and a whole number where
    ``integer``."""
    if value is None:
        return
    try:
        ok = value > 0 and (not integer or (isinstance(value, int) and not isinstance(value, bool)))
    except TypeError:
        ok = False
    if not ok:
        kind = "a positive integer" if integer else "a positive number"
        raise SparsevidError(f"{flag} must be {kind}, got {value}", fix=f"pass e.g. {flag} {example}")


def check_train_config(cfg) -> None:
    """One-line errors for training settings (a :class:`~sparsevid.gaussians.trainer.TrainConfig`) the trainer
    cannot use: it failed on them with a traceback (``--train.init.random-points 0``: no Gaussian to start from)."""
    check_positive(cfg.steps, "--train.steps", "2000", integer=True)
    check_positive(cfg.max_gaussians, "--train.max-gaussians", "1000000", integer=True)
    init = cfg.init
    check_positive(init.random_points, "--train.init.random-points", "20000", integer=True)
    if not isinstance(init.min_points, int) or init.min_points < 0:
        raise SparsevidError(f"--train.init.min-points must be a whole number >= 0, got {init.min_points}",
                             fix="pass e.g. --train.init.min-points 100")
    check_positive(init.init_scale, "--train.init.init-scale", "1.0")


def check_run_config(cfg: "RunConfig") -> None:
    """Raise a one-line :class:`SparsevidError` for a setting that cannot work.

    Checks: ``--scale``, ``--train-scale``, ``--fps``, ``--out-fps``, ``--duration``, ``--focal``
    > 0; ``--steps``, ``--num-frames``, ``--pose.pair-init-trials`` >= 1; ``--max-train-side`` >= 0; ``--fix-steps`` below
    ``--steps``; ``--fixer`` a known fixer; the undistortion mode; the learned route (a known one,
    its weights where it is required, 1, 2, 4 or 8 passes); ``--video.crf`` 1-51 and a known
    ``--video.preset``; that the input, ``--poses-from``
    and ``--ckpt`` exist (and the checkpoint is one this version reads).
    """
    check_positive(cfg.scale, "--scale", "0.5")
    check_positive(cfg.train_scale, "--train-scale", "0.5")
    if not isinstance(cfg.fps, str):
        check_positive(cfg.fps, "--fps", "29.97")
    from sparsevid.data.timebase import parse_fps

    for flag, rate in (("--fps", cfg.fps), ("--out-fps", cfg.path.fps)):
        if rate is not None:
            parse_fps(rate, flag)
    check_positive(cfg.train.steps, "--steps", "2000", integer=True)
    check_train_config(cfg.train)
    check_positive(cfg.path.num_frames, "--num-frames", "30", integer=True)
    check_positive(cfg.path.duration, "--duration", "1.0")
    if cfg.path.fps is not None and not isinstance(cfg.path.fps, str):
        check_positive(cfg.path.fps, "--out-fps", "30")
    side = getattr(cfg, "max_train_side", None)
    if side is not None and (not isinstance(side, int) or side < 0):
        raise SparsevidError(f"--max-train-side must be a whole number of pixels >= 0 (0 = no cap), got {side}",
                             fix="pass e.g. --max-train-side 1280")
    fix_steps = cfg.progressive.fix_steps
    if fix_steps is not None and cfg.train.steps is not None:
        late = [s for s in fix_steps if s >= cfg.train.steps]
        if late:
            raise SparsevidError(f"--fix-steps {late[0]} is not below --steps {cfg.train.steps}; "
                                 "that round would never run",
                                 fix=f"give --fix-steps between 1 and {cfg.train.steps - 1}")
    if cfg.undistort_mode not in ("full", "crop"):
        raise SparsevidError(f"unknown undistortion mode {cfg.undistort_mode!r}", fix="use 'full' or 'crop'")
    from sparsevid.poses.sfm import check_pose_config

    check_pose_config(cfg.pose)
    _check_fixer(cfg)
    from sparsevid.fuse.checks import check_fuse_config

    check_fuse_config(cfg.fuse)
    _check_learned(cfg)
    _check_flow(cfg)
    from sparsevid.video.io import check_video_config

    check_video_config(cfg.video)
    for flag, p in (("INPUT", cfg.input), ("--poses-from", cfg.poses_from)):
        if p is not None and not Path(p).expanduser().exists():
            raise SparsevidError(f"{flag} not found", path=p,
                                 fix="check the path" if flag != "INPUT" else
                                 "check the path (a folder of frames, a video, a COLMAP dataset or a transforms.json)")
    if cfg.ckpt is not None:
        from sparsevid.gaussians.checkpoint import check_file

        check_file(cfg.ckpt)


def _check_learned(cfg: "RunConfig") -> None:
    """The CPU profile's learned-route settings, and RIFE's weights where ``--fuse.learned rife`` needs them (the
    fusion's own settings: :func:`~sparsevid.fuse.checks.check_fuse_config`)."""
    from sparsevid.fuse.learned import PASSES

    if cfg.cpu_learned_passes not in PASSES:
        raise SparsevidError(f"--cpu-learned-passes must be one of {', '.join(map(str, PASSES))}, got "
                             f"{cfg.cpu_learned_passes}", fix="pass e.g. --cpu-learned-passes 4")
    if cfg.cpu_learned_adapt_steps < 0:
        raise SparsevidError(f"--cpu-learned-adapt-steps must be 0 or more, got {cfg.cpu_learned_adapt_steps}",
                             fix="pass e.g. --cpu-learned-adapt-steps 0 (no fine-tuning)")
    from sparsevid.eval import rife

    if cfg.fuse.learned == "rife" and cfg.fuse.mode != "3d":
        if rife.weights_path() is None:
            raise SparsevidError("--fuse.learned rife needs the RIFE 4.25 weights, which are not installed",
                                 fix=f"{rife.INSTALL_HINT}, or use --fuse.learned auto")


def _check_flow(cfg: "RunConfig") -> None:
    """GMFlow's weights where ``--fuse.flow.gmflow on`` needs them."""
    flow = cfg.fuse.flow
    if flow.gmflow == "on" and flow.gmflow_weights is None:
        from sparsevid.fuse import gmflow

        if gmflow.weights_path() is None:
            raise SparsevidError("--fuse.flow.gmflow on needs the GMFlow weights, which are not installed",
                                 fix=f"{gmflow.INSTALL_HINT}, or pass --fuse.flow.gmflow-weights FILE")


def fixer_runs(cfg: "RunConfig") -> bool:
    """Whether the run's fixer runs: the 3D route with enhancement or progressive rounds (then Difix's weights are
    checked before any work and are part of the run's fingerprint)."""
    fc = cfg.fixer
    return fc.name != "none" and cfg.fuse.mode != "2d" and (fc.enhance or fc.progressive)


def _check_fixer(cfg: "RunConfig") -> None:
    """The fixer's settings (:func:`~sparsevid.fixer.base.check_fixer_config`; Difix's weights only where a
    fixer will run, :func:`fixer_runs`)."""
    from sparsevid.fixer.base import check_fixer_config

    check_fixer_config(cfg.fixer, deep=fixer_runs(cfg))
