"""Probe (issue 12, session 19): the temporal step's mean (:mod:`sparsevid.fuse.temporal`) with other weights for
the neighbours, on the fused frames of finished default runs made without the step:

    python tools/temporal_weights_probe.py RUN:CASE [RUN:CASE...] [--json OUT.json]

RUN is a run folder whose ``frames/`` were fused with ``--fuse.temporal.sigma none`` (or before the step existed);
CASE the clip (inputs 0, 9, 19, 29). Rows, each the step's low band at ``sigma`` px over 2 output frames on each
side, then the input-time frames softened as the pipeline does (:func:`sparsevid.fuse.stage.even_key_detail`):
- ``inputs xW``: neighbours at input times (real frames) weigh W, the others 1 (W = 1: the default mean);
- ``gate T``: each neighbour weighs ``exp(-(d / T)^2)`` per pixel, d its mean absolute difference to the frame
  (grey levels, blurred over 1.5 px): neighbours that disagree count less (an M-estimator's step).
Printed per clip: held-out PSNR / SSIM / sharpness per row.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval.metrics import evaluate  # noqa: E402
from sparsevid.fuse.flow2d import FlowConfig  # noqa: E402
from sparsevid.fuse.stage import even_key_detail  # noqa: E402
from sparsevid.fuse.temporal import moved_onto  # noqa: E402
from sparsevid.imaging import make_dis  # noqa: E402

KEYS = [0, 9, 19, 29]
#: row name -> (sigma px, weight of input-time neighbours, gate T in grey levels or None)
ROWS = {
    "sigma 2, inputs x1 (the default)": (2.0, 1.0, None),
    "sigma 2, inputs x2": (2.0, 2.0, None),
    "sigma 2, inputs x4": (2.0, 4.0, None),
    "sigma 2, gate 8": (2.0, 1.0, 8.0),
    "sigma 2, gate 16": (2.0, 1.0, 16.0),
    "sigma 1, inputs x1": (1.0, 1.0, None),
    "sigma 1, gate 8": (1.0, 1.0, 8.0),
    "sigma 1, gate 16": (1.0, 1.0, 16.0),
}


def read(pattern: str) -> list[np.ndarray]:
    return [cv2.imread(f)[..., ::-1].copy() for f in sorted(glob.glob(pattern))]


def smoothed(fused, at, near, sigma, w_input, gate):
    """The video with each in-between frame's band below ``sigma`` taken from the weighted mean."""
    out = []
    for i, f in enumerate(fused):
        if at[i]:
            out.append(f)
            continue
        own = f.astype(np.float32)
        ws = []
        for j, v in near[i].items():
            w = np.full(own.shape[:2], w_input if at[j] else 1.0, np.float32)
            if gate is not None:
                w = w * np.exp(-(cv2.GaussianBlur(np.abs(v - own).mean(-1), (0, 0), 1.5) / gate) ** 2)
            ws.append(w)
        mean = (own + sum(w[..., None] * v for w, v in zip(ws, near[i].values()))) / (1 + sum(ws))[..., None]
        out.append(np.clip(np.rint(own + cv2.GaussianBlur(mean - own, (0, 0), sigma)), 0, 255).astype(np.uint8))
    return even_key_detail(out, at)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="RUN:CASE")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = {"command": " ".join(sys.argv), "cases": {}}
    for pair in args.pairs:
        run, case = pair.split(":")
        real, fused = read(f"{case}/frame_*.png"), read(f"{run}/frames/*.png")
        at = [i in KEYS for i in range(len(fused))]
        fused = [real[i] if a else f for i, (f, a) in enumerate(zip(fused, at))]
        dis = make_dis("medium", fused[0].shape[1], None, FlowConfig.finest_min_width)
        n = len(fused)
        near = {i: {j: moved_onto(fused[i], fused[j], dis) for j in range(i - 2, i + 3) if j != i and 0 <= j < n}
                for i in range(n) if not at[i]}
        rows = {}
        for name, (sigma, w_input, gate) in ROWS.items():
            m = evaluate(smoothed(fused, at, near, sigma, w_input, gate), dict(enumerate(real)), KEYS)
            rows[name] = [round(m["psnr_heldout"], 3), round(m["ssim_heldout"], 4), round(m["sharpness_heldout"], 3)]
        res["cases"][Path(case).name] = rows
        print(Path(case).name, rows, flush=True)
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
