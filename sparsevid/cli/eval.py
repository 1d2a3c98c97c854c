"""``sparsevid eval OUT --gt PATH``: score output frames against ground truth.

OUT is a run folder (reads ``OUT/frames/`` or else ``OUT/video.mp4``), a folder of frames, or a video.
GT is a folder of frames (index = the number in each file name) or a video (index = decode order).
Writes ``metrics.json`` (atomically) into OUT when OUT is a folder, else ``<video>.metrics.json``
beside the video; keys already in an existing file that evaluation does not produce are kept (and so are its
held-out scores when the ground truth has no frame between the inputs). NaN and infinities are written as null.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sparsevid.cli.flags import plain_doc
from sparsevid.data.load import parse_keyframes
from sparsevid.data.scene import DEFAULT_KEYFRAMES
from sparsevid.errors import SparsevidError
from sparsevid.eval.metrics import evaluate
from sparsevid.io_utils import write_json
from sparsevid.log import console, info, warn
from sparsevid.video.io import read_frames, read_video


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score output frames against ground-truth frames (PSNR, SSIM, flicker)",
                       description=plain_doc(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="run folder, folder of frames, or video")
    p.add_argument("--gt", type=Path, required=True, help="ground truth: folder of frames or video")
    p.add_argument("--keyframes", type=str, default=None,
                   help="comma-separated input frame indices (default: the is_input flags of OUT/cameras.json, "
                        "else 0,9,19,29)")
    p.add_argument("--metrics", type=Path, default=None, help="where to write metrics.json")
    p.set_defaults(func=run)


def load_prediction(out: Path) -> tuple[list[np.ndarray], Path, list[int]]:
    """Output frames, the path they came from, and each frame's number: a video's frames are 0..N-1 in decode
    order; a folder's carry the numbers of their file names (a frame missing from a folder leaves its number out,
    it does not shift the frames after it)."""
    if out.is_dir():
        if (out / "frames").is_dir():
            frames = read_frames(out / "frames")
            return list(frames.values()), out / "frames", list(frames)
        if (out / "video.mp4").is_file():
            video = read_video(out / "video.mp4")[0]
            return video, out / "video.mp4", list(range(len(video)))
        if (out / "run.json").is_file() or (out / "config.yaml").is_file():
            raise SparsevidError("the run has no output frames yet (no frames/ and no video.mp4)", path=out,
                                 fix="finish it: the same `sparsevid run` command with --resume")
        frames = read_frames(out)
        return list(frames.values()), out, list(frames)
    if out.is_file():
        video = read_video(out)[0]
        return video, out, list(range(len(video)))
    raise SparsevidError("output not found", path=out, fix="give a run folder, a folder of frames or a video")


def _numbered_from_zero(frames: dict[int, np.ndarray], where: Path, what: str) -> tuple[dict[int, np.ndarray], int]:
    """``frames`` renumbered from their first frame (frames named from 1, or from 100, pair with output frame 0
    as a run numbers them) and the shift; one info line when there is one."""
    first = min(frames) if frames else 0
    if first:
        info(f"{where.name or where}: the {what}'s first frame is number {first}: it is frame 0 here (--keyframes "
             "count as its file numbers)")
    return {i - first: f for i, f in frames.items()}, first


def _check_sizes(gt: dict[int, np.ndarray], where: Path) -> None:
    sizes = sorted({f.shape[1::-1] for f in gt.values()})
    if len(sizes) > 1:
        raise SparsevidError("the ground truth's frames have different sizes ("
                             + ", ".join(f"{w}x{h}" for w, h in sizes[:3]) + ")", path=where,
                             fix="give the frames of one clip, all of one size")


def default_keyframes(out: Path) -> list[int]:
    cams = out / "cameras.json" if out.is_dir() else None
    if cams is not None and cams.is_file():
        try:
            frames = json.loads(cams.read_text())["frames"]
            keys = [i for i, f in enumerate(frames) if f.get("is_input")]
            if keys:
                return keys
        except (ValueError, KeyError, TypeError):
            warn(f"{cams}: unreadable, using key frames {','.join(map(str, DEFAULT_KEYFRAMES))}")
    return list(DEFAULT_KEYFRAMES)


def _span(ids: list[int]) -> str:
    """``[5]`` -> "5", ``[3, 4, 5, 9]`` -> "3-5, 9" (at most 6 ranges, then "...")."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:6]]
    return ", ".join(parts) + (", ..." if len(runs) > 6 else "")


def metrics_path(out: Path) -> Path:
    return out / "metrics.json" if out.is_dir() else out.with_name(out.stem + ".metrics.json")


#: the keys of :func:`~sparsevid.eval.metrics.evaluate` that score the held-out frames
HELDOUT_KEYS = ("heldout", "flicker", "pulse_ratio", "psnr_heldout", "ssim_heldout", "psnr_heldout_min",
                "sharpness_heldout")


def write_metrics(path: Path, result: dict, merge_per_frame: bool = False) -> Path:
    """Write ``result`` as JSON atomically, keeping keys of an existing file that ``result`` lacks
    (``merge_per_frame``: and the frames of its ``per_frame`` that ``result``'s lacks)."""
    merged: dict = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if isinstance(old, dict):
                merged.update(old)
        except ValueError:
            warn(f"{path}: not valid JSON, overwriting it")
    per_frame = {**merged.get("per_frame", {}), **result.get("per_frame", {})} if merge_per_frame else None
    merged.update(result)
    if per_frame is not None:
        merged["per_frame"] = per_frame
    return write_json(path, merged)


