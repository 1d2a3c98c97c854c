"""Undistortion to a pinhole canvas and re-distortion back to the input lens.

Gaussian splatting renders an ideal pinhole camera, but the input video has a real lens. An
:class:`Undistorter` ties the two together for one camera at one resolution:

* ``source``  -- the distorted input camera (at ``scale`` x the input resolution);
* ``pinhole`` -- the PINHOLE camera of the undistorted *canvas*. In ``"full"`` mode (default)
  the canvas keeps the input focal length and is padded by whole pixels on each side so that
  it covers the full field of view of the distorted image (nothing at the border is lost;
  for barrel distortion the canvas is larger than the input). In ``"crop"`` mode the canvas
  is the input K at the input size (the corners of a barrel-distorted image are cropped);
* ``mask``    -- ``[Hc, Wc]`` bool, canvas pixels that see a pixel of the input image.

Maps are computed once per (camera, scale, mode) and cached (:meth:`Undistorter.for_camera`).

Pixel convention: COLMAP's, centre of the top-left pixel at (0.5, 0.5). OpenCV's ``remap``
puts pixel centres at integers, so maps are shifted by 0.5 when built.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from sparsevid.data.camera import Camera
from sparsevid.errors import SparsevidError

Mode = Literal["full", "crop"]

#: cap on the canvas size relative to the input (per axis); very wide lenses (fisheye past
#: ~120 degrees) cannot be covered by one pinhole canvas and are cropped to this size.
MAX_CANVAS_FACTOR = 2.5
#: samples per image side when tracing the distorted image border
_BORDER_SAMPLES = 512


def _pixel_grid(width: int, height: int) -> np.ndarray:
    """[H, W, 2] float64 pixel-centre coordinates (COLMAP convention)."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return np.stack([u, v], -1)


def _border_pixels(width: int, height: int, n: int = _BORDER_SAMPLES) -> np.ndarray:
    """[4n, 2] points along the outer edge of the image (pixel edges, not centres)."""
    s = np.linspace(0.0, 1.0, n)
    top = np.stack([s * width, np.zeros(n)], -1)
    bottom = np.stack([s * width, np.full(n, float(height))], -1)
    left = np.stack([np.zeros(n), s * height], -1)
    right = np.stack([np.full(n, float(width)), s * height], -1)
    return np.concatenate([top, bottom, left, right])


