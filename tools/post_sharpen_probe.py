"""Probe (issue 12, sharpness and pulse): what sharpening the in-between frames of a finished run costs.

    python tools/post_sharpen_probe.py CASE OUT/frames

Unsharp masking (gain k on the band above a Gaussian of sigma px) and luminance grain (white noise of sd grey
levels) applied to the held-out frames of a run's output, each scored on the 26 held-out frames (PSNR, SSIM,
sharpness as ../shared/bench/score.py measures it, and the pulse ratio: held-out sharpness over that of the
output's input-time frames).
"""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval.metrics import laplacian_variance, psnr, ssim  # noqa: E402

KEYS = [0, 9, 19, 29]


def read(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(f)[:, :, ::-1] for f in sorted(glob.glob(str(folder / "*.png")))]


def usm(img: np.ndarray, gain: float, sigma: float) -> np.ndarray:
    f = img.astype(np.float32)
    return np.clip(f + (gain - 1) * (f - cv2.GaussianBlur(f, (0, 0), sigma)) + 0.5, 0, 255).astype(np.uint8)


def grain(img: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    n = rng.normal(0, sd, img.shape[:2])[..., None]
    return np.clip(img + n + 0.5, 0, 255).astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("frames", type=Path)
    args = ap.parse_args()
    gt, pred = read(args.case), read(args.frames)
    held = [i for i in range(30) if i not in KEYS]

    def score(frames, name):
        p = np.mean([psnr(frames[i], gt[i]) for i in held])
        s = np.mean([ssim(frames[i], gt[i]) for i in held])
        sh = np.mean([laplacian_variance(frames[i]) / laplacian_variance(gt[i]) for i in held])
        pu = np.mean([laplacian_variance(frames[i]) for i in held]) / np.mean([laplacian_variance(frames[i]) for i in KEYS])
        print(f"{name:28s} PSNR {p:.3f}  SSIM {s:.4f}  sharpness {sh:.3f}  pulse {pu:.3f}", flush=True)

    score(pred, "as run")
    for sigma in (0.7, 1.0, 1.5):
        for gain in (1.5, 2.0):
            score([f if i in KEYS else usm(f, gain, sigma) for i, f in enumerate(pred)], f"unsharp sigma {sigma} gain {gain}")
    rng = np.random.default_rng(0)
    for sd in (1.0, 2.0, 3.0):
        score([f if i in KEYS else grain(f, sd, rng) for i, f in enumerate(pred)], f"grain sd {sd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
