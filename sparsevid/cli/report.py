"""``sparsevid report OUT [--gt CASE]``: (re)write ``OUT/report.html`` for a run folder.

The page is self-contained (video, images and plots embedded): open it from disk in any browser,
no server and no network needed. With ``--gt`` (the input holding every frame, e.g. the case
folder, or a folder of frames or a video of the whole clip) it also holds a GT | output | error
video and per-frame PSNR / SSIM / sharpness plots against the optical-flow peer.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sparsevid.cli.flags import plain_doc
from sparsevid.errors import SparsevidError
from sparsevid.log import info


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write OUT/report.html: a self-contained page of a run (video, inputs, "
                                      "quality, poses, timings)",
                       description=plain_doc(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="run folder (sparsevid run -o OUT)")
    p.add_argument("--gt", type=Path, default=None,
                   help="ground truth: the input with every frame (case folder, COLMAP/nerfstudio dataset, folder "
                        "of frames or video); frame numbers are source frame indices")
    p.set_defaults(func=run)


def scored_size(out: Path) -> tuple[int, int] | None:
    """(H, W) the run scored its frames at (``metrics.json``'s ``gt_shape``) where that has the output frames'
    aspect ratio, else the output frames' size."""
    from sparsevid.eval.ground_truth import check_same_view
    from sparsevid.report.html import RunFolder

    f = RunFolder.read(out)
    first = f.frame(0)
    own = None if first is None else first.shape[:2]
    shape = (f.metrics or {}).get("gt_shape")
    if isinstance(shape, list) and len(shape) >= 2 and all(isinstance(v, int) for v in shape[:2]):
        try:
            if own is not None:
                check_same_view(own, tuple(shape[:2]), out)
            return shape[0], shape[1]
        except SparsevidError:  # scored against other frames (an older eval): the run's own size
            pass
    return own


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if not out.is_dir():
        raise SparsevidError("run folder not found", path=out, fix="give the folder of `sparsevid run -o OUT`")
    from sparsevid.outdir import RUN_MARKER

    if not ((out / RUN_MARKER).is_file() or (out / "run.json").is_file()):  # report.html is not written into a clip
        raise SparsevidError(f"not a sparsevid output folder (no run.json or {RUN_MARKER})", path=out,
                             fix="give the folder of `sparsevid run -o OUT`")
    from sparsevid.outdir import locked

    with locked(out, fix="wait for the run to finish (its last step writes report.html), then run report again"):
        return _report(out, args)


def _report(out: Path, args: argparse.Namespace) -> int:
    from sparsevid.eval.ground_truth import check_same_view, resized_to, run_ground_truth
    from sparsevid.report.html import write_report

    # --gt read with the run's window; without it, the run's own input where the run had ground truth in it
    gt = run_ground_truth(out, args.gt)
    if args.gt is None and gt is not None:
        info("ground truth: the run's own input (give --gt to use another)")
    size = scored_size(out) if gt else None
    for shape in {f.shape[:2] for f in gt.values()} if gt and size is not None else ():
        check_same_view(size, shape, args.gt if args.gt is not None else out)
    if gt and size is not None and any(f.shape[:2] != size for f in gt.values()):
        h, w = next(iter(gt.values())).shape[:2]
        info(f"the ground truth's {w}x{h} frames are resized to {size[1]}x{size[0]}, the size the run's frames "
             "were scored at, so that sparsevid and the peers are scored alike")
        gt = resized_to(gt, size)
    path = write_report(out, gt_frames=gt)
    info(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); open it in a browser")
    return 0
