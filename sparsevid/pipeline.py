"""The whole job: load -> poses -> undistort -> train (+ progressive fixes) -> camera path ->
render -> post-render enhancement (the 3D route) -> fusion with the 2D flow route -> frames / video
-> evaluation (see ARCHITECTURE.md for the stages and their artifacts). Where every output frame is an input
(``nothing_between``: a video given without ``--keyframes``), the inputs are the video, written at once.

``run_pipeline(RunConfig) -> RunResult`` is the one entry point; the CLI (``sparsevid run``) and
the benchmark harness are thin wrappers around it. An output folder holds everything a run makes:

    OUT/
      poses/          estimated poses (sparse/0, transforms.json, poses_report.json) when estimated
      train/          checkpoints (resumable) and point_cloud.ply
      frames/         frame_0000.png ... in the input camera model
      video.mp4       H.264 yuv420p at the exact output fps (+ a video input's sound under the frames, AAC)
      cameras.json    the camera path (nerfstudio convention); camera_path.json (nerfstudio viewer)
      contact_sheet.png
      quality.json    the leave-one-out quality estimate (fusion)
      metrics.json    when the input holds ground-truth frames
      run.json        config, versions, per-stage wall times, device, memory
      config.yaml     the whole RunConfig: ``sparsevid run --config OUT/config.yaml`` runs it again
      fingerprint.json, report.html
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from sparsevid import __version__, caches, log, outdir
from sparsevid.data.audio import DecodedAudio, sound_for_output
from sparsevid.data.camera import Camera
from sparsevid.data.load import demo_path, load_scene
from sparsevid.data.scene import Scene
from sparsevid.devices import resolve_device
from sparsevid.errors import PoseFailure, SparsevidError
from sparsevid.fuse.fusion import FuseConfig
from sparsevid.fuse.route3d import LeaveOneOut3D, input_refs, input_views, moved_fractions, path_frames_3d, rigid_check
from sparsevid.fuse.stage import FusedFrames, even_key_detail, fuse_frames
from sparsevid.fixer.base import Fixer, FixerConfig, build_fixer
from sparsevid.fixer.enhance import EnhanceConfig
from sparsevid.fixer.progressive import InputViews, ProgressiveConfig, ProgressiveUpdater
from sparsevid.gaussians.ply import export_gaussians
from sparsevid.gaussians.trainer import Trainer, TrainConfig, TrainView, find_checkpoint
from sparsevid.imaging import same_picture
from sparsevid.io_utils import atomic_write_text, jsonable, write_json
from sparsevid.path.camera_path import CameraPath, PathConfig, PathFrames, source_index_of
from sparsevid.poses.sfm import PoseConfig
from sparsevid.poses.undistort import Undistorter
from sparsevid.render.frames import PathRenderer, to_uint8
from sparsevid.eval.metrics import match_size
from sparsevid.video.io import VideoConfig

MARKER = outdir.RUN_MARKER


@dataclass
class RunConfig:
    """Everything ``sparsevid run`` does, with defaults that work.

    Attributes:
        input: a folder of frames, a video, a COLMAP or nerfstudio dataset; None = embedded demo.
        output: the run folder.
        keyframes: frame indices used as inputs (others become ground truth); None = all frames.
        fps: frame rate of the source video (a number, or exact as ``"30000/1001"``); None = read from the input
            (else 30).
        start, end: a video input's window (seconds "2.5" or frame numbers "f75"; see
            :func:`sparsevid.data.video.parse_window`); frame indices count from its first frame.
        device: "auto" | "cuda" | "cpu" for training and rendering.
        seed: makes runs repeatable on the same machine.
        scale: output resolution relative to the input frames.
        train_scale: training resolution relative to the input; None = 1.0 on CUDA, 0.5 on CPU.
        max_train_side: cap on the long side of the training images in pixels; None = 1280 on
            CUDA, 640 on CPU (applied to the default ``train_scale``; an explicit value here also
            caps an explicit ``train_scale``); 0 = no cap. See :func:`training_scale`.
        poses_from: a transforms.json / COLMAP dataset whose poses (matched by frame index) replace
            the pose stage (e.g. reference poses, for separating pose from rendering error).
        undistort_mode: "full" (padded canvas with validity mask, keeps the whole field of view)
            or "crop".
        resume: continue an interrupted run in ``output``.
        overwrite: replace ``output``.
        ckpt: render from this trainer checkpoint instead of training (``--skip-training``).
        write_video: also encode video.mp4 (frames are always written; its encoding: ``video``).
        write_report: write the self-contained OUT/report.html (see :mod:`sparsevid.report`).
        keep_checkpoint: keep the trainer's checkpoints (``OUT/train/checkpoint.safetensors``, and those of
            ``--fuse.loo-models``) once the run is done. They let ``--resume`` continue an interrupted run and
            ``--ckpt`` render a finished one again; they hold the optimizer's state beside the Gaussians, about
            1 KB per Gaussian (42 MB for the CPU run of the shared clip). False: deleted when the run is done, for
            batches of many clips; the Gaussians stay in ``train/point_cloud.ply`` and ``.splat``.
        keep_inputs: output frames at an input frame's exact time are that input frame itself
            (resized to the output size), not a re-render of it.
        even_key_detail: an output frame at an input's time is made no sharper than the output frames
            next to it (the least Gaussian blur that brings its variance of the Laplacian down to
            theirs, at most 1.5 px; :func:`sparsevid.fuse.stage.even_key_detail`). In-between frames
            carry less fine detail than the real frames they stand for (no prediction from inputs
            ~10 frames apart can carry the unpredictable finest band, BENCHMARKS.md "the sharpness
            ceiling"); unmatched, the video sharpens for one frame at every input and softens again
            (it pulses, as keyframe pumping in video coding). False: the inputs exactly as they are.
        cpu_max_gaussians: on the CPU backend, the cap on the Gaussian count, so a run takes minutes,
            not hours.
        cpu_pseudo_views: on the CPU backend, the cap on the pseudo views per progressive round
            (``progressive.max_views_per_round``), so a run takes minutes, not hours.
        cpu_coarse_fraction: on the CPU backend, the share of the training steps on views at half
            resolution (coarse-to-fine; ``train.coarse_fraction`` when that is set instead; 0 = none).
        cpu_learned_passes: on the CPU backend, the cap on ``fuse.learned_passes`` (each pass of the
            learned route costs ~12 s per 26 frames at 848x480 on 2 cores; BENCHMARKS.md).
        cpu_learned_adapt_steps: on the CPU backend, the cap on ``fuse.learned_adapt_steps`` (each step
            is a forward and backward pass of the network on 4 crops: ~5 s on 2 cores at 848x480).
        from_nerfstudio: the config.yml of a trained nerfstudio model (``ns-train``), rendered instead of training
            Gaussians; the input defaults to its dataset (see :mod:`sparsevid.nerfstudio.video`).
    """

    input: Path | None = None
    output: Path = Path("out/run")
    keyframes: list[int] | None = None
    fps: float | Fraction | str | None = None
    start: str | None = None
    end: str | None = None
    device: str = "auto"
    seed: int = 0
    scale: float = 1.0
    train_scale: float | None = None
    max_train_side: int | None = None
    poses_from: Path | None = None
    undistort_mode: str = "full"
    resume: bool = False
    overwrite: bool = False
    ckpt: Path | None = None
    write_video: bool = True
    write_report: bool = True
    keep_checkpoint: bool = True
    keep_inputs: bool = True
    even_key_detail: bool = True
    cpu_max_gaussians: int = 40_000
    cpu_pseudo_views: int = 8
    cpu_coarse_fraction: float = 0.5
    cpu_learned_passes: int = 1
    cpu_learned_adapt_steps: int = 0
    from_nerfstudio: Path | None = None
    pose: PoseConfig = field(default_factory=PoseConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    fixer: FixerConfig = field(default_factory=FixerConfig)
    progressive: ProgressiveConfig = field(default_factory=ProgressiveConfig)
    enhance: EnhanceConfig = field(default_factory=EnhanceConfig)
    path: PathConfig = field(default_factory=PathConfig)
    fuse: FuseConfig = field(default_factory=FuseConfig)
    video: VideoConfig = field(default_factory=VideoConfig)

    def __post_init__(self) -> None:
        # a `~` the shell left as it is (`--output=~/x`, a quoted path, a config file) means the home folder
        # everywhere: the run folder was split between ./~/x and the home folder's x
        for name in ("input", "output", "poses_from", "ckpt", "from_nerfstudio"):
            value = getattr(self, name)
            if isinstance(value, (str, Path)) and str(value).startswith("~"):
                setattr(self, name, Path(value).expanduser())


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        output_dir: the run folder.
        frames: T x [H, W, 3] uint8 output frames in the input lens.
        stage_seconds: wall time per stage (loading, poses, training, fixing, rendering, enhance,
            rigid check, fusing, encoding, eval).
        metrics: the evaluation (see :func:`sparsevid.eval.metrics.evaluate`) or None.
        peak_memory: {"cpu_rss_mb": ..., "gpu_mb": ...}.
        fps: the output frame rate.
        quality_estimate: the leave-one-out estimate of the held-out quality (see
            :mod:`sparsevid.fuse.loo`), or None with fewer than 3 inputs.
        route3d: the 3D route's output before fusion, or None (no 3D model; a finished run that `--resume` found).
    """

    output_dir: Path
    frames: list[np.ndarray]
    stage_seconds: dict[str, float]
    metrics: dict | None
    peak_memory: dict[str, float]
    fps: object = None
    quality_estimate: dict | None = None
    route3d: "Route3DOutput | None" = None


@dataclass
class Route3DOutput:
    """The 3D route's output before fusion (for the benchmarks: the 3D route alone, or other fusion
    settings, without training again).

    Attributes:
        positions: [T] source position of every output frame.
        keys: input index -> [H, W, 3] uint8 input at the output size.
        frames: [T] (image [H, W, 3] float32, weight [H, W] float32) in the input lens, or None (no 3D
            model: the 2D route alone).
        loo: interior input -> its rebuild (image, weight) from the other inputs, or None.
        loo_leak_free: the rebuilds came from models trained without the rebuilt input
            (``FuseConfig.loo_models``).
        loo_path: the same rebuilds rendered where the camera path through the other inputs puts
            them (``FuseConfig.loo_at_path``), or None.
        rigid: where the scene moved by itself between neighbouring inputs
            (:func:`~sparsevid.fuse.route3d.rigid_check`; ``FuseConfig.rigid_check``), or None.
        hold_outside: frames before the first input or after the last repeat it (``PathConfig.extrapolation``
            "hold"); else they carry it on (:func:`~sparsevid.fuse.stage.fuse_frames`).
    """

    positions: list
    keys: dict
    frames: list | None
    loo: dict | None
    loo_leak_free: bool = False
    loo_path: dict | None = None
    rigid: dict | None = None
    hold_outside: bool = False

    def fuse(self, cfg: FuseConfig, device: str | torch.device = "cpu", seed: int = 0) -> FusedFrames:
        """Every output frame from these frames and rebuilds with the fusion settings ``cfg``
        (:func:`~sparsevid.fuse.stage.fuse_frames`), without training again."""
        return fuse_frames(self.positions, self.keys, cfg, self.frames,
                           None if self.loo is None else (lambda k, refs: self.loo[k]), leak_free=self.loo_leak_free,
                           route3d_path=None if self.loo_path is None else (lambda k, refs: self.loo_path[k]),
                           device=device, seed=seed, rigid=self.rigid, hold_outside=self.hold_outside)


#: the named configurations (benchmarks, ``--config-name``): name -> (description, edit of a RunConfig)
NAMED_CONFIGS: dict[str, tuple[str, Callable[[RunConfig], None]]] = {
    "default": ("the defaults: 2D and 3D routes fused per pixel, calibrated by leave-one-out", lambda c: None),
    "route3d": ("the 3D route alone as before the fusion: Gaussians + progressive updates + post-render fixer",
                lambda c: (setattr(c.fuse, "mode", "3d"), setattr(c.fixer, "progressive", True))),
    "flow_only": ("the 2D route alone (optical flow between the neighbouring inputs), no 3D model",
                  lambda c: setattr(c.fuse, "mode", "2d")),
    "progressive": ("the default plus Difix3D progressive updates during training",
                    lambda c: setattr(c.fixer, "progressive", True)),
    "sharp": ("the default with the fine detail of the single most trusted candidate (detail power 8)",
              lambda c: setattr(c.fuse, "detail_power", 8.0)),
    "no_fixer": ("the 3D route without any fixer (plain renders), no fusion",
                 lambda c: (setattr(c.fixer, "name", "none"), setattr(c.fuse, "mode", "3d"))),
    "progressive_only": ("the 3D route with progressive updates but no post-render fixer, no fusion",
                         lambda c: (setattr(c.fixer, "enhance", False), setattr(c.fixer, "progressive", True),
                                    setattr(c.fuse, "mode", "3d"))),
    "enhance_only": ("the 3D route with the post-render fixer but no progressive updates, no fusion",
                     lambda c: (setattr(c.fixer, "progressive", False), setattr(c.fuse, "mode", "3d"))),
    "vanilla": ("the seed recipe: 30k steps of plain 3DGS, no fixer, no fusion",
                lambda c: (setattr(c.fixer, "name", "none"), setattr(c.fuse, "mode", "3d"),
                           setattr(c.train, "steps", 30000))),
}


def named_config(name: str, **overrides) -> RunConfig:
    """A :class:`RunConfig` of one of :data:`NAMED_CONFIGS`, with ``overrides`` of its fields
    (plus ``steps``: training steps, ``poses_from``: a poses dataset)."""
    if name not in NAMED_CONFIGS:
        raise SparsevidError(f"unknown configuration {name!r}", fix=f"use one of {', '.join(NAMED_CONFIGS)}")
    poses_from = overrides.pop("poses_from", None)
    steps = overrides.pop("steps", None)
    cfg = RunConfig(**{k: (Path(v) if k in ("input", "output") and v is not None else v)
                       for k, v in overrides.items()})
    cfg.poses_from = Path(poses_from) if poses_from else None
    NAMED_CONFIGS[name][1](cfg)
    if steps is not None:
        cfg.train.steps = int(steps)
    return cfg


# ---------------------------------------------------------------------------------------------
# stages
# ---------------------------------------------------------------------------------------------
def cpu_profile(cfg: RunConfig) -> RunConfig:
    """The CPU backend's budget: caps on Gaussians, pseudo views and the learned route's passes,
    coarse-to-fine training (see :class:`RunConfig`), and the 2D route's GMFlow candidates off unless asked for
    (``fuse.flow.gmflow`` "on": ~15 s a flow at 848x480 on 2 cores)."""
    train = dataclasses.replace(cfg.train, max_gaussians=min(cfg.train.max_gaussians, cfg.cpu_max_gaussians),
                                coarse_fraction=cfg.train.coarse_fraction or cfg.cpu_coarse_fraction)
    prog = dataclasses.replace(cfg.progressive, max_views_per_round=min(
        cfg.progressive.max_views_per_round or cfg.cpu_pseudo_views, cfg.cpu_pseudo_views))
    flow = dataclasses.replace(cfg.fuse.flow, gmflow="off" if cfg.fuse.flow.gmflow == "auto" else cfg.fuse.flow.gmflow)
    fuse = dataclasses.replace(cfg.fuse, learned_passes=min(cfg.fuse.learned_passes, cfg.cpu_learned_passes),
                               learned_adapt_steps=min(cfg.fuse.learned_adapt_steps, cfg.cpu_learned_adapt_steps),
                               flow=flow)
    return dataclasses.replace(cfg, train=train, progressive=prog, fuse=fuse)


#: default cap on the long side of the training images, in pixels, per device type
MAX_TRAIN_SIDE = {"cuda": 1280, "cpu": 640}


def training_scale(cfg: RunConfig, image_size: tuple[int, int], device: torch.device | str,
                   announce: bool = True) -> float:
    """The training resolution relative to the input frames of ``image_size`` (width, height).

    ``cfg.train_scale`` (None: 1.0 on CUDA, 0.5 on CPU), then the long side capped at
    ``cfg.max_train_side`` pixels (None: :data:`MAX_TRAIN_SIDE` of the device type, applied only to
    the default scale -- an explicit ``train_scale`` is taken as given; 0: no cap). A 4K input on
    the CPU thus trains at 640 px, not 1920. Logs one line when the cap changes the scale
    (``announce``)."""
    dev = torch.device(device).type
    scale = cfg.train_scale if cfg.train_scale is not None else (1.0 if dev == "cuda" else 0.5)
    if cfg.max_train_side is not None:
        cap = int(cfg.max_train_side)
    else:
        cap = MAX_TRAIN_SIDE.get(dev, MAX_TRAIN_SIDE["cpu"]) if cfg.train_scale is None else 0
    long_side = max(image_size)
    if cap > 0 and round(long_side * scale) > cap:
        capped = cap / long_side
        if announce:
            w, h = image_size
            log.info(f"training at {round(w * capped)}x{round(h * capped)} (scale {capped:.4g} instead of "
                     f"{scale:g}): the long side is capped at {cap} px on {dev} "
                     f"(--max-train-side N to change the cap, 0 for none)")
        return capped
    return scale


#: the run's whole configuration in OUT (see :func:`write_run_config`)
CONFIG_NAME = "config.yaml"

#: everything ``run`` writes under OUT; ``--overwrite`` removes these and nothing else
RUN_OUTPUTS = ("poses", "train", "frames", "video.mp4", "cameras.json", "camera_path.json", "contact_sheet.png",
               "metrics.json", "run.json", "quality.json", "fingerprint.json", "report.html", CONFIG_NAME)


def run_config_yaml(cfg: RunConfig, header: str) -> str:
    """``cfg`` as YAML that :func:`read_run_config` reads back (``resume``/``overwrite`` cleared: they say how a
    run starts, not what it is), under the comment ``header``."""
    from sparsevid.configfile import dump_yaml

    return dump_yaml(dataclasses.replace(cfg, resume=False, overwrite=False), header=header)


#: the settings of :class:`RunConfig` that are paths, recorded absolute (config.yaml, run.json)
PATH_KEYS = ("input", "output", "poses_from", "ckpt", "from_nerfstudio")


def with_absolute_paths(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its paths (:data:`PATH_KEYS`, and weight files given as local paths) absolute, so that a
    config.yaml or run.json read from another working folder names the same files (a relative input read
    another clip, or none)."""
    def absolute(p):
        return None if p is None else Path(p).expanduser().absolute()

    def local(p):  # difix_weights may be a hub id ("nvidia/difix"): only an existing path is made absolute
        return str(absolute(p)) if p is not None and Path(p).expanduser().exists() else p

    return dataclasses.replace(
        cfg, **{k: absolute(getattr(cfg, k)) for k in PATH_KEYS},
        fixer=dataclasses.replace(cfg.fixer, difix_weights=local(cfg.fixer.difix_weights)),
        fuse=dataclasses.replace(cfg.fuse, flow=dataclasses.replace(
            cfg.fuse.flow, gmflow_weights=local(cfg.fuse.flow.gmflow_weights))))


def write_run_config(cfg: RunConfig, out: Path) -> Path:
    """Write ``cfg`` (as given, before the CPU profile; its paths absolute) to ``OUT/config.yaml``, which
    ``sparsevid run --config`` reads back (:func:`read_run_config`) from any working folder."""
    path = Path(out).expanduser().absolute() / CONFIG_NAME
    text = run_config_yaml(with_absolute_paths(cfg),
                           f"sparsevid {__version__} run configuration. Run it again with\n"
                           f"  sparsevid run --config {path} -o NEW_OUT\n"
                           "(every key has a flag, --SECTION.KEY, e.g. --fuse.band-sigma 3; flags given on the\n"
                           "command line override the values here; paths are absolute)")
    return atomic_write_text(path, text)


def read_run_config(path: str | Path) -> RunConfig:
    """The :class:`RunConfig` in a YAML file written by :func:`write_run_config` (or by hand:
    missing settings keep their defaults). Raises SparsevidError (one line) on a bad file."""
    from sparsevid.configfile import load_yaml

    return load_yaml(RunConfig, path)


def prepare_output(out: Path, resume: bool, overwrite: bool, protect=(),
                   hold: contextlib.ExitStack | None = None) -> None:
    """Create ``out``; refuse an existing one unless ``resume`` or ``overwrite``; never remove
    anything in ``protect``; keep the folder's lock in ``hold`` (see :func:`sparsevid.outdir.prepare_output`)."""
    outdir.prepare_output(out, marker=MARKER, outputs=RUN_OUTPUTS, protect=protect, resume=resume,
                          overwrite=overwrite, hold=hold)


def load_input(cfg: RunConfig) -> Scene:
    """Check the settings and load the input, before the output folder is touched: input that does not load
    leaves the folder as it found it, even with ``--overwrite`` (which deleted the previous run first, then
    failed on a keyframe the input lacks), so the same command runs once the input is fixed."""
    from sparsevid.checks import check_run_config
    from sparsevid.data.video import parse_window

    check_run_config(cfg)
    src = cfg.input if cfg.input is not None else demo_path()
    if cfg.input is None:
        log.info(f"no input given: using the embedded demo clip ({src})")
    start, end = parse_window(cfg.start, cfg.end)
    scene = load_scene(src, keyframes=cfg.keyframes, fps=cfg.fps, start=start, end=end,
                       until_last_keyframe=cfg.path.num_frames is None and cfg.path.duration is None)
    cfg.path.frame_count(scene.fps, scene.indices[-1])  # a camera path that cannot be made fails before any work
    check_frame_size(scene.image_size, cfg.scale, src)
    return scene


def say_video_span(cfg: RunConfig, scene: Scene) -> None:
    """One line each (once the run goes ahead): inputs after the end of a video cut short by ``--path.num-frames`` /
    ``--path.duration``, and frames of the input after the last keyframe, which the video does not make."""
    n = cfg.path.frame_count(scene.fps, scene.indices[-1])
    if cfg.path.num_frames is not None and cfg.path.duration is not None:
        log.warn(f"--path.num-frames {cfg.path.num_frames} and --path.duration {cfg.path.duration:g} both set the "
                 "video's length: the number of frames does, the duration is left aside")
    last = float(Fraction(n - 1) / cfg.path.output_fps(scene.fps) * scene.fps)  # the last output frame's position
    after = [k for k in scene.indices if k > last + 1e-9]
    if after:
        log.warn(f"the video ends at source frame {last:g} ({n} frames): input{'s' if len(after) > 1 else ''} "
                 f"{', '.join(map(str, after))} {'are' if len(after) > 1 else 'is'} after it and not in it -> "
                 "leave --path.num-frames / --path.duration out for a video to the last input")
    later = [f.index for f in scene.gt_frames if f.index > last + 1e-9]
    if later and cfg.path.num_frames is None and cfg.path.duration is None:
        log.info(f"the video ends at the last input (frame {scene.indices[-1]}); the input's frames {later[0]}-"
                 f"{later[-1]} after it are not made (--path.num-frames "
                 f"{round(Fraction(later[-1] + 1) / scene.fps * cfg.path.output_fps(scene.fps))} makes them, carried on "
                 "from the last input)")


def output_sound(cfg: RunConfig, scene: Scene) -> tuple[DecodedAudio | None, dict | None]:
    """The sound ``video.mp4`` gets: the part of a video input's sound under the output frames, read with the input
    (the video stage only encodes it), and what run.json records of it; (None, None) without one (not a video, no
    sound, ``--video.no-audio``, ``--no-write-video``), or where ``--fps`` re-timed the frames (one line)."""
    if not (cfg.write_video and cfg.video.audio and scene.audio is not None):
        return None, None
    src = scene.audio
    if not src.matches(scene.fps):  # the frames are re-timed, their sound is not: the two would drift apart
        log.info(f"the sound of {src.path.name} is left out of video.mp4: --fps {float(scene.fps):g} re-times its "
                 f"frames ({float(src.fps):.3f} fps in the file)")
        return None, None
    times = cfg.path.frame_times(scene.fps, scene.indices[-1])
    clip = src.span(times[0], Fraction(len(times)) / cfg.path.output_fps(scene.fps))
    sound = sound_for_output(clip)
    if sound is None:
        return None, None
    a, b = clip.file_times
    return sound, {"source": str(src.path), "stream": src.stream, "from_s": round(a, 6), "to_s": round(b, 6),
                   "source_codec": src.description, "codec": f"aac {sound.rate} Hz {sound.layout}",
                   # the part of the span (seconds from its start) that holds the file's sound; None: all silence
                   "sound_span_s": None if sound.sound_span is None else [round(v, 6) for v in sound.sound_span]}


def nothing_between(cfg: RunConfig, scene: Scene, model=None) -> bool:
    """Whether every output frame is at an input's time and shows that input (``keep_inputs``), so that there is
    nothing to make: a video of which every frame is an input (``run clip.mp4`` without ``--keyframes``), or an
    output rate that only meets the inputs. One warning line says so (the caller then skips poses, training and
    fusion). Not where 3D work is given or asked for: poses (a posed dataset, ``--poses-from``), a model
    (``model``, ``--from-nerfstudio``, ``--ckpt``) or ``--fuse.mode 3d``: their cameras and Gaussians are outputs
    too."""
    if (not cfg.keep_inputs or cfg.fuse.mode == "3d" or model is not None or cfg.from_nerfstudio is not None
            or cfg.ckpt is not None or cfg.poses_from is not None or scene.has_poses):
        return False
    held = set(scene.indices)
    positions = cfg.path.frame_positions(scene.fps, scene.indices[-1])
    if not all(p in held for p in positions):
        return False
    first, last = scene.indices[0], scene.indices[-1]
    if cfg.keyframes is None:
        pick = sorted({round(first + k * (last - first) / 3) for k in range(4)})
        why = f"every frame of the input is an input ({len(scene.frames)} frames, {first}-{last})"
        fix = (f"pick a few inputs with --keyframes (e.g. --keyframes {','.join(map(str, pick))}) and sparsevid "
               "makes the frames between them")
    else:
        why = (f"every output frame ({len(positions)} at {float(cfg.path.output_fps(scene.fps)):g} fps) falls on an "
               "input's time")
        fix = "a higher --path.fps, or fewer --keyframes further apart, leaves frames to make"
    log.warn(f"{why}: there is nothing to make between them, so the video is the inputs as they are (no poses, "
             f"training or fusion) -> {fix}")
    return True


def record_run(cfg: RunConfig, given: RunConfig | None = None) -> None:
    """In the output folder (prepared): check (``--resume``) or write ``OUT/fingerprint.json``, and write
    ``OUT/config.yaml`` (of ``given``, the config before the device profile; None: ``cfg``)."""
    from sparsevid.checks import fixer_runs
    from sparsevid.fingerprint import check_or_write, run_fingerprint
    from sparsevid.fixer.base import fixer_weights

    src = cfg.input if cfg.input is not None else demo_path()
    fp = run_fingerprint(jsonable(with_absolute_paths(cfg)),
                         {"input": src, "poses_from": cfg.poses_from, "ckpt": cfg.ckpt,
                          "difix_weights": fixer_weights(cfg.fixer) if fixer_runs(cfg) else None}, output=cfg.output)
    check_or_write(cfg.output, fp, cfg.resume)
    write_run_config(given if given is not None else cfg, cfg.output)


#: the smallest output frame side: optical flow (OpenCV's DIS) needs 12 px, and SSIM's 7x7 window a few more
MIN_FRAME_SIDE = 16


def check_frame_size(size: tuple[int, int], scale: float, where: Path) -> None:
    """Refuse output frames (the input's ``size`` (W, H) times ``scale``) with a side under
    :data:`MIN_FRAME_SIDE`, before any work."""
    w, h = round(size[0] * scale), round(size[1] * scale)
    if min(w, h) < MIN_FRAME_SIDE:
        scaled = f" (--scale {scale:g} of {size[0]}x{size[1]})" if scale != 1 else ""
        raise SparsevidError(f"output frames of {w}x{h}{scaled} are too small: both sides need at least "
                             f"{MIN_FRAME_SIDE} px", path=where,
                             fix="give larger frames" + (" or a larger --scale" if scale != 1 else ""))


def resolve_poses(scene: Scene, cfg: RunConfig, out: Path) -> tuple[Scene, dict | None]:
    """Poses from ``poses_from``, from the input, from a resumed run, or estimated (pose stage)."""
    from sparsevid.poses.sfm import POSES_REPORT, estimate_poses, save_pose_outputs

    if cfg.poses_from is not None:
        # matched by the frames' file numbers (the input's may be renumbered from its first frame)
        ref = load_scene(cfg.poses_from, renumber=False).shifted(-scene.number_offset)
        by_index = {f.index: f.c2w for f in ref.frames + ref.gt_frames if f.c2w is not None}
        missing = [f.index for f in scene.frames if f.index not in by_index]
        if missing:
            raise SparsevidError(f"frames {missing} have no pose in the given poses", path=cfg.poses_from,
                                 fix="give poses that cover every input frame")
        c2ws = np.stack([by_index[f.index] for f in scene.frames])
        camera = camera_for_frames(ref.camera, scene.image_size, cfg.poses_from)
        return scene.with_poses(camera, c2ws, ref.points, ref.point_colors), None
    if scene.has_poses:
        return scene, None
    pose_dir = out / "poses"
    if cfg.resume and (pose_dir / "transforms.json").exists() and not (pose_dir / POSES_REPORT).exists():
        log.info(f"resuming: the pose stage in {pose_dir} did not finish (no {POSES_REPORT}): estimating again")
    elif cfg.resume and (pose_dir / "transforms.json").exists():
        log.info(f"resuming: reusing the poses in {pose_dir}")
        scene, _ = resolve_poses(scene, dataclasses.replace(cfg, poses_from=pose_dir / "transforms.json"), out)
        from sparsevid.runinfo import previous_poses

        report = previous_poses(out)  # the report of the segment that estimated them
        for line in (report or {}).get("warnings") or []:  # said again, so that run.json keeps them after a
            log.warn(line)                                  # kill, which records no segment
        return scene, report
    colmap_log: list[str] = []
    pose_cfg = dataclasses.replace(cfg.pose, seed=cfg.seed)
    given = {f.index: f.c2w for f in scene.frames if f.c2w is not None}
    if scene.camera is not None:  # a posed dataset whose model leaves out some of the chosen inputs
        unposed = [f.index for f in scene.frames if f.c2w is None]
        camera = scene.camera.resized(*scene.image_size)
        keep = pose_cfg.focal is None
        if keep:
            pose_cfg = dataclasses.replace(pose_cfg, focal=(camera.fx + camera.fy) / 2)
        log.warn(f"inputs {unposed} have no pose in the {scene.source} model: the pose stage estimates every input's "
                 "pose" + (f", with the model's focal length ({pose_cfg.focal:.1f} px) held fixed" if keep else "")
                 + (f", and moves them into the model's world through the {len(given)} inputs it posed"
                    if len(given) >= 2 else " (in a world of its own: the model poses fewer than two of them)"))
    with log.recording_warnings() as said:
        scene, report = estimate_poses(scene, pose_cfg, colmap_log, work_dir=out)
    if len(given) >= 2 and scene.has_poses:
        scene, report = _into_given_world(scene, given, report)
    report = {**report, "warnings": list(said)}  # the pose stage's warnings, said again when a resume reuses it
    save_pose_outputs(scene, report, pose_dir, "".join(colmap_log))
    return scene, report


def _into_given_world(scene: Scene, given: dict[int, np.ndarray], report: dict) -> tuple[Scene, dict]:
    """The estimated ``scene`` moved by the similarity that best takes its cameras of the inputs a dataset posed
    (``given``: index -> c2w) onto those poses, so that the video, ``cameras.json`` and the exports are in the
    dataset's world; ``report`` gains ``aligned_to_given`` (the inputs, the scale, the centres' rms residual in the
    dataset's units and the largest rotation residual in degrees)."""
    from sparsevid.geometry import rotation_angle_deg
    from sparsevid.poses.align import apply_similarity, similarity_from_poses

    idx = [k for k, f in enumerate(scene.frames) if f.index in given]
    ours = scene.c2ws()
    theirs = np.stack([given[scene.frames[k].index] for k in idx])
    s, r, t = similarity_from_poses(ours[idx], theirs)
    moved = apply_similarity(ours, s, r, t)
    points = None if scene.points is None else s * np.asarray(scene.points, np.float64) @ r.T + t
    rms = float(np.sqrt(np.mean(np.sum((moved[idx, :3, 3] - theirs[:, :3, 3]) ** 2, axis=1))))
    turn = float(np.max(rotation_angle_deg(moved[idx, :3, :3], theirs[:, :3, :3])))
    log.info(f"poses moved into the model's world through inputs {[scene.frames[k].index for k in idx]} (scale "
             f"{s:.4g}; residual {rms:.3g} in its units, {turn:.2f} degrees at most)")
    scene = scene.with_poses(scene.camera, moved, points, scene.point_colors, scene.point_tracks)
    return scene, {**report, "aligned_to_given": {"inputs": [scene.frames[k].index for k in idx], "scale": s,
                                                  "rms_centre": rms, "max_rotation_deg": turn}}


def camera_for_frames(camera: Camera, size: tuple[int, int], source: Path) -> Camera:
    """``camera`` (of poses given with ``--poses-from`` ``source``) for input frames of ``size`` (w, h): as it is at
    that size; resized when the frames are the same picture at another resolution
    (:func:`~sparsevid.imaging.same_picture`); else a one-line error, before any training.

    Raises:
        SparsevidError: the camera is for frames of another shape (another crop, or turned on its side).
    """
    w, h = size
    if (camera.width, camera.height) == (w, h):
        return camera
    if same_picture((camera.width, camera.height), (w, h)):
        log.info(f"the camera of the given poses ({camera.width}x{camera.height}) resized to the input's {w}x{h}")
        return camera.resized(w, h)
    raise SparsevidError(f"the given poses are for {camera.width}x{camera.height} frames, the input's are {w}x{h} "
                         "(another shape, not a resize)", path=source,
                         fix="give poses made from these frames (e.g. OUT/poses/transforms.json of a run on this "
                             "input), or leave out --poses-from to estimate them")


def _canvas_Ks(path: PathFrames, und: Undistorter) -> np.ndarray:
    """[T, 3, 3] canvas intrinsics of the path frames (the path's K is the input lens' K)."""
    Ks = np.broadcast_to(und.pinhole.K, (len(path), 3, 3)).copy()
    return Ks


def progressive_updater(views: list[TrainView], path: PathFrames, und: Undistorter, fixer: Fixer,
                        config: ProgressiveConfig) -> ProgressiveUpdater:
    """The progressive updater of a run: it plans from the input ``views`` (on the canvas of ``und``) toward the
    path cameras at the times that are not inputs. (Also used by the nerfstudio methods, see
    :mod:`sparsevid.nerfstudio.pipeline`.)"""
    targets = ~path.is_input
    return ProgressiveUpdater(fixer, InputViews.from_train_views(views), path.c2ws[targets],
                              _canvas_Ks(path, und)[targets], config)


def check_checkpoint_cameras(trainer: Trainer, scene: Scene, path: Path) -> None:
    """Refuse a ``--ckpt`` trained on other inputs or in another world than this run's posed ``scene``: its input
    views' cameras must be the scene's (a checkpoint of another clip rendered its Gaussians into this one's video;
    poses estimated again, without the checkpoint's ``--poses-from``, are another world).

    Raises:
        SparsevidError: another number of inputs, or cameras that differ by more than 1e-4 of the path's extent.
    """
    views = [v for v in trainer.views if v.kind == "input"]
    ours = scene.c2ws()
    extent = max(float(np.ptp(ours[:, :3, 3], axis=0).max()), 1e-6)
    same = len(views) == len(ours) and np.allclose(np.stack([v.c2w for v in views]), ours, atol=1e-4 * extent,
                                                   rtol=0)
    if not same:
        raise SparsevidError(f"the checkpoint was trained on {len(views)} input views whose cameras are not this "
                             f"run's {len(ours)} inputs (another clip, other key frames or poses in another world)",
                             path=path, fix="give the --poses-from and --keyframes its training used (a run's "
                                            "OUT/poses/transforms.json), or drop --skip-training to train again")


def train_stage(scene: Scene, cfg: RunConfig, device: torch.device, train_und: Undistorter,
                path: PathFrames, out: Path, timer: log.StageTimer, fixer: Fixer | None,
                rounds: list[dict] | None = None) -> Trainer:
    """Train the Gaussians, with progressive rounds of ``fixer`` (None: none) as trainer hooks;
    resumable. ``rounds``: where what each progressive round of this segment did is listed (round, step,
    pseudo views, mean confidence)."""
    if cfg.ckpt is not None:
        trainer = Trainer.from_checkpoint(cfg.ckpt, device)
        check_checkpoint_cameras(trainer, scene, cfg.ckpt)
        return trainer
    ckpt_dir = out / "train"
    ckpt_dir.mkdir(exist_ok=True)
    views = input_views(scene, train_und)
    ckpt = find_checkpoint(ckpt_dir) if cfg.resume else None  # an old pickled one: a one-line error
    if cfg.resume and ckpt is None:
        log.info(f"resuming: no training checkpoint in {ckpt_dir} (none was saved, or --no-keep-checkpoint deleted it), "
                 "training starts from step 0")
    if ckpt is not None:
        trainer = Trainer.from_checkpoint(ckpt, device, run_dir=ckpt_dir)
        log.info(f"resuming training from {ckpt} at step {trainer.step}/{trainer.total_steps}")
    else:
        tcfg = dataclasses.replace(cfg.train, seed=cfg.seed)
        trainer = Trainer(tcfg, views, scene.points, scene.point_colors, device, run_dir=ckpt_dir)
    hooks = {}
    updater = None
    if fixer is not None and cfg.fixer.progressive and trainer.step < trainer.total_steps:
        updater = progressive_updater(views, path, train_und, fixer, cfg.progressive)
        for step, hook in updater.hooks(trainer.total_steps).items():
            if step < trainer.step:
                continue  # already done before the interruption (its views are in the checkpoint)

            def timed(tr, hook=hook):
                with timer("fixing"):
                    hook(tr)
            hooks[step] = timed
    if trainer.step < trainer.total_steps:
        t0, fixing0 = time.perf_counter(), timer.seconds.get("fixing", 0.0)
        try:
            trainer.train(hooks=hooks)
        except KeyboardInterrupt as e:  # Ctrl-C / SIGTERM: the trainer saved a checkpoint at its step (not after
            saved = getattr(e, "checkpoint", None) is not None  # a second Ctrl-C); run_pipeline records it
            e.training = (trainer.step if saved else None, trainer.total_steps,
                          time.perf_counter() - t0 - (timer.seconds.get("fixing", 0.0) - fixing0))
            e.rounds = _round_records(updater) if saved else []  # the rounds the checkpoint holds
            raise
        export_gaussians(trainer.params, ckpt_dir)
    elif not all((ckpt_dir / f"point_cloud{suffix}").is_file() for suffix in (".ply", ".splat")):
        # a run stopped between its last checkpoint and the exports: the checkpoint says "trained", the files
        # are not there (the viewer and the user's other tools read them)
        export_gaussians(trainer.params, ckpt_dir)
    if rounds is not None and updater is not None:  # what each progressive round did, for run.json
        rounds.extend(_round_records(updater))
    return trainer


def saved_work(out: Path) -> list[str]:
    """What an interrupted run in ``out`` saved that ``--resume`` takes up: "the poses" (a finished pose stage) and
    "the training's checkpoint"."""
    from sparsevid.gaussians.checkpoint import CHECKPOINT_NAME
    from sparsevid.poses.sfm import POSES_REPORT

    out = Path(out)
    return [name for name, p in (("the poses", out / "poses" / POSES_REPORT),
                                 ("the training's checkpoint", out / "train" / CHECKPOINT_NAME)) if p.is_file()]


def drop_checkpoints(train_dir: Path) -> None:
    """Delete the trainer's checkpoints of a finished run (``--no-keep-checkpoint``): ``train_dir``'s and those of
    its leave-one-out models (``held_out_<k>/``), with one line saying how much space that gave back. The exports
    (``point_cloud.ply``, ``.splat``) stay."""
    from sparsevid.gaussians.checkpoint import CHECKPOINT_NAME

    files = [p for p in [train_dir / CHECKPOINT_NAME, *sorted(train_dir.glob(f"held_out_*/{CHECKPOINT_NAME}"))]
             if p.is_file()]
    if not files:
        return
    freed = 0
    for p in files:
        size = p.stat().st_size
        p.unlink()
        freed += size
    log.info(f"deleted the trainer's checkpoint{'s' if len(files) > 1 else ''} ({freed / 2**20:.0f} MB; "
             "--no-keep-checkpoint): the Gaussians stay in train/point_cloud.ply and .splat")


def finished_run(cfg: RunConfig, scene: Scene) -> RunResult | None:
    """The result already in ``cfg.output`` when ``--resume`` finds its run finished (``run.json`` "done", or
    "reporting": stopped while writing the report) with every output it made but the video and the report
    (:func:`_finished_outputs`); None otherwise (the run goes on, redoing what is missing).

    Nothing is made again. What these settings write and the folder lacks is written from the frames on disk:
    ``video.mp4`` (deleted: with the input's sound) and ``report.html`` (``--write-report`` now, or a stop while
    writing it), their seconds added to ``run.json``; ``--no-keep-checkpoint`` deletes the checkpoints; one line
    says so. The stage times are the run's own. The result's ``route3d`` is None (the 3D route's frames before
    fusion are not kept)."""
    from sparsevid.data.images import read_image
    from sparsevid.runinfo import read_json_object, read_run_json

    out = Path(cfg.output)
    info = read_run_json(out)
    if info is None or info.get("status") not in ("done", "reporting"):
        return None
    names = _finished_outputs(out, info, cfg)
    if names is None:
        return None
    try:
        frames = [read_image(p) for p in names]
    except SparsevidError:  # a damaged frame: made again with the others
        return None
    fps = Fraction(info["fps"])
    stage = info["stage_seconds"] = dict(info.get("stage_seconds") or {})
    wrote = []
    try:
        if cfg.write_video and not (out / "video.mp4").is_file():
            from sparsevid.video.io import write_video

            t0 = time.perf_counter()
            sound, info["sound"] = output_sound(cfg, scene)
            write_video(frames, out / "video.mp4", fps, cfg.video.crf, cfg.video.preset, audio=sound)
            _add_seconds(info, "encoding", time.perf_counter() - t0)
            wrote.append("video.mp4")
        report = cfg.write_report and (info["status"] == "reporting" or wrote or not (out / "report.html").is_file())
        if wrote:  # the report reads run.json: its times with the video's
            write_json(out / "run.json", info)
        if report:
            t0 = time.perf_counter()
            _write_report(out, scene)
            _add_seconds(info, "report", time.perf_counter() - t0)
            wrote.append("report.html")
    except KeyboardInterrupt as e:  # run.json still says "done": the next --resume writes them again
        e.again = f"with --resume: the run is finished, it writes only its missing {' and '.join(wrote) or 'files'}"
        raise
    if info["status"] == "reporting" or wrote:
        info["status"] = "done"
        if info.get("segments"):
            info["segments"][-1]["status"] = "done"
        write_json(out / "run.json", info)
    if not cfg.keep_checkpoint:
        drop_checkpoints(out / "train")
    quality = info.get("quality_estimate") if isinstance(info.get("quality_estimate"), dict) else None
    log.info(f"{out} holds a finished run of these settings: nothing to resume"
             + (f" (wrote its missing {' and '.join(wrote)} from its frames)" if wrote else "")
             + f" -> --overwrite makes it again{_estimate_text(quality)}")
    return RunResult(out, frames, stage, read_json_object(out / "metrics.json"), dict(info.get("peak_memory") or {}),
                     fps, quality)


def _write_report(out: Path, scene: Scene) -> None:
    """``OUT/report.html``, scored against the scene's ground-truth frames (inputs included) where it has any."""
    from sparsevid.report import write_report

    write_report(out, gt_frames={f.index: f.image for f in scene.gt_frames + scene.frames}
                 if scene.gt_frames else None)


def _estimate_text(quality: dict | None) -> str:
    """The leave-one-out estimate as the run's last line ends with it ("" without one)."""
    if quality is None or quality.get("psnr_heldout") is None:
        return ""
    return (f"; estimated held-out PSNR {quality['psnr_heldout']:.2f} dB, SSIM {quality['ssim_heldout']:.3f} "
            "(leave-one-out)")


def _finished_outputs(out: Path, info: dict, cfg: RunConfig) -> list[Path] | None:
    """The frame files of a finished run in ``out`` (``run.json`` ``info``) when it holds every output the run made
    but ``video.mp4`` and ``report.html`` (written again from the frames): its ``num_frames`` frames, the camera
    path where a 3D model made the video (``cameras.json``, ``camera_path.json``), ``contact_sheet.png``,
    ``quality.json`` and ``metrics.json`` where run.json has a quality estimate and scores, and the trained
    Gaussians' ``.ply`` and ``.splat``; None where one is missing or run.json lacks what says so."""
    n, fps = info.get("num_frames"), info.get("fps")
    if not isinstance(n, int) or n <= 0 or not isinstance(fps, str):
        return None
    try:
        Fraction(fps)
    except (ValueError, ZeroDivisionError):
        return None
    names = [out / "frames" / f"frame_{k:04d}.png" for k in range(n)]
    need = [out / "contact_sheet.png"]
    if info.get("quality_estimate") is not None:
        need.append(out / "quality.json")
    if info.get("metrics") is not None:
        need.append(out / "metrics.json")
    if info.get("train_scale") is not None:  # a 3D model rendered the camera path
        need += [out / "cameras.json", out / "camera_path.json"]
    if info.get("training_steps") is not None and info.get("model") is None and cfg.ckpt is None:
        need += [out / "train" / "point_cloud.ply", out / "train" / "point_cloud.splat"]
    return names if all(p.is_file() for p in names + need) else None


def _round_records(updater: ProgressiveUpdater | None) -> list[dict]:
    """What each progressive round of ``updater`` did, as run.json lists it."""
    return [{"round": r.round + 1, "step": r.step, "views": r.num_views, "mean_confidence": round(r.mean_confidence, 4)}
            for r in (updater.history if updater is not None else [])]


def refined_scene(scene: Scene, c2ws: np.ndarray) -> tuple[Scene, dict]:
    """``scene`` with its input cameras replaced by the trainer's refined ones (``TrainConfig.pose_lr``), and
    how far they moved (degrees; centre distance as a fraction of the input cameras' span), logged in one line."""
    from sparsevid.geometry import rotation_angle_deg

    old = scene.c2ws()
    span = float(np.linalg.norm(old[:, :3, 3].max(0) - old[:, :3, 3].min(0))) or 1.0
    moved = {"rotation_deg": [round(float(x), 4) for x in rotation_angle_deg(old, c2ws)],
             "translation_of_span": [round(float(np.linalg.norm(a[:3, 3] - b[:3, 3]) / span), 5)
                                     for a, b in zip(old, c2ws)]}
    log.info(f"input cameras refined with the Gaussians: turned up to {max(moved['rotation_deg']):.2f} deg, moved up "
             f"to {100 * max(moved['translation_of_span']):.1f} % of their span (--train.pose-lr 0 keeps them)")
    return scene.with_poses(scene.camera, c2ws, scene.points, scene.point_colors, scene.point_tracks), moved


def held_out_rebuilds(scene: Scene, cfg: RunConfig, device: torch.device, train_und: Undistorter,
                      out_und: Undistorter, out: Path, fixer: Fixer | None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The 3D route's leak-free leave-one-out (``FuseConfig.loo_models``): for every interior input
    ``k``, Gaussians trained with the run's settings and seed on the *other* inputs only, rendered at
    ``k``'s camera and fixed from the other inputs with that model's depth (as
    :class:`~sparsevid.fuse.route3d.LeaveOneOut3D` does with the run's own model). Each model
    checkpoints in ``OUT/train/held_out_<k>/`` and a ``--resume`` continues it. (The SfM points
    that seed every model were triangulated from all the inputs; they are sparse and carry no
    colour detail of ``k``.)

    Returns:
        interior input index -> (image [H, W, 3] float32, weight [H, W] float32) in the input lens.
    """
    views = input_views(scene, train_und)
    order = [f.index for f in scene.frames]
    rebuilds = {}
    for k in order[1:-1]:
        others = [q for q in order if q != k]
        run_dir = out / "train" / f"held_out_{k}"
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt = find_checkpoint(run_dir) if cfg.resume else None
        if ckpt is not None:
            trainer = Trainer.from_checkpoint(ckpt, device, run_dir=run_dir)
        else:
            trainer = Trainer(dataclasses.replace(cfg.train, seed=cfg.seed), [views[order.index(q)] for q in others],
                              scene.points, scene.point_colors, device, run_dir=run_dir)
        if trainer.step < trainer.total_steps:
            log.info(f"leave-one-out: training on inputs {others} to check the 3D route on input {k}")
            trainer.train()
        refs = input_refs(scene, out_und, trainer.render) if fixer is not None else None
        rebuilds[k] = LeaveOneOut3D(scene, out_und, trainer.render, refs, fixer)(k, others)
        del trainer
    return rebuilds


@dataclass
class Model3D:
    """What the 3D stages (:func:`route3d_stage`) give the fusion and the run's record.

    Attributes:
        scene: the scene, its input cameras refined with the Gaussians where ``--train.pose-lr`` is on.
        trainer: what renders (``render(c2ws, Ks, width, height)``): the trained Gaussians, or the given model.
        path: the camera path (one camera per output frame).
        out_und: the output frames' undistorter (input lens <-> render canvas).
        train_scale: the training frames' scale of the input size.
        frames: the 3D route's frames, as :class:`Route3DOutput` ``frames``.
        loo, loo_leak_free, loo_path, rigid: as :class:`Route3DOutput`'s.
        pose_refinement: what refining the input cameras did (run.json), or None.
        fixer: the fixer's part in the 3D route (run.json ``fixer``).
    """

    scene: Scene
    trainer: Any
    path: PathFrames
    out_und: Undistorter
    train_scale: float
    frames: list
    loo: dict | None = None
    loo_leak_free: bool = False
    loo_path: dict | None = None
    rigid: dict | None = None
    pose_refinement: dict | None = None
    fixer: dict | None = None


def route3d_stage(scene: Scene, cfg: RunConfig, device: torch.device, out: Path, model, timer: log.StageTimer,
                  rounds: list[dict]) -> Model3D:
    """The 3D route of a posed ``scene``: train the Gaussians (resumable; ``model``: a trained model renders
    instead), render the camera path, enhance it with the fixer, and rebuild each interior input from the others
    (the leave-one-out's 3D candidates) and check where the scene moved by itself. ``rounds`` gets what each
    progressive round did (run.json lists the rounds an interruption leaves in the checkpoint)."""
    loo3d, loo3d_path, rigid, pose_refinement = None, None, None, None
    train_scale = training_scale(cfg, scene.image_size, device, announce=model is None)
    log.info(f"{len(scene.frames)} input frames {scene.indices} at {scene.image_size[0]}x{scene.image_size[1]}, "
             f"{len(scene.gt_frames)} ground-truth frames; " +
             (f"training at scale {train_scale:g} on {device}" if model is None and cfg.ckpt is None else
              f"rendering the given {'model' if model is not None else 'checkpoint'} at scale {cfg.scale:g}"))
    train_und = Undistorter.for_camera(scene.camera, train_scale, cfg.undistort_mode)
    out_und = Undistorter.for_camera(scene.camera, cfg.scale, cfg.undistort_mode)
    capped = out_und.capped_warning or train_und.capped_warning
    if capped:
        log.warn(capped)
    path = CameraPath.from_scene(scene, cfg.path).frames(cfg.path, scene.fps)
    enhance = cfg.fixer.name != "none" and cfg.fixer.enhance
    progressive = cfg.fixer.name != "none" and cfg.fixer.progressive and cfg.ckpt is None and model is None
    fixer = build_fixer(cfg.fixer, device) if (enhance or progressive) else None  # built once (Difix loads weights)
    fixer_record = {"name": cfg.fixer.name, "enhance": enhance, "progressive": progressive,
                    "progressive_rounds": rounds if progressive else None}
    if fixer is not None and getattr(fixer, "weights_source", None):  # which weights (a cache snapshot: its
        fixer_record["weights"] = fixer.weights_source                # revision), and the references they got
        fixer_record["reference_views"] = fixer.num_refs if fixer.uses_refs else 0
    # leak-free leave-one-out needs models trained like this one: not for a given model or checkpoint
    loo_leak_free = (cfg.fuse.mode != "3d" and cfg.fuse.loo_models and model is None and cfg.ckpt is None
                     and len(scene.frames) >= 3)
    if device.type == "cuda":
        if not caches.gsplat_built():
            log.info("building gsplat's CUDA extension: once per machine, ~1-2 min "
                     "(`sparsevid cache --build`, run by `make setup`, does it ahead of time)")
        with timer("cuda kernels"):
            caches.load_gsplat_kernels()
    if model is not None:
        trainer = model  # a trained model renders in place of the Gaussians
    else:
        with timer("training"):
            trainer = train_stage(scene, cfg, device, train_und, path, out, timer, fixer, rounds)
    outdir.check_still_there(out)
    if "fixing" in timer.seconds:
        timer.seconds["training"] -= timer.seconds["fixing"]
    if getattr(trainer, "pose_deltas", None) is not None:  # cameras refined with the Gaussians
        scene, pose_refinement = refined_scene(scene, trainer.refined_c2ws())
        path = CameraPath.from_scene(scene, cfg.path).frames(cfg.path, scene.fps)
    # the path is rendered a chunk at a time as the enhancement takes it (not every canvas at once: 20 bytes a canvas
    # pixel and frame); "rendering" times the render calls, "enhance" the rest
    renderer = PathRenderer(trainer.render, path.c2ws, out_und, timer=timer)
    timer.seconds.setdefault("rendering", 0.0)
    rendering_before = timer.seconds["rendering"]
    try:
        with timer("enhance"):
            refs = input_refs(scene, out_und, trainer.render) if enhance else None
            frames3d = path_frames_3d(renderer, path, out_und, refs, fixer if enhance else None, cfg.enhance)
            # the 3D route's rebuild of every interior input from the others (without the fixer: its
            # plain render there), so the leave-one-out check weighs the 3D route in the fusion
            if cfg.fuse.mode != "3d" and not loo_leak_free:
                loo3d = LeaveOneOut3D(scene, out_und, trainer.render, refs, fixer if enhance else None
                                      ).held_out(scene.indices[1:-1])
                if cfg.fuse.loo_at_path or cfg.fuse.path_check_db is not None:  # and where the path puts them
                    loo3d_path = LeaveOneOut3D(scene, out_und, trainer.render, refs, fixer if enhance else None,
                                               at_path=True).held_out(scene.indices[1:-1])
    finally:  # also when stopped here: run.json's segment counts the render calls once
        timer.seconds["enhance"] = timer.seconds.get("enhance", 0.0) - (timer.seconds["rendering"] - rendering_before)
    if cfg.fuse.mode != "3d" and cfg.fuse.rigid_check and len(scene.frames) >= 3:  # feeds the leave-one-out
        with timer("rigid check"):
            rigid = rigid_check(refs if refs is not None else input_refs(scene, out_und, trainer.render), out_und,
                                scene.indices, cfg.fuse.rigid_tolerance,
                                dataclasses.replace(cfg.fuse.flow, mirrors=1), cfg.fuse.rigid_photo,
                                cfg.fuse.rigid_depth_factor)
    if loo_leak_free:
        with timer("leave-one-out"):
            loo3d = held_out_rebuilds(scene, cfg, device, train_und, out_und, out, fixer if enhance else None)
    return Model3D(scene, trainer, path, out_und, train_scale, frames3d, loo3d, loo_leak_free, loo3d_path, rigid,
                   pose_refinement, fixer_record)


def fuse_stage(route3d: Route3DOutput, cfg: RunConfig, device: torch.device, num_inputs: int
               ) -> tuple[list[np.ndarray], dict | None]:
    """Every output frame (uint8, in the input lens) and the leave-one-out's quality estimate (None: ``--fuse.mode
    3d``, or fewer than three inputs): the routes of ``route3d`` fused per pixel (:meth:`Route3DOutput.fuse`), with
    a line on each thing the fusion did that the user may want to turn off; ``--fuse.mode 3d``: the 3D route's
    frames as they are."""
    frames3d, rigid = route3d.frames, route3d.rigid
    if cfg.fuse.mode == "3d" and frames3d is not None:
        log.info("no quality estimate with --fuse.mode 3d: the leave-one-out check weighs the fused routes")
        return [to_uint8(img) for img, _ in frames3d], None
    fused = route3d.fuse(cfg.fuse, device, cfg.seed)
    frames, quality = fused.frames, fused.quality_estimate
    used3d = frames3d is not None and "3d" in fused.routes
    if frames3d is not None and not used3d:
        log.warn("the 3D model is not in the video: the leave-one-out check rebuilt the inputs better "
                 "without it, so the 2D routes (optical flow) make every in-between frame "
                 "(--fuse.mode 3d uses the 3D route alone; --fuse.mode 2d skips poses and training)")
    if quality is None:
        log.info("no quality estimate: it rebuilds an input from the inputs on both sides, so it needs three "
                 "inputs or more" if num_inputs < 3 else "no quality estimate: no input was rebuilt")
    if quality is not None:
        quality["route"] = "fused 2D + 3D" if used3d else "2D (optical flow)"
        quality["gain_3d"] = None if fused.gain_3d is None or not used3d else round(fused.gain_3d, 3)
        quality["routes_used"] = fused.routes
        quality["fixed_in_image"] = {"fraction": fused.fixed_fraction,
                                     "textured_fraction": fused.fixed_textured_fraction}
        if rigid is not None and cfg.fuse.rigid_check and used3d:
            quality["moved_by_itself"] = moved_fractions(rigid)
            log.info("the scene moved by itself (the 3D model's geometry cannot explain it) in "
                     + ", ".join(f"{100 * v:.0f} %" for v in quality["moved_by_itself"].values())
                     + " of the frame between the neighbouring inputs: the 3D route gives way there where "
                       "it disagrees with the 2D routes (--fuse.no-rigid-check turns this off)")
    if cfg.fuse.temporal.sigma is not None:
        log.info(f"in-between frames made consistent over time: their content coarser than "
                 f"{cfg.fuse.temporal.sigma:g} px averaged with {cfg.fuse.temporal.reach} output frames on each "
                 f"side, moved onto them by optical flow (--fuse.temporal.sigma none turns this off)")
    if fused.fixed_fraction >= 5e-4:
        log.info(f"{100 * fused.fixed_fraction:.1f} % of the frame is the same in every input (an overlay, "
                 f"a bonnet, or a plain area): no 3D route there, "
                 f"{100 * fused.fixed_textured_fraction:.1f} % taken from the inputs as they are "
                 f"(--fuse.fixed.no-enabled turns this off)")
    return frames, quality


def write_outputs(out: Path, cfg: RunConfig, frames: list[np.ndarray], out_fps: Fraction, times: list[Fraction],
                  is_input: np.ndarray, quality: dict | None, sound: DecodedAudio | None, path: PathFrames | None,
                  camera: Camera | None, model=None) -> None:
    """The video stage: ``frames/``, ``video.mp4`` (with ``sound``) unless ``--no-write-video``, the camera path
    (``cameras.json``, ``camera_path.json``: ``path`` None, none) in the world of ``model`` where one rendered it,
    ``contact_sheet.png`` and ``quality.json``. Every file is written atomically."""
    from sparsevid.video.cameras_json import write_camera_path_json, write_cameras_json
    from sparsevid.video.io import write_frames, write_video
    from sparsevid.video.sheet import write_contact_sheet

    write_frames(frames, out / "frames")
    if cfg.write_video:
        write_video(frames, out / "video.mp4", out_fps, cfg.video.crf, cfg.video.preset, audio=sound)
    if path is not None:
        write_cameras_json(out / "cameras.json", path, camera, cfg.scale)
        # in the world of the model that rendered it (a nerfstudio model's: ns-render camera-path replays it)
        world = getattr(model, "transform", None)
        write_camera_path_json(out / "camera_path.json", path, camera, cfg.scale,
                               None if world is None else {"transform": np.asarray(world).tolist(),
                                                           "scale": float(getattr(model, "scale", 1.0))})
    step = max(1, len(frames) // 12)
    pick = list(range(0, len(frames), step))
    write_contact_sheet(out / "contact_sheet.png", [frames[i] for i in pick],
                        [f"t={float(times[i]):.3f}s" + (" (input)" if is_input[i] else "") for i in pick])
    if quality is not None:
        write_json(out / "quality.json", quality)


def eval_stage(frames: list[np.ndarray], scene: Scene, positions: list[Fraction], out: Path) -> dict:
    """Score the output ``frames`` (at source ``positions``) against the scene's ground-truth frames (inputs
    included), write ``metrics.json`` and say the held-out scores in one line."""
    from sparsevid.eval.metrics import evaluate

    gt = {f.index: f.image for f in scene.gt_frames + scene.frames}
    metrics = evaluate(frames, gt, scene.indices, source_index=[source_index_of(p) for p in positions])
    write_json(out / "metrics.json", metrics)
    if metrics["heldout"]["count"]:
        gh, gw = metrics["gt_shape"][:2]
        where = "" if (gw, gh) == (frames[0].shape[1], frames[0].shape[0]) else \
            (f" (the {frames[0].shape[1]}x{frames[0].shape[0]} frames scored against the {gw}x{gh} ground truth, "
             "resized to it as score.py does; the quality estimate is at the output's size)")
        log.info(f"held-out PSNR {metrics['heldout']['psnr']:.2f} dB, SSIM {metrics['heldout']['ssim']:.3f}, "
                 f"sharpness {metrics['heldout']['sharpness']:.2f} over {metrics['heldout']['count']} frames{where}")
    else:
        log.info("no held-out frame scored: no output frame falls on a ground-truth frame of the input "
                 f"(the {metrics['inputs']['count']} at input times are the inputs)")
    return metrics


def _add_seconds(run_info: dict, stage: str, seconds: float, total: float | None = None) -> None:
    """Add ``seconds`` to a stage's (and ``total``, default the same, to the total) in run.json's
    ``stage_seconds`` and in its last segment's (the sums over segments after a --resume:
    :func:`sparsevid.runinfo.merge`)."""
    for times in [run_info["stage_seconds"]] + [s.setdefault("stage_seconds", {})
                                                for s in run_info.get("segments", [])[-1:]]:
        times[stage] = round(times.get(stage, 0.0) + seconds, 3)
        times["total"] = round(times.get("total", 0.0) + (seconds if total is None else total), 3)


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


def run_identity(cfg: RunConfig, scene: Scene) -> dict[str, Any]:
    """What ``run.json`` records of a run from the moment its input is read, finished or not: its config, the
    file number of its frame 0 (``first_frame_number``), the source frame rate and the inputs' frame indices in
    the run's numbering (``input_indices``: ``eval`` and ``report`` pair frames by them; a run by the 2D route
    alone writes no cameras.json to read them from), and of a ``--start``/``--end`` window the video's own numbers
    of the first and last frames read (``window``: the report and the viewer name them). Its paths are absolute
    (:func:`with_absolute_paths`): ``report`` and ``eval`` read the input again as ground truth from any working
    folder (a relative one read another clip's frames, or none, from another folder)."""
    window = None
    if cfg.start is not None or cfg.end is not None:  # the video's own frame numbers of the frames read
        last = max(f.index for f in scene.frames + scene.gt_frames)
        window = {"start": cfg.start, "end": cfg.end, "first_frame": scene.window_start,
                  "last_frame": scene.window_start + last}
    return {"config": jsonable(with_absolute_paths(cfg)), "first_frame_number": scene.number_offset,
            "source_fps": str(scene.fps), "input_indices": list(scene.indices), "window": window}


def run_pipeline(cfg: RunConfig, model=None, logger: logging.Logger | None = None) -> RunResult:
    """Run every stage; see the module docstring for the output layout. The warning lines the run prints
    are also recorded in ``run.json`` (``warnings``).

    ``model``: a trained model to render instead of training the Gaussians -- any object with the trainer's
    ``render(c2ws, Ks, width, height)`` (:data:`sparsevid.render.frames.RenderFn`), e.g. a nerfstudio model
    (:class:`sparsevid.nerfstudio.render.ModelRenderer`, loaded here when ``cfg.from_nerfstudio`` is set).

    ``logger``: where the run's lines go (info, warnings, errors and a progress line every few seconds, as
    :func:`sparsevid.log.to_logger`); None: the console (stderr)."""
    from sparsevid.runinfo import write_failed, write_interrupted

    with log.to_logger(logger) if logger is not None else contextlib.nullcontext(), \
            log.recording_warnings() as warnings, contextlib.ExitStack() as hold:
        state: dict = {}
        try:
            return _run_pipeline(cfg, model, warnings, hold, state)
        except SparsevidError as e:  # after the input was read: run.json says so (batch retries such a clip)
            if state:
                write_failed(cfg.output, e.one_line(), warnings, state["identity"])
            raise
        except OSError as e:  # a file system error no stage named (a full disk while writing frames): a one-line
            err = outdir.os_error(e, e.filename or cfg.output, "finish the run")  # error naming the output folder,
            if state:                                                               # and recorded in run.json
                with contextlib.suppress(OSError):
                    write_failed(cfg.output, err.one_line(), warnings, state["identity"])
            raise err from None
        except KeyboardInterrupt as e:  # Ctrl-C / SIGTERM in any stage: run.json says where (and in training, the
            e.kept = saved_work(cfg.output) if state else []  # what a --resume takes up (the CLI's line names it)
            if "timer" in state:        # step of the checkpoint saved, train_stage's ``e.training``)
                seconds, training = dict(state["timer"].seconds), getattr(e, "training", None)
                if training is not None:
                    seconds["training"] = training[2]  # without its progressive rounds' fixing
                write_interrupted(cfg.output, seconds, cfg.resume, identity=state["identity"],
                                  warnings=list(warnings),
                                  stage="training" if training is not None else state["timer"].current,
                                  training=None if training is None else training[:2],
                                  rounds=getattr(e, "rounds", None) if training is not None else state.get("rounds"))
            raise


def _run_pipeline(cfg: RunConfig, model, warnings: list[str], hold: contextlib.ExitStack,
                  state: dict) -> RunResult:
    """The run; ``hold`` keeps the output folder's lock until the run ends; ``state`` gets the run's ``identity``
    (what run.json records of it from the start: config, inputs, numbering) and its stage ``timer`` once the input
    is loaded and the folder is this run's."""
    t_start = time.perf_counter()
    timer = log.StageTimer()
    out = Path(cfg.output)
    device = resolve_device(cfg.device)  # cfg.seed reaches every stage as an argument: no process-wide RNG is seeded
    if model is None and cfg.from_nerfstudio is not None:
        from sparsevid.nerfstudio.video import prepare

        cfg, model = prepare(cfg, cfg.device)
    given = cfg
    if device.type == "cpu":
        cfg = cpu_profile(cfg)
    # the input is read before the folder is touched: input that does not load leaves the folder as it was, even
    # with --overwrite (which deleted the previous run first, then failed on a keyframe the input lacks)
    protect = (cfg.input if cfg.input is not None else demo_path(), cfg.poses_from, cfg.ckpt, cfg.from_nerfstudio)
    outdir.check_output(out, RUN_OUTPUTS, protect, cfg.overwrite)
    with timer("loading"):
        scene = load_input(cfg)
        prepare_output(out, cfg.resume, cfg.overwrite, protect=protect, hold=hold)
        record_run(cfg, given)
    if cfg.resume:
        done = finished_run(cfg, scene)
        if done is not None:
            return done
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    state.update(timer=timer, identity=run_identity(cfg, scene))
    say_video_span(cfg, scene)
    nothing = nothing_between(cfg, scene, model)
    sound, sound_record = output_sound(cfg, scene)
    if cfg.fixer.name == "none" and cfg.fixer.progressive:
        log.warn("--progressive has no effect with --fixer none (a progressive round trains the fixer's views in) "
                 "-> pick a fixer for progressive rounds, e.g. --fixer reproject")
    with timer("poses"):
        try:
            # the 2D route needs no poses: none are estimated for it (given ones are kept)
            scene, pose_report = (scene, None) if cfg.fuse.mode == "2d" or nothing else \
                resolve_poses(scene, cfg, out)
        except PoseFailure as e:
            if cfg.fuse.mode == "3d":
                raise
            log.warn(f"no 3D model passes its checks ({e.message}); the video is made by the 2D route "
                     f"(optical flow) alone -> for the 3D route: {e.fix}")
            pose_report = {"failed": e.one_line()}
    outdir.check_still_there(out)
    posed = scene.has_poses
    sfps = scene.fps                               # exact (a Fraction)
    times = cfg.path.frame_times(sfps, scene.indices[-1])
    out_fps = cfg.path.output_fps(sfps)
    positions = cfg.path.frame_positions(sfps, scene.indices[-1])  # exact: a frame at an input's time *is* it
    is_input = np.array([p in set(scene.indices) for p in positions])
    out_size = (round(scene.image_size[0] * cfg.scale), round(scene.image_size[1] * cfg.scale))
    keys = {f.index: match_size(f.image, out_size[::-1]) for f in scene.frames}
    rounds: list[dict] = []
    state["rounds"] = rounds  # an interruption after training records the rounds the model holds
    built = route3d_stage(scene, cfg, device, out, model, timer, rounds) \
        if posed and cfg.fuse.mode != "2d" and not nothing else None
    if built is not None:
        scene = built.scene  # its cameras refined with the Gaussians (--train.pose-lr)
    held_ends = cfg.path.extrapolation == "hold"
    route3d = Route3DOutput(positions, keys, None, None, hold_outside=held_ends) if built is None else \
        Route3DOutput(positions, keys, built.frames, built.loo, built.loo_leak_free, built.loo_path, built.rigid,
                      hold_outside=held_ends)
    with timer("fusing"):
        if nothing:  # every output frame is an input (said above)
            frames, quality = [keys[int(p)] for p in positions], None
        else:
            frames, quality = fuse_stage(route3d, cfg, device, len(scene.frames))
    if cfg.keep_inputs:
        frames = [keys[int(p)] if inp else f for f, p, inp in zip(frames, positions, is_input)]
    key_sigmas = None
    if cfg.even_key_detail:
        frames, key_sigmas = even_key_detail(frames, is_input)
        if key_sigmas:
            log.info(f"input-time frames softened to the detail of the frames next to them (Gaussian sigma "
                     f"{min(key_sigmas.values()):.2f}-{max(key_sigmas.values()):.2f} px; --no-even-key-detail "
                     f"keeps them as they are)")

    outdir.check_still_there(out)
    with timer("encoding"):
        write_outputs(out, cfg, frames, out_fps, times, is_input, quality, sound,
                      None if built is None else built.path, scene.camera, model)

    metrics = None
    if scene.gt_frames:
        with timer("eval"):
            metrics = eval_stage(frames, scene, positions, out)

    trainer = None if built is None else built.trainer
    peak = {"cpu_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if device.type == "cuda":
        peak["gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    stage = {k: round(v, 3) for k, v in timer.seconds.items()}
    stage["total"] = round(time.perf_counter() - t_start, 3)
    run_info = {**run_identity(cfg, scene), "versions": _versions(), "machine": _machine(device),
                "device": str(device), "train_scale": None if built is None else built.train_scale,
                "stage_seconds": stage,
                "peak_memory": peak, "num_frames": len(frames), "fps": str(out_fps),
                "num_gaussians": None if getattr(trainer, "num_gaussians", None) is None else int(trainer.num_gaussians),
                "training_steps": None if getattr(trainer, "step", None) is None else int(trainer.step),
                "model": None if model is None else getattr(model, "source", type(model).__name__), "poses": pose_report,
                "pose_refinement": None if built is None else built.pose_refinement,
                "fixer": None if built is None else built.fixer, "quality_estimate": quality,
                "sound": sound_record,
                "inputs_only": nothing,  # every output frame is an input, written as it is (nothing_between)
                "warnings": list(warnings),
                "key_detail_sigma": None if key_sigmas is None else {str(k): v for k, v in key_sigmas.items()},
                "metrics": None if metrics is None else {k: metrics[k] for k in
                                                         ("heldout", "inputs", "flicker", "pulse_ratio")
                                                         if k in metrics}}
    from sparsevid.runinfo import merge

    outdir.check_still_there(out)
    run_info = merge(out, run_info, cfg.resume)  # after a resume: every segment's times, the poses
    if cfg.write_report:  # not "done" until the report is written: a run stopped while writing it is resumed
        run_info["status"] = run_info["segments"][-1]["status"] = "reporting"
    write_json(out / "run.json", run_info)
    state.pop("timer", None)  # run.json is the run's own from here ("reporting": a stop leaves it as it is)
    if cfg.write_report:  # it reads run.json, so it comes after; its time is then added to run.json
        t_report = time.perf_counter()
        _write_report(out, scene)
        stage["report"] = round(time.perf_counter() - t_report, 3)
        total = round(time.perf_counter() - t_start, 3)
        delta, stage["total"] = total - stage["total"], total
        _add_seconds(run_info, "report", stage["report"], delta)
        run_info["status"] = run_info["segments"][-1]["status"] = "done"
        write_json(out / "run.json", run_info)
    if not cfg.keep_checkpoint:
        drop_checkpoints(out / "train")
    page = f"; open {out / 'report.html'} in a browser" if cfg.write_report else ""
    log.info(f"done in {stage['total']:.1f} s -> {out}{_estimate_text(quality)}{page}")
    return RunResult(out, frames, stage, metrics, peak, out_fps, quality,
                     None if built is None else route3d)
