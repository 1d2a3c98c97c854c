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


def _as_list(frames: dict[int, np.ndarray], where: Path) -> list[np.ndarray]:
    idx = sorted(frames)
    if idx != list(range(len(idx))):
        warn(f"{where}: frame numbers are not 0..{len(idx) - 1}; using them in sorted order as frames 0..{len(idx) - 1}")
    return [frames[i] for i in idx]


def load_prediction(out: Path) -> tuple[list[np.ndarray], Path]:
    """Output frames (list, position = output frame index) and the path they came from."""
    if out.is_dir():
        if (out / "frames").is_dir():
            return _as_list(read_frames(out / "frames"), out / "frames"), out / "frames"
        if (out / "video.mp4").is_file():
            return read_video(out / "video.mp4")[0], out / "video.mp4"
        return _as_list(read_frames(out), out), out
    if out.is_file():
        return read_video(out)[0], out
    raise SparsevidError("output not found", path=out, fix="give a run folder, a folder of frames or a video")


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


def run_pairing(out: Path, num_frames: int) -> tuple[list[int | None] | None, list[int], dict]:
    """For a run folder (:class:`sparsevid.report.html.RunFolder`): the source frame each output frame shows
    (its output rate against the clip's), the inputs' source indices and the run's ``run.json`` (its recorded
    configuration, :func:`~sparsevid.eval.ground_truth.run_config`); (None, [], {}) for anything else."""
    if not out.is_dir() or not ((out / "run.json").is_file() or (out / "cameras.json").is_file()):
        return None, [], {}
    from sparsevid.report.html import RunFolder

    f = RunFolder.read(out)
    return [f.source_index(k) for k in range(num_frames)], f.input_indices, f.run if isinstance(f.run, dict) else {}


def run(args: argparse.Namespace) -> int:
    from sparsevid.eval.ground_truth import (check_same_view, first_frame_number, load_frames, read_ground_truth,
                                             run_config)

    out: Path = args.out
    keys = parse_keyframes(args.keyframes) if args.keyframes is not None else None  # checked before any work
    pred, source = load_prediction(out)
    # a run folder's frames are paired with the clip's by time, in the run's window of its video
    source_index, run_keys, run_json = run_pairing(out, len(pred))
    cfg = run_config(run_json)
    gt = (load_frames(args.gt, cfg.get("start"), cfg.get("end"), first_frame_number(run_json)) if cfg
          else read_ground_truth(args.gt))
    if keys is None:
        keys = run_keys or default_keyframes(out)
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
