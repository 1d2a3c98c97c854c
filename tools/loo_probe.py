"""Probes of two ideas for sharper or closer in-between frames on the 2D route, scored on a real clip
(BENCHMARKS.md, issue 12, "Tried and set aside"):

1. a per-clip linear correction learnt from the leave-one-out pairs (the fused rebuild of input 9 from
   0 and 19, of 19 from 9 and 29, against the real frames): a 5x5 filter on the fused frame's detail band
   plus the two warps' difference, fitted by ridge regression, cross-validated (fit on one held-out input,
   scored on the other), then applied to the real in-between frames at strengths 0 / 0.5 / 1;
2. aligning the two warped keys to each other (DIS flow between them, each moved part of the way)
   before the blend.

    python tools/loo_probe.py CASE [--scale 0.5]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.eval.metrics import laplacian_variance, match_size, psnr, ssim  # noqa: E402
from sparsevid.fuse.flow2d import pair_flow  # noqa: E402
from sparsevid.fuse.fusion import (Candidate, FuseConfig, PairFlows, bracket, flow_candidates, fuse,  # noqa: E402
                                   to_float)
from sparsevid.imaging import blur, grid, remap  # noqa: E402
from sparsevid.render.frames import to_uint8  # noqa: E402

KEYS = [0, 9, 19, 29]
RAD = 2


def features(fused: np.ndarray, cands) -> np.ndarray:
    """[H, W, 3, F]: the fused frame's detail band in a 5x5 window, the two warps' difference, 1."""
    hp = fused - blur(fused, 1.5)
    cols = [np.roll(hp, (dy, dx), axis=(0, 1)) for dy in range(-RAD, RAD + 1) for dx in range(-RAD, RAD + 1)]
    return np.stack(cols + [cands[0].image - cands[1].image, np.ones_like(fused)], -1)


def fit(pairs) -> np.ndarray:
    a = b = 0
    for fused, cands, real in pairs:
        x = features(fused, cands)[8:-8, 8:-8].reshape(-1, (2 * RAD + 1) ** 2 + 2)
        y = (real - fused)[8:-8, 8:-8].reshape(-1)
        a, b = a + x.T @ x, b + x.T @ y
    return np.linalg.solve(a + 1e-3 * np.trace(a) / len(a) * np.eye(len(a)), b)


def apply(fused, cands, w, strength=1.0):
    return np.clip(fused + strength * (features(fused, cands) @ w), 0, 1)


def align_to_each_other(cands, t, cfg):
    a, b = cands[0].image, cands[1].image
    fl = pair_flow(to_uint8(a), to_uint8(b), cfg.flow)
    gx, gy = grid(*a.shape[:2])
    am = remap(a, gx + t * fl.fab[..., 0], gy + t * fl.fab[..., 1], cv2.INTER_CUBIC)
    bm = remap(b, gx + (1 - t) * fl.fba[..., 0], gy + (1 - t) * fl.fba[..., 1], cv2.INTER_CUBIC)
    return [Candidate(np.clip(am, 0, 1), cands[0].weight, "2d"), Candidate(np.clip(bm, 0, 1), cands[1].weight, "2d")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    scene = load_scene(args.case, keyframes=KEYS)
    size = (round(scene.image_size[1] * args.scale), round(scene.image_size[0] * args.scale))
    gt = {f.index: match_size(f.image, size) for f in scene.frames + scene.gt_frames}
    cfg = FuseConfig()
    flows = PairFlows({k: gt[k] for k in KEYS}, cfg.flow)
    f = {k: to_float(gt[k]) for k in KEYS}

    def frame(k0, k1, t):
        cs = flow_candidates(f[k0], f[k1], t, flows(k0, k1), cfg)
        return fuse(cs, None, 1.0, cfg), cs

    def score(img, i):
        u = to_uint8(img)
        return psnr(u, gt[i]), ssim(u, gt[i]), laplacian_variance(u) / laplacian_variance(gt[i])

    loo = {k: frame(k0, k1, (k - k0) / (k1 - k0)) for k0, k, k1 in [(0, 9, 19), (9, 19, 29)]}
    for tr, te in [(9, 19), (19, 9)]:
        w = fit([(*loo[tr], f[tr])])
        print(f"leave-one-out: fit on {tr}, scored on {te}: PSNR/SSIM/sharpness {np.round(score(loo[te][0], te), 3)}"
              f" -> {np.round(score(apply(*loo[te], w), te), 3)}")
    w = fit([(*loo[k], f[k]) for k in (9, 19)])
    outs = {i: (frame(bracket(i, KEYS).k0, bracket(i, KEYS).k1, bracket(i, KEYS).t), bracket(i, KEYS).t)
            for i in sorted(gt) if i not in KEYS}
    for s in (0.0, 0.5, 1.0):
        m = np.mean([score(apply(*fc, w, s), i) for i, (fc, _) in outs.items()], 0)
        print(f"held-out frames, correction strength {s}: PSNR {m[0]:.2f} SSIM {m[1]:.3f} sharpness {m[2]:.2f}")
    m = np.mean([score(fuse(align_to_each_other(fc[1], t, cfg), None, 1.0, cfg), i) for i, (fc, t) in outs.items()], 0)
    print(f"held-out frames, warps aligned to each other: PSNR {m[0]:.2f} SSIM {m[1]:.3f} sharpness {m[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
