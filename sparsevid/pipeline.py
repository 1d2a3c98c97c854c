"""The whole job: load -> poses -> undistort -> train (+ progressive fixes) -> camera path ->
render -> post-render enhancement -> frames / video -> evaluation.

``run_pipeline(RunConfig) -> RunResult`` is the one entry point; the CLI (``sparsevid run``) and
the benchmark harness are thin wrappers around it. An output folder holds everything a run makes:

    OUT/
      poses/          estimated poses (sparse/0, transforms.json, poses_report.json) when estimated
      train/          checkpoints (resumable) and point_cloud.ply
      frames/         frame_0000.png ... in the input camera model
      video.mp4       H.264 yuv420p at the exact output fps
      cameras.json    the camera path (nerfstudio convention)
      contact_sheet.png
      metrics.json    when the input holds ground-truth frames
      run.json        config, versions, per-stage wall times, device, memory
"""
from __future__ import annotations

import dataclasses
import json
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sparsevid import __version__, log, outdir
from sparsevid.data.load import demo_path, load_scene
from sparsevid.data.scene import Scene
from sparsevid.errors import SparsevidError
from sparsevid.fixer.base import Fixer, FixerConfig, RefViews, build_fixer
from sparsevid.fixer.enhance import EnhanceConfig, enhance_frames
from sparsevid.fixer.progressive import InputViews, ProgressiveConfig, ProgressiveUpdater
from sparsevid.gaussians.rasterize import resolve_device
from sparsevid.gaussians.ply import save_ply
from sparsevid.gaussians.trainer import CHECKPOINT_NAME, Trainer, TrainConfig, TrainView
from sparsevid.io_utils import atomic_write_text
from sparsevid.path.camera_path import CameraPath, PathConfig, PathFrames
from sparsevid.poses.sfm import PoseConfig
from sparsevid.poses.undistort import Undistorter
from sparsevid.render.frames import distort_frames, render_path

MARKER = ".sparsevid-run"


