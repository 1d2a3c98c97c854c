"""Small image operations shared by the fixers and the fusion (OpenCV, float32, CPU).

Pixel coordinates here are OpenCV's (pixel centres at integers); :mod:`sparsevid.fixer.reproject`
converts from the COLMAP convention (centres at +0.5) where it builds its maps.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from sparsevid.eval.metrics import laplacian_variance as laplacian_var

#: OpenCV DIS optical-flow presets by name
DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
_LN2 = float(np.log(2.0))


def long_side(height: int, width: int) -> int:
    """The frame's longer side (px): what the pixel sizes of the settings are relative to ("px per 1000 px").

    The scale of the picture in pixels is set by the focal length, which is the same for a camera's
    portrait and landscape frames (a phone held upright films its sensor's long side vertically), so a
    setting tied to the width would be 1.8-2.4 times too small on a portrait frame. For a landscape or
    square frame this is the width."""
    return max(int(height), int(width))


def px_scale(height: int, width: int) -> float:
    """The factor that turns a setting given in px per 1000 px into pixels of a ``height`` x ``width`` frame:
    ``long_side / 1000``."""
    return long_side(height, width) / 1000.0


def same_picture(size: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether frames of ``size`` and ``other`` (each (w, h)) can be the same picture at two resolutions: their
    aspect ratios agree within what rounding a resize leaves (one pixel of ``other``'s height, plus 1 %). A
    turned or cropped copy is not the same picture."""
    (w, h), (ow, oh) = size, other
    return abs(h * ow / w - oh) <= 1.0 + 0.01 * oh


def dis_finest_scale(width: int, finest_scale: int | None, min_width: int) -> int | None:
    """The finest pyramid level DIS refines an image to, ``width`` its longer side (:func:`long_side`).

    ``finest_scale`` >= 0 is taken as is; -1 gives None (the preset's own level, 1 for medium);
    None picks by size: the coarsest level still at least ``min_width`` pixels wide (0 below twice
    that width). DIS matches fixed-size patches (8 px for medium), so a fixed finest *width* keeps
    the patches the same fraction of the frame at every resolution; refining a large frame down
    to full resolution costs about 4x per extra level and measured no better (BENCHMARKS.md,
    "Time to video", session 3)."""
    if finest_scale is not None:
        return None if finest_scale < 0 else int(finest_scale)
    level, min_width = 0, max(1, int(min_width))  # 0 or less: the loop never ended
    while width >> (level + 1) >= min_width:
        level += 1
    return level


def make_dis(preset: str, width: int, finest_scale: int | None, min_width: int):
    """An OpenCV DIS object of ``preset`` refining to :func:`dis_finest_scale` for ``width``, the image's longer
    side."""
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    level = dis_finest_scale(width, finest_scale, min_width)
    if level is not None:
        dis.setFinestScale(level)
    return dis


#: the four (left-right, upside-down) mirrorings, as given first: the test-time variants of the DIS flows
#: (``FlowConfig.mirrors``) and of the learned route (``FuseConfig.learned_passes``)
FLIPS = ((False, False), (True, False), (False, True), (True, True))


def flip(x: np.ndarray, lr: bool, ud: bool) -> np.ndarray:
    """``x`` ([H, W] or [H, W, C]) mirrored left-right and/or upside down (its own inverse), contiguous."""
    return np.ascontiguousarray(x[::-1 if ud else 1, ::-1 if lr else 1])


def gray_u8(img: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 RGB or float 0..1 -> [H, W] uint8 grey."""
    if img.dtype == np.uint8:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    g = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    return np.clip(g * 255.0 + 0.5, 0, 255).astype(np.uint8)


def grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV pixel grid: gx, gy [H, W] float32."""
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def remap(img: np.ndarray, mx: np.ndarray, my: np.ndarray, interp: int = cv2.INTER_LINEAR,
          border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Sample ``img`` ([H, W] or [H, W, C<=4]) at OpenCV coordinates (mx, my); outside: the border
    mode (constant = 0)."""
    return cv2.remap(img, mx, my, interp, borderMode=border, borderValue=0)


#: sigmas (pixels) from which :func:`blur` works on a downsampled copy
BLUR_DOWNSAMPLE_SIGMA = 12.0


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of sigma ``sigma`` pixels (reflect-101 border); ``sigma <= 0`` returns ``x``.

    Wide blurs (``sigma >= BLUR_DOWNSAMPLE_SIGMA``; they smooth weight and displacement maps over
    regions) run at 1/f of the size, f the power of two with sigma / f in [3, 6) px: reflect-101
    margins of 3 sigma, area-average down, blur, bilinear up, crop, with the Gaussian narrowed by
    the variance the two resamplings add (f^2/4 px^2). The result is within 0.4 % of the input's
    range of the full-size blur, at a fraction of the cost (a 40 px blur of a 1236x700 mask:
    56 ms -> 2 ms)."""
    if sigma <= 0:
        return x
    h, w = x.shape[:2]
    f = 1
    while sigma >= BLUR_DOWNSAMPLE_SIGMA and sigma / (2 * f) >= 3.0 and min(h, w) // (2 * f) >= 8:
        f *= 2
    if f == 1:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    # reflect-101 margins of 3 sigma (as the full-size blur sees beyond the edge), then up to a
    # multiple of f, so that the small copy's pixels tile the padded image exactly
    m = int(min(np.ceil(3 * sigma), h - 1, w - 1))
    ph, pw = -(h + 2 * m) % f, -(w + 2 * m) % f
    big = cv2.copyMakeBorder(x, m, m + ph, m, m + pw, cv2.BORDER_REFLECT_101)
    H, W = big.shape[:2]
    small = cv2.resize(big, (W // f, H // f), interpolation=cv2.INTER_AREA)
    s_small = np.sqrt(sigma * sigma - f * f / 4.0) / f  # f <= sigma / 3: always positive
    small = cv2.GaussianBlur(small, (0, 0), s_small, borderType=cv2.BORDER_REFLECT_101)
    out = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)[m:m + h, m:m + w]
    return np.ascontiguousarray(out).reshape(x.shape)


def fb_error(fwd: np.ndarray, bwd: np.ndarray) -> np.ndarray:
    """[H, W] forward-backward inconsistency ``|fwd(p) + bwd(p + fwd(p))|`` in pixels."""
    gx, gy = grid(*fwd.shape[:2])
    return np.linalg.norm(fwd + remap(bwd, gx + fwd[..., 0], gy + fwd[..., 1]), axis=-1)


def gauss_conf(err: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """``exp(-ln2 (err / scale)^2)``: 1 at 0, 1/2 at ``scale`` (float32)."""
    return np.exp(-_LN2 * np.square(err / scale)).astype(np.float32)


def blend_bands(images: Sequence[np.ndarray], weights: Sequence[np.ndarray], detail_power: float,
                band_sigma_px: float) -> np.ndarray:
    """Two-band blend of candidate images.

    Args:
        images: N x [H, W, 3] float32.
        weights: N x [H, W] float32 >= 0 (not all zero anywhere: add a floor first).
        detail_power: exponent on the normalised weights in the detail band.
        band_sigma_px: sigma of the low band in pixels.

    Returns:
        [H, W, 3] float32: ``sum w_i low_i / sum w_i + sum w_i^p high_i / sum w_i^p``.
    """
    w = np.stack(weights).astype(np.float32)
    w = w / np.maximum(w.sum(0, keepdims=True), 1e-12)
    low = np.zeros_like(images[0])
    for img, wi in zip(images, w):
        low += wi[..., None] * (img if band_sigma_px <= 0 else blur(img, band_sigma_px))
    if band_sigma_px <= 0:
        return low
    # powers of the weights relative to the largest: the most trusted candidate keeps 1 at any power (raw
    # powers of many small weights underflow float32 to 0 everywhere, which would drop the detail band)
    wp = (w / np.maximum(w.max(0, keepdims=True), 1e-12)) ** float(detail_power)
    wp = wp / np.maximum(wp.sum(0, keepdims=True), 1e-12)
    high = np.zeros_like(images[0])
    for img, wi in zip(images, wp):
        high += wi[..., None] * (img - blur(img, band_sigma_px))
    return low + high


def soften_to(img: np.ndarray, target: float, max_sigma: float = 1.5, iters: int = 16) -> tuple[np.ndarray, float]:
    """The least Gaussian blur of ``img`` ([H, W, 3] uint8 RGB) whose sharpness (the variance of the
    Laplacian of its grey image, :func:`sparsevid.eval.metrics.laplacian_variance`) is at most ``target``
    (bisection on sigma: the variance falls as sigma grows), at most ``max_sigma`` px.

    Returns:
        (image uint8, sigma in px); ``img`` itself and 0 when it is already no sharper than ``target``.
    """
    if laplacian_var(img) <= target:
        return img, 0.0
    lo, hi = 0.0, float(max_sigma)
    if laplacian_var(cv2.GaussianBlur(img, (0, 0), hi)) > target:
        lo = hi
    for _ in range(iters if lo < hi else 0):
        mid = 0.5 * (lo + hi)
        if laplacian_var(cv2.GaussianBlur(img, (0, 0), mid)) > target:
            lo = mid
        else:
            hi = mid
    return cv2.GaussianBlur(img, (0, 0), hi), hi
