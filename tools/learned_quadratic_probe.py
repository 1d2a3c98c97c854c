"""Probe (issue 12): the learned route (RIFE 4.25) moved along the 2D route's quadratic motion.

    python tools/learned_quadratic_probe.py CASE... [--json OUT.json]

RIFE interpolates linearly between the two neighbouring inputs. The 2D route's quadratic motion knows, per pixel,
how far each key's content moves beyond the linear motion at t (:meth:`PairFlows.shifts`). RIFE's frame is resampled
by those shifts blended by time ((1 - t) s_a + t s_b; a key without a far-side key counts 0). Scored: held-out PSNR /
SSIM over the video's 26 frames, and the leave-one-out rebuilds of 9 (from 0, 19, with 29 as a far key) and 19.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval import rife  # noqa: E402
from sparsevid.eval.metrics import psnr, ssim  # noqa: E402
from sparsevid.fuse.flow2d import FlowConfig  # noqa: E402
from sparsevid.fuse.fusion import PairFlows  # noqa: E402
from sparsevid.imaging import grid, remap  # noqa: E402

KEYS = [0, 9, 19, 29]


def corrected(img: np.ndarray, t: float, sa, sb, weight: float = 1.0) -> np.ndarray:
    if sa is None and sb is None:
        return img
    h, w = img.shape[:2]
    s = np.zeros((h, w, 2), np.float32)
    if sa is not None:
        s += (1 - t) * sa
    if sb is not None:
        s += t * sb
    gx, gy = grid(h, w)
    out = remap(img.astype(np.float32), gx - weight * s[..., 0], gy - weight * s[..., 1], cv2.INTER_CUBIC)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", type=Path, nargs="+")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    model = rife.load_rife()
    res = {}
    for case in args.cases:
        frames = {i: cv2.imread(str(case / f"frame_{i:04d}.png"))[..., ::-1].copy() for i in range(30)}
        h, w = frames[0].shape[:2]
        pf = PairFlows({k: frames[k] for k in KEYS}, FlowConfig())
        rows = {"rife": [], "rife+quad": [], "rife+quad/2": []}
        for k0, k1 in zip(KEYS, KEYS[1:]):
            between = list(range(k0 + 1, k1))
            ts = [(f - k0) / (k1 - k0) for f in between]
            imgs = rife.interpolate_pair(frames[k0], frames[k1], ts, model=model, scales=rife.scales_for(h, w))
            for f, t, img in zip(between, ts, imgs):
                sa, sb = pf.shifts(KEYS, k0, k1, t)
                for name, im in (("rife", img), ("rife+quad", corrected(img, t, sa, sb)),
                                 ("rife+quad/2", corrected(img, t, sa, sb, 0.5))):
                    rows[name].append((psnr(im, frames[f]), ssim(im, frames[f])))
        loo = {"rife": [], "rife+quad": []}
        for a, k, b in ((0, 9, 19), (9, 19, 29)):
            keys = [q for q in KEYS if q != k]
            t = (k - a) / (b - a)
            img = rife.interpolate_pair(frames[a], frames[b], [t], model=model, scales=rife.scales_for(h, w))[0]
            sa, sb = pf.shifts(keys, a, b, t)
            loo["rife"].append(psnr(img, frames[k]))
            loo["rife+quad"].append(psnr(corrected(img, t, sa, sb), frames[k]))
        out = {n: [round(float(np.mean([v[0] for v in r])), 3), round(float(np.mean([v[1] for v in r])), 4)]
               for n, r in rows.items()}
        out["loo"] = {n: round(float(np.mean(v)), 3) for n, v in loo.items()}
        res[case.name] = out
        print(f"{case.name:18s} " + "  ".join(f"{n} {v[0]:.3f}/{v[1]:.4f}" for n, v in out.items() if n != "loo")
              + f"  loo {out['loo']['rife']:.2f} -> {out['loo']['rife+quad']:.2f}", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"command": " ".join(sys.argv), "cases": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
