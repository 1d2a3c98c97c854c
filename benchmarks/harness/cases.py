"""Benchmark cases: case folders (frames + optional reference poses), scaled copies, the synthetic
robustness cases (``sparsevid.data.synthetic``) and the poses of a case's sparsevid runs
(``sparsevid.poses`` stage, estimated once per case on the full-resolution keyframes)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from sparsevid import log
from sparsevid.data.images import index_files, list_image_files, read_image, write_image
from sparsevid.errors import SparsevidError
from sparsevid.io_utils import atomic_write_text
from benchmarks.harness.config import REPO, BenchConfig


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
    colmap_log: list[str] = []
    if bench.poses_dir:
        full = load_scene(bench.poses_dir / case.name / "transforms.json")
        report: dict[str, Any] = {"source": str(bench.poses_dir / case.name)}
    else:
        log.info(f"{case.name}: estimating poses once on the full-resolution keyframes")
        t0 = time.perf_counter()
        full, report = estimate_poses(load_scene(case.source, keyframes=list(bench.keyframes)),
                                      PoseConfig(seed=bench.seed), colmap_log)
        seconds = time.perf_counter() - t0
    w, h = case.size
    cam = full.camera.scaled(w / full.camera.width)
    frames = [_replace(f, image=case.frames[f.index], path=None) for f in full.frames]
    scaled = _replace(full, frames=frames, camera=cam, gt_frames=[])
    out = runs_dir / "poses" / f"{case.name}@{w}x{h}"
    save_pose_outputs(scaled, report, out, "".join(colmap_log))
    return out / "transforms.json", seconds


def default_cases() -> list[Path]:
    """``../shared/cases/*`` relative to the repository (or ``shared/cases/*`` inside it)."""
    for root in (REPO.parent / "shared" / "cases", REPO / "shared" / "cases"):
        cases = sorted(p for p in root.glob("*") if (p / "frame_0000.png").is_file()) if root.is_dir() else []
        if cases:
            return cases
    return []
