"""``sparsevid report OUT [--gt CASE]``: (re)write ``OUT/report.html`` for a run folder.

The page is self-contained (video, images and plots embedded): open it from disk in any browser,
no server and no network needed. With ``--gt`` (the input holding every frame, e.g. the case
folder, or a folder of frames or a video of the whole clip) it also holds a GT | output | error
video and per-frame PSNR / SSIM / sharpness plots against the optical-flow peer.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

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


def load_gt(gt: Path) -> dict[int, np.ndarray]:
    """{source frame index: image} of every frame ``gt`` holds (inputs and ground truth alike)."""
    from sparsevid.data.load import load_scene

    try:
        scene = load_scene(gt)
        return {f.index: f.image for f in scene.frames + scene.gt_frames}
    except SparsevidError:
        from sparsevid.cli.eval import load_ground_truth

        return load_ground_truth(gt)


def run(args: argparse.Namespace) -> int:
    from sparsevid.report.html import write_report

    out: Path = args.out
    if not out.is_dir():
        raise SparsevidError("run folder not found", path=out, fix="give the folder of `sparsevid run -o OUT`")
    gt = load_gt(args.gt) if args.gt is not None else None
    path = write_report(out, gt_frames=gt)
    info(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); open it in a browser")
    return 0
