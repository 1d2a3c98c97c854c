"""``sparsevid view OUT [--port 8080] [--host 127.0.0.1]``: a web viewer (viser) of an output folder.

It shows the trained Gaussians (``train/point_cloud.ply``) as splats, the camera path
(``cameras.json``) as frustums with the input cameras in orange, a time slider that shows the output
frame (``frames/``) beside a live CPU render from the path camera, the pose report and the quality
estimate. It works on a finished run and on one still running ("reload the folder" re-reads it),
and on a 2D-only run (frames only). Runs on the CPU; Ctrl-C stops it. Needs ``pip install viser``
(the ``view`` extra).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from sparsevid.cli.flags import plain_doc
from sparsevid.log import info


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="web viewer of an output folder: Gaussians, camera path, frames over time, "
                                    "live render, pose report (viser, CPU)",
                       description=plain_doc(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="output folder (sparsevid run -o OUT), finished or running")
    p.add_argument("--port", type=int, default=8080, help="port (the next free one when taken)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--render-size", type=int, default=320,
                   help="long side in pixels of the live CPU render from the path camera")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsevid.errors import SparsevidError
    from sparsevid.viewer.server import require_viser, start

    if not 0 < args.port < 65536:
        raise SparsevidError(f"--port must be 1..65535, got {args.port}", fix="pass e.g. --port 8080")
    if args.render_size < 16:
        raise SparsevidError(f"--render-size must be at least 16, got {args.render_size}", fix="pass e.g. 320")
    require_viser()  # one line with the install command when absent (exit 2)
    viewer = start(args.out, host=args.host, port=args.port, render_long_side=args.render_size)
    for note in viewer.scene.notes:
        info(f"view: {note}")
    info(f"viewer of {args.out} at {viewer.url}  (Ctrl-C stops it)")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        info("view: stopped")
    finally:
        viewer.stop()
    return 0
