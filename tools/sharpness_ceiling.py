"""How sharp can a PSNR-optimal in-between frame be? An oracle bound measured on a real clip
(BENCHMARKS.md, issue 12, "the sharpness ceiling"):

    python tools/sharpness_ceiling.py CASE [--gaps 1,2,5,10] [--json OUT.json]

For each real frame ``t`` of CASE (frames 2..27, inside the 30), its neighbour ``t + gap`` is aligned to it by
dense DIS flow computed *between the two real frames* (a far better predictor than any interpolation from inputs
10 frames apart). The prediction is then split into Laplacian-pyramid bands (differences of Gaussian blurs) and
each band is scaled by the gain that minimises the squared error against the real frame (least squares, fitted
with the real frame: an oracle). Printed per gap, over all frames: PSNR and sharpness (variance of the Laplacian
relative to the real frame, as ``score.py`` measures it) of the aligned neighbour as it is and after the oracle
gains, the finest band's correlation with the real frame, and its gain. A predictor that minimises squared error
can only keep a band's detail in proportion to that correlation, so the sharpness after the oracle gains bounds
what a PSNR-optimal frame can reach at that distance. First, for scale: the sharpness and squared error of the
real frames themselves after a slight Gaussian blur.

``--keys 0,9,19,29`` adds the protocol's own bound: every held-out frame predicted from the two inputs around it,
each aligned to it by flow computed with the real frame, the two combined band by band with the least-squares gains
(two per band). That is the PSNR-optimal linear use of the inputs with perfect alignment, scored like ``score.py``
(mean PSNR and sharpness over the held-out frames).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval.metrics import laplacian_variance, psnr  # noqa: E402
from sparsevid.imaging import gray_u8, grid, make_dis, remap  # noqa: E402

SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)


def bands(img: np.ndarray) -> list[np.ndarray]:
    """Differences of Gaussian blurs at ``SIGMAS`` (finest first), then the residual low band; they sum to ``img``."""
    out, prev = [], img
    for s in SIGMAS:
        low = cv2.GaussianBlur(img, (0, 0), s)
        out.append(prev - low)
        prev = low
    return out + [prev]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("--gaps", default="1,2,5,10")
    ap.add_argument("--margin", type=int, default=16, help="border (px) left out of the fit and the scores")
    ap.add_argument("--keys", default="", help="input frames for the protocol bound, e.g. 0,9,19,29")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    files = sorted(args.case.glob("frame_*.png"))
    frames = [cv2.imread(str(f)).astype(np.float32) for f in files]
    h, w = frames[0].shape[:2]
    gx, gy = grid(h, w)
    dis = make_dis("medium", w, 0, 0)
    m = args.margin
    crop = (slice(m, h - m), slice(m, w - m))
    blurs = {}
    for s in (0.5, 0.7, 1.0):  # how much of the sharpness a slight blur removes, and at what squared error
        rows = [(laplacian_variance(cv2.GaussianBlur(f, (0, 0), s)[crop].astype(np.uint8))
                 / laplacian_variance(f[crop].astype(np.uint8)),
                 float(np.mean((cv2.GaussianBlur(f, (0, 0), s) - f)[crop] ** 2))) for f in frames]
        blurs[s] = {"sharpness": round(float(np.mean([r[0] for r in rows])), 3),
                    "mse": round(float(np.mean([r[1] for r in rows])), 1)}
        print(f"real frames blurred by sigma {s} px: sharpness {blurs[s]['sharpness']:.2f}, squared error "
              f"{blurs[s]['mse']:.1f} (grey levels^2)", flush=True)
    results = {}
    for gap in (int(g) for g in args.gaps.split(",")):
        rows = []
        for t in range(2, len(frames) - 2):
            s = t + gap if t + gap < len(frames) else t - gap
            flow = dis.calc(gray_u8(frames[t].astype(np.uint8)), gray_u8(frames[s].astype(np.uint8)), None)
            pred = np.clip(remap(frames[s], gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_CUBIC), 0, 255)
            pb, tb = bands(pred), bands(frames[t])
            gains = [float(np.sum(p[crop] * q[crop]) / max(np.sum(p[crop] ** 2), 1e-9)) for p, q in zip(pb, tb)]
            fine = np.corrcoef(pb[0][crop].ravel(), tb[0][crop].ravel())[0, 1]
            opt = np.clip(sum(g * p for g, p in zip(gains, pb)), 0, 255)
            real = frames[t][crop].astype(np.uint8)
            rows.append({"psnr": psnr(pred[crop].astype(np.uint8), real),
                         "psnr_opt": psnr(opt[crop].astype(np.uint8), real),
                         "sharp": laplacian_variance(pred[crop].astype(np.uint8)) / laplacian_variance(real),
                         "sharp_opt": laplacian_variance(opt[crop].astype(np.uint8)) / laplacian_variance(real),
                         "fine_corr": float(fine), "fine_gain": gains[0], "gains": gains})
        mean = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0] if k != "gains"}
        mean["gains"] = [round(float(g), 3) for g in np.mean([r["gains"] for r in rows], 0)]
        results[gap] = mean
        print(f"gap {gap:2d}: aligned neighbour {mean['psnr']:.2f} dB, sharpness {mean['sharp']:.2f} | oracle band "
              f"gains {mean['psnr_opt']:.2f} dB, sharpness {mean['sharp_opt']:.2f} | finest band corr "
              f"{mean['fine_corr']:.2f}, gain {mean['fine_gain']:.2f}; gains by band {mean['gains']}", flush=True)
    protocol = None
    if args.keys:
        keys = [int(k) for k in args.keys.split(",")]

        def aligned(t: int, k: int) -> np.ndarray:
            flow = dis.calc(gray_u8(frames[t].astype(np.uint8)), gray_u8(frames[k].astype(np.uint8)), None)
            return np.clip(remap(frames[k], gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_CUBIC), 0, 255)

        rows = []
        for t in range(keys[0] + 1, keys[-1]):
            if t in keys:
                continue
            k0 = max(k for k in keys if k < t)
            k1 = min(k for k in keys if k > t)
            pa, pb, tb = bands(aligned(t, k0)), bands(aligned(t, k1)), bands(frames[t])
            opt = np.zeros_like(frames[t])
            for a, b, q in zip(pa, pb, tb):
                A = np.stack([a[crop].ravel(), b[crop].ravel()], 1).astype(np.float64)
                g = np.linalg.lstsq(A, q[crop].ravel().astype(np.float64), rcond=None)[0]
                opt += g[0] * a + g[1] * b
            real = frames[t][crop].astype(np.uint8)
            got = np.clip(opt, 0, 255)[crop].astype(np.uint8)
            rows.append((psnr(got, real), laplacian_variance(got) / laplacian_variance(real)))
        protocol = {"keys": keys, "psnr": round(float(np.mean([r[0] for r in rows])), 3),
                    "sharpness": round(float(np.mean([r[1] for r in rows])), 3), "frames": len(rows)}
        print(f"protocol bound, inputs {keys}: {protocol['psnr']:.2f} dB, sharpness {protocol['sharpness']:.2f} "
              f"over {len(rows)} held-out frames", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "case": str(args.case), "sigmas": SIGMAS,
                                         "blurs": blurs, "gaps": results, "protocol": protocol}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
