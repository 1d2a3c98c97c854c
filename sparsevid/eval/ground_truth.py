"""Ground truth for a finished run folder: every frame of the clip, numbered as the run numbered its frames.

``sparsevid eval OUT --gt GT`` and ``sparsevid report OUT --gt GT`` score a run's output frames against the
real ones. A run numbers source frames from the first frame of its ``--start/--end`` window, and an output
frame shows source frame ``k / out_fps * scene_fps`` (none between source frames when the output rate is not
the source's). Both are read from the run folder (``run.json``'s config, ``cameras.json``), so the ground
truth lines up with the frames whatever ``--start``, ``--end`` and ``--path.fps`` the run was given.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sparsevid.errors import SparsevidError


def run_record(out: Path) -> dict:
    """A run folder's ``run.json``, or {} (none, unreadable: not a run)."""
    try:
        run = json.loads((Path(out) / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return run if isinstance(run, dict) else {}


def run_config(run: dict | None) -> dict:
    """The configuration a run records (``run.json``'s ``config``, :func:`run_record`), or {}."""
    cfg = (run or {}).get("config")
    return cfg if isinstance(cfg, dict) else {}


def first_frame_number(run: dict | None) -> int | None:
    """The file number of a run's frame 0 (``run.json``'s ``first_frame_number``, :func:`run_record`: an input
    numbered from 1 or 100 is numbered from 0), or None (not recorded)."""
    n = (run or {}).get("first_frame_number")
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def read_ground_truth(gt: Path) -> dict[int, np.ndarray]:
    """{frame index: image} of a folder of frames (index = the number in each file name) or a video (index =
    decode order), read as they are."""
    from sparsevid.video.io import read_frames, read_video

    if Path(gt).is_dir():
        return read_frames(gt)
    if Path(gt).is_file():
        return dict(enumerate(read_video(gt)[0]))
    raise SparsevidError("ground truth not found", path=gt, fix="give a folder of frames or a video")


def load_frames(gt: Path, start: str | None = None, end: str | None = None,
                first_number: int | None = None) -> dict[int, np.ndarray]:
    """{source frame index: [H, W, 3] uint8 RGB} of every frame ``gt`` holds (a case folder, a folder of
    frames, a COLMAP / nerfstudio dataset or a video), inputs and ground truth alike; ``start`` / ``end``: the
    run's window of a video (``--start`` / ``--end``), indices counted from its first frame; ``first_number``:
    the file number of the run's frame 0 (:func:`first_frame_number`; None: ``gt``'s own first frame)."""
    from sparsevid.data.load import load_scene
    from sparsevid.data.video import parse_window

    windowed = start is not None or end is not None
    try:
        first, last = parse_window(start, end)
        scene = load_scene(gt, start=first, end=last, renumber=first_number is None)
        scene = scene if first_number is None else scene.shifted(-first_number)
    except SparsevidError as e:
        if windowed:
            raise SparsevidError(f"the run used a window of its video (--start {start} --end {end}), which this "
                                 f"ground truth cannot give: {e.message}",
                                 fix="give the run's video itself as the ground truth", path=gt) from None
        return read_ground_truth(gt)  # fewer than 2 frames, or files load_scene does not number
    return {f.index: f.image for f in scene.frames + scene.gt_frames}


def run_ground_truth(out: Path, gt: Path | None) -> dict[int, np.ndarray] | None:
    """The ground truth of run folder ``out``: ``gt`` read with the run's window, or else (None) the run's own
    input when it still exists and the run scored against it (``metrics.json``); None if neither."""
    run = run_record(out)
    cfg = run_config(run)
    if gt is None:
        # absolute since run_identity records it so; a relative one (older runs) was relative to the run's
        # working folder, unknown here: read from this one, it may be another clip
        src = cfg.get("input")
        if not src or not Path(src).is_absolute() or not Path(src).exists() \
                or not (Path(out) / "metrics.json").is_file():
            return None
        gt = Path(src)
    return load_frames(Path(gt), cfg.get("start"), cfg.get("end"), first_frame_number(run))


def check_same_view(shape: tuple[int, ...], gt_shape: tuple[int, ...], gt: Path) -> None:
    """Refuse ground truth whose frames ([H, W, ...] ``gt_shape``) do not show the output's view (``shape``): a
    different aspect ratio (a turned or cropped copy of the clip) cannot be scored by resizing. Sizes that
    differ only by scale (a half-size copy) pass (:func:`~sparsevid.imaging.same_picture`)."""
    from sparsevid.imaging import same_picture

    (h, w), (gh, gw) = shape[:2], gt_shape[:2]
    if not same_picture((gw, gh), (w, h)):
        raise SparsevidError(f"the ground truth's {gw}x{gh} frames do not have the output's {w}x{h} aspect ratio "
                             "(a turned or cropped copy of the clip?)", path=gt,
                             fix="give the frames of the clip the run was made from, as the run saw them")


def resized_to(frames: dict[int, np.ndarray], shape: tuple[int, ...]) -> dict[int, np.ndarray]:
    """``frames`` resized (area interpolation) to ``shape`` [H, W, ...] where they differ from it."""
    from sparsevid.eval.metrics import match_size

    return {i: match_size(f, shape) for i, f in frames.items()}