def print_table(result: dict) -> None:
    from rich.table import Table

    t = Table(title="evaluation", show_lines=False)
    for col in ("frames", "count", "PSNR dB", "SSIM", "min PSNR (frame)"):
        t.add_column(col, justify="right")
    for name in ("heldout", "inputs"):
        g = result[name]
        if g.get("count"):
            t.add_row(name, str(g["count"]), f"{g['psnr']:.2f}", f"{g['ssim']:.4f}",
                      f"{g['psnr_min']:.2f} ({g['psnr_min_frame']})")
    console.print(t)
    f = result["flicker"]
    if f["pairs"]:
        info(f"flicker {f['flicker']:.2f} grey levels over {f['pairs']} frame pairs; "
             f"change ratio {f['change_ratio']:.2f} (1 = as much frame-to-frame change as the real video)")


def run_pairing(out: Path, numbers: list[int]) -> tuple[list[int | None] | None, list[int], dict]:
    """For a run folder (:class:`sparsevid.report.html.RunFolder`): the source frame each output frame (by its
    number in ``numbers``) shows (its output rate against the clip's), the inputs' source indices and the run's
    ``run.json`` (its recorded configuration, :func:`~sparsevid.eval.ground_truth.run_config`); (None, [], {}) for
    anything else."""
    if not out.is_dir() or not ((out / "run.json").is_file() or (out / "cameras.json").is_file()):
        return None, [], {}
    from sparsevid.report.html import RunFolder

    f = RunFolder.read(out)
    return [f.source_index(k) for k in numbers], f.input_indices, f.run if isinstance(f.run, dict) else {}


def run(args: argparse.Namespace) -> int:
    from sparsevid.outdir import RUN_MARKER, locked

    if args.out.is_dir() and (args.out / RUN_MARKER).is_file():  # a run's folder: not while the run writes it
        with locked(args.out, fix="wait for the run to finish (it scores itself where it has ground truth), "
                                  "then run eval again"):
            return _eval(args)
    return _eval(args)


def _eval(args: argparse.Namespace) -> int:
    from sparsevid.eval.ground_truth import (check_same_view, first_frame_number, load_frames, read_ground_truth,
                                             run_config)

    out: Path = args.out
    keys = parse_keyframes(args.keyframes) if args.keyframes is not None else None  # checked before any work
    pred, source, numbers = load_prediction(out)
    # a run folder's frames are paired with the clip's by time, in the run's window of its video
    source_index, run_keys, run_json = run_pairing(out, numbers)
    cfg = run_config(run_json)
    if cfg:
        gt = load_frames(args.gt, cfg.get("start"), cfg.get("end"), first_frame_number(run_json))
    else:  # frames or a video: each numbered from its first frame, as a run numbers its input (score.py pairs so)
        gt, shift = _numbered_from_zero(read_ground_truth(args.gt), args.gt, "ground truth")
        keys = None if keys is None else [k - shift for k in keys]
        first = min(numbers)
        if first:
            info(f"{source}: the output's first frame is number {first}: it is frame 0 here")
        source_index = [n - first for n in numbers]
    _check_sizes(gt, args.gt)
    if keys is None:
        keys = run_keys or default_keyframes(out)
    elif any(k not in gt for k in keys):
        bad = [k for k in keys if k not in gt]
        raise SparsevidError(f"--keyframes {','.join(map(str, bad))} not among the ground truth's frames "
                             f"({min(gt)}..{max(gt)} here)", path=args.gt,
                             fix="give the inputs' frame numbers as the ground truth's files number them")
    shown = set(source_index if source_index is not None else range(len(pred))) - {None}
    lacking = sorted(i for i in gt if i not in shown)
    if lacking:
        warn(f"{source}: no output frame for ground-truth frame{'s' if len(lacking) > 1 else ''} "
             f"{_span(lacking)}: {len(gt) - len(lacking)} of {len(gt)} frames scored")
    unmatched = sorted(i for i in shown if i not in gt)
    if unmatched:
        warn(f"{args.gt}: the ground truth has no frame {_span(unmatched)}: {len(shown) - len(unmatched)} of the "
             f"{len(shown)} output frames scored")
    sizes = {f.shape[:2] for f in gt.values()}
    for size in sizes if pred else ():
        check_same_view(pred[0].shape, size, args.gt)
    if pred and len(sizes) == 1 and pred[0].shape[:2] not in sizes:
        (h, w), = sizes
        warn(f"the output's {pred[0].shape[1]}x{pred[0].shape[0]} frames are resized to the ground truth's {w}x{h} "
             "to be scored")
    result = evaluate(pred, gt, keys, source_index=source_index)
    result.update(pred_path=str(source), gt_path=str(args.gt))
    mpath = args.metrics or metrics_path(out)
    kept, only_inputs = result, not result["heldout"].get("count")
    if only_inputs:  # an earlier file's held-out scores are not replaced by nothing
        warn(f"{args.gt}: no frame between the inputs ({','.join(map(str, keys))}) to score: only the inputs are "
             "scored -> give every frame of the clip with --gt")
        kept = {k: v for k, v in result.items() if k not in HELDOUT_KEYS}
    write_metrics(mpath, kept, merge_per_frame=only_inputs)
    print_table(result)
    info(f"wrote {mpath}")
    return 0
