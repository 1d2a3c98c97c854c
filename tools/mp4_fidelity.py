"""How faithfully ``video.mp4`` keeps frames: each case's real frames through :func:`sparsevid.video.io.write_video`
(the run's CRF), decoded, and scored against the frames (mean PSNR), with the file's size.

    python tools/mp4_fidelity.py ../shared/cases/gopro_sidewalk /work/exp33/REAL/carphone_talk
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import sparsevid  # noqa: F401  (zlib before anything that may load pycolmap)
from sparsevid.eval.metrics import psnr
from sparsevid.video.io import read_image, read_video, write_video


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cases", nargs="+", type=Path, help="folders of frame_*.png")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            frames = [read_image(f) for f in sorted(case.glob("frame_*.png"))]
            path = write_video(frames, Path(tmp) / "v.mp4", 30)
            back, _ = read_video(path)
            score = np.mean([psnr(b[:f.shape[0], :f.shape[1]], f) for b, f in zip(back, frames)])
            h, w = frames[0].shape[:2]
            print(f"{case.name} {w}x{h}: {score:.3f} dB, {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
