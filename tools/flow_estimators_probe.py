"""Probe (issue 12, session 20): the scorer's DIS peer with its optical flow swapped for other dense estimators.

    python tools/flow_estimators_probe.py CASE... [--methods dis,dis_fine,deepflow,farneback,pca,rlof,tvl1]
        [--contrib DIR] [--json OUT.json]

CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29). Every method is interpolated as the peer is
(:func:`sparsevid.eval.peers.dis_flow`: linear motion, bilinear warps blended by time) and scored on the held-out
frames. The estimators beyond DIS and Farneback are in opencv-contrib: install ``opencv-contrib-python-headless``
of the same version as ``opencv-python-headless`` into a side folder (``pip install --no-deps --target DIR ...``)
and pass it as ``--contrib DIR``; it is put first on ``sys.path``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--methods", default="dis,dis_fine,farneback")
    ap.add_argument("--contrib", type=Path, help="folder holding opencv-contrib's cv2")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.contrib:
        sys.path.insert(0, str(args.contrib))
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
    import cv2
    import numpy as np

    from sparsevid.eval.metrics import evaluate
    from sparsevid.eval.peers import _backward_warp

    keys = [0, 9, 19, 29]

    def grey(x):
        return cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)

    def estimator(name):
        if name in ("dis", "dis_fine"):
            d = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            if name == "dis_fine":
                d.setFinestScale(0)
            return lambda a, b: d.calc(grey(a), grey(b), None)
        if name == "farneback":
            return lambda a, b: cv2.calcOpticalFlowFarneback(grey(a), grey(b), None, 0.5, 5, 15, 5, 7, 1.5, 0)
        if name == "rlof":
            return lambda a, b: cv2.optflow.calcOpticalFlowDenseRLOF(a[..., ::-1].copy(), b[..., ::-1].copy(), None)
        make = {"deepflow": "createOptFlow_DeepFlow", "pca": "createOptFlow_PCAFlow", "tvl1": "DualTVL1OpticalFlow_create"}
        d = getattr(cv2.optflow, make[name])()
        return lambda a, b: d.calc(grey(a), grey(b), None)

    def interpolate(frames, flow):
        h, w = frames[0].shape[:2]
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        out = [None] * 30
        for k0, k1 in zip(keys[:-1], keys[1:]):
            a, b = frames[k0], frames[k1]
            f01, f10 = flow(a, b).astype(np.float32), flow(b, a).astype(np.float32)
            for f in range(k0, k1 + 1):
                t = (f - k0) / (k1 - k0)
                if t in (0, 1):
                    out[f] = a if t == 0 else b
                    continue
                ft0 = -t * (1 - t) * f01 + t * t * f10
                ft1 = (1 - t) * (1 - t) * f01 - t * (1 - t) * f10
                out[f] = cv2.addWeighted(_backward_warp(a, ft0, gx, gy), 1 - t, _backward_warp(b, ft1, gx, gy), t, 0)
        return out

    res = {}
    for case in args.cases:
        frames = {int(p.stem.split("_")[1]): cv2.imread(str(p))[..., ::-1].copy() for p in sorted(case.glob("frame_*.png"))}
        for m in args.methods.split(","):
            t0 = time.perf_counter()
            out = interpolate(frames, estimator(m))
            dt = time.perf_counter() - t0
            r = evaluate(out, frames, keys)
            res.setdefault(case.name, {})[m] = [round(r["psnr_heldout"], 3), round(r["ssim_heldout"], 4), round(dt, 1)]
            print(f"{case.name} {m}: {r['psnr_heldout']:.3f} / {r['ssim_heldout']:.4f}, {dt:.1f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "psnr_ssim_seconds": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
