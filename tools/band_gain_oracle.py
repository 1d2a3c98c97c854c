"""How much PSNR a per-band correction of a finished video could buy, fitted to the truth (an oracle, not a method).

    python tools/band_gain_oracle.py FRAMES_DIR CASE [--keys 0,9,19,29]

FRAMES_DIR holds a run's 30 output frames (``frames/frame_0000.png`` ...), CASE the real frames. Each held-out output
frame is split into difference-of-Gaussians bands (sigma 0.5, 1, 2, 4, 8 px, and the rest), and each detail band gets
the gain that minimises the squared error against the real frames (least squares, the low band kept), once for all
frames and once per distance to the nearest input. Printed: the gains, PSNR and sharpness (the reference scorer's
variance of the Laplacian relative to the real frame) before and after. A band whose gain is near 0 carries nothing
the real frames share; a gain above 1, detail the video has too little of (BENCHMARKS.md, session 30).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sparsevid.eval.metrics import psnr, sharpness_ratio  # noqa: E402
from sharpness_ceiling import SIGMAS, bands  # noqa: E402  (the same bands as the sharpness ceiling's)


def recombine(parts: list[np.ndarray], gains: np.ndarray) -> np.ndarray:
    return sum(g * b for g, b in zip(gains, parts[:-1])) + parts[-1]


def fit_gains(rows: list[tuple[int, np.ndarray, np.ndarray, list[np.ndarray]]]) -> np.ndarray:
    """Least-squares gains of the detail bands against the real frames (the low band kept at 1)."""
    n = len(SIGMAS)
    a, b = np.zeros((n, n)), np.zeros(n)
    for _, real, _, parts in rows:
        x = np.stack([p.ravel() for p in parts[:-1]], 1)
        a += x.T @ x
        b += x.T @ (real - parts[-1]).ravel()
    return np.linalg.solve(a, b)


def sharp(pred: np.ndarray, real: np.ndarray) -> float:
    return sharpness_ratio(*(np.clip(x, 0, 255).round().astype(np.uint8) for x in (pred, real)))


def report(label: str, rows, gains: np.ndarray) -> str:
    fixed = [np.clip(recombine(parts, gains), 0, 255) for _, _, _, parts in rows]
    before = np.mean([psnr(pred, real) for _, real, pred, _ in rows])
    after = np.mean([psnr(f, real) for f, (_, real, _, _) in zip(fixed, rows)])
    s0 = np.mean([sharp(pred, real) for _, real, pred, _ in rows])
    s1 = np.mean([sharp(f, real) for f, (_, real, _, _) in zip(fixed, rows)])
    return (f"{label:10s} n={len(rows):2d} gains {np.array2string(gains, precision=2)}  PSNR {before:.3f} -> {after:.3f}"
            f"  sharpness {s0:.3f} -> {s1:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("frames", type=Path)
    ap.add_argument("case", type=Path)
    ap.add_argument("--keys", default="0,9,19,29")
    args = ap.parse_args()
    keys = [int(k) for k in args.keys.split(",")]
    preds = sorted(args.frames.glob("frame_*.png"))
    rows = []
    for i, path in enumerate(preds):
        if i in keys:
            continue
        real = cv2.imread(str(args.case / f"frame_{i:04d}.png"))
        pred = cv2.imread(str(path))
        if real is None or pred is None:
            raise SystemExit(f"error: frame {i} missing in {args.frames} or {args.case}")
        if pred.shape != real.shape:
            pred = cv2.resize(pred, real.shape[1::-1], interpolation=cv2.INTER_AREA)
        real = cv2.cvtColor(real, cv2.COLOR_BGR2RGB).astype(np.float64)
        pred = cv2.cvtColor(pred, cv2.COLOR_BGR2RGB).astype(np.float64)
        rows.append((min(abs(i - k) for k in keys), real, pred, bands(pred)))
    print(report("all", rows, fit_gains(rows)))
    for d in sorted({r[0] for r in rows}):
        sel = [r for r in rows if r[0] == d]
        print(report(f"distance {d}", sel, fit_gains(sel)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
