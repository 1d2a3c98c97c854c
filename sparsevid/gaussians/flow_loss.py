"""Geometry from the optical flow between neighbouring inputs: a training loss on the model's depth.

Four frames a few centimetres apart leave the depth of a photometrically fitted model almost free: every
input is explained by some Gaussians, but where they sit along each ray is barely constrained, and
between the inputs the render then drifts off the true positions. The optical flow between two
neighbouring inputs says where each pixel went; with the cameras known, a pixel's depth fixes where it
must go (:func:`rigid_flow_torch`). The loss asks the model's rendered depth at input ``a`` to move
each pixel onto its flow target in input ``b``, where the flow is trustworthy (forward-backward
consistent, on its epipolar line: the scene did not move by itself there, and inside ``b``'s lens).

Targets (:func:`flow_targets`) are computed once from the training views (an optical-flow function is
passed in, so this module needs no flow code of its own); the residual is in pixels per 1000 pixels of
the view's longer side, so its weight means the same at any resolution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

#: (image a, image b) [H, W, 3] float32 0..1 -> (flow a->b, flow b->a, fb error a, fb error b), px, [H, W, 2] / [H, W]
FlowFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class FlowTarget:
    """Where the pixels of view ``a`` go in view ``b`` (indices into the trainer's views).

    Attributes:
        flow: [H, W, 2] float32, px at view ``a``'s resolution (OpenCV convention: a(p) ~ b(p + flow)).
        weight: [H, W] float32 in [0, 1]: how far to trust each pixel's flow.
    """

    a: int
    b: int
    flow: np.ndarray
    weight: np.ndarray

    def scaled(self, w: int, h: int) -> "FlowTarget":
        """The target at ``w`` x ``h`` (a coarse training step's resolution)."""
        H, W = self.weight.shape
        if (w, h) == (W, H):
            return self
        flow = cv2.resize(self.flow, (w, h), interpolation=cv2.INTER_AREA) * np.float32([w / W, h / H])
        weight = cv2.resize(self.weight, (w, h), interpolation=cv2.INTER_AREA)
        return FlowTarget(self.a, self.b, flow.astype(np.float32), weight.astype(np.float32))


def _gauss(x: np.ndarray, tol: float) -> np.ndarray:
    """1 at 0, 1/2 at ``tol``."""
    return np.exp(-np.log(2.0) * (x / max(tol, 1e-6)) ** 2).astype(np.float32)


def epipolar_distance(flow: np.ndarray, K_a: np.ndarray, c2w_a: np.ndarray, K_b: np.ndarray,
                      c2w_b: np.ndarray) -> np.ndarray:
    """Distance (px, [H, W]) of each pixel's flow target in ``b`` from its epipolar line (pixel centres at
    +0.5): what no depth explains (the scene moved, or the flow is wrong)."""
    h, w = flow.shape[:2]
    M = np.linalg.inv(c2w_b) @ c2w_a
    R, t = M[:3, :3], M[:3, 3]
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    F = np.linalg.inv(K_b).T @ tx @ R @ np.linalg.inv(K_a)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    p = np.stack([gx + 0.5, gy + 0.5, np.ones_like(gx)], -1)
    q = np.stack([gx + 0.5 + flow[..., 0], gy + 0.5 + flow[..., 1], np.ones_like(gx)], -1)
    line = p @ F.T
    num = np.abs(np.sum(line * q, -1))
    den = np.sqrt(line[..., 0] ** 2 + line[..., 1] ** 2)
    return (num / np.maximum(den, 1e-12)).astype(np.float32)


def flow_targets(views: Sequence, flow_fn: FlowFn, fb_tolerance: float = 1.0,
                 epipolar_tolerance: float = 1.5) -> list[FlowTarget]:
    """Both directions of every pair of neighbouring input views (in the order given: the scene's time
    order). Tolerances in px per 1000 px of the longer side: a pixel's weight is 1/2 at a forward-backward
    error of ``fb_tolerance``, and again 1/2 at ``epipolar_tolerance`` off its epipolar line; times both
    views' masks (the target must land inside ``b``'s lens)."""
    idx = [i for i, v in enumerate(views) if v.kind == "input"]
    out = []
    for ia, ib in zip(idx, idx[1:]):
        va, vb = views[ia], views[ib]
        if va.image.shape != vb.image.shape:
            continue
        fab, fba, eab, eba = flow_fn(va.image, vb.image)
        h, w = va.image.shape[:2]
        side = max(h, w) / 1000.0
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
        for a, b, fl, err in ((ia, ib, fab, eab), (ib, ia, fba, eba)):
            A, B = views[a], views[b]
            inside = cv2.remap(B.mask[..., 0], gx + fl[..., 0], gy + fl[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            epi = epipolar_distance(fl, A.K, A.c2w, B.K, B.c2w)
            wgt = (A.mask[..., 0] * inside * _gauss(err, fb_tolerance * side)
                   * _gauss(epi, epipolar_tolerance * side))
            out.append(FlowTarget(a, b, fl.astype(np.float32), wgt.astype(np.float32)))
    return out


def rigid_flow_torch(depth: Tensor, K_a: Tensor, c2w_a: Tensor, K_b: Tensor, c2w_b: Tensor) -> tuple[Tensor, Tensor]:
    """Differentiable :func:`sparsevid.fuse.rigid.rigid_flow`: depth [H, W] (z at camera ``a``) -> (flow
    [H, W, 2] px to camera ``b``, z [H, W] in ``b``)."""
    h, w = depth.shape
    dev, dt = depth.device, depth.dtype
    ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=dt) + 0.5,
                            torch.arange(w, device=dev, dtype=dt) + 0.5, indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1)
    rays = pix @ torch.linalg.inv(K_a).T  # z = 1
    M = torch.linalg.inv(c2w_b) @ c2w_a
    xb = (rays * depth[..., None]) @ M[:3, :3].T + M[:3, 3]
    zb = xb[..., 2]
    uvw = xb @ K_b.T
    uv = uvw[..., :2] / zb[..., None].clamp_min(1e-6)
    return uv - pix[..., :2], zb


def flow_loss(depth: Tensor, alpha: Tensor, target_flow: Tensor, weight: Tensor, K_a: Tensor, c2w_a: Tensor,
              K_b: Tensor, c2w_b: Tensor, eps: float = 0.5) -> Tensor:
    """Charbonnier distance (px per 1000 px of the longer side) of the model's rigid flow from the target,
    averaged with ``weight`` x the render's (detached) opacity. depth, alpha, weight: [H, W];
    target_flow [H, W, 2]."""
    h, w = depth.shape
    side = max(h, w) / 1000.0
    fl, zb = rigid_flow_torch(depth, K_a, c2w_a, K_b, c2w_b)
    wgt = weight * alpha.detach() * (zb.detach() > 0)
    r = (fl - target_flow) / side
    rho = torch.sqrt((r * r).sum(-1) + eps * eps) - eps
    return (wgt * rho).sum() / wgt.sum().clamp_min(1.0)
