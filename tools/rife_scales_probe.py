"""Probe (issue 12, the learned route's resolution): RIFE 4.25 alone at several block-divisor lists, one pass,
scored on the held-out frames, and on the leave-one-out rebuilds of inputs 9 (from 0, 19) and 19 (from 9, 29).

    python tools/rife_scales_probe.py CASE 16,8,4,2,1 8,4,2,1,0.5 ...

Each list gives the five flow blocks' resize divisors (16, 8, 4, 2, 1 = the reference's scale 1; 8, 4, 2, 1, 0.5 =
scale 2). Inputs 0, 9, 19, 29.
"""
from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval import rife  # noqa: E402
from sparsevid.eval.metrics import psnr, ssim  # noqa: E402

KEYS = [0, 9, 19, 29]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("scales", nargs="+", help="comma-separated block divisors, coarse to fine")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    gt = [cv2.imread(f)[:, :, ::-1].copy() for f in sorted(glob.glob(str(args.case / "frame_*.png")))]
    model = rife.load_rife(device=args.device)
    for text in args.scales:
        scales = tuple(float(v) for v in text.split(","))
        t0 = time.perf_counter()
        pred = {}
        for k0, k1 in zip(KEYS, KEYS[1:]):
            between = list(range(k0 + 1, k1))
            imgs = rife.interpolate_pair(gt[k0], gt[k1], [(i - k0) / (k1 - k0) for i in between], model=model,
                                         device=args.device, scales=scales)
            pred.update(zip(between, imgs))
        secs = time.perf_counter() - t0
        loo = [psnr(rife.interpolate_pair(gt[a], gt[b], [(k - a) / (b - a)], model=model, device=args.device,
                                          scales=scales)[0], gt[k]) for a, k, b in ((0, 9, 19), (9, 19, 29))]
        print(f"{text:18s} held-out {np.mean([psnr(pred[i], gt[i]) for i in pred]):.3f} / "
              f"{np.mean([ssim(pred[i], gt[i]) for i in pred]):.4f}  leave-one-out {loo[0]:.2f} {loo[1]:.2f} "
              f"(mean {np.mean(loo):.3f})  {secs:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
