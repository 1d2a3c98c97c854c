"""Probe (issue 12, sharpness and pulse): what sharpening the in-between frames of a finished run costs.

    python tools/post_sharpen_probe.py CASE OUT/frames

Unsharp masking (gain k on the band above a Gaussian of sigma px) and luminance grain (white noise of sd grey
levels) applied to the held-out frames of a run's output, each scored on the 26 held-out frames (PSNR, SSIM,
sharpness as ../shared/bench/score.py measures it, and the pulse ratio: held-out sharpness over that of the
output's input-time frames).

    python tools/post_sharpen_probe.py CASE OUT/frames --aligned-detail --oracle-blur

``--aligned-detail``: the band above a Gaussian of sigma px replaced, at gain g, by that band of the nearer input
aligned to the frame by DIS flow (computed with the frame itself, bicubic resampling): detail taken from a real
frame rather than amplified from the estimate. ``--oracle-blur``: the Gaussian blur of each held-out frame
(sigma_u, sigma_v at 0/45/90/135 deg) nearest to its real frame, chosen *with the real frame*: an upper bound
on what any softening could buy, and at what sharpness.

    python tools/post_sharpen_probe.py CASE OUT/frames --ssim-terms --band-boost

``--ssim-terms``: where the held-out frames' SSIM is lost: the three terms of the grey SSIM (luminance, contrast,
structure; Gaussian window sigma 1.5 px as the scorer's), the ratio of the frames' local standard deviation to the
real frames', and the SSIM of Y, Cr and Cb apart. ``--band-boost``: mild gains (1.1, 1.25) on the band above a
Gaussian of 1.5, 3 and 6 px: SSIM's contrast term asks for more local contrast, so a frame short of it might gain
SSIM at little cost in PSNR. With either of these two, the unsharp-mask and grain rows are left out.
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
from sparsevid.imaging import blur, gray_u8, grid, remap  # noqa: E402

KEYS = [0, 9, 19, 29]


def read(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(f)[:, :, ::-1] for f in sorted(glob.glob(str(folder / "*.png")))]


def usm(img: np.ndarray, gain: float, sigma: float) -> np.ndarray:
    f = img.astype(np.float32)
    return np.clip(f + (gain - 1) * (f - cv2.GaussianBlur(f, (0, 0), sigma)) + 0.5, 0, 255).astype(np.uint8)


def grain(img: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    n = rng.normal(0, sd, img.shape[:2])[..., None]
    return np.clip(img + n + 0.5, 0, 255).astype(np.uint8)


def aligned_detail(img: np.ndarray, src: np.ndarray, gain: float, sigma: float,
                   dis: cv2.DISOpticalFlow) -> np.ndarray:
    flow = dis.calc(gray_u8(img), gray_u8(src), None)
    gx, gy = grid(*img.shape[:2])
    warped = remap(src.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_CUBIC, cv2.BORDER_REFLECT)
    f = img.astype(np.float32)
    detail = (warped - blur(warped, sigma)) - (f - blur(f, sigma))
    return np.clip(f + gain * detail + 0.5, 0, 255).astype(np.uint8)


def gaussian_kernel(su: float, sv: float, theta: float, radius: int = 6) -> np.ndarray:
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    u, v = np.cos(theta) * x + np.sin(theta) * y, -np.sin(theta) * x + np.cos(theta) * y
    k = np.exp(-0.5 * ((u / su) ** 2 + (v / sv) ** 2))
    return (k / k.sum()).astype(np.float32)


def oracle_blur(img: np.ndarray, real: np.ndarray, isotropic: bool) -> np.ndarray:
    """The blur of ``img`` nearest to ``real`` (squared error) over a small grid, or ``img`` if none is nearer."""
    f = img.astype(np.float32)
    best, best_err = img, float(np.mean((f - real) ** 2))
    sig = (0.3, 0.5, 0.7, 1.0, 1.4)
    for su in sig:
        for sv in sig:
            if sv > su or (isotropic and sv != su):
                continue
            for theta in ((0.0,) if su == sv else (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)):
                out = cv2.filter2D(f, -1, gaussian_kernel(su, sv, theta), borderType=cv2.BORDER_REFLECT)
                out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
                err = float(np.mean((out.astype(np.float32) - real) ** 2))
                if err < best_err:
                    best, best_err = out, err
    return best


def ssim_terms(pred: np.ndarray, real: np.ndarray) -> list[float]:
    """Grey SSIM's luminance, contrast and structure terms (each averaged over the frame), the local standard
    deviation of ``pred`` over ``real``'s, and the SSIM of Y, Cr, Cb (uint8 RGB frames)."""
    from skimage.metrics import structural_similarity

    a, b = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float64) for x in (real, pred))
    g = lambda x: cv2.GaussianBlur(x, (0, 0), 1.5)  # noqa: E731
    ma, mb = g(a), g(b)
    va, vb = np.maximum(g(a * a) - ma * ma, 0), np.maximum(g(b * b) - mb * mb, 0)
    cov = g(a * b) - ma * mb
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    sa, sb = np.sqrt(va), np.sqrt(vb)
    terms = [float(np.mean((2 * ma * mb + c1) / (ma * ma + mb * mb + c1))),
             float(np.mean((2 * sa * sb + c2) / (va + vb + c2))),
             float(np.mean((cov + c2 / 2) / (sa * sb + c2 / 2))), float(sb.mean() / sa.mean())]
    ya, yb = (cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb) for x in (real, pred))
    return terms + [float(structural_similarity(ya[..., c], yb[..., c], gaussian_weights=True, sigma=1.5,
                                                use_sample_covariance=False, data_range=255)) for c in range(3)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("frames", type=Path)
    ap.add_argument("--aligned-detail", action="store_true", help="the nearer input's aligned detail band")
    ap.add_argument("--oracle-blur", action="store_true", help="each frame's best blur, fitted to the real frame")
    ap.add_argument("--ssim-terms", action="store_true", help="SSIM's three terms and Y, Cr, Cb apart")
    ap.add_argument("--band-boost", action="store_true", help="mild gains on the band above 1.5, 3, 6 px only")
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
    if args.ssim_terms:
        t = np.mean([ssim_terms(pred[i], gt[i]) for i in held], axis=0)
        print(f"SSIM terms (grey): luminance {t[0]:.4f}  contrast {t[1]:.4f}  structure {t[2]:.4f}  "
              f"local sd over the real frame's {t[3]:.3f}   SSIM of Y {t[4]:.4f}  Cr {t[5]:.4f}  Cb {t[6]:.4f}",
              flush=True)
    if args.band_boost:
        for sigma in (1.5, 3.0, 6.0):
            for gain in (1.1, 1.25):
                score([f if i in KEYS else usm(f, gain, sigma) for i, f in enumerate(pred)],
                      f"band boost sigma {sigma} gain {gain}")
    if not (args.ssim_terms or args.band_boost):
        for sigma in (0.7, 1.0, 1.5):
            for gain in (1.5, 2.0):
                score([f if i in KEYS else usm(f, gain, sigma) for i, f in enumerate(pred)],
                      f"unsharp sigma {sigma} gain {gain}")
        rng = np.random.default_rng(0)
        for sd in (1.0, 2.0, 3.0):
            score([f if i in KEYS else grain(f, sd, rng) for i, f in enumerate(pred)], f"grain sd {sd}")
    if args.aligned_detail:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        nearer = {i: min(KEYS, key=lambda k: abs(k - i)) for i in held}
        for sigma in (0.5, 0.8):
            for gain in (0.5, 1.0):
                score([f if i in KEYS else aligned_detail(f, gt[nearer[i]], gain, sigma, dis)
                       for i, f in enumerate(pred)], f"aligned detail sigma {sigma} gain {gain}")
    if args.oracle_blur:
        for iso in (True, False):
            score([f if i in KEYS else oracle_blur(f, gt[i].astype(np.float32), iso) for i, f in enumerate(pred)],
                  f"oracle blur, {'isotropic' if iso else 'anisotropic'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