@dataclass
class RunConfig:
    """Everything ``sparsevid run`` does, with defaults that work.

    Attributes:
        input: a folder of frames, a video, a COLMAP or nerfstudio dataset; None = embedded demo.
        output: the run folder.
        keyframes: frame indices used as inputs (others become ground truth); None = all frames.
        fps: frame rate of the source video; None = read from the input (else 30).
        device: "auto" | "cuda" | "cpu" for training and rendering.
        seed: makes runs repeatable on the same machine.
        scale: output resolution relative to the input frames.
        train_scale: training resolution relative to the input; None = 1.0 on CUDA, 0.5 on CPU.
        poses_from: a transforms.json / COLMAP dataset whose poses (matched by frame index) replace
            the pose stage (e.g. reference poses, for separating pose from rendering error).
        undistort_mode: "full" (padded canvas with validity mask, keeps the whole field of view)
            or "crop".
        resume: continue an interrupted run in ``output``; overwrite: replace ``output``.
        ckpt: render from this trainer checkpoint instead of training (``--skip-training``).
        write_video: also encode video.mp4 (frames are always written).
        keep_inputs: output frames at an input frame's exact time are that input frame itself
            (resized to the output size), not a re-render of it.
        cpu_max_gaussians, cpu_pseudo_views: on the CPU backend, caps on the Gaussian count and
            on the pseudo views per progressive round, so a run takes minutes, not hours.
    """

    input: Path | None = None
    output: Path = Path("out/run")
    keyframes: list[int] | None = None
    fps: float | None = None
    device: str = "auto"
    seed: int = 0
    scale: float = 1.0
    train_scale: float | None = None
    poses_from: Path | None = None
    undistort_mode: str = "full"
    resume: bool = False
    overwrite: bool = False
    ckpt: Path | None = None
    write_video: bool = True
    keep_inputs: bool = True
    cpu_max_gaussians: int = 40_000
    cpu_pseudo_views: int = 8
    pose: PoseConfig = field(default_factory=PoseConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    fixer: FixerConfig = field(default_factory=FixerConfig)
    progressive: ProgressiveConfig = field(default_factory=ProgressiveConfig)
    enhance: EnhanceConfig = field(default_factory=EnhanceConfig)
    path: PathConfig = field(default_factory=PathConfig)


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        output_dir: the run folder.
        frames: T x [H, W, 3] uint8 output frames in the input lens.
        stage_seconds: wall time per stage (loading, poses, training, fixing, rendering, enhance,
            encoding, eval).
        metrics: the evaluation (see :func:`sparsevid.eval.metrics.evaluate`) or None.
        peak_memory: {"cpu_rss_mb": ..., "gpu_mb": ...}.
        fps: the output frame rate.
    """

    output_dir: Path
    frames: list[np.ndarray]
    stage_seconds: dict[str, float]
    metrics: dict | None
    peak_memory: dict[str, float]
    fps: object = None


def named_config(name: str, **overrides) -> RunConfig:
    """Named configurations used by the benchmarks.

    * ``default``: the defaults (weight-free fixer with progressive updates and post-render enhancement);
    * ``no_fixer``: the same reconstruction without any fixing;
    * ``progressive_only`` / ``enhance_only``: one of the two fixer stages;
    * ``vanilla``: the seed recipe, 30k steps of plain 3DGS and no fixer.
    """
    poses_from = overrides.pop("poses_from", None)
    steps = overrides.pop("steps", None)
    cfg = RunConfig(**{k: (Path(v) if k in ("input", "output") and v is not None else v)
                       for k, v in overrides.items()})
    cfg.poses_from = Path(poses_from) if poses_from else None
    if steps is not None:
        cfg.train.steps = int(steps)
    if name == "default":
        pass
    elif name == "no_fixer":
        cfg.fixer.name = "none"
    elif name == "progressive_only":
        cfg.fixer.enhance = False
    elif name == "enhance_only":
        cfg.fixer.progressive = False
    elif name == "vanilla":
        cfg.fixer.name = "none"
        cfg.train.steps = 30000 if steps is None else int(steps)
    else:
        raise SparsevidError(f"unknown configuration {name!r}",
                             fix="use default, no_fixer, progressive_only, enhance_only or vanilla")
    return cfg


# ---------------------------------------------------------------------------------------------
# stages
# ---------------------------------------------------------------------------------------------
def cpu_profile(cfg: RunConfig) -> RunConfig:
    """The CPU backend's budget: caps on Gaussians and pseudo views (see :class:`RunConfig`)."""
    train = dataclasses.replace(cfg.train, max_gaussians=min(cfg.train.max_gaussians, cfg.cpu_max_gaussians))
    prog = dataclasses.replace(cfg.progressive, max_views_per_round=min(
        cfg.progressive.max_views_per_round or cfg.cpu_pseudo_views, cfg.cpu_pseudo_views))
    return dataclasses.replace(cfg, train=train, progressive=prog)


#: everything ``run`` writes under OUT; ``--overwrite`` removes these and nothing else
RUN_OUTPUTS = ("poses", "train", "frames", "video.mp4", "cameras.json", "contact_sheet.png", "metrics.json",
               "run.json", "quality.json")


def prepare_output(out: Path, resume: bool, overwrite: bool, protect=()) -> None:
    """Create ``out``; refuse an existing one unless ``resume`` or ``overwrite``; never remove
    anything in ``protect`` (see :func:`sparsevid.outdir.prepare_output`)."""
    outdir.prepare_output(out, marker=MARKER, outputs=RUN_OUTPUTS, protect=protect, resume=resume,
                          overwrite=overwrite)


def load_input(cfg: RunConfig) -> Scene:
    src = cfg.input if cfg.input is not None else demo_path()
    if cfg.input is None:
        log.info(f"no input given: using the embedded demo clip ({src})")
    return load_scene(src, keyframes=cfg.keyframes, fps=cfg.fps)


def resolve_poses(scene: Scene, cfg: RunConfig, out: Path) -> tuple[Scene, dict | None]:
    """Poses from ``poses_from``, from the input, from a resumed run, or estimated (pose stage)."""
    from sparsevid.poses.sfm import estimate_poses, save_pose_outputs

    if cfg.poses_from is not None:
        ref = load_scene(cfg.poses_from)
        by_index = {f.index: f.c2w for f in ref.frames + ref.gt_frames if f.c2w is not None}
        missing = [f.index for f in scene.frames if f.index not in by_index]
        if missing:
            raise SparsevidError(f"frames {missing} have no pose in the given poses", path=cfg.poses_from,
                                 fix="give poses that cover every input frame")
        c2ws = np.stack([by_index[f.index] for f in scene.frames])
        return scene.with_poses(ref.camera, c2ws, ref.points, ref.point_colors), None
    if scene.has_poses:
        return scene, None
    pose_dir = out / "poses"
    if cfg.resume and (pose_dir / "transforms.json").exists():
        log.info(f"resuming: reusing the poses in {pose_dir}")
        return resolve_poses(scene, dataclasses.replace(cfg, poses_from=pose_dir / "transforms.json"), out)
    scene, report = estimate_poses(scene, dataclasses.replace(cfg.pose, seed=cfg.seed))
    save_pose_outputs(scene, report, pose_dir)
    return scene, report


def make_train_views(scene: Scene, und: Undistorter) -> list[TrainView]:
    """The input frames undistorted onto the canvas of ``und``, with its validity mask."""
    import cv2

    mask = und.mask.astype(np.float32)[..., None]
    views = []
    for f in scene.frames:
        img = f.image
        if (img.shape[1], img.shape[0]) != und.size:
            img = cv2.resize(img, und.size, interpolation=cv2.INTER_AREA)
        canvas = und.undistort_image(img.astype(np.float32) / 255.0)
        views.append(TrainView(image=canvas, K=und.pinhole.K, c2w=f.c2w, mask=mask, kind="input"))
    return views


def _input_refs(scene: Scene, und: Undistorter, trainer: Trainer) -> RefViews:
    """Input frames on the output canvas, with the model's depth rendered at the input cameras."""
    views = make_train_views(scene, und)
    imgs = torch.from_numpy(np.stack([v.image for v in views]))
    Ks = torch.from_numpy(np.stack([v.K for v in views])).float()
    c2ws = torch.from_numpy(np.stack([v.c2w for v in views]))
    wc, hc = und.canvas_size
    depth = trainer.render(c2ws.float(), Ks, wc, hc)["depth"].detach().cpu().float()
    valid = torch.from_numpy(np.stack([v.mask for v in views]))
    return RefViews(imgs, Ks, c2ws, depth, valid)


def _canvas_Ks(path: PathFrames, und: Undistorter) -> np.ndarray:
    """[T, 3, 3] canvas intrinsics of the path frames (the path's K is the input lens' K)."""
    Ks = np.broadcast_to(und.pinhole.K, (len(path), 3, 3)).copy()
    return Ks


def train_stage(scene: Scene, cfg: RunConfig, device: torch.device, train_und: Undistorter,
                path: PathFrames, out: Path, timer: log.StageTimer, fixer: Fixer | None) -> Trainer:
    """Train the Gaussians, with progressive rounds of ``fixer`` (None: none) as trainer hooks;
    resumable."""
    if cfg.ckpt is not None:
        return Trainer.from_checkpoint(cfg.ckpt, device)
    ckpt_dir = out / "train"
    ckpt_dir.mkdir(exist_ok=True)
    ckpt = ckpt_dir / CHECKPOINT_NAME
    views = make_train_views(scene, train_und)
    if cfg.resume and ckpt.exists():
        trainer = Trainer.from_checkpoint(ckpt, device, run_dir=ckpt_dir)
        log.info(f"resuming training from {ckpt} at step {trainer.step}/{trainer.total_steps}")
    else:
        tcfg = dataclasses.replace(cfg.train, seed=cfg.seed)
        trainer = Trainer(tcfg, views, scene.points, scene.point_colors, device, run_dir=ckpt_dir)
    hooks = {}
    if fixer is not None and cfg.fixer.progressive and trainer.step < trainer.total_steps:
        targets = ~path.is_input
        updater = ProgressiveUpdater(fixer, InputViews.from_train_views(views), path.c2ws[targets],
                                     _canvas_Ks(path, train_und)[targets], cfg.progressive)
        for step, hook in updater.hooks(trainer.total_steps).items():
            if step < trainer.step:
                continue  # already done before the interruption (its views are in the checkpoint)

            def timed(tr, hook=hook):
                with timer("fixing"):
                    hook(tr)
            hooks[step] = timed
    if trainer.step < trainer.total_steps:
        trainer.train(hooks=hooks)
        save_ply(ckpt_dir / "point_cloud.ply", trainer.params)
    return trainer


def _keep_input_frames(frames: list[np.ndarray], path: PathFrames, scene: Scene) -> list[np.ndarray]:
    """Replace the frames at exact input times by the input images (resized to the output size)."""
    import cv2

    by_index = {f.index: f.image for f in scene.frames}
    out = list(frames)
    for t in np.flatnonzero(path.is_input):
        idx = int(round(path.source_index[t]))
        if idx in by_index:
            h, w = out[t].shape[:2]
            img = by_index[idx]
            out[t] = img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return out


def _versions() -> dict[str, str]:
    v = {"sparsevid": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
         "numpy": np.__version__}
    for mod in ("pycolmap", "gsplat", "cv2", "av"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception:  # optional / absent
            pass
    return v


def _machine(device: torch.device) -> dict[str, str]:
    m = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
         "cpu_count": str(torch.get_num_threads())}
    if device.type == "cuda":
        m["gpu"] = torch.cuda.get_device_name(device)
    return m


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def run_pipeline(cfg: RunConfig) -> RunResult:
    """Run every stage; see the module docstring for the output layout."""
    from sparsevid.eval.metrics import evaluate
    from sparsevid.video.cameras_json import write_cameras_json
    from sparsevid.video.io import write_frames, write_video
    from sparsevid.video.sheet import write_contact_sheet

    t_start = time.perf_counter()
    timer = log.StageTimer()
    out = Path(cfg.output)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        cfg = cpu_profile(cfg)
    prepare_output(out, cfg.resume, cfg.overwrite,
                   protect=(cfg.input if cfg.input is not None else demo_path(), cfg.poses_from, cfg.ckpt))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    with timer("loading"):
        scene = load_input(cfg)
    with timer("poses"):
        scene, pose_report = resolve_poses(scene, cfg, out)
    train_scale = cfg.train_scale if cfg.train_scale is not None else (1.0 if device.type == "cuda" else 0.5)
    log.info(f"{len(scene.frames)} input frames {scene.indices} at {scene.image_size[0]}x{scene.image_size[1]}, "
             f"{len(scene.gt_frames)} ground-truth frames; training at scale {train_scale:g} on {device}")
    train_und = Undistorter.for_camera(scene.camera, train_scale, cfg.undistort_mode)
    out_und = Undistorter.for_camera(scene.camera, cfg.scale, cfg.undistort_mode)
    path = CameraPath.from_scene(scene, cfg.path).frames(cfg.path, scene.fps)

    enhance = cfg.fixer.name != "none" and cfg.fixer.enhance
    progressive = cfg.fixer.name != "none" and cfg.fixer.progressive and cfg.ckpt is None
    fixer = build_fixer(cfg.fixer) if (enhance or progressive) else None  # built once (Difix loads weights)
    with timer("training"):
        trainer = train_stage(scene, cfg, device, train_und, path, out, timer, fixer)
    if "fixing" in timer.seconds:
        timer.seconds["training"] -= timer.seconds["fixing"]

    with timer("rendering"):
        rendered = render_path(trainer.render, path.c2ws, out_und, keep_canvas=enhance)
    frames = rendered.frames
    if enhance:
        with timer("enhance"):
            refs = _input_refs(scene, out_und, trainer)
            T = len(path)
            canvas_K = torch.from_numpy(_canvas_Ks(path, out_und)).float()
            valid = torch.from_numpy(out_und.mask.astype(np.float32))[None, ..., None].expand(T, -1, -1, -1)
            res = enhance_frames(fixer, torch.from_numpy(rendered.canvas_rgb), canvas_K,
                                 torch.from_numpy(path.c2ws), refs,
                                 depth=torch.from_numpy(rendered.canvas_depth),
                                 alpha=torch.from_numpy(rendered.canvas_alpha), valid=valid,
                                 times=torch.from_numpy(path.seconds), config=cfg.enhance)
            frames = distort_frames(res.images.cpu().numpy(), out_und)
    if cfg.keep_inputs:
        frames = _keep_input_frames(frames, path, scene)

    with timer("encoding"):
        write_frames(frames, out / "frames")
        if cfg.write_video:
            write_video(frames, out / "video.mp4", path.fps)
        write_cameras_json(out / "cameras.json", path, scene.camera, cfg.scale)
        step = max(1, len(frames) // 12)
        pick = list(range(0, len(frames), step))
        write_contact_sheet(out / "contact_sheet.png", [frames[i] for i in pick],
                            [f"t={float(path.times[i]):.3f}s" + (" (input)" if path.is_input[i] else "")
                             for i in pick])

    metrics = None
    if scene.gt_frames:
        with timer("eval"):
            gt = {f.index: f.image for f in scene.gt_frames + scene.frames}
            metrics = evaluate(frames, gt, scene.indices)
            atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
        log.info(f"held-out PSNR {metrics['heldout'].get('psnr', float('nan')):.2f} dB, "
                 f"SSIM {metrics['heldout'].get('ssim', float('nan')):.3f} over {metrics['heldout']['count']} frames")

    peak = {"cpu_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if device.type == "cuda":
        peak["gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    stage = {k: round(v, 3) for k, v in timer.seconds.items()}
    stage["total"] = round(time.perf_counter() - t_start, 3)
    run_info = {"config": _jsonable(cfg), "versions": _versions(), "machine": _machine(device),
                "device": str(device), "train_scale": train_scale, "stage_seconds": stage,
                "peak_memory": peak, "num_frames": len(frames), "fps": str(path.fps),
                "num_gaussians": int(trainer.num_gaussians), "poses": pose_report,
                "metrics": None if metrics is None else {k: metrics[k] for k in
                                                         ("heldout", "inputs", "flicker") if k in metrics}}
    atomic_write_text(out / "run.json", json.dumps(_jsonable(run_info), indent=1))
    log.info(f"done in {stage['total']:.1f} s -> {out}")
    return RunResult(out, frames, stage, metrics, peak, path.fps)