def _jacobian_det(camera: Camera, xy: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """det d(distort)/d(xy) at normalised points xy [..., 2] -> [...]."""
    jx = (camera.distort(xy + [eps, 0.0]) - camera.distort(xy - [eps, 0.0])) / (2 * eps)
    jy = (camera.distort(xy + [0.0, eps]) - camera.distort(xy - [0.0, eps])) / (2 * eps)
    return jx[..., 0] * jy[..., 1] - jy[..., 0] * jx[..., 1]


def _on_growing_branch(camera: Camera, xy: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """[...] whether the lens still spreads normalised points xy [..., 2] outwards there: moving a point away
    from the axis moves its image away too, on the same side. A barrel lens past its fold fails (``1 + 3 k r^2 <
    0`` for SIMPLE_RADIAL); the Jacobian's determinant alone does not tell, as it turns positive again where
    ``1 + k r^2`` is negative too."""
    inner, outer = camera.distort(xy * (1 - eps)), camera.distort(xy * (1 + eps))
    r_in, r_out = np.linalg.norm(inner, axis=-1), np.linalg.norm(outer, axis=-1)
    same_side = (outer * xy).sum(-1) > 0
    return same_side & (r_out > r_in)


@dataclass(frozen=True, eq=False)
class Undistorter:
    """Maps between a distorted camera and its pinhole canvas. Build with :meth:`for_camera`.

    Attributes:
        source: the distorted camera at the output resolution (``[H, W]`` images).
        pinhole: PINHOLE camera of the canvas (``[Hc, Wc]`` images), same focal length.
        mask: [Hc, Wc] bool, canvas pixels that map inside the source image.
        mode: ``"full"`` (padded canvas covering the whole field of view) or ``"crop"``.
        pad: (left, top, right, bottom) whole pixels added around the input frame's K-rectangle
            (all 0 in ``"crop"`` mode and for lenses without distortion).
        source_valid: [H, W] bool, source pixels whose undistorted position lies on the canvas
            (all True in ``"full"`` mode unless the lens was too wide and the canvas was capped).
        capped: the lens was too wide for one pinhole canvas (``"full"`` mode): the canvas was capped at
            :data:`MAX_CANVAS_FACTOR` times the input size and the frame's outer border is cropped
            (:attr:`capped_warning` says so, once per run: the callers warn, since the same lens is
            built at several scales).
    """

    source: Camera
    pinhole: Camera
    mask: np.ndarray
    mode: str
    pad: tuple[int, int, int, int]
    source_valid: np.ndarray = field(repr=False)
    # remap tables in OpenCV pixel convention (centres at integers), float32
    _undist_map: tuple[np.ndarray, np.ndarray] = field(repr=False)  # [Hc, Wc] -> source coords
    _dist_map: tuple[np.ndarray, np.ndarray] = field(repr=False)  # [H, W] -> canvas coords
    capped: bool = False
    folds: bool = False

    # ---- construction -------------------------------------------------------------------
    @staticmethod
    def for_camera(camera: Camera, scale: float = 1.0, mode: Mode = "full") -> "Undistorter":
        """The (cached) undistorter of ``camera`` rendered at ``scale`` x its resolution."""
        if mode not in ("full", "crop"):
            raise SparsevidError(f"unknown undistortion mode {mode!r}", fix="use 'full' or 'crop'")
        if not scale > 0:
            raise SparsevidError(f"render scale must be positive, got {scale}")
        return _build(camera, float(scale), mode)

    @property
    def capped_warning(self) -> str | None:
        """The one warning line for a capped canvas, or None."""
        if not self.capped:
            return None
        if self.folds:
            return (f"the {self.source.model} lens model folds back before the frame's edge (its distortion stops "
                    "growing there): the frame's outer border beyond the fold is cropped")
        return (f"{self.source.model} lens is too wide for one pinhole canvas; capping the canvas at "
                f"{MAX_CANVAS_FACTOR}x the input size (the outer border of the frame will be cropped)")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the source (distorted) images."""
        return self.source.width, self.source.height

    @property
    def canvas_size(self) -> tuple[int, int]:
        """(width, height) of the pinhole canvas."""
        return self.pinhole.width, self.pinhole.height

    # ---- points ------------------------------------------------------------------------
    def undistort_points(self, uv: np.ndarray) -> np.ndarray:
        """Source pixel coords [..., 2] -> canvas pixel coords [..., 2]."""
        xy = self.source.pixel_to_normalized(uv)
        p = self.pinhole
        return np.stack([xy[..., 0] * p.fx + p.cx, xy[..., 1] * p.fy + p.cy], -1)

    def distort_points(self, uv_canvas: np.ndarray) -> np.ndarray:
        """Canvas pixel coords [..., 2] -> source pixel coords [..., 2]."""
        uv_canvas = np.asarray(uv_canvas, dtype=np.float64)
        p = self.pinhole
        xy = np.stack([(uv_canvas[..., 0] - p.cx) / p.fx, (uv_canvas[..., 1] - p.cy) / p.fy], -1)
        return self.source.normalized_to_pixel(xy)

    # ---- images ------------------------------------------------------------------------
    def undistort_image(self, img: np.ndarray, interpolation: int = cv2.INTER_LINEAR,
                        fill: float = 0.0) -> np.ndarray:
        """Source image [H, W, C] (or [H, W]) -> canvas image [Hc, Wc, C]; pixels outside
        :attr:`mask` are ``fill``. uint8 stays uint8, other dtypes are computed in float32."""
        self._check(img, self.size, "undistort_image")
        out = _remap(img, self._undist_map, interpolation, cv2.BORDER_CONSTANT)
        out[~self.mask] = fill
        return out

    def distort_image(self, canvas_img: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Canvas image [Hc, Wc, C] (or [Hc, Wc]) -> image in the input lens [H, W, C]: every source
        pixel samples the canvas at its undistorted position."""
        self._check(canvas_img, self.canvas_size, "distort_image")
        return _remap(canvas_img, self._dist_map, interpolation, cv2.BORDER_REPLICATE)

    @staticmethod
    def _check(img: np.ndarray, size: tuple[int, int], what: str) -> None:
        if img.shape[1] != size[0] or img.shape[0] != size[1]:
            raise SparsevidError(f"{what}: image is {img.shape[1]}x{img.shape[0]}, "
                                 f"expected {size[0]}x{size[1]}",
                                 fix="build the Undistorter with the scale the image was rendered at")


def _remap(img: np.ndarray, maps: tuple[np.ndarray, np.ndarray], interpolation: int,
           border: int) -> np.ndarray:
    """cv2.remap that keeps the channel axis (also for C = 1 or C > 4)."""
    img = np.asarray(img)
    src = img if img.dtype == np.uint8 else img.astype(np.float32, copy=False)
    squeeze = src.ndim == 2
    if squeeze:
        src = src[..., None]
    chans = [src[..., i:i + 4] for i in range(0, src.shape[-1], 4)]  # remap handles <= 4 channels
    outs = []
    for c in chans:
        o = cv2.remap(np.ascontiguousarray(c), maps[0], maps[1], interpolation, borderMode=border, borderValue=0)
        outs.append(o.reshape(o.shape[0], o.shape[1], c.shape[-1]))
    out = np.concatenate(outs, -1)
    return out[..., 0] if squeeze else out


@functools.lru_cache(maxsize=16)
def _build(camera: Camera, scale: float, mode: str) -> Undistorter:
    src = camera if scale == 1.0 else camera.scaled(scale)
    w, h = src.width, src.height
    if mode == "crop" or not src.has_distortion:
        pad, capped, folds = (0, 0, 0, 0), False, False
    else:
        pad, capped, folds = _full_padding(src)
    left, top, right, bottom = pad
    wc, hc = w + left + right, h + top + bottom
    pin = Camera.pinhole(src.fx, src.fy, src.cx + left, src.cy + top, wc, hc)

    # canvas -> source (undistort_image) and validity mask
    grid_c = _pixel_grid(wc, hc)
    xy_c = np.stack([(grid_c[..., 0] - pin.cx) / pin.fx, (grid_c[..., 1] - pin.cy) / pin.fy], -1)
    uv_s = src.normalized_to_pixel(xy_c)
    inside = ((uv_s[..., 0] >= 0) & (uv_s[..., 0] <= w) & (uv_s[..., 1] >= 0) & (uv_s[..., 1] <= h)
              & np.isfinite(uv_s).all(-1))
    if src.has_distortion:
        inside &= _jacobian_det(src, xy_c) > 0
        inside = _component_at(inside, (pin.cx, pin.cy))
    undist_map = ((uv_s[..., 0] - 0.5).astype(np.float32), (uv_s[..., 1] - 0.5).astype(np.float32))

    # source -> canvas (distort_image)
    uv_c = _pixel_grid(w, h)
    xy = src.pixel_to_normalized(uv_c)
    cu, cv = xy[..., 0] * pin.fx + pin.cx, xy[..., 1] * pin.fy + pin.cy
    src_valid = (cu >= 0) & (cu <= wc) & (cv >= 0) & (cv <= hc)
    dist_map = ((cu - 0.5).astype(np.float32), (cv - 0.5).astype(np.float32))
    for a in (inside, src_valid):
        a.setflags(write=False)
    return Undistorter(source=src, pinhole=pin, mask=inside, mode=mode, pad=pad,
                       _undist_map=undist_map, _dist_map=dist_map, source_valid=src_valid, capped=capped, folds=folds)


def _full_padding(src: Camera) -> tuple[tuple[int, int, int, int], bool, bool]:
    """Whole-pixel padding (left, top, right, bottom) so the pinhole canvas with the same focal
    length covers the undistorted image border; whether it had to be capped (the border cropped); whether
    that is because the lens model folds back inside the frame."""
    w, h = src.width, src.height
    border = _border_pixels(w, h)
    xy = src.pixel_to_normalized(border)
    back = src.normalized_to_pixel(xy)
    ok = np.isfinite(xy).all(-1) & (np.abs(back - border).max(-1) < 1e-3)
    # on the lens's growing branch only: past a barrel lens's fold a point maps back onto the frame too, from
    # where the lens has turned back (a far larger radius), and stretched the canvas to its cap (session 37)
    converged = ok.copy()
    ok[ok] &= _on_growing_branch(src, xy[ok])
    folds = bool((converged & ~ok).any())
    if not ok.all():
        # past the lens's monotonic range: keep what converged, the cap below bounds the rest
        xy = xy[ok] if ok.any() else np.zeros((1, 2))
    u = xy[:, 0] * src.fx + src.cx
    v = xy[:, 1] * src.fy + src.cy
    left = max(0, math.ceil(-u.min() - 1e-6))
    right = max(0, math.ceil(u.max() - w - 1e-6))
    top = max(0, math.ceil(-v.min() - 1e-6))
    bottom = max(0, math.ceil(v.max() - h - 1e-6))
    max_pad_x = int((MAX_CANVAS_FACTOR - 1) * w / 2)
    max_pad_y = int((MAX_CANVAS_FACTOR - 1) * h / 2)
    capped = not ok.all() or max(left, right) > max_pad_x or max(top, bottom) > max_pad_y
    return ((min(left, max_pad_x), min(top, max_pad_y), min(right, max_pad_x), min(bottom, max_pad_y)), capped,
            folds)


def _component_at(mask: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """The connected component of ``mask`` [H, W] containing pixel ``centre`` (u, v)."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)
    if n <= 2:
        return mask
    h, w = mask.shape
    cu = min(max(int(centre[0]), 0), w - 1)
    cv_ = min(max(int(centre[1]), 0), h - 1)
    lab = labels[cv_, cu]
    if lab == 0:
        return mask
    return labels == lab
