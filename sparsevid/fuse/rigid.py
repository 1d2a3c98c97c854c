"""The rigid check: where the 3D model's geometry cannot explain the motion seen between two inputs.

The leave-one-out check rebuilds a held-out input with the run's own model, which was trained on
that input: its render there has seen the frame, so the check trusts the 3D route most where it
fails between the inputs -- on objects that move by themselves (a car passing close to the camera).
A leak-free check needs a model trained without the input (``FuseConfig.loo_models``: one more
training per interior input). This check costs two flows per pair of neighbouring inputs instead.

For inputs ``a`` and ``b``, the model's depth at ``a`` and the two cameras give the *rigid flow*:
where each pixel of ``a`` would be in ``b`` if the scene stood still and had that depth
(:func:`rigid_flow`). A sparse-view model's depth is rough, but a depth error only moves the pixel
along its epipolar line; so each pixel gets the segment of that line that depths within a factor
``depth_factor`` of the model's reach (:func:`epipolar_segment`; a point under pure rotation). A
pixel that is nowhere near its segment in ``b`` -- by the optical flow where that is consistent both
ways, by the frames' own colours where it is not (an object too fast or too close for the flow) --
moved by itself (:func:`nonrigid_map`), and the 3D route, which renders a still scene, is wrong
there at every time between ``a`` and ``b``. The fusion then takes the 3D route's expected error there to be its
disagreement with the 2D routes (:func:`sparsevid.fuse.fusion.route_gains`, ``suspect``).

All functions here are pure: arrays in, arrays out; the 3D side (:mod:`sparsevid.fuse.route3d`)
brings the depth and the cameras.
"""
from __future__ import annotations

import cv2
import numpy as np

from sparsevid.fixer.reproject import warp_coords_np
from sparsevid.imaging import blur, gauss_conf, grid, remap


def rigid_flow(depth: np.ndarray, K: np.ndarray, c2w_a: np.ndarray, c2w_b: np.ndarray,
               K_b: np.ndarray | None = None) -> np.ndarray:
    """The flow from camera ``a`` to camera ``b`` of a still scene with z-depth ``depth`` seen from ``a``.

    Args:
        depth: [H, W] z-depth at camera ``a`` (<= 0 or non-finite: unknown).
        K: [3, 3] intrinsics of ``a`` (and of ``b`` unless ``K_b``); c2w_a, c2w_b: [4, 4] camera-to-world
            (OpenCV axes).

    Returns:
        [H, W, 2] float32 in the OpenCV flow convention (``a(p) ~ b(p + flow(p))``); NaN where the depth
        is unknown or the point is behind ``b``.
    """
    uv, zb = warp_coords_np(depth, K, c2w_a, K if K_b is None else K_b, c2w_b)
    gx, gy = grid(*depth.shape)
    flow = uv - np.stack([gx + 0.5, gy + 0.5], -1)
    flow[~(zb > 0)] = np.nan
    return flow.astype(np.float32)


def epipolar_segment(depth: np.ndarray, K: np.ndarray, c2w_a: np.ndarray, c2w_b: np.ndarray,
                     K_b: np.ndarray | None = None, depth_factor: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """The ends of each pixel's epipolar segment as flows from ``a`` to ``b``: :func:`rigid_flow` at
    ``depth * depth_factor`` and at ``depth / depth_factor`` ([H, W, 2] each; the point's image in ``b``
    moves on a straight line between them as its depth runs between the two). An end that would put the
    point behind ``b`` (or closer to it than a tenth of the model's depth there) is moved to that tenth:
    a camera that steps forward by more than half the distance to a near object still gets a segment
    for it. NaN where the model's depth is unknown or behind ``b``."""
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float64)
    _, zb1 = warp_coords_np(z, K, c2w_a, K if K_b is None else K_b, c2w_b)
    _, zb2 = warp_coords_np(2.0 * z, K, c2w_a, K if K_b is None else K_b, c2w_b)
    slope = (zb2.astype(np.float64) - zb1) / z  # depth in b is affine in the depth in a: slope * z + zb1 - slope * z
    floor = 0.1 * zb1
    lo, hi = z / depth_factor, z * depth_factor
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = z + (floor - zb1) / slope  # where the depth in b reaches the floor
    lo = np.where((slope > 0) & (bound > lo), bound, lo)
    hi = np.where((slope < 0) & (bound < hi), bound, hi)
    ok = zb1 > 0
    return (rigid_flow(np.where(ok, hi, np.nan), K, c2w_a, c2w_b, K_b),
            rigid_flow(np.where(ok, lo, np.nan), K, c2w_a, c2w_b, K_b))


