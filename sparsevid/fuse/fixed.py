"""Regions fixed in the image: what moves with the camera, not with the scene.

Dashcams burn a clock into the frame and show the bonnet, drones and action cams show on-screen
text, a mount or a logo. Such content sits at the same pixels in every input while the rest of the
frame moves. No 3D point projects like that, so the 3D route smears the scene over it (its model
paints whatever the other views put there), and flow warps drag thin overlay strokes along with the
moving background behind them.

:func:`fixed_regions` finds these pixels from the inputs alone: a pixel is *fixed* when all inputs
agree there within their own noise (estimated from the inputs, :func:`noise_sigma`) while most of
the frame does not (the camera moves; a still camera is left to the routes, which serve it exactly).
In fixed regions:

* the 3D route gets no weight (:meth:`FixedRegions.gains`): the 2D routes keep what is fixed fixed;
* where the fixed content is also textured (text, edges: the pixel differs from its neighbours by
  more than the noise), the output *is* the inputs' own pixel, blended in time
  (:meth:`FixedRegions.compose`): crisp text instead of a ghost. Untextured fixed pixels (a bonnet's
  smooth paint, a uniform sky) are left to the 2D routes, so that something moving across them
  between the inputs is still carried along.

Pixels that change between inputs (a clock's seconds) are not fixed: the routes handle them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from scipy import ndimage



@dataclass
class FixedConfig:
    """Regions fixed in the image (:func:`fixed_regions`).

    Attributes:
        enabled: find them; there, no weight for the 3D route, and textured pixels (text, edges) taken
            from the inputs as they are. False: the routes alone.
        tolerance: a pixel agrees between two inputs when their squared difference (mean over
            channels) is below ``tolerance`` times what two noisy copies of one frame give
            (``2 sigma^2``); soft from ``tolerance / 2`` up.
        texture: a fixed pixel is textured when some neighbour 2 px away differs from it, in the
            inputs' mean, by more than ``texture`` times the noise level (squared, as ``tolerance``).
        min_area: connected fixed regions smaller than this fraction of the frame are dropped
            (chance agreement of a few pixels).
        min_texture_px: the same for textured fixed pixels, in pixels (a thin stroke of text agrees
            only in its core).
        max_fraction: when more than this fraction of the frame agrees, the camera is taken as still
            and nothing is marked (the routes reproduce a still view exactly).
    """

    enabled: bool = True
    tolerance: float = 3.0
    texture: float = 6.0
    min_area: float = 2e-4
    min_texture_px: int = 3
    max_fraction: float = 0.5


#: Immerkaer's mask: the difference of two Laplacians, blind to planes and smooth shading
_NOISE_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)


def noise_sigma(img: np.ndarray) -> float:
    """Standard deviation of the white noise of ``img`` ([H, W] or [H, W, C] float, any scale; the
    mean over channels), estimated from the image alone: J. Immerkaer, "Fast noise variance
    estimation" (CVIU 1996), sigma = sqrt(pi / 2) / 6 * mean |img * mask| over the interior."""
    x = np.asarray(img, np.float64)
    x = x[..., None] if x.ndim == 2 else x
    out = [np.abs(cv2.filter2D(x[..., c], -1, _NOISE_MASK)[1:-1, 1:-1]).mean() for c in range(x.shape[-1])]
    return float(np.sqrt(np.pi / 2) / 6 * np.mean(out))


@dataclass
class FixedRegions:
    """Output of :func:`fixed_regions`.

    Attributes:
        fixed: [H, W] float32 in [0, 1], how surely a pixel is fixed in the image.
        textured: [H, W] float32 in [0, 1], the part of ``fixed`` that is also textured (the output
            takes the inputs' own pixel there).
        noise: the inputs' noise sigma (0..1 units).
        agree_fraction: the fraction of the frame where all inputs agree.
        camera_still: more than ``max_fraction`` agrees: nothing is marked.
    """

    fixed: np.ndarray
    textured: np.ndarray
    noise: float
    agree_fraction: float
    camera_still: bool

    @property
    def any(self) -> bool:
        return bool(self.fixed.max(initial=0.0) > 0)

    def gains(self, gains: dict[str, np.ndarray | float] | None) -> dict[str, np.ndarray | float]:
        """Route gains with the 3D route's scaled by ``1 - fixed`` (other routes untouched)."""
        out = dict(gains or {})
        out["3d"] = np.asarray(out.get("3d", 1.0), np.float32) * (1.0 - self.fixed)
        return out

    def compose(self, frame: np.ndarray, a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
        """``frame`` ([H, W, 3] float 0..1) with its textured fixed pixels replaced by the inputs'
        own, ``a`` and ``b`` blended at time ``t`` between them."""
        if not self.textured.max(initial=0.0) > 0:
            return frame
        m = self.textured[..., None]
        still = (1.0 - t) * a + t * b
        return (frame * (1.0 - m) + still * m).astype(np.float32)


def fixed_regions(keys: Sequence[np.ndarray], cfg: FixedConfig) -> FixedRegions:
    """Find the regions fixed in the image (module docstring) from the inputs ``keys``
    (N x [H, W, 3] float 0..1, at the output size), N >= 2."""
    imgs = [np.asarray(k, np.float32) for k in keys]
    h, w = imgs[0].shape[:2]
    sigma = float(np.sqrt(np.mean([noise_sigma(k) ** 2 for k in imgs])))
    n2 = 2.0 * max(sigma, 0.5 / 255.0) ** 2  # at least half a grey level: quantisation
    worst = np.zeros((h, w), np.float32)
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            worst = np.maximum(worst, np.mean((imgs[i] - imgs[j]) ** 2, axis=-1) / n2)
    lo, hi = 0.5 * cfg.tolerance, cfg.tolerance
    agree = np.clip((hi - worst) / (hi - lo), 0.0, 1.0).astype(np.float32)
    frac = float((agree > 0).mean())
    still = frac > cfg.max_fraction
    if still or frac == 0.0:
        zero = np.zeros((h, w), np.float32)
        return FixedRegions(zero, zero, sigma, frac, still)
    labels, n = ndimage.label(agree > 0)
    area = ndimage.sum_labels(np.ones((h, w)), labels, index=np.arange(1, n + 1))
    keep = np.concatenate([[False], area >= cfg.min_area * h * w])
    fixed = (agree * keep[labels]).astype(np.float32)
    keep_small = np.concatenate([[False], area >= cfg.min_texture_px])
    mean = np.mean(imgs, axis=0)
    pad = np.pad(mean, ((2, 2), (2, 2), (0, 0)), mode="edge")
    contrast = np.zeros((h, w), np.float32)
    for dy, dx in ((0, 2), (0, -2), (2, 0), (-2, 0)):
        near = pad[2 + dy:2 + dy + h, 2 + dx:2 + dx + w]
        contrast = np.maximum(contrast, np.mean((mean - near) ** 2, axis=-1) / n2)
    # thin strokes (text) agree only in their cores, a few pixels each: a smaller area suffices where
    # the pixel is also textured (chance agreement of textured pixels of a moving scene is rare)
    textured = agree * keep_small[labels] * np.clip(contrast / cfg.texture - 1.0, 0.0, 1.0)
    # a stroke's anti-aliased rim mixes it with the moving view behind, so it never agrees: half-covered
    # on average, it takes half the inputs' pixel (without it, crisp cores sit in a ghost of the stroke)
    textured = np.maximum(textured, 0.5 * cv2.dilate(textured.astype(np.float32), np.ones((3, 3), np.uint8)))
    return FixedRegions(fixed, textured.astype(np.float32), sigma, frac, False)