def segment_distance(p: np.ndarray, s0: np.ndarray, s1: np.ndarray) -> np.ndarray:
    """Distance ([H, W] float32) of the points ``p`` from the segments ``s0``-``s1`` (all [H, W, 2]); NaN
    where a segment is unknown."""
    d = s1 - s0
    u = np.clip(np.sum((p - s0) * d, axis=-1) / np.maximum(np.sum(d * d, axis=-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (s0 + u[..., None] * d), axis=-1).astype(np.float32)


def nonrigid_map(segment: tuple[np.ndarray, np.ndarray], flow: np.ndarray, fb_err: np.ndarray, side: int,
                 tolerance: float, fb_tolerance: float, photo_err: np.ndarray | None = None,
                 photo_tolerance: float = 0.1) -> np.ndarray:
    """How surely each pixel moved by itself ([H, W] float32 in [0, 1]): ``1 - gauss_conf(dist, tol)``, with
    ``dist`` the optical flow's distance from the pixel's epipolar segment (:func:`segment_distance`) and
    ``tol = tolerance * side / 1000`` px, times the flow's forward-backward consistency
    (``gauss_conf(fb_err, fb_tolerance * side / 1000)``: unlike the 2D route's
    :func:`~sparsevid.fuse.flow2d.consistency`, no allowance for long flows, so that a fast object's flow
    must be as consistent as a slow one's to overrule the colours); where the flow is not consistent, the frames'
    own test instead (``photo_err``, :func:`photo_error`: ``1 - gauss_conf(photo_err, photo_tolerance)``;
    None: nothing there). 0 where the segment is unknown.

    Args:
        segment: :func:`epipolar_segment`; flow: [H, W, 2] optical flow a -> b; fb_err: [H, W] its
            forward-backward error (px).
        side: the frame's longer side (px, :func:`sparsevid.imaging.long_side`); tolerance, fb_tolerance: px per
            1000 px of it.
    """
    dist = segment_distance(flow, *segment)
    known = np.isfinite(dist)
    moved = 1.0 - gauss_conf(np.nan_to_num(dist, nan=0.0), tolerance * side / 1000.0)
    trust = gauss_conf(fb_err, max(fb_tolerance * side / 1000.0, 0.5))
    if photo_err is None:
        return (moved * trust * known).astype(np.float32)
    photo = 1.0 - gauss_conf(np.nan_to_num(photo_err, nan=0.0), photo_tolerance)
    return ((moved * trust + photo * (1.0 - trust)) * known).astype(np.float32)


#: the most points along an epipolar segment that :func:`photo_error` samples
MAX_SEGMENT_SAMPLES = 16


def photo_error(a: np.ndarray, b: np.ndarray, segment: tuple[np.ndarray, np.ndarray], radius: float,
                sigma: float | None = None) -> np.ndarray:
    """How far frame ``b`` is from ``a`` along each pixel's epipolar segment: the smallest RMS (over the
    channels) difference of the two frames, both low-passed by ``sigma`` px (None: half the radius or of the
    samples' spacing, the larger, so that the spacing does not miss a match), with ``b`` sampled along the
    segment lengthened by ``radius`` px at both ends (points at most ``radius`` px apart for 95 % of the
    pixels, up to :data:`MAX_SEGMENT_SAMPLES`), and ``radius`` px to either side of each point ->
    [H, W] float32; NaN where the segment is unknown or its middle leaves ``b``.

    Args:
        a, b: [H, W, 3] float32 in [0, 1]; segment: :func:`epipolar_segment`; radius: px."""
    h, w = a.shape[:2]
    gx, gy = grid(h, w)
    known = np.all(np.isfinite(segment[0]), axis=-1) & np.all(np.isfinite(segment[1]), axis=-1)
    s0, s1 = (np.where(known[..., None], s, 0.0) for s in segment)
    d = s1 - s0
    length = np.linalg.norm(d, axis=-1)
    e1 = np.where((length > 1e-6)[..., None], d / np.maximum(length, 1e-6)[..., None], np.float32([1.0, 0.0]))
    e2 = np.stack([-e1[..., 1], e1[..., 0]], -1)
    r = max(float(radius), 0.5)
    longest = float(np.percentile(length[known], 95)) if known.any() else 0.0
    n = int(np.clip(np.ceil((longest + 2 * r) / r) + 1, 3, MAX_SEGMENT_SAMPLES))
    spacing = (longest + 2 * r) / (n - 1)
    sigma = 0.5 * max(r, spacing) if sigma is None else sigma
    la, lb = blur(a, sigma), blur(b, sigma)
    err = np.full((h, w), np.inf, np.float32)
    for j in range(n):
        along = (-r + j * (length + 2 * r) / (n - 1))[..., None] * e1
        for k in (-1.0, 0.0, 1.0):
            f = s0 + along + k * r * e2
            warped = remap(lb, gx + f[..., 0], gy + f[..., 1], border=cv2.BORDER_REPLICATE)
            err = np.minimum(err, np.sqrt(np.mean((la - warped) ** 2, axis=-1)))
    mid = s0 + 0.5 * d
    mx, my = gx + mid[..., 0], gy + mid[..., 1]
    inside = (mx >= -0.5) & (mx <= w - 0.5) & (my >= -0.5) & (my <= h - 0.5)
    err[~(inside & known)] = np.nan
    return err.astype(np.float32)
